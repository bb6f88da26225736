/**
 * A cached `TenantRepository.findById` hit through `CachedTenantRepository.layer()` over `CacheStore.layerRedis`,
 * against the raw `ioredis` GET plus `JSON.parse` of the very key the cache reads (`<prefix>{tenant:v1:id:<id>}`,
 * see `internal/redisCacheStore.ts`), so that both sides read the same bytes from the same local Redis. The raw
 * client gets the layer's command timeout, so both sides pay for its timer.
 *
 * The cached path does more than the raw one: the key's check, the circuit breaker, the decode of the value into
 * a `Tenant` (a copy of the one decoded when the same value was read before), the hit counted. The ratio prices
 * all of it.
 *
 * The goal holds the lookup as an application makes it: inside an Effect program, a request's fiber that looks
 * tenants up one after another (here 50 per fiber, in a `ManagedRuntime` built before the timed loop). Two
 * figures for reference show what entering the runtime costs when each lookup is a program of its own (one
 * `runPromise` per lookup): the cached lookup so, and the raw GET so, which no Effect library can go below. A
 * third is the peer: bentocache's `getOrSet` over the same Redis, without its memory tier. A fourth looks up
 * 2,000 tenants through a layer that remembers 1,000 decoded (`decodedTenants`), so that about half its hits
 * decode and check the value in full, where the others compare it with the one decoded before and copy that.
 *
 * Every timed lookup must be a hit: the layer's counters (hits, misses, errors) and bentocache's loads are
 * checked after the rounds, and the run fails otherwise.
 */
import { BentoCache, bentostore } from "bentocache"
import { redisDriver } from "bentocache/drivers/redis"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import type { TenantId } from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshPrefix, REDIS_URL } from "../test/utils/redis.js"
import * as Harness from "./harness.js"
import { lookupsInFiber, pick, seed, sequentially } from "./tenants.js"

const TENANTS = 200
const LARGE_TENANTS = 2_000
const COMMAND_TIMEOUT_MILLIS = 200
/** Issue 16's goal (it was 1.15). */
const GOAL = 1.1
/** Lookups per timed operation: one fiber's worth for the program, the same number of awaits for the others. */
const BATCH = 50
const PLAN: Harness.Plan = { warmup: 40, rounds: 15, opsPerRound: 40 }

/** The client both sides share the timeout of; the raw side reads the very key the cache reads. */
const rawReader = (client: Redis, prefix: string) => (id: TenantId) =>
  client.get(`${prefix}{${TenantCache.idKey(id)}}`).then((value): unknown =>
    value === null ? undefined : JSON.parse(value)
  )

/** A cached repository over Redis under `prefix`, in a runtime of its own, with `tenants` tenants, every one cached. */
const cachedStack = (prefix: string, tenants: number, client: Redis, options: CachedTenantRepository.Options = {}) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ManagedRuntime.make(
          CachedTenantRepository.layer(options).pipe(
            Layer.provide(TenantRepository.layerMemory),
            Layer.provide(CacheStoreRedis.layer({
              url: Redacted.make(REDIS_URL),
              prefix,
              commandTimeout: COMMAND_TIMEOUT_MILLIS
            }))
          )
        )
      ),
      (runtime) => Effect.promise(() => runtime.dispose())
    )
    const context = yield* runtime.runtimeEffect
    const repository = yield* Effect.provide(TenantRepository.TenantRepository, context)
    const ids = yield* Effect.provide(seed(tenants), context)
    const viaCache = (id: TenantId) => runtime.runPromise(repository.findById(id))
    const viaRawRedis = rawReader(client, prefix)
    // Warm the cache: every id read once, so that every timed lookup is a hit.
    // Not all at once: a few thousand fills in flight would outlast the command timeout and leave keys empty.
    yield* Effect.forEach(ids, (id) => Effect.tryPromise(() => viaCache(id)), { concurrency: 20, discard: true })
    // Both sides must find the same tenant, and the raw side must find it in the cache, or the comparison
    // measures nothing.
    for (const id of ids) {
      const [fromCache, fromRaw] = yield* Effect.tryPromise(() => Promise.all([viaCache(id), viaRawRedis(id)]))
      const rawId = typeof fromRaw === "object" && fromRaw !== null && "id" in fromRaw ? fromRaw.id : undefined
      if (Option.isNone(fromCache) || rawId !== fromCache.value.id) {
        return yield* Effect.dieMessage(`the cache and raw Redis disagree on tenant ${id}`)
      }
    }
    return { runtime, repository, ids, viaCache, viaRawRedis }
  })

const redisIdCounter = (counter: Metric.Metric.Counter<number>) =>
  Effect.map(
    Metric.value(counter.pipe(Metric.tagged("tier", "redis"), Metric.tagged("lookup", "id"))),
    (state) => state.count
  )

