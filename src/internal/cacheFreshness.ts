/**
 * The cache's bound on staleness across processes. Inline invalidation after each write is the fast path, but
 * it lives in the writing process: when that process cannot reach the store (an outage on its side only, a
 * stall, a restart of the store from disk), another process could read a value the write made stale. So every
 * process also follows the repository's changes in commit order (`ChangeFeed`) and applies them to the store,
 * recording beside the values how far they go (the store's mark). A process trusts the store only while it has
 * confirmed, recently enough, that the mark covers every change committed before some moment:
 *
 * - each poll notes the time it began and the feed's head then (above every change committed before it);
 * - once the store's mark reaches that head, the store holds every change committed before that time;
 * - the store is trusted until that time plus `maxStaleness`. A read that starts later goes to the repository.
 *
 * So no read returns a tenant older than a save acknowledged more than `maxStaleness` before the read started,
 * whatever the store or the network did. Memory tiers in front of the store follow the marks they hear on their
 * broadcast channel in the same way: a mark heard says every invalidation below it was broadcast before it.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { CacheError } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"
import type { RepositoryError } from "../TenantRepositoryError.js"
import type * as ChangeFeed from "./changeFeed.js"

export interface FreshnessOptions {
  readonly feed: ChangeFeed.Service
  readonly store: CacheStore.Service
  readonly marks: CacheStore.Marks
  /** Store calls go through the cache's circuit breaker: `None` when it is open. */
  readonly guarded: <A>(call: Effect.Effect<A, CacheError>) => Effect.Effect<Option.Option<A>, CacheError>
  readonly maxStaleness: Duration.Duration
  readonly interval: Duration.Duration
  /** The longest a value stays in the store: changes older than that cannot have left a stale value. */
  readonly window: Duration.Duration
  /** The keys a change touched: code and domain keys before id keys. */
  readonly keysOf: (changes: ReadonlyArray<ChangeFeed.Change>) => ReadonlyArray<string>
  /** Which mark: the cache's key prefix, so that caches sharing a store do not share a mark. */
  readonly markName: string
  /** Whether this process invalidated this event's keys itself, so that the feed need not do it again. */
  readonly appliedInline: (eventId: string) => boolean
  /** The store went back in time (restored from a snapshot): what was invalidated inline may be undone. */
  readonly forgetInline: () => void
}

export interface Freshness {
  /** Whether the store may be read now. */
  readonly trusted: () => boolean
  /** One poll, applied and confirmed; fails when the feed or the store fails. */
  readonly poll: Effect.Effect<void, CacheError | RepositoryError>
}

const DECIMAL = /^[0-9]{1,19}$/

/** Changes taken per poll; a backlog is worked through in polls that follow at once. */
const POLL_LIMIT = 1000
/** Heads remembered from recent polls, newest last: enough for a mark that trails the head by several polls. */
const SAMPLES = 64

export const makeFreshness = (options: FreshnessOptions): Freshness => {
  const maxStalenessMillis = Duration.toMillis(options.maxStaleness)
  // The highest mark this process has seen stored: one lower (or none) later means the store was rewound.
  let highestSeen: bigint | undefined
  const samples: Array<{ readonly at: number; readonly head: bigint }> = []
  let trustedUntil = 0

  /** The latest moment before which every committed change is below `mark`. */
  const confirmedAt = (mark: bigint): number | undefined => {
    for (let i = samples.length - 1; i >= 0; i--) {
      const sample = samples[i]
      if (sample !== undefined && sample.head <= mark) return sample.at
    }
    return undefined
  }

  const confirm = (mark: bigint) => {
    const at = confirmedAt(mark)
    if (at !== undefined) trustedUntil = Math.max(trustedUntil, at + maxStalenessMillis)
    const heard = options.marks.heard?.(options.markName)
    const heardAt = heard === undefined ? undefined : confirmedAt(heard)
    // Nothing heard yet (just subscribed): the memory tier waits for the first mark.
    options.marks.trustLocalUntil?.(heardAt === undefined ? 0 : heardAt + maxStalenessMillis)
  }

  const guardedCall = <A>(call: Effect.Effect<A, CacheError>) =>
    Effect.flatMap(
      options.guarded(call),
      Option.match({
        onNone: () => Effect.fail<CacheError | RepositoryError | "BreakerOpen">("BreakerOpen"),
        onSome: Effect.succeed
      })
    )

  const pollOnce: Effect.Effect<boolean, CacheError | RepositoryError | "BreakerOpen"> = Effect.gen(function*() {
    // The wall clock, not Effect's: the bound is on real time, and a test clock must not stretch it.
    const startedAt = Date.now()
    const stored = Option.getOrUndefined(yield* guardedCall(options.marks.read(options.markName)))
    // A mark that is not a decimal integer (written by something else) counts as none, and is replaced.
    const storedMark = stored !== undefined && DECIMAL.test(stored) ? BigInt(stored) : undefined
    if (highestSeen !== undefined && (storedMark === undefined || storedMark < highestSeen)) {
      options.forgetInline()
      highestSeen = storedMark
    }
    const from = storedMark ?? (yield* options.feed.start(options.window))
    const poll = yield* options.feed.poll(from, POLL_LIMIT)
    samples.push({ at: startedAt, head: poll.head })
    if (samples.length > SAMPLES) samples.shift()
    const keys = options.keysOf(poll.changes.filter((change) => !options.appliedInline(change.eventId)))
    if (keys.length > 0) yield* guardedCall(options.store.invalidate(keys))
    const advanced = yield* guardedCall(
      options.marks.advance(options.markName, stored, String(poll.next))
    )
    if (advanced) {
      if (highestSeen === undefined || poll.next > highestSeen) highestSeen = poll.next
      confirm(poll.next)
    }
    return poll.changes.length >= POLL_LIMIT
  })

  const poll: Effect.Effect<void, CacheError | RepositoryError> = pollOnce.pipe(
    // A backlog (after an outage) is worked through at once, not one page per interval.
    Effect.repeat({ while: (more) => more, times: 100 }),
    Effect.asVoid,
    Effect.catchIf((error): error is "BreakerOpen" => error === "BreakerOpen", () => Effect.void)
  )

  return { trusted: () => Date.now() < trustedUntil, poll }
}

/** Polls every `interval` in the scope, on the real clock; a failed poll is reported and the next one tries again. */
export const runFreshness = (
  freshness: Freshness,
  interval: Duration.Duration,
  scope: Scope.Scope,
  failed: (error: CacheError | RepositoryError) => Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.asVoid(
    Effect.forkIn(
      Effect.interruptible(Effect.repeat(Effect.catchAll(freshness.poll, failed), Schedule.spaced(interval))).pipe(
        Effect.withClock(Clock.make())
      ),
      scope
    )
  )
