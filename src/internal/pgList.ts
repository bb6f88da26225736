import { type SqlClient, TransactionConnection } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import type { Fragment } from "@effect/sql/Statement"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Pg from "pg"
import type { InvalidInput } from "../InvalidInput.js"
import type { Tenant } from "../Tenant.js"
import type { ListQuery, ListQueryInput, Page, SortField } from "../TenantQuery.js"
import { ESTIMATE_ABOVE } from "../TenantQuery.js"
import type { RepositoryError } from "../TenantRepositoryError.js"
import { storeFailure } from "./pgOutbox.js"
import { mayBypassClient, queryRows, readOnlySnapshot } from "./pgPool.js"
import * as Rules from "./repositoryRules.js"
import type { TenantRow } from "./tenantFields.js"

/** What `list` needs of the PostgreSQL repository it belongs to. */
export interface PgListContext {
  readonly sql: SqlClient
  /** The tenant's columns, in the order `decodeRows` reads them. */
  readonly columns: Fragment
  readonly decodeRows: (rows: ReadonlyArray<TenantRow>) => Effect.Effect<ReadonlyArray<Tenant>, RepositoryError>
  /** Runs `body` in one read-only transaction (one snapshot). */
  readonly readOnly: <A, E>(body: Effect.Effect<A, E>) => Effect.Effect<A, E | SqlError | RepositoryError>
  /**
   * The pool behind `sql`, when it is `Postgres.layer`'s own (see pgPool): an untraced list outside a transaction
   * sends its compiled statements there, its snapshot a transaction of one connection of it.
   */
  readonly pool: Pg.Pool | undefined
}

// What each sort orders by. ORDER BY and the keyset predicate are both written from it, so that they compare the
// same values under the same collation, and each matches an index of migration 1 (`(name_key COLLATE "C", id)`,
// `(code COLLATE "C", id)`, `(created_at, id)`, `(updated_at, id)`), read forwards or backwards.
const sortColumn: Record<SortField, string> = {
  name: `name_key COLLATE "C"`,
  code: `code COLLATE "C"`,
  createdAt: "created_at",
  updatedAt: "updated_at"
}

const orderBy = ({ sortBy, sortDirection }: ListQuery): string => {
  const direction = sortDirection === "asc" ? "ASC" : "DESC"
  return `${sortColumn[sortBy]} ${direction}, id ${direction}`
}

// `EXPLAIN (FORMAT JSON)` answers one row holding a list with one plan; the driver parses the JSON unless the host
// application's client changed its type parsers.
const PlanRows = Schema.Tuple(Schema.Struct({ Plan: Schema.Struct({ "Plan Rows": Schema.Number }) }))
const decodePlan = Schema.decodeUnknownOption(Schema.Tuple(Schema.Struct({
  "QUERY PLAN": Schema.Union(PlanRows, Schema.parseJson(PlanRows))
})))

