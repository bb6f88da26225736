/**
 * How long a message waits in the outbox under a steady load: a producer stores `EVENTS` tenant creations (one
 * welcome e-mail each) at `RATE` per second through `TenantRepository.insert`, while one `OutboxRelay.layer`
 * with its default settings (so `pollInterval` 1 s: a lag well under a second is the LISTEN/NOTIFY path) delivers
 * them to the memory senders. PostgreSQL local, a fresh schema; the producer has a pool of its own, as an
 * application beside a relay would.
 *
 * The lag of a message is the time from its insert's commit (the moment `insert` returned to the producer) to
 * the mailer's `send`. The producer is open-loop: each insert starts at its slot (every `1 / RATE` s) whether
 * or not the one before has returned, so a slow insert does not slow the rate. A warm-up second at the same rate
 * comes first, not counted (the relay's LISTEN, the JIT).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Array from "effect/Array"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as DeliveryLedger from "../src/DeliveryLedger.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import { keyOf } from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"
import { recordingSenders } from "./outboxThroughput.js"

const RATE = 100
const EVENTS = 1_000
const WARMUP_EVENTS = 100
/** `TenantInfra.layerPostgres`'s default pool, for the producer and for the relay each. */
const POOL_SIZE = 10
/** Issue 16's goal (it was 200 ms). */
const GOAL_P99_MILLIS = 50
const DEADLINE = Duration.seconds(30)

const storeIn = (url: string) =>
  TenantRepositoryPg.layer().pipe(
    Layer.provideMerge(
      PgClient.layer({ url: Redacted.make(url), maxConnections: POOL_SIZE, connectTimeout: "5 seconds" })
    )
  )

/** `count` inserts, the `n`th started `n / RATE` s after the first; returns each message's key and commit time. */
const produce = (repository: TenantRepository.TenantRepository["Type"], first: number, count: number) =>
  Effect.gen(function*() {
    const start = performance.now()
    return yield* Effect.forEach(Array.range(first, first + count - 1), (n) =>
      Effect.gen(function*() {
        yield* Effect.sleep(Duration.millis(Math.max(0, start + ((n - first) * 1000) / RATE - performance.now())))
        const id = yield* TenantLifecycle.newTenantId
        const email = `admin${n}@bench.test`
        const { event, tenant } = yield* TenantLifecycle.create(id, {
          code: `lag-${n}`,
          name: `Lag Tenant ${n}`,
          contact: { email }
        }, yield* TenantLifecycle.stamp({ actor: "bench" }))
        const began = performance.now()
        yield* repository.insert(tenant, event)
        const committed = performance.now()
        return { key: keyOf(event.eventId, "email", email), committed, insertMillis: committed - began }
      }), { concurrency: "unbounded" })
  })

const program = Effect.gen(function*() {
  const url = urlWithSchema(yield* freshSchemaNamed("bench"))
  const producer = yield* Layer.build(storeIn(url))
  const repository = Context.get(producer, TenantRepository.TenantRepository)
  const sentAt = new Map<string, number>()
  const repeats = { count: 0 }
  const relayStore = yield* Layer.build(storeIn(url))
  const senders = yield* Layer.build(recordingSenders(sentAt, repeats))
  yield* Layer.build(OutboxRelay.layer()).pipe(Effect.provide(Context.merge(relayStore, senders)))

  const allSent = (keys: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      while (keys.some((key) => !sentAt.has(key))) yield* Effect.sleep("10 millis")
    }).pipe(
      Effect.timeout(DEADLINE),
      Effect.catchTag("TimeoutException", () =>
        Effect.dieMessage(`the relay did not deliver every message within ${Duration.format(DEADLINE)}`))
    )

  const warmup = yield* produce(repository, 1, WARMUP_EVENTS)
  yield* allSent(warmup.map((insert) => insert.key))
  yield* Console.log(
    `${Harness.format(EVENTS)} TenantCreated events (one welcome e-mail each) at ${RATE}/s after ` +
      `${WARMUP_EVENTS} warm-up ones; one relay with default settings (poll every 1 s, LISTEN/NOTIFY), ` +
      `memory senders; pools of ${POOL_SIZE}`
  )
  const inserts = yield* produce(repository, WARMUP_EVENTS + 1, EVENTS)
  yield* allSent(inserts.map((insert) => insert.key))
  // The mailer has seen every message; the ledger records each delivery just after its send returns.
  const ledger = Context.get(relayStore, DeliveryLedger.DeliveryLedger)
  const stats = yield* Effect.gen(function*() {
    for (;;) {
      const stats = yield* ledger.stats
      if (stats.delivered + stats.dead >= WARMUP_EVENTS + EVENTS) return stats
      yield* Effect.sleep("10 millis")
    }
  }).pipe(
    Effect.timeout(DEADLINE),
    Effect.catchTag(
      "TimeoutException",
      () => Effect.dieMessage(`the ledger did not record every delivery within ${Duration.format(DEADLINE)}`)
    )
  )
  if (stats.delivered !== WARMUP_EVENTS + EVENTS || stats.dead > 0 || repeats.count > 0) {
    return yield* Effect.dieMessage(
      `${stats.delivered} delivered, ${stats.dead} dead, ${repeats.count} repeats; ` +
        `expected ${WARMUP_EVENTS + EVENTS} delivered once`
    )
  }

  const lags = Float64Array.from(inserts, (insert) => ((sentAt.get(insert.key) ?? Number.NaN) - insert.committed) * 1e6)
  const commits = inserts.map((insert) => insert.committed)
  const sends = inserts.map((insert) => sentAt.get(insert.key) ?? Number.NaN)
  const maxMillis = lags.reduce((max, nanos) => Math.max(max, nanos), 0) / 1e6
  const measurement = Harness.measurementOf("insert commit to send", lags, [
    (Math.max(...sends) - Math.min(...commits)) * 1e6
  ])
  const p99Millis = measurement.p99Micros / 1e3
  const insertMillis = inserts.map((insert) => insert.insertMillis).sort((a, b) => a - b)
  yield* Console.log(
    `  producer: ${Harness.format((EVENTS - 1) / ((Math.max(...commits) - Math.min(...commits)) / 1e3))} commits/s, ` +
      `insert p50 ${Harness.format(insertMillis[Math.floor(EVENTS / 2)] ?? Number.NaN, 1)} ms, ` +
      `max ${Harness.format(insertMillis[EVENTS - 1] ?? Number.NaN, 1)} ms`
  )
  yield* Console.log(
    `  lag from commit to send: p50 ${Harness.format(measurement.p50Micros / 1e3, 1)} ms, ` +
      `p99 ${Harness.format(p99Millis, 1)} ms, max ${Harness.format(maxMillis, 1)} ms; goal p99 < ${GOAL_P99_MILLIS} ms`
  )
  const report: Harness.Report = {
    measurements: [measurement],
    comparisons: [{
      name: `lag p99 (insert commit to send, ${RATE} events/s)`,
      value: p99Millis,
      unit: "ms",
      goal: GOAL_P99_MILLIS,
      ours: measurement,
      rounds: 1
    }]
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "outbox lag",
  run: program.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning))
}
