/**
 * `TenantRepository.list` on a table of 100,000 tenants, against the raw `pg` driver running the very
 * statements the repository sends.
 *
 * The tenants live in a database of their own, `bench_list` on the server of `DATABASE_URL`, created when absent,
 * migrated by the repository's own layer, seeded once by one `INSERT ... SELECT generate_series` and kept for
 * the next runs (a table `bench_seed` records the seed's version and size; a different one is seeded again). It
 * is left in place on purpose: seeding and analysing 100,000 rows takes longer than the benchmark. Drop it with
 * `DROP DATABASE bench_list` to start over. Names are "<word> <word> <n>", the second word one of 37 (so a search
 * for one of them matches about 2.7% of the tenants), statuses about 70% active, 17% pending, 9% suspended and
 * 4% deleted, independent of the name.
 *
 * The raw side's statements are taken from the repository itself: a runtime that notes every statement
 * (`statements.ts`) runs the same `list` once, and the raw side replays what it sent, text and parameters, in a
 * transaction when the repository's was one (its `SET TRANSACTION`), with the rows mapped by `rowToProps`. Both
 * must answer the same ids (and total) before the rounds. So the baseline follows the repository's SQL when it
 * changes.
 *
 * - Filtered: `{ status: "active", search: "orchard", sortBy: "name", sortDirection: "asc", pageSize: 50 }`,
 *   held to <= 1.3x raw; the rows statement's `EXPLAIN (ANALYZE, BUFFERS)` is printed, and whether its plan
 *   uses an index is a figure of its own (goal: it does).
 * - Deep pages: `{ status: "active", sortBy: "name", sortDirection: "asc", pageSize: 50 }` (about 1,390 pages),
 *   page 1,000 (after the cursor of page 999) against page 1, both without a count, held to <= 1.2x; see
 *   `deepPageQuery`.
 */
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import pg from "pg"
import { rowToProps, type TenantRow } from "../src/internal/tenantFields.js"
import type { ListQueryInput, Page } from "../src/TenantQuery.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { DATABASE_URL } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"
import { pgRepository, scopedRuntime } from "./runtimes.js"
import * as Statements from "./statements.js"

const DATABASE = "bench_list"
const TENANTS = 100_000
/** Raise it when the seed below changes: a database seeded by another version is seeded again. */
const SEED_VERSION = 1
const SEED_DEADLINE = Duration.minutes(5)
/** `TenantInfra.layerPostgres`'s default pool; the raw pool gets the same. */
const POOL_SIZE = 10
const PAGE_SIZE = 50
const DEEP_PAGE = 1_000
const GOAL_FILTERED = 1.3
const GOAL_DEEP = 1.2
const PLAN_FILTERED: Harness.Plan = { warmup: 10, rounds: 11, opsPerRound: 8 }
const PLAN_DEEP: Harness.Plan = { warmup: 5, rounds: 11, opsPerRound: 4 }

const FIRST_WORDS = [
  "Acme",
  "Apex",
  "Arbor",
  "Atlas",
  "Beacon",
  "Birch",
  "Bright",
  "Cedar",
  "Cobalt",
  "Coral",
  "Crest",
  "Delta",
  "Ember",
  "Falcon",
  "Fjord",
  "Granite",
  "Harbor",
  "Indigo",
  "Jasper",
  "Juniper",
  "Kestrel",
  "Lumen",
  "Maple",
  "Meadow",
  "Nimbus",
  "Nova",
  "Onyx",
  "Pioneer",
  "Quartz",
  "Raven",
  "Sable",
  "Sierra",
  "Summit",
  "Tidal",
  "Umber",
  "Vertex",
  "Willow",
  "Yonder",
  "Zenith",
  "Zephyr"
]
const SECOND_WORDS = [
  "Analytics",
  "Bakery",
  "Builders",
  "Capital",
  "Clinic",
  "Consulting",
  "Dental",
  "Design",
  "Dynamics",
  "Energy",
  "Farms",
  "Fitness",
  "Foods",
  "Freight",
  "Games",
  "Health",
  "Holdings",
  "Insurance",
  "Labs",
  "Legal",
  "Logistics",
  "Media",
  "Motors",
  "Networks",
  "Orchard",
  "Partners",
  "Pharma",
  "Realty",
  "Robotics",
  "Security",
  "Software",
  "Studios",
  "Systems",
  "Textiles",
  "Travel",
  "Ventures",
  "Works"
]
/** One of `SECOND_WORDS`, found in no other word: a search that matches about 1 tenant in 37. */
const SEARCH = "orchard"

