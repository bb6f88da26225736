/**
 * A small measuring helper for the benchmarks: no library, `process.hrtime.bigint()` around sequential, awaited
 * operations.
 *
 * Candidates are measured interleaved, round by round, in an order shuffled each round (seeded, so repeatable),
 * so that drift on the machine (frequency, other processes, the database's caches) and the garbage one candidate
 * leaves for the next fall on all of them alike. A comparison is the median of the per-round ratios, which one noisy round cannot move.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

/** One operation to measure, awaited once per iteration. */
export interface Candidate {
  readonly name: string
  readonly op: () => Promise<unknown>
  /**
   * How many operations one call of `op` performs (default 1), for candidates that run a batch per call: their
   * figures are per operation (a latency is the mean over its batch), their round times per call.
   */
  readonly batch?: number
}

/** How much to run: `warmup` operations per candidate first, then `rounds` rounds of `opsPerRound` each. */
export interface Plan {
  readonly warmup: number
  readonly rounds: number
  readonly opsPerRound: number
}

let quick = false

/**
 * Smoke-test mode (`npm run bench -- --quick`): every plan is cut to at most 3 rounds of a quarter of its
 * operations, to see benchmarks run end to end in little time. Its figures are not measurements.
 */
export const setQuick = (on: boolean): void => {
  quick = on
}

/** Whether the run is a smoke test (see {@link setQuick}). */
export const isQuick = (): boolean => quick

/** The plan as it runs: `plan`, or its smoke-test cut. */
export const effectivePlan = (plan: Plan): Plan =>
  quick
    ? {
      warmup: Math.ceil(plan.warmup / 4),
      rounds: Math.min(plan.rounds, 3),
      opsPerRound: Math.ceil(plan.opsPerRound / 4)
    }
    : plan

/** What one candidate did over every round; latencies are per operation, in microseconds. */
export interface Measurement {
  readonly name: string
  readonly ops: number
  readonly opsPerSecond: number
  readonly meanMicros: number
  readonly p50Micros: number
  readonly p99Micros: number
  /** The wall time of each round, in nanoseconds, in round order. */
  readonly roundNanos: ReadonlyArray<number>
  /** Operations per timed call: above 1, each latency is the mean over one call's batch. */
  readonly batch: number
}

/**
 * A figure held to a goal: by default the ratio of `ours`'s time over `baseline`'s (`unit` "x", the median of
 * the per-round ratios), or a value in a unit of its own (messages per second, milliseconds, queries, bytes).
 */
export interface Comparison {
  readonly name: string
  /** The figure: a ratio of times when `unit` is "x" (the default), else a value in `unit`. */
  readonly value: number
  readonly goal?: number
  /** "x" for a ratio of times (the default), else the unit of `value`: "msg/s", "ms", "queries", "bytes". */
  readonly unit?: string
  /** Whether `goal` is a ceiling (the default: times, latencies, counts) or a floor (throughputs). */
  readonly goalIs?: GoalKind
  /** What was measured for our side, and for the side it is compared with (none for a figure of its own). */
  readonly ours?: Measurement
  readonly baseline?: Measurement
  /** How many rounds (or runs) the figure comes from. */
  readonly rounds?: number
}

/** A ceiling or a floor. */
export type GoalKind = "at most" | "at least"

/** Whether `comparison` meets its goal; `undefined` when it has none. */
export const meetsGoal = (comparison: Comparison): boolean | undefined =>
  comparison.goal === undefined
    ? undefined
    : (comparison.goalIs ?? "at most") === "at most"
    ? comparison.value <= comparison.goal
    : comparison.value >= comparison.goal

const unitSuffix = (unit: string) => unit === "x" ? "x" : ` ${unit}`

/** Decimals for a figure: two for ratios and small values, none for counts and from 100 up. */
const digitsFor = (value: number, unit: string) =>
  unit !== "x" && (Number.isInteger(value) || Math.abs(value) >= 100) ? 0 : 2

/** The unit of a figure that is a yes (1) or a no (0), printed as such. */
export const YES_NO = "yes/no"

