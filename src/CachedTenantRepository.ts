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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as CacheStore from "./CacheStore.js"
import { makeFreshness, runFreshness } from "./internal/cacheFreshness.js"
import { makeCacheLog } from "./internal/cacheLog.js"
import * as CacheMetrics from "./internal/cacheMetrics.js"
import { makeReadPath } from "./internal/cacheReadPath.js"
import { makeWritePath } from "./internal/cacheWritePath.js"
import { ChangeFeed } from "./internal/changeFeed.js"
import { makeCircuitBreaker } from "./internal/circuitBreaker.js"
import { makePendingInvalidations } from "./internal/pendingInvalidations.js"
import * as TenantCache from "./TenantCache.js"
import * as TenantRepository from "./TenantRepository.js"

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

const DEFAULT_TTL = Duration.minutes(5)
const DEFAULT_ABSENT_TTL = Duration.seconds(30)
const DEFAULT_BREAKER_COOLDOWN = Duration.seconds(5)
const DEFAULT_RETRY_INTERVAL = Duration.seconds(1)
const DEFAULT_MAX_STALENESS = Duration.seconds(2)
const DEFAULT_WARNING_INTERVAL = Duration.seconds(30)
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
    const pending = yield* makePendingInvalidations({
      store,
      guarded: breaker.run,
      maxPending: Math.max(1, options.maxPendingInvalidations ?? 10_000),
      retryInterval: options.retryInterval ?? DEFAULT_RETRY_INTERVAL,
      metrics: observed,
      tier
    })

    const log = makeCacheLog(options.warningInterval ?? DEFAULT_WARNING_INTERVAL, store.address ?? tier)
    const writes = makeWritePath({ store, tier, prefix, observed, log, breaker, pending })

    const feed = yield* Effect.serviceOption(ChangeFeed)
    const freshnessInterval = Duration.decode(options.freshnessInterval ?? DEFAULT_FRESHNESS_INTERVAL)
    const freshness = Option.isSome(feed) && store.marks !== undefined
      ? makeFreshness({
        feed: feed.value,
        store,
        marks: store.marks,
        // Caches under different prefixes in one store follow their own changes: each keeps its own mark.
        markName: prefix,
        appliedInline: writes.appliedInline,
        forgetInline: writes.forgetInline,
        guarded: breaker.run,
        maxStaleness: Duration.decode(options.maxStaleness ?? DEFAULT_MAX_STALENESS),
        interval: freshnessInterval,
        window: Duration.millis(Math.max(foundMillis, absentMillis) * (1 + jitter) + 60_000),
        keysOf: (changes) => {
          const { ids, lookups } = TenantCache.keysOfChanges(changes, prefix)
          return [...lookups, ...ids].map(([, key]) => key)
        }
      })
      : undefined
    if (freshness !== undefined) {
      // The first poll before serving, so that a healthy store is trusted from the start.
      yield* Effect.ignore(freshness.poll)
      yield* runFreshness(freshness, freshnessInterval, scope, (error) =>
        log.warnThrottled(
          "freshness",
          "TenantCache: could not confirm that the store has every change; reading the repository until it can",
          { error: error.message }
        ))
    }

    const through = makeReadPath({
      store,
      tier,
      prefix,
      observed,
      log,
      breaker,
      pending,
      // Whether the store may be read: always, when there is nothing to follow.
      trusted: freshness === undefined ? () => true : freshness.trusted,
      foundMillis,
      absentMillis,
      jitter,
      decodedTenants: options.decodedTenants ?? 10_000,
      scope
    })
    const { invalidateAfter } = writes

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
