import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as DeliveryLedger from "../DeliveryLedger.js"
import type { Channel } from "../SendError.js"
import type { TenantId } from "../Tenant.js"
import { TenantEvent } from "../TenantEvent.js"
import { RepositoryError } from "../TenantRepositoryError.js"
import * as Rules from "./ledgerRules.js"
import { envelopesFor } from "./notificationRules.js"
import { listen } from "./pgListener.js"

/** The channel the outbox trigger notifies on commit (see migration 4). */
export const WAKE_CHANNEL = "tenant_outbox"

/** When to open a failed LISTEN connection again: after 1 s, then twice as long each time, up to 30 s. */
const listenRetry = Schedule.exponential(Duration.seconds(1)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(30)))
)

const decodeEvent = Schema.decodeUnknownEither(TenantEvent)

interface ClaimRow {
  /** How many due messages the claim's window held; the other columns are null when none was claimed. */
  readonly scanned: number
  readonly id: string | null
  readonly message_key: string
  readonly channel: Channel
  readonly lease_epoch: string
  readonly attempts: number
  readonly failures: number
  readonly interrupted: boolean
  readonly event_id: string
  readonly payload: unknown
  readonly digest: string
}

interface DeliveryRow {
  readonly id: string
  readonly message_key: string
  readonly event_id: string
  readonly tenant_id: string
  readonly tenant_version: number
  readonly channel: Channel
  readonly recipient: string
  readonly status: DeliveryLedger.Status
  readonly failures: number
  readonly ambiguous_attempts: number
  readonly provider_id: string | null
  readonly last_error: string | null
  readonly next_attempt_at: Date
}

interface AttemptRow {
  readonly delivery_id: string
  readonly attempt: number
  readonly relay: string
  readonly lease_epoch: string
  readonly started_at: Date
  readonly finished_at: Date | null
  readonly outcome: DeliveryLedger.AttemptOutcome
  readonly detail: string | null
}

const failure = (operation: string) => (error: SqlError | ParseError) =>
  new RepositoryError({
    operation: `ledger.${operation}`,
    detail: error instanceof Error ? error.message : String(error),
    cause: error
  })

const millis = (duration: Duration.Duration) => Duration.toMillis(duration)

/** The widest window of due messages a claim checks for the tenant order (see claim). */
const MAX_WINDOW = 20_000

/**
 * Events this ledger decoded when it expanded them, kept for the claims of their messages (so that an event is
 * decoded once, not again at each claim): at most this many, the oldest forgotten first. A claim of an event not
 * kept (expanded by another relay, or long ago) decodes the stored payload, as before.
 */
const DECODED_EVENTS = 4_096

/** Delivered messages `prune` deletes per statement. */
const PRUNE_BATCH = 1_000

/** An outcome for a message, by the lease it was claimed under. */
interface Settlement {
  readonly id: string
  readonly epoch: number
  readonly attempt: number
  readonly outcome: DeliveryLedger.Outcome
}

/**
 * The ledger in PostgreSQL. Every step is one short statement (expansion is one short transaction), and none
 * is held open while a provider is called. Times are the database's (`now()`), so relays on hosts whose clocks
 * differ agree on leases and backoff.
 */
