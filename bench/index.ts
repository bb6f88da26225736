/**
 * `npm run bench`: runs every benchmark in turn, then prints a summary and the run's wall time. A benchmark that
 * fails stops the run with a non-zero exit (after its own clean-up); a goal that is not met does not: these are
 * measurements.
 *
 * `npm run bench -- outbox cache` runs only the benchmarks whose name holds one of the words given.
 * `npm run bench -- --json FILE` (alone or with words) also writes the run's record to FILE: the machine, the
 * command, the date and one object per comparison (see `record.ts`). A failed run writes the comparisons made
 * before its failure, and the failure. `--quick` cuts every plan short (see `Harness.setQuick`): a smoke test
 * whose figures are not measurements.
 *
 * To add a benchmark, write a module that exports a `Harness.Benchmark` and list it in `benchmarks`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as CacheBroadcast from "./cacheBroadcast.js"
import * as CacheHit from "./cacheHit.js"
import * as CacheMemory from "./cacheMemory.js"
import * as CacheMemoryHit from "./cacheMemoryHit.js"
import * as CacheMissBurst from "./cacheMissBurst.js"
import * as CacheStampede from "./cacheStampede.js"
import * as ConcurrentLookups from "./concurrentLookups.js"
import * as FindById from "./findById.js"
import * as Harness from "./harness.js"
import * as ListAtScale from "./listAtScale.js"
import * as MikroOrm from "./mikroOrm.js"
import * as OutboxLag from "./outboxLag.js"
import * as OutboxThroughput from "./outboxThroughput.js"
import * as Record from "./record.js"
import * as SmtpThroughput from "./smtpThroughput.js"

// Those that write to PostgreSQL come last: its background work after them (vacuum, checkpoints) would fall on
// the next ones' rounds. The memory benchmark comes first, in a heap that no other benchmark has grown yet.
const benchmarks: ReadonlyArray<Harness.Benchmark> = [
  CacheMemory.benchmark,
  CacheHit.benchmark,
  CacheMemoryHit.benchmark,
  CacheStampede.benchmark,
  CacheBroadcast.benchmark,
  SmtpThroughput.benchmark,
  FindById.benchmark,
  ConcurrentLookups.benchmark,
  CacheMissBurst.benchmark,
  MikroOrm.benchmark,
  ListAtScale.benchmark,
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
    ["benchmark", "comparison", "figure", "goal", "status"],
    reports.flatMap(([name, report]) =>
      report.comparisons.map((comparison) => {
        const met = Harness.meetsGoal(comparison)
        return [
          name,
          comparison.name,
          Harness.describeValue(comparison),
          Harness.describeGoal(comparison),
          met === undefined ? "-" : met ? "met" : "not met yet"
        ]
      })
    )
  )
  return `${measured}\n\n${compared}`
}

interface Arguments {
  readonly words: ReadonlyArray<string>
  readonly jsonFile: string | undefined
  readonly quick: boolean
}

const parseArguments = (args: ReadonlyArray<string>): Effect.Effect<Arguments> =>
  Effect.gen(function*() {
    const words: Array<string> = []
    let jsonFile: string | undefined
    let quick = false
    for (let i = 0; i < args.length; i++) {
      const arg = args[i] ?? ""
      if (arg === "--json") {
        jsonFile = args[++i]
        if (jsonFile === undefined || jsonFile.startsWith("--")) {
          return yield* Effect.dieMessage("--json needs a file name: npm run bench -- --json FILE")
        }
      } else if (arg.startsWith("--json=")) {
        jsonFile = arg.slice("--json=".length)
      } else if (arg === "--quick") {
        quick = true
      } else if (arg.startsWith("--")) {
        return yield* Effect.dieMessage(`unknown option ${arg}: the options are --json FILE, --quick and name words`)
      } else {
        words.push(arg)
      }
    }
    return { words, jsonFile, quick }
  })

const main = Effect.gen(function*() {
  const args = process.argv.slice(2)
  const { jsonFile, quick, words } = yield* parseArguments(args)
  Harness.setQuick(quick)
  const selected = words.length === 0
    ? benchmarks
    : benchmarks.filter((benchmark) => words.some((word) => benchmark.name.includes(word)))
  if (selected.length === 0) {
    return yield* Effect.dieMessage(
      `no benchmark's name holds ${words.join(" or ")}; the names: ${benchmarks.map((b) => b.name).join(", ")}`
    )
  }
  const finish = yield* Record.startFacts(args, selected.map((benchmark) => benchmark.name))
  const reports: Array<readonly [string, Harness.Report]> = []
  let failure: { readonly benchmark: string; readonly cause: Cause.Cause<unknown> } | undefined
  for (const benchmark of selected) {
    yield* Console.log(`\n== ${benchmark.name}`)
    const [elapsed, exit] = yield* Effect.timed(Effect.exit(benchmark.run))
    yield* Console.log(`  done in ${Harness.format(Duration.toSeconds(elapsed), 1)} s`)
    if (Exit.isFailure(exit)) {
      failure = { benchmark: benchmark.name, cause: exit.cause }
      break
    }
    reports.push([benchmark.name, exit.value])
  }
  yield* Console.log(`\n== summary\n${summary(reports)}`)
  const facts = finish(
    failure === undefined ? null : { benchmark: failure.benchmark, message: Cause.pretty(failure.cause) }
  )
  yield* Console.log(
    `\nwhole run: ${Harness.format(facts.wallSeconds, 1)} s (${facts.command})` +
      (quick ? "; --quick: a smoke test, not a measurement" : "")
  )
  if (jsonFile !== undefined) {
    yield* Record.write(jsonFile, Record.runRecord(facts, reports))
    yield* Console.log(`record written to ${jsonFile}`)
  }
  if (failure !== undefined) return yield* Effect.failCause(failure.cause)
})

// An interrupted run (Ctrl-C) is not a result either: only a completed one exits 0.
NodeRuntime.runMain(main, { teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : 1) })
