/**
 * The `tenant-infra` command line, run as users run it: the package built by the global setup (`dist/bin.js`), in
 * its own Node process, against PostgreSQL in a fresh schema and, for the relay, a real SMTP server and SMS gateway.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import type { Socket } from "node:net"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { inject, vi } from "vitest"
import * as Cli from "../src/Cli.js"
import { DeliveryLedger } from "../src/DeliveryLedger.js"
import * as Migrations from "../src/Migrations.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { DATABASE_URL, freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { REDIS_URL } from "./utils/redis.js"
import { makeSmsGatewayServer, refusingUrl } from "./utils/smsGateway.js"
import { makeSmtpServer } from "./utils/smtpServer.js"
import { newTenant } from "./utils/tenants.js"

const root = fileURLToPath(new URL("..", import.meta.url))

// The CLI as users run it: the package built from src/ by the global setup, one Node process per command.
const builtBin = inject("builtBin")

const packageVersion =
  (JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as { readonly version: string }).version

// Each test starts Node processes (several seconds each on a loaded machine).
vi.setConfig({ testTimeout: 90_000 })

interface Ended {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A running `tenant-infra` process, killed (SIGKILL) with the scope if it is still running then. */
const spawnCli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // Only what the test names: a developer's SMTP_URL or RELAY_* settings must not leak into the process.
      const child = spawn(process.execPath, [builtBin, ...args], {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
      const ended = new Promise<Ended>((resolve) =>
        child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
      )
      return {
        stderr: () => stderr,
        kill: (signal: NodeJS.Signals) => Effect.sync(() => child.kill(signal)),
        ended: Effect.promise(() => ended).pipe(
          Effect.timeoutFail({
            duration: "40 seconds",
            onTimeout: () => new Error(`tenant-infra ${args.join(" ")} did not end:\n${stdout}\n${stderr}`)
          })
        ),
        running: () => child.exitCode === null && child.signalCode === null,
        child
      }
    }),
    (cli) => Effect.sync(() => cli.running() && cli.child.kill("SIGKILL"))
  )

/** Runs a command to its end. */
const cli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  Effect.scoped(Effect.flatMap(spawnCli(args, env), (running) => running.ended))

/** Polls `check` every 100 ms until it holds; fails with `what` after `seconds`. */
const eventually = <E, R>(what: () => string, check: Effect.Effect<boolean, E, R>, seconds = 15) =>
  Effect.repeat(check, { until: (done: boolean) => done, schedule: Schedule.spaced("100 millis") }).pipe(
    Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`timed out: ${what()}`) })
  )

/** A fresh schema and the URL that confines a process to it. */
const freshDatabase = Effect.map(freshSchemaNamed("cli"), (schema) => ({ schema, url: urlWithSchema(schema) }))

/** The repository and the delivery ledger over `url`, for the test's own look at the database. */
const repositoryAt = (url: string) =>
  Layer.build(
    TenantRepositoryPg.layer().pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })))
  )

/** What a relay needs besides the database, pointed at the test's servers. */
const relayServers = Effect.gen(function*() {
  const smtp = yield* makeSmtpServer()
  const sms = yield* makeSmsGatewayServer()
  const env = {
    SMTP_URL: smtp.url(),
    MAIL_FROM: "Tenant Infra <noreply@cli.test>",
    SMS_GATEWAY_URL: sms.url,
    SMS_API_KEY: "sms-test-key",
    RELAY_POLL_INTERVAL: "200 millis"
  }
  return { smtp, sms, env }
})

/** Starts `tenant-infra relay` and waits for it to say it started. */
const startRelay = (env: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const relay = yield* spawnCli(["relay"], env)
    yield* eventually(
      () => `the relay to start:\n${relay.stderr()}`,
      Effect.sync(() => relay.stderr().includes("outbox relay started") || !relay.running())
    )
    assert.isTrue(relay.running(), relay.stderr())
    return relay
  })

