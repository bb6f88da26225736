import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { Redis } from "ioredis"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import { makeOwnRedis } from "./utils/redisServer.js"

/** Redis Cluster's hash slot of a key: CRC16 (XMODEM) of its hash tag, modulo 16384. */
const hashSlot = (key: string): number => {
  const open = key.indexOf("{")
  const close = open < 0 ? -1 : key.indexOf("}", open + 1)
  const tagged = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key
  let crc = 0
  for (const byte of Buffer.from(tagged)) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}

const storeOn = (url: string, options: Partial<CacheStoreRedis.Options> = {}) =>
  Effect.map(
    Layer.build(CacheStoreRedis.layer({ url: Redacted.make(url), prefix: "t:", ...options })),
    Context.get(CacheStore.CacheStore)
  )

describe("CacheStore.layerRedis", () => {
  it.live("keeps a key and its version in one Cluster hash slot", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const cache = yield* storeOn(redis.url)
      yield* cache.set("tenant:v1:id:42", "x", "1 minute")
      yield* cache.invalidate(["tenant:v1:code:acme"])
      yield* cache.set("tenant:v1:code:acme", "y", "1 minute")
      const raw = new Redis(redis.url)
      const keys = (yield* Effect.promise(() => raw.keys("*"))).sort()
      raw.disconnect()
      assert.deepStrictEqual(keys, ["t:{tenant:v1:code:acme}", "t:{tenant:v1:code:acme}:v", "t:{tenant:v1:id:42}"])
      assert.strictEqual(hashSlot("t:{tenant:v1:code:acme}"), hashSlot("t:{tenant:v1:code:acme}:v"))
      assert.notStrictEqual(hashSlot("t:{tenant:v1:code:acme}"), hashSlot("t:{tenant:v1:id:42}"))
    })))

  it.live("fails fast as Unreachable while Redis is down, and works again once it is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const cache = yield* storeOn(redis.url)
      yield* cache.set("k", "before", "1 minute")
      yield* redis.stop
      const [elapsed, error] = yield* Effect.timed(Effect.flip(cache.get("k")))
      assert.deepStrictEqual([error._tag, error.reason, error.operation], ["CacheError", "Unreachable", "get"])
      assert.isBelow(Duration.toMillis(elapsed), 500)
      yield* redis.start
      // The client reconnects by itself (with backoff); the store answers again without being rebuilt.
      const answer = yield* cache.get("k").pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 50 }))
      // A fresh server holds nothing: the value is gone, and the store says so instead of failing.
      assert.isTrue(Option.isNone(answer))
    })))

  it.live("fails as Timeout when Redis does not answer within the command timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const cache = yield* storeOn(redis.url, { commandTimeout: Duration.millis(100) })
      yield* cache.set("k", "v", "1 minute")
      const blocker = new Redis(redis.url)
      // DEBUG SLEEP blocks this Redis (the test's own) for a second.
      const sleeping = Effect.promise(() => blocker.call("DEBUG", "SLEEP", "1"))
      yield* Effect.fork(sleeping)
      yield* Effect.sleep("50 millis")
      const [elapsed, error] = yield* Effect.timed(Effect.flip(cache.get("k")))
      assert.deepStrictEqual([error.reason, error.operation], ["Timeout", "get"])
      assert.isBelow(Duration.toMillis(elapsed), 600)
      blocker.disconnect()
    })))

  it.live("times commands out itself on an application's client that has no command timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(redis.url)),
        (client) => Effect.sync(() => client.disconnect())
      )
      const cache = yield* Effect.map(
        Layer.build(CacheStoreRedis.layerClient(client, { prefix: "t:", commandTimeout: Duration.millis(100) })),
        Context.get(CacheStore.CacheStore)
      )
      yield* cache.set("k", "v", "1 minute")
      const blocker = new Redis(redis.url)
      yield* Effect.fork(Effect.promise(() => blocker.call("DEBUG", "SLEEP", "1")))
      yield* Effect.sleep("50 millis")
      const [elapsed, error] = yield* Effect.timed(Effect.flip(cache.get("k")))
      assert.deepStrictEqual([error.reason, error.operation], ["Timeout", "get"])
      assert.isBelow(Duration.toMillis(elapsed), 600)
      blocker.disconnect()
    })))

  it.live("fails as Response when Redis answers with an error", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const cache = yield* storeOn(redis.url)
      const raw = new Redis(redis.url)
      yield* Effect.promise(() => raw.lpush("t:{list}", "not a string"))
      raw.disconnect()
      const error = yield* Effect.flip(cache.get("list"))
      assert.deepStrictEqual([error.reason, error.operation], ["Response", "get"])
    })))

  it.live("builds while Redis is down, answering Unreachable rather than failing the application's start", () =>
    Effect.scoped(Effect.gen(function*() {
      // Nothing listens on port 1.
      const cache = yield* storeOn("redis://127.0.0.1:1", { connectTimeout: Duration.millis(200) })
      const error = yield* Effect.flip(cache.getVersioned("k"))
      assert.strictEqual(error.reason, "Unreachable")
    })))
})
