/**
 * Two application instances over one Redis Cluster of three masters that the suite starts: each instance its own
 * cached repository and `Cluster` client (and, with two tiers, its own memory tier and subscription), one
 * database. A write through A must never leave B serving the tenant as it was, whether B reads Redis alone or a
 * memory tier kept fresh by broadcasts that cross the cluster.
 */
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { randomUUID } from "node:crypto"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as CacheStoreTiered from "../src/CacheStore/Tiered.js"
import * as TenantRepository from "../src/TenantRepository.js"
import type { OwnRedisCluster } from "./utils/redisCluster.js"
import {
  clusterClient,
  keysOnEachNode,
  layerOwnRedisCluster,
  onEachNode,
  RedisClusterUnderTest
} from "./utils/redisCluster.js"
import { newTenant } from "./utils/tenants.js"
import { readsExpectedUntilMemoryHit, renamed, updatesSeenByB } from "./utils/updatePropagation.js"

// A loaded machine must not open the cache's breaker: that would send reads around the store under test.
const commandTimeout = "2 seconds"
// Nor a slow first subscription start an instance without its memory tier: the tests count on it.
const connectTimeout = "5 seconds"

type StoreKind = "redis" | "tiered"

/** A store of `kind` on a `Cluster` client of its own, disconnected with the scope. */
const storeOnCluster = (cluster: OwnRedisCluster, kind: StoreKind, prefix: string) =>
  Effect.map(clusterClient(cluster), (client) =>
    kind === "tiered"
      ? CacheStoreTiered.layerClient(client, { prefix, commandTimeout, connectTimeout })
      : CacheStoreRedis.layerClient(client, { prefix, commandTimeout }))

/** Two application instances: separate layer stacks and Cluster clients, one cache prefix, one database. */
const twoInstances = (kind: StoreKind) =>
  Effect.gen(function*() {
    const cluster = yield* RedisClusterUnderTest
    const prefix = `two:${randomUUID().slice(0, 8)}:`
    const database = Layer.succeedContext(yield* Layer.build(TenantRepository.layerMemory))
    const instance = Effect.gen(function*() {
      const store = yield* storeOnCluster(cluster, kind, prefix)
      const built = yield* Layer.build(
        CachedTenantRepository.layer().pipe(Layer.provide(database), Layer.provide(store))
      )
      return Context.get(built, TenantRepository.TenantRepository)
    })
    return { a: yield* instance, b: yield* instance, prefix }
  })

const memoryHits = Effect.map(
  Metric.value(CacheStoreTiered.tierReads.pipe(Metric.tagged("tier", "memory"), Metric.tagged("result", "hit"))),
  (state) => state.count
)

