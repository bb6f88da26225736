import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Migrations from "../Migrations.js"
import { normalizeCode, normalizeHostname, reconstitute } from "../Tenant.js"
import type { Tenant } from "../Tenant.js"
import { TenantEvent } from "../TenantEvent.js"
import type * as TenantOutbox from "../TenantOutbox.js"
import { OutboxEntry } from "../TenantOutbox.js"
import type { SortField } from "../TenantQuery.js"
import type * as TenantRepository from "../TenantRepository.js"
import { ConcurrencyConflict, RepositoryError, TenantAlreadyExists, TenantNotFound } from "../TenantRepositoryError.js"
import { makePgLedger } from "./pgDeliveryLedger.js"
import * as Rules from "./repositoryRules.js"

export interface TenantRow {
  readonly id: string
  readonly code: string
  readonly name: string
  readonly status: string
  readonly email: string
  readonly phone: string | null
  readonly locale: string
  readonly domain: string | null
  readonly settings: unknown
  readonly version: number
  readonly created_at: Date
  readonly updated_at: Date
  readonly deleted_at: Date | null
  readonly status_changed_by: string | null
  readonly status_change_reason: string | null
  readonly status_changed_at: Date | null
}

interface OutboxRow {
  readonly position: string
  readonly event_id: string
  readonly tenant_id: string
  readonly tenant_version: number
  readonly payload: unknown
  readonly occurred_at: Date
  readonly recorded_at: Date
}

const toRow = (tenant: Tenant) => ({
  id: tenant.id,
  code: tenant.code,
  name: tenant.name,
  name_key: Rules.nameKey(tenant.name),
  status: tenant.status,
  email: tenant.contact.email,
  phone: tenant.contact.phone ?? null,
  locale: tenant.contact.locale,
  domain: tenant.domain ?? null,
  settings: JSON.stringify(tenant.settings),
  version: tenant.version,
  created_at: tenant.createdAt,
  updated_at: tenant.updatedAt,
  deleted_at: tenant.deletedAt ?? null,
  status_changed_by: tenant.lastStatusChange?.actor ?? null,
  status_change_reason: tenant.lastStatusChange?.reason ?? null,
  status_changed_at: tenant.lastStatusChange?.at ?? null
})

/** The row as the fields `reconstitute` checks: nulls become absent fields, contact and status change regroup. */
export const rowToProps = (row: TenantRow) => ({
  id: row.id,
  code: row.code,
  name: row.name,
  status: row.status,
  contact: row.phone === null
    ? { email: row.email, locale: row.locale }
    : { email: row.email, phone: row.phone, locale: row.locale },
  ...(row.domain === null ? {} : { domain: row.domain }),
  settings: row.settings,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  ...(row.deleted_at === null ? {} : { deletedAt: row.deleted_at }),
  ...(row.status_changed_by === null || row.status_changed_at === null ? {} : {
    lastStatusChange: row.status_change_reason === null
      ? { actor: row.status_changed_by, at: row.status_changed_at }
      : { actor: row.status_changed_by, at: row.status_changed_at, reason: row.status_change_reason }
  })
})

const fromRow = (operation: string) => (row: TenantRow): Effect.Effect<Tenant, RepositoryError> => {
  const decoded = reconstitute(rowToProps(row))
  return Either.isRight(decoded) ? Effect.succeed(decoded.right) : Effect.fail(
    new RepositoryError({
      operation,
      // The parse error quotes stored values (e-mail addresses, say): it stays in the cause, out of the message.
      detail: `stored tenant ${row.id} does not decode`,
      cause: decoded.left
    })
  )
}

const uniqueFields: Record<string, "id" | "code" | "domain"> = {
  tenants_pkey: "id",
  tenants_code_live_key: "code",
  tenants_domain_live_key: "domain"
}

const driverErrorOf = (error: SqlError): { readonly code?: unknown; readonly constraint?: unknown } =>
  typeof error.cause === "object" && error.cause !== null ? error.cause : {}

