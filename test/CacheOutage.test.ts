import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import type { Redis } from "ioredis"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import type { Tenant } from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { makeOwnRedis, ownRedis, plainClient } from "./utils/redisServer.js"
import { newTenant, stampAt, uniqueCode } from "./utils/tenants.js"

const repository = TenantRepository.TenantRepository
const store = CacheStore.CacheStore

/** The store underneath, seen from the test: the calls that reached it, and a switch that makes each one fail. */
interface Switch {
  readonly calls: Array<string>
  down: boolean
  /** While set, invalidations reach the store only once it is done. */
  holdInvalidations?: Deferred.Deferred<void> | undefined
}

const switched = (state: Switch) =>
  Layer.effect(
    store,
    Effect.map(store, (inner) => {
      const call = <A>(operation: string, effect: Effect.Effect<A, CacheStore.CacheError>) =>
        Effect.suspend(() => {
          state.calls.push(operation)
          if (state.down) {
            return Effect.fail(
              new CacheStore.CacheError({ reason: "Unreachable", operation, detail: "the test cut it" })
            )
          }
          const hold = state.holdInvalidations
          return operation === "invalidate" && hold !== undefined
            ? Effect.zipRight(Deferred.await(hold), effect)
            : effect
        })
      return store.of({
        get: (key) => call("get", inner.get(key)),
        getMany: (keys) => call("getMany", inner.getMany(keys)),
        set: (key, value, ttl) => call("set", inner.set(key, value, ttl)),
        deleteMany: (keys) => call("deleteMany", inner.deleteMany(keys)),
        getVersioned: (key) => call("getVersioned", inner.getVersioned(key)),
        setIfVersion: (key, value, ttl, version) => call("setIfVersion", inner.setIfVersion(key, value, ttl, version)),
        invalidate: (keys) => call("invalidate", inner.invalidate(keys))
      })
    })
  )

/** The cached repository over memory, caching in `cache` seen through `state`; the store is provided too. */
const stack = (
  cache: Layer.Layer<CacheStore.CacheStore, unknown>,
  state: Switch,
  options: CachedTenantRepository.Options
) =>
  CachedTenantRepository.layer(options).pipe(
    Layer.provide(TenantRepository.layerMemory),
    Layer.provideMerge(switched(state).pipe(Layer.provide(cache)))
  )

const inserted = (input: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const { event, tenant } = yield* newTenant(input)
    yield* (yield* repository).insert(tenant, event)
    return tenant
  })

const updated = (tenant: Tenant, input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const next = yield* (yield* TenantLifecycle.update(tenant, input, stampAt(new Date())))
    yield* (yield* repository).save(next.tenant, [next.event], tenant.version)
    return next.tenant
  })

const breakerIsOpen = Effect.map(
  Metric.value(Metric.tagged(CachedTenantRepository.breakerOpen, "tier", "store")),
  (state) => state.value === 1
)

const findById = (id: Tenant["id"]) => Effect.flatMap(repository, (repo) => repo.findById(id))

/** A tenant read once (so cached), then updated while the store fails: the update's invalidation is pending. */
const updatedWhileDown = (state: Switch) =>
  Effect.gen(function*() {
    const tenant = yield* inserted()
    assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
    state.down = true
    const changed = yield* updated(tenant, { name: "Changed Inc." })
    state.down = false
    return changed
  })

