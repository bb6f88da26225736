/**
 * The port to a key-value cache over string keys and string values, and its memory layer (`layerMemory`:
 * bounded, LRU). The other stores live beside it and load their driver only when imported:
 * `tenant-infra/CacheStore/Redis` (ioredis, a single node or a Cluster) and `tenant-infra/CacheStore/Tiered`
 * (memory in front of Redis, with pub/sub invalidation).
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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { CacheError } from "./CacheError.js"

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

/** A mark as stored: a decimal of at most 19 digits (it is a PostgreSQL `xid8` or an outbox position). */
export const DECIMAL_MARK = /^[0-9]{1,19}$/

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