layer(layerOwnRedisCluster, { timeout: "60 seconds", excludeTestServices: true })(
  "CachedTenantRepository across instances on a Redis Cluster of three masters",
  (it) => {
    it.scoped("with Redis alone, B's first read after A's save is the new tenant, round after round", () =>
      Effect.gen(function*() {
        const cluster = yield* RedisClusterUnderTest
        const { a, b, prefix } = yield* twoInstances("redis")
        const created = yield* newTenant()
        yield* a.insert(created.tenant, created.event)
        let current = created.tenant
        for (let round = 0; round < 10; round++) {
          // B's reads fill the cache A and B share, and are answered by it.
          assert.deepStrictEqual(yield* b.findById(current.id), Option.some(current))
          assert.deepStrictEqual(yield* b.findByCode(current.code), Option.some(current))
          assert.deepStrictEqual(yield* b.findById(current.id), Option.some(current))
          if (round === 0) {
            // The tenant itself is in the cluster (a value, not a version or the mark): the cache is in play.
            const cached = (yield* keysOnEachNode(cluster, `${prefix}*`)).flat()
            assert.isTrue(
              cached.some((key) => key.includes(current.id) && !key.endsWith(":v")),
              `B's reads stored no value of the tenant; the cluster holds ${cached.join(", ")}`
            )
          }
          const next = yield* renamed(current, `Renamed ${round}`)
          yield* a.save(next.tenant, [next.event], current.version)
          // A's save returned after its invalidations: no wait, B never reads the tenant as it was.
          assert.deepStrictEqual(yield* b.findById(current.id), Option.some(next.tenant))
          assert.deepStrictEqual(yield* b.findByCode(current.code), Option.some(next.tenant))
          current = next.tenant
        }
      }))

    it.scoped("with two tiers, B serves A's update once A's broadcast crosses the cluster, and says how fast", () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoInstances("tiered")
        const sorted = yield* updatesSeenByB(a, b, 20)
        const p50 = sorted[Math.floor(sorted.length / 2)] ?? 0
        const max = sorted[sorted.length - 1] ?? 0
        yield* Effect.log(`cluster: invalidation seen by B: p50 ${p50.toFixed(2)} ms, max ${max.toFixed(2)} ms`)
        assert.isBelow(max, 1000)
      }))

    it.scoped("with two tiers, B answers from its memory tier, and never from a copy A's update overtook", () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoInstances("tiered")
        const created = yield* newTenant()
        yield* a.insert(created.tenant, created.event)
        // The first reads load and fill both tiers (once the insert's broadcast has been heard: until then a read
        // may miss); from then on B's reads never leave the process.
        const first = yield* memoryHits
        yield* b.findById(created.tenant.id).pipe(
          Effect.zipRight(memoryHits),
          Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (hits) => hits > first }),
          Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("B never used its memory tier") })
        )
        const before = yield* memoryHits
        for (let i = 0; i < 10; i++) {
          assert.deepStrictEqual(yield* b.findById(created.tenant.id), Option.some(created.tenant))
        }
        assert.strictEqual((yield* memoryHits) - before, 10, "B's reads went to Redis, not to its memory tier")
        const next = yield* renamed(created.tenant, "Renamed")
        yield* a.save(next.tenant, [next.event], created.tenant.version)
        // A moment for the broadcast to go from the master A published on to the one B listens on.
        yield* Effect.sleep("200 millis")
        assert.deepStrictEqual(yield* b.findById(created.tenant.id), Option.some(next.tenant))
        assert.deepStrictEqual(yield* b.findByCode(created.tenant.code), Option.some(next.tenant))
      }))

    it.scoped("with two tiers, an instance whose subscription dropped serves none of the copies it made before", () =>
      Effect.gen(function*() {
        const cluster = yield* RedisClusterUnderTest
        const prefix = `drop:${randomUUID().slice(0, 8)}:`
        const storeOf = (kind: StoreKind) =>
          Effect.flatMap(
            storeOnCluster(cluster, kind, prefix),
            (store) => Effect.map(Layer.build(store), Context.get(CacheStore.CacheStore))
          )
        const b = yield* storeOf("tiered")
        // Writes that B cannot hear of: the store underneath, which does not broadcast. They stand for the
        // broadcasts B misses while its subscription is down.
        const unheard = yield* storeOf("redis")
        const { version } = yield* b.getVersioned("k")
        assert.isTrue(yield* b.setIfVersion("k", "old", "1 minute", version))
        const before = yield* memoryHits
        assert.deepStrictEqual(yield* b.get("k"), Option.some("old"))
        assert.strictEqual((yield* memoryHits) - before, 1, "B keeps a memory copy")
        // The cluster is the suite's own: B's is the only subscription on any of its nodes.
        const subscribers = Effect.map(
          onEachNode(cluster, "CLIENT", "LIST", "TYPE", "pubsub"),
          (lists) =>
            lists.flatMap((list, node) =>
              Array.from(String(list).matchAll(/^id=(\d+)/gm), (match) => `${node}:${match[1]}`)
            )
        )
        // B listens on one node (the connections of the tests before it may take a moment to be gone).
        const dropped = yield* subscribers.pipe(
          Effect.filterOrFail((ids) => ids.length === 1, (ids) => new Error(`subscriptions: ${ids.join(", ")}`)),
          Effect.retry({ schedule: Schedule.spaced("10 millis"), times: 200 })
        )
        const killed = yield* onEachNode(cluster, "CLIENT", "KILL", "TYPE", "pubsub")
        assert.strictEqual(killed.reduce((sum: number, count) => sum + Number(count), 0), 1)
        yield* unheard.invalidate(["k"])
        const next = yield* unheard.getVersioned("k")
        assert.isTrue(yield* unheard.setIfVersion("k", "new", "1 minute", next.version))
        // B subscribes again on its own, on that node or another.
        yield* subscribers.pipe(
          Effect.repeat({
            schedule: Schedule.spaced("10 millis"),
            until: (ids) => ids.length === 1 && !dropped.includes(ids[0] ?? "")
          }),
          Effect.timeout("5 seconds")
        )
        // Read until B answers from its memory tier again: every read, from either tier, is the new value.
        yield* readsExpectedUntilMemoryHit(b.get("k"), memoryHits, "new")
      }))
  }
)
