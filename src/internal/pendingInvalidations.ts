/**
 * Invalidations that could not reach the store (a `CacheError`, or skipped while the circuit breaker is open),
 * kept in this process and retried until the store takes them: every `retryInterval` in a fiber of the layer's
 * scope, and whenever the cache is about to read or fill, one retry at a time. While any is kept, the cache
 * bypasses the store, so a tenant invalidated during an outage is never served from the store after it.
 *
 * The keys are retried in the order they were last kept, so a write's code and domain keys, which it keeps
 * before its id keys, still go first. Past `maxPending` keys the oldest is given up and logged; the cache's
 * freshness bound across processes covers it.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { CacheError } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"
import type * as TenantCache from "../TenantCache.js"
import type { TierMetrics } from "./cacheMetrics.js"
import { countKeys } from "./cacheMetrics.js"
import { spanWhenTraced } from "./observability.js"
import { makeSingleFlight } from "./singleFlight.js"

/** Keys to invalidate, each with the lookup it serves. */
export type Keys = ReadonlyArray<readonly [TenantCache.Lookup, string]>

export interface PendingOptions {
  /** Only `invalidate` is called. */
  readonly store: Pick<CacheStore.Service, "invalidate">
  /** Store calls go through the cache's circuit breaker: `None` when it is open. */
  readonly guarded: <A>(call: Effect.Effect<A, CacheError>) => Effect.Effect<Option.Option<A>, CacheError>
  /** Most keys kept; past it the oldest is given up. */
  readonly maxPending: number
  readonly retryInterval: Duration.DurationInput
  /** The tier's counters: a key retried into the store counts as invalidated. */
  readonly metrics: TierMetrics
  /** The tier's name, for the span. */
  readonly tier: string
}

export interface PendingInvalidations {
  /** Whether no invalidation is kept: the cache may use the store. */
  readonly isEmpty: () => boolean
  readonly has: (key: string) => boolean
  /** Keeps `keys` for a retry, as the newest; logs the keys given up past `maxPending`. */
  readonly keep: (keys: Keys) => Effect.Effect<void>
  /**
   * Retries every kept invalidation (when the breaker lets it); answers whether none is kept any more. Callers
   * that come while a retry is under way wait for it rather than send the whole batch again: during an outage
   * every read comes here first.
   */
  readonly flush: Effect.Effect<boolean>
}

/** The kept invalidations of one cache; their background retry runs in the scope until it closes. */
export const makePendingInvalidations = (
  options: PendingOptions
): Effect.Effect<PendingInvalidations, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { guarded, maxPending, metrics, store, tier } = options
    const scope = yield* Effect.scope

    // Each key with the turn at which it was (last) kept, so that a retry that started before a key was kept
    // again does not forget it.
    const pending = new Map<string, { readonly lookup: TenantCache.Lookup; readonly turn: number }>()
    let turn = 0

    const keep = (keys: Keys) =>
      Effect.suspend(() => {
        const dropped: Array<string> = []
        for (const [lookup, key] of keys) {
          pending.delete(key)
          pending.set(key, { lookup, turn: ++turn })
        }
        while (pending.size > maxPending) {
          const oldest = pending.keys().next()
          if (oldest.done === true) {
            break
          }
          pending.delete(oldest.value)
          dropped.push(oldest.value)
        }
        return dropped.length === 0 ? Effect.void : Effect.logError(
          "TenantCache: too many invalidations pending; giving up the oldest, which may serve a stale tenant"
        ).pipe(Effect.annotateLogs({ keys: dropped.join(" ") }))
      })

    const retry: Effect.Effect<boolean> = Effect.suspend(() => {
      if (pending.size === 0) {
        return Effect.succeed(true)
      }
      const batch = Array.from(pending, ([key, { lookup, turn }]) => ({ key, lookup, turn }))
      return guarded(store.invalidate(batch.map(({ key }) => key))).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(false),
          onSome: () =>
            Effect.suspend(() => {
              const done = batch.filter(({ key, turn }) => pending.get(key)?.turn === turn)
              for (const { key } of done) pending.delete(key)
              return Effect.as(
                countKeys(metrics, done.map(({ key, lookup }) => [lookup, key] as const), (m) => m.invalidated),
                pending.size === 0
              )
            })
        })),
        Effect.catchAll((error) =>
          Effect.logDebug("TenantCache: retrying pending invalidations failed; still bypassing the store").pipe(
            Effect.annotateLogs({ pending: pending.size, reason: error.reason, detail: error.detail }),
            Effect.as(false)
          )
        ),
        (effect) =>
          spanWhenTraced(effect, "TenantCache.retryInvalidations", {
            captureStackTrace: false,
            attributes: { "tenant.cache.tier": tier, "tenant.cache.pending": batch.length }
          })
      )
    })

    const shared = makeSingleFlight<boolean, never>(scope)

    const flush: Effect.Effect<boolean> = Effect.suspend(() =>
      pending.size === 0 ? Effect.succeed(true) : shared("flush", retry)
    )

    // Retried in the background too, so that kept invalidations reach the store without a read.
    yield* Effect.forkIn(Effect.interruptible(Effect.repeat(flush, Schedule.spaced(options.retryInterval))), scope)

    return {
      isEmpty: () => pending.size === 0,
      has: (key) => pending.has(key),
      keep,
      flush
    }
  })
