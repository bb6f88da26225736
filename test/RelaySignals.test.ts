/**
 * `tenant-infra relay` under SIGTERM at every stage of its life, run as users run it (`src/bin.ts` in its own
 * Node process through tsx): while Node loads the program, while it waits on the database's migration lock, once
 * it reports that it started, and a second SIGTERM while it finishes a send. Each ends with exit code 0, not a
 * death by the signal (143 in a shell), within a bounded time.
 *
 * "While it loads" starts when the process can act on a signal at all: from then its title reads `tenant-infra`
 * (`/proc/<pid>/comm`). Before that Node is still starting up (half a second under tsx) and a signal kills it
 * whatever the program does.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import type { Socket } from "node:net"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { TABLE } from "../src/Migrations.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { DATABASE_URL, freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { makeSmsGatewayServer } from "./utils/smsGateway.js"
import { makeSmtpServer } from "./utils/smtpServer.js"
import { newTenant } from "./utils/tenants.js"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Ended {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
  /** When it ended (`Date.now()`). */
  readonly at: number
}

/** A `tenant-infra relay` process, killed (SIGKILL) with the scope if it is still running then. */
const spawnRelay = (env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // Only what the test names: a developer's SMTP_URL or RELAY_* settings must not leak into the process.
      const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "relay"], {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", RELAY_POLL_INTERVAL: "200 millis", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      const ended = new Promise<Ended>((resolve) =>
        child.once("close", (code, signal) => resolve({ code, signal, output, at: Date.now() }))
      )
      const running = () => child.exitCode === null && child.signalCode === null
      return {
        output: () => output,
        running,
        /** Sends `signal` and answers when it was sent. */
        kill: (signal: NodeJS.Signals) => Effect.sync(() => (child.kill(signal), Date.now())),
        ended: Effect.promise(() => ended).pipe(
          Effect.timeoutFail({
            duration: "20 seconds",
            onTimeout: () => new Error(`the relay did not end:\n${output}`)
          })
        ),
        /** The process's name as the kernel shows it; empty once it has gone. */
        title: () => {
          try {
            return readFileSync(`/proc/${child.pid}/comm`, "utf8").trim()
          } catch {
            return ""
          }
        },
        child
      }
    }),
    (relay) => Effect.sync(() => relay.running() && relay.child.kill("SIGKILL"))
  )

type Relay = Effect.Effect.Success<ReturnType<typeof spawnRelay>>

/** Polls `check` every `every` until it holds; fails with `what` after `seconds`. */
const eventually = <E, R>(
  what: () => string,
  check: Effect.Effect<boolean, E, R>,
  seconds = 15,
  every: Duration.DurationInput = "100 millis"
) =>
  Effect.repeat(check, { until: (done: boolean) => done, schedule: Schedule.spaced(every) }).pipe(
    Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`timed out: ${what()}`) })
  )

/** Waits until the process has its title: the program runs and its signal listeners are in place. */
const loaded = (relay: Relay) =>
  eventually(
    () => `the relay's title:\n${relay.output()}`,
    Effect.sync(() => relay.title().startsWith("tenant-infra") || !relay.running()),
    15,
    "2 millis"
  )

/** Sends SIGTERM and expects a clean exit 0 within `seconds`. */
const terminate = (relay: Relay, seconds: number) =>
  Effect.gen(function*() {
    const sentAt = yield* relay.kill("SIGTERM")
    const ended = yield* relay.ended
    assert.strictEqual(ended.signal, null, `killed by ${ended.signal}:\n${ended.output}`)
    assert.strictEqual(ended.code, 0, ended.output)
    assert.isAtMost(ended.at - sentAt, seconds * 1000, `took ${ended.at - sentAt} ms to stop`)
    assert.notInclude(ended.output, "tenant-infra:", "no failure reported")
    return ended
  })

/** A fresh schema, the URL that confines a process to it, and the settings a relay needs to start. */
const relayEnvironment = Effect.gen(function*() {
  const schema = yield* freshSchemaNamed("signals")
  const smtp = yield* makeSmtpServer()
  const sms = yield* makeSmsGatewayServer()
  const env = {
    DATABASE_URL: urlWithSchema(schema),
    SMTP_URL: smtp.url(),
    MAIL_FROM: "Tenant Infra <noreply@signals.test>",
    SMS_GATEWAY_URL: sms.url,
    SMS_API_KEY: "sms-test-key"
  }
  return { schema, env }
})

/** A plain connection to the test database, closed with the scope. */
const adminClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end())
)

/** A TCP server on loopback that accepts connections and never answers: an SMTP server that never greets. */
const silentServer = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly connections: () => number; readonly close: () => void }>(
    (resume) => {
      const sockets = new Set<Socket>()
      let connections = 0
      const server = createServer((socket) => {
        connections++
        sockets.add(socket)
        socket.on("error", () => socket.destroy())
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed({
          port: typeof address === "object" && address !== null ? address.port : 0,
          connections: () => connections,
          close: () => {
            server.close()
            for (const socket of sockets) socket.destroy()
          }
        }))
      })
    }
  ),
  (server) => Effect.sync(server.close)
)