const sqlArray = (words: ReadonlyArray<string>) => `ARRAY[${words.map((word) => `'${word}'`).join(", ")}]`

/**
 * The seed: `TENANTS` tenants that the repository decodes (valid codes, names, e-mails, settings). Statuses
 * follow n mod 23, names n mod 40 and n / 40 mod 37, so that status and name are independent.
 */
const SEED = `
  INSERT INTO tenants (id, code, name, name_key, status, email, phone, locale, domain, settings, version, created_at,
    updated_at, deleted_at, status_changed_by, status_change_reason, status_changed_at)
  SELECT md5('bench-list:' || n)::uuid, 'lt-' || n, name, lower(name), status, 'admin' || n || '@bench.test',
    CASE WHEN n % 2 = 0 THEN '+15550100' END, 'en', CASE WHEN n % 3 = 0 THEN 'tenant-' || n || '.bench.test' END,
    jsonb_build_object('plan', CASE WHEN n % 5 = 0 THEN 'pro' ELSE 'free' END, 'seats', n % 50),
    CASE WHEN status = 'pending' THEN 1 ELSE 2 END, created, created,
    CASE WHEN status = 'deleted' THEN created + interval '1 day' END,
    CASE WHEN status <> 'pending' THEN 'bench' END, NULL,
    CASE WHEN status <> 'pending' THEN created + interval '1 hour' END
  FROM (
    SELECT n,
      (${sqlArray(FIRST_WORDS)})[1 + n % ${FIRST_WORDS.length}] || ' ' ||
        (${sqlArray(SECOND_WORDS)})[1 + (n / ${FIRST_WORDS.length}) % ${SECOND_WORDS.length}] || ' ' || n AS name,
      CASE WHEN n % 23 = 0 THEN 'deleted' WHEN n % 23 IN (1, 2) THEN 'suspended'
        WHEN n % 23 IN (3, 4, 5, 6) THEN 'pending' ELSE 'active' END AS status,
      timestamptz '2024-01-01 00:00:00+00' + n * interval '1 minute' AS created
    FROM generate_series(1, ${TENANTS}) AS n
  ) AS seeded`

/** The bench database's URL: `DATABASE_URL` with the database replaced. */
const benchUrl = (): string => {
  const url = new URL(DATABASE_URL)
  url.pathname = `/${DATABASE}`
  return url.toString()
}

/** A client of `url` for the length of `use`. */
const withClient = <A>(url: string, use: (client: pg.Client) => Promise<A>) =>
  Effect.acquireUseRelease(
    Effect.tryPromise(async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 })
      await client.connect()
      return client
    }),
    (client) => Effect.tryPromise(() => use(client)),
    (client) => Effect.promise(() => client.end())
  )

/** Creates the bench database unless it exists (another run creating it at the same time is fine). */
const ensureDatabase = withClient(DATABASE_URL, async (client) => {
  const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE])
  if (found.rowCount !== 0) return false
  try {
    await client.query(`CREATE DATABASE ${DATABASE}`)
    return true
  } catch (error) {
    // 42P04: duplicate_database, created meanwhile by another run.
    if (typeof error === "object" && error !== null && "code" in error && error.code === "42P04") return false
    throw error
  }
})

