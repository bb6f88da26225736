import { assert, describe, it } from "@effect/vitest"
import * as Array from "effect/Array"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import { Tenant, TenantId } from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { RepositoryError } from "../src/TenantRepositoryError.js"
import type { CacheBackend } from "./utils/cacheBackends.js"
import { cacheBackends } from "./utils/cacheBackends.js"
import { newTenant, stampAt, uniqueCode } from "./utils/tenants.js"

const repository = TenantRepository.TenantRepository
const store = CacheStore.CacheStore

type Operation = "findById" | "findByCode" | "findByDomain" | "list" | "countByStatus"

interface Gate {
  /** Completed once the paused load has read the repository. */
  readonly reached: Deferred.Deferred<void>
  /** The paused load returns what it read once this is completed. */
  readonly release: Deferred.Deferred<void>
}

/**
 * The repository and the store under the cache, seen from the test: how many times each read reached the
 * repository, and ways to pause or fail a load, a save's acknowledgement or an invalidation.
 */
interface Probe {
  readonly loads: (operation: Operation) => Effect.Effect<number>
  /** Pauses the next load of `operation` after it has read the repository, so what it returns is what it read. */
  readonly pauseNext: (operation: Operation) => Effect.Effect<Gate>
  readonly failNext: (operation: Operation) => Effect.Effect<void>
  /** Makes the next save commit and then fail, as when the connection drops before the commit is acknowledged. */
  readonly loseNextSaveAck: Effect.Effect<void>
  /** Pauses the next invalidation that touches `key` before it reaches the store. */
  readonly pauseInvalidationOf: (key: string) => Effect.Effect<Gate>
  /** Wraps the repository it is given, and provides it again. */
  readonly layer: Layer.Layer<TenantRepository.TenantRepository, never, TenantRepository.TenantRepository>
  /** Wraps the store it is given, and provides it again. */
  readonly storeLayer: Layer.Layer<CacheStore.CacheStore, never, CacheStore.CacheStore>
}

const makeProbe = Effect.sync((): Probe => {
  const counts: Record<Operation, number> = { findById: 0, findByCode: 0, findByDomain: 0, list: 0, countByStatus: 0 }
  const loadPauses = new Map<Operation, Gate>()
  const failures = new Set<Operation>()
  const invalidationPauses = new Map<string, Gate>()
  let ackLost = false
  const makeGate = Effect.all({ reached: Deferred.make<void>(), release: Deferred.make<void>() })
  const pass = (gate: Gate) => Effect.zipRight(Deferred.succeed(gate.reached, undefined), Deferred.await(gate.release))
  /** Takes the gate armed for `key`, if any: each pause stops one call. */
  const take = <K>(pauses: Map<K, Gate>, key: K): Gate | undefined => {
    const gate = pauses.get(key)
    pauses.delete(key)
    return gate
  }

  const around = <A, E>(operation: Operation, load: Effect.Effect<A, E>): Effect.Effect<A, E | RepositoryError> =>
    Effect.suspend((): Effect.Effect<A, E | RepositoryError> => {
      counts[operation]++
      if (failures.delete(operation)) return Effect.fail(new RepositoryError({ operation, detail: "injected" }))
      const gate = take(loadPauses, operation)
      return gate === undefined ? load : Effect.tap(load, () => pass(gate))
    })

  return {
    loads: (operation) => Effect.sync(() => counts[operation]),
    pauseNext: (operation) => Effect.tap(makeGate, (gate) => loadPauses.set(operation, gate)),
    failNext: (operation) => Effect.sync(() => failures.add(operation)),
    loseNextSaveAck: Effect.sync(() => {
      ackLost = true
    }),
    pauseInvalidationOf: (key) => Effect.tap(makeGate, (gate) => invalidationPauses.set(key, gate)),
    layer: Layer.effect(
      repository,
      Effect.map(repository, (inner) =>
        repository.of({
          ...inner,
          save: (tenant, events, expectedVersion) =>
            Effect.suspend(() => {
              if (!ackLost) return inner.save(tenant, events, expectedVersion)
              ackLost = false
              return Effect.zipRight(
                inner.save(tenant, events, expectedVersion),
                Effect.fail(new RepositoryError({ operation: "save", detail: "connection lost after the commit" }))
              )
            }),
          findById: (id, options) => around("findById", inner.findById(id, options)),
          findByCode: (code) => around("findByCode", inner.findByCode(code)),
          findByDomain: (domain) => around("findByDomain", inner.findByDomain(domain)),
          list: (query) => around("list", inner.list(query)),
          countByStatus: around("countByStatus", inner.countByStatus)
        }))
    ),
    storeLayer: Layer.effect(
      store,
      Effect.map(store, (inner) =>
        store.of({
          ...inner,
          invalidate: (keys) =>
            Effect.suspend(() => {
              const gate = keys.map((key) => take(invalidationPauses, key)).find((gate) => gate !== undefined)
              return gate === undefined ? inner.invalidate(keys) : Effect.zipRight(pass(gate), inner.invalidate(keys))
            })
        }))
    )
  }
})