const lookupCounts = Effect.all({
  hits: redisIdCounter(CachedTenantRepository.hits),
  misses: redisIdCounter(CachedTenantRepository.misses),
  errors: redisIdCounter(CachedTenantRepository.errors)
})

const program = Effect.gen(function*() {
  // Acquired first, so released last: the keys are deleted once every client is closed.
  const prefix = yield* freshPrefix
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new Redis(REDIS_URL, { lazyConnect: true, commandTimeout: COMMAND_TIMEOUT_MILLIS })),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )
  yield* Effect.promise(() => client.connect())
  const { ids, repository, runtime, viaCache, viaRawRedis } = yield* cachedStack(prefix, TENANTS, client)
  // Twice as many tenants as the layer remembers decoded: about half the hits decode their value in full.
  const large = yield* cachedStack(`${prefix}large:`, LARGE_TENANTS, client, { decodedTenants: LARGE_TENANTS / 2 })

  // bentocache over the same Redis, no memory tier: its hit is a GET and its own decode. Its keys live under the
  // prefix too, so that they are deleted with ours.
  const bento = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new BentoCache({
        default: "redis",
        prefix: `${prefix}bento`,
        stores: {
          redis: bentostore().useL2Layer(redisDriver({
            connection: new Redis(REDIS_URL, { commandTimeout: COMMAND_TIMEOUT_MILLIS })
          }))
        }
      })
    ),
    (bento) => Effect.promise(() => bento.disconnectAll())
  )
  const tenantJson = new Map<TenantId, unknown>()
  for (const id of ids) tenantJson.set(id, yield* Effect.tryPromise(() => viaRawRedis(id)))
  let bentoLoads = 0
  const viaBento = (id: TenantId) =>
    bento.getOrSet({
      key: TenantCache.idKey(id),
      factory: () => {
        bentoLoads++
        return tenantJson.get(id)
      },
      ttl: "5m"
    })
  yield* Effect.tryPromise(() => Promise.all(ids.map(viaBento)))
  bentoLoads = 0

  const inFiber = "findById in a fiber"
  const inFiberLarge = `findById in a fiber, half decoded again`
  const bentoEach = "bentocache getOrSet (Redis)"
  const raw = "GET + JSON.parse"
  const runPromiseEach = "findById, runPromise each"
  const rawRunPromiseEach = "GET + JSON.parse, runPromise each"
  const lookups = lookupsInFiber(repository, ids, BATCH)
  const times = (op: () => Promise<unknown>) => sequentially(BATCH, op)
  const lookupsLarge = lookupsInFiber(large.repository, large.ids, BATCH)
  const rawInEffect = Effect.tryPromise(() => viaRawRedis(pick(ids)))

  yield* Console.log(
    `${ids.length} tenants, every one cached in Redis; ${BATCH} lookups per operation; ${PLAN.warmup} warm-up ` +
      `ops, then ${PLAN.rounds} rounds x ${PLAN.opsPerRound} ops per candidate, interleaved; figures per lookup`
  )
  const before = yield* lookupCounts
  const report = yield* Harness.contest(
    [
      { name: inFiber, op: () => runtime.runPromise(lookups), batch: BATCH },
      { name: raw, op: () => times(() => viaRawRedis(pick(ids))), batch: BATCH },
      { name: runPromiseEach, op: () => times(() => viaCache(pick(ids))), batch: BATCH },
      { name: rawRunPromiseEach, op: () => times(() => runtime.runPromise(rawInEffect)), batch: BATCH },
      { name: bentoEach, op: () => times(() => viaBento(pick(ids))), batch: BATCH },
      { name: inFiberLarge, op: () => large.runtime.runPromise(lookupsLarge), batch: BATCH }
    ],
    PLAN,
    [
      { candidate: inFiber, baseline: raw, goal: GOAL },
      { candidate: runPromiseEach, baseline: raw },
      { candidate: rawRunPromiseEach, baseline: raw },
      { candidate: bentoEach, baseline: raw },
      { candidate: inFiberLarge, baseline: raw }
    ]
  )
  // Every timed lookup must have been a hit, for bentocache as for ours, or it was not compared: a read that
  // failed would have been answered by the repository in memory, faster than Redis.
  if (bentoLoads > 0) return yield* Effect.dieMessage(`bentocache missed ${bentoLoads} times in the timed rounds`)
  const after = yield* lookupCounts
  const plan = Harness.effectivePlan(PLAN)
  const timedLookups = (plan.warmup + plan.rounds * plan.opsPerRound) * BATCH * 3
  if (after.misses !== before.misses || after.errors !== before.errors || after.hits - before.hits !== timedLookups) {
    return yield* Effect.dieMessage(
      `not every timed lookup was a hit: ${after.hits - before.hits} hits of ${timedLookups}, ` +
        `${after.misses - before.misses} misses, ${after.errors - before.errors} errors`
    )
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "cache hit (Redis)",
  run: Effect.scoped(program)
}
