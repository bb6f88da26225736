import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as CacheStore from "../src/CacheStore.js"
import { cacheBackends } from "./utils/cacheBackends.js"
import { cacheStoreConformance } from "./utils/cacheStoreConformance.js"

const store = CacheStore.CacheStore

for (const backend of cacheBackends) {
  describe(`CacheStore conformance [${backend.name}]`, () => {
    cacheStoreConformance(backend, (name, body) => it.effect(name, () => Effect.provide(body, backend.layer)))
  })
}

describe("CacheStore.layerMemory", () => {
  it.effect("holds at most maxEntries values, evicting the least recently used first", () =>
    Effect.gen(function*() {
      const cache = yield* store
      yield* cache.set("a", "1", "1 minute")
      yield* cache.set("b", "2", "1 minute")
      yield* cache.set("c", "3", "1 minute")
      yield* cache.get("a")
      yield* cache.set("d", "4", "1 minute")
      assert.deepStrictEqual(yield* cache.getMany(["a", "b", "c", "d"]), [
        Option.some("1"),
        Option.none(),
        Option.some("3"),
        Option.some("4")
      ])
    }).pipe(Effect.provide(CacheStore.layerMemory({ maxEntries: 3 }))))

  it.effect("refuses a fill whose key's version was forgotten, rather than risk a stale write", () =>
    Effect.gen(function*() {
      const cache = yield* store
      const before = yield* cache.getVersioned("tenant")
      yield* cache.invalidate(["tenant"])
      // Versions are kept for 4 x maxEntries keys: invalidating many others forgets the one above.
      yield* cache.invalidate(Array.from({ length: 10 }, (_, i) => `other-${i}`))
      assert.isFalse(yield* cache.setIfVersion("tenant", "stale", "1 minute", before.version))
      const now = yield* cache.getVersioned("tenant")
      assert.isTrue(yield* cache.setIfVersion("tenant", "fresh", "1 minute", now.version))
      assert.deepStrictEqual(yield* cache.get("tenant"), Option.some("fresh"))
    }).pipe(Effect.provide(CacheStore.layerMemory({ maxEntries: 2 }))))

  it.effect("expires by the Clock it runs under", () =>
    Effect.gen(function*() {
      const cache = yield* store
      yield* cache.set("k", "v", Duration.hours(1))
      yield* TestClock.adjust(Duration.minutes(59))
      assert.isTrue(Option.isSome(yield* cache.get("k")))
      yield* TestClock.adjust(Duration.minutes(1))
      assert.isTrue(Option.isNone(yield* cache.get("k")))
    }).pipe(Effect.provide(CacheStore.layerMemory())))
})