describe("CachedTenantRepository while the store is failing (TestClock)", () => {
  const options = { breakerThreshold: 3, breakerCooldown: "5 seconds", retryInterval: "1 minute" } as const

  it.effect("opens the breaker after consecutive failures, skips the store, and closes after the cool-down", () =>
    Effect.gen(function*() {
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        state.down = true
        for (let i = 0; i < 3; i++) assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.isTrue(yield* breakerIsOpen)
        const before = state.calls.length
        for (let i = 0; i < 5; i++) assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.strictEqual(state.calls.length, before, "no store call while the breaker is open")

        yield* TestClock.adjust("4 seconds")
        yield* findById(tenant.id)
        assert.strictEqual(state.calls.length, before, "still open before the cool-down ends")

        // Half-open with the store still down: one call goes through, fails, and opens it again.
        yield* TestClock.adjust("1 second")
        yield* findById(tenant.id)
        assert.strictEqual(state.calls.length, before + 1)
        yield* findById(tenant.id)
        assert.strictEqual(state.calls.length, before + 1)
        assert.isTrue(yield* breakerIsOpen)

        state.down = false
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.isFalse(yield* breakerIsOpen)
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.strictEqual(state.calls.filter((call) => call === "setIfVersion").length, 1, "cached again")
      }).pipe(Effect.provide(stack(CacheStore.layerMemory(), state, options)))
    }))

  it.effect("keeps an invalidation that failed, and retries it before any read of the store after recovery", () =>
    Effect.gen(function*() {
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const failuresBefore = (yield* Metric.value(
          CachedTenantRepository.invalidationFailures.pipe(
            Metric.tagged("tier", "store"),
            Metric.tagged("lookup", "id")
          )
        )).count
        const changed = yield* updatedWhileDown(state)
        // The breaker is still closed: the next read retries the invalidation first, then reads the store.
        state.calls.length = 0
        assert.deepStrictEqual(yield* findById(changed.id), Option.some(changed))
        assert.deepStrictEqual(state.calls.slice(0, 2), ["invalidate", "get"])
        assert.deepStrictEqual(yield* findById(changed.id), Option.some(changed))
        const failuresAfter = (yield* Metric.value(
          CachedTenantRepository.invalidationFailures.pipe(
            Metric.tagged("tier", "store"),
            Metric.tagged("lookup", "id")
          )
        )).count
        assert.strictEqual(failuresAfter - failuresBefore, 1, "a retried invalidation is counted once")
      }).pipe(Effect.provide(stack(CacheStore.layerMemory(), state, options)))
    }))

  it.effect("has reads that come while pending invalidations are retried wait for that retry, not send their own", () =>
    Effect.gen(function*() {
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const changed = yield* updatedWhileDown(state)
        assert.isFalse(yield* breakerIsOpen, "two failures, under the threshold of three")
        const hold = yield* Deferred.make<void>()
        state.holdInvalidations = hold
        state.calls.length = 0
        const readers = yield* Effect.forEach(
          Array.from({ length: 20 }),
          () => Effect.fork(findById(changed.id)),
          { concurrency: "unbounded" }
        )
        // Let every reader run up to the retry it waits for.
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        assert.deepStrictEqual(state.calls, ["invalidate"], "one retry under way, whatever the number of readers")
        yield* Deferred.succeed(hold, undefined)
        for (const reader of readers) assert.deepStrictEqual(yield* Fiber.join(reader), Option.some(changed))
        assert.strictEqual(state.calls.filter((call) => call === "invalidate").length, 1)
        assert.deepStrictEqual(yield* findById(changed.id), Option.some(changed))
      }).pipe(Effect.provide(stack(CacheStore.layerMemory(), state, options)))
    }))

  it.effect("skips invalidations while the breaker is open, bypasses the store, and flushes them in the background", () =>
    Effect.gen(function*() {
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        state.down = true
        for (let i = 0; i < 3; i++) yield* findById(tenant.id)
        assert.isTrue(yield* breakerIsOpen)
        state.down = false
        const changed = yield* updated(tenant, { name: "Changed Inc." })
        // Open: the store is not asked at all, and the repository answers.
        state.calls.length = 0
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(changed))
        assert.deepStrictEqual(state.calls, [])
        // After the cool-down the background retry goes first: the stale value is gone before any read.
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(state.calls, ["invalidate"])
        assert.isFalse(yield* breakerIsOpen)
        const cached = yield* (yield* store).get(TenantCache.idKey(tenant.id))
        assert.isTrue(Option.isNone(cached))
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(changed))
      }).pipe(Effect.provide(stack(CacheStore.layerMemory(), state, options)))
    }))
})

