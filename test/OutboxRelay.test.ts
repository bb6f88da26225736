/**
 * The outbox relay end to end, on the memory store and on PostgreSQL: tenants are stored, a relay (or three)
 * runs against the store with scripted senders, and the tests wait, polling the ledger's stats, until the work is
 * done. The relay runs on the real clock, with short settings.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { Delivery, Stats } from "../src/DeliveryLedger.js"
import { DeliveryLedger } from "../src/DeliveryLedger.js"
import { Mailer } from "../src/Mailer.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import type { Channel } from "../src/SendError.js"
import * as SendError from "../src/SendError.js"
import { SmsGateway } from "../src/SmsGateway.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import { RepositoryError } from "../src/TenantRepositoryError.js"
import {
  countsOf,
  findDelivery,
  inEmptyStore,
  keyOf,
  keysOf,
  storeBackends,
  storedLife,
  Stores
} from "./utils/deliveryStores.js"

const fastRetry = {
  baseDelay: Duration.millis(10),
  maxDelay: Duration.millis(100),
  maxAttempts: 5,
  attemptTimeout: Duration.seconds(5)
}

const fast: OutboxRelay.Options = {
  pollInterval: Duration.millis(50),
  lease: Duration.seconds(2),
  metricsInterval: Duration.millis(50),
  retry: fastRetry
}

const PHONE = "+8613800138000"

/** One entry of the senders' log: a send began, or ended with `sent` or an error's tag. */
interface Call {
  readonly channel: Channel
  readonly key: string
  readonly answer: "started" | "sent" | SendError.SendError["_tag"]
}

/** How the scripted senders answer a message, given how many times its key was tried before. */
type Script = (channel: Channel, key: string, tried: number) => Effect.Effect<void, SendError.SendError>

/**
 * A Mailer and an SmsGateway that answer as `script` says and log every call, both channels in one log, so
 * that a test can tell what was sent in which order and how often.
 */
const scriptedSenders = (script: Script = () => Effect.void) =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<Call>>([])
    const answer = (channel: Channel, key: string) =>
      Effect.gen(function*() {
        const tried = yield* Ref.modify(log, (calls) => [
          calls.filter((call) => call.key === key && call.answer === "started").length,
          [...calls, { channel, key, answer: "started" } as const]
        ])
        const result = yield* Effect.either(script(channel, key, tried))
        const answered: Call["answer"] = Either.isRight(result) ? "sent" : result.left._tag
        yield* Ref.update(log, (calls) => [...calls, { channel, key, answer: answered }])
        return yield* result
      })
    const layer = Layer.merge(
      Layer.succeed(
        Mailer,
        Mailer.of({
          from: "noreply@relay.test",
          send: (message) =>
            Effect.as(answer("email", message.key), { messageId: `<${message.key}@relay.test>`, response: "250 OK" })
        })
      ),
      Layer.succeed(
        SmsGateway,
        SmsGateway.of({ send: (message) => Effect.as(answer("sms", message.key), { id: `sms:${message.key}` }) })
      )
    )
    const calls = Ref.get(log)
    return {
      layer,
      calls,
      /** The keys of the messages accepted, in the order they were. */
      sent: Effect.map(calls, (all) => all.filter((call) => call.answer === "sent").map((call) => call.key))
    }
  })

const transient = (channel: Channel) => new SendError.Transient({ channel, detail: "was deferred", code: 451 })
const permanent = (channel: Channel) =>
  new SendError.Permanent({ channel, detail: "was rejected: no such mailbox", code: 550 })
const ambiguous = (channel: Channel) =>
  new SendError.Ambiguous({ channel, detail: "connection dropped after the message", code: "ECONNRESET" })

/** A relay over the test's ledger, with the `fast` settings unless `options` say otherwise. */
const relayLayer = (senders: Layer.Layer<Mailer | SmsGateway>, options: OutboxRelay.Options = {}) =>
  OutboxRelay.layer({ ...fast, ...options }).pipe(
    Layer.provide(TenantNotifications.layer()),
    Layer.provide(senders)
  )

/** Starts a relay that runs until the test's scope closes. */
const startRelay = (senders: Layer.Layer<Mailer | SmsGateway>, options: OutboxRelay.Options = {}) =>
  Layer.build(relayLayer(senders, options))