/**
 * The cached repository over the probed repository over memory, and the probed store it caches in, which the
 * test reads too.
 */
const stack = (
  cache: Layer.Layer<CacheStore.CacheStore, unknown>,
  probe: Probe,
  options?: CachedTenantRepository.Options
) =>
  CachedTenantRepository.layer(options).pipe(
    Layer.provide(probe.layer.pipe(Layer.provide(TenantRepository.layerMemory))),
    Layer.provideMerge(probe.storeLayer.pipe(Layer.provide(cache)))
  )

/** Inserts a new tenant through the repository in context and returns it. */
const inserted = (input: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const { event, tenant } = yield* newTenant(input)
    yield* (yield* repository).insert(tenant, event)
    return tenant
  })

/** Applies a transition to a stored tenant, saves it and returns the new tenant. */
const saved = <E extends TenantEvent>(
  tenant: Tenant,
  step: (tenant: Tenant, stamp: TenantLifecycle.Stamp) => Either.Either<TenantLifecycle.Transition<E>, unknown>
) =>
  Effect.gen(function*() {
    const next = yield* step(tenant, stampAt(new Date(), { actor: "ops", reason: "because" }))
    yield* (yield* repository).save(next.tenant, [next.event], tenant.version)
    return next.tenant
  })

/** Changes a stored tenant's details, saves it and returns the new tenant. */
const updated = (tenant: Tenant, input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const change = yield* TenantLifecycle.update(tenant, input, stampAt(new Date()))
    const next = yield* change
    yield* (yield* repository).save(next.tenant, [next.event], tenant.version)
    return next.tenant
  })

const valueAt = (key: string) => Effect.flatMap(store, (cache) => Effect.map(cache.getVersioned(key), (v) => v.value))

/** The `tier` tags the stores give their metrics: the probe of the failure tests names none. */
const TIERS = ["memory", "redis", "memory+redis", "store"]

/** A counter's count for one lookup: on one tier, or summed over all of them. */
const countOf = (
  metric: Metric.Metric.Counter<number>,
  lookup: TenantCache.Lookup,
  tiers: ReadonlyArray<string> = TIERS,
  tags: Readonly<Record<string, string>> = {}
) =>
  Effect.map(
    Effect.forEach(tiers, (tier) =>
      Metric.value(
        Object.entries({ ...tags, tier, lookup }).reduce(
          (tagged, [key, value]) => Metric.tagged(tagged, key, value),
          metric
        )
      )),
    (states) => states.reduce((sum, state) => sum + state.count, 0)
  )

/** Reads by id that the store failed to answer, so far. */
const failedReads = countOf(CachedTenantRepository.errors, "id", TIERS, { operation: "get" })

/** Lets forked fibers run until they wait on something: a few turns of the scheduler, and some time for Redis. */
const settle = (backend: CacheBackend) =>
  Effect.zipRight(Effect.repeatN(Effect.yieldNow(), 20), backend.elapse("200 millis"))

