/**
 * How the relay keeps its bookkeeping off the path of its deliveries, on both stores: a claim does not wait for
 * the outcomes of the messages sent before it to be written (though the claims held stay bounded), outcomes that
 * end together are written in one group, and the first messages go out while the rest of the outbox is still
 * being expanded. Each is observed through a ledger that wraps the test's own.
 */
import { assert, layer } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DeliveryLedger } from "../src/DeliveryLedger.js"
import { Mailer } from "../src/Mailer.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import { SmsGateway } from "../src/SmsGateway.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import { countsOf, inEmptyStore, keysOf, storeBackends, storedLife } from "./utils/deliveryStores.js"

const fast: OutboxRelay.Options = {
  pollInterval: Duration.millis(50),
  lease: Duration.seconds(2),
  metricsInterval: Duration.millis(50),
  retry: {
    baseDelay: Duration.millis(10),
    maxDelay: Duration.millis(100),
    maxAttempts: 5,
    attemptTimeout: Duration.seconds(5)
  }
}

/** Senders that accept every message at once and note its key. */
const notingSenders = (sent: Array<string>) =>
  Layer.merge(
    Layer.succeed(
      Mailer,
      Mailer.of({
        from: "noreply@relay.test",
        send: (message) =>
          Effect.sync(() => {
            sent.push(message.key)
            return { messageId: `<${message.key}@relay.test>`, response: "250 OK" }
          })
      })
    ),
    Layer.succeed(
      SmsGateway,
      SmsGateway.of({ send: (message) => Effect.sync(() => (sent.push(message.key), { id: `sms:${message.key}` })) })
    )
  )

/** A relay over the test's ledger as `wrap` changes it. */
const startRelay = (
  sent: Array<string>,
  options: OutboxRelay.Options,
  wrap: (ledger: DeliveryLedger["Type"]) => DeliveryLedger["Type"]
) =>
  Layer.build(
    OutboxRelay.layer({ ...fast, ...options }).pipe(
      Layer.provide(TenantNotifications.layer()),
      Layer.provide(notingSenders(sent)),
      Layer.provide(Layer.effect(DeliveryLedger, Effect.map(DeliveryLedger, wrap)))
    )
  )

/** Waits until `done` holds, checking every 10 ms; dies when `within` passes first. */
const eventually = (done: () => boolean, what: string, within: Duration.DurationInput = Duration.seconds(10)) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    while (!done()) {
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* Effect.dieMessage(`never: ${what}`)
      yield* Effect.sleep(Duration.millis(10))
    }
  })

for (const backend of storeBackends) {
  layer(backend.suite, { timeout: "60 seconds", excludeTestServices: true })(
    `OutboxRelay throughput [${backend.name}]`,
    (it) => {
      it.effect("claims more while the outcomes of sent messages are written, up to twice its concurrency", () =>
        inEmptyStore(Effect.gen(function*() {
          const lives = yield* Effect.forEach(Array.from({ length: 12 }), () => storedLife({}))
          const sent: Array<string> = []
          const writing = yield* Deferred.make<void>()
          // Nothing is recorded until the test says so: the sent messages' claims stay held meanwhile.
          yield* startRelay(sent, { concurrency: 4 }, (ledger) => ({
            ...ledger,
            finishAll: (outcomes) => Effect.zipRight(Deferred.await(writing), ledger.finishAll(outcomes))
          }))
          // Released before the relay stops (which waits for the outcomes), should an assertion fail first.
          yield* Effect.addFinalizer(() => Deferred.succeed(writing, undefined))
          yield* eventually(() => sent.length >= 8, "8 messages sent while no outcome is written")
          yield* Effect.sleep(Duration.millis(300))
          assert.strictEqual(sent.length, 8, "no more than twice the concurrency before an outcome is written")

          yield* Deferred.succeed(writing, undefined)
          const ledger = yield* DeliveryLedger
          yield* eventually(() => sent.length === 12, "every message sent")
          for (;;) {
            const stats = yield* ledger.stats
            if (stats.pending === 0) {
              assert.deepStrictEqual(countsOf(stats), {
                unexpandedEvents: 0,
                pending: 0,
                inFlight: 0,
                delivered: 12,
                dead: 0
              })
              break
            }
            yield* Effect.sleep(Duration.millis(10))
          }
          assert.sameMembers(sent, lives.flatMap((life) => keysOf(life.events)))
        })))

      it.effect("writes the outcomes of messages sent together in one group (or two), not one by one", () =>
        inEmptyStore(Effect.gen(function*() {
          yield* Effect.forEach(Array.from({ length: 8 }), () => storedLife({}))
          const sent: Array<string> = []
          const groups: Array<number> = []
          yield* startRelay(sent, { concurrency: 8 }, (ledger) => ({
            ...ledger,
            finishAll: (outcomes) =>
              Effect.zipRight(Effect.sync(() => groups.push(outcomes.length)), ledger.finishAll(outcomes))
          }))
          yield* eventually(() => groups.reduce((sum, size) => sum + size, 0) === 8, "8 outcomes written")
          // One group, or two when the first outcome is taken before the others are in (the runtime yielded).
          assert.isAtMost(groups.length, 2, `one claim of 8, sent at once, makes one group: ${groups.join(", ")}`)
        })))

      it.effect("sends the first messages while the rest of the outbox is still being expanded", () =>
        inEmptyStore(Effect.gen(function*() {
          const lives = yield* Effect.forEach(Array.from({ length: 6 }), () => storedLife({}))
          const sent: Array<string> = []
          const expanding = yield* Deferred.make<void>()
          let expansions = 0
          // The second batch of the expansion hangs until the test lets it go.
          yield* startRelay(sent, { expandBatch: 2 }, (ledger) => ({
            ...ledger,
            expand: (limit) =>
              Effect.suspend(() => ++expansions === 2 ? Deferred.await(expanding) : Effect.void).pipe(
                Effect.zipRight(ledger.expand(limit))
              )
          }))
          yield* Effect.addFinalizer(() => Deferred.succeed(expanding, undefined))
          yield* eventually(() => sent.length === 2, "the first batch's messages sent")
          assert.deepStrictEqual(sent, lives.slice(0, 2).flatMap((life) => keysOf(life.events)))

          yield* Deferred.succeed(expanding, undefined)
          yield* eventually(() => sent.length === 6, "every message sent")
          assert.sameMembers(sent, lives.flatMap((life) => keysOf(life.events)))
        })))
    }
  )
}
