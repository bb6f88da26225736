/**
 * The PostgreSQL repository's lookups of a live tenant by key (`findById`, `findByCode`, `findByDomain`): the
 * hottest reads of the package, the misses of every cache above it.
 *
 * Each column is unique among live tenants and holds exactly the value looked for (ids, codes and domains are
 * stored normalised, as the lookups normalise their input), so lookups made at once share one query and each row
 * answers the key it holds (see lookupBatcher).
 *
 * A lookup takes one of two ways:
 * - on the pool of `Postgres.layer`'s client (see pgPool), on callbacks, gathered by `makeCallbackLookupBatcher`:
 *   the way of an application on the package's client, untraced, outside a transaction (see `mayBypassClient`);
 * - otherwise through the client (`@effect/sql`, each statement with its span), gathered by `makeLookupBatcher`;
 *   inside a transaction, not gathered, on the transaction's connection, so that the lookup sees what the
 *   transaction wrote.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { TransactionConnection } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Pg from "pg"
import { reconstitute, type Tenant } from "../Tenant.js"
import { RepositoryError } from "../TenantRepositoryError.js"
import { type Answer, makeCallbackLookupBatcher, makeLookupBatcher } from "./lookupBatcher.js"
import { storeFailure } from "./pgOutbox.js"
import { mayBypassClient } from "./pgPool.js"
import { rowToProps, type TenantRow } from "./tenantFields.js"

/** The columns a live tenant is looked up by. */
export type LookupColumn = "id" | "code" | "domain"

/** The most keys one gathered lookup asks for. */
const MAX_LOOKUP_BATCH = 100

export interface PgLookupsContext {
  /** The repository's client, without name transforms. */
  readonly sql: SqlClient.SqlClient
  /** The tenant's columns, in the order `rowToProps` reads them, as text and as a fragment. */
  readonly columnList: string
  readonly columns: Fragment
  /** The pool behind `sql`, when it is `Postgres.layer`'s own (see pgPool). */
  readonly pool: Pg.Pool | undefined
  /** Whether lookups made while others run share one query. */
  readonly batchLookups: boolean
  /** Where gathered queries through `Effect`s run. */
  readonly scope: Scope.Scope
}

/** A stored row as a tenant, or the `RepositoryError` of a row that does not decode. */
export const decodeRow = (operation: string) => (row: TenantRow): Either.Either<Tenant, RepositoryError> =>
  Either.mapLeft(reconstitute(rowToProps(row)), (cause) =>
    new RepositoryError({
      operation,
      // The parse error quotes stored values (e-mail addresses, say): it stays in the cause, out of the message.
      detail: `stored tenant ${row.id} does not decode`,
      cause
    }))

/**
 * The lookup of a live tenant by `column`, for `operation`, its key already normalised: the tenant, none, or a
 * `RepositoryError`.
 */
export const makeLiveLookup = (context: PgLookupsContext) =>
(
  column: LookupColumn,
  operation: string
): (key: string) => Effect.Effect<Option.Option<Tenant>, RepositoryError> => {
  const { batchLookups, columnList, columns, pool, scope, sql } = context
  const failed = storeFailure(operation)
  const decode = decodeRow(operation)
  const firstRow = (rows: ReadonlyArray<TenantRow>) => Option.fromNullable(rows[0])
  const byKey = (rows: ReadonlyArray<TenantRow>): ReadonlyMap<string, TenantRow> =>
    new Map(rows.map((row) => [row[column] as string, row]))
  const answerOf = (row: TenantRow | undefined): Effect.Effect<Option.Option<Tenant>, RepositoryError> => {
    if (row === undefined) return Effect.succeedNone
    const tenant = decode(row)
    return Either.isRight(tenant) ? Effect.succeed(Option.some(tenant.right)) : Effect.fail(tenant.left)
  }
  const handlers = {
    onFailure: (error: SqlError) => Effect.fail(failed(error)),
    onSuccess: (found: Option.Option<TenantRow>) => answerOf(Option.getOrUndefined(found))
  }
  const decoded = (row: Effect.Effect<Option.Option<TenantRow>, SqlError>) => Effect.matchEffect(row, handlers)

  const viaClient = (key: string) =>
    Effect.map(
      sql<TenantRow>`SELECT ${columns} FROM tenants WHERE ${sql(column)} = ${key} AND deleted_at IS NULL`,
      firstRow
    )
  const gatheredViaClient = batchLookups
    ? makeLookupBatcher<TenantRow, SqlError>({
      one: viaClient,
      many: (keys) =>
        Effect.map(
          sql<TenantRow>`SELECT ${columns} FROM tenants WHERE ${sql(column)} IN ${sql.in(keys)} AND deleted_at IS NULL`,
          byKey
        ),
      maxBatch: MAX_LOOKUP_BATCH,
      scope
    })
    : viaClient
  // Inside a transaction, on its connection: not gathered with lookups outside it.
  const throughClient = (fiber: Fiber.RuntimeFiber<unknown, unknown>, key: string) =>
    decoded(
      Option.isSome(Context.getOption(fiber.currentContext, TransactionConnection))
        ? viaClient(key)
        : gatheredViaClient(key)
    )

  if (pool === undefined) return (key) => Effect.withFiberRuntime((fiber) => throughClient(fiber, key))

  // One text a column, whatever the number of keys: the keys go as one array parameter.
  const oneText = `SELECT ${columnList} FROM tenants WHERE ${column} = $1 AND deleted_at IS NULL`
  const manyText = `SELECT ${columnList} FROM tenants WHERE ${column} = ANY($1) AND deleted_at IS NULL`
  const sent = (text: string, values: ReadonlyArray<unknown>, answer: Answer<ReadonlyArray<TenantRow>, SqlError>) =>
    pool.query(text, values as Array<unknown>, (cause: Error | null | undefined, result?: Pg.QueryResult) => {
      if (cause || result === undefined) {
        answer(new SqlError({ cause, message: "Failed to execute statement" }), undefined)
      } else answer(undefined, result.rows as ReadonlyArray<TenantRow>)
    })
  const sendOne = (key: string, answer: Answer<TenantRow, SqlError>) =>
    sent(oneText, [key], (failure, rows) => answer(failure, rows?.[0]))
  const gather = batchLookups
    ? makeCallbackLookupBatcher<TenantRow, SqlError>({
      one: sendOne,
      many: (keys, answer) =>
        sent(manyText, [keys], (failure, rows) => answer(failure, rows === undefined ? undefined : byKey(rows))),
      maxBatch: MAX_LOOKUP_BATCH
    })
    : (key: string, answer: Answer<TenantRow, SqlError>) => {
      let waiting = true
      sendOne(key, (failure, row) => {
        if (waiting) answer(failure, row)
      })
      return () => {
        waiting = false
      }
    }
  const onPool = (key: string) =>
    Effect.async<Option.Option<Tenant>, RepositoryError>((resume) => {
      const stopWaiting = gather(key, (failure, row) =>
        resume(failure === undefined ? answerOf(row) : Effect.fail(failed(failure))))
      return Effect.sync(stopWaiting)
    })
  return (key) => Effect.withFiberRuntime((fiber) => mayBypassClient(fiber) ? onPool(key) : throughClient(fiber, key))
}