/** Seeds the (migrated) bench database unless it holds this version's seed; answers whether it seeded. */
const ensureSeeded = (url: string) =>
  withClient(url, async (client) => {
    await client.query("CREATE TABLE IF NOT EXISTS bench_seed (version integer NOT NULL, tenants integer NOT NULL)")
    const seeded = await client.query<{ version: number; tenants: number; rows: number }>(
      "SELECT version, tenants, (SELECT count(*)::int FROM tenants) AS rows FROM bench_seed"
    )
    const row = seeded.rows[0]
    if (row !== undefined && row.version === SEED_VERSION && row.tenants === TENANTS && row.rows === TENANTS) {
      return false
    }
    await client.query(`SET statement_timeout = '${Duration.toMillis(SEED_DEADLINE)}ms'`)
    await client.query("BEGIN")
    try {
      await client.query("TRUNCATE tenants, tenant_outbox CASCADE")
      await client.query(SEED)
      await client.query("DELETE FROM bench_seed")
      await client.query("INSERT INTO bench_seed (version, tenants) VALUES ($1, $2)", [SEED_VERSION, TENANTS])
      await client.query("COMMIT")
    } catch (error) {
      await client.query("ROLLBACK")
      throw error
    }
    // Statistics and the visibility map, as a table that has lived a while has them.
    await client.query("VACUUM ANALYZE tenants")
    return true
  }).pipe(Effect.timeout(SEED_DEADLINE))

/** What a page is compared by: its tenants' ids in order, and its total when it has one. */
interface PageKey {
  readonly ids: ReadonlyArray<string>
  readonly total: number | undefined
}

const keyOfPage = (page: Page): PageKey => ({ ids: page.items.map((tenant) => tenant.id), total: page.total })

