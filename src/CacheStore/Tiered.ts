/**
 * Two tiers: a memory tier in front of Redis (ioredis), for reads that do not leave the process, with every
 * invalidation broadcast over Redis pub/sub so that every instance drops its memory copy. Redis is a server the
 * layer connects to (`layer`), or a `Redis` or `Cluster` client the application owns (`layerClient`).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import * as CacheStoreTiered from "tenant-infra/CacheStore/Tiered"
 *
 * const store = CacheStoreTiered.layer({ url: Redacted.make("redis://127.0.0.1:6379"), localTtl: "10 seconds" })
 * ```
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"
import { CacheError } from "../CacheError.js"
import type { Marks } from "../CacheStore.js"
import { CacheStore, DECIMAL_MARK, makeMemory } from "../CacheStore.js"
import { acquireClient, makeRedisStore, storeSettings } from "../internal/redisCacheStore.js"
import type { TieredOptions as Options } from "../internal/redisSettings.js"
import { makeTiered, tierReads as tierReadsCounter } from "../internal/tieredCacheStore.js"

/**
 * Reads answered by each tier of this store, tagged `tier` (`memory`, `redis`) and `result` (`hit`, `miss`);
 * a read that misses the memory tier is counted there and again at Redis.
 *
 * @since 0.2.0
 * @category metrics
 */
export const tierReads = tierReadsCounter

export type {
  /**
   * @since 0.2.0
   * @category models
   */
  TieredOptions as Options
} from "../internal/redisSettings.js"

/**
 * The two tiers' options on a client the application owns (see {@link layerClient}): those of {@link Options}
 * but the URL. `connectTimeout` bounds how long the store waits for its first subscription before serving.
 *
 * @since 0.2.0
 * @category models
 */
export type ClientOptions = Omit<Options, "url">

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
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<CacheStore["Type"], never, Scope.Scope> =>
  Effect.flatMap(acquireClient(options), (client) => makeClient(client, options))

/**
 * The two tiers (see {@link make}) on a client the application owns and closes: a `Redis` or a `Cluster`. The
 * connection that hears broadcasts is the store's own, closed with the scope. On a Cluster it is a connection
 * to one node (a `PUBLISH` reaches every node), moved to another node when that one stays unreachable.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeClient = (
  client: Redis | Cluster,
  options: ClientOptions = {}
): Effect.Effect<CacheStore["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = storeSettings(options)
    const channel = `${settings.prefix}invalidations`
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
    const firstSubscription = yield* Deferred.make<void>()
    const hear = (message: string) => {
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
    }
    const listen = (subscriber: Redis) => {
      subscriber.on("error", () => undefined)
      subscriber.on("close", lost)
      subscriber.on("end", lost)
      subscriber.on("reconnecting", lost)
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
      subscriber.on("message", (_channel: string, message: string) => hear(message))
    }
    yield* isCluster(client) ? subscribeOnCluster(client, listen) : subscribeOnNode(client, listen)
    // Serve with both tiers from the start when Redis is there; without it, start anyway (Redis only).
    yield* Deferred.await(firstSubscription).pipe(Effect.timeoutOption(options.connectTimeout ?? Duration.seconds(1)))
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
          (covered) => covered ? Effect.as(broadcast(JSON.stringify({ name, mark: to })), true) : Effect.succeed(false)
        ),
      heard: (name) => heardMarks.get(name),
      trustLocalUntil: (millis) => {
        localTrustedUntil = millis
      }
    }
    // The tiers answer together; what can be unreachable is Redis.
    return { ...tiered.store, address: shared.address, ping: shared.ping, marks }
  })

const isCluster = (client: Redis | Cluster): client is Cluster => client.isCluster

/** On a single node: a second connection to it, which reconnects by itself, never resubscribing unnoticed. */
const subscribeOnNode = (client: Redis, listen: (subscriber: Redis) => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const subscriber = client.duplicate({ enableOfflineQueue: true, lazyConnect: true, autoResubscribe: false })
      listen(subscriber)
      subscriber.connect().catch(() => undefined)
      return subscriber
    }),
    (subscriber) => Effect.sync(() => subscriber.disconnect())
  ).pipe(Effect.asVoid)

/** Reconnections to one node before the subscription moves to another: about a second of trying. */
const NODE_RECONNECTIONS = 4

/**
 * On a Cluster: a connection of the store's own to one node, since a `PUBLISH` reaches every node. The Cluster's
 * own subscriber would not do: it moves between nodes and resubscribes without a word, so the store could not
 * tell that broadcasts were missed meanwhile. When the node stays unreachable, the connection ends (the store has
 * stopped trusting its memory tier already) and another node, picked from those the Cluster knows then, is tried.
 */
const subscribeOnCluster = (
  cluster: Cluster,
  listen: (subscriber: Redis) => void
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let closed = false
      let current: Redis | undefined
      let waitingForCluster = false
      let nextAttempt: ReturnType<typeof setTimeout> | undefined
      const addressOf = (node: Redis) => `${node.options.host}:${node.options.port}`
      const connectToANode = (unreachable?: string) => {
        waitingForCluster = false
        nextAttempt = undefined
        if (closed) return
        const nodes = cluster.nodes("all")
        const others = nodes.filter((node) => addressOf(node) !== unreachable)
        const candidates = others.length > 0 ? others : nodes
        const node = candidates[Math.floor(Math.random() * candidates.length)]
        if (node === undefined) {
          // The Cluster has not found its nodes yet: it says when it has.
          waitingForCluster = true
          cluster.once("ready", connectToANode)
          return
        }
        const subscriber = node.duplicate({
          enableOfflineQueue: true,
          lazyConnect: true,
          autoResubscribe: false,
          readOnly: false,
          retryStrategy: (attempt: number) => attempt > NODE_RECONNECTIONS ? null : 100 * attempt
        })
        current = subscriber
        listen(subscriber)
        subscriber.once("end", () => {
          if (!closed && current === subscriber) nextAttempt = setTimeout(connectToANode, 100, addressOf(node))
        })
        subscriber.connect().catch(() => undefined)
      }
      connectToANode()
      return () => {
        closed = true
        if (waitingForCluster) cluster.off("ready", connectToANode)
        if (nextAttempt !== undefined) clearTimeout(nextAttempt)
        current?.disconnect()
      }
    }),
    (close) => Effect.sync(close)
  ).pipe(Effect.asVoid)

/**
 * The two tiers (see {@link make}); the clients are closed with the layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<CacheStore> => Layer.scoped(CacheStore, make(options))

/**
 * The two tiers on a client the application owns and closes: a `Redis` or a `Cluster` (see {@link makeClient}).
 * The connection that hears broadcasts is the layer's own, closed with it.
 *
 * @example
 * ```ts
 * import { Cluster } from "ioredis"
 * import * as CacheStoreTiered from "tenant-infra/CacheStore/Tiered"
 *
 * const cluster = new Cluster([{ host: "127.0.0.1", port: 7000 }])
 * const store = CacheStoreTiered.layerClient(cluster, { prefix: "billing:" })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerClient = (client: Redis | Cluster, options: ClientOptions = {}): Layer.Layer<CacheStore> =>
  Layer.scoped(CacheStore, makeClient(client, options))

/**
 * {@link layer} with its options read from `Config`. The environment variables of `TenantInfra` (`REDIS_URL`,
 * `CACHE_TIERS=2`, ...) are one such configuration.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (options: Config.Config.Wrap<Options>): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