/** `TenantRepository.list` on PostgreSQL: one page, and its total when asked, read from one snapshot. */
export const makePgList = ({ columns, decodeRows, pool, readOnly, sql }: PgListContext) => {
  const failed = storeFailure("list")

  // A statement's rows: on the pool when the fiber may bypass the client, else through it.
  const rowsOf = <Row extends object>(
    statement: Statement.Statement<Row>
  ): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
    pool === undefined ? statement : Effect.withFiberRuntime((fiber) => {
      if (!mayBypassClient(fiber)) return statement
      const [text, values] = statement.compile()
      return queryRows<Row>(pool, text, values)
    })

  const whereOf = ({ query }: Rules.ListRequest) => {
    const statuses = Rules.statusesOf(query.status)
    const needle = Rules.searchNeedle(query.search)
    return sql.and([
      ...(query.includeDeleted ? [] : [sql`deleted_at IS NULL`]),
      ...(statuses === undefined ? [] : [sql`status IN ${sql.in(statuses)}`]),
      ...(needle === undefined ? [] : [
        sql`(name_key LIKE ${Rules.likePattern(needle)} ESCAPE '\\' OR code LIKE ${
          Rules.likePattern(needle)
        } ESCAPE '\\')`
      ]),
      ...(query.createdFrom === undefined ? [] : [sql`created_at >= ${query.createdFrom}`]),
      ...(query.createdBefore === undefined ? [] : [sql`created_at < ${query.createdBefore}`])
    ])
  }

  // The rows after the cursor, as `Rules.comesAfter` says: a row comparison, which the sort's index serves as a
  // range (an index condition, not a filter), so a page deep in the list costs what the first one does.
  const keysetOf = ({ after, query }: Rules.ListRequest) => {
    if (after === undefined) return []
    const value = typeof after.value === "number" ? sql`${new Date(after.value)}::timestamptz` : sql`${after.value}`
    const operator = query.sortDirection === "asc" ? ">" : "<"
    return [sql`(${sql.literal(sortColumn[query.sortBy])}, id) ${sql.literal(operator)} (${value}, ${after.id}::uuid)`]
  }

  const readPage = (request: Rules.ListRequest) =>
    sql<TenantRow>`
    SELECT ${columns} FROM tenants WHERE ${sql.and([whereOf(request), ...keysetOf(request)])}
    ORDER BY ${sql.literal(orderBy(request.query))}
    LIMIT ${Rules.rowsToRead(request)} OFFSET ${Rules.offsetOf(request)}`

  const countStatement = (request: Rules.ListRequest) =>
    sql<{ total: number }>`SELECT count(*)::int AS total FROM tenants WHERE ${whereOf(request)}`
  const totalOf = (rows: ReadonlyArray<{ readonly total?: unknown }>) =>
    typeof rows[0]?.total === "number" ? rows[0].total : 0

  // The planner's estimate of the matching rows, from the statistics of the last ANALYZE; none when its answer
  // does not read as expected, and then the rows are counted.
  const estimateMatching = (request: Rules.ListRequest) =>
    Effect.map(
      rowsOf(sql<Record<string, unknown>>`EXPLAIN (FORMAT JSON) SELECT 1 FROM tenants WHERE ${whereOf(request)}`),
      (rows) => Option.map(decodePlan(rows), ([row]) => Math.round(row["QUERY PLAN"][0].Plan["Plan Rows"]))
    )

  // One snapshot for the page and its total, so that concurrent writes cannot make them disagree.
  const snapshotOf = (request: Rules.ListRequest) =>
    Effect.withFiberRuntime<
      { readonly rows: ReadonlyArray<TenantRow>; readonly total: number },
      SqlError | RepositoryError
    >((fiber) => {
      if (pool === undefined || !mayBypassClient(fiber)) {
        const both = Effect.all({ rows: readPage(request), total: Effect.map(countStatement(request), totalOf) })
        // Inside a caller's transaction its isolation holds (a transaction of our own would be a savepoint, where
        // SET TRANSACTION fails).
        return Option.isSome(Context.getOption(fiber.currentContext, TransactionConnection)) ? both : readOnly(both)
      }
      return Effect.map(
        readOnlySnapshot(pool, [readPage(request).compile(), countStatement(request).compile()]),
        ([rows, counted]) => ({
          rows: (rows ?? []) as ReadonlyArray<TenantRow>,
          total: totalOf((counted ?? []) as ReadonlyArray<{ readonly total?: unknown }>)
        })
      )
    })
  const pageWithCount = (request: Rules.ListRequest) =>
    Effect.flatMap(
      snapshotOf(request),
      ({ rows, total }) => Effect.map(decodeRows(rows), (tenants) => Rules.pageOf(request, tenants, { exact: total }))
    )

  // One statement is one snapshot: no transaction needed.
  const pageWithout = (request: Rules.ListRequest, counted: Rules.Counted) =>
    Effect.flatMap(rowsOf(readPage(request)), decodeRows).pipe(
      Effect.map((tenants) => Rules.pageOf(request, tenants, counted))
    )

  const pageOf = (request: Rules.ListRequest): Effect.Effect<Page, SqlError | RepositoryError> => {
    switch (request.query.count) {
      case "exact":
        return pageWithCount(request)
      case "none":
        return pageWithout(request, "none")
      case "estimate":
        return Effect.flatMap(
          estimateMatching(request),
          (estimate) =>
            Option.isSome(estimate) && estimate.value > ESTIMATE_ABOVE ?
              pageWithout(request, { estimate: estimate.value }) :
              pageWithCount(request)
        )
    }
  }

  return (input: ListQueryInput | undefined): Effect.Effect<Page, InvalidInput | RepositoryError> =>
    Effect.flatMap(
      Rules.decodeListRequest(input ?? {}),
      (request) => Effect.catchTag(pageOf(request), "SqlError", (error) => Effect.fail(failed(error)))
    )
}
