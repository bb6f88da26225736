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
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as CacheStoreTiered from "../src/CacheStore/Tiered.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshPrefix, REDIS_URL } from "./utils/redis.js"
import { makeOwnRedis, plainClient } from "./utils/redisServer.js"
import { newTenant } from "./utils/tenants.js"
import { readsExpectedUntilMemoryHit, renamed, updatesSeenByB } from "./utils/updatePropagation.js"

/** Two application instances: separate layer stacks (each its own memory tier and Redis clients), one database. */
const twoInstances = Effect.gen(function*() {
  const prefix = yield* freshPrefix
  const database = Layer.succeedContext(yield* Layer.build(TenantRepository.layerMemory))
  const instance = () =>
    Effect.map(
      Layer.build(
        CachedTenantRepository.layer().pipe(
          Layer.provide(database),
          Layer.provide(CacheStoreTiered.layer({ url: Redacted.make(REDIS_URL), prefix }))
        )
      ),
      Context.get(TenantRepository.TenantRepository)
    )
  return { a: yield* instance(), b: yield* instance() }
})

/** Reads `layerTiered` stores in this process have answered from `tier` with `result` so far. */
const tierReadCount = (tier: string, result: string) =>
  Effect.map(
    Metric.value(CacheStoreTiered.tierReads.pipe(Metric.tagged("tier", tier), Metric.tagged("result", result))),
    (state) => state.count
  )

const memoryHits = tierReadCount("memory", "hit")

describe("CacheStore.layerTiered across instances", () => {
  it.live("instance B serves the new tenant once instance A's broadcast arrives, and says how fast", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* twoInstances
      const sorted = yield* updatesSeenByB(a, b, 30)
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
        yield* Layer.build(CacheStoreTiered.layer({ url: Redacted.make(REDIS_URL), prefix })),
        CacheStore.CacheStore
      )
      const counts = Effect.all([memoryHits, tierReadCount("memory", "miss"), tierReadCount("redis", "hit")])
      const before = yield* counts
      const { version } = yield* store.getVersioned("k")
      yield* store.setIfVersion("k", "v", "1 minute", version)
      yield* store.get("k")
      yield* store.get("k")
      const after = yield* counts
      // getVersioned missed both tiers; the fill put a copy in memory; both gets hit it.
      assert.deepStrictEqual(after.map((n, i) => n - (before[i] ?? 0)), [2, 1, 0])
    })))

  it.live("instance B answers repeated reads of a tenant from its memory tier, before and after A's update", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* twoInstances
      const created = yield* newTenant()
      yield* a.insert(created.tenant, created.event)
      // The first read loads and fills both tiers (once the insert's broadcast, which drops B's copy, has been
      // heard: until then a read may miss); from then on reads never leave the process.
      const first = yield* memoryHits
      yield* b.findById(created.tenant.id).pipe(
        Effect.zipRight(memoryHits),
        Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (hits) => hits > first }),
        Effect.timeoutFail({
          duration: "2 seconds",
          onTimeout: () => new Error("B never answered from its memory tier")
        })
      )
      const before = yield* memoryHits
      for (let i = 0; i < 10; i++) {
        assert.deepStrictEqual(yield* b.findById(created.tenant.id), Option.some(created.tenant))
      }
      assert.strictEqual((yield* memoryHits) - before, 10, "B's reads went to Redis, not to its memory tier")
      const next = yield* renamed(created.tenant, "Renamed")
      yield* a.save(next.tenant, [next.event], created.tenant.version)
      // Once the broadcast has dropped B's copy, B fills its memory tier again with the new tenant.
      yield* b.findById(created.tenant.id).pipe(
        Effect.repeat({
          schedule: Schedule.spaced("5 millis"),
          until: (seen) => Option.exists(seen, (tenant) => tenant.version === next.tenant.version)
        }),
        Effect.timeout("2 seconds")
      )
      const refilled = yield* memoryHits
      for (let i = 0; i < 10; i++) {
        assert.deepStrictEqual(yield* b.findById(created.tenant.id), Option.some(next.tenant))
      }
      assert.strictEqual((yield* memoryHits) - refilled, 10, "B's memory tier was not used again after the update")
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

  it.live("an instance whose subscription dropped serves none of the memory copies it made before", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const raw = yield* plainClient(redis.url)
      const storeOf = (layer: Layer.Layer<CacheStore.CacheStore>) =>
        Effect.map(Layer.build(layer), Context.get(CacheStore.CacheStore))
      const b = yield* storeOf(CacheStoreTiered.layer({ url: Redacted.make(redis.url), prefix: "t:" }))
      // Writes that B cannot hear of: the store underneath, which does not broadcast. They stand for the
      // broadcasts B misses while its subscription is down.
      const unheard = yield* storeOf(CacheStoreRedis.layer({ url: Redacted.make(redis.url), prefix: "t:" }))
      const { version } = yield* b.getVersioned("k")
      assert.isTrue(yield* b.setIfVersion("k", "old", "1 minute", version))
      const before = yield* memoryHits
      assert.deepStrictEqual(yield* b.get("k"), Option.some("old"))
      assert.strictEqual((yield* memoryHits) - before, 1, "B keeps a memory copy")
      // This Redis is the test's own: its only subscriber is B's.
      const subscriberId = () =>
        Effect.map(
          Effect.promise(() => raw.call("CLIENT", "LIST", "TYPE", "pubsub")),
          (list) => String(list).match(/id=(\d+)/)?.[1]
        )
      const dropped = yield* subscriberId()
      assert.isDefined(dropped)
      assert.strictEqual(yield* Effect.promise(() => raw.call("CLIENT", "KILL", "TYPE", "pubsub")), 1)
      yield* unheard.invalidate(["k"])
      const next = yield* unheard.getVersioned("k")
      assert.isTrue(yield* unheard.setIfVersion("k", "new", "1 minute", next.version))
      // B subscribes again on its own.
      yield* subscriberId().pipe(
        Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (id) => id !== undefined && id !== dropped }),
        Effect.timeout("3 seconds")
      )
      // Read until B answers from its memory tier again: every read, from either tier, is the new value.
      yield* readsExpectedUntilMemoryHit(b.get("k"), memoryHits, "new")
    })))

  it.live("an instance that started while Redis was down still hears broadcasts once Redis is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      yield* redis.stop
      const tiered = () =>
        Effect.map(
          Layer.build(
            CacheStoreTiered.layer({ url: Redacted.make(redis.url), prefix: "t:", connectTimeout: "200 millis" })
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
