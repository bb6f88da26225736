/**
 * Lookups made at once share one query (internal/lookupBatcher): first the batcher alone, with queries it counts,
 * then `TenantRepository/Pg`, whose statements are counted by their `sql.execute` spans.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Statement from "@effect/sql/Statement"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { type Answer, makeCallbackLookupBatcher, makeLookupBatcher } from "../src/internal/lookupBatcher.js"
import { PgPool } from "../src/internal/pgPool.js"
import type { Tenant, TenantId } from "../src/Tenant.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { layerClientInFreshSchema, layerHostClientInFreshSchema } from "./utils/postgres.js"
import { newTenant, uniqueCode } from "./utils/tenants.js"
import { recordingTracer } from "./utils/tracing.js"

class QueryFailed {
  readonly _tag = "QueryFailed"
}

/** Which batcher a test runs on: `makeLookupBatcher` (queries as Effects) or `makeCallbackLookupBatcher`. */
type Kind = "effect" | "callback"

/** A lookup on the callback batcher, as the repository makes one: waiting for its answer, stopped if interrupted. */
const onCallbacks = <A, E>(gather: (key: string, answer: Answer<A, E>) => () => void) => (key: string) =>
  Effect.async<Option.Option<A>, E>((resume) => {
    const stop = gather(
      key,
      (failure, found) =>
        resume(failure === undefined ? Effect.succeed(Option.fromNullable(found)) : Effect.fail(failure))
    )
    return Effect.sync(stop)
  })

/** A batcher over a table in memory, recording every query it is asked to make. */
const fakeBatcher = (
  kind: Kind,
  options: { readonly maxBatch?: number; readonly failMany?: () => boolean } = {}
) =>
  Effect.map(Effect.scope, (scope) => {
    const single: Array<string> = []
    const batches: Array<ReadonlyArray<string>> = []
    const rowOf = (key: string) => key.startsWith("missing") ? undefined : `row:${key}`
    const found = (keys: ReadonlyArray<string>) =>
      new Map(keys.filter((key) => !key.startsWith("missing")).map((key) => [key, `row:${key}`]))
    const maxBatch = options.maxBatch ?? 100
    const lookup = kind === "effect"
      ? makeLookupBatcher<string, QueryFailed>({
        // Answered on a later turn of the scheduler, as a query over the network is.
        one: (key) =>
          Effect.zipRight(
            Effect.sync(() => single.push(key)),
            Effect.as(Effect.yieldNow(), Option.fromNullable(rowOf(key)))
          ),
        many: (keys) =>
          Effect.suspend(() => {
            batches.push(keys)
            if (options.failMany?.() === true) return Effect.fail(new QueryFailed())
            return Effect.as(Effect.yieldNow(), found(keys))
          }),
        maxBatch,
        scope
      })
      : onCallbacks(makeCallbackLookupBatcher<string, QueryFailed>({
        // Answered on a later turn of the event loop, as a query over the network is.
        one: (key, answer) => {
          single.push(key)
          setImmediate(() => answer(undefined, rowOf(key)))
        },
        many: (keys, answer) => {
          batches.push(keys)
          const failed = options.failMany?.() === true
          setImmediate(() => failed ? answer(new QueryFailed(), undefined) : answer(undefined, found(keys)))
        },
        maxBatch
      }))
    return { lookup, single, batches }
  })