describe("CachedTenantRepository with a Redis of its own that goes away", () => {
  const redisLayer = (url: string) =>
    CacheStoreRedis.layer({ url: Redacted.make(url), prefix: "t:", commandTimeout: Duration.millis(100) })

  /**
   * A command that timed out on the client still runs once the sleeping Redis wakes up, so the timed-out
   * invalidation deleted the value after all. Writing the old value back stands for the worse case, an
   * invalidation that never arrived (a connection lost with the command in it): the old tenant is in Redis.
   */
  const keepStale = (raw: Redis, key: string, value: string | null) =>
    Effect.promise(() => value === null ? Promise.resolve(null) : raw.set(key, value, "PX", 60_000))

  /** Lets real time pass: Redis and the client keep real time. */
  const wait = (duration: Duration.DurationInput) => Effect.sleep(duration)

  it.live("answers reads from the repository and accepts writes while Redis is stopped", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const repo = yield* repository
        const code = uniqueCode()
        const tenant = yield* inserted({ code, domain: `${code}.example.com` })
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        yield* redis.stop
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.deepStrictEqual(yield* repo.findByCode(code), Option.some(tenant))
        const changed = yield* updated(tenant, { name: "Changed Inc." })
        const other = yield* inserted()
        for (let i = 0; i < 10; i++) {
          assert.deepStrictEqual(yield* findById(tenant.id), Option.some(changed))
          assert.deepStrictEqual(yield* repo.findByDomain(`${code}.example.com`), Option.some(changed))
          assert.deepStrictEqual(yield* findById(other.id), Option.some(other))
        }
        // Back up before the scope ends, so that the server is stopped only once.
        yield* redis.start
      }).pipe(Effect.provide(stack(redisLayer(redis.url), state, { breakerCooldown: "200 millis" })))
    })))

  it.live("serves the new tenant after Redis restarts, when the update came while it was stopped", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        yield* redis.stop
        const changed = yield* updated(tenant, { name: "Changed Inc." })
        yield* redis.start
        // Every read from now on, while the client reconnects and after, answers the new tenant.
        for (let i = 0; i < 20; i++) {
          assert.deepStrictEqual(yield* findById(tenant.id), Option.some(changed))
          yield* wait("100 millis")
        }
      }).pipe(Effect.provide(stack(redisLayer(redis.url), state, { breakerCooldown: "200 millis" })))
    })))

  it.live("never serves the old tenant that a Redis killed during the update kept on disk", () =>
    Effect.scoped(Effect.gen(function*() {
      // Every write synced to disk before Redis answers: the restarted server holds every value it acknowledged.
      const redis = yield* ownRedis({ persistent: true })
      const raw = yield* plainClient(redis.url)
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        const rawKey = `t:{${TenantCache.idKey(tenant.id)}}`
        const old = yield* Effect.promise(() => raw.get(rawKey))
        assert.isNotNull(old)
        yield* redis.stop
        // The update commits; its invalidation cannot reach Redis.
        const changed = yield* updated(tenant, { name: "Changed Inc." })
        yield* redis.start
        // Redis is back with the old tenant: only the invalidation kept for a retry stands between it and a read.
        assert.strictEqual(yield* Effect.promise(() => raw.get(rawKey)), old)
        // Reads while the client reconnects and the breaker closes, until one has been answered through Redis
        // again (the key holds the new tenant), and a few after: every one answers the new tenant.
        const startedAt = performance.now()
        let refilled = 0
        while (refilled < 5) {
          assert.deepStrictEqual(
            yield* findById(tenant.id),
            Option.some(changed),
            "served the tenant before the update"
          )
          const cached = yield* Effect.promise(() => raw.get(rawKey))
          if (cached !== null && cached !== old) refilled++
          assert.isBelow(performance.now() - startedAt, 5000, "the cache never served through Redis again")
          yield* wait("20 millis")
        }
      }).pipe(Effect.provide(stack(redisLayer(redis.url), state, {
        breakerCooldown: "200 millis",
        // Only reads retry the kept invalidation here: no background retry can hide a read that skips it.
        retryInterval: "1 minute"
      })))
    })))

  it.live("never serves the old tenant that a timed-out invalidation left in Redis", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const raw = yield* plainClient(redis.url)
      const blocker = yield* plainClient(redis.url)
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        const rawKey = `t:{${TenantCache.idKey(tenant.id)}}`
        const old = yield* Effect.promise(() => raw.get(rawKey))
        assert.isNotNull(old)
        // DEBUG SLEEP blocks this Redis (the test's own) for a second: the invalidation times out.
        const sleeping = yield* Effect.fork(Effect.promise(() => blocker.call("DEBUG", "SLEEP", "1")))
        yield* wait("50 millis")
        const changed = yield* updated(tenant, { name: "Changed Inc." })
        yield* sleeping.await
        yield* keepStale(raw, rawKey, old)
        assert.deepStrictEqual(yield* Effect.promise(() => raw.get(rawKey)), old)
        // The read retried the invalidation before reading Redis, then filled the key with the new tenant.
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(changed))
        assert.notStrictEqual(yield* Effect.promise(() => raw.get(rawKey)), old)
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(changed))
      }).pipe(Effect.provide(stack(redisLayer(redis.url), state, { retryInterval: "1 minute" })))
    })))

  it.live("retries a timed-out invalidation in the background once Redis answers again", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const raw = yield* plainClient(redis.url)
      const blocker = yield* plainClient(redis.url)
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        yield* findById(tenant.id)
        const rawKey = `t:{${TenantCache.idKey(tenant.id)}}`
        const old = yield* Effect.promise(() => raw.get(rawKey))
        const sleeping = yield* Effect.fork(Effect.promise(() => blocker.call("DEBUG", "SLEEP", "1")))
        yield* wait("50 millis")
        yield* updated(tenant, { name: "Changed Inc." })
        yield* sleeping.await
        yield* keepStale(raw, rawKey, old)
        // No read: once the cool-down ends, the layer's own fiber deletes the old value.
        yield* Effect.promise(() => raw.get(rawKey)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (value) => value === null }),
          Effect.timeout("3 seconds")
        )
        assert.isNull(yield* Effect.promise(() => raw.get(rawKey)))
      }).pipe(Effect.provide(stack(redisLayer(redis.url), state, {
        retryInterval: "100 millis",
        // The two timed-out invalidations open the breaker for longer than Redis sleeps, so that the retry comes
        // after the old value is written back.
        breakerThreshold: 2,
        breakerCooldown: "1500 millis"
      })))
    })))

  it.live("opens the breaker after repeated failures and closes it after the cool-down once Redis is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const state: Switch = { calls: [], down: false }
      yield* Effect.gen(function*() {
        const tenant = yield* inserted()
        yield* findById(tenant.id)
        yield* redis.stop
        for (let i = 0; i < 3; i++) yield* findById(tenant.id)
        assert.isTrue(yield* breakerIsOpen)
        const openedAt = yield* Clock.currentTimeMillis
        const before = state.calls.length
        for (let i = 0; i < 20; i++) assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.strictEqual(state.calls.length, before, "no Redis call while the breaker is open")
        yield* redis.start
        // After the cool-down one read goes through; once the client has reconnected it succeeds and closes it.
        yield* findById(tenant.id).pipe(
          Effect.zipRight(breakerIsOpen),
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (open) => !open }),
          Effect.timeout("5 seconds")
        )
        assert.isAtLeast((yield* Clock.currentTimeMillis) - openedAt, 500, "closed no sooner than the cool-down")
        assert.isAbove(state.calls.length, before)
        assert.deepStrictEqual(yield* findById(tenant.id), Option.some(tenant))
        assert.isFalse(yield* breakerIsOpen)
      }).pipe(
        Effect.provide(stack(redisLayer(redis.url), state, { breakerThreshold: 3, breakerCooldown: "500 millis" }))
      )
    })))
})

