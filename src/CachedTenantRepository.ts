/**
 * A `TenantRepository` that keeps tenants in a `CacheStore` in front of another `TenantRepository`
 * (cache-aside): add one layer and every lookup by id, code or domain is answered from the cache when it can be.
 * The key scheme, the keys each write touches and the value codec are in `TenantCache`.
 *
 * - Reads: `findById` (live tenants only; `includeDeleted: true` always reads the repository), `findByCode` and
 *   `findByDomain` read the cache first; on a miss they load from the repository and fill the cache, found
 *   tenants for `ttl` and absences for the shorter `absentTtl`, each TTL spread by `jitter` so that keys filled
 *   together do not expire together. A tenant loaded by code or domain fills its id key too. `list` and
 *   `countByStatus` are not cached.
 * - Single flight: concurrent misses for one key (at one version, see below) in one process share one
 *   repository load. The load runs in a fiber of the layer's scope, not of the first caller, so a caller that is
 *   interrupted does not cancel it for the others. A load that fails is not cached: the next miss loads again.
 * - Writes: after `insert` or `save`, every key the tenant had or has is invalidated: id, code, domain, and the
 *   code and domain that an update replaced. This happens after a success and whenever the write may have
 *   committed (a `RepositoryError`, an interruption, a defect), not after a refusal (`TenantAlreadyExists`,
 *   `ConcurrencyConflict`, `TenantNotFound`), and it runs even when the caller is interrupted.
 *
 * Freshness: a fill never overwrites an invalidation made after the fill read the cache. Every key has a
 * version (see `CacheStore`); a miss reads it, and the fill stores its value only if the key is still at that
 * version, in one atomic step, while an invalidation moves the key to a new version. So a load that read a
 * tenant before an update, and fills after the update's invalidation, is refused, and the next read loads the
 * new tenant. Concurrent misses share a load only when they read the same version, so a read whose cache read
 * comes after a write's invalidation never joins a load that started before it.
 *
 * The id key filled by a lookup by code or domain is as safe, although its version cannot be read before the
 * load (the id is not known yet). It is read after the load, then the code or domain key is filled at the
 * version read before the load, and the id key only if that fill was accepted. Writes invalidate code and domain
 * keys before the id key. So if an update committed after the load read the tenant, either its id invalidation
 * comes after the id version was read (and refuses or deletes the id fill), or it came before, and then the
 * code or domain invalidation came earlier still and refused the fill that the id fill waits on.
 *
 * Cache trouble never fails a read or a write. A read whose cache read fails (`CacheError`) reads the
 * repository by itself: it shares no load and fills nothing, as it has no version. A fill that fails is
 * skipped. A cached value that no longer decodes is a miss, and is deleted and refilled.
 *
 * Outages: every store call goes through a circuit breaker. After `breakerThreshold` consecutive `CacheError`s
 * (default 5) the store is left alone for `breakerCooldown` (default 5 seconds, by Effect's `Clock`), and reads
 * go straight to the repository without waiting for the store's timeout; then one call is let through, and its
 * success closes the breaker. The gauge `tenant_cache_breaker_open` is 1 while the breaker is open.
 *
 * An invalidation that could not reach the store (a `CacheError`, or skipped while the breaker is open) is kept
 * in memory (at most `maxPendingInvalidations` keys, default 10,000) and retried: every `retryInterval` (default
 * 1 second) in a fiber of the layer's scope, and before any cache read or fill, one retry at a time (reads that
 * come while one is under way wait for it). While any invalidation is pending, reads and fills bypass the store,
 * so a tenant invalidated during an outage is never served from the store after it: the retried invalidation
 * deletes the value and moves the key's version, which also refuses every fill that read the version before it.
 * Kept keys live in this process only; other processes, and this one should it stop or give a key up, are
 * covered by the bound below.
 *
 * Freshness across processes: each process also follows the repository's changes in commit order (the change
 * feed that `TenantRepository/Pg` and `layerMemory` provide) and applies them to the store, with a mark
 * beside the values saying how far they go (`CacheStore.Marks`). It reads the store only while it has confirmed,
 * within `maxStaleness` (default 2 seconds), that the mark covers every change committed before then, so no read
 * returns a tenant older than a save acknowledged more than `maxStaleness` before it started, whatever the store
 * or the network did; otherwise it reads the repository. A repository without the feed (a mock) or a store
 * without marks leaves the cache to inline invalidation alone.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CachedTenantRepository, CacheStore, TenantRepository } from "tenant-infra"
 *
 * const repository = CachedTenantRepository.layer({ ttl: "10 minutes" }).pipe(
 *   Layer.provide(TenantRepository.layerMemory),
 *   Layer.provide(CacheStore.layerMemory())
 * )
 *
 * const program = Effect.flatMap(TenantRepository.TenantRepository, (tenants) => tenants.findByCode("acme"))
 * Effect.runPromise(Effect.provide(program, repository))
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import type { CacheError } from "./CacheError.js"
import * as CacheStore from "./CacheStore.js"
import { makeFreshness, runFreshness } from "./internal/cacheFreshness.js"
import * as CacheMetrics from "./internal/cacheMetrics.js"
import { ChangeFeed } from "./internal/changeFeed.js"
import { makeCircuitBreaker } from "./internal/circuitBreaker.js"
import { makeLogThrottle } from "./internal/logThrottle.js"
import { annotateWhenTraced, isTraced, spanWhenTraced } from "./internal/observability.js"
import type { Keys } from "./internal/pendingInvalidations.js"
import { makePendingInvalidations } from "./internal/pendingInvalidations.js"
import { makeSingleFlight } from "./internal/singleFlight.js"
import type { Tenant } from "./Tenant.js"
import * as TenantCache from "./TenantCache.js"
import type { TenantEvent } from "./TenantEvent.js"
import * as TenantRepository from "./TenantRepository.js"
import type { RepositoryError } from "./TenantRepositoryError.js"

/**
 * How long tenants stay cached, and under which key prefix.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Put in front of every key (default none), so that several caches can share one store. */
  readonly prefix?: string | undefined
  /** How long a found tenant stays cached, before jitter (default 5 minutes; finite). */
  readonly ttl?: Duration.DurationInput | undefined
  /** How long a lookup that found nothing stays cached, before jitter (default 30 seconds; finite). */
  readonly absentTtl?: Duration.DurationInput | undefined
  /**
   * How far each TTL is spread, as a fraction of it: 0.1 (the default) stores each value for 90% to 110% of its
   * TTL, drawn from Effect's `Random`; 0 turns jitter off. Kept between 0 and 0.9.
   */
  readonly jitter?: number | undefined
  /** Consecutive `CacheError`s after which the store is left alone for `breakerCooldown` (default 5). */
  readonly breakerThreshold?: number | undefined
  /** How long the store is left alone once the breaker opens, before one call is let through (default 5 seconds). */
  readonly breakerCooldown?: Duration.DurationInput | undefined
  /** How often invalidations that could not reach the store are retried in the background (default 1 second). */
  readonly retryInterval?: Duration.DurationInput | undefined
  /** Most keys whose invalidation waits for a retry (default 10,000); past it the oldest is given up and logged. */
  readonly maxPendingInvalidations?: number | undefined
  /**
   * How many decoded tenants are remembered, one per key (default 10,000; the oldest remembered goes first): a
   * hit whose value was decoded before is compared with it and handed out as a copy, instead of being parsed
   * and checked again by the `Tenant` rules (about 5 us per tenant on a 2-core machine). Each costs about its
   * cached value and one tenant in memory, 1-2 KB; size it to the tenants a process reads often.
   */
  readonly decodedTenants?: number | undefined
  /**
   * The bound on staleness across processes (default 2 seconds): no read returns a tenant older than a save
   * acknowledged more than this long before the read started, in any process, whatever the store or the network
   * did. It holds where the repository provides its change feed (`TenantRepository/Pg`, `layerMemory`) and
   * the store keeps marks (every store of `CacheStore`); see "Freshness across processes" above.
   */
  readonly maxStaleness?: Duration.DurationInput | undefined
  /** How often each process polls the repository's changes and confirms the store's mark (default 250 ms). */
  readonly freshnessInterval?: Duration.DurationInput | undefined
  /**
   * The store's trouble is logged at warning level at most once per kind per this interval (default 30 seconds),
   * naming the store's address, with the count held back since the last line; the rest goes to debug level.
   */
  readonly warningInterval?: Duration.DurationInput | undefined
}