describe("TenantCache", () => {
  it.effect("names keys by lookup under a prefix, with codes and domains normalised", () =>
    Effect.gen(function*() {
      const { tenant } = yield* newTenant({ code: "acme-corp", domain: "acme.example.com" })
      assert.strictEqual(TenantCache.idKey(tenant.id), `tenant:v1:id:${tenant.id}`)
      assert.strictEqual(TenantCache.codeKey("Acme_Corp", "app:"), "app:tenant:v1:code:acme-corp")
      assert.strictEqual(TenantCache.domainKey("ACME.Example.com.", "app:"), "app:tenant:v1:domain:acme.example.com")
      assert.deepStrictEqual(TenantCache.keysOf(tenant, "app:"), [
        `app:tenant:v1:id:${tenant.id}`,
        "app:tenant:v1:code:acme-corp",
        "app:tenant:v1:domain:acme.example.com"
      ])
      const { tenant: bare } = yield* newTenant()
      assert.lengthOf(TenantCache.keysOf(bare), 2)
      assert.deepStrictEqual(TenantCache.lookupKey("code", " ACME_corp "), Option.some("tenant:v1:code:acme-corp"))
      assert.deepStrictEqual(TenantCache.lookupKey("id", tenant.id), Option.some(`tenant:v1:id:${tenant.id}`))
    }))

  it("has no key for an input that no tenant can have", () => {
    assert.isTrue(Option.isNone(TenantCache.lookupKey("id", "not-a-uuid")))
    assert.isTrue(Option.isNone(TenantCache.lookupKey("id", "3F1C0C2E-5B7A-4D2A-9C1E-2B8F4E6A7D10")))
    assert.isTrue(Option.isNone(TenantCache.lookupKey("code", "1abc")))
    assert.isTrue(Option.isNone(TenantCache.lookupKey("domain", "localhost")))
  })

  it.effect("round-trips a tenant exactly: dates, optional fields, settings, brands", () =>
    Effect.gen(function*() {
      const { tenant } = yield* newTenant({
        domain: "acme.example.com",
        contact: { email: "admin@acme.test", phone: "+8613800138000", locale: "zh-CN" },
        settings: { "ui.theme": "dark", seats: 25, beta: true, note: null }
      })
      const suspended = yield* TenantLifecycle.suspend(tenant, stampAt(new Date(), { reason: "unpaid" }))
      for (const value of [tenant, suspended.tenant]) {
        const encoded = yield* TenantCache.encode(Option.some(value))
        const decoded = yield* TenantCache.decode(encoded)
        assert.deepStrictEqual(decoded, Option.some(value))
        assert.instanceOf(Option.getOrThrow(decoded), Tenant)
      }
      const { tenant: bare } = yield* newTenant()
      const encoded = yield* TenantCache.encode(Option.some(bare))
      assert.notInclude(encoded, "null")
      assert.deepStrictEqual(yield* TenantCache.decode(encoded), Option.some(bare))
    }))

  it.effect("makeDecoder gives each caller a tenant of its own, equal to a fresh decode, sharing nothing mutable", () =>
    Effect.gen(function*() {
      const { tenant } = yield* newTenant({
        domain: "acme.example.com",
        contact: { email: "admin@acme.test", phone: "+8613800138000" },
        settings: { "ui.theme": "dark", seats: 25 }
      })
      const { tenant: deleted } = yield* TenantLifecycle.softDelete(tenant, stampAt(new Date(), { reason: "closed" }))
      const decode = TenantCache.makeDecoder(2)
      for (const value of [tenant, deleted]) {
        const encoded = yield* TenantCache.encode(Option.some(value))
        const first = Option.getOrThrow(yield* decode("k", encoded))
        const second = Option.getOrThrow(yield* decode("k", encoded))
        assert.deepStrictEqual(Option.some(first), yield* TenantCache.decode(encoded))
        assert.deepStrictEqual(second, first)
        assert.instanceOf(second, Tenant)
        assert.isTrue(Schema.is(Tenant)(second))
        assert.isTrue(second.isLive === value.isLive) // What one caller changes, the next does not see.
        ;(first.contact as { email: string }).email = "changed@acme.test"
        ;(first.settings as Record<string, unknown>)["seats"] = 1
        first.createdAt.setTime(0)
        first.lastStatusChange?.at.setTime(0)
        first.deletedAt?.setTime(0)
        assert.deepStrictEqual(Option.getOrThrow(yield* decode("k", encoded)), value)
      }
      assert.deepStrictEqual(decode("k", TenantCache.ABSENT), Either.right(Option.none()))
      assert.isTrue(Either.isLeft(decode("k", "{}")))
    }))

  it("takes as an id key exactly what the TenantId schema takes", () => {
    const isTenantId = Schema.is(TenantId)
    for (
      const input of [
        "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
        "3F1C0C2E-5B7A-4D2A-9C1E-2B8F4E6A7D10",
        "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d1",
        "3f1c0c2e5b7a4d2a9c1e2b8f4e6a7d10",
        " 3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
        "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10\n",
        "g f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
        ""
      ]
    ) {
      assert.strictEqual(Option.isSome(TenantCache.lookupKey("id", input)), isTenantId(input), JSON.stringify(input))
    }
  })

  it("keeps an absence apart from every tenant, and reports a value that does not decode", () => {
    assert.deepStrictEqual(TenantCache.encode(Option.none()), Either.right(TenantCache.ABSENT))
    assert.deepStrictEqual(TenantCache.decode(TenantCache.ABSENT), Either.right(Option.none()))
    assert.isFalse(TenantCache.ABSENT.startsWith("{"))
    for (const value of ["", "not json", "null", "{}", `{"id":"x","code":"old-shape"}`, "[1,2]"]) {
      assert.isTrue(Either.isLeft(TenantCache.decode(value)), value)
    }
  })
})

