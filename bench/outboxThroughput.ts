/**
 * Messages per second from the outbox to the memory senders through `OutboxRelay.layer` on PostgreSQL (local,
 * a fresh schema per scenario, `TenantInfra.layerPostgres`'s default pool): the outbox is filled first with `EVENTS` tenant
 * creations (one welcome e-mail each), then the relays start, and the clock runs from their start until the
 * ledger's stats count every message delivered. Scenarios:
 *
 * - one relay with the default settings (concurrency 32): the goal, as a user gets it;
 * - one relay with concurrency 128, the best of 32, 64, 128 and 256 on a 2-core machine: each claim is one
 *   statement whatever its size, and the relay's claims follow one another (a claim waits for a quarter of the
 *   slots to be free), so fewer, larger claims go further; also held to the goal;
 * - two relays with the default settings in one process, on the same pool (for information).
 *
 * Baselines from the same run: filling the outbox (`TenantRepository.insert`, `POOL_SIZE` at once), and the same
 * messages handed straight to `TenantNotifications.deliver` over fresh memory senders (as many at once as the
 * relay sends), without the ledger: the ceiling the relay's bookkeeping leaves room under.
 *
 * A relay scenario's latencies are, per message, the time from the relays' start to its send (p50: half the
 * messages were out). The comparisons held to the goal are messages per second, from the relays' start until
 * the ledger counts the last message delivered.
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
import * as Mailer from "../src/Mailer.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import * as SmsGateway from "../src/SmsGateway.js"
import type { TenantCreated } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "../test/utils/postgres.js"
import * as Harness from "./harness.js"

const EVENTS = 5_000
/** `TenantInfra.layerPostgres`'s default pool. */
const POOL_SIZE = 10
/** `OutboxRelay`'s default. */
const RELAY_CONCURRENCY = 32
/** The best of 32, 64, 128 and 256 on a 2-core machine (see the module's comment). */
const TUNED_CONCURRENCY = 128
/** Issue 16's goal (it was 1,000 msg/s). */
const GOAL_MESSAGES_PER_SECOND = 1_500
const DEADLINE = Duration.seconds(60)

const senders = (mailer: Layer.Layer<Mailer.Mailer>) =>
  TenantNotifications.layer().pipe(Layer.provide(Layer.merge(mailer, SmsGateway.layerMemory)))

/**
 * Runs `effect` on each of `inputs`, `concurrency` at once, and measures each run and the whole; named `name`.
 */
const measureEach = <I, A, E, R>(
  name: string,
  inputs: ReadonlyArray<I>,
  concurrency: number,
  effect: (input: I) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const latencies = new Float64Array(inputs.length)
    const start = process.hrtime.bigint()
    const results = yield* Effect.forEach(inputs, (input, index) =>
      Effect.suspend(() => {
        const began = process.hrtime.bigint()
        return Effect.tap(effect(input), () => {
          latencies[index] = Number(process.hrtime.bigint() - began)
        })
      }), { concurrency })
    const measurement = Harness.measurementOf(name, latencies, [Number(process.hrtime.bigint() - start)])
    return { measurement, results }
  })

/** `EVENTS` tenant creations, stored `POOL_SIZE` at once; each calls for one welcome e-mail. */
const fill = Effect.flatMap(
  TenantRepository.TenantRepository,
  (repository) =>
    measureEach("fill the outbox (insert)", Array.range(1, EVENTS), POOL_SIZE, (n) =>
      Effect.gen(function*() {
        const id = yield* TenantLifecycle.newTenantId
        const { event, tenant } = yield* TenantLifecycle.create(id, {
          code: `outbox-${n}`,
          name: `Outbox Tenant ${n}`,
          contact: { email: `admin${n}@bench.test` }
        }, yield* TenantLifecycle.stamp({ actor: "bench" }))
        yield* repository.insert(tenant, event)
        return event
      }))
)

/**
 * `TenantNotifications` over the memory senders, the mailer noting in `sentAt` when each key was first sent
 * (`performance.now()`) and counting in `repeats` the sends of a key already sent. The lag benchmark uses it too.
 */
export const recordingSenders = (sentAt: Map<string, number>, repeats: { count: number }) =>
  senders(
    Layer.effect(
      Mailer.Mailer,
      Effect.map(Mailer.Mailer, (mailer) =>
        Mailer.Mailer.of({
          ...mailer,
          send: (message) =>
            Effect.tap(mailer.send(message), () => {
              if (sentAt.has(message.key)) repeats.count++
              else sentAt.set(message.key, performance.now())
            })
        }))
    ).pipe(Layer.provide(Mailer.layerMemory()))
  )

/** The baseline without the ledger: every message of `events` through `deliver`, `RELAY_CONCURRENCY` at once. */
const sendersAlone = (events: ReadonlyArray<TenantCreated>) =>
  Effect.gen(function*() {
    const notifications = yield* TenantNotifications.TenantNotifications
    const { measurement } = yield* measureEach(
      "senders alone (no ledger)",
      events.flatMap(TenantNotifications.notificationsFor),
      RELAY_CONCURRENCY,
      notifications.deliver
    )
    return measurement
  }).pipe(Effect.provide(senders(Mailer.layerMemory())))

