/**
 * The conformance suite of the `CacheStore` port, written once and run against every store: `CacheStore.test.ts`
 * runs it on memory, Redis and the two tiers, `CacheStoreCluster.test.ts` on a Redis Cluster.
 */
import { assert, describe } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as CacheStore from "../../src/CacheStore.js"
import type { CacheBackend } from "./cacheBackends.js"

const store = CacheStore.CacheStore
const key = (name: string) => `test:${name}:${Math.random().toString(36).slice(2)}`

/**
 * Registers the suite's tests in the current `describe`: `test` runs each body on a fresh store of the backend
 * (for example `it.effect(name, () => Effect.provide(body, backend.layer))`), and `backend.elapse` lets time pass
 * for it.
 */
export const cacheStoreConformance = (
  backend: Pick<CacheBackend, "elapse">,
  test: (name: string, body: Effect.Effect<void, unknown, CacheStore.CacheStore>) => void
): void => {
  test(
    "stores, reads and deletes values, many at once, in order",
    Effect.gen(function*() {
      const cache = yield* store
      const [a, b, c] = [key("a"), key("b"), key("c")]
      assert.isTrue(Option.isNone(yield* cache.get(a)))
      yield* cache.set(a, "alpha", "1 minute")
      yield* cache.set(b, "beta", "1 minute")
      assert.deepStrictEqual(yield* cache.get(a), Option.some("alpha"))
      assert.deepStrictEqual(yield* cache.getMany([b, c, a]), [
        Option.some("beta"),
        Option.none(),
        Option.some("alpha")
      ])
      yield* cache.set(a, "alpha 2", "1 minute")
      assert.deepStrictEqual(yield* cache.get(a), Option.some("alpha 2"))
      yield* cache.deleteMany([a, b, c])
      assert.deepStrictEqual(yield* cache.getMany([a, b]), [Option.none(), Option.none()])
    })
  )

  test(
    "never returns a value past its TTL",
    Effect.gen(function*() {
      const cache = yield* store
      const k = key("ttl")
      yield* cache.set(k, "short-lived", "2 seconds")
      yield* backend.elapse("1500 millis")
      assert.deepStrictEqual(yield* cache.get(k), Option.some("short-lived"))
      yield* backend.elapse("600 millis")
      assert.isTrue(Option.isNone(yield* cache.get(k)))
      assert.isTrue(Option.isNone((yield* cache.getVersioned(k)).value))
    })
  )

  test(
    "keeps text exactly, whatever it holds",
    Effect.gen(function*() {
      const cache = yield* store
      const k = key("text")
      const text = "测试（北京） \u0000 \r\n \"quoted\" 🚀 {\"json\":true}"
      yield* cache.set(k, text, "1 minute")
      assert.deepStrictEqual(yield* cache.get(k), Option.some(text))
    })
  )

  describe("versions: a fill that read before an invalidation never writes after it", () => {
    test(
      "a fill at the version it read is stored",
      Effect.gen(function*() {
        const cache = yield* store
        const k = key("fill")
        const { value, version } = yield* cache.getVersioned(k)
        assert.isTrue(Option.isNone(value))
        assert.isTrue(yield* cache.setIfVersion(k, "loaded", "1 minute", version))
        const after = yield* cache.getVersioned(k)
        assert.deepStrictEqual(after.value, Option.some("loaded"))
        assert.strictEqual(after.version, version)
      })
    )

    test(
      "a fill that read before an invalidation is refused, and the invalidation stands",
      Effect.gen(function*() {
        const cache = yield* store
        const k = key("race")
        yield* cache.set(k, "v1", "1 minute")
        const before = yield* cache.getVersioned(k)
        // An update commits and invalidates while the fill is still loading.
        yield* cache.invalidate([k])
        assert.isTrue(Option.isNone(yield* cache.get(k)))
        assert.isFalse(yield* cache.setIfVersion(k, "stale v1", "1 minute", before.version))
        assert.isTrue(Option.isNone(yield* cache.get(k)))
        // The next fill reads the new version and is stored.
        const next = yield* cache.getVersioned(k)
        assert.notStrictEqual(next.version, before.version)
        assert.isTrue(yield* cache.setIfVersion(k, "v2", "1 minute", next.version))
        assert.deepStrictEqual(yield* cache.get(k), Option.some("v2"))
      })
    )

    test(
      "invalidating one key leaves the others' versions alone",
      Effect.gen(function*() {
        const cache = yield* store
        const [a, b] = [key("a"), key("b")]
        const readA = yield* cache.getVersioned(a)
        const readB = yield* cache.getVersioned(b)
        yield* cache.invalidate([b])
        assert.isTrue(yield* cache.setIfVersion(a, "a", "1 minute", readA.version))
        assert.isFalse(yield* cache.setIfVersion(b, "b", "1 minute", readB.version))
      })
    )

    test(
      "a version is refused once used by an invalidation, however many invalidations follow",
      Effect.gen(function*() {
        const cache = yield* store
        const k = key("many")
        const seen = new Set<string>()
        for (let i = 0; i < 5; i++) {
          seen.add((yield* cache.getVersioned(k)).version)
          yield* cache.invalidate([k])
        }
        assert.strictEqual(seen.size, 5)
      })
    )
  })

  test(
    "a mark moves only from the mark read, and one already at or past the target covers it",
    Effect.gen(function*() {
      const marks = (yield* store).marks
      if (marks === undefined) return assert.fail("the store keeps no marks")
      const name = key("mark")
      assert.isTrue(Option.isNone(yield* marks.read(name)))
      assert.isTrue(yield* marks.advance(name, undefined, "10"))
      assert.deepStrictEqual(yield* marks.read(name), Option.some("10"))
      // A writer that read no mark, or an older one, never moves it back; the stored mark covers its target.
      assert.isTrue(yield* marks.advance(name, undefined, "5"))
      // One whose mark moved meanwhile, to below its target, is refused.
      assert.isFalse(yield* marks.advance(name, "7", "20"))
      assert.deepStrictEqual(yield* marks.read(name), Option.some("10"))
      assert.isTrue(yield* marks.advance(name, "10", "20"))
      assert.deepStrictEqual(yield* marks.read(name), Option.some("20"))
    })
  )
}
