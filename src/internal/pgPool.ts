/**
 * The `pg` pool behind the client that `Postgres.layer` builds, for the few statements whose cost is mostly
 * `@effect/sql`'s own statement path: a lookup by key. Through `@effect/sql` a lookup builds and compiles its
 * statement, opens a span, a `Scope` and a cancellation hook, and checks a connection out; straight on the pool it
 * is one `pool.query` with a fixed text. On the 2-core machine that is 50-60 us of CPU of a lookup's 170.
 *
 * The pool is used only where nothing of `@effect/sql` is lost (see `mayBypassClient`): outside a transaction,
 * untraced, with no statement transformer, and on the pool of the very client the repository was given (a host
 * application that provides its own `SqlClient` keeps every statement on it). The watchdog and the connect
 * timeout are the pool's, so a statement sent here is bounded as one sent through `@effect/sql` is.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { TransactionConnection } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Pg from "pg"
import { isTraced } from "./observability.js"

/** The pool behind a `PgClient` built by `Postgres.layer`, and that client. */
export class PgPool extends Context.Tag("tenant-infra/PgPool")<PgPool, {
  readonly pool: Pg.Pool
  /** The client over `pool`: the pool stands for it only where the repository was given this client. */
  readonly client: SqlClient.SqlClient
}>() {}

/**
 * A statement's text and values on `pool`: its rows, or a `SqlError`. An interrupted caller stops waiting; the
 * statement, a read, ends on its own.
 */
export const queryRows = <Row>(
  pool: Pg.Pool,
  text: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
  Effect.async<ReadonlyArray<Row>, SqlError>((resume) => {
    pool.query(text, [...values], (cause: Error | null | undefined, result?: Pg.QueryResult) => {
      resume(
        cause || result === undefined
          ? Effect.fail(new SqlError({ cause, message: "Failed to execute statement" }))
          : Effect.succeed(result.rows as ReadonlyArray<Row>)
      )
    })
  })

/**
 * Statements with their values, run in one read-only REPEATABLE READ transaction on one connection of `pool`
 * (one snapshot): the rows of each, in order. On any failure the connection is dropped, its transaction with it.
 * An interrupted caller stops waiting; the transaction, read-only, ends on its own and gives its connection back.
 */
export const readOnlySnapshot = (
  pool: Pg.Pool,
  statements: ReadonlyArray<readonly [text: string, values: ReadonlyArray<unknown>]>
): Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError> =>
  Effect.tryPromise({
    try: async () => {
      const client = await pool.connect()
      // A connection that fails while checked out emits its error: unheard, it would end the process. The
      // statement under way fails with it too, and that failure is the answer.
      const onError = () => {}
      client.on("error", onError)
      try {
        await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        const results: Array<ReadonlyArray<unknown>> = []
        for (const [text, values] of statements) results.push((await client.query(text, [...values])).rows)
        await client.query("COMMIT")
        client.off("error", onError)
        client.release()
        return results
      } catch (cause) {
        client.off("error", onError)
        client.release(cause instanceof Error ? cause : true)
        throw cause
      }
    },
    catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
  })

/**
 * Whether a statement of the fiber's may go straight to the pool: outside a transaction (inside one it must run
 * on the transaction's connection), untraced (through the client each statement gets its span), and with no
 * statement transformer set (`Statement.withTransformer`: it must see every statement).
 */
export const mayBypassClient = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  Option.isNone(Context.getOption(fiber.currentContext, TransactionConnection)) && !isTraced(fiber.currentTracer) &&
  Option.isNone(fiber.getFiberRef(Statement.currentTransformer))