/** Polls the ledger's stats until `done` holds; dies with the last stats when `within` passes first. */
const statsWhen = (done: (stats: Stats) => boolean, within: Duration.Duration = Duration.seconds(10)) =>
  Effect.gen(function*() {
    const ledger = yield* DeliveryLedger
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    for (;;) {
      const stats = yield* ledger.stats
      if (done(stats)) return stats
      if ((yield* Clock.currentTimeMillis) > deadline) {
        return yield* Effect.dieMessage(
          `the ledger did not get there within ${Duration.format(within)}: ${JSON.stringify(stats)}`
        )
      }
      yield* Effect.sleep(Duration.millis(20))
    }
  })

/** Nothing waits: every event expanded, every message delivered or dead. */
const settled = (stats: Stats) => stats.unexpandedEvents === 0 && stats.pending === 0

const outcomesOf = (delivery: Delivery) => delivery.attempts.map((attempt) => attempt.outcome)

const done = (delivered: number, dead = 0) => ({ unexpandedEvents: 0, pending: 0, inFlight: 0, delivered, dead })

describe("OutboxRelay retry policy", () => {
  const policy = {
    baseDelay: Duration.millis(100),
    maxDelay: Duration.seconds(1),
    maxAttempts: 3,
    attemptTimeout: Duration.seconds(5)
  }

  it.effect("backoff doubles from the base delay with ±20% jitter, up to maxDelay, but honours a longer retryAfter", () =>
    Effect.gen(function*() {
      const millisOf = (failures: number, error: SendError.SendError = transient("email")) =>
        Effect.map(OutboxRelay.backoff(policy, failures, error), Duration.toMillis)
      for (const [failures, base] of [[1, 100], [2, 200], [3, 400]] as const) {
        for (let sample = 0; sample < 20; sample++) {
          const millis = yield* millisOf(failures)
          assert.isTrue(millis >= base * 0.8 && millis <= base * 1.2, `${failures} failures: ${millis} ms`)
        }
      }
      assert.strictEqual(yield* millisOf(10), 1000)
      const limited = new SendError.RateLimited({
        channel: "sms",
        detail: "slow down",
        retryAfter: Duration.seconds(5)
      })
      assert.strictEqual(yield* millisOf(1, limited), 5000)
    }))

  it.effect("outcomeOfFailure: final errors and spent attempts are dead, the rest retried", () =>
    Effect.gen(function*() {
      const outcome = (
        channel: Channel,
        failures: number,
        error: SendError.SendError,
        ambiguousEmail: OutboxRelay.AmbiguousEmailPolicy = "resend"
      ) =>
        Effect.map(
          OutboxRelay.outcomeOfFailure({ channel, failures }, error, policy, ambiguousEmail),
          (result) => result._tag === "Dead" ? `Dead: ${result.reason}` : result._tag
        )
      const misconfigured = new SendError.Misconfigured({
        channel: "email",
        detail: "was refused: bad login",
        code: 535
      })
      assert.strictEqual(yield* outcome("email", 0, transient("email")), "Retry")
      assert.strictEqual(yield* outcome("email", 1, transient("email")), "Retry")
      assert.strictEqual(
        yield* outcome("email", 2, transient("email")),
        `Dead: gave up after 3 failed attempts; the last: ${transient("email").message}`
      )
      assert.strictEqual(
        yield* outcome("email", 0, permanent("email")),
        `Dead: Permanent: ${permanent("email").message}`
      )
      assert.strictEqual(yield* outcome("email", 0, misconfigured), `Dead: Misconfigured: ${misconfigured.message}`)
      assert.strictEqual(yield* outcome("email", 0, ambiguous("email")), "Retry")
      assert.isTrue((yield* outcome("email", 0, ambiguous("email"), "dead-letter")).startsWith("Dead: Ambiguous"))
      assert.strictEqual(yield* outcome("sms", 0, ambiguous("sms"), "dead-letter"), "Retry")
    }))
})

