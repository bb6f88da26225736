/**
 * `TenantRepository.findById` on `layerPg` against the same query through the raw `pg` driver: the same column
 * list and WHERE clause that `internal/pgRepository.ts` issues, the same pool size, and the row mapped into a
 * plain object of the tenant's shape by the repository's own `rowToProps`, without the checks, so that both sides
 * hand back a tenant-like value and the ratio prices the checks too.
 *
 * The goal holds the lookup as an application makes it: inside an Effect program, a request's fiber that looks
 * tenants up one after another (here 20 per fiber, in a `ManagedRuntime` built before the timed loop): statement
 * compile, pool, decode and check, metrics. For reference, the same lookup through one `runPromise` each (what a
 * Promise-based caller pays, the runtime's entry included) and the raw query through one `runPromise` each (that
 * entry alone).
 */
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import { rowToProps, type TenantRow } from "../src/internal/tenantFields.js"
import * as Postgres from "../src/Postgres.js"
import type { TenantId } from "../src/Tenant.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"
import { FIND_BY_ID, lookupsInFiber, pick, seed, sequentially } from "./tenants.js"

const TENANTS = 1_000
const POOL_SIZE = 4
const GOAL = 1.3
/** Lookups per timed operation: one fiber's worth for the program, the same number of awaits for the others. */
const BATCH = 20
const PLAN: Harness.Plan = { warmup: 50, rounds: 11, opsPerRound: 60 }

const program = Effect.gen(function*() {
  const url = urlWithSchema(yield* freshSchemaNamed("bench"))
  const runtime = yield* Effect.acquireRelease(
    Effect.sync(() =>
      ManagedRuntime.make(
        TenantRepositoryPg.layer().pipe(
          Layer.provide(Postgres.layer({
            url: Redacted.make(url),
            maxConnections: POOL_SIZE,
            connectTimeout: "5 seconds"
          }))
        )
      )
    ),
    (runtime) => Effect.promise(() => runtime.dispose())
  )
  const context = yield* runtime.runtimeEffect
  const repository = yield* Effect.provide(TenantRepository.TenantRepository, context)
  const ids = yield* Effect.provide(seed(TENANTS, POOL_SIZE), context)
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 5_000 })),
    (pool) => Effect.promise(() => pool.end())
  )

  const viaLayerPg = (id: TenantId) => runtime.runPromise(repository.findById(id))
  const viaRawPg = (id: TenantId) =>
    pool.query<TenantRow>(FIND_BY_ID, [id]).then((result) =>
      result.rows[0] === undefined ? undefined : rowToProps(result.rows[0])
    )

  // Both sides must find the same tenant, or the comparison measures nothing.
  const probe = Array.headNonEmpty(ids)
  const [fromLayer, fromRaw] = yield* Effect.tryPromise(() => Promise.all([viaLayerPg(probe), viaRawPg(probe)]))
  if (Option.isNone(fromLayer) || fromRaw === undefined || fromLayer.value.code !== fromRaw.code) {
    return yield* Effect.dieMessage(`layerPg and raw pg disagree on tenant ${probe}`)
  }

  const inFiber = "layerPg in a fiber"
  const raw = "raw pg"
  const runPromiseEach = "layerPg, runPromise each"
  const rawRunPromiseEach = "raw pg, runPromise each"
  const lookups = lookupsInFiber(repository, ids, BATCH)
  const times = (op: () => Promise<unknown>) => sequentially(BATCH, op)
  const rawInEffect = Effect.tryPromise(() => viaRawPg(pick(ids)))

  yield* Console.log(
    `${ids.length} tenants, pool of ${POOL_SIZE}; ${BATCH} lookups per operation; ${PLAN.warmup} warm-up ops, ` +
      `then ${PLAN.rounds} rounds x ${PLAN.opsPerRound} ops per candidate, interleaved; figures per lookup`
  )
  return yield* Harness.contest(
    [
      { name: inFiber, op: () => runtime.runPromise(lookups), batch: BATCH },
      { name: raw, op: () => times(() => viaRawPg(pick(ids))), batch: BATCH },
      { name: runPromiseEach, op: () => times(() => viaLayerPg(pick(ids))), batch: BATCH },
      { name: rawRunPromiseEach, op: () => times(() => runtime.runPromise(rawInEffect)), batch: BATCH }
    ],
    PLAN,
    [
      { candidate: inFiber, baseline: raw, goal: GOAL },
      { candidate: runPromiseEach, baseline: raw },
      { candidate: rawRunPromiseEach, baseline: raw }
    ]
  )
})

export const benchmark: Harness.Benchmark = {
  name: "findById",
  run: Effect.scoped(program)
}
