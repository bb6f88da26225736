/**
 * The outbox alone on PostgreSQL, for a process that reads the events and stores no tenant (an exporter, an
 * audit job). `TenantRepository/Pg`'s layer provides the same outbox beside the repository, whose writes fill it.
 *
 * @since 0.2.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makePgOutbox } from "../internal/pgOutbox.js"
import * as Migrations from "../Migrations.js"
import { TenantOutbox } from "../TenantOutbox.js"
import { RepositoryError } from "../TenantRepositoryError.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** How long a read may take, network faults included, before it fails as a `RepositoryError` (default 10 s). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The outbox in the `SqlClient`'s database, migrations run first.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TenantOutbox, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.effect(
    TenantOutbox,
    Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, sql)
      const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
      return makePgOutbox(sql, (effect) =>
        Effect.timeoutFail(Effect.disconnect(effect), {
          duration: timeout,
          onTimeout: () =>
            new RepositoryError({
              operation: "outbox.list",
              reason: "Timeout",
              detail: `no answer within ${Duration.toMillis(timeout)} ms`
            })
        }))
    })
  )
