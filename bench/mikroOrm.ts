/**
 * `TenantRepository/Pg`'s `findById` against MikroORM 6 (the original design's ORM), its `findOne` on a forked
 * EntityManager, `{ id, deletedAt: null }`: the same tenants, the same database and schema, pools of the same
 * size. MikroORM reads the `tenants` table through an `EntitySchema` (no decorators, no reflection) that maps
 * the 16 columns the repository reads; it never writes. Each MikroORM lookup forks the EntityManager, as a
 * request does, so that no lookup is answered from another's identity map. The raw `pg` driver with the
 * repository's statement is measured beside them for reference.
 *
 * - Concurrency 1: 20 lookups one after another (ours in one fiber; theirs 20 awaits).
 * - Concurrency 16: 16 different tenants at once (ours 16 fibers of one program; theirs `Promise.all`).
 */
import { EntitySchema, MikroORM } from "@mikro-orm/postgresql"
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import pg from "pg"
import type { TenantId } from "../src/Tenant.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { DATABASE_URL, freshSchemaNamed, urlWithSchema } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"
import { pgRepository, scopedRuntime } from "./runtimes.js"
import { FIND_BY_ID, pick, pickDistinct, seed, sequentially } from "./tenants.js"

const TENANTS = 1_000
/** `TenantInfra.layerPostgres`'s default pool; MikroORM's and the raw pool get the same. */
const POOL_SIZE = 10
const CONCURRENCY = 16
const GOAL = 0.5
/** Lookups per timed operation at concurrency 1. */
const SEQUENTIAL_BATCH = 20
const PLAN_SEQUENTIAL: Harness.Plan = { warmup: 20, rounds: 11, opsPerRound: 20 }
const PLAN_CONCURRENT: Harness.Plan = { warmup: 30, rounds: 11, opsPerRound: 30 }

/** A row of `tenants` as MikroORM hydrates it. */
interface MikroTenant {
  id: string
  code: string
  name: string
  status: string
  email: string
  phone: string | null
  locale: string
  domain: string | null
  settings: unknown
  version: number
  createdAt: Date
  updatedAt: Date
  deletedAt: Date | null
  statusChangedBy: string | null
  statusChangeReason: string | null
  statusChangedAt: Date | null
}

/** The `tenants` table as the repository reads it; MikroORM's naming strategy maps `createdAt` to `created_at`. */
const MikroTenantSchema = new EntitySchema<MikroTenant>({
  name: "MikroTenant",
  tableName: "tenants",
  properties: {
    id: { type: "uuid", primary: true },
    code: { type: "string" },
    name: { type: "string" },
    status: { type: "string" },
    email: { type: "string" },
    phone: { type: "string", nullable: true },
    locale: { type: "string" },
    domain: { type: "string", nullable: true },
    settings: { type: "json" },
    version: { type: "integer" },
    createdAt: { type: "datetime", columnType: "timestamptz" },
    updatedAt: { type: "datetime", columnType: "timestamptz" },
    deletedAt: { type: "datetime", columnType: "timestamptz", nullable: true },
    statusChangedBy: { type: "string", nullable: true },
    statusChangeReason: { type: "string", nullable: true },
    statusChangedAt: { type: "datetime", columnType: "timestamptz", nullable: true }
  }
})

