/**
 * `npm run bench`: runs every benchmark in turn, then prints a summary. A benchmark that fails stops the run
 * with a non-zero exit (after its own clean-up); a goal that is not met does not: these are measurements.
 *
 * `npm run bench -- outbox cache` runs only the benchmarks whose name holds one of the words given.
 *
 * To add a benchmark, write a module that exports a `Harness.Benchmark` and list it in `benchmarks`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as CacheBroadcast from "./cacheBroadcast.js"
import * as CacheHit from "./cacheHit.js"
import * as CacheMemoryHit from "./cacheMemoryHit.js"
import * as CacheStampede from "./cacheStampede.js"
import * as FindById from "./findById.js"
import * as Harness from "./harness.js"
import * as OutboxLag from "./outboxLag.js"
import * as OutboxThroughput from "./outboxThroughput.js"
import * as SmtpThroughput from "./smtpThroughput.js"

// Those that write to PostgreSQL come last: its background work after them (vacuum, checkpoints) would fall on
// the next ones' rounds.
const benchmarks: ReadonlyArray<Harness.Benchmark> = [
  CacheHit.benchmark,
  CacheMemoryHit.benchmark,
  CacheStampede.benchmark,
  CacheBroadcast.benchmark,
  SmtpThroughput.benchmark,
  FindById.benchmark,
  OutboxThroughput.benchmark,
  OutboxLag.benchmark
]

const summary = (reports: ReadonlyArray<readonly [name: string, report: Harness.Report]>): string => {
  const measured = Harness.table(
    ["benchmark", "candidate", "ops/s", "mean us", "p50 us", "p99 us"],
    reports.flatMap(([name, report]) =>
      report.measurements.map((measurement) => [
        name,
        measurement.name,
        Harness.format(measurement.opsPerSecond),
        Harness.format(measurement.meanMicros),
        Harness.format(measurement.p50Micros),
        Harness.format(measurement.p99Micros)
      ])
    )
  )
  const compared = Harness.table(
    ["benchmark", "comparison", "ratio", "goal", "status"],
    reports.flatMap(([name, report]) =>
      report.comparisons.map((comparison) => [
        name,
        comparison.name,
        `${Harness.format(comparison.ratio, 2)}x`,
        comparison.goal === undefined ? "-" : `<= ${Harness.format(comparison.goal, 2)}x`,
        comparison.goal === undefined ? "-" : comparison.ratio <= comparison.goal ? "met" : "not met yet"
      ])
    )
  )
  return `${measured}\n\n${compared}`
}

const chosen = process.argv.slice(2)
const selected = chosen.length === 0
  ? benchmarks
  : benchmarks.filter((benchmark) => chosen.some((word) => benchmark.name.includes(word)))

const main = Effect.gen(function*() {
  const reports: Array<readonly [string, Harness.Report]> = []
  for (const benchmark of selected) {
    yield* Console.log(`\n== ${benchmark.name}`)
    const [elapsed, report] = yield* Effect.timed(benchmark.run)
    yield* Console.log(`  done in ${Harness.format(Duration.toSeconds(elapsed), 1)} s`)
    reports.push([benchmark.name, report])
  }
  yield* Console.log(`\n== summary\n${summary(reports)}`)
})

// An interrupted run (Ctrl-C) is not a result either: only a completed one exits 0.
NodeRuntime.runMain(main, { teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : 1) })
