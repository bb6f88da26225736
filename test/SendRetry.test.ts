import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import type { SendError } from "../src/SendError.js"
import { Ambiguous, isRetryable, Misconfigured, Permanent, RateLimited, Transient } from "../src/SendError.js"
import * as SendRetry from "../src/SendRetry.js"

const options: SendRetry.Options = {
  baseDelay: Duration.seconds(1),
  maxDelay: Duration.seconds(4),
  maxAttempts: 5,
  attemptTimeout: Duration.seconds(10)
}

/** A send that fails with the given errors in turn, then succeeds; it records when each attempt started. */
const scripted = (errors: ReadonlyArray<SendError>) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<ReadonlyArray<number>>([])
    const send = Effect.gen(function*() {
      const now = yield* TestClock.currentTimeMillis
      const attempt = (yield* Ref.updateAndGet(starts, (all) => [...all, now])).length
      const error = errors[attempt - 1]
      return error === undefined ? "sent" : yield* Effect.fail(error)
    })
    return { send, starts: Ref.get(starts) }
  })

describe("SendError.isRetryable", () => {
  it("retries Transient and RateLimited everywhere, Ambiguous on SMS only, Permanent and Misconfigured never", () => {
    const matrix = (["email", "sms"] as const).map((channel) => [
      channel,
      [
        new Transient({ channel, detail: "x" }),
        new RateLimited({ channel, detail: "x" }),
        new Ambiguous({ channel, detail: "x" }),
        new Permanent({ channel, detail: "x" }),
        new Misconfigured({ channel, detail: "x" })
      ].map(isRetryable)
    ])
    assert.deepStrictEqual(matrix, [
      ["email", [true, true, false, false, false]],
      ["sms", [true, true, true, false, false]]
    ])
  })
})

describe("SendRetry", () => {
  it.effect("backs off exponentially with jitter, capped at maxDelay, until the send succeeds", () =>
    Effect.gen(function*() {
      const { send, starts } = yield* scripted(
        Array.from({ length: 4 }, () => new Transient({ channel: "email", detail: "451" }))
      )
      const fiber = yield* Effect.fork(SendRetry.retry("email", options)(send))
      yield* TestClock.adjust(Duration.minutes(1))
      assert.strictEqual(yield* Fiber.join(fiber), "sent")
      const times = yield* starts
      const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0))
      assert.lengthOf(gaps, 4)
      // 1 s, 2 s, 4 s, then 8 s capped to 4 s; jitter moves each by at most 20%, the cap applies after it.
      const expected = [1000, 2000, 4000, 4000]
      // Jittered delays are fractional milliseconds: allow for rounding in the clock's arithmetic.
      const epsilon = 1e-6
      gaps.forEach((gap, i) => {
        assert.isAtLeast(gap, (expected[i] ?? 0) * 0.8 - epsilon)
        assert.isAtMost(gap, Math.min((expected[i] ?? 0) * 1.2, 4000) + epsilon)
      })
    }))

  it.effect("waits at least as long as a RateLimited answer asked", () =>
    Effect.gen(function*() {
      const { send, starts } = yield* scripted([
        new RateLimited({ channel: "sms", detail: "429", retryAfter: Duration.seconds(30) })
      ])
      const fiber = yield* Effect.fork(SendRetry.retry("sms", options)(send))
      yield* TestClock.adjust(Duration.seconds(29))
      assert.lengthOf(yield* starts, 1)
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* Fiber.join(fiber), "sent")
      assert.deepStrictEqual(yield* starts, [0, 30_000])
    }))

  it.effect("stops instead of waiting longer than maxRetryAfter, so a durable caller can come back later", () =>
    Effect.gen(function*() {
      const dayLong = new RateLimited({ channel: "sms", detail: "429", retryAfter: Duration.days(1) })
      const { send, starts } = yield* scripted([dayLong])
      const error = yield* Effect.flip(SendRetry.retry("sms", { ...options, maxRetryAfter: Duration.minutes(1) })(send))
      assert.strictEqual(error, dayLong)
      assert.lengthOf(yield* starts, 1)
    }))

  it.effect("stops at maxAttempts with the last error", () =>
    Effect.gen(function*() {
      const { send, starts } = yield* scripted(
        Array.from({ length: 10 }, (_, i) => new Transient({ channel: "email", detail: `attempt ${i + 1}` }))
      )
      const fiber = yield* Effect.fork(Effect.flip(SendRetry.retry("email", options)(send)))
      yield* TestClock.adjust(Duration.minutes(5))
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.detail, "attempt 5")
      assert.lengthOf(yield* starts, 5)
    }))

  it.effect("does not retry what cannot succeed, nor an ambiguous e-mail", () =>
    Effect.gen(function*() {
      for (
        const error of [
          new Permanent({ channel: "email", detail: "550" }),
          new Misconfigured({ channel: "sms", detail: "401" }),
          new Ambiguous({ channel: "email", detail: "dropped after the body" })
        ]
      ) {
        const { send, starts } = yield* scripted([error, error])
        const failed = yield* Effect.flip(SendRetry.retry(error.channel, options)(send))
        assert.strictEqual(failed, error)
        assert.lengthOf(yield* starts, 1)
      }
    }))

  it.effect("abandons an attempt past the timeout as Ambiguous, which SMS then retries", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const hangsOnce = Effect.flatMap(
        Ref.updateAndGet(attempts, (n) => n + 1),
        (n) => n === 1 ? Effect.never : Effect.succeed("sent")
      )
      const fiber = yield* Effect.fork(SendRetry.retry("sms", options)(hangsOnce))
      yield* TestClock.adjust(Duration.seconds(10))
      yield* TestClock.adjust(Duration.seconds(2))
      assert.strictEqual(yield* Fiber.join(fiber), "sent")
      assert.strictEqual(yield* Ref.get(attempts), 2)

      const email = yield* Effect.fork(Effect.flip(SendRetry.attempt("email", options)(Effect.never)))
      yield* TestClock.adjust(Duration.seconds(10))
      const error = yield* Fiber.join(email)
      assert.deepStrictEqual([error._tag, error.code], ["Ambiguous", "ETIMEDOUT"])
    }))
})

