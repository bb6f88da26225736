/**
 * The outbox on PostgreSQL: the events stored with each write, read in commit position order. Writes go through
 * the repository (one transaction with the tenant); this module only reads.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { TenantEvent } from "../TenantEvent.js"
import type * as TenantOutbox from "../TenantOutbox.js"
import { OutboxEntry } from "../TenantOutbox.js"
import { RepositoryError } from "../TenantRepositoryError.js"
import * as Rules from "./repositoryRules.js"

interface OutboxRow {
  readonly position: string
  readonly event_id: string
  readonly tenant_id: string
  readonly tenant_version: number
  readonly payload: unknown
  readonly occurred_at: Date
  readonly recorded_at: Date
}

export const driverErrorOf = (error: SqlError): { readonly code?: unknown; readonly constraint?: unknown } =>
  typeof error.cause === "object" && error.cause !== null ? error.cause : {}

export const storeFailure = (operation: string) => (error: SqlError): RepositoryError => {
  const { code } = driverErrorOf(error)
  return new RepositoryError({
    operation,
    detail: typeof code === "string" ? `${error.message} (SQLSTATE ${code})` : error.message,
    cause: error
  })
}

const decodeEvent = Schema.decodeUnknown(TenantEvent)

/** Bounds a read in time (the repository's deadline for a statement). */
export type Bound = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RepositoryError, R>

export const makePgOutbox = (sql: SqlClient.SqlClient, bound: Bound): TenantOutbox.Service => ({
  list: (options) =>
    bound(Effect.flatMap(Rules.decodeOutboxOptions(options ?? {}), (query) => {
      const where = sql.and([
        ...(query.tenantId === undefined ? [] : [sql`tenant_id = ${query.tenantId}`]),
        ...(query.afterPosition === undefined ? [] : [sql`position > ${query.afterPosition}`])
      ])
      return sql<OutboxRow>`
        SELECT position, event_id, tenant_id, tenant_version, payload, occurred_at, recorded_at
        FROM tenant_outbox WHERE ${where} ORDER BY position LIMIT ${query.limit}`.pipe(
        Effect.mapError(storeFailure("outbox.list")),
        Effect.flatMap((rows) =>
          Effect.forEach(rows, (row) =>
            Effect.map(decodeEvent(row.payload), (event) =>
              new OutboxEntry({
                position: Number(row.position),
                eventId: row.event_id,
                tenantId: event.tenantId,
                tenantVersion: row.tenant_version,
                eventType: event._tag,
                occurredAt: row.occurred_at,
                recordedAt: row.recorded_at,
                event
              })))
        ),
        Effect.catchTag("ParseError", (error) =>
          Effect.fail(
            new RepositoryError({
              operation: "outbox.list",
              detail: "a stored outbox entry does not decode",
              cause: error
            })
          ))
      )
    }))
})