/** A comparison's figure with its unit: `1.32x`, `976 msg/s`, `2.10 ms`. */
export const describeValue = (comparison: Comparison, digits?: number): string => {
  const unit = comparison.unit ?? "x"
  if (unit === YES_NO) return comparison.value === 1 ? "yes" : "no"
  return `${format(comparison.value, digits ?? digitsFor(comparison.value, unit))}${unitSuffix(unit)}`
}

/** A comparison's goal with its unit: `<= 1.30x`, `>= 1,500 msg/s`; "-" when it has none. */
export const describeGoal = (comparison: Comparison, digits?: number): string => {
  const unit = comparison.unit ?? "x"
  return comparison.goal === undefined
    ? "-"
    : unit === YES_NO
    ? comparison.goal === 1 ? "yes" : "no"
    : `${(comparison.goalIs ?? "at most") === "at most" ? "<=" : ">="} ${
      format(comparison.goal, digits ?? digitsFor(comparison.goal, unit))
    }${unitSuffix(unit)}`
}

/** What a benchmark hands back for the summary. */
export interface Report {
  readonly measurements: ReadonlyArray<Measurement>
  readonly comparisons: ReadonlyArray<Comparison>
}

/** A benchmark module: a name and a program that sets up, measures, cleans up and reports. */
export interface Benchmark {
  readonly name: string
  readonly run: Effect.Effect<Report, unknown>
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const upper = sorted[middle] ?? Number.NaN
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2
}

/**
 * The order in which `count` candidates run in `round`: a shuffle drawn from a generator seeded by the round, so
 * that no candidate always follows the same other one (and inherits the garbage it left) and a run can be
 * repeated in the same order.
 */
const orderOf = (round: number, count: number): ReadonlyArray<number> => {
  const order = Array.from({ length: count }, (_, index) => index)
  let state = (round + 1) * 2_654_435_761 >>> 0
  for (let i = count - 1; i > 0; i--) {
    // xorshift32
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    const j = state % (i + 1)
    const swapped = order[j] ?? j
    order[j] = order[i] ?? i
    order[i] = swapped
  }
  return order
}

/**
 * Runs every candidate by `plan`, interleaved round by round, and measures each. Stops between two operations
 * once `signal` is aborted, so that an interrupted benchmark can clean up without operations still running.
 */
export const measure = async (
  candidates: ReadonlyArray<Candidate>,
  requested: Plan,
  signal?: AbortSignal
): Promise<ReadonlyArray<Measurement>> => {
  const plan = effectivePlan(requested)
  for (const candidate of candidates) {
    for (let i = 0; i < plan.warmup; i++) {
      signal?.throwIfAborted()
      await candidate.op()
    }
  }
  const latencies = candidates.map(() => new Float64Array(plan.rounds * plan.opsPerRound))
  const rounds = candidates.map((): Array<number> => [])
  for (let round = 0; round < plan.rounds; round++) {
    for (const index of orderOf(round, candidates.length)) {
      const candidate = candidates[index]
      const latency = latencies[index]
      if (candidate === undefined || latency === undefined) continue
      const offset = round * plan.opsPerRound
      const roundStart = process.hrtime.bigint()
      for (let i = 0; i < plan.opsPerRound; i++) {
        signal?.throwIfAborted()
        const start = process.hrtime.bigint()
        await candidate.op()
        latency[offset + i] = Number(process.hrtime.bigint() - start) / (candidate.batch ?? 1)
      }
      rounds[index]?.push(Number(process.hrtime.bigint() - roundStart))
    }
  }
  return candidates.map((candidate, index) =>
    measurementOf(candidate.name, latencies[index] ?? new Float64Array(), rounds[index] ?? [], candidate.batch)
  )
}

/**
 * The measurement of `latencies` (nanoseconds, one per operation, or per operation of a batch of `batch`; sorted
 * in place) taken over rounds that lasted `roundNanos`: for benchmarks that time their operations themselves.
 */
export const measurementOf = (
  name: string,
  latencies: Float64Array,
  roundNanos: ReadonlyArray<number>,
  batch = 1
): Measurement => {
  const sorted = latencies.sort()
  const totalNanos = roundNanos.reduce((sum, nanos) => sum + nanos, 0)
  return {
    name,
    ops: sorted.length * batch,
    opsPerSecond: (sorted.length * batch) / (totalNanos / 1e9),
    meanMicros: sorted.reduce((sum, nanos) => sum + nanos, 0) / sorted.length / 1e3,
    p50Micros: percentile(sorted, 0.5) / 1e3,
    p99Micros: percentile(sorted, 0.99) / 1e3,
    roundNanos,
    batch
  }
}