/** The `tier` tag of a store that does not name itself. */
const UNNAMED_TIER = "store"

/**
 * Lookups answered from the cache, tagged with `tier` and `lookup` (`id`, `code`, `domain`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const hits: Metric.Metric.Counter<number> = CacheMetrics.hits

/**
 * Lookups the cache could not answer (nothing stored, or a value that no longer decodes), tagged with `tier`
 * and `lookup`. A lookup whose cache read failed is counted in {@link errors}, not here.
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses: Metric.Metric.Counter<number> = CacheMetrics.misses

/**
 * Values stored after a miss, tagged with `tier` and `lookup`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const fills: Metric.Metric.Counter<number> = CacheMetrics.fills

/**
 * Fills refused because their key was invalidated after the fill read it, tagged with `tier` and `lookup`:
 * each one is a possibly stale tenant that was not stored.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refusedFills: Metric.Metric.Counter<number> = CacheMetrics.refusedFills

/**
 * Keys invalidated after a write, tagged with `tier` and `lookup`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const invalidations: Metric.Metric.Counter<number> = CacheMetrics.invalidations

/**
 * Keys whose invalidation after a write failed at least once (a `CacheError`, or skipped while the circuit
 * breaker was open), tagged with `tier` and `lookup`. Each is kept and retried until the store takes it; the
 * retries are not counted again.
 *
 * @since 0.1.0
 * @category metrics
 */
