/**
 * Which SQL statements a program sends on the pool of `Postgres.layer`'s client (text and parameters), whatever
 * code made them: `@effect/sql` (its transactions' BEGIN and COMMIT included), or the repository's lookups and
 * lists sent straight to the pool. Each connection's `query` is wrapped: a runtime that counts is not one that is
 * timed.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Pg from "pg"
import { PgPool } from "../src/internal/pgPool.js"

/** A statement as sent: its text (`$1` placeholders) and its parameters. */
export interface Sent {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
}

/** A log that the layer of {@link recording} appends to. */
export interface StatementLog {
  readonly sent: Array<Sent>
}

export const makeLog = (): StatementLog => ({ sent: [] })

/**
 * Notes every statement sent on a connection of the pool of `Postgres.layer`'s client, whatever sent it
 * (`@effect/sql`, or the repository straight on the pool), BEGIN and COMMIT included: put it between
 * `Postgres.layer` and the repository. Each connection's `query` is wrapped when the pool first hands it out.
 */
export const recordingPool = (log: StatementLog): Layer.Layer<never, never, PgPool> =>
  Layer.effectDiscard(Effect.map(PgPool, ({ pool }) => {
    const wrapped = new WeakSet<Pg.PoolClient>()
    pool.on("acquire", (client) => {
      if (wrapped.has(client)) return
      wrapped.add(client)
      const query = client.query.bind(client) as (...args: ReadonlyArray<unknown>) => unknown
      const recorded = (...args: ReadonlyArray<unknown>) => {
        const [text, params] = args
        if (typeof text === "string") log.sent.push({ sql: text, params: Array.isArray(params) ? params : [] })
        return query(...args)
      }
      ;(client as { query: unknown }).query = recorded as Pg.PoolClient["query"]
    })
  }))

/**
 * Statements that read the `tenants` table (a query that names it, however it joins it): lookups and lists, not
 * the outbox's or the ledger's (`tenant_outbox`, `tenant_deliveries` are other words).
 */
export const readsTenants = (sent: Sent): boolean =>
  /^\s*(SELECT|WITH)\b/i.test(sent.sql) && /\btenants\b/i.test(sent.sql)

/** The statements logged since `mark` (an index into the log) that `predicate` accepts. */
export const since = (log: StatementLog, mark: number, predicate: (sent: Sent) => boolean = () => true) =>
  log.sent.slice(mark).filter(predicate)

/**
 * The statements in `sent`, each distinct text once with how often it was sent, its column list elided and the
 * rest shortened to `width`.
 */
export const summary = (sent: ReadonlyArray<Sent>, width = 160): string => {
  const counts = new Map<string, number>()
  for (const statement of sent) {
    // A long column list says nothing about how the rows are found: it gives way to what follows it.
    const text = statement.sql.replace(/\s+/g, " ").trim().replace(/^SELECT (.{60,}?) FROM /i, "SELECT <columns> FROM ")
    counts.set(text, (counts.get(text) ?? 0) + 1)
  }
  return [...counts].map(([text, count]) =>
    `${count} x ${text.length > width ? `${text.slice(0, width - 3)}...` : text}`
  ).join("; ")
}