/** A TCP server on loopback that accepts every connection and never answers: a hung dependency. */
const hungServer = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly close: () => void }>((resume) => {
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.on("error", () => socket.destroy())
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resume(Effect.succeed({
        port: typeof address === "object" && address !== null ? address.port : 0,
        close: () => {
          server.close()
          for (const socket of sockets) socket.destroy()
        }
      }))
    })
  }),
  (server) => Effect.sync(server.close)
)

/** Every dependency `health` checks, up: PostgreSQL and Redis of the tests, a test SMTP server and gateway. */
const healthyEnv = Effect.map(relayServers, ({ env }) => ({
  DATABASE_URL,
  REDIS_URL,
  SMTP_URL: env.SMTP_URL,
  MAIL_FROM: env.MAIL_FROM,
  SMS_GATEWAY_URL: env.SMS_GATEWAY_URL,
  SMS_API_KEY: env.SMS_API_KEY
}))

/** `health`'s line for `name`, split on runs of spaces: name, status, latency with its unit, error. */
const healthLine = (stdout: string, name: string) =>
  stdout.split("\n").find((line) => line.startsWith(`${name} `))?.split(/\s{2,}/) ?? []

describe("tenant-infra (the command line)", () => {
  it.scopedLive("migrate creates the tables in a fresh schema; a second run has nothing to do", () =>
    Effect.gen(function*() {
      const { schema, url } = yield* freshDatabase
      const first = yield* cli(["migrate"], { DATABASE_URL: url })
      assert.strictEqual(first.code, 0, first.stderr)
      const ids = Object.keys(Migrations.migrations)
      for (const id of ids) assert.include(first.stdout, `ran ${id}\n`)
      assert.include(first.stdout, `Ran ${ids.length} migrations.`)

      const tables = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql<{ table_name: string }>`
          SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema}`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })))
      const names = tables.map((row) => row.table_name)
      for (const table of ["tenants", "tenant_outbox", "tenant_deliveries", Migrations.TABLE]) {
        assert.include(names, table)
      }

      const second = yield* cli(["migrate"], { DATABASE_URL: url })
      assert.strictEqual(second.code, 0, second.stderr)
      assert.strictEqual(second.stdout, `Nothing to migrate: all ${ids.length} migrations have run.\n`)
    }))

  it.scopedLive("relay without SMTP_URL fails at once, naming the variable, without a stack trace", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      const { env } = yield* relayServers
      const { SMTP_URL: _, ...withoutSmtp } = env
      const ended = yield* cli(["relay"], { ...withoutSmtp, DATABASE_URL: url })
      assert.strictEqual(ended.code, Cli.ExitCode.configuration)
      assert.strictEqual(ended.stderr, "tenant-infra: SMTP_URL is not set\n")
      assert.strictEqual(ended.stdout, "")
    }))

  it.scopedLive("a database it cannot reach is named by its variable, and its password is never printed", () =>
    Effect.gen(function*() {
      const password = "pw-that-must-not-show"
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      const [ended, missing] = yield* Effect.all([
        cli(["stats"], { DATABASE_URL: `postgres://tenant:${password}@127.0.0.1:1/tenants` }),
        cli(["stats"], {})
      ], { concurrency: "unbounded" })
      assert.strictEqual(ended.code, Cli.ExitCode.failure)
      assert.match(ended.stderr, /^tenant-infra: cannot connect to the database of DATABASE_URL: .*ECONNREFUSED/)
      assert.notInclude(ended.stderr + ended.stdout, password)
      assert.strictEqual(missing.code, Cli.ExitCode.configuration)
      assert.strictEqual(missing.stderr, "tenant-infra: DATABASE_URL is not set\n")
    }))

  it.scopedLive("a DATABASE_URL that is not a PostgreSQL URL is a configuration error (exit 3), its value not shown", () =>
    Effect.gen(function*() {
      const urls = ["not-a-url", "http://tenant:pw-that-must-not-show@db.example/tenants", "postgres://"]
      const ended = yield* Effect.all(urls.map((url) => cli(["stats"], { DATABASE_URL: url })), {
        concurrency: "unbounded"
      })
      for (const [i, run] of ended.entries()) {
        assert.strictEqual(run.code, Cli.ExitCode.configuration, urls[i])
        assert.strictEqual(
          run.stderr,
          "tenant-infra: DATABASE_URL is invalid: must be a URL such as postgres://user:password@host:5432/database\n"
        )
      }
    }))

  it.scopedLive("relay delivers a new tenant's welcome e-mail, and SIGTERM stops it gracefully (exit 0)", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      const { env, smtp } = yield* relayServers
      const relay = yield* startRelay({ ...env, DATABASE_URL: url })

      const context = yield* repositoryAt(url)
      const { event, tenant } = yield* newTenant()
      yield* Context.get(context, TenantRepository.TenantRepository).insert(tenant, event)
      yield* eventually(
        () => `the welcome e-mail:\n${relay.stderr()}`,
        Effect.sync(() => smtp.accepted().some((message) => message.to.includes(tenant.contact.email)))
      )

      yield* relay.kill("SIGTERM")
      const ended = yield* relay.ended.pipe(Effect.timeoutFail({
        duration: "5 seconds",
        onTimeout: () => new Error(`the relay did not stop on SIGTERM:\n${relay.stderr()}`)
      }))
      assert.strictEqual(ended.code, 0, ended.stderr)
      assert.include(ended.stderr, "outbox relay stopped")
      const stats = yield* Context.get(context, DeliveryLedger).stats
      assert.deepInclude(stats, { delivered: 1, pending: 0, inFlight: 0, dead: 0 })
    }))

  it.scopedLive("dead-letters, replay --all, stats and prune on a fresh schema: nothing dead, replayed or pruned", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      // Side by side: each migrates the schema first, and the migrations take turns.
      const [deadLetters, replayed, stats, pruned] = yield* Effect.all([
        cli(["dead-letters"], { DATABASE_URL: url }),
        cli(["replay", "--all"], { DATABASE_URL: url }),
        cli(["stats"], { DATABASE_URL: url }),
        cli(["prune", "--older-than", "30 days"], { DATABASE_URL: url })
      ], { concurrency: "unbounded" })
      assert.strictEqual(pruned.code, 0, pruned.stderr)
      assert.strictEqual(pruned.stdout, "Forgot 0 messages delivered more than 30d ago.\n")
      assert.strictEqual(deadLetters.code, 0, deadLetters.stderr)
      assert.strictEqual(deadLetters.stdout, "0 dead letters.\n")
      assert.strictEqual(replayed.code, 0, replayed.stderr)
      assert.strictEqual(replayed.stdout, "Replayed 0 dead letters.\n")
      assert.strictEqual(stats.code, 0, stats.stderr)
      assert.deepStrictEqual(stats.stdout.trimEnd().split("\n").map((line) => line.split(/\s{2,}/)), [
        ["unexpanded events", "0"],
        ["undecodable events", "0"],
        ["pending", "0"],
        ["in flight", "0"],
        ["delivered", "0"],
        ["dead", "0"],
        ["oldest pending", "-"]
      ])
    }))

  it.scopedLive("a message the server refuses is listed by dead-letters, replayed by key, and counted by stats", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      const { env, smtp } = yield* relayServers
      smtp.setFallback("550")
      const relay = yield* startRelay({ ...env, DATABASE_URL: url })
      const context = yield* repositoryAt(url)
      const ledger = Context.get(context, DeliveryLedger)
      const { event, tenant } = yield* newTenant()
      yield* Context.get(context, TenantRepository.TenantRepository).insert(tenant, event)
      yield* eventually(
        () => `the dead letter:\n${relay.stderr()}`,
        Effect.map(ledger.stats, (stats) => stats.dead === 1)
      )
      yield* relay.kill("SIGTERM")
      assert.strictEqual((yield* relay.ended).code, 0)

      const listed = yield* cli(["dead-letters", "--limit", "10"], { DATABASE_URL: url })
      assert.strictEqual(listed.code, 0, listed.stderr)
      const [line, count, ...rest] = listed.stdout.split("\n")
      const [key, channel, recipient, error] = (line ?? "").split("\t")
      assert.strictEqual(key, `${event.eventId}:email:${tenant.contact.email}`)
      assert.strictEqual(channel, "email")
      assert.strictEqual(recipient, tenant.contact.email)
      assert.match(error ?? "", /^Permanent: .*550/)
      assert.strictEqual(count, "1 dead letter.")
      assert.deepStrictEqual(rest, [""])

      const replayed = yield* cli(["replay", "--key", key ?? "", "--key", "no-such-key"], { DATABASE_URL: url })
      assert.strictEqual(replayed.code, 0, replayed.stderr)
      assert.strictEqual(replayed.stdout, "Replayed 1 dead letter.\n1 of the keys given named no dead letter.\n")

      assert.deepInclude(yield* ledger.stats, { pending: 1, dead: 0 })
    }))

  it.scopedLive("pending lists a message the server keeps deferring: attempts, next try and last error", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase
      const { env, smtp } = yield* relayServers
      smtp.setFallback("451")
      const relay = yield* startRelay({
        ...env,
        DATABASE_URL: url,
        RELAY_BASE_DELAY: "1 hour",
        RELAY_MAX_DELAY: "2 hours"
      })
      const context = yield* repositoryAt(url)
      const ledger = Context.get(context, DeliveryLedger)
      const { event, tenant } = yield* newTenant()
      yield* Context.get(context, TenantRepository.TenantRepository).insert(tenant, event)
      const key = `${event.eventId}:email:${tenant.contact.email}`
      yield* eventually(
        () => `the failed attempt:\n${relay.stderr()}`,
        Effect.map(ledger.find(key), (found) => Option.isSome(found) && found.value.failures === 1)
      )
      yield* relay.kill("SIGTERM")
      assert.strictEqual((yield* relay.ended).code, 0)

      const before = Date.now()
      const listed = yield* cli(["pending"], { DATABASE_URL: url })
      assert.strictEqual(listed.code, 0, listed.stderr)
      const [line, count, ...rest] = listed.stdout.split("\n")
      const [listedKey, channel, recipient, attempts, next, error] = (line ?? "").split("\t")
      assert.deepStrictEqual([listedKey, channel, recipient, attempts], [key, "email", tenant.contact.email, "1"])
      // The backoff of RELAY_BASE_DELAY (an hour, jittered by 20% at most): well in the future.
      assert.isAbove(new Date(next ?? "").getTime(), before + 20 * 60_000, next)
      assert.match(error ?? "", /refused for now.*451/)
      assert.strictEqual(count, "1 pending message.")
      assert.deepStrictEqual(rest, [""])
    }))

  it.scopedLive("demo runs in memory whatever the environment says, and every message is delivered", () =>
    Effect.gen(function*() {
      // A DATABASE_URL it must not touch: were it read, the demo would fail on it (exit 3).
      const ended = yield* cli(["demo"], { DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing", SMTP_URL: "x" })
      assert.strictEqual(ended.code, 0, ended.stdout + ended.stderr)
      const delivered = ended.stdout.split("\n").filter((line) => line.includes("-> delivered after 1 attempt(s)"))
      assert.strictEqual(delivered.length, 10, ended.stdout)
      assert.include(ended.stdout, `"pending":0,"inFlight":0,"dead":0,"delivered":10`)
    }))

  it.scopedLive("replay without --key or --all, and prune without a duration, are refused before touching the database (exit 2)", () =>
    Effect.gen(function*() {
      const [neither, both] = yield* Effect.all([
        cli(["replay"], {}),
        cli(["replay", "--all", "--key", "k"], {})
      ], { concurrency: "unbounded" })
      assert.strictEqual(neither.code, Cli.ExitCode.usage)
      assert.include(neither.stderr, "replay needs the dead letters to replay: --key KEY (repeatable), or --all")
      assert.strictEqual(neither.stdout, "")
      assert.strictEqual(both.code, Cli.ExitCode.usage)
      assert.include(both.stderr, "replay takes --key or --all, not both")
      for (const bad of ["soon", "-30 days"]) {
        const refused = yield* cli(["prune", "--older-than", bad], {})
        assert.strictEqual(refused.code, Cli.ExitCode.usage)
        assert.include(
          refused.stderr,
          `--older-than takes a duration such as "30 days" or "12 hours", not ${JSON.stringify(bad)}`
        )
      }
    }))

  it.scopedLive("--version prints the package's version; --help lists the commands, in plain text to a pipe", () =>
    Effect.gen(function*() {
      const [version, help] = yield* Effect.all([cli(["--version"], {}), cli(["--help"], {})], {
        concurrency: "unbounded"
      })
      assert.strictEqual(version.code, 0)
      assert.strictEqual(version.stdout.trim(), packageVersion)
      assert.strictEqual(help.code, 0)
      for (const command of ["migrate", "relay", "pending", "dead-letters", "replay", "stats", "health", "demo"]) {
        assert.include(help.stdout, `- ${command}`)
      }
      // Written to a pipe: plain text, no ANSI styles.
      assert.notInclude(help.stdout, "\u001b[")
    }))
})

