/**
 * `TenantRepository.findById` on `layerPg` against the same query through the raw `pg` driver: the same column
 * list and WHERE clause that `internal/pgRepository.ts` issues, the same pool size, and the row mapped into a
 * plain object of the tenant's shape by the repository's own `rowToProps`, without the checks, so that both sides
 * hand back a tenant-like value and the ratio prices the checks too.
 *
 * The Effect side runs through a `ManagedRuntime` built before the timed loop, one `runPromise` per lookup, so
 * the figure is what a Promise-based caller pays per call: fiber, span, statement compile, pool, decode.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import { rowToProps, type TenantRow } from "../src/internal/pgRepository.js"
import type { TenantId } from "../src/Tenant.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshSchemaNamed, urlWithSchema } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"

const TENANTS = 1_000
const POOL_SIZE = 4
const GOAL = 1.3
const PLAN: Harness.Plan = { warmup: 1_000, rounds: 7, opsPerRound: 1_500 }

/** The statement `internal/pgRepository.ts` compiles for `findById` without `includeDeleted`. */
const FIND_BY_ID = "SELECT id, code, name, status, email, phone, locale, domain, settings, version, created_at, " +
  "updated_at, deleted_at, status_changed_by, status_change_reason, status_changed_at " +
  "FROM tenants WHERE id = $1 AND deleted_at IS NULL"

/** Tenants of a realistic shape: every other one with a phone, every third one with a domain. */
const seed = Effect.gen(function*() {
  const repository = yield* TenantRepository.TenantRepository
  return yield* Effect.forEach(Array.range(1, TENANTS), (n) =>
    Effect.gen(function*() {
      const id = yield* TenantLifecycle.newTenantId
      const { event, tenant } = yield* TenantLifecycle.create(id, {
        code: `bench-${n}`,
        name: `Bench Tenant ${n}`,
        contact: n % 2 === 0
          ? { email: `admin${n}@bench.test` }
          : { email: `admin${n}@bench.test`, phone: "+15550100" },
        ...(n % 3 === 0 ? { domain: `tenant-${n}.bench.test` } : {}),
        settings: { plan: n % 5 === 0 ? "pro" : "free", seats: n % 50 }
      }, yield* TenantLifecycle.stamp({ actor: "bench" }))
      yield* repository.insert(tenant, event)
      return id
    }), { concurrency: POOL_SIZE })
})

const pick = (ids: Array.NonEmptyReadonlyArray<TenantId>): TenantId =>
  ids[Math.floor(Math.random() * ids.length)] ?? Array.headNonEmpty(ids)

const program = Effect.gen(function*() {
  const url = urlWithSchema(yield* freshSchemaNamed("bench"))
  const runtime = yield* Effect.acquireRelease(
    Effect.sync(() =>
      ManagedRuntime.make(
        TenantRepository.layerPg.pipe(
          Layer.provide(PgClient.layer({
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
  const ids = yield* Effect.provide(seed, context)
  if (!Array.isNonEmptyReadonlyArray(ids)) return yield* Effect.dieMessage("no tenant was seeded")
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

  yield* Console.log(
    `${ids.length} tenants, pool of ${POOL_SIZE}; ${PLAN.warmup} warm-up ops, then ${PLAN.rounds} rounds x ` +
      `${PLAN.opsPerRound} ops per candidate, interleaved`
  )
  return yield* Harness.headToHead(
    { name: "layerPg", op: () => viaLayerPg(pick(ids)) },
    { name: "raw pg", op: () => viaRawPg(pick(ids)) },
    PLAN,
    { goal: GOAL }
  )
})

export const benchmark: Harness.Benchmark = {
  name: "findById",
  run: Effect.scoped(program)
}
