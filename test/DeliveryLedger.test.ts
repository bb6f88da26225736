/**
 * The delivery ledger's conformance suite, run against the memory ledger and the PostgreSQL one. The ledger is
 * driven by hand, the way a relay would drive it: expand, claim, finish. Leases and backoff are real time (the
 * PostgreSQL ledger keeps the database's clock), so the suites run without test services and wait for real.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { Claim, Delivery, Outcome } from "../src/DeliveryLedger.js"
import { DeliveryLedger } from "../src/DeliveryLedger.js"
import * as SendError from "../src/SendError.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import {
  countsOf,
  findDelivery,
  inEmptyStore,
  keyOf,
  keysOf,
  storeBackends,
  storedLife,
  updateWith
} from "./utils/deliveryStores.js"
import { layerClientInFreshSchema } from "./utils/postgres.js"

const LONG = Duration.seconds(30)
const SHORT = Duration.millis(150)

const claim = (owner: string, options: { readonly limit?: number; readonly lease?: Duration.Duration } = {}) =>
  Effect.flatMap(
    DeliveryLedger,
    (ledger) => ledger.claim({ owner, limit: options.limit ?? 100, lease: options.lease ?? LONG })
  )

const finish = (claimed: Claim | undefined, outcome: Outcome) =>
  Effect.flatMap(DeliveryLedger, (ledger) => {
    if (claimed === undefined) return Effect.dieMessage("no claim to finish")
    return ledger.finish(claimed, outcome)
  })

const stats = Effect.flatMap(DeliveryLedger, (ledger) => ledger.stats)

const expandAll = Effect.flatMap(DeliveryLedger, (ledger) => ledger.expand(1000))

/** A delivery's history, in the terms a test states: attempt number, relay and outcome. */
const historyOf = (delivery: Delivery) =>
  delivery.attempts.map((attempt) => `${attempt.attempt} ${attempt.relay} ${attempt.outcome}`)

const counts = Effect.map(stats, countsOf)

const transient = new SendError.Transient({ channel: "email", detail: "was deferred", code: 451 })
const permanent = new SendError.Permanent({ channel: "email", detail: "was rejected: no such mailbox", code: 550 })
const delivered = (providerId: string): Outcome => ({ _tag: "Delivered", providerId })

/** One new tenant's welcome e-mail, expanded and claimed by `owner`. */
const oneClaimed = (owner: string, lease: Duration.Duration = LONG) =>
  Effect.gen(function*() {
    const { events } = yield* storedLife({})
    yield* expandAll
    const claims = yield* claim(owner, { lease })
    assert.lengthOf(claims, 1)
    return { key: keyOf(events[0]), claimed: claims[0] }
  })

/** A welcome e-mail whose first claim (by `a`, for a short lease) expired and was taken by `b`. */
const takenOver = Effect.gen(function*() {
  const { claimed: first, key } = yield* oneClaimed("a", SHORT)
  assert.deepStrictEqual(yield* claim("b"), [], "the lease still holds")
  yield* Effect.sleep(Duration.millis(300))
  const [second, ...more] = yield* claim("b")
  assert.lengthOf(more, 0)
  return { key, first, second }
})