describe("tenant-infra health", () => {
  it.scopedLive("with every dependency up: one line each, exit 0", () =>
    Effect.gen(function*() {
      const ended = yield* cli(["health"], yield* healthyEnv)
      assert.strictEqual(ended.code, 0, ended.stderr)
      assert.strictEqual(ended.stderr, "")
      const lines = ended.stdout.trimEnd().split("\n")
      assert.deepStrictEqual(lines.map((line) => line.split(/\s+/)[0]), ["postgresql", "redis", "smtp", "sms"])
      for (const line of lines) assert.match(line, /^\w+ +up +\d+ ms$/)
    }), 60_000)

  it.scopedLive(
    "each dependency down in turn: exit 1 naming it, the others up, no secret printed",
    () =>
      Effect.gen(function*() {
        const healthy = yield* healthyEnv
        const secret = "secret-that-must-not-show"
        // Loopback ports where nothing listens: every connection is refused at once.
        const broken = {
          postgresql: { DATABASE_URL: `postgres://tenant:${secret}@127.0.0.1:1/tenants` },
          redis: { REDIS_URL: `redis://:${secret}@127.0.0.1:1` },
          smtp: { SMTP_URL: `smtp://user:${secret}@127.0.0.1:1` },
          sms: { SMS_GATEWAY_URL: yield* refusingUrl, SMS_API_KEY: secret }
        }
        const names = ["postgresql", "redis", "smtp", "sms"] as const
        const runs = yield* Effect.forEach(
          names,
          (name) => cli(["health"], { ...healthy, ...broken[name] }),
          // One at a time: each is a Node process compiling the tool, and the tests share two cores.
          { concurrency: 1 }
        )
        for (const [index, name] of names.entries()) {
          const ended = runs[index]
          assert.isDefined(ended)
          assert.strictEqual(ended.code, Cli.ExitCode.failure, ended.stdout + ended.stderr)
          assert.strictEqual(ended.stderr, `tenant-infra: ${name} is down\n`)
          const [, status, latency, error] = healthLine(ended.stdout, name)
          assert.strictEqual(status, "down", ended.stdout)
          assert.match(latency ?? "", /^\d+ ms$/)
          assert.match(error ?? "", /ECONNREFUSED|not connected to 127\.0\.0\.1:1/)
          for (const other of names.filter((other) => other !== name)) {
            assert.strictEqual(healthLine(ended.stdout, other)[1], "up", ended.stdout)
          }
          assert.notInclude(ended.stdout + ended.stderr, secret)
        }
      }),
    90_000
  )

  it.scopedLive(
    "a hung server is down within --timeout; a bad REDIS_URL is down and a configuration error (exit 3); what is " +
      "not set is not checked",
    () =>
      Effect.gen(function*() {
        const hung = yield* hungServer
        const ended = yield* cli(["health", "--timeout", "500 millis"], {
          REDIS_URL: "not a url",
          SMTP_URL: `smtp://127.0.0.1:${hung.port}`,
          MAIL_FROM: "noreply@cli.test"
        })
        assert.strictEqual(ended.code, Cli.ExitCode.configuration, ended.stdout + ended.stderr)
        assert.strictEqual(
          ended.stderr,
          "tenant-infra: REDIS_URL is invalid: must be a URL such as redis://host:6379/0 or rediss://host:6380\n" +
            "tenant-infra: smtp is down\n"
        )
        assert.deepStrictEqual(healthLine(ended.stdout, "postgresql"), [
          "postgresql",
          "not configured (DATABASE_URL is not set)"
        ])
        assert.deepStrictEqual(healthLine(ended.stdout, "sms"), ["sms", "not configured (SMS_GATEWAY_URL is not set)"])
        assert.strictEqual(healthLine(ended.stdout, "redis")[1], "down")
        const [, status, latency, error] = healthLine(ended.stdout, "smtp")
        assert.strictEqual(status, "down")
        assert.strictEqual(error, "no answer within 500ms")
        assert.isBelow(Number(latency?.replace(" ms", "")), 1500)
      }),
    60_000
  )

  it.scopedLive(
    "nothing to check, or a setting missing, is a configuration error (exit 3); a bad --timeout exit 2",
    () =>
      Effect.gen(function*() {
        const { env } = yield* relayServers
        const [nothing, withoutKey, badTimeout] = yield* Effect.all([
          cli(["health"], {}),
          cli(["health"], { SMS_GATEWAY_URL: env.SMS_GATEWAY_URL }),
          cli(["health", "--timeout", "0 seconds"], { REDIS_URL })
        ])
        assert.strictEqual(nothing.code, Cli.ExitCode.configuration)
        assert.strictEqual(
          nothing.stderr,
          "tenant-infra: DATABASE_URL is not set, or REDIS_URL is not set, or SMTP_URL is not set, or SMS_GATEWAY_URL " +
            "is not set\n"
        )
        assert.strictEqual(nothing.stdout, "")
        assert.strictEqual(withoutKey.code, Cli.ExitCode.configuration)
        assert.strictEqual(withoutKey.stderr, "tenant-infra: SMS_API_KEY is not set\n")
        assert.deepStrictEqual(healthLine(withoutKey.stdout, "sms").slice(1, 2), ["down"])
        assert.match(withoutKey.stdout, /SMS_API_KEY is not set/)
        assert.strictEqual(badTimeout.code, Cli.ExitCode.usage)
        assert.include(badTimeout.stderr, "--timeout takes a positive duration")
      }),
    60_000
  )
})

describe("Cli.exitCode", () => {
  it("0 for success and for a stop by interruption; 2 for usage, 3 for configuration, 1 otherwise", () => {
    assert.strictEqual(Cli.exitCode(Exit.void), 0)
    assert.strictEqual(Cli.exitCode(Exit.interrupt(FiberId.none)), 0)
    assert.strictEqual(Cli.exitCode(Exit.fail(ValidationError.invalidValue(HelpDoc.p("--limit")))), 2)
    assert.strictEqual(Cli.exitCode(Exit.fail(ConfigError.MissingData(["SMTP_URL"], "missing"))), 3)
    assert.strictEqual(
      Cli.exitCode(Exit.failCause(Cause.parallel(
        Cause.fail(ConfigError.MissingData(["SMTP_URL"], "missing")),
        Cause.interrupt(FiberId.none)
      ))),
      3
    )
    assert.strictEqual(Cli.exitCode(Exit.fail(new Cli.DatabaseUnavailable({ cause: new Error("refused") }))), 1)
    assert.strictEqual(Cli.exitCode(Exit.fail(new Cli.Unhealthy({ down: ["redis"] }))), 1)
    assert.strictEqual(Cli.exitCode(Exit.die(new Error("bug"))), 1)
  })
})