describe("CachedTenantRepository's warnings during an outage", () => {
  it.live("are one line per kind per interval, naming the store's address, with the count since the last", () =>
    Effect.scoped(Effect.gen(function*() {
      const redis = yield* makeOwnRedis
      const lines: Array<
        { readonly level: string; readonly message: string; readonly annotations: Record<string, unknown> }
      > = []
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        lines.push({
          level: logLevel.label,
          message: String(Array.isArray(message) ? message[0] : message),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      })
      const context = yield* Layer.build(
        CachedTenantRepository.layer({ warningInterval: "600 millis" }).pipe(
          Layer.provide(TenantRepository.layerMemory),
          Layer.provide(CacheStoreRedis.layer({ url: Redacted.make(redis.url), prefix: `warn-${uniqueCode()}:` }))
        )
      )
      const cached = Context.get(context, repository)
      const tenants: Array<Tenant> = []
      for (let i = 0; i < 5; i++) {
        const { event, tenant } = yield* newTenant()
        yield* cached.insert(tenant, event)
        tenants.push(tenant)
      }
      yield* redis.stop
      const outage = Effect.gen(function*() {
        for (const tenant of tenants) {
          const next = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
          yield* cached.save(next.tenant, [next.event], tenant.version)
          tenants[tenants.indexOf(tenant)] = next.tenant
          // Reads never fail: they go to the repository.
          assert.isTrue(Option.isSome(yield* cached.findById(tenant.id)))
        }
      })
      yield* outage.pipe(
        Logger.withMinimumLogLevel(LogLevel.Debug),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const warningsOf = () =>
        lines.filter((line) => line.level === "WARN" && line.message.includes("invalidation did not reach"))
      assert.lengthOf(warningsOf(), 1)
      assert.strictEqual(warningsOf()[0]?.annotations.store, `127.0.0.1:${redis.port}`)
      // Held back, not lost: at debug level.
      assert.isAtLeast(
        lines.filter((line) => line.level === "DEBUG" && line.message.includes("invalidation did not reach")).length,
        4
      )
      yield* Effect.sleep("700 millis")
      const more = tenants.slice(0, 1)
      for (const tenant of more) {
        const next = yield* TenantLifecycle.suspend(tenant, stampAt(new Date()))
        yield* cached.save(next.tenant, [next.event], tenant.version).pipe(
          Logger.withMinimumLogLevel(LogLevel.Debug),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      }
      assert.lengthOf(warningsOf(), 2)
      assert.isAtLeast(Number(warningsOf()[1]?.annotations.occurrences), 2)
      for (const line of lines) assert.notInclude(JSON.stringify(line), "password")
    })))
})
