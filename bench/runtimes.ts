/**
 * The runtimes the benchmarks measure in: a layer built once into a `ManagedRuntime` before the timed loop,
 * disposed when the benchmark's scope closes, so that a timed operation pays for its own work only.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Postgres from "../src/Postgres.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"

/** `layer` built into a runtime, disposed with the scope. */
export const scopedRuntime = <R, E>(layer: Layer.Layer<R, E>) =>
  Effect.acquireRelease(
    Effect.sync(() => ManagedRuntime.make(layer)),
    (runtime) => Effect.promise(() => runtime.dispose())
  )

/**
 * The PostgreSQL repository (with its outbox and ledger) over `Postgres.layer` at `url`, a pool of `poolSize`:
 * the stack an application gets from `TenantInfra.layerPostgres`.
 */
export const pgRepository = (url: string, poolSize: number, options: TenantRepositoryPg.Options = {}) =>
  TenantRepositoryPg.layer(options).pipe(
    Layer.provide(Postgres.layer({ url: Redacted.make(url), maxConnections: poolSize, connectTimeout: "5 seconds" }))
  )
