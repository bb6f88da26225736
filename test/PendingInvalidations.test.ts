/**
 * The cache's kept invalidations on their own, over a store that is a plain record of one `invalidate` and a
 * circuit breaker that is a switch: what is kept, what a retry forgets, in which order keys reach the store, the
 * bound, and the background retry.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"
import { randomUUID } from "node:crypto"
import { CacheError } from "../src/CacheError.js"
import * as CacheMetrics from "../src/internal/cacheMetrics.js"
import type { Keys } from "../src/internal/pendingInvalidations.js"
import { makePendingInvalidations } from "../src/internal/pendingInvalidations.js"

/** The store and the breaker, seen from the test. */
interface Fake {
  /** Every batch `invalidate` was called with, in order. */
  readonly calls: Array<ReadonlyArray<string>>
  /** Each call fails while set. */
  down: boolean
  /** While set, a call reaches the store only once it is done. */
  hold: Deferred.Deferred<void> | undefined
  /** The breaker: while open, no call is made. */
  open: boolean
}

const fakeStore = (fake: Fake) => ({
  invalidate: (keys: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      fake.calls.push(keys)
      if (fake.down) {
        return Effect.fail(new CacheError({ reason: "Unreachable", operation: "invalidate", detail: "test" }))
      }
      return fake.hold === undefined ? Effect.void : Deferred.await(fake.hold)
    })
})

/** A kept-invalidations queue of a tier of its own (so its counters are its own), retried hourly unless told. */
const pendingOver = (
  fake: Fake,
  options: { readonly maxPending?: number; readonly retryInterval?: Duration.DurationInput } = {}
) => {
  const tier = `test-${randomUUID()}`
  return Effect.map(
    makePendingInvalidations({
      store: fakeStore(fake),
      guarded: (call) => Effect.suspend(() => fake.open ? Effect.succeedNone : Effect.asSome(call)),
      maxPending: options.maxPending ?? 100,
      retryInterval: options.retryInterval ?? "1 hour",
      metrics: CacheMetrics.tierMetrics(tier),
      tier
    }),
    (pending) => ({ pending, tier })
  )
}

const newFake = (): Fake => ({ calls: [], down: false, hold: undefined, open: false })

const invalidated = (tier: string, lookup: string) =>
  Effect.map(
    Metric.value(CacheMetrics.invalidations.pipe(Metric.tagged("tier", tier), Metric.tagged("lookup", lookup))),
    (state) => state.count
  )

const ids = (...keys: ReadonlyArray<string>): Keys => keys.map((key) => ["id", key] as const)

