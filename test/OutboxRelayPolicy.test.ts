/**
 * The relay's retry policy and metrics without a relay: every wait it takes comes from `SendRetry`'s one backoff
 * curve (`SendRetry.delayOf`), and its counters and gauges say what the relay saw. The relay itself, end to end, is
 * in OutboxRelay.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import type { Outcome } from "../src/DeliveryLedger.js"
import { makeRelayCounters, reportBacklog } from "../src/internal/relayMetrics.js"
import { cancellationOf, finishRetry } from "../src/internal/relayPolicy.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import * as SendError from "../src/SendError.js"
import * as SendRetry from "../src/SendRetry.js"

const policy: SendRetry.Options = {
  baseDelay: Duration.millis(100),
  maxDelay: Duration.seconds(1),
  maxAttempts: 3,
  attemptTimeout: Duration.seconds(5)
}

const transient = new SendError.Transient({ channel: "email", detail: "was deferred", code: 451 })

const withRandom = (random: number) => Effect.withRandom(Random.fixed([random]))

describe("OutboxRelay policy: one backoff curve", () => {
  it.effect("backoff is the curve's point for the failures counted, whatever the random draw", () =>
    Effect.gen(function*() {
      for (const random of [0, 0.4, 0.9]) {
        for (const failures of [1, 2, 3, 4, 5, 12]) {
          const relay = yield* OutboxRelay.backoff(policy, failures, transient).pipe(withRandom(random))
          const curve = yield* SendRetry.delayOf(policy, failures).pipe(withRandom(random))
          assert.strictEqual(Duration.toMillis(relay), Duration.toMillis(curve), `${failures} failures, ${random}`)
        }
      }
    }))

  it.effect("a provider's wait replaces a shorter point of the curve, however long (the ledger holds the message)", () =>
    Effect.gen(function*() {
      const limited = (retryAfter: Duration.Duration) =>
        new SendError.RateLimited({ channel: "sms", detail: "slow down", retryAfter })
      const millisOf = (failures: number, error: SendError.SendError) =>
        Effect.map(OutboxRelay.backoff(policy, failures, error), Duration.toMillis).pipe(withRandom(0.5))
      assert.strictEqual(yield* millisOf(1, limited(Duration.millis(50))), 100, "the curve's 100 ms is longer")
      assert.strictEqual(yield* millisOf(1, limited(Duration.seconds(5))), 5000)
      assert.strictEqual(yield* millisOf(1, limited(Duration.days(1))), Duration.toMillis(Duration.days(1)))
    }))

  it.effect("a retry outcome waits the backoff", () =>
    Effect.gen(function*() {
      const outcome = yield* OutboxRelay.outcomeOfFailure(
        { channel: "email", failures: 1 },
        transient,
        policy,
        "resend"
      )
        .pipe(withRandom(0.5))
      assert.strictEqual(outcome._tag, "Retry")
      assert.strictEqual(outcome._tag === "Retry" ? Duration.toMillis(outcome.after) : 0, 200, "2 failures: 200 ms")
    }))

  it.effect("the default policy waits out about an hour of failures before the 20th attempt is the last", () =>
    Effect.gen(function*() {
      const waits = yield* Effect.forEach(
        Array.from({ length: OutboxRelay.defaultRetry.maxAttempts - 1 }, (_, i) => i + 1),
        (failures) => Effect.map(OutboxRelay.backoff(OutboxRelay.defaultRetry, failures, transient), Duration.toMillis)
      ).pipe(withRandom(0.5))
      assert.deepStrictEqual(waits.slice(0, 10), [1, 2, 4, 8, 16, 32, 64, 128, 256, 300].map((s) => s * 1000))
      const minutes = waits.reduce((sum, wait) => sum + wait, 0) / 60_000
      assert.isTrue(minutes > 55 && minutes < 65, `${minutes} minutes`)
    }))

  it.effect("writing outcomes is retried along the curve without jitter: 100, 200, 400, 800 ms, then given up", () =>
    Effect.gen(function*() {
      for (const random of [0, 0.99]) {
        const delays = yield* Schedule.run(Schedule.delays(finishRetry), 0, Array.from({ length: 8 }, () => undefined))
          .pipe(withRandom(random))
        // `Schedule.run` ends with the output of the step that stopped, whose delay reads as 0.
        assert.deepStrictEqual(Chunk.toReadonlyArray(delays).map(Duration.toMillis), [100, 200, 400, 800, 0])
      }
    }))

  it("an interrupted attempt is settled without another when the attempts are spent or the e-mail policy says so", () => {
    const claim = (channel: SendError.Channel, failures: number, interrupted = true) => ({
      channel,
      failures,
      interrupted
    })
    assert.isUndefined(cancellationOf(claim("email", 5, false), policy, "dead-letter"), "not interrupted")
    assert.isUndefined(cancellationOf(claim("email", 1), policy, "resend"))
    assert.isUndefined(cancellationOf(claim("sms", 1), policy, "dead-letter"), "SMS is deduplicated by key")
    assert.include(cancellationOf(claim("sms", 3), policy, "resend"), "gave up after 3 failed attempts")
    assert.include(cancellationOf(claim("email", 1), policy, "dead-letter"), "the e-mail policy is dead-letter")
  })
})

describe("OutboxRelay metrics", () => {
  it.effect("counts attempts by outcome, deliveries, dead letters by error, and outcomes fenced off", () =>
    Effect.gen(function*() {
      const sms = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) => Metric.tagged(metric, "channel", "sms")
      const watched = [
        Metric.tagged(sms(OutboxRelay.attemptsFinished), "outcome", "sent"),
        Metric.tagged(sms(OutboxRelay.attemptsFinished), "outcome", "Transient"),
        sms(OutboxRelay.delivered),
        Metric.tagged(sms(OutboxRelay.deadLettered), "error", "Permanent"),
        Metric.tagged(sms(OutboxRelay.deadLettered), "error", "Cancelled"),
        OutboxRelay.fenced
      ]
      const counts = Effect.all(watched.map((metric) => Effect.map(Metric.value(metric), (state) => state.count)))
      const before = yield* counts

      const counters = makeRelayCounters()
      const claim = { channel: "sms" } as const
      const permanent = new SendError.Permanent({ channel: "sms", detail: "no such number" })
      const outcomes: ReadonlyArray<readonly [Outcome, boolean]> = [
        [{ _tag: "Delivered", providerId: "p1" }, true],
        [{ _tag: "Delivered", providerId: "p2" }, true],
        [{ _tag: "Retry", error: transient, after: Duration.seconds(1) }, true],
        [{ _tag: "Dead", error: permanent, reason: "Permanent" }, true],
        [{ _tag: "Cancelled", reason: "interrupted" }, true],
        [{ _tag: "Delivered", providerId: "p3" }, false]
      ]
      yield* counters.attemptFinished("sms", "sent")
      yield* counters.attemptFinished("sms", "sent")
      yield* counters.attemptFinished("sms", "Transient")
      for (const [outcome, recorded] of outcomes) yield* counters.outcomeRecorded(claim, outcome, recorded)

      const after = yield* counts
      assert.deepStrictEqual(after.map((count, i) => count - (before[i] ?? 0)), [2, 1, 2, 1, 1, 1])
    }))

  it.effect("sets the backlog gauges, with the lag in seconds from now", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(100_000)
      yield* reportBacklog({
        unexpandedEvents: 0,
        undecodableEvents: 0,
        pending: 7,
        inFlight: 2,
        dead: 1,
        oldestPendingAt: Option.some(new Date(40_000))
      })
      const gauges = [OutboxRelay.pending, OutboxRelay.inFlight, OutboxRelay.dead, OutboxRelay.lag]
      const values = yield* Effect.forEach(gauges, (gauge) => Effect.map(Metric.value(gauge), (state) => state.value))
      assert.deepStrictEqual(values, [7, 2, 1, 60])
    }))
})
