/**
 * The cache store on Redis, through ioredis: a single node or a Cluster.
 *
 * Atomic steps are Lua scripts that each touch one key and its version, which share a hash slot: every key is
 * written as `<prefix>{<key>}` and its version as `<prefix>{<key>}:v`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import * as CacheStoreRedis from "tenant-infra/CacheStore/Redis"
 *
 * const store = CacheStoreRedis.layer({ url: Redacted.make("redis://127.0.0.1:6379") })
 * ```
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"
import { CacheStore } from "../CacheStore.js"
import { acquireClient, makeRedisStore, storeSettings } from "../internal/redisCacheStore.js"
import type { Options, StoreOptions } from "../internal/redisSettings.js"

export type {
  /**
   * @since 0.2.0
   * @category models
   */
  Options,
  /**
   * How the store names its keys and how long it waits.
   *
   * @since 0.2.0
   * @category models
   */
  StoreOptions
} from "../internal/redisSettings.js"

/**
 * The store on a Redis it connects to, from `url`; the client is closed with the scope.
 *
 * A Redis that is down does not stop it from building: commands fail at once as `Unreachable` (they are not
 * queued while disconnected) until the client, which keeps reconnecting, is back.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<CacheStore["Type"], never, Scope.Scope> =>
  Effect.map(acquireClient(options), (client) => makeRedisStore(client, storeSettings(options)))

/**
 * The store on a Redis the layer connects to (see {@link make}).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<CacheStore> => Layer.scoped(CacheStore, make(options))

/**
 * {@link layer} with its options read from `Config`, as `@effect/experimental`'s `Persistence/Redis` does. The
 * environment variables of `TenantInfra` (`REDIS_URL`, ...) are one such configuration.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (options: Config.Config.Wrap<Options>): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))

/**
 * The store on a client the application owns and closes: a `Redis` or a `Cluster`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerClient = (client: Redis | Cluster, options: StoreOptions = {}): Layer.Layer<CacheStore> =>
  Layer.sync(CacheStore, () => makeRedisStore(client, storeSettings(options)))
