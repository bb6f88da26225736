/**
 * The cached repository's metrics: the public counters and gauge (re-exported, with their documentation, by
 * `CachedTenantRepository`), and the same counters with their tags in their keys, built once per layer.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import type * as TenantCache from "../TenantCache.js"
import { withTags } from "./observability.js"

const counterKey = (name: string, description: string) => MetricKey.counter(name, { description, incremental: true })

const errorsKey = counterKey(
  "tenant_cache_errors",
  "Tenant cache steps that failed, by tier, lookup and operation"
)
const invalidationFailuresKey = counterKey(
  "tenant_cache_invalidation_failures",
  "Cache keys whose invalidation after a write failed, by tier and lookup"
)
const invalidationsKey = counterKey(
  "tenant_cache_invalidations",
  "Cache keys invalidated after a write, by tier and lookup"
)
const refusedFillsKey = counterKey(
  "tenant_cache_refused_fills",
  "Cache fills refused because the key was invalidated after the fill read it, by tier and lookup"
)
const fillsKey = counterKey(
  "tenant_cache_fills",
  "Values stored in the cache after a miss, by tier and lookup"
)
const missesKey = counterKey(
  "tenant_cache_misses",
  "Tenant lookups the cache could not answer, by tier and lookup"
)
const hitsKey = counterKey(
  "tenant_cache_hits",
  "Tenant lookups answered from the cache, by tier and lookup"
)

export const hits: Metric.Metric.Counter<number> = Metric.fromMetricKey(hitsKey)
export const misses: Metric.Metric.Counter<number> = Metric.fromMetricKey(missesKey)
export const fills: Metric.Metric.Counter<number> = Metric.fromMetricKey(fillsKey)
export const refusedFills: Metric.Metric.Counter<number> = Metric.fromMetricKey(refusedFillsKey)
export const invalidations: Metric.Metric.Counter<number> = Metric.fromMetricKey(invalidationsKey)
export const invalidationFailures: Metric.Metric.Counter<number> = Metric.fromMetricKey(invalidationFailuresKey)
export const errors: Metric.Metric.Counter<number> = Metric.fromMetricKey(errorsKey)
export const breakerOpen: Metric.Metric.Gauge<number> = Metric.gauge("tenant_cache_breaker_open", {
  description: "1 while the circuit breaker in front of the tenant cache store is open, else 0, by tier"
})

/** The counters of one lookup in one tier, `errors` split by operation. */
export interface LookupMetrics {
  readonly hit: Metric.Metric.Counter<number>
  readonly miss: Metric.Metric.Counter<number>
  readonly fill: Metric.Metric.Counter<number>
  readonly refused: Metric.Metric.Counter<number>
  readonly invalidated: Metric.Metric.Counter<number>
  readonly invalidationFailed: Metric.Metric.Counter<number>
  readonly getError: Metric.Metric.Counter<number>
  readonly decodeError: Metric.Metric.Counter<number>
  readonly encodeError: Metric.Metric.Counter<number>
  readonly fillError: Metric.Metric.Counter<number>
  readonly invalidateError: Metric.Metric.Counter<number>
}

/** The counters of one tier, by lookup. */
export type TierMetrics = Readonly<Record<TenantCache.Lookup, LookupMetrics>>

const lookupMetrics = (tier: string, lookup: TenantCache.Lookup): LookupMetrics => {
  const tag = (key: MetricKey.MetricKey.Counter<number>) => withTags(key, { tier, lookup })
  const error = (operation: string) => withTags(errorsKey, { tier, lookup, operation })
  return {
    hit: tag(hitsKey),
    miss: tag(missesKey),
    fill: tag(fillsKey),
    refused: tag(refusedFillsKey),
    invalidated: tag(invalidationsKey),
    invalidationFailed: tag(invalidationFailuresKey),
    getError: error("get"),
    decodeError: error("decode"),
    encodeError: error("encode"),
    fillError: error("fill"),
    invalidateError: error("invalidate")
  }
}

/** Built once per layer, not on every lookup: tagging a metric looks it up in the registry. */
export const tierMetrics = (tier: string): TierMetrics => ({
  id: lookupMetrics(tier, "id"),
  code: lookupMetrics(tier, "code"),
  domain: lookupMetrics(tier, "domain")
})

/** One increment per key, of the counter `counter` picks for the key's lookup. */
export const countKeys = (
  metrics: TierMetrics,
  keys: ReadonlyArray<readonly [TenantCache.Lookup, string]>,
  counter: (metrics: LookupMetrics) => Metric.Metric.Counter<number>
): Effect.Effect<void> =>
  Effect.forEach(keys, ([lookup]) => Metric.increment(counter(metrics[lookup])), { discard: true })