/** The median over rounds of `numerator`'s round time divided by `denominator`'s: above 1 means slower. */
export const ratio = (numerator: Measurement, denominator: Measurement): number =>
  median(numerator.roundNanos.map((nanos, round) => nanos / (denominator.roundNanos[round] ?? Number.NaN)))

/** Left-aligned text columns, right-aligned numbers, one header row and a rule under it. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => {
      const width = widths[column] ?? 0
      return /^[-+]?[\d.,]+(x|\/s)?$/.test(cell) ? cell.padStart(width) : cell.padEnd(width)
    }).join("  ").trimEnd()
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n")
}

/** A number with thousands separators and `digits` decimals. */
export const format = (value: number, digits = 0): string =>
  value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** The usual line for one measurement: throughput and latencies per operation. */
export const describeOps = (measurement: Measurement): string =>
  `${padName(measurement.name)} ${format(measurement.opsPerSecond).padStart(9)} ops/s  ` +
  `mean ${format(measurement.meanMicros, 1)} us  p50 ${format(measurement.p50Micros, 1)} us  ` +
  `p99 ${format(measurement.p99Micros, 1)} us` +
  (measurement.batch > 1 ? ` (latencies: means over batches of ${measurement.batch})` : "")

const padName = (name: string) => `  ${name.padEnd(32)}`

/** A comparison to make: `candidate`'s time over `baseline`'s (by name), held to `goal` when it has one. */
export interface Versus {
  readonly candidate: string
  readonly baseline: string
  readonly goal?: number
}

/**
 * Measures every candidate by `plan`, prints each measurement (with `describe`, by default {@link describeOps})
 * and each ratio of `versus`, against its goal when it has one, and returns the report for the summary.
 */
export const contest = (
  candidates: ReadonlyArray<Candidate>,
  plan: Plan,
  versus: ReadonlyArray<Versus>,
  describe: (measurement: Measurement) => string = describeOps
): Effect.Effect<Report, unknown> =>
  Effect.gen(function*() {
    const names = new Set(candidates.map((candidate) => candidate.name))
    const unknown = versus.flatMap(({ baseline, candidate }) => [candidate, baseline]).filter((name) =>
      !names.has(name)
    )
    if (unknown.length > 0) return yield* Effect.dieMessage(`no candidate named ${unknown.join(", ")}`)
    const measurements = yield* Effect.tryPromise((signal) => measure(candidates, plan, signal))
    for (const measurement of measurements) yield* Console.log(describe(measurement))
    const comparisons: Array<Comparison> = []
    for (const { baseline, candidate, goal } of versus) {
      const measured = measurements.find((measurement) => measurement.name === candidate)
      const base = measurements.find((measurement) => measurement.name === baseline)
      if (measured === undefined || base === undefined) {
        return yield* Effect.dieMessage(`no candidate named ${candidate} or ${baseline}`)
      }
      const name = `${candidate} / ${baseline}`
      const timeRatio = ratio(measured, base)
      yield* Console.log(
        `  ${name}: ${format(timeRatio, 2)}x time (median of per-round ratios); ` +
          (goal === undefined ? "for reference, no goal" : `goal <= ${format(goal, 2)}x`)
      )
      const compared = { name, value: timeRatio, ours: measured, baseline: base, rounds: effectivePlan(plan).rounds }
      comparisons.push(goal === undefined ? compared : { ...compared, goal })
    }
    return { measurements, comparisons }
  })

/**
 * Measures `candidate` against `baseline` by `plan`, prints each measurement (with `describe`, by default
 * {@link describeOps}) and the ratio of their times against `goal`, and returns the report for the summary.
 */
export const headToHead = (
  candidate: Candidate,
  baseline: Candidate,
  plan: Plan,
  options: { readonly goal: number; readonly describe?: (measurement: Measurement) => string }
): Effect.Effect<Report, unknown> =>
  contest(
    [candidate, baseline],
    plan,
    [{ candidate: candidate.name, baseline: baseline.name, goal: options.goal }],
    options.describe
  )