describe("tenant-infra relay and SIGTERM", () => {
  it.scopedLive(
    "SIGTERM as soon as the process can take it, while Node loads the program: exit 0, without starting",
    () =>
      Effect.gen(function*() {
        const { env } = yield* relayEnvironment
        const relay = yield* spawnRelay(env)
        yield* loaded(relay)
        const ended = yield* terminate(relay, 5)
        assert.notInclude(ended.output, "outbox relay started")
      }),
    40_000
  )

  it.scopedLive(
    "SIGTERM while it waits on the migration lock: exit 0 within a few seconds",
    () =>
      Effect.gen(function*() {
        const { env, schema } = yield* relayEnvironment
        // The migrations table of the relay's own schema, locked the way the Migrator locks it: the relay blocks in
        // its migration, and no other suite's (the advisory lock it takes first is the whole database's).
        const admin = yield* adminClient
        yield* Effect.promise(() =>
          admin.query(`CREATE TABLE "${schema}"."${TABLE}" (
          migration_id integer PRIMARY KEY,
          created_at timestamptz NOT NULL DEFAULT now(),
          name text NOT NULL
        )`)
        )
        yield* Effect.promise(() => admin.query(`BEGIN; LOCK TABLE "${schema}"."${TABLE}" IN ACCESS EXCLUSIVE MODE`))
        yield* Effect.addFinalizer(() => Effect.promise(() => admin.query("ROLLBACK")))
        const relay = yield* spawnRelay(env)
        yield* eventually(
          () => `the relay to wait on the migration lock:\n${relay.output()}`,
          Effect.promise(() =>
            admin.query(`SELECT count(*)::int AS waiting FROM pg_locks WHERE relation = $1::regclass AND NOT granted`, [
              `"${schema}"."${TABLE}"`
            ])
          ).pipe(Effect.map((result) => result.rows[0]?.waiting > 0 || !relay.running()))
        )
        assert.isTrue(relay.running(), relay.output())
        const ended = yield* terminate(relay, 8)
        assert.notInclude(ended.output, "outbox relay started")
      }),
    40_000
  )

  it.scopedLive(
    "SIGTERM while it connects to a database that never answers: exit 0 within the connect timeout",
    () =>
      Effect.gen(function*() {
        const { env } = yield* relayEnvironment
        const database = yield* silentServer
        const relay = yield* spawnRelay({
          ...env,
          DATABASE_URL: `postgres://postgres@127.0.0.1:${database.port}/test`,
          DATABASE_CONNECT_TIMEOUT: "2 seconds"
        })
        yield* eventually(
          () => `the relay to connect to the database:\n${relay.output()}`,
          Effect.sync(() => database.connections() > 0 || !relay.running()),
          15,
          "5 millis"
        )
        assert.isTrue(relay.running(), relay.output())
        // The driver's connection attempt does not stop half-way: the stop waits for it, up to the connect timeout.
        yield* terminate(relay, 6)
      }),
    40_000
  )

  it.scopedLive("SIGTERM once it reports that it started: stops gracefully, exit 0", () =>
    Effect.gen(function*() {
      const { env } = yield* relayEnvironment
      const relay = yield* spawnRelay(env)
      yield* eventually(
        () => `the relay to start:\n${relay.output()}`,
        Effect.sync(() => relay.output().includes("outbox relay started") || !relay.running()),
        20
      )
      assert.isTrue(relay.running(), relay.output())
      const ended = yield* terminate(relay, 8)
      assert.include(ended.output, "outbox relay stopped")
    }), 40_000)

  it.scopedLive(
    "a second SIGTERM while it finishes a send does not cut the stop short: exit 0 after the send",
    () =>
      Effect.gen(function*() {
        const { env } = yield* relayEnvironment
        const smtp = yield* silentServer
        const relay = yield* spawnRelay({
          ...env,
          SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
          RELAY_ATTEMPT_TIMEOUT: "3 seconds"
        })
        yield* eventually(
          () => `the relay to start:\n${relay.output()}`,
          Effect.sync(() => relay.output().includes("outbox relay started") || !relay.running()),
          20
        )
        const context = yield* Layer.build(
          TenantRepositoryPg.layer().pipe(
            Layer.provideMerge(PgClient.layer({ url: Redacted.make(env.DATABASE_URL), maxConnections: 2 }))
          )
        )
        const { event, tenant } = yield* newTenant()
        yield* Context.get(context, TenantRepository.TenantRepository).insert(tenant, event)
        // The welcome e-mail's send is under way: it waits for a greeting that never comes.
        yield* eventually(
          () => `the relay to connect to SMTP:\n${relay.output()}`,
          Effect.sync(() => smtp.connections() > 0)
        )
        yield* relay.kill("SIGTERM")
        yield* Effect.sleep("300 millis")
        assert.isTrue(relay.running(), "still finishing the send")
        const ended = yield* terminate(relay, 8)
        assert.include(ended.output, "outbox relay stopped")
      }),
    60_000
  )
})