export const makePgLedger = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const listener = yield* Effect.serviceOption(PgClient.PgClient)
    // By event id: the event as decoded at expansion, the digest of the payload it was decoded from, and how
    // many of its messages are still to be claimed. A claim uses it only while the stored payload has that digest.
    const decoded = new Map<string, { readonly event: TenantEvent; readonly digest: string; remaining: number }>()
    const keep = (eventId: string, digest: string, event: TenantEvent, messages: number) => {
      if (messages === 0) return
      decoded.set(eventId, { event, digest, remaining: messages })
      if (decoded.size > DECODED_EVENTS) {
        const oldest = decoded.keys().next()
        if (oldest.done !== true) decoded.delete(oldest.value)
      }
    }
    const eventOf = (eventId: string, digest: string, payload: unknown): Either.Either<TenantEvent, ParseError> => {
      const kept = decoded.get(eventId)
      if (kept === undefined || kept.digest !== digest) return decodeEvent(payload)
      if (--kept.remaining <= 0) decoded.delete(eventId)
      return Either.right(kept.event)
    }

    const expand = (limit: number) =>
      sql.withTransaction(Effect.gen(function*() {
        const rows = yield* sql<
          {
            position: string
            event_id: string
            tenant_id: string
            tenant_version: number
            payload: unknown
            digest: string
          }
        >`
          SELECT position, event_id, tenant_id, tenant_version, payload, md5(payload::text) AS digest
          FROM tenant_outbox
          WHERE expanded_at IS NULL ORDER BY position LIMIT ${limit} FOR UPDATE SKIP LOCKED`
        if (rows.length === 0) return { taken: 0, kept: [] }
        const deliveries: Array<Record<string, unknown>> = []
        const undecodable: Array<{ position: string; error: string }> = []
        const kept: Array<[eventId: string, digest: string, event: TenantEvent, messages: number]> = []
        for (const row of rows) {
          const decoded = decodeEvent(row.payload)
          if (Either.isLeft(decoded)) {
            undecodable.push({ position: row.position, error: decoded.left.message })
            continue
          }
          const envelopes = envelopesFor(decoded.right)
          kept.push([row.event_id, row.digest, decoded.right, envelopes.length])
          for (const envelope of envelopes) {
            deliveries.push({
              message_key: envelope.key,
              event_id: row.event_id,
              tenant_id: row.tenant_id,
              tenant_version: row.tenant_version,
              channel: envelope.channel,
              recipient: envelope.recipient
            })
          }
        }
        if (deliveries.length > 0) {
          // The recorded time comes from the outbox row, so the lag counts from the commit, not the expansion. A
          // message behind an earlier one of its tenant that waits out a backoff is not due before it (see claim).
          yield* sql`
            INSERT INTO tenant_deliveries
              (message_key, event_id, tenant_id, tenant_version, channel, recipient, event_recorded_at,
               next_attempt_at)
            SELECT d.message_key, d.event_id::uuid, d.tenant_id::uuid, d.tenant_version, d.channel, d.recipient,
              o.recorded_at,
              GREATEST(now(), (
                SELECT max(e.next_attempt_at) FROM tenant_deliveries e
                WHERE e.status = 'pending' AND e.tenant_id = d.tenant_id::uuid AND e.tenant_version < d.tenant_version))
            FROM jsonb_to_recordset(${JSON.stringify(deliveries)}::jsonb) AS d(
              message_key text, event_id text, tenant_id text, tenant_version integer, channel text, recipient text)
            JOIN tenant_outbox o ON o.event_id = d.event_id::uuid
            ON CONFLICT (message_key) DO NOTHING`
        }
        yield* sql`
          UPDATE tenant_outbox SET expanded_at = now()
          WHERE position IN ${sql.in(rows.map((row) => row.position))}`
        for (const { error, position } of undecodable) {
          yield* Effect.logError("outbox relay: an event does not decode; it gets no messages").pipe(
            Effect.annotateLogs({ position, error })
          )
          yield* sql`UPDATE tenant_outbox SET expand_error = ${error} WHERE position = ${position}`
        }
        return { taken: rows.length, kept }
      })).pipe(
        // Kept once the expansion has committed: a rolled-back one gave its events no messages.
        Effect.map(({ kept, taken }) => {
          for (const [eventId, digest, event, messages] of kept) keep(eventId, digest, event, messages)
          return taken
        }),
        Effect.mapError(failure("expand")),
        Effect.withSpan("DeliveryLedger.expand", { captureStackTrace: false })
      )

    // The due messages are taken from the due index first, a window of a few times the limit, and only those
    // are checked for the tenant order: that keeps the claim cheap whatever the backlog and whether or not the
    // tables have statistics yet (without them, PostgreSQL would check every pending row, then sort). Messages
    // that wait for an earlier one of their tenant can fill the window (a tenant with many events at once, many
    // tenants behind messages in flight): when a full window yields less than asked, the next claim looks at
    // one twice as wide, up to MAX_WINDOW, and the width falls back once windows are no longer full. Backoff
    // hints (expand, finishAll) keep most waiting messages out of the window to begin with. The window is checked
    // lazily, with no sort after the checks: a claim of 32 stops after the first 32 that pass instead of checking
    // the whole window (a quarter of the claim's time). The materialized window is read back in the order it was
    // written, so the oldest due still go first; the tenant order never rests on that, only on the checks.
    let widen = 1
    const claim: DeliveryLedger.Service["claim"] = ({ lease, limit, owner }) => {
      const window = Math.min(MAX_WINDOW, (limit * 4 + 100) * widen)
      return sql<ClaimRow>`
        WITH candidates AS MATERIALIZED (
          SELECT id, tenant_id, tenant_version, next_attempt_at FROM tenant_deliveries
          WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
          ORDER BY next_attempt_at, id
          LIMIT ${window}
        ),
        due AS (
          SELECT d.id,
            EXISTS (SELECT 1 FROM tenant_delivery_attempts a WHERE a.delivery_id = d.id AND a.finished_at IS NULL)
              AS interrupted
          FROM candidates c JOIN tenant_deliveries d ON d.id = c.id
          WHERE d.status = 'pending' AND d.next_attempt_at <= now()
            AND (d.lease_until IS NULL OR d.lease_until < now())
            AND NOT EXISTS (
              SELECT 1 FROM tenant_deliveries e
              WHERE e.status = 'pending' AND e.tenant_id = c.tenant_id AND e.tenant_version < c.tenant_version)
            AND NOT EXISTS (
              SELECT 1 FROM tenant_outbox o
              WHERE o.expanded_at IS NULL AND o.tenant_id = c.tenant_id AND o.tenant_version < c.tenant_version)
          LIMIT ${limit}
          FOR UPDATE OF d SKIP LOCKED
        ),
        claimed AS (
          UPDATE tenant_deliveries d SET
            lease_owner = ${owner},
            lease_until = now() + ${millis(lease)}::float8 * interval '1 millisecond',
            lease_epoch = d.lease_epoch + 1,
            attempts = d.attempts + 1,
            failures = d.failures + due.interrupted::int,
            ambiguous_attempts = d.ambiguous_attempts + due.interrupted::int
          FROM due WHERE d.id = due.id
          RETURNING d.id, d.message_key, d.channel, d.lease_epoch, d.attempts, d.failures, d.event_id,
            due.interrupted
        ),
        closed AS (
          UPDATE tenant_delivery_attempts a SET
            finished_at = now(), outcome = 'Ambiguous', detail = ${Rules.INTERRUPTED_DETAIL}
          FROM claimed c WHERE a.delivery_id = c.id AND a.finished_at IS NULL AND c.interrupted
        ),
        started AS (
          INSERT INTO tenant_delivery_attempts (delivery_id, attempt, lease_epoch, relay)
          SELECT id, attempts, lease_epoch, ${owner} FROM claimed
        )
        SELECT w.scanned, c.id, c.message_key, c.channel, c.lease_epoch, c.attempts, c.failures, c.interrupted,
          c.event_id::text AS event_id, o.payload, md5(o.payload::text) AS digest
        FROM (SELECT count(*)::int AS scanned FROM candidates) w
        LEFT JOIN (claimed c JOIN tenant_outbox o ON o.event_id = c.event_id) ON true`.pipe(
        Effect.mapError(failure("claim")),
        Effect.flatMap((rows) => {
          const claimed = rows.filter((row): row is ClaimRow & { readonly id: string } => row.id !== null)
          widen = claimed.length < limit && (rows[0]?.scanned ?? 0) >= window
            ? Math.min(widen * 2, 256)
            : Math.max(1, widen / 2)
          const claims: Array<DeliveryLedger.Claim> = []
          const undecodable: Array<Settlement> = []
          for (const row of claimed) {
            const decoded = eventOf(row.event_id, row.digest, row.payload)
            if (Either.isRight(decoded)) {
              claims.push({
                id: row.id,
                key: row.message_key,
                channel: row.channel,
                epoch: Number(row.lease_epoch),
                attempt: row.attempts,
                failures: row.failures,
                interrupted: row.interrupted,
                event: decoded.right
              })
            } else {
              undecodable.push({
                id: row.id,
                epoch: Number(row.lease_epoch),
                attempt: row.attempts,
                outcome: { _tag: "Cancelled", reason: `the event no longer decodes: ${decoded.left.message}` }
              })
            }
          }
          // An event that decoded at expansion and no longer does (a deploy changed its schema) is a dead letter
          // for that message alone, to be replayed once fixed; the rest of the claim goes on.
          // Settling them must not cost the claims that decoded: should it fail, they are met again once their
          // lease expires.
          return undecodable.length === 0 ? Effect.succeed(claims) : settle(undecodable).pipe(
            Effect.zipRight(Effect.logError("outbox relay: claimed messages whose event does not decode are dead")),
            Effect.catchAll((error) =>
              Effect.logError("outbox relay: could not dead-letter messages whose event does not decode", error)
            ),
            Effect.annotateLogs({ ids: undecodable.map((entry) => entry.id).join(",") }),
            Effect.as(claims)
          )
        }),
        Effect.withSpan("DeliveryLedger.claim", { captureStackTrace: false, attributes: { window } })
      )
    }

    // Each message row is updated first, under the fencing check (the lease's epoch, and a lease still held:
    // finishing lets it go, so a finish repeated after a lost reply, even one racing the first, counts once; the
    // attempt must be open too), and its attempt closed only through it: a
    // relay whose lease passed on changes nothing (the next claim has already closed its attempt). A message
    // sent back to backoff holds its tenant's later messages back as long (a hint for the claim's window).
    const settle = (settlements: ReadonlyArray<Settlement>) => {
      const input = settlements.map(({ attempt, epoch, id, outcome }) => {
        const next = Rules.transitionOf(outcome)
        return {
          id,
          epoch,
          attempt,
          status: next.status,
          attempt_outcome: next.attemptOutcome,
          detail: next.detail ?? null,
          provider_id: next.providerId ?? null,
          last_error: next.lastError ?? null,
          failed: next.failed,
          ambiguous: next.ambiguous,
          retry_after_ms: next.retryAfterMillis
        }
      })
      return sql<{ id: string; epoch: string }>`
        WITH input AS (
          SELECT * FROM jsonb_to_recordset(${JSON.stringify(input)}::jsonb) AS i(
            id bigint, epoch bigint, attempt integer, status text, attempt_outcome text, detail text,
            provider_id text, last_error text, failed integer, ambiguous integer, retry_after_ms float8)
        ),
        d AS (
          UPDATE tenant_deliveries t SET
            status = i.status,
            lease_owner = NULL,
            lease_until = NULL,
            next_attempt_at = now() + i.retry_after_ms * interval '1 millisecond',
            failures = t.failures + i.failed,
            ambiguous_attempts = t.ambiguous_attempts + i.ambiguous,
            provider_id = COALESCE(i.provider_id, t.provider_id),
            last_error = COALESCE(i.last_error, t.last_error),
            finished_at = CASE WHEN i.status = 'pending' THEN NULL ELSE now() END
          FROM input i
          WHERE t.id = i.id AND t.lease_epoch = i.epoch AND t.status = 'pending' AND t.lease_owner IS NOT NULL
            AND EXISTS (
              SELECT 1 FROM tenant_delivery_attempts x
              WHERE x.delivery_id = i.id AND x.attempt = i.attempt AND x.finished_at IS NULL)
          RETURNING t.id, t.lease_epoch, t.status, t.tenant_id, t.tenant_version, t.next_attempt_at
        ),
        a AS (
          UPDATE tenant_delivery_attempts x SET finished_at = now(), outcome = i.attempt_outcome, detail = i.detail
          FROM input i JOIN d ON d.id = i.id
          WHERE x.delivery_id = i.id AND x.attempt = i.attempt AND x.finished_at IS NULL
        ),
        held_back AS (
          UPDATE tenant_deliveries f SET next_attempt_at = d.next_attempt_at
          FROM d
          WHERE d.status = 'pending' AND f.status = 'pending' AND f.tenant_id = d.tenant_id
            AND f.tenant_version > d.tenant_version AND f.next_attempt_at < d.next_attempt_at
            AND f.id NOT IN (SELECT id FROM input)
        )
        SELECT id::text AS id, lease_epoch::text AS epoch FROM d`.pipe(
        Effect.map((rows) => {
          // By lease, not message: one group can hold a message under a lapsed lease and under its new one.
          const recorded = new Set(rows.map((row) => `${row.id}:${row.epoch}`))
          return settlements.map(({ epoch, id }) => recorded.has(`${id}:${epoch}`))
        }),
        Effect.mapError(failure("finish")),
        Effect.withSpan("DeliveryLedger.finishAll", {
          captureStackTrace: false,
          attributes: { count: settlements.length }
        })
      )
    }

    const finishAll: DeliveryLedger.Service["finishAll"] = (outcomes) =>
      outcomes.length === 0 ? Effect.succeed([]) : settle(outcomes.map(({ claim: claimed, outcome }) => ({
        id: claimed.id,
        epoch: claimed.epoch,
        attempt: claimed.attempt,
        outcome
      })))

    const finish: DeliveryLedger.Service["finish"] = (claimed, outcome) =>
      Effect.map(finishAll([{ claim: claimed, outcome }]), (recorded) => recorded[0] === true)

    const renew: DeliveryLedger.Service["renew"] = (claims, lease) =>
      claims.length === 0 ? Effect.succeed(0) : sql<{ id: string }>`
        UPDATE tenant_deliveries d SET lease_until = now() + ${millis(lease)}::float8 * interval '1 millisecond'
        FROM jsonb_to_recordset(${
        JSON.stringify(claims.map((held) => ({ id: held.id, epoch: held.epoch })))
      }::jsonb) AS h(id bigint, epoch bigint)
        WHERE d.id = h.id AND d.lease_epoch = h.epoch AND d.status = 'pending'
        RETURNING d.id`.pipe(
        Effect.map((rows) => rows.length),
        Effect.mapError(failure("renew"))
      )

    const release: DeliveryLedger.Service["release"] = (owner) =>
      sql<{ id: string }>`
        UPDATE tenant_deliveries SET lease_owner = NULL, lease_until = NULL
        WHERE lease_owner = ${owner} AND status = 'pending' RETURNING id`.pipe(
        Effect.map((rows) => rows.length),
        Effect.mapError(failure("release"))
      )

    // LISTEN needs a PgClient (its settings open the LISTEN connection); with another SqlClient the relay polls
    // only. Each subscriber has a connection of its own (see pgListener for why not `PgClient.listen`). The
    // trigger's payload is the schema the event was stored in, so relays of other schemas in the same database
    // are not woken. A LISTEN connection that cannot be opened or is lost is opened again, after 1 s and then
    // less often while it keeps failing (up to every 30 s, each failure logged), and what was notified
    // meanwhile is found by the polls.
    const schema = yield* sql<{ schema: string }>`SELECT current_schema() AS schema`.pipe(
      Effect.map((rows) => rows[0]?.schema ?? "public")
    )
    const wakeups: Stream.Stream<void> = Option.match(listener, {
      onNone: () => Stream.never,
      onSome: (client) =>
        listen(client.config, WAKE_CHANNEL).pipe(
          Stream.filter((payload) => payload === schema),
          Stream.as(undefined),
          Stream.tapErrorCause((cause) => Effect.logWarning("outbox relay: LISTEN failed; polling meanwhile", cause)),
          Stream.retry(listenRetry),
          Stream.catchAllCause(() => Stream.never)
        )
    })

    // Each count reads a partial index (pending, dead, unexpanded, undecodable): none grows with the history, but
    // the count of delivered messages, which only `stats` reads. All come from one statement, so from one
    // moment: counted one after the other, a message delivered in between would be both pending and delivered.
    const deliveredCount = sql`(SELECT count(*)::int FROM tenant_deliveries WHERE status = 'delivered')`
    const counts = (operation: string, delivered: boolean) =>
      sql<{
        unexpanded: number
        undecodable: number
        oldest_unexpanded: Date | null
        pending: number
        in_flight: number
        dead: number
        oldest_pending: Date | null
        delivered: number
      }>`
        SELECT
          (SELECT count(*)::int FROM tenant_outbox WHERE expanded_at IS NULL) AS unexpanded,
          (SELECT count(*)::int FROM tenant_outbox WHERE expand_error IS NOT NULL) AS undecodable,
          (SELECT min(recorded_at) FROM tenant_outbox WHERE expanded_at IS NULL) AS oldest_unexpanded,
          (SELECT count(*)::int FROM tenant_deliveries WHERE status = 'dead') AS dead,
          ${delivered ? deliveredCount : sql`0`} AS delivered,
          p.pending, p.in_flight, p.oldest_pending
        FROM (
          SELECT count(*)::int AS pending, count(*) FILTER (WHERE lease_until > now())::int AS in_flight,
            min(event_recorded_at) AS oldest_pending
          FROM tenant_deliveries WHERE status = 'pending'
        ) p`.pipe(
        Effect.map(([row]): DeliveryLedger.Stats => {
          const oldest = [row?.oldest_unexpanded, row?.oldest_pending].filter((at): at is Date => at instanceof Date)
          return {
            unexpandedEvents: row?.unexpanded ?? 0,
            undecodableEvents: row?.undecodable ?? 0,
            pending: row?.pending ?? 0,
            inFlight: row?.in_flight ?? 0,
            dead: row?.dead ?? 0,
            delivered: row?.delivered ?? 0,
            oldestPendingAt: oldest.length === 0
              ? Option.none()
              : Option.some(new Date(Math.min(...oldest.map((at) => at.getTime()))))
          }
        }),
        Effect.mapError(failure(operation))
      )

    const backlog = Effect.map(counts("backlog", false), ({ delivered: _, ...backlog }): DeliveryLedger.Backlog =>
      backlog)

    const stats = counts("stats", true)

    const withAttempts = (rows: ReadonlyArray<DeliveryRow>) =>
      rows.length === 0
        ? Effect.succeed([])
        : Effect.map(
          sql<AttemptRow>`
            SELECT delivery_id, attempt, relay, lease_epoch, started_at, finished_at, outcome, detail
            FROM tenant_delivery_attempts WHERE delivery_id IN ${
            sql.in(rows.map((row) => row.id))
          }
            ORDER BY delivery_id, attempt`,
          (attempts) =>
            rows.map((row): DeliveryLedger.Delivery => ({
              key: row.message_key,
              eventId: row.event_id,
              tenantId: row.tenant_id as TenantId,
              tenantVersion: row.tenant_version,
              channel: row.channel,
              recipient: row.recipient,
              status: row.status,
              ambiguousAttempts: row.ambiguous_attempts,
              failures: row.failures,
              providerId: Option.fromNullable(row.provider_id),
              lastError: Option.fromNullable(row.last_error),
              nextAttemptAt: row.status === "pending" ? Option.some(row.next_attempt_at) : Option.none(),
              attempts: attempts.filter((attempt) => attempt.delivery_id === row.id).map((attempt) => ({
                attempt: attempt.attempt,
                relay: attempt.relay,
                epoch: Number(attempt.lease_epoch),
                startedAt: attempt.started_at,
                finishedAt: Option.fromNullable(attempt.finished_at),
                outcome: attempt.outcome,
                detail: Option.fromNullable(attempt.detail)
              }))
            }))
        )

    const deliveryColumns = sql.literal(
      "id, message_key, event_id, tenant_id, tenant_version, channel, recipient, status, failures, " +
        "ambiguous_attempts, provider_id, last_error, next_attempt_at"
    )

    const list: DeliveryLedger.Service["list"] = (options) =>
      Effect.flatMap(Rules.decodeListOptions(options ?? {}), (query) =>
        sql<DeliveryRow>`
          SELECT ${deliveryColumns} FROM tenant_deliveries
          WHERE status = ${query.status}
            ${query.afterKey === undefined ? sql`` : sql`AND message_key COLLATE "C" > ${query.afterKey}`}
          ORDER BY message_key COLLATE "C" LIMIT ${query.limit}`.pipe(
          Effect.flatMap(withAttempts),
          Effect.mapError(failure("list"))
        ))

    const find: DeliveryLedger.Service["find"] = (key) =>
      sql<DeliveryRow>`SELECT ${deliveryColumns} FROM tenant_deliveries WHERE message_key = ${key}`.pipe(
        Effect.flatMap(withAttempts),
        Effect.map((found) => Option.fromNullable(found[0])),
        Effect.mapError(failure("find"))
      )

    const replay: DeliveryLedger.Service["replay"] = (keys) =>
      keys !== undefined && keys.length === 0 ? Effect.succeed(0) : sql<{ id: string }>`
        UPDATE tenant_deliveries SET status = 'pending', failures = 0, next_attempt_at = now(), finished_at = NULL
        WHERE status = 'dead' ${keys === undefined ? sql`` : sql`AND message_key IN ${sql.in(keys)}`}
        RETURNING id`.pipe(
        Effect.tap((rows) =>
          rows.length === 0 ? Effect.void : sql`SELECT pg_notify(${WAKE_CHANNEL}, current_schema())`
        ),
        Effect.map((rows) => rows.length),
        Effect.mapError(failure("replay"))
      )

    // A batch at a time, each its own statement: a long history is deleted without one long lock. The cut-off
    // is read once, so that messages delivered while it runs do not keep it going.
    const pruneBatch = (cutoff: Date) =>
      sql<{ id: string }>`
        DELETE FROM tenant_deliveries WHERE id IN (
          SELECT id FROM tenant_deliveries
          WHERE status = 'delivered' AND finished_at < ${cutoff}
          ORDER BY finished_at LIMIT ${PRUNE_BATCH}
          FOR UPDATE SKIP LOCKED
        ) RETURNING id`.pipe(Effect.map((rows) => rows.length))

    const prune = (olderThan: Duration.Duration) =>
      // Longer ago than PostgreSQL's dates reach (or infinite): nothing can be that old.
      !Duration.isFinite(olderThan) || Duration.greaterThan(olderThan, Rules.LONGEST_HISTORY)
        ? Effect.succeed(0)
        : sql<{ cutoff: Date }>`SELECT now() - make_interval(secs => ${Duration.toSeconds(olderThan)}) AS cutoff`
          .pipe(
            Effect.flatMap(([row]) =>
              row === undefined ? Effect.succeed({ total: 0 }) : Effect.iterate({ total: 0, last: PRUNE_BATCH }, {
                while: ({ last }) => last === PRUNE_BATCH,
                body: ({ total }) =>
                  Effect.map(pruneBatch(row.cutoff), (count) => ({ total: total + count, last: count }))
              })
            ),
            Effect.map(({ total }) => total),
            Effect.mapError(failure("prune")),
            Effect.withSpan("DeliveryLedger.prune", { captureStackTrace: false })
          )

    const service: DeliveryLedger.Service = {
      expand,
      claim,
      finish,
      finishAll,
      renew,
      release,
      wakeups,
      backlog,
      stats,
      list,
      find,
      replay,
      prune
    }
    return service
  })
