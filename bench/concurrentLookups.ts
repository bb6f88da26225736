/**
 * Lookups at concurrency 16 and at concurrency 1, by id and by code, through `TenantRepository/Pg` (its public
 * API only, so that it measures whatever the layer does: one query per lookup, or concurrent lookups batched),
 * against the raw `pg` driver doing the same lookups one query each, with the statement the repository issues
 * for one lookup (`FIND_BY_ID`, `FIND_BY_CODE`), a pool of the same size, and each row mapped into a plain
 * tenant-shaped object (`rowToProps`), as `findById.ts` does.
 *
 * - Concurrency 16: one operation looks up 16 different tenants, picked at random, at once. Ours: 16 fibers of
 *   one program (`Effect.forEach` with `concurrency: "unbounded"`, request batching left at its default, off),
 *   held to the goal; for reference the same with `batching: true`, and 16 programs started at once (one
 *   `runPromise` each, as 16 requests of a Promise-based server would). Raw: 16 queries at once
 *   (`Promise.all`). Figures per lookup.
 * - Concurrency 1: 20 lookups one after another in one fiber, against 20 awaited raw queries.
 *
 * Then, in a runtime that notes every statement it sends (`statements.ts`), how many statements on `tenants`
 * one operation of 16 concurrent lookups makes: 16 without batching, 1 with it.
 */
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import pg from "pg"
import { rowToProps, type TenantRow } from "../src/internal/tenantFields.js"
import type { Tenant, TenantId } from "../src/Tenant.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshSchemaNamed, urlWithSchema } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"
import { pgRepository, scopedRuntime } from "./runtimes.js"
import * as Statements from "./statements.js"
import { FIND_BY_CODE, FIND_BY_ID, pickDistinct, seed, sequentially } from "./tenants.js"

const TENANTS = 1_000
/** `TenantInfra.layerPostgres`'s default pool; the raw pool gets the same. */
const POOL_SIZE = 10
const CONCURRENCY = 16
const GOAL_CONCURRENT = 0.8
const GOAL_SEQUENTIAL = 1.3
/** Lookups per timed operation at concurrency 1: one fiber's worth for the program, as many awaits for raw. */
const SEQUENTIAL_BATCH = 20
/** What gathering may add to lookups made one at a time (issue 16: at most 5%). */
const GOAL_GATHERING_COST = 1.05
const PLAN_CONCURRENT: Harness.Plan = { warmup: 30, rounds: 11, opsPerRound: 30 }
const PLAN_SEQUENTIAL: Harness.Plan = { warmup: 20, rounds: 11, opsPerRound: 20 }
/** Operations of 16 concurrent lookups whose statements are counted. */
const COUNTED_OPERATIONS = 5

interface Target {
  readonly id: TenantId
  readonly code: string
}

/** One way of looking tenants up: by id or by code, ours and raw, each answering the tenant's id. */
interface Lookup {
  readonly name: "findById" | "findByCode"
  readonly ours: (repository: TenantRepository.Service, target: Target) => Effect.Effect<Option.Option<Tenant>, unknown>
  readonly statement: string
  readonly key: (target: Target) => string
}

const lookups: ReadonlyArray<Lookup> = [
  {
    name: "findById",
    ours: (repository, target) => repository.findById(target.id),
    statement: FIND_BY_ID,
    key: (target) => target.id
  },
  {
    name: "findByCode",
    ours: (repository, target) => repository.findByCode(target.code),
    statement: FIND_BY_CODE,
    key: (target) => target.code
  }
]

/** Every lookup of an operation must find its own tenant, or the operation measured nothing. */
const checkFound = (targets: ReadonlyArray<Target>, found: ReadonlyArray<string | undefined>): void => {
  targets.forEach((target, index) => {
    if (found[index] !== target.id) throw new Error(`tenant ${target.id} was not found (got ${found[index]})`)
  })
}

