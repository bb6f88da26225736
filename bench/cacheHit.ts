/**
 * A cached `TenantRepository.findById` hit through `CachedTenantRepository.layer()` over `CacheStore.layerRedis`,
 * against the raw `ioredis` GET plus `JSON.parse` of the very key the cache reads (`<prefix>{tenant:v1:id:<id>}`,
 * see `internal/redisCacheStore.ts`), so that both sides read the same bytes from the same local Redis. The raw
 * client gets the layer's command timeout, so both sides pay for its timer.
 *
 * The cached path does more than the raw one: a Lua script that reads the value, the key's version and its TTL
 * in one step, the circuit breaker, a span, metrics, and the `Tenant` schema decode of the JSON. The ratio prices
 * all of it. The Effect side runs through a `ManagedRuntime` built before the timed loop, one `runPromise` per
 * lookup.
 */
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import type { TenantId } from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshPrefix, REDIS_URL } from "../test/utils/redis.js"
import * as Harness from "./harness.js"

const TENANTS = 200
const COMMAND_TIMEOUT_MILLIS = 200
const GOAL = 1.15
const PLAN: Harness.Plan = { warmup: 2_000, rounds: 7, opsPerRound: 3_000 }

/** Tenants of a realistic shape: every other one with a phone, every third one with a domain. */
const seed = Effect.gen(function*() {
  const repository = yield* TenantRepository.TenantRepository
  return yield* Effect.forEach(Array.range(1, TENANTS), (n) =>
    Effect.gen(function*() {
      const id = yield* TenantLifecycle.newTenantId
      const { event, tenant } = yield* TenantLifecycle.create(id, {
        code: `bench-${n}`,
        name: `Bench Tenant ${n}`,
        contact: n % 2 === 0
          ? { email: `admin${n}@bench.test` }
          : { email: `admin${n}@bench.test`, phone: "+15550100" },
        ...(n % 3 === 0 ? { domain: `tenant-${n}.bench.test` } : {}),
        settings: { plan: n % 5 === 0 ? "pro" : "free", seats: n % 50 }
      }, yield* TenantLifecycle.stamp({ actor: "bench" }))
      yield* repository.insert(tenant, event)
      return id
    }))
})

const pick = (ids: Array.NonEmptyReadonlyArray<TenantId>): TenantId =>
  ids[Math.floor(Math.random() * ids.length)] ?? Array.headNonEmpty(ids)

const program = Effect.gen(function*() {
  // Acquired first, so released last: the keys are deleted once both clients are closed.
  const prefix = yield* freshPrefix
  const runtime = yield* Effect.acquireRelease(
    Effect.sync(() =>
      ManagedRuntime.make(
        CachedTenantRepository.layer().pipe(
          Layer.provide(TenantRepository.layerMemory),
          Layer.provide(CacheStore.layerRedis({
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
  const ids = yield* Effect.provide(seed, context)
  if (!Array.isNonEmptyReadonlyArray(ids)) return yield* Effect.dieMessage("no tenant was seeded")
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new Redis(REDIS_URL, { lazyConnect: true, commandTimeout: COMMAND_TIMEOUT_MILLIS })),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )
  yield* Effect.promise(() => client.connect())

  const viaCache = (id: TenantId) => runtime.runPromise(repository.findById(id))
  const viaRawRedis = (id: TenantId) =>
    client.get(`${prefix}{${TenantCache.idKey(id)}}`).then((value): unknown =>
      value === null ? undefined : JSON.parse(value)
    )

  // Warm the cache: every id read once, so that every timed lookup is a hit.
  yield* Effect.tryPromise(() => Promise.all(ids.map(viaCache)))
  // Both sides must find the same tenant, and the raw side must find it in the cache, or the comparison
  // measures nothing.
  for (const id of ids) {
    const [fromCache, fromRaw] = yield* Effect.tryPromise(() => Promise.all([viaCache(id), viaRawRedis(id)]))
    const rawId = typeof fromRaw === "object" && fromRaw !== null && "id" in fromRaw ? fromRaw.id : undefined
    if (Option.isNone(fromCache) || rawId !== fromCache.value.id) {
      return yield* Effect.dieMessage(`the cache and raw Redis disagree on tenant ${id}`)
    }
  }

  yield* Console.log(
    `${ids.length} tenants, every one cached in Redis; ${PLAN.warmup} warm-up ops, then ${PLAN.rounds} rounds x ` +
      `${PLAN.opsPerRound} ops per candidate, interleaved`
  )
  return yield* Harness.headToHead(
    { name: "cached findById", op: () => viaCache(pick(ids)) },
    { name: "GET + JSON.parse", op: () => viaRawRedis(pick(ids)) },
    PLAN,
    { goal: GOAL }
  )
})

export const benchmark: Harness.Benchmark = {
  name: "cache hit (Redis)",
  run: Effect.scoped(program)
}