export const invalidationFailures: Metric.Metric.Counter<number> = CacheMetrics.invalidationFailures

/**
 * Cache steps that failed, tagged with `tier`, `lookup` and `operation`: `get`, `fill` and `invalidate` for a
 * `CacheError`, `decode` for a cached value that no longer decodes, `encode` for a tenant that could not be
 * encoded.
 *
 * @since 0.1.0
 * @category metrics
 */
export const errors: Metric.Metric.Counter<number> = CacheMetrics.errors

/**
 * 1 while the circuit breaker in front of the store is open (the store is not asked), 0 while it is closed;
 * tagged with `tier`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const breakerOpen: Metric.Metric.Gauge<number> = CacheMetrics.breakerOpen

/** What the cache answered for a key. */
type Read =
  | { readonly _tag: "Hit"; readonly found: Option.Option<Tenant> }
  | { readonly _tag: "Miss"; readonly version: string }
  | { readonly _tag: "Unavailable" }

const unavailable: Read = { _tag: "Unavailable" }

// Failures after which the repository wrote nothing; after any other end (success, a RepositoryError that may
// have come after the commit, an interruption, a defect) the tenant's keys are invalidated.
const REFUSALS: ReadonlySet<string> = new Set(["TenantAlreadyExists", "ConcurrencyConflict", "TenantNotFound"])

const mayHaveWritten = <E extends { readonly _tag: string }>(exit: Exit.Exit<void, E>): boolean =>
  Exit.isSuccess(exit) ||
  Option.match(Cause.failureOption(exit.cause), { onNone: () => true, onSome: (error) => !REFUSALS.has(error._tag) })

const DEFAULT_TTL = Duration.minutes(5)
const DEFAULT_ABSENT_TTL = Duration.seconds(30)
const DEFAULT_BREAKER_COOLDOWN = Duration.seconds(5)
const DEFAULT_RETRY_INTERVAL = Duration.seconds(1)
const DEFAULT_MAX_STALENESS = Duration.seconds(2)
const DEFAULT_WARNING_INTERVAL = Duration.seconds(30)
/** Event ids remembered as invalidated inline, the oldest forgotten first. */
const MAX_APPLIED_INLINE = 10_000
const DEFAULT_FRESHNESS_INTERVAL = Duration.millis(250)