describe("SendRetry.delayOf, the one backoff curve", () => {
  const curve = { baseDelay: Duration.millis(100), maxDelay: Duration.seconds(1) }
  const millisOf = (retry: number, random: number, backoff: SendRetry.Backoff = curve) =>
    Effect.map(SendRetry.delayOf(backoff, retry), Duration.toMillis).pipe(
      Effect.withRandom(Random.fixed([random]))
    )

  it.effect("doubles from the base delay, times a jitter factor in [0.8, 1.2), capped after the jitter", () =>
    Effect.gen(function*() {
      const epsilon = 1e-9
      for (const [retry, base] of [[1, 100], [2, 200], [3, 400], [4, 800]] as const) {
        assert.closeTo(yield* millisOf(retry, 0), base * 0.8, epsilon)
        assert.closeTo(yield* millisOf(retry, 0.5), base, epsilon)
        assert.closeTo(yield* millisOf(retry, 0.999999), Math.min(base * 1.2, 1000), 1e-3)
      }
      assert.strictEqual(yield* millisOf(5, 0), 1000, "1600 ms jittered to 1280 ms, capped")
      assert.strictEqual(yield* millisOf(60, 0.5), 1000, "far along the curve, still the cap")
    }))

  it.effect("without jitter the delays are exact, whatever the random source says", () =>
    Effect.gen(function*() {
      const exact = { ...curve, maxDelay: Duration.infinity, jitter: false }
      const delays = yield* Effect.forEach([1, 2, 3, 4, 5], (retry) => millisOf(retry, 0.9, exact))
      assert.deepStrictEqual(delays, [100, 200, 400, 800, 1600])
    }))
})

describe("SendRetry.schedule follows the curve", () => {
  /** The delays a schedule asks for when fed `inputs`, with every random draw answering `random`. */
  const delaysOf = <In>(schedule: Schedule.Schedule<unknown, In>, inputs: ReadonlyArray<In>, random: number) =>
    Schedule.run(Schedule.delays(schedule), 0, inputs).pipe(
      Effect.map((delays) => Chunk.toReadonlyArray(delays).map(Duration.toMillis)),
      Effect.withRandom(Random.fixed([random]))
    )

  it.effect("waits delayOf(1), delayOf(2), ... between attempts, then stops at maxAttempts", () =>
    Effect.gen(function*() {
      const failures = Array.from({ length: 8 }, () => new Transient({ channel: "email", detail: "451" }))
      for (const random of [0, 0.3, 0.75]) {
        // `Schedule.run` ends with the output of the step that stopped, whose delay reads as 0.
        const steps = yield* delaysOf(SendRetry.schedule(options), failures, random)
        assert.strictEqual(steps.at(-1), 0)
        const delays = steps.slice(0, -1)
        assert.lengthOf(delays, options.maxAttempts - 1)
        const expected = yield* Effect.forEach(
          [1, 2, 3, 4],
          (retry) => Effect.map(SendRetry.delayOf(options, retry), Duration.toMillis)
        ).pipe(Effect.withRandom(Random.fixed([random])))
        delays.forEach((delay, i) => assert.closeTo(delay, expected[i] ?? Number.NaN, 1e-6, `retry ${i + 1}`))
      }
    }))

  it.effect("SendRetry.backoff recurs forever along the curve", () =>
    Effect.gen(function*() {
      const curve = { baseDelay: Duration.millis(500), maxDelay: Duration.seconds(30), jitter: false }
      const delays = yield* delaysOf(SendRetry.backoff(curve), Array.from({ length: 10 }, () => undefined), 0.5)
      assert.deepStrictEqual(delays, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000])
    }))
})
