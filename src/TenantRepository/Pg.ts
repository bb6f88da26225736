/**
 * The repository on PostgreSQL, through `@effect/sql`: tenants, their outbox and the delivery ledger in one
 * database, with the package's migrations run first.
 *
 * Lookups of live tenants (`findById`, `findByCode`, `findByDomain`) started together share one query: each
 * lookup yields once, so that those started in the same turn of the runtime's scheduler (the fibers of one
 * `Effect.forEach`, a burst of cache misses under `CachedTenantRepository`) gather, and they go out as one
 * `WHERE id IN (...)`, at most 100 keys a query. Sixteen fibers looking tenants up at once make one query
 * instead of sixteen; a lookup that gathered no other is sent alone, as before, for the cost of that one yield.
 * A gathered query that fails fails the lookups it carried with its `RepositoryError`; a caller interrupted
 * while waiting leaves the others their answers. `batchLookups: false` sends every lookup alone.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { TenantInfra } from "tenant-infra"
 * import * as TenantRepositoryPg from "tenant-infra/TenantRepository/Pg"
 *
 * // The client from DATABASE_URL and the other DATABASE_* variables (see TenantInfra):
 * const live = TenantRepositoryPg.layer().pipe(Layer.provide(TenantInfra.layerPostgres))
 * ```
 *
 * @since 0.2.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { DeliveryLedger } from "../DeliveryLedger.js"
import { storeContext } from "../internal/observedRepository.js"
import { makePgStore } from "../internal/pgRepository.js"
import type { TenantOutbox } from "../TenantOutbox.js"
import { TenantRepository } from "../TenantRepository.js"

/**
 * The PostgreSQL repository's settings.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * How long any operation may take, network faults included: then it fails with a `RepositoryError` whose
   * `reason` is `"Timeout"` (a read) or `"OutcomeUnknown"` (a write). Default 10 seconds. The client's own
   * timeouts (`Postgres.layer`: connect and query) should be shorter, so that a fault is seen and, for a write
   * whose COMMIT answer was lost, resolved within it.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Whether lookups made while others run share one query (default `true`; see the module's comment). `false`
   * sends every lookup alone, one query each.
   */
  readonly batchLookups?: boolean | undefined
}

/**
 * The PostgreSQL repository with its outbox and delivery ledger. Runs the package's migrations first (tables
 * `tenants`, `tenant_outbox` and the ledger's, tracked in `tenant_infra_migrations`), then serves from the
 * `SqlClient` it is given, whatever name transforms that client has. Provide `Postgres.layer` (or
 * `TenantInfra.layerPostgres`, from `DATABASE_URL`) for a client.
 *
 * Under network faults every operation ends within `timeout` (default 10 seconds) with a value or a typed error,
 * never a defect. A write whose COMMIT answer was lost is resolved by asking the database for its transaction's
 * status; a retry of a write that was stored succeeds, so retrying after `"OutcomeUnknown"` is safe.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<
  TenantRepository | TenantOutbox | DeliveryLedger,
  SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> =>
  Layer.scopedContext(
    Effect.map(
      makePgStore({
        timeout: Duration.decode(options.timeout ?? Duration.seconds(10)),
        batchLookups: options.batchLookups ?? true
      }),
      storeContext(TenantRepository, "postgresql")
    )
  )

/**
 * {@link layer} with its options read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (options: Config.Config.Wrap<Options>): Layer.Layer<
  TenantRepository | TenantOutbox | DeliveryLedger,
  SqlError.SqlError | Migrator.MigrationError | ConfigError.ConfigError,
  SqlClient.SqlClient
> => Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
