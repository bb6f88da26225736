/**
 * How long an invalidation made by instance A takes to reach instance B's memory tier, over Redis pub/sub on
 * loopback: two `CacheStore.layerTiered` stores on one Redis and one key prefix. B holds a memory copy of a key;
 * A invalidates the key; B is polled until its copy is gone (a read that still answers from memory returns the
 * old value, one that goes to Redis finds nothing). The time from A's invalidate returning to B's first read
 * that no longer sees the value is the propagation delay.
 */
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreTiered from "../src/CacheStore/Tiered.js"
import { freshPrefix, REDIS_URL } from "../test/utils/redis.js"
import * as Harness from "./harness.js"

const ROUNDS = 500

const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
const GOAL_P99_MILLIS = 5

const program = Effect.gen(function*() {
  const prefix = yield* freshPrefix
  const instance = () =>
    Effect.map(
      Layer.build(CacheStoreTiered.layer({ url: Redacted.make(REDIS_URL), prefix })),
      Context.get(CacheStore.CacheStore)
    )
  const a = yield* instance()
  const b = yield* instance()
  const delays: Array<number> = []
  for (let round = 0; round < ROUNDS; round++) {
    const key = `tenant:v1:id:broadcast-${round}`
    const { version } = yield* b.getVersioned(key)
    yield* b.setIfVersion(key, "cached", "1 minute", version)
    // B answers from its memory tier now.
    if (Option.isNone(yield* b.get(key))) return yield* Effect.dieMessage("B holds no copy")
    yield* a.invalidate([key])
    const invalidated = performance.now()
    while (Option.isSome(yield* b.get(key))) {
      if (performance.now() - invalidated > 1000) return yield* Effect.dieMessage("B never heard the broadcast")
      // Yield to the event loop itself (not just to other fibers), so that B's socket can deliver the message.
      yield* nextTurn
    }
    delays.push(performance.now() - invalidated)
  }
  const sorted = [...delays].sort((x, y) => x - y)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN
  const [p50, p99, max] = [at(0.5), at(0.99), sorted[sorted.length - 1] ?? Number.NaN]
  yield* Console.log(
    `  ${ROUNDS} invalidations: B stopped serving its copy after p50 ${Harness.format(p50, 2)} ms, ` +
      `p99 ${Harness.format(p99, 2)} ms, max ${Harness.format(max, 2)} ms; goal p99 < ${GOAL_P99_MILLIS} ms`
  )
  const report: Harness.Report = {
    measurements: [],
    comparisons: [{
      name: "broadcast p99 (A invalidates, B drops its copy)",
      value: p99,
      unit: "ms",
      goal: GOAL_P99_MILLIS,
      rounds: ROUNDS
    }]
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "cache broadcast",
  run: Effect.scoped(program)
}
