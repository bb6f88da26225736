/**
 * The port to a key-value cache over string keys and string values, and its layers: `layerMemory` (bounded, LRU)
 * and `layerRedis` (ioredis, a single node or a Cluster).
 *
 * Besides get, set and delete it offers what a cache-aside reader needs to never overwrite an invalidation with
 * a value it read before that invalidation (the lost-invalidation race): every key has a version, read together
 * with the value (`getVersioned`); a fill stores its value only while the key is still at the version it read
 * (`setIfVersion`, one atomic step); and `invalidate` deletes the value and moves the key to a new version, so
 * that a slow fill that started earlier can no longer write.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { Cluster } from "ioredis"
import { Redis } from "ioredis"
import type { CacheError } from "./CacheError.js"
import { makeRedisStore } from "./internal/redisCacheStore.js"

export {
  /**
   * A cache that failed to answer; readers treat it as a miss.
   *
   * @since 0.1.0
   * @category errors
   */
  CacheError
} from "./CacheError.js"

/**
 * A value (or its absence) and the version of its key, read in one step.
 *
 * @since 0.1.0
 * @category models
 */
export interface Versioned {
  readonly value: Option.Option<string>
  readonly version: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly get: (key: string) => Effect.Effect<Option.Option<string>, CacheError>
  /** The values of `keys`, in the same order. */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<string>>, CacheError>
  /** Stores a value that expires after `ttl` (which must be positive). */
  readonly set: (key: string, value: string, ttl: Duration.DurationInput) => Effect.Effect<void, CacheError>
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<void, CacheError>
  /** The value and the key's current version, read together. */
  readonly getVersioned: (key: string) => Effect.Effect<Versioned, CacheError>
  /** Stores the value only if the key is still at `version`, in one atomic step; answers whether it did. */
  readonly setIfVersion: (
    key: string,
    value: string,
    ttl: Duration.DurationInput,
    version: string
  ) => Effect.Effect<boolean, CacheError>
  /** Deletes each key's value and moves the key to a new version, each key in one atomic step. */
  readonly invalidate: (keys: ReadonlyArray<string>) => Effect.Effect<void, CacheError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class CacheStore extends Context.Tag("tenant-infra/CacheStore")<CacheStore, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** Most values kept; the least recently used goes first (default 10,000). */
  readonly maxEntries?: number | undefined
}

interface Entry {
  readonly value: string
  readonly expiresAt: number
}

