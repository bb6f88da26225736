/**
 * The cached repository's read path: a lookup answered from the store when it can be, else loaded from the
 * repository (one load per key and version at a time) and filled at the version the miss read, so that a fill
 * never undoes an invalidation made after it read. `CachedTenantRepository`'s module comment states the rules;
 * this module keeps them.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import type * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import type { CacheError } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"
import type { Tenant } from "../Tenant.js"
import * as TenantCache from "../TenantCache.js"
import type { RepositoryError } from "../TenantRepositoryError.js"
import { type CacheLog, outcome } from "./cacheLog.js"
import type { TierMetrics } from "./cacheMetrics.js"
import type { CircuitBreaker } from "./circuitBreaker.js"
import { isTraced, spanWhenTraced } from "./observability.js"
import type { PendingInvalidations } from "./pendingInvalidations.js"
import { makeSingleFlight } from "./singleFlight.js"

export interface ReadPathOptions {
  readonly store: CacheStore.CacheStore["Type"]
  readonly tier: string
  readonly prefix: string
  readonly observed: TierMetrics
  readonly log: CacheLog
  readonly breaker: CircuitBreaker
  readonly pending: PendingInvalidations
  /** Whether the store is confirmed fresh enough to be read (see `maxStaleness`). */
  readonly trusted: () => boolean
  /** How long a found tenant and an absence stay cached, before jitter. */
  readonly foundMillis: number
  readonly absentMillis: number
  /** How far each TTL is spread, as a fraction of it (0 to 0.9). */
  readonly jitter: number
  /** How many decoded tenants are remembered (see `Options.decodedTenants`). */
  readonly decodedTenants: number
  /** Where loads run, so that a caller interrupted does not cancel a load that others share. */
  readonly scope: Scope.Scope
}

/** A load from the repository for one lookup. */
export type Load = () => Effect.Effect<Option.Option<Tenant>, RepositoryError>

/** Answers a lookup of `input` by `lookup`: from the store, or by `load` and a fill. */
export type ReadThrough = (
  lookup: TenantCache.Lookup,
  input: string,
  load: Load
) => Effect.Effect<Option.Option<Tenant>, RepositoryError>

/** What the cache answered for a key. */
type Read =
  | { readonly _tag: "Hit"; readonly found: Option.Option<Tenant> }
  | { readonly _tag: "Miss"; readonly version: string }
  | { readonly _tag: "Unavailable" }

const unavailable: Read = { _tag: "Unavailable" }

