/**
 * Lookups made at once share one query (internal/lookupBatcher): first the batcher alone, with queries it counts,
 * then `TenantRepository/Pg`, whose statements are counted by their `sql.execute` spans.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { makeLookupBatcher } from "../src/internal/lookupBatcher.js"
import type { Tenant, TenantId } from "../src/Tenant.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { layerClientInFreshSchema } from "./utils/postgres.js"
import { newTenant, uniqueCode } from "./utils/tenants.js"
import { recordingTracer } from "./utils/tracing.js"

class QueryFailed {
  readonly _tag = "QueryFailed"
}

/** A batcher over a table in memory, recording every query it is asked to make. */
const fakeBatcher = (options: { readonly maxBatch?: number; readonly failMany?: () => boolean } = {}) =>
  Effect.map(Effect.scope, (scope) => {
    const single: Array<string> = []
    const batches: Array<ReadonlyArray<string>> = []
    const lookup = makeLookupBatcher<string, QueryFailed>({
      // Answered on a later turn of the scheduler, as a query over the network is.
      one: (key) =>
        Effect.zipRight(
          Effect.sync(() => single.push(key)),
          Effect.as(Effect.yieldNow(), key.startsWith("missing") ? Option.none() : Option.some(`row:${key}`))
        ),
      many: (keys) =>
        Effect.suspend(() => {
          batches.push(keys)
          if (options.failMany?.() === true) return Effect.fail(new QueryFailed())
          return Effect.as(
            Effect.yieldNow(),
            new Map(keys.filter((key) => !key.startsWith("missing")).map((key) => [key, `row:${key}`]))
          )
        }),
      maxBatch: options.maxBatch ?? 100,
      scope
    })
    return { lookup, single, batches }
  })

describe("makeLookupBatcher", () => {
  it.scoped("sends a lookup that gathered no other alone, as it is", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher()
      for (const key of ["a", "b", "missing-c", "a"]) {
        const found = yield* lookup(key)
        assert.deepStrictEqual(found, key.startsWith("missing") ? Option.none() : Option.some(`row:${key}`))
      }
      assert.deepStrictEqual(single, ["a", "b", "missing-c", "a"])
      assert.strictEqual(batches.length, 0)
    }))

  it.scoped("gathers lookups started together into one query, every time", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher()
      const keys = Array.from({ length: 16 }, (_, i) => i % 5 === 4 ? `missing-${i}` : `k${i}`)
      const burst = Effect.forEach(keys, (key) => Effect.map(lookup(key), (answer) => [key, answer] as const), {
        concurrency: "unbounded"
      })
      for (let round = 1; round <= 2; round++) {
        for (const [key, answer] of yield* burst) {
          assert.deepStrictEqual(answer, key.startsWith("missing") ? Option.none() : Option.some(`row:${key}`))
        }
        assert.strictEqual(single.length, 0)
        assert.strictEqual(batches.length, round)
        assert.deepStrictEqual([...(batches[round - 1] ?? [])].sort(), [...keys].sort())
      }
    }))

  it.scoped("asks once for a key that several lookups wait for", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher()
      const keys = Array.from({ length: 16 }, (_, i) => `k${i % 4}`)
      const found = yield* Effect.forEach(keys, lookup, { concurrency: "unbounded" })
      found.forEach((answer, i) => assert.deepStrictEqual(answer, Option.some(`row:${keys[i]}`)))
      assert.strictEqual(single.length, 0)
      assert.deepStrictEqual(batches.map((batch) => [...batch].sort()), [["k0", "k1", "k2", "k3"]])
    }))

  it.scoped("splits a large gathering into queries of at most maxBatch keys, sent together", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher({ maxBatch: 10 })
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
      const found = yield* Effect.forEach(keys, lookup, { concurrency: "unbounded" })
      found.forEach((answer, i) => assert.deepStrictEqual(answer, Option.some(`row:${keys[i]}`)))
      assert.strictEqual(single.length, 0)
      assert.deepStrictEqual(batches.map((batch) => batch.length), [10, 10, 10, 10])
    }))

  it.scoped("fails every lookup a failed query carried, with its error, and serves the next ones", () =>
    Effect.gen(function*() {
      let fail = true
      const { lookup } = yield* fakeBatcher({ failMany: () => fail })
      const exits = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => `k${i}`),
        (key) => Effect.exit(lookup(key)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(exits.filter(Exit.isSuccess).length, 0)
      for (const exit of exits.filter(Exit.isFailure)) {
        assert.deepStrictEqual(Cause.failureOption(exit.cause), Option.some(new QueryFailed()))
      }
      fail = false
      const again = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => `k${i}`), lookup, {
        concurrency: "unbounded"
      })
      assert.isTrue(again.every(Option.isSome))
    }))

  it.scoped("keeps serving the others when one waiting caller is interrupted", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const release = yield* Deferred.make<void>()
      const batches: Array<ReadonlyArray<string>> = []
      const lookup = makeLookupBatcher<string, never>({
        one: (key) => Effect.as(Deferred.await(release), Option.some(`row:${key}`)),
        many: (keys) =>
          Effect.sync(() => {
            batches.push(keys)
            return new Map(keys.map((key) => [key, `row:${key}`]))
          }),
        maxBatch: 100,
        scope
      })
      const first = yield* Effect.fork(lookup("first"))
      yield* Effect.yieldNow()
      const [a, b, c] = [
        yield* Effect.fork(lookup("a")),
        yield* Effect.fork(lookup("b")),
        yield* Effect.fork(lookup("c"))
      ]
      // All three wait for the gathered query, which has not run yet.
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(b)
      assert.deepStrictEqual([yield* Fiber.join(a), yield* Fiber.join(c)], [Option.some("row:a"), Option.some("row:c")])
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual(yield* Fiber.join(first), Option.some("row:first"))
      assert.deepStrictEqual(batches, [["a", "b", "c"]])
    }))
})