for (const backend of cacheBackends) {
  describe(`CachedTenantRepository [${backend.name}]`, () => {
    // These suites test reads, fills, invalidation and outages, not the freshness bound across processes
    // (CacheFreshness*.test.ts do): a freshness poll that a loaded machine delays past the default 2 s would send
    // reads around the store and make counts of loads and fills depend on the machine's load.
    const untilProvenStale: CachedTenantRepository.Options = { maxStaleness: "1 minute" }

    const test = (
      name: string,
      body: (probe: Probe) => Effect.Effect<void, unknown, TenantRepository.TenantRepository | CacheStore.CacheStore>,
      options?: CachedTenantRepository.Options
    ) =>
      it.effect(
        name,
        () =>
          Effect.flatMap(
            makeProbe,
            (probe) => Effect.provide(body(probe), stack(backend.layer, probe, { ...untilProvenStale, ...options }))
          )
      )

    describe("reads", () => {
      test("answers by id, code and domain from the cache on the second call, exactly as stored", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const code = uniqueCode("acme-")
          const tenant = yield* saved(
            yield* inserted({
              code,
              name: "Société Générale",
              domain: `${code}.example.com`,
              contact: { email: "admin@acme.test", phone: "+8613800138000", locale: "zh-CN" },
              settings: { "ui.theme": "dark", seats: 25, beta: true, note: null }
            }),
            TenantLifecycle.activate
          )
          for (let i = 0; i < 3; i++) {
            assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
            assert.deepStrictEqual(yield* repo.findByCode(code.toUpperCase().replace("-", "_")), Option.some(tenant))
            assert.deepStrictEqual(yield* repo.findByDomain(`${code.toUpperCase()}.Example.COM.`), Option.some(tenant))
          }
          const cached = Option.getOrThrow(yield* repo.findById(tenant.id))
          assert.instanceOf(cached, Tenant)
          assert.instanceOf(cached.createdAt, Date)
          assert.deepStrictEqual(cached.lastStatusChange?.reason, "because")
          assert.deepStrictEqual(
            [yield* probe.loads("findById"), yield* probe.loads("findByCode"), yield* probe.loads("findByDomain")],
            [1, 1, 1]
          )
        }))

      test("fills the id key from a lookup by code or by domain", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const byCode = yield* inserted()
          const byDomain = yield* inserted({ domain: `${uniqueCode()}.example.com` })
          assert.deepStrictEqual(yield* repo.findByCode(byCode.code), Option.some(byCode))
          assert.deepStrictEqual(yield* repo.findByDomain(byDomain.domain ?? ""), Option.some(byDomain))
          assert.deepStrictEqual(yield* repo.findById(byCode.id), Option.some(byCode))
          assert.deepStrictEqual(yield* repo.findById(byDomain.id), Option.some(byDomain))
          assert.strictEqual(yield* probe.loads("findById"), 0)
        }))

      test("treats a cached value that does not decode as a miss, and replaces it", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const cache = yield* store
          const tenant = yield* inserted()
          const idKey = TenantCache.idKey(tenant.id)
          const codeKey = TenantCache.codeKey(tenant.code)
          yield* cache.set(idKey, JSON.stringify({ id: tenant.id, code: tenant.code, shape: "v0" }), "1 minute")
          yield* cache.set(codeKey, "not json", "1 minute")

          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          assert.deepStrictEqual(yield* repo.findByCode(tenant.code), Option.some(tenant))
          for (const key of [idKey, codeKey]) {
            const value = Option.getOrThrow(yield* valueAt(key))
            assert.deepStrictEqual(TenantCache.decode(value), Either.right(Option.some(tenant)))
          }
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          assert.deepStrictEqual(yield* repo.findByCode(tenant.code), Option.some(tenant))
          assert.deepStrictEqual([yield* probe.loads("findById"), yield* probe.loads("findByCode")], [1, 1])
        }))

      test("does not cache a lookup that no tenant can answer", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          for (let i = 0; i < 2; i++) {
            assert.isTrue(Option.isNone(yield* repo.findById("not-a-uuid" as Tenant["id"])))
            assert.isTrue(Option.isNone(yield* repo.findByCode("!!")))
          }
          assert.deepStrictEqual([yield* probe.loads("findById"), yield* probe.loads("findByCode")], [2, 2])
        }))

      test("reads deleted tenants (includeDeleted), lists and counts from the repository every time", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const deleted = yield* saved(yield* inserted(), TenantLifecycle.softDelete)
          for (let i = 0; i < 2; i++) {
            assert.deepStrictEqual(yield* repo.findById(deleted.id, { includeDeleted: true }), Option.some(deleted))
            assert.isTrue((yield* repo.list({ includeDeleted: true })).items.some((tenant) => tenant.id === deleted.id))
            assert.strictEqual((yield* repo.countByStatus).deleted, 1)
          }
          assert.deepStrictEqual(
            [yield* probe.loads("findById"), yield* probe.loads("list"), yield* probe.loads("countByStatus")],
            [2, 2, 2]
          )
        }))

      test("does not cache a load that failed: the next read loads again", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          yield* probe.failNext("findById")
          const error = yield* Effect.flip(repo.findById(tenant.id))
          assert.strictEqual(error._tag, "RepositoryError")
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          assert.strictEqual(yield* probe.loads("findById"), 2)
        }))

      test("counts hits, misses and fills by lookup, tagged with the store's tier", () =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          // Tagged with the store's tier, which is the backend's name.
          const counts = Effect.all([
            countOf(CachedTenantRepository.misses, "code", [backend.name]),
            countOf(CachedTenantRepository.fills, "code", [backend.name]),
            countOf(CachedTenantRepository.fills, "id", [backend.name]),
            countOf(CachedTenantRepository.hits, "id", [backend.name])
          ])
          const before = yield* counts
          yield* repo.findByCode(tenant.code)
          yield* repo.findById(tenant.id)
          const after = yield* counts
          assert.deepStrictEqual(Array.zipWith(after, before, (a, b) => a - b), [1, 1, 1, 1])
        }))
    })

    describe("TTL", () => {
      test(
        "caches an absence for absentTtl, then looks again, and an insert ends it at once",
        (probe) =>
          Effect.gen(function*() {
            const repo = yield* repository
            const code = uniqueCode()
            assert.isTrue(Option.isNone(yield* repo.findByCode(code)))
            assert.deepStrictEqual(yield* valueAt(TenantCache.codeKey(code)), Option.some(TenantCache.ABSENT))
            assert.isTrue(Option.isNone(yield* repo.findByCode(code)))
            assert.strictEqual(yield* probe.loads("findByCode"), 1)
            yield* backend.elapse("1100 millis")
            assert.isTrue(Option.isNone(yield* repo.findByCode(code)))
            assert.strictEqual(yield* probe.loads("findByCode"), 2)

            const tenant = yield* inserted({ code })
            assert.deepStrictEqual(yield* repo.findByCode(code), Option.some(tenant))
            assert.strictEqual(yield* probe.loads("findByCode"), 3)
          }),
        { absentTtl: "1 second", jitter: 0 }
      )

      test(
        "keeps found tenants for ttl, spread by jitter so that keys filled together expire apart",
        () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const cache = yield* store
            const tenants = yield* Effect.forEach(Array.range(1, 20), () => inserted())
            yield* Effect.forEach(tenants, (tenant) => repo.findById(tenant.id)).pipe(
              Effect.withRandom(Random.make("jitter"))
            )
            const cached = Effect.map(
              cache.getMany(tenants.map((tenant) => TenantCache.idKey(tenant.id))),
              (values) => values.filter(Option.isSome).length
            )
            // TTLs are spread over 500 to 1500 milliseconds.
            yield* backend.elapse("400 millis")
            assert.strictEqual(yield* cached, 20)
            yield* backend.elapse("600 millis")
            const halfway = yield* cached
            assert.isAbove(halfway, 0)
            assert.isBelow(halfway, 20)
            yield* backend.elapse("600 millis")
            assert.strictEqual(yield* cached, 0)
          }),
        { ttl: "1 second", jitter: 0.5 }
      )
    })

    describe("writes", () => {
      test("an update invalidates the id, code and domain keys, the replaced code and domain too", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const [oldCode, newCode] = [uniqueCode(), uniqueCode()]
          const tenant = yield* inserted({ code: oldCode, domain: `${oldCode}.example.com` })
          yield* repo.findById(tenant.id)
          yield* repo.findByCode(oldCode)
          yield* repo.findByDomain(`${oldCode}.example.com`)
          yield* repo.findByCode(newCode)
          const invalidatedBefore = yield* countOf(CachedTenantRepository.invalidations, "code")

          const changed = yield* updated(tenant, { code: newCode, domain: `${newCode}.example.com` })
          assert.strictEqual((yield* countOf(CachedTenantRepository.invalidations, "code")) - invalidatedBefore, 2)
          for (const key of [...TenantCache.keysOf(tenant), TenantCache.codeKey(newCode)]) {
            assert.isTrue(Option.isNone(yield* valueAt(key)), key)
          }
          assert.isTrue(Option.isNone(yield* repo.findByCode(oldCode)))
          assert.isTrue(Option.isNone(yield* repo.findByDomain(`${oldCode}.example.com`)))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          assert.deepStrictEqual(yield* repo.findByCode(newCode), Option.some(changed))
          assert.deepStrictEqual(yield* repo.findByDomain(`${newCode}.example.com`), Option.some(changed))
          assert.strictEqual(yield* probe.loads("findById"), 2)
        }))

      test("a delete and a restore invalidate every key of the tenant", () =>
        Effect.gen(function*() {
          const repo = yield* repository
          const code = uniqueCode()
          const domain = `${code}.example.com`
          const active = yield* saved(yield* inserted({ code, domain }), TenantLifecycle.activate)
          const find = (tenant: Tenant) =>
            Effect.all([repo.findById(tenant.id), repo.findByCode(code), repo.findByDomain(domain)])
          assert.deepStrictEqual(yield* find(active), [Option.some(active), Option.some(active), Option.some(active)])

          const deleted = yield* saved(active, TenantLifecycle.softDelete)
          assert.deepStrictEqual(yield* find(active), [Option.none(), Option.none(), Option.none()])
          assert.deepStrictEqual(yield* repo.findById(active.id, { includeDeleted: true }), Option.some(deleted))

          const restored = yield* saved(deleted, TenantLifecycle.restore)
          assert.deepStrictEqual(yield* find(active), [
            Option.some(restored),
            Option.some(restored),
            Option.some(restored)
          ])
        }))

      test("a write that failed after it may have committed invalidates too", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          yield* probe.loseNextSaveAck
          const error = yield* Effect.flip(updated(tenant, { name: "Renamed Inc." }))
          assert.strictEqual(error._tag, "RepositoryError")
          const stored = Option.getOrThrow(yield* repo.findById(tenant.id))
          assert.deepStrictEqual([stored.name, stored.version], ["Renamed Inc.", 2])
        }))

      test("a refused write invalidates nothing", () =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          const suspended = yield* saved(tenant, TenantLifecycle.suspend)
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(suspended))
          const stale = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
          const error = yield* Effect.flip(repo.save(stale.tenant, [stale.event], tenant.version))
          assert.strictEqual(error._tag, "ConcurrencyConflict")
          const cached = Option.getOrThrow(yield* valueAt(TenantCache.idKey(tenant.id)))
          assert.deepStrictEqual(TenantCache.decode(cached), Either.right(Option.some(suspended)))
        }))
    })

    describe("single flight", () => {
      test("1,000 concurrent misses on one key make one repository load", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          // Misses share a load only while the cache trusts the store (it has confirmed its freshness): on a
          // loaded machine the first confirmation can come late, as in a process's first moments. Wait for it, by
          // a fill of another tenant, which happens only then.
          const warm = yield* inserted()
          for (let tries = 0; tries < 100; tries++) {
            yield* repo.findById(warm.id)
            if (Option.isSome(yield* valueAt(TenantCache.idKey(warm.id)))) break
            yield* settle(backend)
          }
          assert.isTrue(Option.isSome(yield* valueAt(TenantCache.idKey(warm.id))), "the cache came to trust the store")
          const tenant = yield* inserted()
          const failedReadsBefore = yield* failedReads
          const loadsBefore = yield* probe.loads("findById")
          const gate = yield* probe.pauseNext("findById")
          const readers = yield* Effect.fork(
            Effect.forEach(Array.range(1, 1000), () => repo.findById(tenant.id), { concurrency: "unbounded" })
          )
          yield* Deferred.await(gate.reached)
          yield* settle(backend)
          yield* Deferred.succeed(gate.release, undefined)
          const results = yield* Fiber.join(readers)
          assert.lengthOf(results, 1000)
          assert.isTrue(results.every((result) => Option.isSome(result) && result.value.id === tenant.id))
          // A read the store did not answer in time (Redis on a busy machine: its command timeout is real time)
          // is not a miss: it reads the repository by itself, by design. Every miss shares the one load.
          const failed = (yield* failedReads) - failedReadsBefore
          assert.isBelow(failed, 1000)
          assert.strictEqual((yield* probe.loads("findById")) - loadsBefore, 1 + failed)
        }))

      test("a caller that is interrupted does not cancel the load for the others", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          const gate = yield* probe.pauseNext("findById")
          const first = yield* Effect.fork(repo.findById(tenant.id))
          yield* Deferred.await(gate.reached)
          const second = yield* Effect.fork(repo.findById(tenant.id))
          yield* settle(backend)
          yield* Fiber.interrupt(first)
          assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
          yield* Deferred.succeed(gate.release, undefined)
          assert.deepStrictEqual(yield* Fiber.join(second), Option.some(tenant))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          assert.strictEqual(yield* probe.loads("findById"), 1)
        }))
    })

    describe("freshness: a load that read before an update never fills after its invalidation", () => {
      test("by id: the fill is refused and the next read returns the new tenant", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          const refusedBefore = yield* countOf(CachedTenantRepository.refusedFills, "id")
          const gate = yield* probe.pauseNext("findById")
          const reader = yield* Effect.fork(repo.findById(tenant.id))
          yield* Deferred.await(gate.reached)

          const changed = yield* updated(tenant, { name: "Renamed Inc." })
          yield* Deferred.succeed(gate.release, undefined)
          // The paused read answers what it read: it began before the update returned.
          assert.deepStrictEqual(yield* Fiber.join(reader), Option.some(tenant))

          assert.strictEqual((yield* countOf(CachedTenantRepository.refusedFills, "id")) - refusedBefore, 1)
          assert.isTrue(Option.isNone(yield* valueAt(TenantCache.idKey(tenant.id))))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          assert.strictEqual(yield* probe.loads("findById"), 2)
        }))

      test("a read that starts after the update returned does not share the load that read before it", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          const gate = yield* probe.pauseNext("findById")
          const early = yield* Effect.fork(repo.findById(tenant.id))
          yield* Deferred.await(gate.reached)

          const changed = yield* updated(tenant, { name: "Renamed Inc." })
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          yield* Deferred.succeed(gate.release, undefined)
          assert.deepStrictEqual(yield* Fiber.join(early), Option.some(tenant))

          const cached = Option.getOrThrow(yield* valueAt(TenantCache.idKey(tenant.id)))
          assert.deepStrictEqual(TenantCache.decode(cached), Either.right(Option.some(changed)))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          assert.strictEqual(yield* probe.loads("findById"), 2)
        }))

      test("by code: neither the code key nor the id key is filled, and both read the new tenant", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const [oldCode, newCode] = [uniqueCode(), uniqueCode()]
          const tenant = yield* inserted({ code: oldCode })
          const gate = yield* probe.pauseNext("findByCode")
          const reader = yield* Effect.fork(repo.findByCode(oldCode))
          yield* Deferred.await(gate.reached)

          const changed = yield* updated(tenant, { code: newCode, name: "Renamed Inc." })
          yield* Deferred.succeed(gate.release, undefined)
          assert.deepStrictEqual(yield* Fiber.join(reader), Option.some(tenant))

          assert.isTrue(Option.isNone(yield* valueAt(TenantCache.codeKey(oldCode))))
          assert.isTrue(Option.isNone(yield* valueAt(TenantCache.idKey(tenant.id))))
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          assert.isTrue(Option.isNone(yield* repo.findByCode(oldCode)))
          assert.deepStrictEqual(yield* repo.findByCode(newCode), Option.some(changed))
        }))

      test("by code, with the update's invalidation half done: the id key is never left stale", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          const load = yield* probe.pauseNext("findByCode")
          const reader = yield* Effect.fork(repo.findByCode(tenant.code))
          yield* Deferred.await(load.reached)

          // The update commits, then stops before its invalidation reaches the code key; the load resumes and
          // fills in that gap, and only then does the invalidation go on.
          const invalidation = yield* probe.pauseInvalidationOf(TenantCache.codeKey(tenant.code))
          const writer = yield* Effect.fork(updated(tenant, { name: "Renamed Inc." }))
          yield* Deferred.await(invalidation.reached)
          yield* Deferred.succeed(load.release, undefined)
          assert.deepStrictEqual(yield* Fiber.join(reader), Option.some(tenant))
          yield* Deferred.succeed(invalidation.release, undefined)
          const changed = yield* Fiber.join(writer)

          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
          assert.deepStrictEqual(yield* repo.findByCode(tenant.code), Option.some(changed))
        }))

      test("for an absence: a fill of 'none' does not hide a tenant inserted meanwhile", (probe) =>
        Effect.gen(function*() {
          const repo = yield* repository
          const domain = `${uniqueCode()}.example.com`
          const gate = yield* probe.pauseNext("findByDomain")
          const reader = yield* Effect.fork(repo.findByDomain(domain))
          yield* Deferred.await(gate.reached)

          const tenant = yield* inserted({ domain })
          yield* Deferred.succeed(gate.release, undefined)
          assert.isTrue(Option.isNone(yield* Fiber.join(reader)))

          assert.isTrue(Option.isNone(yield* valueAt(TenantCache.domainKey(domain))))
          assert.deepStrictEqual(yield* repo.findByDomain(domain), Option.some(tenant))
        }))
    })
  })
}