export const makeReadPath = (options: ReadPathOptions): ReadThrough => {
  const {
    absentMillis,
    breaker,
    decodedTenants,
    foundMillis,
    jitter,
    log,
    observed,
    pending,
    prefix,
    scope,
    store,
    tier,
    trusted
  } = options
  /** A store call, or `None` without calling the store while the breaker is open. */
  const guarded = breaker.run

  /**
   * A store call made only once no invalidation is pending, while the store is confirmed fresh (see
   * `maxStaleness`) and while the breaker lets it; else `None`.
   */
  const whenClear = <A>(call: Effect.Effect<A, CacheError>): Effect.Effect<Option.Option<A>, CacheError> =>
    Effect.suspend(() =>
      !trusted()
        ? Effect.succeedNone
        : pending.isEmpty()
        ? guarded(call)
        : Effect.flatMap(pending.flush, (clear) => clear ? guarded(call) : Effect.succeed(Option.none()))
    )

  const ttlOf = (found: Option.Option<Tenant>): Effect.Effect<Duration.Duration> => {
    const millis = Option.isSome(found) ? foundMillis : absentMillis
    const spread = jitter === 0 ? Effect.succeed(1) : Random.nextRange(1 - jitter, 1 + jitter)
    return Effect.map(spread, (factor) => Duration.millis(Math.max(1, Math.round(millis * factor))))
  }

  const spanOf = (lookup: TenantCache.Lookup, key: string) => ({
    captureStackTrace: false,
    attributes: { "tenant.cache.tier": tier, "tenant.cache.lookup": lookup, "tenant.cache.key": key }
  })

  const decode = TenantCache.makeDecoder(decodedTenants)

  const bypassed = Effect.as(outcome("bypassed"), unavailable)

  const missAt = (lookup: TenantCache.Lookup, version: string): Effect.Effect<Read> =>
    Effect.as(Effect.zipRight(Metric.increment(observed[lookup].miss), outcome("miss")), { _tag: "Miss", version })

  // An older shape, or garbage: a miss. Deleting it keeps it from being read again should the load fail; a
  // delete leaves the version alone, so the fill that follows is still accepted.
  const undecodable = (lookup: TenantCache.Lookup, key: string, error: ParseError): Effect.Effect<Read, CacheError> =>
    Effect.logDebug("TenantCache: a cached value does not decode; dropping it").pipe(
      Effect.annotateLogs({ key, error: error.message }),
      Effect.zipRight(Metric.increment(observed[lookup].miss)),
      Effect.zipRight(Metric.increment(observed[lookup].decodeError)),
      Effect.zipRight(outcome("undecodable")),
      Effect.zipRight(
        Effect.catchAll(
          guarded(store.deleteMany([key])),
          (error) =>
            log.cacheFailed(observed[lookup].getError, "TenantCache: dropping an undecodable value failed", key, error)
        )
      ),
      Effect.zipRight(whenClear(store.getVersioned(key))),
      Effect.map(Option.match({
        onNone: () => unavailable,
        onSome: ({ version }): Read => ({ _tag: "Miss", version })
      }))
    )

  const fromValue = (
    lookup: TenantCache.Lookup,
    key: string,
    value: string,
    traced: boolean
  ): Effect.Effect<Read, CacheError> => {
    const decoded = decode(key, value)
    if (Either.isLeft(decoded)) {
      return undecodable(lookup, key, decoded.left)
    }
    const hit: Read = { _tag: "Hit", found: decoded.right }
    const counted = Metric.increment(observed[lookup].hit)
    return traced ? Effect.as(Effect.zipRight(counted, outcome("hit")), hit) : Effect.as(counted, hit)
  }

  /** A key without a value: its version, read before the load for the fill (or a value stored meanwhile). */
  const versioned = (lookup: TenantCache.Lookup, key: string, traced: boolean): Effect.Effect<Read, CacheError> =>
    Effect.flatMap(whenClear(store.getVersioned(key)), (read) => {
      if (Option.isNone(read)) {
        return bypassed
      }
      const { value, version } = read.value
      return Option.isNone(value) ? missAt(lookup, version) : fromValue(lookup, key, value.value, traced)
    })

  /** What the cache holds for `key`, as the store gave it: a hit, or a miss at the key's version. */
  const fromCached = (
    lookup: TenantCache.Lookup,
    key: string,
    cached: Option.Option<string>,
    traced: boolean
  ): Effect.Effect<Read, CacheError> =>
    Option.isNone(cached) ? versioned(lookup, key, traced) : fromValue(lookup, key, cached.value, traced)

  const readFailed = (lookup: TenantCache.Lookup, key: string, error: CacheError): Effect.Effect<Read> =>
    log.cacheFailed(observed[lookup].getError, "TenantCache.get failed; reading the repository", key, error).pipe(
      Effect.zipRight(outcome("error")),
      Effect.as(unavailable)
    )

  // A hit needs no version: the value is read alone (a plain GET in Redis); only a miss reads the version.
  // Helpers take their inputs as arguments: a hit from memory takes a few microseconds, and closures made per
  // call show.
  const read = (lookup: TenantCache.Lookup, key: string, traced: boolean): Effect.Effect<Read> => {
    const effect = whenClear(store.get(key)).pipe(
      Effect.flatMap((cached) => Option.isNone(cached) ? bypassed : fromCached(lookup, key, cached.value, traced)),
      Effect.catchAll((error) => readFailed(lookup, key, error))
    )
    return traced ? Effect.withSpan(effect, "TenantCache.get", spanOf(lookup, key)) : effect
  }

  /** Stores what a load found if the key is still at `version`; answers whether it did. */
  const fill = (
    lookup: TenantCache.Lookup,
    key: string,
    version: string,
    found: Option.Option<Tenant>
  ): Effect.Effect<boolean> => {
    const metrics = observed[lookup]
    return Either.match(TenantCache.encode(found), {
      onLeft: (error) =>
        Effect.logDebug("TenantCache: a tenant could not be encoded; not caching it").pipe(
          Effect.annotateLogs({ key, error: error.message }),
          Effect.zipRight(Metric.increment(metrics.encodeError)),
          Effect.as(false)
        ),
      onRight: (value) =>
        ttlOf(found).pipe(
          Effect.flatMap((ttl) => whenClear(store.setIfVersion(key, value, ttl, version))),
          Effect.flatMap(Option.match({
            onNone: () => Effect.as(outcome("bypassed"), false),
            onSome: (stored) =>
              Effect.as(
                Effect.zipRight(
                  Metric.increment(stored ? metrics.fill : metrics.refused),
                  outcome(stored ? "stored" : "refused")
                ),
                stored
              )
          })),
          Effect.catchAll((error) =>
            log.cacheFailed(metrics.fillError, "TenantCache.fill failed; not caching the tenant", key, error).pipe(
              Effect.zipRight(outcome("error")),
              Effect.as(false)
            )
          )
        )
    }).pipe((effect) => spanWhenTraced(effect, "TenantCache.fill", spanOf(lookup, key)))
  }

  /** A tenant found by code or domain fills its id key too; see the module's comment for the order. */
  const fillWithId = (lookup: TenantCache.Lookup, key: string, version: string, tenant: Tenant) =>
    Effect.gen(function*() {
      const idKey = TenantCache.idKey(tenant.id, prefix)
      const id = yield* guarded(store.getVersioned(idKey)).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            log.cacheFailed(observed.id.getError, "TenantCache.get of the id key failed; not filling it", idKey, error),
            Option.none()
          )
        ),
        (effect) => spanWhenTraced(effect, "TenantCache.get", spanOf("id", idKey))
      )
      const stored = yield* fill(lookup, key, version, Option.some(tenant))
      // An id key that holds a value already was filled under the same rule; leave it.
      if (stored && Option.isSome(id) && Option.isNone(id.value.value)) {
        yield* fill("id", idKey, id.value.version, Option.some(tenant))
      }
    })

  // One load per key and version at a time (see the module's comment on versions).
  const shared = makeSingleFlight<Option.Option<Tenant>, RepositoryError>(scope)

  /** A lookup once the cache has answered. */
  const afterRead = (
    lookup: TenantCache.Lookup,
    key: string,
    load: () => Effect.Effect<Option.Option<Tenant>, RepositoryError>,
    result: Read
  ): Effect.Effect<Option.Option<Tenant>, RepositoryError> => {
    switch (result._tag) {
      case "Hit":
        return Effect.succeed(result.found)
      case "Unavailable":
        // Without a version nothing can be filled safely, and no flight can be shared safely.
        return load()
      case "Miss":
        return shared(
          JSON.stringify([key, result.version]),
          Effect.tap(load(), (found) =>
            lookup === "id" || Option.isNone(found)
              ? fill(lookup, key, result.version, found)
              : fillWithId(lookup, key, result.version, found.value))
        )
    }
  }

  /**
   * The common case (nothing pending, the breaker closed and clear, no tracer installed) in as few runtime
   * steps as it allows: the store's read, then the decode and the hit counted in plain code. A hit from Redis
   * costs little more than the runtime's own steps around the GET; whatever is not a hit carries on as
   * {@link read} would. The handlers come from factories: a function written inline as a property is named
   * at every call under tsx (esbuild's keepNames), which costs more than the rest of a memory hit.
   */
  const quickRead = (
    lookup: TenantCache.Lookup,
    key: string,
    load: () => Effect.Effect<Option.Option<Tenant>, RepositoryError>,
    labels: ReadonlyArray<MetricLabel.MetricLabel>
  ): Effect.Effect<Option.Option<Tenant>, RepositoryError> =>
    Effect.matchEffect(store.get(key), {
      onFailure: quickReadFailed(lookup, key, load),
      onSuccess: quickReadSucceeded(lookup, key, load, labels)
    })

  const quickReadFailed =
    (lookup: TenantCache.Lookup, key: string, load: () => Effect.Effect<Option.Option<Tenant>, RepositoryError>) =>
    (error: CacheError): Effect.Effect<Option.Option<Tenant>, RepositoryError> =>
      breaker.clearFailed(error).pipe(
        Effect.zipRight(readFailed(lookup, key, error)),
        Effect.flatMap((result) => afterRead(lookup, key, load, result))
      )

  const quickReadSucceeded = (
    lookup: TenantCache.Lookup,
    key: string,
    load: () => Effect.Effect<Option.Option<Tenant>, RepositoryError>,
    labels: ReadonlyArray<MetricLabel.MetricLabel>
  ) =>
  (cached: Option.Option<string>): Effect.Effect<Option.Option<Tenant>, RepositoryError> => {
    breaker.clearSucceeded()
    let read: Effect.Effect<Read, CacheError>
    if (Option.isSome(cached)) {
      const decoded = decode(key, cached.value)
      if (Either.isRight(decoded)) {
        observed[lookup].hit.unsafeUpdate(1, labels)
        return Effect.succeed(decoded.right)
      }
      read = undecodable(lookup, key, decoded.left)
    } else {
      read = versioned(lookup, key, false)
    }
    return read.pipe(
      Effect.catchAll((error) => readFailed(lookup, key, error)),
      Effect.flatMap((result) => afterRead(lookup, key, load, result))
    )
  }

  return (
    lookup: TenantCache.Lookup,
    input: string,
    load: () => Effect.Effect<Option.Option<Tenant>, RepositoryError>
  ): Effect.Effect<Option.Option<Tenant>, RepositoryError> => {
    const cacheKey = TenantCache.lookupKey(lookup, input, prefix)
    if (Option.isNone(cacheKey)) return load()
    const key = cacheKey.value
    return Effect.withFiberRuntime((fiber) => {
      const traced = isTraced(fiber.currentTracer)
      return !traced && pending.isEmpty() && breaker.isClear() && trusted()
        ? quickRead(lookup, key, load, fiber.getFiberRef(FiberRef.currentMetricLabels))
        : Effect.flatMap(read(lookup, key, traced), (result) => afterRead(lookup, key, load, result))
    })
  }
}
