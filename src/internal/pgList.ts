import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import type { InvalidInput } from "../InvalidInput.js"
import type { Tenant } from "../Tenant.js"
import type { ListQueryInput, Page, SortField } from "../TenantQuery.js"
import type { RepositoryError } from "../TenantRepositoryError.js"
import { storeFailure } from "./pgOutbox.js"
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
}

const orderBy: Record<SortField, Record<"asc" | "desc", string>> = {
  name: { asc: `name_key COLLATE "C" ASC, id ASC`, desc: `name_key COLLATE "C" DESC, id DESC` },
  code: { asc: `code COLLATE "C" ASC, id ASC`, desc: `code COLLATE "C" DESC, id DESC` },
  createdAt: { asc: "created_at ASC, id ASC", desc: "created_at DESC, id DESC" },
  updatedAt: { asc: "updated_at ASC, id ASC", desc: "updated_at DESC, id DESC" }
}

/** `TenantRepository.list` on PostgreSQL: one page and its total, read from one snapshot. */
export const makePgList =
  ({ columns, decodeRows, readOnly, sql }: PgListContext) =>
  (input: ListQueryInput | undefined): Effect.Effect<Page, InvalidInput | RepositoryError> =>
    Effect.flatMap(Rules.decodeListQuery(input ?? {}), (query) => {
      const statuses = Rules.statusesOf(query.status)
      const needle = Rules.searchNeedle(query.search)
      const where = sql.and([
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
      const order = orderBy[query.sortBy][query.sortDirection]
      // One snapshot for the page and its total, so that concurrent writes cannot make them disagree.
      return readOnly(
        Effect.all({
          rows: sql<TenantRow>`
          SELECT ${columns} FROM tenants WHERE ${where} ORDER BY ${sql.literal(order)}
          LIMIT ${query.pageSize} OFFSET ${Rules.offsetOf(query)}`,
          count: sql<{ total: number }>`SELECT count(*)::int AS total FROM tenants WHERE ${where}`
        })
      ).pipe(
        Effect.catchTag("SqlError", (error) => Effect.fail(storeFailure("list")(error))),
        Effect.flatMap(({ count, rows }) =>
          Effect.map(decodeRows(rows), (items) => Rules.pageOf(query, items, count[0]?.total ?? 0))
        )
      )
    })