describe("PendingInvalidations", () => {
  it.scoped("keeps keys until the store takes them, then forgets them and counts each as invalidated", () =>
    Effect.gen(function*() {
      const fake = newFake()
      const { pending, tier } = yield* pendingOver(fake)
      assert.isTrue(pending.isEmpty())
      assert.isTrue(yield* pending.flush, "nothing kept: clear at once")
      assert.deepStrictEqual(fake.calls, [], "and the store is not asked")

      yield* pending.keep([["code", "c"], ["id", "i"]])
      assert.isFalse(pending.isEmpty())
      assert.isTrue(pending.has("c") && pending.has("i"))

      fake.down = true
      assert.isFalse(yield* pending.flush, "a failed retry keeps every key")
      assert.isTrue(pending.has("c") && pending.has("i"))
      fake.open = true
      assert.isFalse(yield* pending.flush, "a retry the breaker skips keeps every key")
      assert.strictEqual(fake.calls.length, 1, "the breaker skipped the store")

      fake.down = false
      fake.open = false
      assert.isTrue(yield* pending.flush)
      assert.deepStrictEqual(fake.calls.at(-1), ["c", "i"])
      assert.isTrue(pending.isEmpty())
      assert.isFalse(pending.has("c") || pending.has("i"))
      assert.strictEqual(yield* invalidated(tier, "code"), 1)
      assert.strictEqual(yield* invalidated(tier, "id"), 1)
      assert.isTrue(yield* pending.flush)
      assert.strictEqual(fake.calls.length, 2, "nothing left to send")
    }))

  it.scoped("does not forget a key kept again while a retry that started before was under way", () =>
    Effect.gen(function*() {
      const fake = newFake()
      const { pending, tier } = yield* pendingOver(fake)
      yield* pending.keep(ids("again", "once"))
      fake.hold = yield* Deferred.make<void>()
      const retry = yield* Effect.fork(pending.flush)
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      assert.deepStrictEqual(fake.calls, [["again", "once"]], "the retry is at the store")

      // A second write's invalidation failed meanwhile: the store may have taken the retry before it.
      yield* pending.keep(ids("again"))
      yield* Deferred.succeed(fake.hold, undefined)
      fake.hold = undefined
      assert.isFalse(yield* Fiber.join(retry), "the key kept again is still pending")
      assert.isTrue(pending.has("again"))
      assert.isFalse(pending.has("once"))
      assert.strictEqual(yield* invalidated(tier, "id"), 1, "only the key the retry covered is counted")

      assert.isTrue(yield* pending.flush)
      assert.deepStrictEqual(fake.calls.at(-1), ["again"])
      assert.strictEqual(yield* invalidated(tier, "id"), 2)
    }))

  it.scoped("sends keys in the order they were last kept, so a write's id keys follow its code and domain keys", () =>
    Effect.gen(function*() {
      const fake = newFake()
      const { pending } = yield* pendingOver(fake)
      // Two writes of one tenant whose invalidations failed, each keeping code and domain keys before its id key.
      yield* pending.keep([["code", "code:a"], ["domain", "domain:a"]])
      yield* pending.keep(ids("id:t"))
      yield* pending.keep([["code", "code:b"], ["domain", "domain:a"]])
      yield* pending.keep(ids("id:t"))
      assert.isTrue(yield* pending.flush)
      assert.deepStrictEqual(fake.calls, [["code:a", "code:b", "domain:a", "id:t"]])
    }))

  it.scoped("has every caller that comes while a retry is under way wait for it rather than send its own", () =>
    Effect.gen(function*() {
      const fake = newFake()
      const { pending } = yield* pendingOver(fake)
      yield* pending.keep(ids("k"))
      fake.hold = yield* Deferred.make<void>()
      const callers = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.fork(pending.flush))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      yield* Deferred.succeed(fake.hold, undefined)
      for (const caller of callers) assert.isTrue(yield* Fiber.join(caller))
      assert.deepStrictEqual(fake.calls, [["k"]])
    }))

  it.scoped("keeps at most maxPending keys, giving up the oldest with an error naming them", () =>
    Effect.gen(function*() {
      const fake = newFake()
      const { pending } = yield* pendingOver(fake, { maxPending: 3 })
      const lines: Array<{ readonly level: string; readonly message: unknown; readonly keys: unknown }> = []
      const logger = Logger.make(({ annotations, logLevel, message }) =>
        lines.push({ level: logLevel.label, message, keys: Option.getOrUndefined(HashMap.get(annotations, "keys")) })
      )
      yield* pending.keep(ids("k1", "k2")).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      assert.deepStrictEqual(lines, [], "under the bound: nothing given up")
      yield* pending.keep(ids("k3", "k4", "k5")).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      assert.lengthOf(lines, 1)
      assert.strictEqual(lines[0]?.level, "ERROR")
      assert.strictEqual(lines[0]?.keys, "k1 k2")
      assert.isFalse(pending.has("k1") || pending.has("k2"))
      assert.isTrue(yield* pending.flush)
      assert.deepStrictEqual(fake.calls, [["k3", "k4", "k5"]])
    }))

  it.effect("retries in the background every retryInterval while its scope is open, and stops when it closes", () =>
    Effect.gen(function*() {
      const fake = newFake()
      const scope = yield* Scope.make()
      const forked = yield* Supervisor.track
      const { pending } = yield* Scope.extend(pendingOver(fake, { retryInterval: "1 second" }), scope).pipe(
        Effect.supervised(forked)
      )
      fake.down = true
      yield* pending.keep(ids("k"))
      assert.deepStrictEqual(fake.calls, [], "keeping asks nothing of the store")
      // The fiber's first round may come as it starts, before its first interval: count from the second.
      yield* TestClock.adjust("1 second")
      const first = fake.calls.length
      assert.isAtLeast(first, 1)
      assert.isTrue(pending.has("k"), "still down: still kept")
      yield* TestClock.adjust("1 second")
      assert.lengthOf(fake.calls, first + 1, "one retry per interval")
      fake.down = false
      yield* TestClock.adjust("1 second")
      assert.lengthOf(fake.calls, first + 2)
      assert.deepStrictEqual(new Set(fake.calls.map((keys) => keys.join(" "))), new Set(["k"]))
      assert.isTrue(pending.isEmpty(), "reached the store without any caller")

      yield* Scope.close(scope, Exit.void)
      assert.lengthOf(yield* forked.value, 0, "no fiber outlives the scope")
      yield* pending.keep(ids("later"))
      yield* TestClock.adjust("1 minute")
      assert.lengthOf(fake.calls, first + 2, "no retry once the scope is closed")
    }))
})