/**
 * The cached repository over the `TenantRepository` and the `CacheStore` it is given. Its loads run in fibers
 * of the `Scope`, which interrupts those still running when it closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  TenantRepository.Service,
  never,
  TenantRepository.TenantRepository | CacheStore.CacheStore | Scope.Scope
> =>
  Effect.gen(function*() {
    const repository = yield* TenantRepository.TenantRepository
    const store = yield* CacheStore.CacheStore
    const tier = store.tier ?? UNNAMED_TIER
    const observed = CacheMetrics.tierMetrics(tier)
    const scope = yield* Effect.scope
    const prefix = options.prefix ?? ""
    const foundMillis = Duration.toMillis(options.ttl ?? DEFAULT_TTL)
    const absentMillis = Duration.toMillis(options.absentTtl ?? DEFAULT_ABSENT_TTL)
    const jitter = Math.min(Math.max(options.jitter ?? 0.1, 0), 0.9)
    const breaker = yield* makeCircuitBreaker({
      threshold: options.breakerThreshold ?? 5,
      cooldown: options.breakerCooldown ?? DEFAULT_BREAKER_COOLDOWN,
      gauge: Metric.tagged(breakerOpen, "tier", tier)
    })
    /** A store call, or `None` without calling the store while the breaker is open. */
    const guarded = breaker.run
    const pending = yield* makePendingInvalidations({
      store,
      guarded,
      maxPending: Math.max(1, options.maxPendingInvalidations ?? 10_000),
      retryInterval: options.retryInterval ?? DEFAULT_RETRY_INTERVAL,
      metrics: observed,
      tier
    })

    const ttlOf = (found: Option.Option<Tenant>): Effect.Effect<Duration.Duration> => {
      const millis = Option.isSome(found) ? foundMillis : absentMillis
      const spread = jitter === 0 ? Effect.succeed(1) : Random.nextRange(1 - jitter, 1 + jitter)
      return Effect.map(spread, (factor) => Duration.millis(Math.max(1, Math.round(millis * factor))))
    }

    const spanOf = (lookup: TenantCache.Lookup, key: string) => ({
      captureStackTrace: false,
      attributes: { "tenant.cache.tier": tier, "tenant.cache.lookup": lookup, "tenant.cache.key": key }
    })

    const outcome = (value: string) => annotateWhenTraced("tenant.cache.outcome", value)

    /** A failed cache step is noted, never raised: the caller carries on as after a miss. */
    const warnings = makeLogThrottle(options.warningInterval ?? DEFAULT_WARNING_INTERVAL)
    const storeAddress = store.address ?? tier
    /** A warning when its kind has not been logged lately (with how often it happened since), else a debug line. */
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

    const cacheFailed = (counter: Metric.Metric.Counter<number>, message: string, key: string, error: CacheError) =>
      warnThrottled(`failed:${error.reason}`, message, { key, reason: error.reason, detail: error.detail }).pipe(
        Effect.zipRight(Metric.increment(counter))
      )

    const decode = TenantCache.makeDecoder(options.decodedTenants ?? 10_000)

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
          Effect.catchAll(guarded(store.deleteMany([key])), (error) =>
            cacheFailed(observed[lookup].getError, "TenantCache: dropping an undecodable value failed", key, error))
        ),
        Effect.zipRight(whenClear(store.getVersioned(key))),
        Effect.map(Option.match({
          onNone: () =>
            unavailable,
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
      cacheFailed(observed[lookup].getError, "TenantCache.get failed; reading the repository", key, error).pipe(
        Effect.zipRight(outcome("error")),
        Effect.as(unavailable)
      )

    // A hit needs no version: the value is read alone (a plain GET in Redis); only a miss reads the version.
    // Helpers take their inputs as arguments: a hit from memory takes a few microseconds, and closures made per
    // call show.
    const read = (lookup: TenantCache.Lookup, key: string, traced: boolean): Effect.Effect<Read> => {
      const effect = whenClear(store.get(key)).pipe(
        Effect.flatMap((cached) =>
          Option.isNone(cached) ? bypassed : fromCached(lookup, key, cached.value, traced)
        ),
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
              cacheFailed(metrics.fillError, "TenantCache.fill failed; not caching the tenant", key, error).pipe(
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
              cacheFailed(observed.id.getError, "TenantCache.get of the id key failed; not filling it", idKey, error),
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

    const through = (
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

    // The write has committed and succeeds; the keys are kept for a retry, logged and counted.
    const invalidationKept = (keys: Keys, reason: string, detail: string) =>
      warnThrottled(
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

    const feed = yield* Effect.serviceOption(ChangeFeed)
    const freshness = Option.isSome(feed) && store.marks !== undefined
      ? makeFreshness({
        feed: feed.value,
        store,
        marks: store.marks,
        // Caches under different prefixes in one store follow their own changes: each keeps its own mark.
        markName: prefix,
        appliedInline: (eventId) => appliedInline.has(eventId),
        forgetInline: () => appliedInline.clear(),
        guarded,
        maxStaleness: Duration.decode(options.maxStaleness ?? DEFAULT_MAX_STALENESS),
        interval: Duration.decode(options.freshnessInterval ?? DEFAULT_FRESHNESS_INTERVAL),
        window: Duration.millis(Math.max(foundMillis, absentMillis) * (1 + jitter) + 60_000),
        keysOf: (changes) => {
          const { ids, lookups } = TenantCache.keysOfChanges(changes, prefix)
          return [...lookups, ...ids].map(([, key]) => key)
        }
      })
      : undefined
    // Whether the store may be read: always, when there is nothing to follow.
    const trusted = freshness === undefined ? () => true : freshness.trusted
    if (freshness !== undefined) {
      // The first poll before serving, so that a healthy store is trusted from the start.
      yield* Effect.ignore(freshness.poll)
      yield* runFreshness(
        freshness,
        Duration.decode(options.freshnessInterval ?? DEFAULT_FRESHNESS_INTERVAL),
        scope,
        (error) =>
          warnThrottled(
            "freshness",
            "TenantCache: could not confirm that the store has every change; reading the repository until it can",
            { error: error.message }
          )
      )
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

    return TenantRepository.TenantRepository.of({
      // Effect.onExit: the invalidation runs even when the caller is interrupted after the commit.
      insert: (tenant, event) => Effect.onExit(repository.insert(tenant, event), invalidateAfter(tenant, [event])),
      save: (tenant, events, expectedVersion) =>
        Effect.onExit(repository.save(tenant, events, expectedVersion), invalidateAfter(tenant, events)),
      findById: (id, options) =>
        options?.includeDeleted === true
          ? repository.findById(id, options)
          : through("id", id, () => repository.findById(id)),
      findByCode: (code) => through("code", code, () => repository.findByCode(code)),
      findByDomain: (domain) => through("domain", domain, () => repository.findByDomain(domain)),
      list: repository.list,
      countByStatus: repository.countByStatus
    })
  })

/**
 * Caching in front of the `TenantRepository` it is given, provided as `TenantRepository` again, so that adding
 * the cache is adding this layer. The `CacheStore` holds the values: `CacheStore.layerMemory` for one process,
 * `CacheStore/Redis` to share one cache between processes.
 *
 * When the store fails (`CacheError`), reads go to the repository and writes still succeed; after repeated
 * failures a circuit breaker stops asking the store for a while (`tenant_cache_breaker_open`). A write whose
 * invalidation fails is not failed: the keys are logged at warning level, counted in
 * `tenant_cache_invalidation_failures`, kept and retried (in the background, and before any cache read or
 * fill); until they reach the store, reads bypass it, so no tenant as it was before the write is served.
 *
 * `Layer.provide` hides the inner layer's other services; `Layer.provideMerge` keeps them (the `TenantOutbox` of
 * `TenantRepository.layerMemory` or `TenantRepository/Pg`), and the `TenantRepository` it provides is still the cached one.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { CachedTenantRepository, CacheStore, TenantRepository } from "tenant-infra"
 *
 * // TenantRepository (cached) and TenantOutbox
 * const live = CachedTenantRepository.layer().pipe(
 *   Layer.provideMerge(TenantRepository.layerMemory),
 *   Layer.provide(CacheStore.layerMemory())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TenantRepository.TenantRepository, never, TenantRepository.TenantRepository | CacheStore.CacheStore> =>
  Layer.scoped(TenantRepository.TenantRepository, make(options))
