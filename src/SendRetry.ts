/**
 * The one retry policy for sending a message: exponential backoff with jitter, a capped delay, a capped number
 * of attempts, each attempt under a timeout; only what `SendError.isRetryable` allows is retried, and a
 * `RateLimited` answer waits at least as long as the provider asked.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Mailer, SendRetry } from "tenant-infra"
 *
 * const sendWithRetries = (message: Mailer.EmailMessage) =>
 *   Effect.flatMap(Mailer.Mailer, (mailer) => SendRetry.retry("email")(mailer.send(message)))
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import type { SendError } from "./SendError.js"
import { Ambiguous, isRetryable } from "./SendError.js"

/**
 * The parameters of the backoff curve (see {@link delayOf}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Backoff {
  /** The first delay; each next one doubles (then jitter moves it by up to 20% either way). */
  readonly baseDelay: Duration.DurationInput
  /** No delay is longer than this, except a wait a provider asked for. */
  readonly maxDelay: Duration.DurationInput
  /**
   * Whether each delay is moved by up to 20% either way (default true), so that senders failing together do not
   * retry together.
   */
  readonly jitter?: boolean | undefined
}

/**
 * The wait before retry `retry` (1 for the first, after one failed attempt): `baseDelay` doubled for each retry
 * after the first, times a jitter factor drawn from [0.8, 1.2) unless `jitter` is false, then capped at
 * `maxDelay`. This is the one backoff curve: {@link backoff} and {@link schedule} step through it, and the outbox
 * relay asks it for the wait before a message's next attempt from the failures the ledger has counted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const delayOf = (curve: Backoff, retry: number): Effect.Effect<Duration.Duration> => {
  const base = Duration.toMillis(curve.baseDelay) * 2 ** Math.max(retry - 1, 0)
  const capped = (factor: number) => Duration.min(Duration.millis(base * factor), Duration.decode(curve.maxDelay))
  return curve.jitter === false ? Effect.succeed(capped(1)) : Effect.map(Random.nextRange(0.8, 1.2), capped)
}

/**
 * The backoff curve as a schedule that recurs forever, waiting {@link delayOf} before each recurrence; its
 * output is the recurrence's number from 0.
 *
 * @since 0.1.0
 * @category constructors
 */
export const backoff = (curve: Backoff): Schedule.Schedule<number> =>
  Schedule.modifyDelayEffect(Schedule.forever, (recurrence) => delayOf(curve, recurrence + 1))

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Backoff {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number
  /** How long one attempt may take before it is abandoned as `Ambiguous`. */
  readonly attemptTimeout: Duration.DurationInput
  /**
   * The longest wait a `RateLimited` answer may ask for and still be waited out here; a longer one ends the
   * retries with that error, so that a caller with a durable schedule (the outbox relay) can come back later
   * instead of holding the message in memory (default 1 minute).
   */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
}

/**
 * 500 ms, doubling to at most 30 s, 5 attempts, 30 s per attempt, a provider's wait honoured up to 1 minute.
 *
 * @since 0.1.0
 * @category models
 */
export const defaults: Options = {
  baseDelay: Duration.millis(500),
  maxDelay: Duration.seconds(30),
  maxAttempts: 5,
  attemptTimeout: Duration.seconds(30),
  maxRetryAfter: Duration.minutes(1)
}

/**
 * The schedule itself, fed with each attempt's error: it stops at the first error that is not retryable, at a
 * wait longer than `maxRetryAfter`, and after `maxAttempts` attempts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule = (options: Options = defaults): Schedule.Schedule<unknown, SendError> => {
  const maxRetryAfter = Duration.decode(options.maxRetryAfter ?? Duration.minutes(1))
  const worthWaiting = (error: SendError) =>
    isRetryable(error) &&
    !(error._tag === "RateLimited" && error.retryAfter !== undefined &&
      Duration.greaterThan(error.retryAfter, maxRetryAfter))
  return backoff(options).pipe(
    Schedule.intersect(Schedule.recurs(Math.max(options.maxAttempts - 1, 0))),
    Schedule.intersect(Schedule.identity<SendError>()),
    Schedule.modifyDelay(([, error], delay) =>
      error._tag === "RateLimited" && error.retryAfter !== undefined ? Duration.max(delay, error.retryAfter) : delay
    ),
    Schedule.whileInput(worthWaiting)
  )
}

/**
 * Runs one attempt under the attempt timeout. A send cut off by the timeout may have gone out, so it fails as
 * `Ambiguous` (the senders' own socket timeouts, which are shorter, classify by how far the exchange got).
 *
 * @since 0.1.0
 * @category combinators
 */
export const attempt =
  (channel: SendError["channel"], options: Options = defaults) =>
  <A, R>(send: Effect.Effect<A, SendError, R>): Effect.Effect<A, SendError, R> =>
    Effect.timeoutFail(send, {
      duration: options.attemptTimeout,
      onTimeout: () =>
        new Ambiguous({
          channel,
          detail: `attempt timed out after ${Duration.format(options.attemptTimeout)}`,
          code: "ETIMEDOUT"
        })
    })

/**
 * Sends with the policy: every attempt under the timeout, retried by {@link schedule}. Fails with the last
 * attempt's error.
 *
 * @since 0.1.0
 * @category combinators
 */
export const retry =
  (channel: SendError["channel"], options: Options = defaults) =>
  <A, R>(send: Effect.Effect<A, SendError, R>): Effect.Effect<A, SendError, R> =>
    Effect.retry(attempt(channel, options)(send), schedule(options))
