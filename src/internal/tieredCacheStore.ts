import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as Option from "effect/Option"
import type * as CacheStore from "../CacheStore.js"
import { withTags } from "./observability.js"

/**
 * Two tiers: a small memory tier (`local`) in front of a shared store (`shared`, Redis), with every invalidation
 * broadcast to the other instances, which drop their memory copies.
 *
 * The memory tier keeps each value with the shared version it was read at, so a versioned read answers from
 * memory too. It never puts back a value that an invalidation has overtaken: each key has a local epoch, moved by
 * every invalidation this instance makes or hears of, and a memory fill is skipped when the key's epoch moved
 * between the read from the shared store and the fill. While the broadcast channel is down the memory tier is
 * neither read nor filled, and it is emptied when the channel comes back (messages may have been missed then).
 * A message lost any other way leaves a stale copy for at most the memory tier's TTL.
 */
/**
 * Reads answered by each tier, tagged `tier` (`memory`, `redis`) and `result` (`hit`, `miss`): a read that misses
 * the memory tier is counted there and again at Redis.
 */
const tierReadsKey = MetricKey.counter("tenant_cache_tier_reads", {
  description: "Cache reads by tier and result",
  incremental: true
})

export const tierReads = Metric.fromMetricKey(tierReadsKey)

const counted = (tier: string, result: string) => withTags(tierReadsKey, { tier, result })
const memoryHit = counted("memory", "hit")
const memoryMiss = counted("memory", "miss")
const redisHit = counted("redis", "hit")
const redisMiss = counted("redis", "miss")

export interface TieredOptions {
  readonly local: CacheStore.Service
  readonly shared: CacheStore.Service
  /** How long a memory copy may live: the bound on staleness should a broadcast be lost. */
  readonly localTtl: Duration.DurationInput
  /** Tells the other instances which keys to drop. */
  readonly publish: (keys: ReadonlyArray<string>) => Effect.Effect<void, CacheStore.CacheError>
  /** Whether broadcasts are being received right now. */
  readonly listening: () => boolean
}

export interface Tiered {
  readonly store: CacheStore.Service
  /** What to do with a broadcast: drop these keys' memory copies. */
  readonly dropLocal: (keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** What to do when broadcasts may have been missed: forget every memory copy, at once. */
  readonly forgetAllLocal: () => void
}

/** `<generation>:<version>:<value>`: generation and version are decimal counters, so two colons end them. */
const pack = (generation: number, version: string, value: string) => `${generation}:${version}:${value}`

const unpack = (packed: string) => {
  const first = packed.indexOf(":")
  const second = packed.indexOf(":", first + 1)
  return {
    generation: Number(packed.slice(0, first)),
    version: packed.slice(first + 1, second),
    value: packed.slice(second + 1)
  }
}

export const makeTiered = (options: TieredOptions): Tiered => {
  const epochs = new Map<string, number>()
  let generation = 0
  // Epochs of keys invalidated long ago are dropped in bulk; moving the generation keeps that safe.
  const MAX_EPOCHS = 100_000

  const epochOf = (key: string) => `${generation}:${epochs.get(key) ?? 0}`
  const touch = (key: string) => {
    epochs.set(key, (epochs.get(key) ?? 0) + 1)
    if (epochs.size > MAX_EPOCHS) {
      epochs.clear()
      generation++
    }
  }

  const dropLocal = (keys: ReadonlyArray<string>) =>
    Effect.zipRight(Effect.sync(() => keys.forEach(touch)), options.local.deleteMany(keys).pipe(Effect.ignore))

  const forgetAllLocal = () => {
    epochs.clear()
    generation++
  }

  const localTtl = Duration.decode(options.localTtl)

  /** A memory copy never outlives the shared value it copies. */
  const fillLocal = (key: string, version: string, value: string, epoch: string, left: Duration.Duration) =>
    epoch === epochOf(key) && options.listening()
      ? options.local.set(key, pack(generation, version, value), Duration.min(localTtl, left)).pipe(Effect.ignore)
      : Effect.void

  const getVersioned = (key: string): Effect.Effect<CacheStore.Versioned, CacheStore.CacheError> =>
    Effect.gen(function*() {
      const epoch = epochOf(key)
      if (options.listening()) {
        const local = yield* Effect.option(options.local.get(key))
        if (Option.isSome(local) && Option.isSome(local.value)) {
          const copy = unpack(local.value.value)
          // A copy from an older generation was made before the channel dropped: it may be stale.
          if (copy.generation === generation) {
            yield* Metric.increment(memoryHit)
            return { value: Option.some(copy.value), version: copy.version }
          }
        }
        yield* Metric.increment(memoryMiss)
      }
      const shared = yield* options.shared.getVersioned(key)
      yield* Metric.increment(Option.isSome(shared.value) ? redisHit : redisMiss)
      if (Option.isSome(shared.value) && shared.expiresIn !== undefined) {
        yield* fillLocal(key, shared.version, shared.value.value, epoch, shared.expiresIn)
      }
      return shared
    })

  const store: CacheStore.Service = {
    tier: "memory+redis",
    get: (key) => Effect.map(getVersioned(key), (read) => read.value),
    getMany: (keys) =>
      Effect.forEach(keys, (key) => Effect.map(getVersioned(key), (read) => read.value), { concurrency: "unbounded" }),
    set: (key, value, ttl) =>
      Effect.zipRight(options.shared.set(key, value, ttl), Effect.zipRight(dropLocal([key]), options.publish([key]))),
    deleteMany: (keys) =>
      Effect.zipRight(options.shared.deleteMany(keys), Effect.zipRight(dropLocal(keys), options.publish(keys))),
    getVersioned,
    setIfVersion: (key, value, ttl, version) =>
      Effect.gen(function*() {
        const epoch = epochOf(key)
        const stored = yield* options.shared.setIfVersion(key, value, ttl, version)
        if (stored) yield* fillLocal(key, version, value, epoch, Duration.decode(ttl))
        return stored
      }),
    invalidate: (keys) =>
      // Local copies go after the shared invalidation: a read that fetched the old value before it cannot put it
      // back (its epoch moved), and one that already did has its copy dropped here.
      Effect.zipRight(
        options.shared.invalidate(keys),
        Effect.zipRight(dropLocal(keys), options.publish(keys))
      )
  }

  return { store, dropLocal, forgetAllLocal }
}