describe("makeLookupBatcher, the opener interrupted", () => {
  it.scoped("still sends the keys that joined its gathering", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher()
      const opener = yield* Effect.fork(lookup("opener"))
      const joined = yield* Effect.forEach(["a", "b"], (key) => Effect.fork(lookup(key)))
      // The opener has opened its gathering and yields; the others have joined it.
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(opener)
      const answers = yield* Effect.forEach(joined, Fiber.join)
      assert.deepStrictEqual(answers, [Option.some("row:a"), Option.some("row:b")])
      assert.strictEqual(single.length, 0)
      assert.deepStrictEqual(batches, [["a", "b"]])
    }))
})

const layerPg = TenantRepositoryPg.layer().pipe(Layer.provide(layerClientInFreshSchema))

describe("TenantRepository/Pg: lookups at once", () => {
  it.scoped("16 lookups by id, 16 by code and 8 by domain at once: the same answers in 3 statements", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const tenants: Array<Tenant> = []
      for (let i = 0; i < 24; i++) {
        const { event, tenant } = yield* newTenant({
          code: uniqueCode("batch"),
          domain: `${uniqueCode("d")}.example.com`
        })
        yield* repository.insert(tenant, event)
        tenants.push(tenant)
      }
      const lookups: Array<readonly [string, Effect.Effect<Option.Option<Tenant>, unknown>, string | undefined]> = [
        ...tenants.slice(0, 15).map((t) => ["id", repository.findById(t.id), t.id] as const),
        ["id", repository.findById("00000000-0000-4000-8000-000000000000" as TenantId), undefined] as const,
        ...tenants.slice(8, 23).map((t) => ["code", repository.findByCode(t.code.toUpperCase()), t.id] as const),
        ["code", repository.findByCode("no-such-code"), undefined] as const,
        ...tenants.slice(16, 24).map((t) => ["domain", repository.findByDomain(t.domain ?? ""), t.id] as const)
      ]
      const { spans, tracer } = yield* recordingTracer
      const answers = yield* Effect.forEach(
        lookups,
        ([, lookup, expected]) => Effect.map(lookup, (answer) => [Option.getOrUndefined(answer)?.id, expected]),
        { concurrency: "unbounded" }
      ).pipe(Effect.withTracer(tracer))
      for (const [found, expected] of answers) assert.strictEqual(found, expected)
      const statements = spans.filter((span) => span.name === "sql.execute").length
      // One per kind of lookup; without gathering it would be 40.
      assert.strictEqual(statements, 3)
    }).pipe(Effect.provide(layerPg)))

  it.scoped("with batchLookups: false, every lookup is a statement of its own", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const tenants: Array<Tenant> = []
      for (let i = 0; i < 8; i++) {
        const { event, tenant } = yield* newTenant({ code: uniqueCode("single") })
        yield* repository.insert(tenant, event)
        tenants.push(tenant)
      }
      const { spans, tracer } = yield* recordingTracer
      const found = yield* Effect.forEach(tenants, (tenant) => repository.findById(tenant.id), {
        concurrency: "unbounded"
      }).pipe(Effect.withTracer(tracer))
      assert.deepStrictEqual(
        found.map((tenant) => Option.getOrUndefined(tenant)?.id),
        tenants.map((tenant) => tenant.id)
      )
      assert.strictEqual(spans.filter((span) => span.name === "sql.execute").length, 8)
    }).pipe(
      Effect.provide(TenantRepositoryPg.layer({ batchLookups: false }).pipe(Layer.provide(layerClientInFreshSchema)))
    ))

  it.scoped("a lookup alone is one statement", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const { event, tenant } = yield* newTenant({ code: uniqueCode("alone") })
      yield* repository.insert(tenant, event)
      const { spans, tracer } = yield* recordingTracer
      const found = yield* Effect.withTracer(repository.findById(tenant.id), tracer)
      assert.strictEqual(Option.getOrUndefined(found)?.code, tenant.code)
      assert.strictEqual(spans.filter((span) => span.name === "sql.execute").length, 1)
    }).pipe(Effect.provide(layerPg)))
})
