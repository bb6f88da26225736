/**
 * The CacheStore conformance suite on a Redis Cluster of three masters that the suite starts: every script of the
 * store touches one slot (a key and its version share a hash tag), reads and deletes of many keys cross slots,
 * and one cache's keys do spread over the masters.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { randomUUID } from "node:crypto"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import { clusterCacheBackends } from "./utils/cacheBackends.js"
import { cacheStoreConformance } from "./utils/cacheStoreConformance.js"
import { clusterClient, keysOnEachNode, layerOwnRedisCluster, RedisClusterUnderTest } from "./utils/redisCluster.js"

layer(layerOwnRedisCluster, { timeout: "60 seconds" })("CacheStore on a Redis Cluster of three masters", (it) => {
  for (const backend of clusterCacheBackends) {
    describe(`CacheStore conformance [${backend.name}]`, () => {
      cacheStoreConformance(backend, (name, body) => it.effect(name, () => Effect.provide(body, backend.layer)))
    })
  }

  it.scoped("spreads one cache's keys over the masters, each key in the slot and on the node of its version", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisClusterUnderTest
      const client = yield* clusterClient(cluster)
      const prefix = `spread:${randomUUID().slice(0, 8)}:`
      const cache = Context.get(
        yield* Layer.build(CacheStoreRedis.layerClient(client, { prefix, commandTimeout: "2 seconds" })),
        CacheStore.CacheStore
      )
      const keys = Array.from({ length: 24 }, (_, i) => `tenant:v1:id:${i}`)
      // Every key gets a version (the invalidation's script) and then a value (the fill's script).
      yield* cache.invalidate(keys)
      for (const [i, key] of keys.entries()) {
        const { version } = yield* cache.getVersioned(key)
        assert.isTrue(yield* cache.setIfVersion(key, `value ${i}`, "1 minute", version))
      }
      const marks = cache.marks
      if (marks === undefined) return assert.fail("the store keeps no marks")
      assert.isTrue(yield* marks.advance(prefix, undefined, "1"))

      // What each master holds, asked of each master itself.
      const onNodes = yield* keysOnEachNode(cluster, `${prefix}*`)
      const holding = onNodes.filter((held) => held.length > 0).length
      const perMaster = onNodes.map((held) => held.length).join(", ")
      assert.isAtLeast(
        holding,
        2,
        `keys per master: ${perMaster}; on one master of ${cluster.nodes.length}, no sharding`
      )
      assert.strictEqual(onNodes.flat().length, keys.length * 2 + 1, "a value, a version per key, and the mark")
      const slotOf = (key: string) => Effect.map(Effect.promise(() => client.call("CLUSTER", "KEYSLOT", key)), Number)
      for (const key of keys) {
        const [value, version] = [`${prefix}{${key}}`, `${prefix}{${key}}:v`]
        const node = onNodes.findIndex((held) => held.includes(value))
        assert.isAtLeast(node, 0, `${value} is on no master`)
        assert.include(onNodes[node] ?? [], version, `${version} is not on the master of ${value}`)
        assert.strictEqual(yield* slotOf(version), yield* slotOf(value))
      }
      assert.strictEqual(onNodes.filter((held) => held.includes(`${prefix}{tenant-cache:mark:${prefix}}`)).length, 1)

      // Reads and deletes of many keys cross slots and masters.
      assert.deepStrictEqual(yield* cache.getMany(keys), keys.map((_, i) => Option.some(`value ${i}`)))
      yield* cache.deleteMany(keys)
      assert.deepStrictEqual(yield* cache.getMany(keys), keys.map(() => Option.none()))
      assert.deepStrictEqual(yield* marks.read(prefix), Option.some("1"))
    }))
})
