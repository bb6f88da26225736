/**
 * The runtimes the benchmarks measure in: a layer built once into a `ManagedRuntime` before the timed loop,
 * disposed when the benchmark's scope closes, so that a timed operation pays for its own work only.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import type { PgPool } from "../src/internal/pgPool.js"
import * as Postgres from "../src/Postgres.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import * as Statements from "./statements.js"

/** `layer` built into a runtime, disposed with the scope. */
export const scopedRuntime = <R, E>(layer: Layer.Layer<R, E>) =>
  Effect.acquireRelease(
    Effect.sync(() => ManagedRuntime.make(layer)),
    (runtime) => Effect.promise(() => runtime.dispose())
  )

/**
 * The PostgreSQL repository (with its outbox and ledger) over `Postgres.layer` at `url`, a pool of `poolSize`:
 * the stack an application gets from `TenantInfra.layerPostgres`. With `log`, every statement it sends is noted
 * there (see statements.ts): a runtime that counts is not one that is timed.
 */
export const pgRepository = (
  url: string,
  poolSize: number,
  options: TenantRepositoryPg.Options = {},
  log?: Statements.StatementLog
) => {
  const client = Postgres.layer({ url: Redacted.make(url), maxConnections: poolSize, connectTimeout: "5 seconds" })
  return log === undefined
    ? TenantRepositoryPg.layer(options).pipe(Layer.provide(client))
    : TenantRepositoryPg.layer(options).pipe(
      // Postgres.layer provides its pool too, under a tag of the package's own that its type does not name.
      Layer.provide(
        Layer.provideMerge(Statements.recordingPool(log), client as Layer.Layer<PgPool | SqlClient, SqlError>)
      )
    )
}
