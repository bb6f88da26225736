/**
 * The delivery ledger alone on PostgreSQL, for a process that relays notifications and stores no tenant (a relay
 * worker, the CLI's `relay`). `TenantRepository/Pg`'s layer provides the same ledger beside the repository.
 *
 * @since 0.2.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DeliveryLedger } from "../DeliveryLedger.js"
import { makePgLedger } from "../internal/pgDeliveryLedger.js"
import * as Migrations from "../Migrations.js"

/**
 * The ledger over the outbox in the `SqlClient`'s database, migrations run first. With a `PgClient` in context
 * (`Postgres.layer` gives both) it is woken by `LISTEN` as events are recorded; with another client it polls.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<DeliveryLedger, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> =
  Layer.effect(
    DeliveryLedger,
    Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, sql)
      return yield* makePgLedger(sql)
    })
  )
