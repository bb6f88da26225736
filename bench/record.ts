/**
 * The machine-readable record of a run (`npm run bench -- --json FILE`): the facts of the run (machine, Node,
 * the servers' versions, commit, date, command line, wall time) and one object per comparison, so that the
 * README's Performance table can be made from a recorded run rather than copied by hand.
 *
 * A comparison's object:
 *
 * - `benchmark` and `scenario`: which module, and what it compares (`ours / baseline` for a ratio of times);
 * - `value` with its `unit`: "x" for a ratio of times (the median of per-round ratios), else the unit of a figure
 *   of its own ("msg/s", "ms", "queries", "bytes", ...); `ratio` repeats `value` for ratios and is `null` for
 *   the others;
 * - `ours` and `baseline`: the measurements compared (per operation: ops/s, mean, p50, p99 in microseconds),
 *   `null` where there is none;
 * - `goal` and `goalIs` ("at most" or "at least"), `status` ("met", "not met" or "no goal"), and `rounds`.
 */
import * as Effect from "effect/Effect"
import { Redis } from "ioredis"
import { execFileSync } from "node:child_process"
import { writeFile } from "node:fs/promises"
import * as os from "node:os"
import pg from "pg"
import { DATABASE_URL } from "../test/utils/postgres.js"
import { REDIS_URL } from "../test/utils/redis.js"
import * as Harness from "./harness.js"

/** What ran where: enough to tell two recorded runs apart and to repeat one. */
export interface RunFacts {
  readonly startedAt: string
  readonly finishedAt: string
  readonly wallSeconds: number
  /** The command as typed (`npm run bench -- ...` when run by npm), and the process's own arguments. */
  readonly command: string
  readonly argv: ReadonlyArray<string>
  readonly execArgv: ReadonlyArray<string>
  readonly benchmarks: ReadonlyArray<string>
  /** A smoke test (`--quick`): plans cut short, figures not measurements. */
  readonly quick: boolean
  readonly machine: {
    readonly hostname: string
    readonly cpus: number
    readonly cpuModel: string
    readonly totalMemoryBytes: number
    readonly platform: string
    readonly release: string
    readonly arch: string
    /** The 1, 5 and 15 minute load averages at the start and at the end: a busy machine shows here. */
    readonly loadAverage: { readonly atStart: ReadonlyArray<number>; readonly atEnd: ReadonlyArray<number> }
  }
  readonly node: string
  readonly postgresql: string | null
  readonly redis: string | null
  readonly git: { readonly commit: string | null; readonly changedFiles: number | null }
  /** The benchmark that failed and why, when one did (the record then holds those that ran before it). */
  readonly failure: { readonly benchmark: string; readonly message: string } | null
}

const measurementRecord = (measurement: Harness.Measurement) => ({
  name: measurement.name,
  ops: measurement.ops,
  opsPerSecond: measurement.opsPerSecond,
  meanMicros: measurement.meanMicros,
  p50Micros: measurement.p50Micros,
  p99Micros: measurement.p99Micros,
  batch: measurement.batch,
  rounds: measurement.roundNanos.length
})

/** One comparison as recorded. */
export const comparisonRecord = (benchmark: string, comparison: Harness.Comparison) => {
  const unit = comparison.unit ?? "x"
  const met = Harness.meetsGoal(comparison)
  return {
    benchmark,
    scenario: comparison.name,
    unit,
    value: comparison.value,
    ratio: unit === "x" ? comparison.value : null,
    ours: comparison.ours === undefined ? null : measurementRecord(comparison.ours),
    baseline: comparison.baseline === undefined ? null : measurementRecord(comparison.baseline),
    goal: comparison.goal ?? null,
    goalIs: comparison.goal === undefined ? null : comparison.goalIs ?? "at most",
    status: met === undefined ? "no goal" : met ? "met" : "not met",
    rounds: comparison.rounds ?? null
  }
}

/** The record of a run: its facts, every comparison, every measurement. */
export const runRecord = (
  facts: RunFacts,
  reports: ReadonlyArray<readonly [name: string, report: Harness.Report]>
) => ({
  run: facts,
  comparisons: reports.flatMap(([name, report]) =>
    report.comparisons.map((comparison) => comparisonRecord(name, comparison))
  ),
  measurements: reports.flatMap(([name, report]) =>
    report.measurements.map((measurement) => ({ benchmark: name, ...measurementRecord(measurement) }))
  )
})

/** Writes `record` to `file` as indented JSON. */
export const write = (file: string, record: unknown): Effect.Effect<void, unknown> =>
  Effect.tryPromise(() => writeFile(file, `${JSON.stringify(record, null, 2)}\n`))

/** The command as typed: `npm run bench -- <arguments>` when npm ran it, else the process's arguments. */
export const commandLine = (args: ReadonlyArray<string>): string =>
  process.env["npm_lifecycle_event"] === "bench"
    ? ["npm run bench", ...(args.length === 0 ? [] : ["--", ...args])].join(" ")
    : [process.argv0, ...process.execArgv, ...process.argv.slice(1)].join(" ")

const git = (args: ReadonlyArray<string>): string | null => {
  try {
    return execFileSync("git", args, { encoding: "utf8", timeout: 5_000, stdio: ["ignore", "pipe", "ignore"] })
  } catch {
    return null
  }
}

/** The servers' versions, or `null` for one that does not answer within a few seconds. */
const serverVersions = Effect.all({
  postgresql: Effect.tryPromise(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3_000 })
    await client.connect()
    try {
      const result = await client.query<{ server_version: string }>("SHOW server_version")
      return result.rows[0]?.server_version ?? null
    } finally {
      await client.end()
    }
  }).pipe(Effect.timeout("5 seconds"), Effect.orElseSucceed(() => null)),
  redis: Effect.acquireUseRelease(
    Effect.sync(() => new Redis(REDIS_URL, { lazyConnect: true, commandTimeout: 3_000, maxRetriesPerRequest: 0 })),
    (client) =>
      Effect.tryPromise(async () => {
        await client.connect()
        const info = await client.info("server")
        return /redis_version:(\S+)/.exec(info)?.[1] ?? null
      }),
    (client) => Effect.sync(() => client.disconnect())
  ).pipe(Effect.timeout("5 seconds"), Effect.orElseSucceed(() => null))
}, { concurrency: 2 })

/** The facts known at the start of a run, and a way to complete them at its end. */
export const startFacts = (args: ReadonlyArray<string>, benchmarks: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const startedAt = new Date()
    const start = performance.now()
    const loadAtStart = os.loadavg()
    const servers = yield* serverVersions
    const commit = git(["rev-parse", "HEAD"])?.trim() ?? null
    const status = git(["status", "--porcelain"])
    const cpus = os.cpus()
    return (failure: RunFacts["failure"]): RunFacts => ({
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallSeconds: (performance.now() - start) / 1e3,
      command: commandLine(args),
      argv: process.argv,
      execArgv: process.execArgv,
      benchmarks,
      quick: Harness.isQuick(),
      machine: {
        hostname: os.hostname(),
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? "unknown",
        totalMemoryBytes: os.totalmem(),
        platform: os.platform(),
        release: os.release(),
        arch: os.arch(),
        loadAverage: { atStart: loadAtStart, atEnd: os.loadavg() }
      },
      node: process.version,
      postgresql: servers.postgresql,
      redis: servers.redis,
      git: {
        commit,
        changedFiles: status === null ? null : status.split("\n").filter((line) => line.trim() !== "").length
      },
      failure
    })
  })
