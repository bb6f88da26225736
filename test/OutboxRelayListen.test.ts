/**
 * The relay's LISTEN connection on PostgreSQL, the one that wakes it when an event commits.
 *
 * - It ends with the relay: a process that ran a relay inside `Effect.runPromise` (a script, a test runner,
 *   `ManagedRuntime.dispose`; only `NodeRuntime.runMain` calls `process.exit`) exits by itself once its program
 *   ends, and the database sees none of its connections afterwards. These cases run
 *   test/utils/relayInScript.ts in a process of their own.
 * - It is opened again when lost, so that wake-ups resume without waiting for a restart.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import { Mailer } from "../src/Mailer.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import { SmsGateway } from "../src/SmsGateway.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { layerClientInFreshSchema, TestSchema, urlWithSchema } from "./utils/postgres.js"
import { newTenant } from "./utils/tenants.js"

const root = fileURLToPath(new URL("..", import.meta.url))

/** How long the process may take to exit once its program has returned. */
const EXIT_WITHIN = Duration.seconds(5)

interface Run {
  readonly output: string
  /** The exit code, or null when the process had to be killed. */
  readonly code: number | null
  /** The script's connections still open when the process had exited, or was about to be killed. */
  readonly connectionsLeft: number
}

const connectionsOf = (application: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ open: number }>`
      SELECT count(*)::int AS open FROM pg_stat_activity WHERE application_name = ${application}`.pipe(
      Effect.map((rows) => rows[0]?.open ?? 0)
    ))

/**
 * Runs the script until it prints `stopped` (startup may be slow on a busy machine), then gives it
 * `EXIT_WITHIN` to exit before counting its connections and killing it.
 */
const runScript = (stop: "listening" | "connecting") =>
  Effect.gen(function*() {
    const application = `relay-exit-${randomUUID().slice(0, 8)}`
    const url = urlWithSchema(yield* TestSchema)
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", "test/utils/relayInScript.ts"], {
          cwd: root,
          env: { ...process.env, RELAY_SCRIPT_URL: url, RELAY_SCRIPT_APP: application, RELAY_SCRIPT_STOP: stop },
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
    )
    let output = ""
    const stopped = Effect.async<void>((resume) => {
      const collect = (chunk: Buffer) => {
        output += chunk.toString("utf8")
        if (/^stopped$/m.test(output)) resume(Effect.void)
      }
      child.stdout.on("data", collect)
      child.stderr.on("data", collect)
      child.once("exit", () => resume(Effect.void))
    })
    const exited = Effect.async<number | null>((resume) => {
      if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
      child.once("exit", (code) => resume(Effect.succeed(code)))
    })
    yield* stopped.pipe(Effect.timeoutFail({
      duration: Duration.seconds(60),
      onTimeout: () => new Error(`the script did not stop within 60 s:\n${output}`)
    }))
    const code = yield* exited.pipe(Effect.timeout(EXIT_WITHIN), Effect.orElseSucceed(() => null))
    // A backend notices a closed socket at once, but leaves pg_stat_activity a moment later.
    let connectionsLeft = yield* connectionsOf(application)
    for (let waited = 0; code !== null && connectionsLeft > 0 && waited < 20; waited++) {
      yield* Effect.sleep(Duration.millis(100))
      connectionsLeft = yield* connectionsOf(application)
    }
    return { output, code, connectionsLeft } satisfies Run
  })

layer(layerClientInFreshSchema, { timeout: "60 seconds", excludeTestServices: true })(
  "OutboxRelay: its LISTEN connection on PostgreSQL",
  (it) => {
    it.scoped(
      "stopped once woken and delivering: the process exits by itself and leaves no connection",
      () =>
        Effect.gen(function*() {
          const run = yield* runScript("listening")
          assert.include(run.output, "outbox relay stopped")
          assert.deepStrictEqual(
            [run.code, run.connectionsLeft],
            [0, 0],
            `exit code (null: still running ${Duration.format(EXIT_WITHIN)} after its program ended), connections ` +
              `left\n${run.output}`
          )
        }),
      { timeout: 120_000 }
    )

    // The race of issue 12: a relay stopped while its LISTEN connection is being opened (the first milliseconds
    // of a relay, or longer when the database is slow to accept) left that connection open for good.
    it.scoped(
      "stopped while its LISTEN connection opens: the process exits by itself and leaves no connection",
      () =>
        Effect.gen(function*() {
          const run = yield* runScript("connecting")
          assert.include(run.output, "outbox relay stopped")
          assert.deepStrictEqual(
            [run.code, run.connectionsLeft],
            [0, 0],
            `exit code (null: still running ${Duration.format(EXIT_WITHIN)} after its program ended), connections ` +
              `left\n${run.output}`
          )
        }),
      { timeout: 120_000 }
    )

    it.scoped(
      "opens its LISTEN connection again when it is lost, and wakes on the next commit",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const application = `relay-listen-${randomUUID().slice(0, 8)}`
          const store = yield* Layer.build(
            TenantRepositoryPg.layer().pipe(
              Layer.provide(PgClient.layer({
                url: Redacted.make(urlWithSchema(yield* TestSchema)),
                applicationName: application,
                maxConnections: 4
              }))
            )
          )
          const sent = yield* Ref.make(0)
          const senders = Layer.merge(
            Layer.succeed(
              Mailer,
              Mailer.of({
                from: "noreply@relay.test",
                send: (message) =>
                  Effect.as(Ref.update(sent, (n) => n + 1), {
                    messageId: `<${message.key}@relay.test>`,
                    response: "250"
                  })
              })
            ),
            Layer.succeed(SmsGateway, SmsGateway.of({ send: (message) => Effect.succeed({ id: message.key }) }))
          )
          // Polling a minute apart: a message delivered within seconds was found through a wake-up.
          yield* Layer.build(
            OutboxRelay.layer({ pollInterval: Duration.minutes(1), metricsInterval: Duration.minutes(1) }).pipe(
              Layer.provide(TenantNotifications.layer()),
              Layer.provide(senders)
            )
          ).pipe(Effect.provide(store))

          const listening = (other: number) =>
            sql<{ pid: number }>`
            SELECT pid FROM pg_stat_activity
            WHERE application_name = ${application} AND query LIKE 'LISTEN%' AND state = 'idle' AND pid <> ${other}`
              .pipe(
                Effect.flatMap((rows) =>
                  rows[0] === undefined ? Effect.fail("not listening") : Effect.succeed(rows[0].pid)
                ),
                Effect.retry({ schedule: Schedule.spaced(Duration.millis(50)), times: 100 })
              )
          const wokenAndDelivered = (count: number) =>
            Effect.gen(function*() {
              const created = yield* newTenant()
              yield* (yield* TenantRepository.TenantRepository).insert(created.tenant, created.event)
              while ((yield* Ref.get(sent)) < count) yield* Effect.sleep(Duration.millis(20))
            }).pipe(
              Effect.provide(store),
              Effect.timeoutFail({
                duration: Duration.seconds(5),
                onTimeout: () => `no wake-up delivered message ${count}`
              })
            )

          const first = yield* listening(0)
          yield* wokenAndDelivered(1)
          const terminated = yield* sql<{ done: boolean }>`SELECT pg_terminate_backend(${first}) AS done`
          assert.deepStrictEqual(terminated, [{ done: true }])
          // The stream fails with its connection, and opens another a second later.
          const second = yield* listening(first)
          assert.notStrictEqual(second, first)
          yield* wokenAndDelivered(2)
          assert.strictEqual(yield* Ref.get(sent), 2)
        }),
      { timeout: 60_000 }
    )
  }
)