/** The statements one `list` sent, replayed on the raw pool: in a transaction when the repository's was one. */
const replayer = (pool: pg.Pool, sent: ReadonlyArray<Statements.Sent>) => {
  // Sent straight to the pool, a snapshot is logged with its BEGIN and COMMIT; through @effect/sql too (its
  // SET TRANSACTION follows the BEGIN): replayed as logged. Without a BEGIN a SET TRANSACTION needs one.
  const inTransaction = !sent.some((statement) => /^\s*BEGIN\b/i.test(statement.sql)) &&
    sent.some((statement) => /^\s*SET\s+TRANSACTION\b/i.test(statement.sql))
  return async (): Promise<PageKey> => {
    const client = await pool.connect()
    try {
      if (inTransaction) await client.query("BEGIN")
      const page: { ids: Array<string>; total: number | undefined } = { ids: [], total: undefined }
      for (const statement of sent) {
        const result = await client.query(statement.sql, [...statement.params])
        if (/\bORDER\s+BY\b/i.test(statement.sql)) {
          page.ids = result.rows.map((row: TenantRow) => String(rowToProps(row).id))
        } else if (/\bcount\s*\(/i.test(statement.sql)) {
          const total: unknown = result.rows[0]?.total
          page.total = typeof total === "number" ? total : undefined
        }
      }
      if (inTransaction) await client.query("COMMIT")
      return page
    } catch (error) {
      if (inTransaction) await client.query("ROLLBACK").catch(() => undefined)
      throw error
    } finally {
      client.release()
    }
  }
}

/**
 * The query that reaches page `page` of `query` by keyset: the cursor of the page before it (`nextCursor`, read
 * once before the rounds by asking that page by number), and no count, so that page 1 and page `page` differ by
 * their paging alone. The raw side replays whatever statements the repository sent for the query made here.
 */
const deepPageQuery = (
  repository: TenantRepository.Service,
  query: ListQueryInput,
  page: number
): Effect.Effect<ListQueryInput, unknown> =>
  Effect.gen(function*() {
    if (page === 1) return { ...query, count: "none" }
    const previous = yield* repository.list({ ...query, count: "none", page: page - 1 })
    if (previous.nextCursor === undefined) return yield* Effect.dieMessage(`fewer than ${page} pages`)
    return { ...query, count: "none", after: previous.nextCursor }
  })

const describeLists = (measurement: Harness.Measurement) =>
  `  ${measurement.name.padEnd(40)} ${Harness.format(measurement.opsPerSecond, 1).padStart(7)} lists/s  ` +
  `p50 ${Harness.format(measurement.p50Micros / 1e3, 2)} ms  p99 ${Harness.format(measurement.p99Micros / 1e3, 2)} ms`

/** Which indexes a plan reads, by name. */
const indexesIn = (plan: ReadonlyArray<string>): ReadonlyArray<string> => [
  ...new Set(plan.flatMap((line) => {
    const match = /(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\S+)/.exec(line)
    return match?.[1] === undefined ? [] : [match[1]]
  }))
]

const program = Effect.gen(function*() {
  const created = yield* ensureDatabase
  const url = benchUrl()
  const runtime = yield* scopedRuntime(pgRepository(url, POOL_SIZE))
  const repository = yield* Effect.promise(() => runtime.runPromise(TenantRepository.TenantRepository))
  const [seedTime, seeded] = yield* Effect.timed(ensureSeeded(url))
  yield* Console.log(
    `database ${DATABASE} ${created ? "created" : "reused"}; ${Harness.format(TENANTS)} tenants ` +
      (seeded
        ? `seeded in ${Harness.format(Duration.toSeconds(seedTime), 1)} s`
        : "already seeded (kept for next runs)")
  )
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 5_000 })),
    (pool) => Effect.promise(() => pool.end())
  )
  // What the repository sends for a query, noted by a runtime of its own (the noting costs a compile).
  const log = Statements.makeLog()
  const recorder = yield* scopedRuntime(
    pgRepository(url, 1, {}, log)
  )
  const recorded = yield* Effect.promise(() => recorder.runPromise(TenantRepository.TenantRepository))
  /** The repository's page and the raw replay of its statements, checked to agree. */
  const sides = (name: string, query: ListQueryInput) =>
    Effect.gen(function*() {
      const mark = log.sent.length
      yield* Effect.promise(() => recorder.runPromise(Effect.either(recorded.list(query))))
      const sent = Statements.since(log, mark)
      const ours = () => runtime.runPromise(Effect.map(repository.list(query), keyOfPage))
      const raw = replayer(pool, sent)
      const [fromOurs, fromRaw] = yield* Effect.tryPromise(() => Promise.all([ours(), raw()]))
      // The statements may read one row past the page, to tell whether another page follows.
      const rawPage = fromRaw.ids.slice(0, fromOurs.ids.length)
      if (
        fromOurs.ids.length === 0 || fromOurs.ids.join() !== rawPage.join() ||
        fromRaw.ids.length > fromOurs.ids.length + 1 ||
        (fromRaw.total !== undefined && fromOurs.total !== fromRaw.total)
      ) {
        return yield* Effect.dieMessage(
          `${name}: the repository and the replay of its statements disagree (${fromOurs.ids.length} and ` +
            `${fromRaw.ids.length} rows, totals ${fromOurs.total} and ${fromRaw.total}); sent: ${JSON.stringify(sent)}`
        )
      }
      return { sent, ours, raw, page: fromOurs }
    })
  const rowsStatement = (sent: ReadonlyArray<Statements.Sent>) =>
    sent.find((statement) => /\bORDER\s+BY\b/i.test(statement.sql))
  const explain = (statement: Statements.Sent) =>
    Effect.tryPromise(async () => {
      const result = await pool.query<{ "QUERY PLAN": string }>(
        `EXPLAIN (ANALYZE, BUFFERS) ${statement.sql}`,
        [...statement.params]
      )
      return result.rows.map((row) => row["QUERY PLAN"])
    })

  // Filtered: a page of active tenants whose name or code holds the search text, by name.
  const filteredQuery: ListQueryInput = {
    status: "active",
    search: SEARCH,
    sortBy: "name",
    sortDirection: "asc",
    pageSize: PAGE_SIZE
  }
  const filtered = yield* sides("filtered", filteredQuery)
  const filteredRows = rowsStatement(filtered.sent)
  const plan = filteredRows === undefined ? [] : yield* explain(filteredRows)
  const indexes = indexesIn(plan)
  yield* Console.log(
    `- filtered: ${JSON.stringify(filteredQuery)}: ${filtered.page.total} matches; statements sent:\n` +
      filtered.sent.map((statement) =>
        `    ${statement.sql.replace(/\s+/g, " ").trim()}  -- ${JSON.stringify(statement.params)}`
      )
        .join("\n") +
      `\n  EXPLAIN (ANALYZE, BUFFERS) of the rows statement:\n${plan.map((line) => `    ${line}`).join("\n")}\n` +
      `  indexes used: ${indexes.length === 0 ? "none" : indexes.join(", ")}`
  )
  const names = { ours: "list filtered: ours", raw: "list filtered: raw pg, same statements" }
  const filteredReport = yield* Harness.contest(
    [{ name: names.ours, op: filtered.ours }, { name: names.raw, op: filtered.raw }],
    PLAN_FILTERED,
    [{ candidate: names.ours, baseline: names.raw, goal: GOAL_FILTERED }],
    describeLists
  )

  // Deep pages: all active tenants by name, the first page and the 1,000th.
  const deepQuery: ListQueryInput = { status: "active", sortBy: "name", sortDirection: "asc", pageSize: PAGE_SIZE }
  const first = yield* sides("page 1", yield* deepPageQuery(repository, deepQuery, 1))
  const deep = yield* sides(`page ${DEEP_PAGE}`, yield* deepPageQuery(repository, deepQuery, DEEP_PAGE))
  const deepRows = rowsStatement(deep.sent)
  const deepPlan = deepRows === undefined ? [] : yield* explain(deepRows)
  yield* Console.log(
    `- deep pages: ${JSON.stringify(deepQuery)}, not counted (page 1 knows of ${first.page.total}); ` +
      `page ${DEEP_PAGE}, after the cursor of page ${DEEP_PAGE - 1}: its rows statement ` +
      `uses ${indexesIn(deepPlan).join(", ") || "no index"}; ${
        deepPlan.filter((line) => /Execution Time/.test(line)).join("")
      }`
  )
  const deepNames = {
    first: "list page 1: ours",
    deep: `list page ${DEEP_PAGE}: ours`,
    rawFirst: "list page 1: raw pg",
    rawDeep: `list page ${DEEP_PAGE}: raw pg`
  }
  const deepReport = yield* Harness.contest(
    [
      { name: deepNames.first, op: first.ours },
      { name: deepNames.deep, op: deep.ours },
      { name: deepNames.rawFirst, op: first.raw },
      { name: deepNames.rawDeep, op: deep.raw }
    ],
    PLAN_DEEP,
    [
      { candidate: deepNames.deep, baseline: deepNames.first, goal: GOAL_DEEP },
      { candidate: deepNames.rawDeep, baseline: deepNames.rawFirst },
      { candidate: deepNames.first, baseline: deepNames.rawFirst },
      { candidate: deepNames.deep, baseline: deepNames.rawDeep }
    ],
    describeLists
  )

  const report: Harness.Report = {
    measurements: [...filteredReport.measurements, ...deepReport.measurements],
    comparisons: [
      ...filteredReport.comparisons,
      {
        name: `filtered list's rows statement uses an index (${indexes.join(", ") || "none"})`,
        value: indexes.length > 0 ? 1 : 0,
        unit: Harness.YES_NO,
        goal: 1,
        goalIs: "at least",
        rounds: 1
      },
      ...deepReport.comparisons
    ]
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "list at 100,000",
  run: Effect.scoped(program)
}