const program = Effect.gen(function*() {
  const schema = yield* freshSchemaNamed("bench")
  const url = urlWithSchema(schema)
  const runtime = yield* scopedRuntime(pgRepository(url, POOL_SIZE))
  const context = yield* runtime.runtimeEffect
  const repository = yield* Effect.provide(TenantRepository.TenantRepository, context)
  const ids = yield* Effect.provide(seed(TENANTS, POOL_SIZE), context)
  const orm = yield* Effect.acquireRelease(
    Effect.tryPromise(() =>
      MikroORM.init({
        clientUrl: DATABASE_URL,
        schema,
        entities: [MikroTenantSchema],
        pool: { min: 0, max: POOL_SIZE },
        debug: false,
        allowGlobalContext: false
      })
    ),
    (orm) => Effect.promise(() => orm.close(true))
  )
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 5_000 })),
    (pool) => Effect.promise(() => pool.end())
  )

  const viaMikro = (id: TenantId) => orm.em.fork().findOne(MikroTenantSchema, { id, deletedAt: null })
  const viaRaw = (id: TenantId) => pool.query<{ id: string }>(FIND_BY_ID, [id]).then((result) => result.rows[0])
  /** Every lookup must find its tenant, or the operation measured nothing. */
  const found = (id: TenantId, foundId: string | undefined): void => {
    if (foundId !== id) throw new Error(`tenant ${id} was not found (got ${foundId})`)
  }

  // Both must find the same tenant, with the same fields, or the comparison measures nothing.
  const probe = Array.headNonEmpty(ids)
  const [ours, theirs] = yield* Effect.tryPromise(() =>
    Promise.all([runtime.runPromise(repository.findById(probe)), viaMikro(probe)])
  )
  if (
    Option.isNone(ours) || theirs === null || ours.value.code !== theirs.code ||
    ours.value.createdAt.getTime() !== theirs.createdAt.getTime()
  ) {
    return yield* Effect.dieMessage(`the repository and MikroORM disagree on tenant ${probe}`)
  }

  const inFiber = Effect.gen(function*() {
    for (let i = 0; i < SEQUENTIAL_BATCH; i++) {
      const id = pick(ids)
      const tenant = yield* repository.findById(id)
      found(id, Option.isSome(tenant) ? tenant.value.id : undefined)
    }
  })
  const names = {
    ours: "findById x1: in a fiber",
    mikro: "findById x1: MikroORM fork().findOne",
    raw: "findById x1: raw pg",
    ours16: `findById x${CONCURRENCY}: ${CONCURRENCY} fibers`,
    mikro16: `findById x${CONCURRENCY}: MikroORM, Promise.all`,
    raw16: `findById x${CONCURRENCY}: raw pg, Promise.all`
  }
  yield* Console.log(
    `${TENANTS} tenants, pools of ${POOL_SIZE}; concurrency 1: ${SEQUENTIAL_BATCH} lookups per operation, ` +
      `${PLAN_SEQUENTIAL.rounds} rounds x ${PLAN_SEQUENTIAL.opsPerRound} ops; concurrency ${CONCURRENCY}: ` +
      `${PLAN_CONCURRENT.rounds} rounds x ${PLAN_CONCURRENT.opsPerRound} ops; interleaved, figures per lookup`
  )
  yield* Console.log("- concurrency 1")
  const sequential = yield* Harness.contest(
    [
      { name: names.ours, op: () => runtime.runPromise(inFiber), batch: SEQUENTIAL_BATCH },
      {
        name: names.mikro,
        op: () =>
          sequentially(SEQUENTIAL_BATCH, () => {
            const id = pick(ids)
            return viaMikro(id).then((tenant) => found(id, tenant?.id))
          }),
        batch: SEQUENTIAL_BATCH
      },
      {
        name: names.raw,
        op: () =>
          sequentially(SEQUENTIAL_BATCH, () => {
            const id = pick(ids)
            return viaRaw(id).then((row) => found(id, row?.id))
          }),
        batch: SEQUENTIAL_BATCH
      }
    ],
    PLAN_SEQUENTIAL,
    [
      { candidate: names.ours, baseline: names.mikro, goal: GOAL },
      { candidate: names.mikro, baseline: names.raw },
      { candidate: names.ours, baseline: names.raw }
    ]
  )
  yield* Console.log(`- concurrency ${CONCURRENCY}`)
  const concurrent = yield* Harness.contest(
    [
      {
        name: names.ours16,
        op: () => {
          const batch = pickDistinct(ids, CONCURRENCY)
          return runtime.runPromise(
            Effect.forEach(batch, (id) => repository.findById(id), { concurrency: "unbounded" })
          ).then((tenants) =>
            tenants.forEach((tenant, index) =>
              found(batch[index] ?? probe, Option.isSome(tenant) ? tenant.value.id : undefined)
            )
          )
        },
        batch: CONCURRENCY
      },
      {
        name: names.mikro16,
        op: () =>
          Promise.all(pickDistinct(ids, CONCURRENCY).map((id) => viaMikro(id).then((tenant) => found(id, tenant?.id)))),
        batch: CONCURRENCY
      },
      {
        name: names.raw16,
        op: () => Promise.all(pickDistinct(ids, CONCURRENCY).map((id) => viaRaw(id).then((row) => found(id, row?.id)))),
        batch: CONCURRENCY
      }
    ],
    PLAN_CONCURRENT,
    [
      { candidate: names.ours16, baseline: names.mikro16, goal: GOAL },
      { candidate: names.mikro16, baseline: names.raw16 },
      { candidate: names.ours16, baseline: names.raw16 }
    ]
  )
  const report: Harness.Report = {
    measurements: [...sequential.measurements, ...concurrent.measurements],
    comparisons: [...sequential.comparisons, ...concurrent.comparisons]
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "MikroORM findById",
  run: Effect.scoped(program)
}
