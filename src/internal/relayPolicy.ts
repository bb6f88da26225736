/**
 * The outbox relay's retry policy: what a failed attempt leads to (another attempt after a backoff, or a dead
 * letter), what an interrupted attempt leads to, and how the writing of outcomes is retried. The delays all come
 * from `SendRetry`'s one backoff curve.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { Claim, Outcome } from "../DeliveryLedger.js"
import type { SendError } from "../SendError.js"
import * as SendRetry from "../SendRetry.js"

export type AmbiguousEmailPolicy = "resend" | "dead-letter"

export const defaultRetry: SendRetry.Options = {
  baseDelay: Duration.seconds(1),
  maxDelay: Duration.minutes(5),
  maxAttempts: 20,
  attemptTimeout: Duration.seconds(30)
}

export const backoff = (
  policy: SendRetry.Options,
  failures: number,
  error: SendError
): Effect.Effect<Duration.Duration> =>
  Effect.map(
    SendRetry.delayOf(policy, failures),
    (delay) =>
      error._tag === "RateLimited" && error.retryAfter !== undefined
        ? Duration.max(delay, error.retryAfter)
        : delay
  )

export const outcomeOfFailure = (
  claim: Pick<Claim, "channel" | "failures">,
  error: SendError,
  policy: SendRetry.Options,
  ambiguousEmail: AmbiguousEmailPolicy
): Effect.Effect<Outcome> => {
  if (error._tag === "Permanent" || error._tag === "Misconfigured") {
    return Effect.succeed({ _tag: "Dead", error, reason: `${error._tag}: ${error.message}` })
  }
  if (error._tag === "Ambiguous" && claim.channel === "email" && ambiguousEmail === "dead-letter") {
    return Effect.succeed({
      _tag: "Dead",
      error,
      reason: `Ambiguous, and the e-mail policy is dead-letter: ${error.message}`
    })
  }
  const failures = claim.failures + 1
  if (failures >= policy.maxAttempts) {
    return Effect.succeed({
      _tag: "Dead",
      error,
      reason: `gave up after ${failures} failed attempts; the last: ${error.message}`
    })
  }
  return Effect.map(backoff(policy, failures, error), (after): Outcome => ({ _tag: "Retry", error, after }))
}

/**
 * A claim whose previous attempt never finished, settled without an attempt when the policy says so: the reason,
 * or `undefined` when the message is to be sent again.
 */
export const cancellationOf = (
  claim: Pick<Claim, "channel" | "failures" | "interrupted">,
  policy: SendRetry.Options,
  ambiguousEmail: AmbiguousEmailPolicy
): string | undefined => {
  if (!claim.interrupted) return undefined
  if (claim.failures >= policy.maxAttempts) {
    return `gave up after ${claim.failures} failed attempts; the last was interrupted and may have been delivered`
  }
  if (claim.channel === "email" && ambiguousEmail === "dead-letter") {
    return "the previous attempt was interrupted and may have been delivered; the e-mail policy is dead-letter"
  }
  return undefined
}

/**
 * Writing a group of outcomes, retried for a moment so that a short outage of the ledger does not turn a sent
 * message into an ambiguous one: the backoff curve from 100 ms, without jitter (one writer per relay, nothing to
 * spread) or cap (its four retries end at 800 ms), so 100, 200, 400 and 800 ms.
 */
export const finishRetry: Schedule.Schedule<unknown> = SendRetry.backoff({
  baseDelay: Duration.millis(100),
  maxDelay: Duration.infinity,
  jitter: false
}).pipe(Schedule.intersect(Schedule.recurs(4)))
