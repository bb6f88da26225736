/**
 * The `pg` pool behind the client that `Postgres.layer` builds, for the few statements whose cost is mostly
 * `@effect/sql`'s own statement path: a lookup by key. Through `@effect/sql` a lookup builds and compiles its
 * statement, opens a span, a `Scope` and a cancellation hook, and checks a connection out; straight on the pool it
 * is one `pool.query` with a fixed text. On the 2-core machine that is 50-60 us of CPU of a lookup's 170.
 *
 * The pool is used only where nothing of `@effect/sql` is lost: outside a transaction (inside one, the statement
 * must run on the transaction's connection) and on the pool of the very client the repository was given (a host
 * application that provides its own `SqlClient` keeps every statement on it). The watchdog and the connect
 * timeout are the pool's, so a statement sent here is bounded as one sent through `@effect/sql` is.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Pg from "pg"
import { spanWhenTraced } from "./observability.js"

/** The pool behind a `PgClient` built by `Postgres.layer`, and that client. */
export class PgPool extends Context.Tag("tenant-infra/PgPool")<PgPool, {
  readonly pool: Pg.Pool
  /** The client over `pool`: the pool stands for it only where the repository was given this client. */
  readonly client: SqlClient.SqlClient
}>() {}

/**
 * A statement with a fixed text, its values as parameters, on `pool`: its rows, or a `SqlError`. Under a tracer
 * that exports spans it gets the `sql.execute` span that `@effect/sql` would have given it. An interrupted caller
 * stops waiting; the statement, a read, ends on its own.
 */
export const queryRows = <Row>(
  pool: Pg.Pool,
  text: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
  spanWhenTraced(
    Effect.async<ReadonlyArray<Row>, SqlError>((resume) => {
      pool.query(text, values as Array<unknown>, (cause: Error | null | undefined, result?: Pg.QueryResult) => {
        resume(
          cause || result === undefined
            ? Effect.fail(new SqlError({ cause, message: "Failed to execute statement" }))
            : Effect.succeed(result.rows as ReadonlyArray<Row>)
        )
      })
    }),
    "sql.execute",
    {
      kind: "client",
      captureStackTrace: false,
      attributes: { "db.system.name": "postgresql", "db.operation.name": "execute", "db.query.text": text }
    }
  )