const storeFailure = (operation: string) => (error: SqlError): RepositoryError => {
  const { code } = driverErrorOf(error)
  return new RepositoryError({
    operation,
    detail: typeof code === "string" ? `${error.message} (SQLSTATE ${code})` : error.message,
    cause: error
  })
}

/**
 * A unique violation on a tenant key is a domain answer, `TenantAlreadyExists`; one on an event id is the
 * caller's bug (a reused stamp) and dies, as it does in the memory layer; anything else is a store failure.
 */
const writeFailure = (operation: string, tenant: Tenant, events: ReadonlyArray<TenantEvent>) =>
(
  error: SqlError
): Effect.Effect<never, TenantAlreadyExists | RepositoryError> => {
  const { code, constraint } = driverErrorOf(error)
  if (code === "23505" && constraint === "tenant_outbox_event_id_key") {
    return Rules.duplicateEventId(events.map((event) => event.eventId).join(", "))
  }
  const field = code === "23505" && typeof constraint === "string" ? uniqueFields[constraint] : undefined
  if (field === undefined) return Effect.fail(storeFailure(operation)(error))
  return Effect.fail(
    new TenantAlreadyExists({
      field,
      value: field === "id" ? tenant.id : field === "code" ? tenant.code : tenant.domain ?? ""
    })
  )
}

const encodeEvent = Schema.encode(TenantEvent)
const decodeEvent = Schema.decodeUnknown(TenantEvent)

