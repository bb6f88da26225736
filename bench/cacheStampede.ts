/**
 * A cache stampede: 1,000 concurrent `findById` misses on one key through `CachedTenantRepository`, over
 * `CacheStore.layerMemory()` and over `CacheStore.layerRedis` (local Redis, a fresh key prefix), with the inner
 * repository wrapped to count its loads and to take `LOAD_TIME` per load. Single flight should make it exactly
 * one load per key. Each round inserts a fresh tenant (so its key is cold), then looks it up 1,000 times at
 * once; the backends take turns, round by round.
 *
 * This is a count, not a ratio: the comparison it reports is the most loads any round made (goal 1). The
 * measurements are per lookup (every lookup of a round waits for the one load) and the wall time of each round.
 */
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshPrefix, REDIS_URL } from "../test/utils/redis.js"
import * as Harness from "./harness.js"

const CALLERS = 1_000
const ROUNDS = 5
const LOAD_TIME = "20 millis"
const GOAL = 1

/** Counts the loads by id of the repository it wraps, and makes each take `LOAD_TIME`. */
const counted = (loads: { count: number }) =>
  Layer.effect(
    TenantRepository.TenantRepository,
    Effect.map(TenantRepository.TenantRepository, (repository) =>
      TenantRepository.TenantRepository.of({
        ...repository,
        findById: (id, options) =>
          Effect.sync(() => {
            loads.count++
          }).pipe(Effect.zipRight(Effect.sleep(LOAD_TIME)), Effect.zipRight(repository.findById(id, options)))
      }))
  )

interface Backend {
  readonly name: string
  readonly store: Layer.Layer<CacheStore.CacheStore>
}

interface Round {
  readonly loads: number
  readonly wallNanos: number
  readonly latencies: ReadonlyArray<number>
}

/** One backend's cached repository, in a runtime of its own, and a round of `CALLERS` concurrent misses. */
const setUp = (backend: Backend) =>
  Effect.gen(function*() {
    const loads = { count: 0 }
    const runtime = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ManagedRuntime.make(
          CachedTenantRepository.layer().pipe(
            Layer.provide(counted(loads)),
            Layer.provide(TenantRepository.layerMemory),
            Layer.provide(backend.store)
          )
        )
      ),
      (runtime) => Effect.promise(() => runtime.dispose())
    )
    const repository = yield* Effect.promise(() => runtime.runPromise(TenantRepository.TenantRepository))
    let sequence = 0
    const insertFresh = Effect.gen(function*() {
      const id = yield* TenantLifecycle.newTenantId
      const n = sequence++
      const { event, tenant } = yield* TenantLifecycle.create(id, {
        code: `stampede-${backend.name}-${n}`,
        name: `Stampede Tenant ${n}`,
        contact: { email: `admin${n}@bench.test` }
      }, yield* TenantLifecycle.stamp({ actor: "bench" }))
      yield* repository.insert(tenant, event)
      return id
    })

    const round = Effect.gen(function*() {
      const id = yield* Effect.promise(() => runtime.runPromise(insertFresh))
      loads.count = 0
      const roundStart = process.hrtime.bigint()
      const callers = Array.makeBy(CALLERS, () => {
        const start = process.hrtime.bigint()
        return runtime.runPromise(repository.findById(id)).then((found) => {
          const nanos = Number(process.hrtime.bigint() - start)
          return Option.isSome(found) && found.value.id === id ? nanos : Number.NaN
        })
      })
      const latencies = yield* Effect.promise(() => Promise.all(callers))
      const wallNanos = Number(process.hrtime.bigint() - roundStart)
      if (latencies.some(Number.isNaN)) return yield* Effect.dieMessage(`a lookup did not find tenant ${id}`)
      return { loads: loads.count, wallNanos, latencies }
    })
    return round
  })

const program = Effect.gen(function*() {
  const prefix = yield* freshPrefix
  const backends: ReadonlyArray<Backend> = [
    { name: "memory", store: CacheStore.layerMemory() },
    { name: "redis", store: CacheStoreRedis.layer({ url: Redacted.make(REDIS_URL), prefix }) }
  ]
  const rounds = yield* Effect.forEach(backends, setUp)
  // A warm-up round per backend, not counted: the JIT, the connection, Redis loading its scripts.
  for (const round of rounds) yield* round

  yield* Console.log(
    `${CALLERS} concurrent findById misses on one fresh key per round, ${LOAD_TIME} per repository load; ` +
      `${ROUNDS} rounds per backend, interleaved`
  )
  const results = backends.map((): Array<Round> => [])
  for (let n = 0; n < ROUNDS; n++) {
    for (let turn = 0; turn < backends.length; turn++) {
      const index = (n + turn) % backends.length
      const round = rounds[index]
      if (round === undefined) continue
      results[index]?.push(yield* round)
    }
  }

  const measurements: Array<Harness.Measurement> = []
  const comparisons: Array<Harness.Comparison> = []
  for (const [index, backend] of backends.entries()) {
    const done = results[index] ?? []
    const measurement = Harness.measurementOf(
      backend.name,
      Float64Array.from(done.flatMap((round) => round.latencies)),
      done.map((round) => round.wallNanos)
    )
    const loads = done.map((round) => round.loads)
    const worst = Math.max(...loads)
    measurements.push(measurement)
    comparisons.push({
      name: `repository loads per ${Harness.format(CALLERS)} concurrent misses (${backend.name}), most of any round`,
      value: worst,
      unit: "loads",
      goal: GOAL,
      ours: measurement,
      rounds: ROUNDS
    })
    yield* Console.log(
      `  ${backend.name.padEnd(6)} loads per round ${loads.join(", ")}; wall ms per round ${
        done.map((round) => Harness.format(round.wallNanos / 1e6, 1)).join(", ")
      }; lookup p50 ${Harness.format(measurement.p50Micros / 1e3, 1)} ms  p99 ${
        Harness.format(measurement.p99Micros / 1e3, 1)
      } ms`
    )
  }
  return { measurements, comparisons }
})

export const benchmark: Harness.Benchmark = {
  name: "cache stampede",
  run: Effect.scoped(program)
}
