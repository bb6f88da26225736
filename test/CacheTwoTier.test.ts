import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import type { Tenant } from "../src/Tenant.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshPrefix, REDIS_URL } from "./utils/redis.js"
import { makeOwnRedis } from "./utils/redisServer.js"
import { newTenant, stampAt } from "./utils/tenants.js"

/** Two application instances: separate layer stacks (each its own memory tier and Redis clients), one database. */
const twoInstances = Effect.gen(function*() {
  const prefix = yield* freshPrefix
  const database = Layer.succeedContext(yield* Layer.build(TenantRepository.layerMemory))
  const instance = () =>
    Effect.map(
      Layer.build(
        CachedTenantRepository.layer().pipe(
          Layer.provide(database),
          Layer.provide(CacheStore.layerTiered({ url: Redacted.make(REDIS_URL), prefix }))
        )
      ),
      Context.get(TenantRepository.TenantRepository)
    )
  return { a: yield* instance(), b: yield* instance() }
})

const renamed = (tenant: Tenant, name: string) =>
  Effect.map(
    TenantLifecycle.update(tenant, { name }, stampAt(new Date())),
    Option.getOrThrow
  )

describe("CacheStore.layerTiered across instances", () => {
  it.live("instance B serves the new tenant once instance A's broadcast arrives, and says how fast", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* twoInstances
      const created = yield* newTenant()
      yield* a.insert(created.tenant, created.event)
      let current = created.tenant
      const delays: Array<number> = []
      for (let round = 0; round < 30; round++) {
        // B reads (and keeps a memory copy of) the current tenant.
        assert.deepStrictEqual(yield* b.findById(current.id), Option.some(current))
        assert.deepStrictEqual(yield* b.findById(current.id), Option.some(current))
        const next = yield* renamed(current, `Renamed ${round}`)
        yield* a.save(next.tenant, [next.event], current.version)
        const saved = performance.now()
        for (;;) {
          const seen = yield* b.findById(current.id)
          if (Option.isSome(seen) && seen.value.version === next.tenant.version) break
          assert.isBelow(performance.now() - saved, 2000, "B never saw the update")
          yield* Effect.sleep("1 millis")
        }
        delays.push(performance.now() - saved)
        current = next.tenant
      }
      const sorted = [...delays].sort((x, y) => x - y)
      const p50 = sorted[Math.floor(sorted.length / 2)] ?? 0
      const p99 = sorted[sorted.length - 1] ?? 0
      // The evidence, in the test output: how long a broadcast took to reach the other instance.
      yield* Effect.log(`two-tier invalidation seen by instance B: p50 ${p50.toFixed(2)} ms, max ${p99.toFixed(2)} ms`)
      assert.isBelow(p99, 1000)
    })))

  it.live("counts reads per tier: a repeated read is a memory hit, the first a memory miss and a Redis read", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = yield* freshPrefix
      const store = Context.get(
        yield* Layer.build(CacheStore.layerTiered({ url: Redacted.make(REDIS_URL), prefix })),
        CacheStore.CacheStore
      )
      const count = (tier: string, result: string) =>
        Effect.map(
          Metric.value(CacheStore.tierReads.pipe(Metric.tagged("tier", tier), Metric.tagged("result", result))),
          (state) => state.count
        )
      const before = yield* Effect.all([count("memory", "hit"), count("memory", "miss"), count("redis", "hit")])
      const { version } = yield* store.getVersioned("k")
      yield* store.setIfVersion("k", "v", "1 minute", version)
      yield* store.get("k")
      yield* store.get("k")
      const after = yield* Effect.all([count("memory", "hit"), count("memory", "miss"), count("redis", "hit")])
      // getVersioned missed both tiers; the fill put a copy in memory; both gets hit it.
      assert.deepStrictEqual(after.map((n, i) => n - (before[i] ?? 0)), [2, 1, 0])
    })))

  it.live("an instance whose memory tier holds a tenant never serves it after another instance's update", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* twoInstances
      const created = yield* newTenant()
      yield* a.insert(created.tenant, created.event)
      assert.deepStrictEqual(yield* b.findById(created.tenant.id), Option.some(created.tenant))
      const next = yield* renamed(created.tenant, "Renamed")
      yield* a.save(next.tenant, [next.event], created.tenant.version)
      // Give the broadcast a moment, then B must answer with the new tenant, by id and by code.
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(yield* b.findById(created.tenant.id), Option.some(next.tenant))
      assert.deepStrictEqual(yield* b.findByCode(created.tenant.code), Option.some(next.tenant))
    })))

  it.live("an instance that started while Redis was down still hears broadcasts once Redis is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      yield* redis.stop
      const tiered = () =>
        Effect.map(
          Layer.build(
            CacheStore.layerTiered({ url: Redacted.make(redis.url), prefix: "t:", connectTimeout: "200 millis" })
          ),
          Context.get(CacheStore.CacheStore)
        )
      const a = yield* tiered()
      yield* redis.start
      const b = yield* tiered()
      // Wait until A is connected again (its client retries with backoff), then let A keep a memory copy.
      yield* Effect.retry(a.getVersioned("k"), { schedule: Schedule.spaced("100 millis"), times: 50 })
      yield* Effect.sleep("300 millis")
      const { version } = yield* a.getVersioned("k")
      assert.isTrue(yield* a.setIfVersion("k", "old", "1 minute", version))
      assert.deepStrictEqual(yield* a.get("k"), Option.some("old"))
      yield* b.invalidate(["k"])
      yield* Effect.sleep("100 millis")
      assert.isTrue(Option.isNone(yield* a.get("k")), "A still serves a copy B invalidated")
    })))
})
