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
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type { Cluster } from "ioredis"
import { Redis } from "ioredis"
import { CacheError } from "./CacheError.js"
import { makeRedisStore } from "./internal/redisCacheStore.js"
import { makeTiered, tierReads as tierReadsCounter } from "./internal/tieredCacheStore.js"

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
  /** How long the value has left to live, when the store says. */
  readonly expiresIn?: Duration.Duration | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * What the store is, for the `tier` tag of the cache's metrics: `memory`, `redis`, `memory+redis` (the two
   * tiers, whose reads `tierReads` counts per tier); `store` when a store does not say.
   */
  readonly tier?: string | undefined
  /** Where the store lives, for log lines (`host:port`; never a password); none for a store in memory. */
  readonly address?: string | undefined
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
  /**
   * Proves that the server behind the store answers (Redis: `PING`, under the command timeout), for health
   * checks (see `InfraHealth`). A store held in memory has none: there is nothing to reach.
   */
  readonly ping?: Effect.Effect<void, CacheError> | undefined
  /**
   * The mark stored beside the values: how far they follow the repository's changes, which bounds staleness
   * across processes (see `CachedTenantRepository`). A store without marks gets inline invalidation only.
   */
  readonly marks?: Marks | undefined
}

/**
 * How far a store's values follow the repository's changes, in the repository's commit order. Marks are decimal
 * integers; every change below the stored mark has been applied to the values. The mark lives with the values,
 * so a store that loses them (a restart, a restore from disk) loses or rewinds its mark with them.
 *
 * @since 0.2.0
 * @category models
 */
export interface Marks {
  /** The stored mark named `name` (a cache's key prefix), if any. */
  readonly read: (name: string) => Effect.Effect<Option.Option<string>, CacheError>
  /**
   * Moves the mark `name` from `from` (`undefined`: none stored) to `to` in one atomic step, unless it changed in
   * the meantime; answers whether the stored mark now covers `to` (moved, or found at `to` or beyond).
   */
  readonly advance: (name: string, from: string | undefined, to: string) => Effect.Effect<boolean, CacheError>
  /** With a memory tier in front: the highest mark `name` its channel carried since it last (re)subscribed. */
  readonly heard?: ((name: string) => bigint | undefined) | undefined
  /** With a memory tier in front: the memory tier may answer until then (milliseconds since the epoch). */
  readonly trustLocalUntil?: ((millis: number) => void) | undefined
}

/** A mark moves only from what was read, or forward past it: see `Marks.advance`. */
export const advanceMark = (current: string | undefined, from: string | undefined, to: string): boolean | "move" =>
  current === from ? "move" : current !== undefined && DECIMAL_MARK.test(current) && BigInt(current) >= BigInt(to)

const DECIMAL_MARK = /^[0-9]{1,19}$/

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

    const readEntry = (key: string, now: number): Entry | undefined => {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      entries.delete(key)
      if (entry.expiresAt <= now) return undefined
      // Re-inserting makes the Map's insertion order the recency order.
      entries.set(key, entry)
      return entry
    }

    const read = (key: string, now: number): Option.Option<string> =>
      Option.map(Option.fromNullable(readEntry(key, now)), (entry) => entry.value)

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
    const marks = new Map<string, string>()

    return {
      tier: "memory",
      marks: {
        read: (name) => Effect.sync(() => Option.fromNullable(marks.get(name))),
        advance: (name, from, to) =>
          Effect.sync(() => {
            const outcome = advanceMark(marks.get(name), from, to)
            if (outcome !== "move") return outcome
            marks.set(name, to)
            return true
          })
      },
      get: (key) => Effect.map(now, (millis) => read(key, millis)),
      getMany: (keys) => Effect.map(now, (millis) => keys.map((key) => read(key, millis))),
      set: (key, value, ttl) => Effect.map(now, (millis) => write(key, value, ttl, millis)),
      deleteMany: (keys) =>
        Effect.sync(() => {
          for (const key of keys) entries.delete(key)
        }),
      getVersioned: (key) =>
        Effect.map(now, (millis) => {
          const entry = readEntry(key, millis)
          return entry === undefined
            ? { value: Option.none(), version: String(versionOf(key)) }
            : {
              value: Option.some(entry.value),
              version: String(versionOf(key)),
              expiresIn: Duration.millis(entry.expiresAt - millis)
            }
        }),
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
  Layer.scoped(CacheStore, Effect.map(redisClient(options), (client) => makeRedisStore(client, storeOptions(options))))

/** A client the layer owns: connected (or trying to) and closed with the scope; never queues commands. */
const redisClient = (options: RedisOptions) =>
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
    return client
  })

/**
 * Reads answered by each tier of `layerTiered`, tagged `tier` (`memory`, `redis`) and `result` (`hit`, `miss`);
 * a read that misses the memory tier is counted there and again at Redis.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tierReads = tierReadsCounter

/**
 * @since 0.1.0
 * @category models
 */
export interface TieredOptions extends RedisOptions {
  /** Most values the memory tier keeps (default 10,000). */
  readonly localMaxEntries?: number | undefined
  /**
   * How long a memory copy may live (default 10 seconds): the bound on staleness should a broadcast be lost
   * in a way the subscriber cannot notice.
   */
  readonly localTtl?: Duration.DurationInput | undefined
}

