/**
 * At most one line per key per interval about something that keeps happening (a provider that keeps failing),
 * each line with how often it happened since the previous one: the first occurrence is seen at once, and an
 * outage of hundreds of failures a minute does not flood the logs.
 */
import * as Duration from "effect/Duration"

export interface LogThrottle {
  /**
   * Notes that `kind` happened for `key` at `now` (epoch milliseconds). When a line is due (at the first
   * occurrence, then at the first once `interval` has passed since the last line), returns the occurrences
   * by kind since the last line, this one included; otherwise `undefined`.
   */
  readonly note: (key: string, kind: string, now: number) => ReadonlyMap<string, number> | undefined
}

export const makeLogThrottle = (interval: Duration.DurationInput): LogThrottle => {
  const millis = Duration.toMillis(Duration.decode(interval))
  const keys = new Map<string, { loggedAt: number; counts: Map<string, number> }>()
  return {
    note: (key, kind, now) => {
      let entry = keys.get(key)
      if (entry === undefined) {
        entry = { loggedAt: Number.NEGATIVE_INFINITY, counts: new Map() }
        keys.set(key, entry)
      }
      entry.counts.set(kind, (entry.counts.get(kind) ?? 0) + 1)
      // A clock set back is taken for an interval passed, rather than for a silence until it catches up.
      if (now >= entry.loggedAt && now - entry.loggedAt < millis) return undefined
      const counts = entry.counts
      entry.loggedAt = now
      entry.counts = new Map()
      return counts
    }
  }
}