const program = Effect.gen(function*() {
  const url = urlWithSchema(yield* freshSchemaNamed("bench"))
  const runtime = yield* scopedRuntime(pgRepository(url, POOL_SIZE))
  const context = yield* runtime.runtimeEffect
  const repository = yield* Effect.provide(TenantRepository.TenantRepository, context)
  const ids = yield* Effect.provide(seed(TENANTS, POOL_SIZE), context)
  // The same layer with every lookup sent alone: what gathering costs a fiber that looks up one at a time.
  const unbatchedRuntime = yield* scopedRuntime(pgRepository(url, POOL_SIZE, { batchLookups: false }))
  const unbatched = yield* Effect.provide(TenantRepository.TenantRepository, yield* unbatchedRuntime.runtimeEffect)
  // `seed` makes the nth tenant with the code `bench-<n>`, and returns the ids in that order.
  const targets = Array.map(ids, (id, index): Target => ({ id, code: `bench-${index + 1}` }))
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 5_000 })),
    (pool) => Effect.promise(() => pool.end())
  )
  // Connections opened before the rounds, on both sides: the warm-up of the first contest would open them.
  yield* Effect.tryPromise(() => Promise.all(Array.makeBy(POOL_SIZE, () => pool.query("SELECT 1"))))

  yield* Console.log(
    `${TENANTS} tenants, pools of ${POOL_SIZE}; concurrency ${CONCURRENCY}: ${CONCURRENCY} different tenants per ` +
      `operation, ${PLAN_CONCURRENT.warmup} warm-up ops, then ${PLAN_CONCURRENT.rounds} rounds x ` +
      `${PLAN_CONCURRENT.opsPerRound} ops; concurrency 1: ${SEQUENTIAL_BATCH} lookups per operation, ` +
      `${PLAN_SEQUENTIAL.rounds} rounds x ${PLAN_SEQUENTIAL.opsPerRound} ops; interleaved, figures per lookup`
  )
  const reports: Array<Harness.Report> = []
  for (const lookup of lookups) {
    const raw = (target: Target) =>
      pool.query<TenantRow>(lookup.statement, [lookup.key(target)]).then((result) => {
        const row = result.rows[0]
        return row === undefined ? undefined : { id: row.id, props: rowToProps(row) }
      })
    const ours = (target: Target) => lookup.ours(repository, target)
    const idOf = (found: Option.Option<Tenant>) => Option.isSome(found) ? found.value.id : undefined
    const concurrently = (batching: boolean) => (batch: ReadonlyArray<Target>) =>
      runtime.runPromise(Effect.forEach(batch, ours, { concurrency: "unbounded", batching })).then((found) =>
        checkFound(batch, found.map(idOf))
      )
    const fibers = concurrently(false)
    const fibersBatching = concurrently(true)
    const programsEach = (batch: ReadonlyArray<Target>) =>
      Promise.all(batch.map((target) => runtime.runPromise(ours(target)))).then((found) =>
        checkFound(batch, found.map(idOf))
      )
    const rawAll = (batch: ReadonlyArray<Target>) =>
      Promise.all(batch.map(raw)).then((found) => checkFound(batch, found.map((row) => row?.id)))
    const picked = () => pickDistinct(targets, CONCURRENCY)

    const c16 = `${lookup.name} x${CONCURRENCY}`
    const names = {
      fibers: `${c16}: ${CONCURRENCY} fibers`,
      fibersBatching: `${c16}: fibers, batching: true`,
      programsEach: `${c16}: runPromise each`,
      raw: `${c16}: raw pg, Promise.all`,
      inFiber: `${lookup.name} x1: in a fiber`,
      inFiberUnbatched: `${lookup.name} x1: in a fiber, batchLookups: false`,
      rawSequential: `${lookup.name} x1: raw pg`
    }
    yield* Console.log(`- ${lookup.name}, concurrency ${CONCURRENCY}`)
    reports.push(
      yield* Harness.contest(
        [
          { name: names.fibers, op: () => fibers(picked()), batch: CONCURRENCY },
          { name: names.fibersBatching, op: () => fibersBatching(picked()), batch: CONCURRENCY },
          { name: names.programsEach, op: () => programsEach(picked()), batch: CONCURRENCY },
          { name: names.raw, op: () => rawAll(picked()), batch: CONCURRENCY }
        ],
        PLAN_CONCURRENT,
        [
          { candidate: names.fibers, baseline: names.raw, goal: GOAL_CONCURRENT },
          { candidate: names.fibersBatching, baseline: names.raw },
          { candidate: names.programsEach, baseline: names.raw }
        ]
      )
    )

    const pick = () => targets[Math.floor(Math.random() * targets.length)] ?? Array.headNonEmpty(targets)
    const inFiberOn = (on: TenantRepository.Service) =>
      Effect.gen(function*() {
        for (let i = 0; i < SEQUENTIAL_BATCH; i++) {
          const target = pick()
          const found = yield* lookup.ours(on, target)
          if (idOf(found) !== target.id) return yield* Effect.dieMessage(`tenant ${target.id} was not found`)
        }
      })
    const inFiber = inFiberOn(repository)
    const inFiberUnbatched = inFiberOn(unbatched)
    const rawSequential = () =>
      sequentially(SEQUENTIAL_BATCH, () => {
        const target = pick()
        return raw(target).then((found) => checkFound([target], [found?.id]))
      })
    yield* Console.log(`- ${lookup.name}, concurrency 1`)
    reports.push(
      yield* Harness.contest(
        [
          { name: names.inFiber, op: () => runtime.runPromise(inFiber), batch: SEQUENTIAL_BATCH },
          {
            name: names.inFiberUnbatched,
            op: () => unbatchedRuntime.runPromise(inFiberUnbatched),
            batch: SEQUENTIAL_BATCH
          },
          { name: names.rawSequential, op: rawSequential, batch: SEQUENTIAL_BATCH }
        ],
        PLAN_SEQUENTIAL,
        [
          { candidate: names.inFiber, baseline: names.rawSequential, goal: GOAL_SEQUENTIAL },
          { candidate: names.inFiber, baseline: names.inFiberUnbatched, goal: GOAL_GATHERING_COST }
        ]
      )
    )
  }

  reports.push(yield* countStatements(url, targets))
  return {
    measurements: reports.flatMap((report) => report.measurements),
    comparisons: reports.flatMap((report) => report.comparisons)
  }
})

