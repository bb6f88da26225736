import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { makeCircuitBreaker } from "../src/internal/circuitBreaker.js"

const breakerOf = (threshold: number) =>
  makeCircuitBreaker({ threshold, cooldown: "5 seconds", gauge: Metric.gauge(`test_breaker_${Math.random()}`) })

const failing = Effect.fail("down" as const)
const succeeding = Effect.succeed("up" as const)

describe("circuit breaker (internal)", () => {
  it.effect("opens after `threshold` failures in a row, skips calls for the cooldown, then lets one probe decide", () =>
    Effect.gen(function*() {
      const breaker = yield* breakerOf(2)
      let calls = 0
      const counted = Effect.zipRight(Effect.sync(() => calls++), failing)
      yield* Effect.flip(breaker.run(counted))
      yield* Effect.flip(breaker.run(counted))
      assert.deepStrictEqual(yield* breaker.run(counted), Option.none(), "open: not called")
      assert.strictEqual(calls, 2)
      yield* TestClock.adjust("5 seconds")
      yield* Effect.flip(breaker.run(counted))
      assert.strictEqual(calls, 3, "the probe was let through")
      assert.deepStrictEqual(yield* breaker.run(succeeding), Option.none(), "the failed probe opened it again")
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* breaker.run(succeeding), Option.some("up"))
      assert.deepStrictEqual(yield* breaker.run(succeeding), Option.some("up"), "closed again")
    }))

  it.effect("a success clears the failures counted while it was under way", () =>
    Effect.gen(function*() {
      const breaker = yield* breakerOf(2)
      const release = yield* Deferred.make<void>()
      const slow = yield* Effect.fork(breaker.run(Effect.zipRight(Deferred.await(release), succeeding)))
      yield* Effect.yieldNow()
      yield* Effect.flip(breaker.run(failing))
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual(yield* Fiber.join(slow), Option.some("up"))
      yield* Effect.flip(breaker.run(failing))
      assert.deepStrictEqual(yield* breaker.run(succeeding), Option.some("up"), "one failure in a row: still closed")
    }))
})
