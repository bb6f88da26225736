/**
 * The cached repository's write path: after a write that may have committed, every key the tenant had or has is
 * invalidated; an invalidation that cannot reach the store is kept and retried (`pendingInvalidations`), and
 * the events invalidated here are remembered, so that the change feed need not invalidate them again.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as CacheStore from "../CacheStore.js"
import type { Tenant } from "../Tenant.js"
import * as TenantCache from "../TenantCache.js"
import type { TenantEvent } from "../TenantEvent.js"
import { type CacheLog, outcome } from "./cacheLog.js"
import * as CacheMetrics from "./cacheMetrics.js"
import type { CircuitBreaker } from "./circuitBreaker.js"
import { spanWhenTraced } from "./observability.js"
import type { Keys, PendingInvalidations } from "./pendingInvalidations.js"

export interface WritePathOptions {
  readonly store: CacheStore.CacheStore["Type"]
  readonly tier: string
  readonly prefix: string
  readonly observed: CacheMetrics.TierMetrics
  readonly log: CacheLog
  readonly breaker: CircuitBreaker
  readonly pending: PendingInvalidations
}

export interface WritePath {
  /** Called with a write's exit: invalidates the keys of `tenant` and `events` unless the write was refused. */
  readonly invalidateAfter: (
    tenant: Tenant,
    events: ReadonlyArray<TenantEvent>
  ) => <E extends { readonly _tag: string }>(exit: Exit.Exit<void, E>) => Effect.Effect<void>
  /** Whether this process invalidated the keys of the event itself (and none of them is left pending). */
  readonly appliedInline: (eventId: string) => boolean
  /** Forgets every event applied inline: the store was found rewound, so they must be applied again. */
  readonly forgetInline: () => void
}

// Failures after which the repository wrote nothing; after any other end (success, a RepositoryError that may
// have come after the commit, an interruption, a defect) the tenant's keys are invalidated.
const REFUSALS: ReadonlySet<string> = new Set(["TenantAlreadyExists", "ConcurrencyConflict", "TenantNotFound"])

const mayHaveWritten = <E extends { readonly _tag: string }>(exit: Exit.Exit<void, E>): boolean =>
  Exit.isSuccess(exit) ||
  Option.match(Cause.failureOption(exit.cause), { onNone: () => true, onSome: (error) => !REFUSALS.has(error._tag) })

/** Event ids remembered as invalidated inline, the oldest forgotten first. */
const MAX_APPLIED_INLINE = 10_000

export const makeWritePath = (options: WritePathOptions): WritePath => {
  const { log, observed, pending, prefix, store, tier } = options
  const guarded = options.breaker.run

  // The write has committed and succeeds; the keys are kept for a retry, logged and counted.
  const invalidationKept = (keys: Keys, reason: string, detail: string) =>
    log.warnThrottled(
      "invalidationKept",
      "TenantCache: invalidation did not reach the store; retrying it, reading the repository",
      { keys: keys.map(([, key]) => key).join(" "), reason, detail }
    ).pipe(
      Effect.zipRight(pending.keep(keys)),
      Effect.zipRight(CacheMetrics.countKeys(observed, keys, (metrics) => metrics.invalidationFailed)),
      Effect.zipRight(outcome("kept"))
    )

  const invalidate = (keys: Keys) =>
    guarded(store.invalidate(keys.map(([, key]) => key))).pipe(
      Effect.flatMap(Option.match({
        onNone: () => invalidationKept(keys, "BreakerOpen", "the circuit breaker is open"),
        onSome: () => CacheMetrics.countKeys(observed, keys, (metrics) => metrics.invalidated)
      })),
      Effect.catchAll((error) =>
        Effect.zipRight(
          CacheMetrics.countKeys(observed, keys, (metrics) => metrics.invalidateError),
          invalidationKept(keys, error.reason, error.detail)
        )
      ),
      (effect) =>
        spanWhenTraced(effect, "TenantCache.invalidate", {
          captureStackTrace: false,
          attributes: { "tenant.cache.tier": tier, "tenant.cache.keys": keys.map(([, key]) => key) }
        })
    )

  // Events whose keys this process invalidated itself: its feed need not invalidate them again (each time it did,
  // a value filled since would be dropped for nothing), unless the store is found rewound.
  const appliedInline = new Set<string>()
  const markApplied = (events: ReadonlyArray<TenantEvent>) => {
    for (const event of events) appliedInline.add(event.eventId)
    for (const eventId of appliedInline) {
      if (appliedInline.size <= MAX_APPLIED_INLINE) break
      appliedInline.delete(eventId)
    }
  }

  /** After a write that may have committed, every key it touched: see `TenantCache.keysOfWrite` for the order. */
  const invalidateAfter =
    (tenant: Tenant, events: ReadonlyArray<TenantEvent>) =>
    <E extends { readonly _tag: string }>(exit: Exit.Exit<void, E>): Effect.Effect<void> => {
      if (!mayHaveWritten(exit)) return Effect.void
      const { ids, lookups } = TenantCache.keysOfWrite(tenant, events, prefix)
      return Effect.zipRight(invalidate(lookups), invalidate(ids)).pipe(
        Effect.zipRight(Effect.sync(() => {
          // Applied inline only if none of the keys is left pending.
          if (![...lookups, ...ids].some(([, key]) => pending.has(key))) markApplied(events)
        }))
      )
    }

  return {
    invalidateAfter,
    appliedInline: (eventId) => appliedInline.has(eventId),
    forgetInline: () => appliedInline.clear()
  }
}