export const makePgStore = Effect.gen(function*() {
  // The host application may give its client name transforms; this package's SQL is written for exact names.
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, sql)

  const columns = sql.literal(
    "id, code, name, status, email, phone, locale, domain, settings, version, created_at, updated_at, deleted_at, " +
      "status_changed_by, status_change_reason, status_changed_at"
  )

  const decodeRows = (operation: string) => (rows: ReadonlyArray<TenantRow>) => Effect.forEach(rows, fromRow(operation))

  // A lookup's statement, then one match: its handlers are built once per operation, not per call.
  const lookupOf = (operation: string) => {
    const failed = storeFailure(operation)
    const decode = fromRow(operation)
    const handlers = {
      onFailure: (error: SqlError) => Effect.fail(failed(error)),
      onSuccess: (found: ReadonlyArray<TenantRow>) =>
        found[0] === undefined ? Effect.succeedNone : Effect.asSome(decode(found[0]))
    }
    return (rows: Effect.Effect<ReadonlyArray<TenantRow>, SqlError>) => Effect.matchEffect(rows, handlers)
  }
  const lookups = {
    findById: lookupOf("findById"),
    findByCode: lookupOf("findByCode"),
    findByDomain: lookupOf("findByDomain")
  }
  const findOne = (operation: keyof typeof lookups, rows: Effect.Effect<ReadonlyArray<TenantRow>, SqlError>) =>
    lookups[operation](rows)

  const appendToOutbox = (events: ReadonlyArray<TenantEvent>) =>
    Effect.flatMap(
      Effect.forEach(events, (event) =>
        Effect.map(encodeEvent(event), (payload) => ({
          event_id: event.eventId,
          tenant_id: event.tenantId,
          tenant_version: event.version,
          event_type: event._tag,
          payload: JSON.stringify(payload),
          occurred_at: event.occurredAt
        }))).pipe(Effect.orDie),
      (rows) => sql`INSERT INTO tenant_outbox ${sql.insert(rows)}`
    )

  const repository: TenantRepository.Service = {
    insert: (tenant, event) =>
      Effect.zipRight(
        Rules.checkInsert(tenant, event),
        sql.withTransaction(
          Effect.zipRight(sql`INSERT INTO tenants ${sql.insert(toRow(tenant))}`, appendToOutbox([event]))
        ).pipe(Effect.catchAll(writeFailure("insert", tenant, [event])), Effect.asVoid)
      ),
    save: (tenant, events, expectedVersion) =>
      Effect.zipRight(
        Rules.checkSave(tenant, events, expectedVersion),
        sql.withTransaction(Effect.gen(function*() {
          const updated = yield* sql`
            UPDATE tenants SET ${sql.update(toRow(tenant), ["id"])}
            WHERE id = ${tenant.id} AND version = ${expectedVersion}
            RETURNING id`
          if (updated.length === 0) {
            const current = yield* sql<{ version: number }>`SELECT version FROM tenants WHERE id = ${tenant.id}`
            return yield* current[0] === undefined ?
              Effect.fail(new TenantNotFound({ tenantId: tenant.id })) :
              Effect.fail(
                new ConcurrencyConflict({ tenantId: tenant.id, expectedVersion, actualVersion: current[0].version })
              )
          }
          yield* appendToOutbox(events)
        })).pipe(Effect.catchTag("SqlError", writeFailure("save", tenant, events)), Effect.asVoid)
      ),
    findById: (id, options) =>
      Rules.isTenantId(id) ?
        findOne(
          "findById",
          options?.includeDeleted === true
            ? sql<TenantRow>`SELECT ${columns} FROM tenants WHERE id = ${id}`
            : sql<TenantRow>`SELECT ${columns} FROM tenants WHERE id = ${id} AND deleted_at IS NULL`
        ) :
        Effect.succeedNone,
    findByCode: (code) =>
      findOne(
        "findByCode",
        sql<TenantRow>`SELECT ${columns} FROM tenants WHERE code = ${normalizeCode(code)} AND deleted_at IS NULL`
      ),
    findByDomain: (domain) =>
      findOne(
        "findByDomain",
        sql<TenantRow>`SELECT ${columns} FROM tenants WHERE domain = ${
          normalizeHostname(domain)
        } AND deleted_at IS NULL`
      ),
    list: (input) =>
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
        return sql.withTransaction(
          Effect.zipRight(
            sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`,
            Effect.all({
              rows: sql<TenantRow>`
                SELECT ${columns} FROM tenants WHERE ${where} ORDER BY ${sql.literal(order)}
                LIMIT ${query.pageSize} OFFSET ${Rules.offsetOf(query)}`,
              count: sql<{ total: number }>`SELECT count(*)::int AS total FROM tenants WHERE ${where}`
            })
          )
        ).pipe(
          Effect.mapError(storeFailure("list")),
          Effect.flatMap(({ count, rows }) =>
            Effect.map(decodeRows("list")(rows), (items) => Rules.pageOf(query, items, count[0]?.total ?? 0))
          )
        )
      }),
    countByStatus: sql<{ status: Tenant["status"]; count: number }>`
      SELECT status, count(*)::int AS count FROM tenants GROUP BY status`.pipe(
      Effect.mapError(storeFailure("countByStatus")),
      Effect.map((rows) => {
        const counts = Rules.zeroCounts()
        for (const row of rows) counts[row.status] = row.count
        return counts
      })
    )
  }

  const outbox: TenantOutbox.Service = {
    list: (options) =>
      Effect.flatMap(Rules.decodeOutboxOptions(options ?? {}), (query) => {
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
      })
  }

  return { repository, outbox, ledger: yield* makePgLedger(sql) }
})

const orderBy: Record<SortField, Record<"asc" | "desc", string>> = {
  name: { asc: `name_key COLLATE "C" ASC, id ASC`, desc: `name_key COLLATE "C" DESC, id DESC` },
  code: { asc: `code COLLATE "C" ASC, id ASC`, desc: `code COLLATE "C" DESC, id DESC` },
  createdAt: { asc: "created_at ASC, id ASC", desc: "created_at DESC, id DESC" },
  updatedAt: { asc: "updated_at ASC, id ASC", desc: "updated_at DESC, id DESC" }
}