describe.each(["effect", "callback"] as const)("the %s batcher", (kind) => {
  it.scoped("sends a lookup that gathered no other alone, as it is", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher(kind)
      for (const key of ["a", "b", "missing-c", "a"]) {
        const found = yield* lookup(key)
        assert.deepStrictEqual(found, key.startsWith("missing") ? Option.none() : Option.some(`row:${key}`))
      }
      assert.deepStrictEqual(single, ["a", "b", "missing-c", "a"])
      assert.strictEqual(batches.length, 0)
    }))

  it.scoped("gathers lookups started together into one query, every time", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher(kind)
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
      const { batches, lookup, single } = yield* fakeBatcher(kind)
      const keys = Array.from({ length: 16 }, (_, i) => `k${i % 4}`)
      const found = yield* Effect.forEach(keys, lookup, { concurrency: "unbounded" })
      found.forEach((answer, i) => assert.deepStrictEqual(answer, Option.some(`row:${keys[i]}`)))
      assert.strictEqual(single.length, 0)
      assert.deepStrictEqual(batches.map((batch) => [...batch].sort()), [["k0", "k1", "k2", "k3"]])
    }))

  it.scoped("splits a large gathering into queries of at most maxBatch keys, sent together", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher(kind, { maxBatch: 10 })
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
      const found = yield* Effect.forEach(keys, lookup, { concurrency: "unbounded" })
      found.forEach((answer, i) => assert.deepStrictEqual(answer, Option.some(`row:${keys[i]}`)))
      assert.strictEqual(single.length, 0)
      assert.deepStrictEqual(batches.map((batch) => batch.length), [10, 10, 10, 10])
    }))

  it.scoped("fails every lookup a failed query carried, with its error, and serves the next ones", () =>
    Effect.gen(function*() {
      let fail = true
      const { lookup } = yield* fakeBatcher(kind, { failMany: () => fail })
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
})

describe("makeCallbackLookupBatcher", () => {
  it.effect("asks for no key whose every caller stopped waiting, and answers none of them", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<string>> = []
      const single: Array<string> = []
      const gather = makeCallbackLookupBatcher<string, never>({
        one: (key, answer) => {
          single.push(key)
          answer(undefined, `row:${key}`)
        },
        many: (keys, answer) => {
          batches.push(keys)
          answer(undefined, new Map(keys.map((key) => [key, `row:${key}`])))
        },
        maxBatch: 100
      })
      const answers: Array<string> = []
      const stopFirst = gather("first", (_, found) => answers.push(`first:${found}`))
      gather("a", (_, found) => answers.push(`a:${found}`))
      const stopB = gather("b", (_, found) => answers.push(`b:${found}`))
      gather("b", (_, found) => answers.push(`b again:${found}`))
      stopFirst()
      stopB()
      yield* Effect.promise(() => new Promise<void>((resolve) => queueMicrotask(resolve)))
      assert.deepStrictEqual(batches, [["a", "b"]])
      assert.deepStrictEqual(single, [])
      assert.deepStrictEqual(answers, ["a:row:a", "b again:row:b"])
      // A gathering left with one key is sent as one.
      const stopC = gather("c", (_, found) => answers.push(`c:${found}`))
      gather("d", (_, found) => answers.push(`d:${found}`))
      stopC()
      yield* Effect.promise(() => new Promise<void>((resolve) => queueMicrotask(resolve)))
      assert.deepStrictEqual(single, ["d"])
      assert.deepStrictEqual(answers.slice(2), ["d:row:d"])
    }))
})

