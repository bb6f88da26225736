import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as CacheStore from "../../src/CacheStore.js"

/** A CacheStore layer to run a suite against, and how to let time pass for it. */
export interface CacheBackend {
  readonly name: string
  /** A fresh, empty store (for Redis: under a key prefix of its own). */
  readonly layer: Layer.Layer<CacheStore.CacheStore, unknown>
  /** Lets `duration` pass for the store's clock: TestClock for memory, real time for Redis. */
  readonly elapse: (duration: Duration.DurationInput) => Effect.Effect<void>
}

export const memoryBackend: CacheBackend = {
  name: "memory",
  layer: CacheStore.layerMemory({ maxEntries: 1000 }),
  elapse: (duration) => TestClock.adjust(Duration.decode(duration))
}

/** Every CacheStore layer; suites loop over it, so a new layer is tested by adding it here. */
export const cacheBackends: ReadonlyArray<CacheBackend> = [memoryBackend]