/**
 * A fresh schema, the outbox filled, then `relays` relays started on one pool and timed until the ledger counts
 * every message delivered (polled only once the mailer has seen them all, so that polling costs the relays
 * nothing while they work).
 */
const scenario = (name: string, relays: number, options: OutboxRelay.Options) =>
  Effect.scoped(Effect.gen(function*() {
    const url = urlWithSchema(yield* freshSchemaNamed("bench"))
    const store = yield* Layer.build(
      TenantRepositoryPg.layer().pipe(
        Layer.provideMerge(PgClient.layer({
          url: Redacted.make(url),
          maxConnections: POOL_SIZE,
          connectTimeout: "5 seconds"
        }))
      )
    )
    const filled = yield* Effect.provide(fill, store)
    const sentAt = new Map<string, number>()
    const repeats = { count: 0 }
    const context = Context.merge(store, yield* Layer.build(recordingSenders(sentAt, repeats)))
    const ledger = Context.get(context, DeliveryLedger.DeliveryLedger)

    const start = performance.now()
    yield* Effect.forEach(Array.range(1, relays), () => Layer.build(OutboxRelay.layer(options))).pipe(
      Effect.provide(context)
    )
    const stats = yield* Effect.gen(function*() {
      while (sentAt.size < EVENTS) yield* Effect.sleep("5 millis")
      for (;;) {
        const stats = yield* ledger.stats
        if (stats.delivered + stats.dead >= EVENTS) return stats
        yield* Effect.sleep("2 millis")
      }
    }).pipe(
      Effect.timeout(DEADLINE),
      Effect.catchTag(
        "TimeoutException",
        () => Effect.dieMessage(`${name}: the relays did not deliver every message within ${Duration.format(DEADLINE)}`)
      )
    )
    const wallNanos = (performance.now() - start) * 1e6
    if (stats.dead > 0 || repeats.count > 0 || sentAt.size !== EVENTS) {
      return yield* Effect.dieMessage(
        `${name}: ${sentAt.size} messages sent, ${repeats.count} repeats, ${stats.dead} dead; expected ${EVENTS} once`
      )
    }
    const latencies = Float64Array.from(sentAt.values(), (at) => (at - start) * 1e6)
    return { filled, delivered: Harness.measurementOf(name, latencies, [wallNanos]) }
  }))

const describe = (measurement: Harness.Measurement, unit: string, latency: string) =>
  `  ${measurement.name.padEnd(28)} ${Harness.format(measurement.opsPerSecond).padStart(6)} ${unit}/s  ` +
  `${Harness.format(measurement.roundNanos.reduce((sum, nanos) => sum + nanos, 0) / 1e9, 2)} s  ` +
  `${latency} p50 ${Harness.format(measurement.p50Micros / 1e3, 1)} ms  p99 ${
    Harness.format(measurement.p99Micros / 1e3, 1)
  } ms`

const program = Effect.gen(function*() {
  yield* Console.log(
    `${Harness.format(EVENTS)} TenantCreated events (one welcome e-mail each), a fresh schema per scenario, ` +
      `pool of ${POOL_SIZE}, memory senders; relays otherwise at their defaults`
  )
  const byDefault = yield* scenario(`1 relay, concurrency ${RELAY_CONCURRENCY}`, 1, {})
  yield* Console.log(describe(byDefault.filled.measurement, "events", "per insert"))
  yield* Console.log(describe(byDefault.delivered, "msg", "start to send"))
  const tuned = yield* scenario(`1 relay, concurrency ${TUNED_CONCURRENCY}`, 1, { concurrency: TUNED_CONCURRENCY })
  yield* Console.log(describe(tuned.delivered, "msg", "start to send"))
  const two = yield* scenario(`2 relays, concurrency ${RELAY_CONCURRENCY}`, 2, {})
  yield* Console.log(describe(two.delivered, "msg", "start to send"))
  const alone = yield* sendersAlone(byDefault.filled.results)
  yield* Console.log(describe(alone, "msg", "per send"))
  const throughput = (delivered: Harness.Measurement, goal?: number): Harness.Comparison => {
    const compared = {
      name: `outbox throughput, ${delivered.name}`,
      value: delivered.opsPerSecond,
      unit: "msg/s",
      goalIs: "at least" as const,
      ours: delivered,
      rounds: 1
    }
    return goal === undefined ? compared : { ...compared, goal }
  }
  const comparisons = [
    throughput(byDefault.delivered, GOAL_MESSAGES_PER_SECOND),
    throughput(tuned.delivered, GOAL_MESSAGES_PER_SECOND),
    throughput(two.delivered)
  ]
  for (const comparison of comparisons) {
    yield* Console.log(
      `  ${comparison.name}: ${Harness.describeValue(comparison, 0)}; ` +
        (comparison.goal === undefined ? "for reference, no goal" : `goal ${Harness.describeGoal(comparison, 0)}`)
    )
  }
  const report: Harness.Report = {
    measurements: [byDefault.filled.measurement, byDefault.delivered, tuned.delivered, two.delivered, alone],
    comparisons
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "outbox throughput",
  run: program.pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
}