for (const backend of storeBackends) {
  layer(backend.suite, { timeout: "60 seconds", excludeTestServices: true })(
    `DeliveryLedger conformance [${backend.name}]`,
    (it) => {
      describe("expand", () => {
        it.effect("turns each event into the messages notificationsFor gives, once", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const phone = "+8613800138000"
            const withPhone = yield* storedLife(
              { contact: { email: "Owner@Acme.test", phone } },
              [TenantLifecycle.activate, updateWith({ name: "Acme Renamed" })]
            )
            const withoutPhone = yield* storedLife({ contact: { email: "admin@beta.test" } })
            const before = yield* stats
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 4,
              pending: 0,
              inFlight: 0,
              delivered: 0,
              dead: 0
            })
            assert.isTrue(Option.isSome(before.oldestPendingAt), "unexpanded events are waiting")

            assert.strictEqual(yield* ledger.expand(1), 1)
            assert.strictEqual((yield* stats).unexpandedEvents, 3)
            assert.strictEqual(yield* ledger.expand(100), 3)
            assert.strictEqual(yield* ledger.expand(100), 0)
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 3,
              inFlight: 0,
              delivered: 0,
              dead: 0
            })

            const [created, activated, updated] = withPhone.events
            assert.strictEqual(updated?._tag, "TenantUpdated")
            assert.deepStrictEqual(keysOf(updated === undefined ? [] : [updated]), [], "an update calls for nothing")
            const messages = yield* ledger.list({ status: "pending" })
            assert.deepStrictEqual(
              messages.map((message) => [
                message.key,
                message.channel,
                message.recipient,
                message.eventId,
                message.tenantId,
                message.tenantVersion
              ]),
              [
                [keyOf(created), "email", withPhone.tenant.contact.email, created?.eventId, withPhone.tenant.id, 1],
                [keyOf(activated), "sms", phone, activated?.eventId, withPhone.tenant.id, 2],
                [
                  keyOf(withoutPhone.events[0]),
                  "email",
                  "admin@beta.test",
                  withoutPhone.events[0]?.eventId,
                  withoutPhone.tenant.id,
                  1
                ]
              ].sort((a, b) => String(a[0]) < String(b[0]) ? -1 : 1)
            )
            for (const message of messages) {
              assert.deepStrictEqual(
                [message.status, message.failures, message.ambiguousAttempts, message.attempts],
                ["pending", 0, 0, []]
              )
              assert.isTrue(Option.isNone(message.providerId) && Option.isNone(message.lastError))
            }
          })))
      })

      describe("claim", () => {
        it.effect("leases at most `limit` messages, each starting its first attempt", () =>
          inEmptyStore(Effect.gen(function*() {
            const lives = yield* Effect.forEach([1, 2, 3], () => storedLife({}))
            const events = lives.flatMap((life) => life.events)
            yield* expandAll

            const firsts = yield* claim("a", { limit: 2 })
            assert.lengthOf(firsts, 2)
            for (const claimed of firsts) {
              assert.deepStrictEqual(
                [claimed.channel, claimed.attempt, claimed.failures, claimed.interrupted],
                ["email", 1, 0, false]
              )
              const event = events.find((candidate) => keyOf(candidate) === claimed.key)
              assert.deepStrictEqual(claimed.event, event, "the claim carries the event as stored")
            }
            assert.strictEqual((yield* stats).inFlight, 2)

            const rest = yield* claim("b")
            assert.lengthOf(rest, 1)
            assert.deepStrictEqual(
              [...firsts, ...rest].map((claimed) => claimed.key).sort(),
              [...keysOf(events)].sort()
            )
            assert.deepStrictEqual(yield* claim("c"), [], "every message is leased")
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 3,
              inFlight: 3,
              delivered: 0,
              dead: 0
            })

            const started = yield* findDelivery(firsts[0]?.key ?? "")
            assert.deepStrictEqual(historyOf(started), ["1 a sending"])
            assert.isTrue(Option.isNone(started.attempts[0]?.finishedAt ?? Option.some(new Date())))
          })))

        it.effect("after the lease expires another owner takes the message; the open attempt is closed as Ambiguous", () =>
          inEmptyStore(Effect.gen(function*() {
            const { first, key, second } = yield* takenOver
            assert.deepStrictEqual(
              [second?.key, second?.attempt, second?.failures, second?.interrupted],
              [key, 2, 1, true]
            )
            assert.isAbove(second?.epoch ?? 0, first?.epoch ?? 0)
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(historyOf(delivery), ["1 a Ambiguous", "2 b sending"])
            assert.deepStrictEqual(
              [delivery.status, delivery.ambiguousAttempts, delivery.failures],
              ["pending", 1, 1]
            )
            assert.isTrue(Option.isSome(delivery.attempts[0]?.finishedAt ?? Option.none()))
            assert.isTrue(Option.isSome(delivery.attempts[0]?.detail ?? Option.none()))
          })))

        it.effect("fencing: the old claim's outcome is refused and changes nothing; the new claim's is recorded", () =>
          inEmptyStore(Effect.gen(function*() {
            const { first, key, second } = yield* takenOver
            const before = yield* findDelivery(key)
            assert.isFalse(yield* finish(first, delivered("from-a")))
            assert.isFalse(yield* finish(first, { _tag: "Dead", error: permanent, reason: "a gave up" }))
            assert.deepStrictEqual(yield* findDelivery(key), before)

            assert.isTrue(yield* finish(second, delivered("from-b")))
            const after = yield* findDelivery(key)
            assert.deepStrictEqual(historyOf(after), ["1 a Ambiguous", "2 b sent"])
            assert.deepStrictEqual([after.status, after.providerId], ["delivered", Option.some("from-b")])
            assert.isFalse(yield* finish(second, delivered("again")), "a finished message takes no second outcome")
            assert.isFalse(yield* finish(first, delivered("from-a")))
            assert.deepStrictEqual(yield* findDelivery(key), after)
          })))
      })

      describe("outcomes", () => {
        it.effect("Delivered: the message is done, with the provider's id", () =>
          inEmptyStore(Effect.gen(function*() {
            const { claimed, key } = yield* oneClaimed("a")
            assert.isTrue(yield* finish(claimed, delivered("<id@acme.test>")))
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(historyOf(delivery), ["1 a sent"])
            assert.deepStrictEqual(
              [delivery.status, delivery.providerId, delivery.failures, delivery.lastError],
              ["delivered", Option.some("<id@acme.test>"), 0, Option.none()]
            )
            assert.isTrue(Option.isSome(delivery.attempts[0]?.finishedAt ?? Option.none()))
            assert.deepStrictEqual(yield* claim("b"), [])
            const after = yield* stats
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 0,
              inFlight: 0,
              delivered: 1,
              dead: 0
            })
            assert.isTrue(Option.isNone(after.oldestPendingAt), "nothing waits")
          })))

        it.effect("a finish repeated after its outcome was recorded is refused and counts once", () =>
          inEmptyStore(Effect.gen(function*() {
            const { claimed, key } = yield* oneClaimed("a")
            const retry: Outcome = { _tag: "Retry", error: transient, after: Duration.seconds(5) }
            assert.isTrue(yield* finish(claimed, retry))
            const once = yield* findDelivery(key)
            assert.isFalse(yield* finish(claimed, retry), "the reply to the first finish was lost, say")
            assert.deepStrictEqual(yield* findDelivery(key), once)
            assert.strictEqual(once.failures, 1)
          })))

        it.effect("Retry: pending again, claimable only once `after` has passed", () =>
          inEmptyStore(Effect.gen(function*() {
            const { claimed, key } = yield* oneClaimed("a")
            assert.isTrue(yield* finish(claimed, { _tag: "Retry", error: transient, after: Duration.millis(400) }))
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(historyOf(delivery), ["1 a Transient"])
            assert.deepStrictEqual(
              [delivery.status, delivery.failures, delivery.ambiguousAttempts, delivery.lastError],
              ["pending", 1, 0, Option.some(transient.message)]
            )
            assert.deepStrictEqual(delivery.attempts[0]?.detail, Option.some(transient.message))
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 1,
              inFlight: 0,
              delivered: 0,
              dead: 0
            })
            assert.deepStrictEqual(yield* claim("b"), [], "the backoff holds it")
            yield* Effect.sleep(Duration.millis(600))
            const [again, ...more] = yield* claim("b")
            assert.lengthOf(more, 0)
            assert.deepStrictEqual(
              [again?.key, again?.attempt, again?.failures, again?.interrupted],
              [key, 2, 1, false]
            )
          })))

        it.effect("Dead: not claimed again, listed as a dead letter with the reason", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const { claimed, key } = yield* oneClaimed("a")
            assert.isTrue(yield* finish(claimed, { _tag: "Dead", error: permanent, reason: "Permanent: no mailbox" }))
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(historyOf(delivery), ["1 a Permanent"])
            assert.deepStrictEqual(
              [delivery.status, delivery.failures, delivery.lastError, delivery.attempts[0]?.detail],
              ["dead", 1, Option.some("Permanent: no mailbox"), Option.some(permanent.message)]
            )
            assert.deepStrictEqual(yield* claim("b"), [])
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 0,
              inFlight: 0,
              delivered: 0,
              dead: 1
            })
            assert.deepStrictEqual(yield* ledger.list(), [delivery])
          })))

        it.effect("Cancelled: dead without an attempt counted as failed", () =>
          inEmptyStore(Effect.gen(function*() {
            const { claimed, key } = yield* oneClaimed("a")
            assert.isTrue(yield* finish(claimed, { _tag: "Cancelled", reason: "the policy is dead-letter" }))
            const delivery = yield* findDelivery(key)
            assert.deepStrictEqual(historyOf(delivery), ["1 a Cancelled"])
            assert.deepStrictEqual(
              [delivery.status, delivery.failures, delivery.lastError, delivery.attempts[0]?.detail],
              ["dead", 0, Option.some("the policy is dead-letter"), Option.some("the policy is dead-letter")]
            )
            assert.strictEqual((yield* stats).dead, 1)
          })))
      })

      describe("replay and list", () => {
        /** `n` welcome e-mails, each failed once and then dead; returns their keys in key order. */
        const deadLetters = (n: number) =>
          Effect.gen(function*() {
            const lives = yield* Effect.forEach(Array.from({ length: n }), () => storedLife({}))
            yield* expandAll
            for (const claimed of yield* claim("a")) {
              yield* finish(claimed, { _tag: "Retry", error: transient, after: Duration.zero })
            }
            for (const claimed of yield* claim("a")) {
              yield* finish(claimed, { _tag: "Dead", error: permanent, reason: "Permanent: no mailbox" })
            }
            assert.strictEqual((yield* stats).dead, n)
            return [...keysOf(lives.flatMap((life) => life.events))].sort()
          })

        it.effect("replay(keys) puts those dead letters back with a fresh budget; replay() puts back all", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const [first, ...others] = yield* deadLetters(3)
            if (first === undefined) return yield* Effect.dieMessage("no dead letters")
            assert.strictEqual((yield* findDelivery(first)).failures, 2)

            assert.strictEqual(yield* ledger.replay([first, "no-such-key"]), 1)
            const replayed = yield* findDelivery(first)
            assert.deepStrictEqual([replayed.status, replayed.failures], ["pending", 0])
            assert.deepStrictEqual(historyOf(replayed), ["1 a Transient", "2 a Permanent"], "the history stays")
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 1,
              inFlight: 0,
              delivered: 0,
              dead: 2
            })
            const [again, ...more] = yield* claim("b")
            assert.lengthOf(more, 0)
            assert.deepStrictEqual(
              [again?.key, again?.attempt, again?.failures, again?.interrupted],
              [first, 3, 0, false]
            )
            assert.strictEqual(yield* ledger.replay([first]), 0, "a pending message is not dead")

            assert.strictEqual(yield* ledger.replay([]), 0)
            assert.strictEqual(yield* ledger.replay(), 2)
            for (const key of others) {
              assert.deepStrictEqual(
                yield* Effect.map(findDelivery(key), (delivery) => [delivery.status, delivery.failures]),
                ["pending", 0]
              )
            }
            assert.strictEqual(yield* ledger.replay(), 0)
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 3,
              inFlight: 1,
              delivered: 0,
              dead: 0
            })
          })))

        it.effect("list returns dead letters in key order, paged with afterKey", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const keys = yield* deadLetters(5)
            const keysIn = (deliveries: ReadonlyArray<Delivery>) => deliveries.map((delivery) => delivery.key)

            const all = yield* ledger.list()
            assert.deepStrictEqual(keysIn(all), keys)
            assert.deepStrictEqual(all.map(historyOf), keys.map(() => ["1 a Transient", "2 a Permanent"]))
            const pages: Array<ReadonlyArray<string>> = []
            let afterKey: string | undefined = undefined
            for (;;) {
              const page: ReadonlyArray<Delivery> = yield* ledger.list(
                afterKey === undefined ? { limit: 2 } : { limit: 2, afterKey }
              )
              if (page.length === 0) break
              pages.push(keysIn(page))
              afterKey = page[page.length - 1]?.key
            }
            assert.deepStrictEqual(pages, [keys.slice(0, 2), keys.slice(2, 4), keys.slice(4)])
            assert.deepStrictEqual(yield* ledger.list({ status: "pending" }), [])
            assert.deepStrictEqual(yield* ledger.list({ status: "delivered" }), [])
            assert.deepStrictEqual(keysIn(yield* ledger.list({ status: "dead", limit: 1000 })), keys)
          })))

        // ListOptions declares every field `| undefined`, so a caller that passes its own optional values on
        // (`{ afterKey: cursor }` with no cursor yet) must get the defaults, not InvalidInput.
        it.effect("list takes options given as undefined as left out", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const keys = yield* deadLetters(2)
            const listed = yield* ledger.list({ status: undefined, limit: undefined, afterKey: undefined })
            assert.deepStrictEqual(listed.map((delivery) => delivery.key), keys)
          })))

        it.effect("list options out of range fail with InvalidInput", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            for (const limit of [0, -1, 1.5, 1001]) {
              const error = yield* Effect.flip(ledger.list({ limit }))
              assert.strictEqual(error._tag, "InvalidInput", `limit ${limit}`)
            }
          })))
      })

      describe("per-tenant order", () => {
        it.effect("a tenant's later message waits until the earlier one is delivered or dead; others do not", () =>
          inEmptyStore(Effect.gen(function*() {
            const ordered = yield* storedLife({}, [TenantLifecycle.suspend, TenantLifecycle.softDelete])
            const [welcome, suspended, deleted] = ordered.events.map(keyOf)
            const other = yield* storedLife({})
            yield* expandAll
            const keysClaimed = (claims: ReadonlyArray<Claim>) => claims.map((claimed) => claimed.key).sort()

            const round1 = yield* claim("a")
            assert.deepStrictEqual(keysClaimed(round1), [welcome, keyOf(other.events[0])].sort())
            assert.deepStrictEqual(yield* claim("b"), [], "the suspension e-mail waits for the welcome")

            const welcomeClaim = round1.find((claimed) => claimed.key === welcome)
            yield* finish(welcomeClaim, { _tag: "Retry", error: transient, after: Duration.zero })
            const round2 = yield* claim("a")
            assert.deepStrictEqual(keysClaimed(round2), [welcome], "a retried message still holds the later ones")
            yield* finish(round2[0], delivered("welcome"))

            const round3 = yield* claim("a")
            assert.deepStrictEqual(keysClaimed(round3), [suspended])
            yield* finish(round3[0], { _tag: "Dead", error: permanent, reason: "Permanent: no mailbox" })

            const round4 = yield* claim("a")
            assert.deepStrictEqual(keysClaimed(round4), [deleted], "a dead message lets the next one go")
          })))

        it.effect(
          "a message behind many that wait for an earlier one of their tenant is still claimed",
          () =>
            inEmptyStore(Effect.gen(function*() {
              // 1 + 120 events of one tenant: while its welcome is in flight, its 120 later messages wait, and they
              // come before the other tenant's welcome in the due order, more of them than a claim first looks at.
              const toggles = Array.from(
                { length: 120 },
                (_, index) => index % 2 === 0 ? TenantLifecycle.suspend : TenantLifecycle.activate
              )
              const busy = yield* storedLife({}, toggles)
              const other = yield* storedLife({})
              yield* expandAll
              const [inFlight] = yield* claim("a", { limit: 1 })
              assert.strictEqual(inFlight?.key, keyOf(busy.events[0]))
              const found: Array<Claim> = []
              for (let round = 0; round < 3 && found.length === 0; round++) {
                found.push(...(yield* claim("b", { limit: 1 })))
              }
              assert.deepStrictEqual(found.map((claimed) => claimed.key), [keyOf(other.events[0])])
            })),
          { timeout: 30_000 }
        )
      })

      describe("release and renew", () => {
        it.effect("release gives up the owner's leases at once; the next claim finds those attempts open", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            yield* Effect.forEach([1, 2], () => storedLife({}))
            yield* expandAll
            assert.lengthOf(yield* claim("a"), 2)
            assert.strictEqual(yield* ledger.release("b"), 0)
            assert.strictEqual(yield* ledger.release("a"), 2)
            assert.strictEqual((yield* stats).inFlight, 0)
            const taken = yield* claim("b")
            assert.deepStrictEqual(
              taken.map((claimed) => [claimed.attempt, claimed.interrupted]),
              [[2, true], [2, true]]
            )
            assert.strictEqual(yield* ledger.release("a"), 0, "a holds nothing any more")
          })))

        it.effect("renew extends the leases of the claims given, while they are current", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const { claimed, key } = yield* oneClaimed("a", Duration.millis(300))
            assert.isDefined(claimed)
            if (claimed === undefined) return
            yield* Effect.sleep(Duration.millis(150))
            assert.strictEqual(yield* ledger.renew([claimed], Duration.millis(800)), 1)
            assert.strictEqual(yield* ledger.renew([{ ...claimed, epoch: claimed.epoch + 1 }], Duration.millis(800)), 0)
            assert.strictEqual(yield* ledger.renew([], Duration.millis(800)), 0)
            yield* Effect.sleep(Duration.millis(350))
            assert.deepStrictEqual(yield* claim("b"), [], "past the first lease, within the renewed one")
            assert.strictEqual((yield* stats).inFlight, 1)
            yield* Effect.sleep(Duration.millis(700))
            assert.deepStrictEqual((yield* claim("b")).map((claimed) => claimed.key), [key])
          })))
      })

      describe("prune", () => {
        it.effect("forgets messages delivered before the cut-off, with their attempts, and keeps every other", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            for (let i = 0; i < 3; i++) yield* storedLife({})
            yield* expandAll
            const [sent, dead, retried, ...more] = yield* claim("a")
            assert.lengthOf(more, 0)
            if (sent === undefined || dead === undefined || retried === undefined) return assert.fail("3 claims")
            assert.isTrue(yield* finish(sent, delivered("<id@acme.test>")))
            assert.isTrue(yield* finish(dead, { _tag: "Dead", error: permanent, reason: "permanent" }))
            assert.isTrue(yield* finish(retried, { _tag: "Retry", error: transient, after: Duration.hours(1) }))

            assert.strictEqual(yield* ledger.prune(Duration.hours(1)), 0, "delivered just now: kept")
            assert.strictEqual((yield* stats).delivered, 1)
            yield* Effect.sleep(Duration.millis(50))
            assert.strictEqual(yield* ledger.prune(Duration.millis(10)), 1)
            assert.isTrue(Option.isNone(yield* ledger.find(sent.key)), "the delivered message is forgotten")
            assert.deepStrictEqual(historyOf(yield* findDelivery(dead.key)), ["1 a Permanent"])
            assert.deepStrictEqual(historyOf(yield* findDelivery(retried.key)), ["1 a Transient"])
            assert.deepStrictEqual(yield* counts, {
              unexpandedEvents: 0,
              pending: 1,
              inFlight: 0,
              delivered: 0,
              dead: 1
            })
            assert.strictEqual(yield* ledger.prune(Duration.millis(10)), 0, "nothing more to forget")
            // Forgetting a message does not bring its event back: it is not expanded or sent again.
            assert.strictEqual(yield* expandAll, 0)
            assert.deepStrictEqual(yield* claim("b"), [])
            assert.strictEqual(yield* ledger.prune(Duration.infinity), 0, "nothing is infinitely old")
            assert.strictEqual(yield* ledger.prune(Duration.days(365 * 100_000)), 0)
          })))

        it.effect("judges a message by when it was delivered, and keeps new messages apart from forgotten ones", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const { claimed: slow, key } = yield* oneClaimed("a")
            yield* Effect.sleep(Duration.millis(300))
            assert.isTrue(yield* finish(slow, delivered("<slow@acme.test>")))
            assert.strictEqual(yield* ledger.prune(Duration.millis(150)), 0, "made 300 ms ago, delivered just now")
            yield* Effect.sleep(Duration.millis(250))

            const { claimed: waiting } = yield* oneClaimed("a")
            assert.strictEqual(yield* ledger.prune(Duration.millis(150)), 1)
            assert.isTrue(Option.isNone(yield* ledger.find(key)))
            // Messages made after a prune are their own: finishing one touches no other.
            const { claimed: fresh } = yield* oneClaimed("b")
            if (waiting === undefined || fresh === undefined) return assert.fail("two claims")
            assert.notStrictEqual(fresh.id, waiting.id)
            assert.isTrue(yield* finish(fresh, delivered("<fresh@acme.test>")))
            assert.strictEqual((yield* findDelivery(fresh.key)).status, "delivered")
            assert.deepStrictEqual(historyOf(yield* findDelivery(waiting.key)), ["1 a sending"])
            assert.isTrue(yield* finish(waiting, delivered("<waiting@acme.test>")))
          })))
      })

      describe("wakeups", () => {
        const firstWakeupAfter = <A, E, R>(trigger: Effect.Effect<A, E, R>) =>
          Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const woken = yield* Effect.fork(Stream.runHead(ledger.wakeups))
            // The stream says nothing when it is listening; PostgreSQL needs a moment to LISTEN.
            yield* Effect.sleep(Duration.millis(backend.name === "pg" ? 200 : 20))
            yield* trigger
            return yield* Fiber.join(woken).pipe(Effect.timeout(Duration.seconds(2)))
          })

        it.effect("emits when a tenant's event is committed", () =>
          inEmptyStore(Effect.gen(function*() {
            assert.deepStrictEqual(yield* firstWakeupAfter(storedLife({})), Option.some(undefined))
          })))

        it.effect("emits when dead letters are replayed", () =>
          inEmptyStore(Effect.gen(function*() {
            const ledger = yield* DeliveryLedger
            const { claimed } = yield* oneClaimed("a")
            yield* finish(claimed, { _tag: "Dead", error: permanent, reason: "Permanent: no mailbox" })
            assert.deepStrictEqual(yield* firstWakeupAfter(ledger.replay()), Option.some(undefined))
          })))
      })
    }
  )
}