for (const backend of storeBackends) {
  layer(backend.suite, { timeout: "60 seconds", excludeTestServices: true })(
    `OutboxRelay [${backend.name}]`,
    (it) => {
      it.effect("delivers a tenant's whole life: every message once, in event order", () =>
        inEmptyStore(Effect.gen(function*() {
          const senders = yield* scriptedSenders()
          const { events } = yield* storedLife(
            { contact: { email: "admin@acme.test", phone: PHONE } },
            [TenantLifecycle.activate, TenantLifecycle.suspend, TenantLifecycle.softDelete, TenantLifecycle.restore]
          )
          yield* startRelay(senders.layer)
          const stats = yield* statsWhen(settled)
          assert.deepStrictEqual(countsOf(stats), done(5))
          assert.deepStrictEqual(yield* senders.sent, keysOf(events))
          assert.deepStrictEqual(
            (yield* senders.calls).filter((call) => call.answer === "sent").map((call) => call.channel),
            ["email", "sms", "email", "email", "email"]
          )
          for (const key of keysOf(events)) {
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(outcomesOf(delivery), ["sent"])
            assert.isTrue(Option.isSome(delivery.providerId))
          }
        })))

      it.effect("renders through the notifications layer: the actor is named only when the layer says so", () =>
        inEmptyStore(Effect.gen(function*() {
          const texts: Array<string> = []
          const senders = Layer.merge(
            Layer.succeed(
              Mailer,
              Mailer.of({
                from: "noreply@relay.test",
                send: (message) =>
                  Effect.sync(() => {
                    texts.push(message.text)
                    return { messageId: `<${message.key}@relay.test>`, response: "250 OK" }
                  })
              })
            ),
            Layer.succeed(
              SmsGateway,
              SmsGateway.of({ send: (message) => Effect.succeed({ id: `sms:${message.key}` }) })
            )
          )
          const deliveredWith = (options: TenantNotifications.Options) =>
            Effect.gen(function*() {
              texts.length = 0
              yield* storedLife({}, [TenantLifecycle.suspend])
              yield* Effect.scoped(Effect.zipRight(
                Layer.build(
                  OutboxRelay.layer(fast).pipe(
                    Layer.provide(TenantNotifications.layer(options)),
                    Layer.provide(senders)
                  )
                ),
                statsWhen(settled)
              ))
              return [...texts]
            })
          // storedLife's changes are made by the actor "ops".
          const hidden = yield* deliveredWith({ showActor: false })
          assert.lengthOf(hidden, 2)
          assert.isTrue(hidden.every((text) => !text.includes("ops")), hidden.join("\n---\n"))
          const shown = yield* deliveredWith({ showActor: true })
          assert.lengthOf(shown, 2)
          assert.isTrue(shown.some((text) => text.includes("ops")), shown.join("\n---\n"))
          // The application's own template for one message; the package's for the other.
          const custom = yield* deliveredWith({
            templates: {
              email: (template, data) =>
                template === "suspended"
                  ? { subject: "Paused", text: `custom: ${data.tenantName} paused`, html: "<p>paused</p>" }
                  : undefined
            }
          })
          assert.lengthOf(custom, 2)
          assert.strictEqual(custom.filter((text) => text.startsWith("custom: ")).length, 1, custom.join("\n---\n"))
        })))

      describe("failures", () => {
        it.effect("backs off after transient failures, then delivers", () =>
          inEmptyStore(Effect.gen(function*() {
            const senders = yield* scriptedSenders((channel, _, tried) =>
              tried < 2 ? Effect.fail(transient(channel)) : Effect.void
            )
            const { events } = yield* storedLife({})
            yield* startRelay(senders.layer)
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(1))
            const delivery = yield* findDelivery(keyOf(events[0]))
            assert.deepStrictEqual(outcomesOf(delivery), ["Transient", "Transient", "sent"])
            assert.deepStrictEqual([delivery.status, delivery.failures, delivery.ambiguousAttempts], [
              "delivered",
              2,
              0
            ])
            assert.deepStrictEqual(yield* senders.sent, [keyOf(events[0])])
          })))

        it.effect("dead-letters a Permanent failure at once with the reason; replay then delivers it", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const accepting = yield* Ref.make(false)
            const senders = yield* scriptedSenders((channel) =>
              Effect.flatMap(Ref.get(accepting), (accepts) => accepts ? Effect.void : Effect.fail(permanent(channel)))
            )
            const { events } = yield* storedLife({})
            const key = keyOf(events[0])
            yield* startRelay(senders.layer)
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(0, 1))
            const dead = yield* findDelivery(key)
            assert.deepStrictEqual(outcomesOf(dead), ["Permanent"])
            assert.deepStrictEqual(dead.lastError, Option.some(`Permanent: ${permanent("email").message}`))
            assert.deepStrictEqual((yield* ledger.list()).map((delivery) => delivery.key), [key])

            yield* Ref.set(accepting, true)
            assert.strictEqual(yield* ledger.replay([key]), 1)
            assert.deepStrictEqual(countsOf(yield* statsWhen((stats) => stats.delivered === 1)), done(1))
            const replayed = yield* findDelivery(key)
            assert.deepStrictEqual(outcomesOf(replayed), ["Permanent", "sent"])
            assert.deepStrictEqual([replayed.status, replayed.failures], ["delivered", 0])
            assert.deepStrictEqual(yield* senders.sent, [key])
          })))

        it.effect("gives up after maxAttempts and dead-letters the message with the count", () =>
          inEmptyStore(Effect.gen(function*() {
            const senders = yield* scriptedSenders((channel) => Effect.fail(transient(channel)))
            const { events } = yield* storedLife({})
            yield* startRelay(senders.layer, { retry: { ...fastRetry, maxAttempts: 3 } })
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(0, 1))
            const dead = yield* findDelivery(keyOf(events[0]))
            assert.deepStrictEqual(outcomesOf(dead), ["Transient", "Transient", "Transient"])
            assert.deepStrictEqual([dead.status, dead.failures], ["dead", 3])
            assert.isTrue(
              Option.getOrElse(dead.lastError, () => "").startsWith("gave up after 3 failed attempts"),
              `lastError: ${Option.getOrUndefined(dead.lastError)}`
            )
          })))

        it.effect("keeps a tenant's order while its first message is retried; other tenants go ahead", () =>
          inEmptyStore(Effect.gen(function*() {
            const slow = yield* storedLife({}, [TenantLifecycle.suspend])
            const [welcome, suspended] = slow.events.map(keyOf)
            const other = keyOf((yield* storedLife({})).events[0])
            const senders = yield* scriptedSenders((channel, key, tried) =>
              key === welcome && tried < 3 ? Effect.fail(transient(channel)) : Effect.void
            )
            yield* startRelay(senders.layer)
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(3))

            const calls = yield* senders.calls
            const index = (key: string | undefined, answer: Call["answer"]) =>
              calls.findIndex((call) => call.key === key && call.answer === answer)
            assert.deepStrictEqual(
              calls.filter((call) => call.key === welcome && call.answer !== "started").map((call) => call.answer),
              ["Transient", "Transient", "Transient", "sent"]
            )
            assert.isAbove(index(suspended, "started"), index(welcome, "sent"), "not sent before the welcome")
            assert.isBelow(index(other, "sent"), index(welcome, "sent"), "another tenant does not wait")
          })))
      })

      describe("ambiguous attempts", () => {
        const ambiguousOnce: Script = (channel, _, tried) => tried === 0 ? Effect.fail(ambiguous(channel)) : Effect.void

        it.effect("sends an e-mail again by default, counting the ambiguous attempt", () =>
          inEmptyStore(Effect.gen(function*() {
            const senders = yield* scriptedSenders(ambiguousOnce)
            const { events } = yield* storedLife({})
            yield* startRelay(senders.layer)
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(1))
            const delivery = yield* findDelivery(keyOf(events[0]))
            assert.deepStrictEqual(outcomesOf(delivery), ["Ambiguous", "sent"])
            assert.deepStrictEqual([delivery.status, delivery.ambiguousAttempts], ["delivered", 1])
          })))

        it.effect("dead-letters the e-mail after one attempt under the dead-letter policy", () =>
          inEmptyStore(Effect.gen(function*() {
            const senders = yield* scriptedSenders(ambiguousOnce)
            const { events } = yield* storedLife({})
            yield* startRelay(senders.layer, { ambiguousEmail: "dead-letter" })
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(0, 1))
            const dead = yield* findDelivery(keyOf(events[0]))
            assert.deepStrictEqual(outcomesOf(dead), ["Ambiguous"])
            assert.deepStrictEqual([dead.status, dead.ambiguousAttempts], ["dead", 1])
            assert.isTrue(
              Option.getOrElse(dead.lastError, () => "").startsWith("Ambiguous, and the e-mail policy is dead-letter"),
              `lastError: ${Option.getOrUndefined(dead.lastError)}`
            )
          })))

        /** A welcome e-mail claimed by a relay that then died (its lease of 150 ms ran out mid-send). */
        const claimedByADeadRelay = Effect.gen(function*() {
          const ledger = yield* DeliveryLedger
          const { events } = yield* storedLife({})
          yield* ledger.expand(100)
          assert.lengthOf(yield* ledger.claim({ owner: "crashed", limit: 10, lease: Duration.millis(150) }), 1)
          yield* Effect.sleep(Duration.millis(200))
          return keyOf(events[0])
        })

        it.effect("sends again an e-mail whose relay died mid-send, by default", () =>
          inEmptyStore(Effect.gen(function*() {
            const key = yield* claimedByADeadRelay
            const senders = yield* scriptedSenders()
            yield* startRelay(senders.layer)
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(1))
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(outcomesOf(delivery), ["Ambiguous", "sent"])
            assert.deepStrictEqual([delivery.status, delivery.ambiguousAttempts], ["delivered", 1])
            assert.deepStrictEqual(yield* senders.sent, [key])
          })))

        it.effect("dead-letters, without sending, an e-mail whose relay died mid-send under the dead-letter policy", () =>
          inEmptyStore(Effect.gen(function*() {
            const key = yield* claimedByADeadRelay
            const senders = yield* scriptedSenders()
            yield* startRelay(senders.layer, { ambiguousEmail: "dead-letter" })
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(0, 1))
            const dead = yield* findDelivery(key)
            assert.deepStrictEqual(outcomesOf(dead), ["Ambiguous", "Cancelled"])
            assert.deepStrictEqual([dead.status, dead.ambiguousAttempts], ["dead", 1])
            assert.isTrue(
              Option.getOrElse(dead.lastError, () => "").includes("the e-mail policy is dead-letter"),
              `lastError: ${Option.getOrUndefined(dead.lastError)}`
            )
            assert.deepStrictEqual(yield* senders.calls, [])
          })))

        it.effect("sends an SMS again whatever the e-mail policy (the gateway deduplicates)", () =>
          inEmptyStore(Effect.gen(function*() {
            const senders = yield* scriptedSenders((channel, key, tried) =>
              channel === "sms" ? ambiguousOnce(channel, key, tried) : Effect.void
            )
            const { events } = yield* storedLife({ contact: { email: "admin@acme.test", phone: PHONE } }, [
              TenantLifecycle.activate
            ])
            yield* startRelay(senders.layer, { ambiguousEmail: "dead-letter" })
            assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(2))
            const sms = yield* findDelivery(keyOf(events[1]))
            assert.deepStrictEqual([sms.channel, sms.status, sms.ambiguousAttempts], ["sms", "delivered", 1])
            assert.deepStrictEqual(outcomesOf(sms), ["Ambiguous", "sent"])
          })))
      })

      it.effect("cuts off a send that hangs at the attempt timeout, as Ambiguous; a stop waits no longer than that", () =>
        inEmptyStore(Effect.gen(function*() {
          const hanging = yield* Deferred.make<void>()
          const senders = yield* scriptedSenders((_channel, _key, tried) =>
            tried === 0 ? Effect.zipRight(Deferred.succeed(hanging, undefined), Effect.never) : Effect.void
          )
          const timeoutAfter = { retry: { ...fastRetry, attemptTimeout: Duration.millis(300) } }
          const { events } = yield* storedLife({})
          const relayScope = yield* Scope.make()
          yield* Layer.buildWithScope(relayLayer(senders.layer, timeoutAfter), relayScope)
          yield* Deferred.await(hanging).pipe(Effect.timeout(Duration.seconds(5)))

          const stopping = yield* Clock.currentTimeMillis
          yield* Scope.close(relayScope, Exit.void)
          const stopped = (yield* Clock.currentTimeMillis) - stopping
          assert.isBelow(stopped, 2_000, "the stop waited for the timeout, not for the provider")
          const cut = yield* findDelivery(keyOf(events[0]))
          assert.deepStrictEqual([cut.status, outcomesOf(cut), cut.ambiguousAttempts], ["pending", ["Ambiguous"], 1])

          yield* startRelay(senders.layer, timeoutAfter)
          assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(1))
          assert.deepStrictEqual(outcomesOf(yield* findDelivery(keyOf(events[0]))), ["Ambiguous", "sent"])
        })))

      it.effect("stops gracefully: the send under way finishes and is recorded, no lease is left", () =>
        inEmptyStore(Effect.gen(function*() {
          const sending = yield* Deferred.make<void>()
          const senders = yield* scriptedSenders(() =>
            Effect.zipRight(Deferred.succeed(sending, undefined), Effect.sleep(Duration.millis(500)))
          )
          const relayScope = yield* Scope.make()
          yield* Layer.buildWithScope(relayLayer(senders.layer, { concurrency: 1 }), relayScope)
          const first = yield* storedLife({})
          yield* Deferred.await(sending).pipe(Effect.timeout(Duration.seconds(5)))
          yield* storedLife({})
          yield* statsWhen((stats) => stats.unexpandedEvents === 0, Duration.millis(300))

          const stopping = yield* Clock.currentTimeMillis
          yield* Scope.close(relayScope, Exit.void)
          const stopped = (yield* Clock.currentTimeMillis) - stopping
          assert.isAbove(stopped, 100, "the stop waited for the send")

          const delivery = yield* findDelivery(keyOf(first.events[0]))
          assert.deepStrictEqual([delivery.status, outcomesOf(delivery)], ["delivered", ["sent"]])
          const stats = yield* (yield* DeliveryLedger).stats
          assert.deepStrictEqual(countsOf(stats), {
            unexpandedEvents: 0,
            pending: 1,
            inFlight: 0,
            delivered: 1,
            dead: 0
          })
          assert.deepStrictEqual(yield* senders.sent, [keyOf(first.events[0])])
          const waiting = yield* (yield* DeliveryLedger).list({ status: "pending" })
          assert.deepStrictEqual(waiting.map((message) => message.attempts), [[]], "the other one was never claimed")
        })))

      // A claim records its attempt as started, so a stop that dropped a claim before sending it would leave an
      // attempt the next claim must take for possibly sent. The stop therefore waits for a claim under way and
      // delivers what it returned.
      it.effect("a message claimed just as the relay stops is still sent, once, and not counted as ambiguous", () =>
        inEmptyStore(Effect.gen(function*() {
          const claimed = yield* Deferred.make<void>()
          const slowAnswers = Layer.effect(
            DeliveryLedger,
            Effect.map(DeliveryLedger, (ledger) =>
              DeliveryLedger.of({
                ...ledger,
                claim: (options) =>
                  Effect.tap(ledger.claim(options), (claims) =>
                    claims.length === 0
                      ? Effect.void
                      : Effect.zipRight(Deferred.succeed(claimed, undefined), Effect.sleep(Duration.seconds(1))))
              }))
          )
          const senders = yield* scriptedSenders()
          const relayScope = yield* Scope.make()
          yield* Layer.buildWithScope(
            relayLayer(senders.layer, { ambiguousEmail: "dead-letter" }).pipe(Layer.provide(slowAnswers)),
            relayScope
          )
          const { events } = yield* storedLife({})
          const key = keyOf(events[0])
          yield* Deferred.await(claimed).pipe(Effect.timeout(Duration.seconds(5)))
          yield* Scope.close(relayScope, Exit.void)
          assert.deepStrictEqual(yield* senders.sent, [key], "the stop waited for the claim and its send")
          const delivery = yield* findDelivery(key)
          assert.deepStrictEqual(
            [delivery.status, delivery.ambiguousAttempts, outcomesOf(delivery)],
            ["delivered", 0, ["sent"]],
            `lastError: ${Option.getOrUndefined(delivery.lastError)}`
          )
          assert.strictEqual((yield* (yield* DeliveryLedger).stats).inFlight, 0)
        })))

      it.effect("three relays share the work: every message is sent once, in each tenant's order", () =>
        inEmptyStore(Effect.gen(function*() {
          const senders = yield* scriptedSenders(() =>
            Effect.flatMap(Random.nextIntBetween(0, 5), (millis) => Effect.sleep(Duration.millis(millis)))
          )
          const another = yield* (yield* Stores).another
          const relayIds = ["relay-a", "relay-b", "relay-c"]
          for (const relayId of relayIds) {
            yield* Layer.build(relayLayer(senders.layer, { relayId, concurrency: 4 }).pipe(Layer.provide(another)))
          }
          const lives = yield* Effect.forEach(
            Array.from({ length: 60 }),
            () => storedLife({}, [TenantLifecycle.suspend]),
            { concurrency: 6 }
          )
          const expected = keysOf(lives.flatMap((life) => life.events))
          assert.deepStrictEqual(countsOf(yield* statsWhen(settled, Duration.seconds(20))), done(120))

          const calls = yield* senders.calls
          const tally = (answer: Call["answer"]) => {
            const counted = new Map<string, number>()
            for (const call of calls) {
              if (call.answer === answer) counted.set(call.key, (counted.get(call.key) ?? 0) + 1)
            }
            return counted
          }
          const once = new Map(expected.map((key) => [key, 1]))
          assert.deepStrictEqual(tally("started"), once, "no message was tried twice")
          assert.deepStrictEqual(tally("sent"), once)
          for (const { events } of lives) {
            const [welcome, suspended] = events.map(keyOf)
            const index = (key: string | undefined, answer: Call["answer"]) =>
              calls.findIndex((call) => call.key === key && call.answer === answer)
            assert.isAbove(index(suspended, "started"), index(welcome, "sent"))
          }
          const delivered = yield* (yield* DeliveryLedger).list({ status: "delivered", limit: 1000 })
          assert.lengthOf(delivered, 120)
          for (const delivery of delivered) {
            assert.deepStrictEqual([outcomesOf(delivery), delivery.ambiguousAttempts], [["sent"], 0])
          }
          const workers = new Set(delivered.flatMap((delivery) => delivery.attempts.map((attempt) => attempt.relay)))
          assert.isAbove(workers.size, 1, `relays that delivered: ${[...workers].join(", ")}`)
        })))

      it.effect("wakes on a committed event instead of waiting for the next poll", () =>
        inEmptyStore(Effect.gen(function*() {
          const senders = yield* scriptedSenders()
          yield* startRelay(senders.layer, { pollInterval: Duration.seconds(30) })
          // The relay has made its first round and sleeps; PostgreSQL needs a moment to LISTEN.
          yield* Effect.sleep(Duration.millis(300))
          const { events } = yield* storedLife({})
          assert.deepStrictEqual(countsOf(yield* statsWhen(settled, Duration.seconds(2))), done(1))
          assert.deepStrictEqual(yield* senders.sent, [keyOf(events[0])])
        })))

      /** The ledger, with recording outcomes failing the first `times` calls as a dropped connection would. */
      const finishFailing = (times: number) =>
        Layer.effect(
          DeliveryLedger,
          Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const failures = yield* Ref.make(0)
            return DeliveryLedger.of({
              ...ledger,
              finishAll: (outcomes) =>
                Effect.flatMap(Ref.getAndUpdate(failures, (n) => n + 1), (n) =>
                  n >= times
                    ? ledger.finishAll(outcomes)
                    : Effect.fail(new RepositoryError({ operation: "ledger.finish", detail: "connection reset" })))
            })
          })
        )

      it.effect("records an outcome through a short ledger outage without sending again", () =>
        inEmptyStore(Effect.gen(function*() {
          const senders = yield* scriptedSenders()
          yield* Layer.build(relayLayer(senders.layer).pipe(Layer.provide(finishFailing(2))))
          const { events } = yield* storedLife({})
          const key = keyOf(events[0])
          assert.deepStrictEqual(countsOf(yield* statsWhen(settled, Duration.seconds(4))), done(1))
          assert.deepStrictEqual(outcomesOf(yield* findDelivery(key)), ["sent"])
          assert.deepStrictEqual(yield* senders.sent, [key])
        })))

      // When the outcome cannot be recorded at all, the relay stops renewing that lease: another claim takes the
      // message once it expires, finds the attempt open, and sends it again (an accounted duplicate).
      it.effect("retries a message whose outcome could not be recorded once its lease expires", () =>
        inEmptyStore(Effect.gen(function*() {
          const senders = yield* scriptedSenders()
          yield* Layer.build(
            relayLayer(senders.layer, { lease: Duration.millis(300) }).pipe(Layer.provide(finishFailing(5)))
          )
          const { events } = yield* storedLife({})
          const key = keyOf(events[0])
          assert.deepStrictEqual(countsOf(yield* statsWhen(settled, Duration.seconds(6))), done(1))
          const delivery = yield* findDelivery(key)
          assert.deepStrictEqual(outcomesOf(delivery), ["Ambiguous", "sent"])
          assert.strictEqual(delivery.ambiguousAttempts, 1)
          assert.deepStrictEqual(yield* senders.sent, [key, key])
        })))

      // Counted one after the other, a message delivered between two counts would be both pending and delivered
      // (a test waiting for `delivered` then saw a pending message).
      it.effect("stats are of one moment: while messages are delivered, every one is counted once", () =>
        inEmptyStore(Effect.gen(function*() {
          const ledger = yield* DeliveryLedger
          yield* Effect.forEach(Array.from({ length: 120 }), () => storedLife({}), { concurrency: 6 })
          assert.strictEqual(yield* ledger.expand(200), 120)
          const senders = yield* scriptedSenders(() =>
            Effect.flatMap(Random.nextIntBetween(0, 3), (millis) => Effect.sleep(Duration.millis(millis)))
          )
          yield* startRelay(senders.layer, { concurrency: 8 })
          const seen: Array<string> = []
          for (;;) {
            const stats = yield* ledger.stats
            seen.push(`${stats.pending} pending, ${stats.delivered} delivered`)
            if (stats.pending + stats.delivered + stats.dead !== 120) assert.fail(seen.slice(-3).join("; "))
            if (stats.delivered === 120) break
            yield* Effect.sleep(Duration.millis(1))
          }
          assert.isAbove(new Set(seen).size, 10, "stats taken while deliveries were under way")
        })))

      it.effect("counts deliveries and dead letters, and keeps the backlog gauges", () =>
        inEmptyStore(Effect.gen(function*() {
          const email = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) =>
            Metric.tagged(metric, "channel", "email")
          const deliveredEmail = email(OutboxRelay.delivered)
          const deadPermanent = Metric.tagged(email(OutboxRelay.deadLettered), "error", "Permanent")
          const attemptsSent = Metric.tagged(email(OutboxRelay.attemptsFinished), "outcome", "sent")
          const before = yield* Effect.all([deliveredEmail, deadPermanent, attemptsSent].map(Metric.value))
          const gauges = [OutboxRelay.pending, OutboxRelay.inFlight, OutboxRelay.dead, OutboxRelay.lag] as const
          for (const gauge of gauges) yield* Metric.set(gauge, -1)

          const lives = yield* Effect.forEach([1, 2, 3, 4], () => storedLife({}))
          const rejected = keyOf(lives[3]?.events[0])
          const senders = yield* scriptedSenders((channel, key) =>
            key === rejected ? Effect.fail(permanent(channel)) : Effect.void
          )
          yield* startRelay(senders.layer)
          assert.deepStrictEqual(countsOf(yield* statsWhen(settled)), done(3, 1))

          const after = yield* Effect.all([deliveredEmail, deadPermanent, attemptsSent].map(Metric.value))
          assert.deepStrictEqual(
            after.map((state, index) => state.count - (before[index]?.count ?? 0)),
            [3, 1, 3],
            "delivered, dead-lettered (Permanent), attempts sent"
          )
          const readGauges = Effect.all(gauges.map((gauge) => Effect.map(Metric.value(gauge), (state) => state.value)))
          const deadline = (yield* Clock.currentTimeMillis) + 2000
          let values = yield* readGauges
          while (!(values[0] === 0 && values[1] === 0 && values[2] === 1 && values[3] === 0)) {
            if ((yield* Clock.currentTimeMillis) > deadline) break
            yield* Effect.sleep(Duration.millis(20))
            values = yield* readGauges
          }
          assert.deepStrictEqual(values, [0, 0, 1, 0], "pending, in flight, dead, lag")
        })))
    }
  )
}