describe("makeLookupBatcher, the opener interrupted", () => {
  it.scoped("still sends the keys that joined its gathering", () =>
    Effect.gen(function*() {
      const { batches, lookup, single } = yield* fakeBatcher("effect")
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

describe("makeLookupBatcher", () => {
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

/** The texts of the `sql.execute` spans that `effect` makes, in order. */
const statementTexts = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(recordingTracer, ({ spans, tracer }) =>
    Effect.map(
      Effect.withTracer(effect, tracer),
      (value) =>
        [
          value,
          spans.filter((span) => span.name === "sql.execute").map((span) =>
            String(span.attributes.get("db.query.text"))
          )
        ] as const
    ))

const insertedTenants = (count: number, prefix: string) =>
  Effect.flatMap(
    TenantRepository.TenantRepository,
    (repository) =>
      Effect.forEach(Array.from({ length: count }), () =>
        Effect.flatMap(newTenant({ code: uniqueCode(prefix) }), ({ event, tenant }) =>
          Effect.as(repository.insert(tenant, event), tenant)))
  )

/**
 * The texts of the statements `effect` sends straight to the pool of `Postgres.layer`'s client (not traced: the
 * way of most applications, where lookups take the callback batcher).
 */
const poolTexts = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(PgPool, ({ pool }) => {
    const texts: Array<string> = []
    const query = pool.query
    const recorded = function(this: unknown, ...args: Array<unknown>) {
      if (typeof args[0] === "string") texts.push(args[0])
      return (query as (...args: Array<unknown>) => unknown).apply(this, args)
    }
    pool.query = recorded as typeof pool.query
    return Effect.map(
      Effect.ensuring(effect, Effect.sync(() => pool.query = query)),
      (value) => [value, texts] as const
    )
  })

const layerPgWithClient = (options: TenantRepositoryPg.Options = {}) =>
  Layer.provideMerge(TenantRepositoryPg.layer(options), layerClientInFreshSchema)

describe("TenantRepository/Pg: lookups on the pool, untraced", () => {
  it.scoped("16 by id, 16 by code and 8 by domain at once: 3 statements; one alone: 1", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const tenants: Array<Tenant> = []
      for (let i = 0; i < 24; i++) {
        const { event, tenant } = yield* newTenant({
          code: uniqueCode("pool"),
          domain: `${uniqueCode("d")}.example.com`
        })
        yield* repository.insert(tenant, event)
        tenants.push(tenant)
      }
      const lookups: Array<readonly [Effect.Effect<Option.Option<Tenant>, unknown>, string | undefined]> = [
        ...tenants.slice(0, 15).map((t) => [repository.findById(t.id), t.id] as const),
        [repository.findById("00000000-0000-4000-8000-000000000000" as TenantId), undefined] as const,
        ...tenants.slice(8, 23).map((t) => [repository.findByCode(t.code.toUpperCase()), t.id] as const),
        [repository.findByCode("no-such-code"), undefined] as const,
        ...tenants.slice(16, 24).map((t) => [repository.findByDomain(t.domain ?? ""), t.id] as const)
      ]
      const [answers, texts] = yield* poolTexts(Effect.forEach(
        lookups,
        ([lookup, expected]) => Effect.map(lookup, (answer) => [Option.getOrUndefined(answer)?.id, expected]),
        { concurrency: "unbounded" }
      ))
      for (const [found, expected] of answers) assert.strictEqual(found, expected)
      assert.deepStrictEqual(texts.map((text) => / = ANY\(\$1\) AND deleted_at IS NULL$/.test(text)), [
        true,
        true,
        true
      ])
      const tenant = tenants[0] as Tenant
      const [alone, aloneTexts] = yield* poolTexts(repository.findById(tenant.id))
      assert.strictEqual(Option.getOrUndefined(alone)?.code, tenant.code)
      assert.strictEqual(aloneTexts.length, 1)
      assert.match(aloneTexts[0] ?? "", /WHERE id = \$1 AND deleted_at IS NULL$/)
    }).pipe(Effect.provide(layerPgWithClient())))

  it.scoped("with batchLookups: false, one statement a lookup", () =>
    Effect.gen(function*() {
      const tenants = yield* insertedTenants(8, "poolsingle")
      const repository = yield* TenantRepository.TenantRepository
      const [found, texts] = yield* poolTexts(
        Effect.forEach(tenants, (tenant) => repository.findById(tenant.id), { concurrency: "unbounded" })
      )
      assert.deepStrictEqual(found.map((t) => Option.getOrUndefined(t)?.id), tenants.map((t) => t.id))
      assert.strictEqual(texts.length, 8)
    }).pipe(Effect.provide(layerPgWithClient({ batchLookups: false }))))

  it.scopedLive("a caller interrupted while its lookup waits for a connection stops waiting; the pool serves the next", () =>
    Effect.gen(function*() {
      const tenants = yield* insertedTenants(2, "poolstop")
      const repository = yield* TenantRepository.TenantRepository
      const sql = yield* SqlClient.SqlClient
      // Every connection of the pool (8) busy for a while: the lookup queues for one.
      const sleepers = yield* Effect.forEach(
        Array.from({ length: 8 }),
        () => Effect.fork(sql`SELECT pg_sleep(1)`),
        { concurrency: "unbounded" }
      )
      yield* Effect.sleep("100 millis")
      const waiting = yield* Effect.fork(repository.findById((tenants[0] as Tenant).id))
      yield* Effect.sleep("50 millis")
      const exit = yield* Fiber.interrupt(waiting)
      assert.isTrue(Exit.isInterrupted(exit))
      // It stopped waiting while every connection was still busy.
      const stillBusy = yield* Effect.forEach(sleepers, Fiber.poll)
      assert.isTrue(stillBusy.every(Option.isNone))
      yield* Effect.forEach(sleepers, Fiber.join)
      const next = yield* repository.findById((tenants[1] as Tenant).id)
      assert.strictEqual(Option.getOrUndefined(next)?.id, (tenants[1] as Tenant).id)
    }).pipe(Effect.provide(layerPgWithClient())))
})

describe("TenantRepository/Pg: which way a lookup goes", () => {
  it.scoped("traced, or under a statement transformer, through @effect/sql on Postgres.layer's client too", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const tenants = yield* insertedTenants(4, "traced")
      const together = Effect.forEach(tenants, (tenant) => repository.findByCode(tenant.code), {
        concurrency: "unbounded"
      })
      const [found, texts] = yield* statementTexts(together)
      assert.deepStrictEqual(found.map((t) => Option.getOrUndefined(t)?.id), tenants.map((t) => t.id))
      assert.strictEqual(texts.length, 1)
      assert.match(texts[0] ?? "", /WHERE "code" IN \(\$1,\$2,\$3,\$4\)/)
      const transformed: Array<string> = []
      const [again, onPool] = yield* poolTexts(Statement.withTransformer(together, (statement) =>
        Effect.sync(() => {
          transformed.push(statement.compile()[0])
          return statement
        })))
      assert.deepStrictEqual(again.map((t) => Option.getOrUndefined(t)?.id), tenants.map((t) => t.id))
      assert.strictEqual(transformed.length, 1)
      // The pool still carries the statement, as @effect/sql's connection: its text is the client's, not ours.
      assert.deepStrictEqual(onPool.filter((text) => text.includes("= ANY(")), [])
    }).pipe(Effect.provide(layerPgWithClient())))

  it.scoped("on a host application's own PgClient, through @effect/sql: the same answers", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const tenants = yield* insertedTenants(4, "host")
      const [together, texts] = yield* statementTexts(
        Effect.forEach(tenants, (tenant) => repository.findById(tenant.id), { concurrency: "unbounded" })
      )
      assert.deepStrictEqual(together.map((found) => Option.getOrUndefined(found)?.id), tenants.map((t) => t.id))
      assert.strictEqual(texts.length, 1)
      assert.match(texts[0] ?? "", /WHERE "id" IN \(\$1,\$2,\$3,\$4\)/)
    }).pipe(Effect.provide(TenantRepositoryPg.layer().pipe(Layer.provide(layerHostClientInFreshSchema)))))

  it.scoped("inside a transaction, on the transaction's connection: its uncommitted change is seen, alone or at once", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const sql = yield* SqlClient.SqlClient
      const tenants = yield* insertedTenants(3, "intx")
      const seen = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`UPDATE tenants SET name = 'Renamed in the transaction' WHERE id IN ${
          sql.in(tenants.map((t) => t.id))
        }`
        const alone = yield* repository.findById((tenants[0] as Tenant).id)
        const together = yield* Effect.forEach(tenants, (tenant) => repository.findByCode(tenant.code), {
          concurrency: "unbounded"
        })
        return [alone, ...together].map((found) => Option.getOrUndefined(found)?.name)
      }))
      assert.deepStrictEqual(seen, Array.from({ length: 4 }, () => "Renamed in the transaction"))
      // Committed: read outside the transaction too.
      const after = yield* repository.findById((tenants[0] as Tenant).id)
      assert.strictEqual(Option.getOrUndefined(after)?.name, "Renamed in the transaction")
    }).pipe(Effect.provide(Layer.provideMerge(TenantRepositoryPg.layer(), layerClientInFreshSchema))))
})
