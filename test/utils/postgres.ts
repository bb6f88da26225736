import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { randomUUID } from "node:crypto"
import pg from "pg"
import type { PgPool } from "../../src/internal/pgPool.js"
import * as Postgres from "../../src/Postgres.js"

/** The server the tests use: `DATABASE_URL`, or the local one. A server that is down fails the tests. */
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** The same database, with every connection's search_path set to `schema`. */
export const urlWithSchema = (schema: string): string => {
  const url = new URL(DATABASE_URL)
  url.searchParams.set("options", `-c search_path=${schema}`)
  return url.toString()
}

const adminQuery = (text: string) =>
  Effect.acquireUseRelease(
    Effect.tryPromise(async () => {
      const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 })
      await client.connect()
      return client
    }),
    (client) => Effect.tryPromise(() => client.query(text)),
    (client) => Effect.promise(() => client.end())
  )

/** The name of the suite's schema. */
export class TestSchema extends Context.Tag("test/TestSchema")<TestSchema, string>() {}

/**
 * A fresh schema, named `<prefix>_<random>`, dropped (CASCADE) when the scope closes, whether the work in it
 * succeeded or not: test files and benchmarks run in parallel without seeing each other's rows.
 */
export const freshSchemaNamed = (prefix: string) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const schema = `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 16)}`
      yield* adminQuery(`CREATE SCHEMA "${schema}"`)
      return schema
    }),
    (schema) => Effect.orDie(adminQuery(`DROP SCHEMA "${schema}" CASCADE`))
  )

/** A fresh schema for one test suite. */
export const freshSchema = freshSchemaNamed("test")

/**
 * A `PgClient` (and `SqlClient`) confined to a fresh schema, as `Postgres.layer` builds it (the package's own,
 * whose pool the repository's lookups use directly).
 */
export const layerClientInFreshSchema = Layer.unwrapScoped(
  Effect.map(freshSchema, (schema) =>
    // Postgres.layer provides its pool too, under a tag of the package's own that its type does not name.
    (Postgres.layer({
      url: Redacted.make(urlWithSchema(schema)),
      maxConnections: 8,
      connectTimeout: "5 seconds"
    }) as Layer.Layer<PgClient.PgClient | SqlClient.SqlClient | PgPool, SqlError>).pipe(
      Layer.merge(Layer.succeed(TestSchema, schema))
    ))
)

/**
 * A plain `PgClient.layer` confined to a fresh schema: a host application's own client, through which the
 * repository sends every statement.
 */
export const layerHostClientInFreshSchema = Layer.unwrapScoped(
  Effect.map(freshSchema, (schema) =>
    PgClient.layer({
      url: Redacted.make(urlWithSchema(schema)),
      maxConnections: 8,
      connectTimeout: "5 seconds"
    }).pipe(Layer.merge(Layer.succeed(TestSchema, schema))))
)
