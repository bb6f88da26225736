import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import type { Cluster } from "ioredis"
import { randomUUID } from "node:crypto"
import * as CacheStore from "../../src/CacheStore.js"
import * as CacheStoreRedis from "../../src/CacheStore/Redis.js"
import * as CacheStoreTiered from "../../src/CacheStore/Tiered.js"
import { freshPrefix, REDIS_URL } from "./redis.js"
import { clusterClient, RedisClusterUnderTest } from "./redisCluster.js"

/** A CacheStore layer to run a suite against (needing `R`: a Redis Cluster, say), and how to let time pass for it. */
export interface CacheBackend<R = never> {
  readonly name: string
  /** A fresh, empty store (for Redis: under a key prefix of its own). */
  readonly layer: Layer.Layer<CacheStore.CacheStore, unknown, R>
  /** Lets `duration` pass for the store's clock: TestClock for memory, real time for Redis. */
  readonly elapse: (duration: Duration.DurationInput) => Effect.Effect<void>
}

export const memoryBackend: CacheBackend = {
  name: "memory",
  layer: CacheStore.layerMemory({ maxEntries: 1000 }),
  elapse: (duration) => TestClock.adjust(Duration.decode(duration))
}

// These suites test what the cache does, not outages (CacheOutage.test.ts starts a Redis of its own for those):
// on a loaded machine the default 200 ms command timeout fails reads, and five in a row open the breaker, which
// sends reads around the store and changes every count of loads and fills.
const commandTimeout = "2 seconds"

export const redisBackend: CacheBackend = {
  name: "redis",
  layer: Layer.unwrapScoped(
    Effect.map(
      freshPrefix,
      (prefix) => CacheStoreRedis.layer({ url: Redacted.make(REDIS_URL), prefix, commandTimeout })
    )
  ),
  // Redis keeps its own time: a TTL is tested by letting real time pass, outside any TestClock.
  elapse: (duration) =>
    Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, Duration.toMillis(duration))))
}

export const tieredBackend: CacheBackend = {
  name: "memory+redis",
  layer: Layer.unwrapScoped(
    Effect.map(
      freshPrefix,
      (prefix) => CacheStoreTiered.layer({ url: Redacted.make(REDIS_URL), prefix, commandTimeout })
    )
  ),
  // Redis keeps real time, the memory tier the fiber's Clock (a TestClock in `it.effect`): both must move.
  elapse: (duration) => Effect.zipRight(redisBackend.elapse(duration), TestClock.adjust(Duration.decode(duration)))
}

/** Every CacheStore layer; suites loop over it, so a new layer is tested by adding it here. */
export const cacheBackends: ReadonlyArray<CacheBackend> = [memoryBackend, redisBackend, tieredBackend]

/**
 * A store on a `Cluster` client of the suite's own Redis Cluster (see `layerOwnRedisCluster`), under a prefix of
 * its own; the client is disconnected with the layer. The cluster goes with the suite, so its keys need no cleanup.
 */
const onCluster = (store: (client: Cluster, prefix: string) => Layer.Layer<CacheStore.CacheStore>) =>
  Layer.unwrapScoped(
    Effect.map(
      Effect.flatMap(RedisClusterUnderTest, clusterClient),
      (client) => store(client, `test:${randomUUID().slice(0, 8)}:`)
    )
  )

export const redisClusterBackend: CacheBackend<RedisClusterUnderTest> = {
  name: "redis cluster",
  layer: onCluster((client, prefix) => CacheStoreRedis.layerClient(client, { prefix, commandTimeout })),
  elapse: redisBackend.elapse
}

export const tieredClusterBackend: CacheBackend<RedisClusterUnderTest> = {
  name: "memory+redis cluster",
  layer: onCluster((client, prefix) =>
    CacheStoreTiered.layerClient(client, { prefix, commandTimeout, connectTimeout: "5 seconds" })
  ),
  elapse: tieredBackend.elapse
}

/** The CacheStore layers on a Redis Cluster: `CacheStoreCluster.test.ts` runs the suite on each. */
export const clusterCacheBackends: ReadonlyArray<CacheBackend<RedisClusterUnderTest>> = [
  redisClusterBackend,
  tieredClusterBackend
]