/**
 * Two tiers: a memory tier in front of Redis, for reads that do not leave the process, with every invalidation
 * broadcast over Redis pub/sub (channel `<prefix>invalidations`) so that every instance drops its memory copy.
 *
 * The freshness guarantee holds across instances: memory copies carry the Redis version they were read at,
 * and a copy is never put back once an invalidation (local or heard) has overtaken it. While the subscription
 * is down the memory tier is bypassed, and it is emptied when the subscription comes back, since broadcasts may
 * have been missed meanwhile. A broadcast lost while the subscription looked healthy leaves a stale copy for at
 * most `localTtl`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTiered = (options: TieredOptions): Layer.Layer<CacheStore> =>
  Layer.scoped(
    CacheStore,
    Effect.gen(function*() {
      const client = yield* redisClient(options)
      const settings = storeOptions(options)
      const channel = `${settings.prefix}invalidations`
      const subscriber = yield* Effect.acquireRelease(
        Effect.sync(() => client.duplicate({ enableOfflineQueue: true, lazyConnect: true, autoResubscribe: false })),
        (subscriber) => Effect.sync(() => subscriber.disconnect())
      )
      subscriber.on("error", () => undefined)
      // Broadcasts in the order they came: keys to drop, and marks (see `Marks`) that say every key broadcast
      // before them has been.
      const heard = yield* Queue.unbounded<ReadonlyArray<string> | { readonly name: string; readonly mark: bigint }>()
      const local = yield* makeMemory({ maxEntries: options.localMaxEntries ?? 10_000 })
      const shared = makeRedisStore(client, settings)
      // The memory tier is used only while broadcasts are certainly heard: from the moment the subscription is
      // confirmed until the connection leaves "ready". Every time it is lost, every memory copy is forgotten at
      // once (synchronously, so that no read can slip in first), since broadcasts may be missed from then on.
      // A cache that follows the repository's changes also bounds how long ago the last mark may have been heard.
      let subscribed = false
      const heardMarks = new Map<string, bigint>()
      let localTrustedUntil = Infinity
      const broadcast = (message: string) =>
        Effect.tryPromise({
          try: () => client.publish(channel, message),
          catch: (cause) =>
            new CacheError({
              reason: "Unreachable",
              operation: "publish",
              detail: cause instanceof Error ? cause.message : "",
              cause
            })
        }).pipe(
          Effect.timeoutFail({
            duration: settings.commandTimeout,
            onTimeout: () =>
              new CacheError({
                reason: "Timeout",
                operation: "publish",
                detail: `no answer within ${Duration.format(settings.commandTimeout)}`
              })
          }),
          Effect.asVoid
        )
      const tiered = makeTiered({
        local,
        shared,
        localTtl: options.localTtl ?? Duration.seconds(10),
        listening: () => subscribed && Date.now() < localTrustedUntil,
        // A broadcast that fails fails the invalidation, which is then retried: another instance must not keep
        // a copy that Redis no longer has.
        publish: (keys) => broadcast(JSON.stringify(keys))
      })
      const lost = () => {
        if (subscribed) tiered.forgetAllLocal()
        subscribed = false
        heardMarks.clear()
      }
      subscriber.on("close", lost)
      subscriber.on("end", lost)
      subscriber.on("reconnecting", lost)
      const firstSubscription = yield* Deferred.make<void>()
      subscriber.on("ready", () => {
        subscriber.subscribe(channel).then(
          () => {
            tiered.forgetAllLocal()
            subscribed = subscriber.status === "ready"
            Deferred.unsafeDone(firstSubscription, Exit.void)
          },
          lost
        )
      })
      subscriber.on("message", (_channel: string, message: string) => {
        try {
          const keys: unknown = JSON.parse(message)
          if (Array.isArray(keys)) Queue.unsafeOffer(heard, keys.filter((key) => typeof key === "string"))
          else if (
            typeof keys === "object" && keys !== null && "mark" in keys && typeof keys.mark === "string" &&
            DECIMAL_MARK.test(keys.mark) && "name" in keys && typeof keys.name === "string"
          ) {
            Queue.unsafeOffer(heard, { name: keys.name, mark: BigInt(keys.mark) })
          } else lost()
        } catch {
          lost()
        }
      })
      // Serve with both tiers from the start when Redis is there; without it, start anyway (Redis only).
      yield* Effect.zipRight(
        Effect.promise(() => subscriber.connect().catch(() => undefined)),
        Deferred.await(firstSubscription)
      ).pipe(Effect.timeoutOption(options.connectTimeout ?? Duration.seconds(1)))
      yield* Queue.take(heard).pipe(
        Effect.flatMap((message) =>
          "mark" in message
            ? Effect.sync(() => {
              const known = heardMarks.get(message.name)
              if (subscribed && (known === undefined || message.mark > known)) {
                heardMarks.set(message.name, message.mark)
              }
            })
            : tiered.dropLocal(message)
        ),
        Effect.forever,
        Effect.forkScoped
      )
      const marks: Marks = {
        read: (name) => shared.marks?.read(name) ?? Effect.succeedNone,
        // The mark is broadcast after the keys below it were: an instance that hears it has dropped them all.
        advance: (name, from, to) =>
          Effect.flatMap(
            shared.marks?.advance(name, from, to) ?? Effect.succeed(false),
            (covered) =>
              covered ? Effect.as(broadcast(JSON.stringify({ name, mark: to })), true) : Effect.succeed(false)
          ),
        heard: (name) => heardMarks.get(name),
        trustLocalUntil: (millis) => {
          localTrustedUntil = millis
        }
      }
      // The tiers answer together; what can be unreachable is Redis.
      return { ...tiered.store, address: shared.address, ping: shared.ping, marks }
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