describe("CachedTenantRepository with a CacheStore that fails every call", () => {
  const down = (operation: string) =>
    Effect.fail(new CacheStore.CacheError({ reason: "Unreachable", operation, detail: "the test cut it" }))
  const failing = Layer.succeed(
    store,
    store.of({
      get: () => down("get"),
      getMany: () => down("getMany"),
      set: () => down("set"),
      deleteMany: () => down("deleteMany"),
      getVersioned: () => down("getVersioned"),
      setIfVersion: () => down("setIfVersion"),
      invalidate: () => down("invalidate")
    })
  )

  it.effect("never fails a read or a write, reads the repository, and counts each key it could not invalidate", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      yield* Effect.gen(function*() {
        const repo = yield* repository
        const failuresBefore = yield* Effect.all([
          countOf(CachedTenantRepository.invalidationFailures, "id"),
          countOf(CachedTenantRepository.invalidationFailures, "code"),
          countOf(CachedTenantRepository.invalidationFailures, "domain")
        ])
        const [oldCode, newCode] = [uniqueCode(), uniqueCode()]
        const tenant = yield* inserted({ code: oldCode, domain: `${oldCode}.example.com` })
        for (let i = 0; i < 2; i++) {
          assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
          assert.deepStrictEqual(yield* repo.findByCode(oldCode), Option.some(tenant))
          assert.deepStrictEqual(yield* repo.findByDomain(`${oldCode}.example.com`), Option.some(tenant))
        }
        const changed = yield* updated(tenant, { code: newCode })
        assert.deepStrictEqual(yield* repo.findByCode(newCode), Option.some(changed))
        assert.isTrue(Option.isNone(yield* repo.findByCode(oldCode)))
        assert.deepStrictEqual(
          [yield* probe.loads("findById"), yield* probe.loads("findByCode"), yield* probe.loads("findByDomain")],
          [2, 4, 2]
        )
        const failuresAfter = yield* Effect.all([
          countOf(CachedTenantRepository.invalidationFailures, "id"),
          countOf(CachedTenantRepository.invalidationFailures, "code"),
          countOf(CachedTenantRepository.invalidationFailures, "domain")
        ])
        // The insert: id, code, domain. The update: id, new code, old code, domain.
        assert.deepStrictEqual(Array.zipWith(failuresAfter, failuresBefore, (a, b) => a - b), [2, 3, 2])
      }).pipe(Effect.provide(stack(failing, probe)))
    }))
})
