/**
 * How the cached repository reports trouble with its store: never as a failure of the caller's read or write,
 * always as a log line, throttled so that an outage of thousands of failed calls a minute does not flood the logs.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type { CacheError } from "../CacheError.js"
import { makeLogThrottle } from "./logThrottle.js"
import { annotateWhenTraced } from "./observability.js"

export interface CacheLog {
  /** A warning when its kind has not been logged lately (with how often it happened since), else a debug line. */
  readonly warnThrottled: (kind: string, message: string, annotations: Record<string, unknown>) => Effect.Effect<void>
  /** A failed cache step, noted and counted; the caller carries on as after a miss. */
  readonly cacheFailed: (
    counter: Metric.Metric.Counter<number>,
    message: string,
    key: string,
    error: CacheError
  ) => Effect.Effect<void>
}

export const makeCacheLog = (interval: Duration.DurationInput, storeAddress: string): CacheLog => {
  const warnings = makeLogThrottle(interval)
  const warnThrottled = (kind: string, message: string, annotations: Record<string, unknown>) =>
    Effect.suspend(() => {
      const counts = warnings.note(kind, kind, Date.now())
      return counts === undefined
        ? Effect.annotateLogs(Effect.logDebug(message), annotations)
        : Effect.annotateLogs(Effect.logWarning(message), {
          ...annotations,
          store: storeAddress,
          occurrences: counts.get(kind) ?? 1
        })
    })
  return {
    warnThrottled,
    cacheFailed: (counter, message, key, error) =>
      warnThrottled(`failed:${error.reason}`, message, { key, reason: error.reason, detail: error.detail }).pipe(
        Effect.zipRight(Metric.increment(counter))
      )
  }
}

/** How a cache step ended, on the current span when there is a tracer. */
export const outcome = (value: string): Effect.Effect<void> => annotateWhenTraced("tenant.cache.outcome", value)
