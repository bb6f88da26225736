import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type * as Array from "effect/Array"
import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Migrations from "../Migrations.js"
import type { Tenant } from "../Tenant.js"
import { TenantEvent } from "../TenantEvent.js"
import type * as TenantRepository from "../TenantRepository.js"
import { ConcurrencyConflict, RepositoryError, TenantAlreadyExists, TenantNotFound } from "../TenantRepositoryError.js"
import type * as ChangeFeed from "./changeFeed.js"
import { answerWithin } from "./deadline.js"
import { makePgLedger } from "./pgDeliveryLedger.js"
import { makePgList } from "./pgList.js"
import { decodeRow, makeLiveLookup } from "./pgLookups.js"
import { driverErrorOf, makePgOutbox, storeFailure } from "./pgOutbox.js"
import { PgPool } from "./pgPool.js"
import { PgWatchdog } from "./pgSocket.js"
import * as Rules from "./repositoryRules.js"
import { rowToProps, type TenantRow, toColumns } from "./tenantFields.js"

export { rowToProps, type TenantRow }

// name_key is no field of the tenant: an index of its name for sorting, kept beside the columns of its fields.
const toRow = (tenant: Tenant) => ({ ...toColumns(tenant), name_key: Rules.nameKey(tenant.name) })

const fromRow = (operation: string) => {
  const decode = decodeRow(operation)
  return (row: TenantRow): Effect.Effect<Tenant, RepositoryError> => decode(row)
}

const uniqueFields: Record<string, "id" | "code" | "domain"> = {
  tenants_pkey: "id",
  tenants_code_live_key: "code",
  tenants_domain_live_key: "domain"
}

/**
 * A unique violation on a tenant key is a domain answer, `TenantAlreadyExists`; one on an event id is a repeat of
 * a stored write or the caller's bug (see `Rules.storedAlready`); anything else is a store failure.
 */
const writeFailure = (operation: string, tenant: Tenant) =>
(
  error: SqlError
): Effect.Effect<never, TenantAlreadyExists | RepositoryError | DuplicateEvent> => {
  const { code, constraint } = driverErrorOf(error)
  if (code === "23505" && constraint === "tenant_outbox_event_id_key") return Effect.fail(duplicateEvent)
  const field = code === "23505" && typeof constraint === "string" ? uniqueFields[constraint] : undefined
  if (field === undefined) return Effect.fail(storeFailure(operation)(error))
  return Effect.fail(
    new TenantAlreadyExists({
      field,
      value: field === "id" ? tenant.id : field === "code" ? tenant.code : tenant.domain ?? ""
    })
  )
}

/** An event id already in the outbox: resolved by `unlessStored`, never returned. */
interface DuplicateEvent {
  readonly _tag: "DuplicateEvent"
}
const duplicateEvent: DuplicateEvent = { _tag: "DuplicateEvent" }

interface ChangeRow {
  readonly event_id: string
  readonly mark: string
  readonly tenant_id: string
  readonly code: string
  readonly domain: string | null
  readonly previous_code: string | null
  readonly previous_domain: string | null
}

const changeOfRow = (row: ChangeRow): ChangeFeed.Change => ({
  eventId: row.event_id,
  mark: BigInt(row.mark),
  tenantId: row.tenant_id,
  code: row.code,
  domain: row.domain ?? undefined,
  previousCode: row.previous_code ?? undefined,
  previousDomain: row.previous_domain ?? undefined
})

/** Which transaction a write ran in: its id (`xid8`, as text) and the server process that ran it. */
interface WriteTransaction {
  readonly xid: string
  readonly pid: number
}

/** A tenant's columns, in the order `rowToProps` reads them. */
const COLUMNS = "id, code, name, status, email, phone, locale, domain, settings, version, created_at, updated_at, " +
  "deleted_at, status_changed_by, status_change_reason, status_changed_at"

/** How often an unknown commit's transaction is asked about, until the operation's deadline. */
const resolveSchedule = Schedule.spaced(Duration.millis(100))

const encodeEvent = Schema.encode(TenantEvent)

/**
 * @since 0.2.0
 */
export interface PgStoreOptions {
  /** How long any operation may take, a write's resolution of an unknown commit included. */
  readonly timeout: Duration.Duration
  /** Whether lookups made while others run share one query. */
  readonly batchLookups: boolean
}