/**
 * The statements on `tenants` that `COUNTED_OPERATIONS` operations of 16 concurrent lookups make, in a runtime
 * of its own that notes them: the most any operation made, held to 1 for the fibers of one program (the goal's
 * scenario), for reference for the others. Also whether a single lookup still sends the raw baseline's statement.
 */
const countStatements = (url: string, targets: Array.NonEmptyReadonlyArray<Target>) =>
  Effect.gen(function*() {
    const log = Statements.makeLog()
    const runtime = yield* scopedRuntime(pgRepository(url, POOL_SIZE, {}, log))
    const repository = yield* Effect.promise(() => runtime.runPromise(TenantRepository.TenantRepository))
    const comparisons: Array<Harness.Comparison> = []
    yield* Console.log(`- statements on tenants per operation (${COUNTED_OPERATIONS} operations each, the most)`)
    for (const lookup of lookups) {
      const ours = (target: Target) => lookup.ours(repository, target)
      const single = log.sent.length
      yield* Effect.promise(() => runtime.runPromise(ours(Array.headNonEmpty(targets))))
      const sent = Statements.since(log, single, Statements.readsTenants)
      if (sent.length !== 1 || normalize(sent[0]?.sql ?? "") !== normalize(lookup.statement)) {
        yield* Console.log(
          `  note: one ${lookup.name} sent ${Statements.summary(sent)}; the raw baseline runs ` +
            `${Statements.summary([{ sql: lookup.statement, params: [] }])}, the one-row query a raw caller writes`
        )
      }
      const ways: ReadonlyArray<{
        readonly name: string
        readonly run: (batch: ReadonlyArray<Target>) => Effect.Effect<unknown, unknown>
        readonly held: boolean
      }> = [
        {
          name: `${CONCURRENCY} fibers`,
          run: (batch) => Effect.forEach(batch, ours, { concurrency: "unbounded" }),
          held: true
        },
        {
          name: "fibers, batching: true",
          run: (batch) => Effect.forEach(batch, ours, { concurrency: "unbounded", batching: true }),
          held: false
        },
        {
          name: "runPromise each",
          run: (batch) => Effect.promise(() => Promise.all(batch.map((target) => runtime.runPromise(ours(target))))),
          held: false
        }
      ]
      for (const way of ways) {
        const counts: Array<number> = []
        for (let i = 0; i < COUNTED_OPERATIONS; i++) {
          const mark = log.sent.length
          yield* Effect.promise(() => runtime.runPromise(way.run(pickDistinct(targets, CONCURRENCY))))
          const sent = Statements.since(log, mark, Statements.readsTenants)
          // None noted would meet the goal of 1 by noting nothing: the recording must be in effect.
          if (sent.length === 0) {
            return yield* Effect.dieMessage(`no statement was noted for ${lookup.name} (${way.name})`)
          }
          if (i === 0) {
            yield* Console.log(`  ${lookup.name} (${way.name}), first operation: ${Statements.summary(sent)}`)
          }
          counts.push(sent.length)
        }
        const name = `statements per ${CONCURRENCY} concurrent ${lookup.name} (${way.name}), most of any operation`
        yield* Console.log(`  ${lookup.name} (${way.name}): ${counts.join(", ")}${way.held ? "; goal 1" : ""}`)
        const compared = { name, value: Math.max(...counts), unit: "queries", rounds: COUNTED_OPERATIONS }
        comparisons.push(way.held ? { ...compared, goal: 1 } : compared)
      }
    }
    const report: Harness.Report = { measurements: [], comparisons }
    return report
  }).pipe(Effect.scoped)

const normalize = (sql: string) => sql.replace(/\s+/g, " ").trim()

export const benchmark: Harness.Benchmark = {
  name: "concurrent lookups",
  run: Effect.scoped(program)
}