/**
 * A bounded in-memory cache: at most `maxEntries` values, least recently used evicted first, each expiring
 * after its TTL by the `Clock` (so `TestClock` drives it in tests); an expired value is never returned. Values
 * are strings, so nothing the caller holds is shared with the store.
 *
 * Versions are kept for at most four times `maxEntries` keys. Forgetting a version could let a fill that read
 * it write after an invalidation, so forgetting any version raises a floor that every unknown key's version
 * reads as: the fills in flight for such keys are refused, which costs a cache fill, never freshness.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options: MemoryOptions = {}): Effect.Effect<Service> =>
  Effect.sync(() => {
    const maxEntries = Math.max(1, options.maxEntries ?? 10_000)
    const maxVersions = maxEntries * 4
    const entries = new Map<string, Entry>()
    const versions = new Map<string, number>()
    let lastVersion = 0
    let floor = 0

    const versionOf = (key: string): number => versions.get(key) ?? floor

    const read = (key: string, now: number): Option.Option<string> => {
      const entry = entries.get(key)
      if (entry === undefined) return Option.none()
      entries.delete(key)
      if (entry.expiresAt <= now) return Option.none()
      // Re-inserting makes the Map's insertion order the recency order.
      entries.set(key, entry)
      return Option.some(entry.value)
    }

    const write = (key: string, value: string, ttl: Duration.DurationInput, now: number) => {
      entries.delete(key)
      entries.set(key, { value, expiresAt: now + Duration.toMillis(ttl) })
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next()
        if (oldest.done === true) break
        entries.delete(oldest.value)
      }
    }

    const bump = (key: string) => {
      versions.delete(key)
      versions.set(key, ++lastVersion)
      while (versions.size > maxVersions) {
        const oldest = versions.keys().next()
        if (oldest.done === true) break
        versions.delete(oldest.value)
        floor = lastVersion
      }
    }

    const now = Clock.currentTimeMillis

    return {
      get: (key) => Effect.map(now, (millis) => read(key, millis)),
      getMany: (keys) => Effect.map(now, (millis) => keys.map((key) => read(key, millis))),
      set: (key, value, ttl) => Effect.map(now, (millis) => write(key, value, ttl, millis)),
      deleteMany: (keys) =>
        Effect.sync(() => {
          for (const key of keys) entries.delete(key)
        }),
      getVersioned: (key) =>
        Effect.map(now, (millis) => ({ value: read(key, millis), version: String(versionOf(key)) })),
      setIfVersion: (key, value, ttl, version) =>
        Effect.map(now, (millis) => {
          if (String(versionOf(key)) !== version) return false
          write(key, value, ttl, millis)
          return true
        }),
      invalidate: (keys) =>
        Effect.sync(() => {
          for (const key of keys) {
            entries.delete(key)
            bump(key)
          }
        })
    }
  })

/**
 * A fresh in-memory cache per build of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<CacheStore> =>
  Layer.effect(CacheStore, makeMemory(options))

/**
 * How `layerRedis` stores and waits.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions {
  /** Put in front of every key, so that several applications can share one Redis (default `tenant-infra:`). */
  readonly prefix?: string | undefined
  /** How long one command may take before it fails as `Timeout` (default 200 milliseconds). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /**
   * How long a key's version outlives its last invalidation (default 1 day). A fill that takes longer than this
   * between its read and its write could store a stale value: keep it far above any repository load time.
   */
  readonly versionTtl?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions extends RedisStoreOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://...`; a secret. */
  readonly url: Redacted.Redacted
  /** How long to wait for the first connection before serving anyway (default 1 second). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

const storeOptions = (options: RedisStoreOptions) => ({
  prefix: options.prefix ?? "tenant-infra:",
  commandTimeout: options.commandTimeout ?? Duration.millis(200),
  versionTtl: options.versionTtl ?? Duration.days(1)
})

/**
 * The store on a Redis the layer connects to, from `url`; the client is closed with the layer's scope.
 *
 * A Redis that is down does not stop the layer from building: commands fail at once as `Unreachable` (they are
 * not queued while disconnected) until the client, which keeps reconnecting, is back. Atomic steps are Lua
 * scripts that each touch one key and its version, which share a hash slot (see `layerRedisClient`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions): Layer.Layer<CacheStore> =>
  Layer.scoped(
    CacheStore,
    Effect.gen(function*() {
      const timeout = Duration.decode(options.commandTimeout ?? Duration.millis(200))
      const client = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new Redis(Redacted.value(options.url), {
            lazyConnect: true,
            // A cache that cannot answer now is a miss now: never queue commands for a later reconnection.
            enableOfflineQueue: false,
            maxRetriesPerRequest: 0,
            commandTimeout: Duration.toMillis(timeout),
            connectTimeout: Duration.toMillis(options.connectTimeout ?? Duration.seconds(1))
          })
        ),
        (client) =>
          Effect.promise(() => client.quit().catch(() => client.disconnect())).pipe(
            Effect.timeoutOption(Duration.seconds(1)),
            Effect.ensuring(Effect.sync(() => client.disconnect()))
          )
      )
      // Errors are reported per command; without a listener ioredis would print each one.
      client.on("error", () => undefined)
      yield* Effect.promise(() => client.connect().catch(() => undefined)).pipe(
        Effect.timeoutOption(options.connectTimeout ?? Duration.seconds(1))
      )
      return makeRedisStore(client, storeOptions(options))
    })
  )

/**
 * The store on a client the application owns and closes: a `Redis` or a `Cluster`. Every key is written as
 * `<prefix>{<key>}` and its version as `<prefix>{<key>}:v`, so a key and its version always share a Cluster
 * hash slot and every script touches one slot.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisClient = (client: Redis | Cluster, options: RedisStoreOptions = {}): Layer.Layer<CacheStore> =>
  Layer.sync(CacheStore, () => makeRedisStore(client, storeOptions(options)))

/**
 * `layerRedis` configured from the environment: `REDIS_URL` (a secret), `REDIS_KEY_PREFIX` (default
 * `tenant-infra:`) and `REDIS_COMMAND_TIMEOUT` (default 200 milliseconds).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisConfig: Layer.Layer<CacheStore, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      url: Config.redacted("REDIS_URL"),
      prefix: Config.string("REDIS_KEY_PREFIX").pipe(Config.withDefault("tenant-infra:")),
      commandTimeout: Config.duration("REDIS_COMMAND_TIMEOUT").pipe(Config.withDefault(Duration.millis(200)))
    }),
    layerRedis
  )
)