export const makePgStore = (options: PgStoreOptions) =>
  Effect.gen(function*() {
    // The host application may give its client name transforms; this package's SQL is written for exact names.
    const client = yield* SqlClient.SqlClient
    const sql = client.withoutTransforms()
    yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, sql)
    const timeoutMillis = Duration.toMillis(options.timeout)
    // A single statement on a watched client is bounded already; a deadline of its own (a fiber and a timer)
    // would cost a lookup by id more than its mapping and checks together.
    const watchdog = yield* Effect.serviceOption(PgWatchdog)
    const statementsBounded = Option.isSome(watchdog) && watchdog.value.statementBoundMillis <= timeoutMillis

    /**
     * Every operation ends within the timeout, even one stuck where it cannot be interrupted (a transaction's
     * COMMIT): the caller is answered on time and the work left behind ends by itself (the client's watchdog
     * destroys a silent connection; the resolution of a commit stops at the deadline). A write cut off this way
     * may still commit: its error says the outcome is unknown.
     */
    const deadline = (operation: string, kind: "read" | "write" | "statement") => {
      const onTimeout = () =>
        new RepositoryError({
          operation,
          reason: kind === "write" ? "OutcomeUnknown" : "Timeout",
          detail: kind === "write"
            ? `no answer within ${timeoutMillis} ms; the write may or may not be stored: retrying it with the same ` +
              `events is safe`
            : `no answer within ${timeoutMillis} ms`
        })
      return kind === "statement" && statementsBounded
        ? <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | RepositoryError, R> => effect
        : answerWithin(options.timeout, onTimeout)
    }
    const deadlines = {
      insert: deadline("insert", "write"),
      save: deadline("save", "write"),
      findById: deadline("findById", "statement"),
      findByCode: deadline("findByCode", "statement"),
      findByDomain: deadline("findByDomain", "statement"),
      list: deadline("list", "read"),
      countByStatus: deadline("countByStatus", "statement"),
      outboxList: deadline("outbox.list", "statement"),
      changes: deadline("changes", "read")
    }

    /**
     * A transaction whose COMMIT or ROLLBACK fails ends, in `@effect/sql`, as a defect. A network fault is no bug:
     * a failed ROLLBACK (the body had failed, nothing was committed) gives back the body's failure; a failed COMMIT
     * leaves the outcome unknown, and `resolveCommit` finds it out.
     */
    const transaction = <A, E>(
      body: (record: (written: WriteTransaction) => void) => Effect.Effect<A, E>,
      commitLost: (written: WriteTransaction | undefined, cause: SqlError) => Effect.Effect<A, RepositoryError>
    ): Effect.Effect<A, E | SqlError | RepositoryError> =>
      Effect.suspend(() => {
        let written: WriteTransaction | undefined
        let failure: Cause.Cause<E> | undefined
        let committing = false
        return sql.withTransaction(
          body((transaction) => {
            written = transaction
          }).pipe(
            Effect.onExit((exit) =>
              Effect.sync(() => {
                if (exit._tag === "Success") committing = true
                else failure = exit.cause
              })
            )
          )
        ).pipe(
          Effect.catchAllDefect((defect): Effect.Effect<A, E | SqlError | RepositoryError> => {
            if (!(defect instanceof SqlError)) return Effect.die(defect)
            // The body failed, or never ran (BEGIN failed), and the ROLLBACK after it failed: nothing was committed.
            if (!committing) return failure === undefined ? Effect.fail(defect) : Effect.failCause(failure)
            return commitLost(written, defect)
          })
        )
      })

    /**
     * The COMMIT was sent and its answer lost. The transaction's status settles it: committed, the write
     * succeeded; aborted, nothing was stored. While it is still in progress (the server never got the COMMIT and
     * holds the transaction open, with its row locks) its server process is terminated, which ends it one way or
     * the other. Only when the database cannot be asked before the deadline does the write fail as unknown.
     */
    const resolveCommit = (operation: string) =>
    (
      written: WriteTransaction | undefined,
      cause: SqlError
    ): Effect.Effect<void, RepositoryError> => {
      const unknown = new RepositoryError({
        operation,
        reason: "OutcomeUnknown",
        detail: "the connection failed during COMMIT and the outcome could not be confirmed in time; retrying the " +
          "write with the same events is safe",
        cause
      })
      if (written === undefined) return Effect.fail(unknown)
      const status = sql<{ status: string | null }>`SELECT pg_xact_status(${written.xid}::xid8) AS status`.pipe(
        Effect.flatMap((rows) => {
          const status = rows[0]?.status
          if (status === "committed" || status === "aborted") return Effect.succeed(status)
          if (status !== "in progress") return Effect.fail(unknown)
          // Only that transaction's process: the process id alone may have been reused since.
          return sql`
          SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE pid = ${written.pid} AND backend_xid = ${written.xid}::xid8::xid`.pipe(
            Effect.zipRight(Effect.fail(unknown))
          )
        }),
        Effect.catchTag("SqlError", () => Effect.fail(unknown))
      )
      return status.pipe(
        Effect.retry(resolveSchedule),
        Effect.timeoutFail({ duration: options.timeout, onTimeout: () => unknown }),
        Effect.flatMap((status) =>
          status === "committed" ? Effect.void : Effect.fail(
            new RepositoryError({
              operation,
              detail: "the connection failed during COMMIT; the database confirms that nothing was stored",
              cause
            })
          )
        )
      )
    }

    /**
     * A write that failed because its tenant has moved on may be a retry of one that committed: its events are then
     * in the outbox, and it succeeds (see `Rules.storedAlready`).
     */
    const unlessStored = <E>(events: Array.NonEmptyReadonlyArray<TenantEvent>) =>
    <A>(
      effect: Effect.Effect<A, E | DuplicateEvent>
    ): Effect.Effect<A | void, Exclude<E, DuplicateEvent> | RepositoryError> =>
      Effect.catchIf(
        effect,
        (error): error is E | DuplicateEvent =>
          error instanceof TenantAlreadyExists || error instanceof ConcurrencyConflict || error === duplicateEvent,
        (error) =>
          storedEvents(events).pipe(
            Effect.flatMap((stored) => Rules.storedAlready(events, stored)),
            Effect.flatMap((stored) =>
              stored ? Effect.void : error === duplicateEvent
                ? Rules.duplicateEventId(events.map((event) => event.eventId).join(", "))
                : Effect.fail(error as Exclude<E, DuplicateEvent>)
            )
          )
      )

    const storedEvents = (events: ReadonlyArray<TenantEvent>) =>
      sql<{ event_id: string; tenant_id: string; tenant_version: number; event_type: string }>`
      SELECT event_id, tenant_id, tenant_version, event_type FROM tenant_outbox
      WHERE event_id IN ${sql.in(events.map((event) => event.eventId))}`.pipe(
        Effect.map((rows) =>
          rows.map((row): Rules.StoredEvent => ({
            eventId: row.event_id,
            tenantId: row.tenant_id,
            tenantVersion: row.tenant_version,
            eventType: row.event_type
          }))
        ),
        Effect.mapError(storeFailure("storedAlready"))
      )

    const columns = sql.literal(COLUMNS)

    // A page's rows in one step, not a step a row: the runtime's steps cost a list more than the checks.
    const decodeRows = (operation: string) => {
      const decode = decodeRow(operation)
      return (rows: ReadonlyArray<TenantRow>): Effect.Effect<Array<Tenant>, RepositoryError> =>
        Effect.suspend(() => {
          const tenants: Array<Tenant> = []
          for (const row of rows) {
            const tenant = decode(row)
            if (Either.isLeft(tenant)) return Effect.fail(tenant.left)
            tenants.push(tenant.right)
          }
          return Effect.succeed(tenants)
        })
    }

    const scope = yield* Effect.scope
    // Straight to the pool where that pool is the given client's own (see pgPool).
    const ownPool = yield* Effect.serviceOption(PgPool)
    const pool = Option.isSome(ownPool) && ownPool.value.client === client ? ownPool.value.pool : undefined
    const liveLookup = makeLiveLookup({
      sql,
      columnList: COLUMNS,
      columns,
      pool,
      batchLookups: options.batchLookups,
      scope
    })
    const liveById = liveLookup("id", "findById")
    const liveByCode = liveLookup("code", "findByCode")
    const liveByDomain = liveLookup("domain", "findByDomain")
    const decodeDeleted = fromRow("findById")
    const failedFindById = storeFailure("findById")

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

    const list = makePgList({
      sql,
      columns,
      pool,
      decodeRows: decodeRows("list"),
      // A read-only transaction has nothing to resolve: its answer is lost with its connection.
      readOnly: (body) =>
        transaction(
          () => Effect.zipRight(sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`, body),
          (_, cause) => Effect.fail(storeFailure("list")(cause))
        )
    })

    const repository: TenantRepository.Service = {
      insert: (tenant, event) =>
        deadlines.insert(Effect.zipRight(
          Rules.checkInsert(tenant, event),
          transaction((record) =>
            Effect.zipRight(
              Effect.map(
                sql<WriteTransaction>`
                INSERT INTO tenants ${sql.insert(toRow(tenant))}
                RETURNING pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid`,
                (rows) => rows[0] !== undefined && record(rows[0])
              ),
              appendToOutbox([event])
            ), resolveCommit("insert")).pipe(
              Effect.catchTag("SqlError", writeFailure("insert", tenant)),
              unlessStored([event]),
              Effect.asVoid
            )
        )),
      save: (tenant, events, expectedVersion) =>
        deadlines.save(Effect.zipRight(
          Rules.checkSave(tenant, events, expectedVersion),
          transaction((record) =>
            Effect.gen(function*() {
              const updated = yield* sql<WriteTransaction>`
              UPDATE tenants SET ${sql.update(toRow(tenant), ["id"])}
              WHERE id = ${tenant.id} AND version = ${expectedVersion}
              RETURNING pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid`
              if (updated[0] === undefined) {
                const current = yield* sql<{ version: number }>`SELECT version FROM tenants WHERE id = ${tenant.id}`
                return yield* current[0] === undefined ?
                  Effect.fail(new TenantNotFound({ tenantId: tenant.id })) :
                  Effect.fail(
                    new ConcurrencyConflict({ tenantId: tenant.id, expectedVersion, actualVersion: current[0].version })
                  )
              }
              record(updated[0])
              yield* appendToOutbox(events)
            }), resolveCommit("save")).pipe(
              Effect.catchTag("SqlError", writeFailure("save", tenant)),
              unlessStored(events),
              Effect.asVoid
            )
        )),
      findById: (id, options) =>
        Rules.isTenantId(id) ?
          deadlines.findById(
            options?.includeDeleted === true
              ? sql<TenantRow>`SELECT ${columns} FROM tenants WHERE id = ${id}`.pipe(
                Effect.mapError(failedFindById),
                Effect.flatMap((rows) =>
                  rows[0] === undefined ? Effect.succeedNone : Effect.asSome(decodeDeleted(rows[0]))
                )
              )
              : liveById(id)
          ) :
          Effect.succeedNone,
      findByCode: (input) => {
        const code = Rules.codeToFind(input)
        return code === undefined ? Effect.succeedNone : deadlines.findByCode(liveByCode(code))
      },
      findByDomain: (input) => {
        const domain = Rules.domainToFind(input)
        return domain === undefined ? Effect.succeedNone : deadlines.findByDomain(liveByDomain(domain))
      },
      list: (input) => deadlines.list(list(input)),
      countByStatus: deadlines.countByStatus(
        sql<{ status: Tenant["status"]; count: number }>`
        SELECT status, count(*)::int AS count FROM tenants GROUP BY status`.pipe(
          Effect.mapError(storeFailure("countByStatus")),
          Effect.map((rows) => {
            const counts = Rules.zeroCounts()
            for (const row of rows) counts[row.status] = row.count
            return counts
          })
        )
      )
    }

    const outbox = makePgOutbox(sql, deadlines.outboxList)

    /**
     * Changes in commit order, by the transaction that wrote them. A transaction below the snapshot's `xmin` has
     * ended, so the events below it are all visible to the next statement and none can appear there later; the
     * snapshot's `xmax` is above every transaction that had committed when the poll began.
     */
    const changes: ChangeFeed.Service = {
      start: (window) =>
        sql<{ mark: string }>`
          SELECT LEAST(
            (SELECT min(xid) FROM tenant_outbox WHERE recorded_at >= now() - ${
          Duration.toMillis(window)
        } * interval '1 millisecond'),
            pg_snapshot_xmin(pg_current_snapshot())
          )::text AS mark`.pipe(
          Effect.map((rows) => BigInt(rows[0]?.mark ?? "0")),
          Effect.mapError(storeFailure("changes.start")),
          deadlines.changes
        ),
      poll: (from, limit) =>
        Effect.gen(function*() {
          const [snapshot] = yield* sql<{ head: string; horizon: string }>`
            SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS head,
                   pg_snapshot_xmin(pg_current_snapshot())::text AS horizon`
          const head = BigInt(snapshot?.head ?? "0")
          const horizon = BigInt(snapshot?.horizon ?? "0")
          const rows = from >= horizon ? [] : yield* sql<ChangeRow>`
            SELECT event_id, xid::text AS mark, tenant_id, payload->'tenant'->>'code' AS code,
                   payload->'tenant'->>'domain' AS domain, payload->>'previousCode' AS previous_code,
                   payload->>'previousDomain' AS previous_domain
            FROM tenant_outbox WHERE xid >= ${String(from)}::xid8 AND xid < ${String(horizon)}::xid8
            ORDER BY xid, position LIMIT ${limit}`
          const last = rows[rows.length - 1]
          // A full page goes on from its last transaction, read again whole next time (applying is idempotent);
          // past it, when one transaction alone filled the page.
          const next = last === undefined || rows.length < limit
            ? horizon
            : BigInt(last.mark) > from
            ? BigInt(last.mark)
            : from + 1n
          return { head, next, changes: rows.map(changeOfRow) }
        }).pipe(Effect.mapError(storeFailure("changes.poll")), deadlines.changes)
    }

    return { repository, outbox, ledger: yield* makePgLedger(sql), changes }
  })