layer(Layer.provideMerge(TenantRepositoryPg.layer(), layerClientInFreshSchema), {
  timeout: "60 seconds",
  excludeTestServices: true
})("DeliveryLedger [pg]: events that do not decode", (it) => {
  it.effect("get no messages and are counted; a claimed message whose event stopped decoding is dead alone", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const ledger = yield* DeliveryLedger
      const spoiled = yield* storedLife({})
      const fine = yield* storedLife({})
      yield* sql`
        INSERT INTO tenant_outbox (event_id, tenant_id, tenant_version, event_type, payload, occurred_at)
        VALUES (${randomUUID()}, ${randomUUID()}, 1, 'TenantCreated',
          ${JSON.stringify({ _tag: "TenantCreated", written: "by hand" })}::jsonb, now())`
      yield* expandAll
      const backlog = yield* ledger.backlog
      assert.deepStrictEqual([backlog.undecodableEvents, backlog.unexpandedEvents, backlog.pending], [1, 0, 2])

      // A deploy changed the schema between expansion and claim, say.
      yield* sql`UPDATE tenant_outbox SET payload = payload - 'tenantId' WHERE event_id = ${spoiled.events[0]?.eventId}`
      const claims = yield* claim("a")
      assert.deepStrictEqual(claims.map((claimed) => claimed.key), [keyOf(fine.events[0])])
      const dead = yield* findDelivery(keyOf(spoiled.events[0]))
      assert.strictEqual(dead.status, "dead")
      assert.match(Option.getOrElse(dead.lastError, () => ""), /no longer decodes/)
      assert.deepStrictEqual(historyOf(dead), ["1 a Cancelled"])
    }))
})
