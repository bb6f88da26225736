/**
 * `InfraHealth` against real servers: PostgreSQL, a `redis-server` of the test's own, the test SMTP server and
 * SMS gateway, each behind a TCP proxy the test can close (connections refused), reopen, or turn into a black
 * hole (connections accepted, nothing ever answered).
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { Socket } from "node:net"
import { connect, createServer } from "node:net"
import * as CacheStore from "../src/CacheStore.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as InfraHealth from "../src/InfraHealth.js"
import * as Mailer from "../src/Mailer.js"
import * as MailerSmtp from "../src/Mailer/Smtp.js"
import * as SmsGateway from "../src/SmsGateway.js"
import * as SmsGatewayHttp from "../src/SmsGateway/Http.js"
import { DATABASE_URL } from "./utils/postgres.js"
import { makeOwnRedis } from "./utils/redisServer.js"
import { makeSmsGatewayServer } from "./utils/smsGateway.js"
import { makeSmtpServer } from "./utils/smtpServer.js"

const secrets = {
  postgresql: "pg-secret-5c1f",
  redis: "redis-secret-77aa",
  smtp: "smtp-secret-b0d2",
  sms: "sms-key-9e3c"
} as const

const names: ReadonlyArray<InfraHealth.Dependency> = ["postgresql", "redis", "smtp", "sms"]

interface Proxy {
  readonly port: number
  /** Stops listening and cuts every connection: connecting is refused. */
  readonly close: Effect.Effect<void>
  /** Listens again on the same port, forwarding as before. */
  readonly reopen: Effect.Effect<void>
  /** From now on nothing is forwarded either way, on open connections and new ones: the server seems hung. */
  readonly blackHole: () => void
}

/** A TCP proxy on a free loopback port to `target` (a port on loopback), closed with the scope. */
const makeProxy = (target: number) =>
  Effect.gen(function*() {
    const sockets = new Set<Socket>()
    let forwarding = true
    const track = (socket: Socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
    }
    const server = createServer((client) => {
      track(client)
      if (!forwarding) return
      const upstream = connect(target, "127.0.0.1")
      track(upstream)
      client.on("data", (chunk) => forwarding && upstream.write(chunk))
      upstream.on("data", (chunk) => forwarding && client.write(chunk))
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })
    const listen = (port: number) =>
      Effect.async<number>((resume) => {
        server.listen(port, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      })
    const close = Effect.async<void>((resume) => {
      if (!server.listening) return resume(Effect.void)
      server.close(() => resume(Effect.void))
      for (const socket of sockets) socket.destroy()
    })
    const port = yield* Effect.acquireRelease(listen(0), () => close)
    const proxy: Proxy = {
      port,
      close,
      reopen: Effect.asVoid(listen(port)),
      blackHole: () => {
        forwarding = false
      }
    }
    return proxy
  })

/** Every kind of dependency, each behind its proxy, and the layers an application would build over them. */
const dependencies = Effect.gen(function*() {
  const redis = yield* makeOwnRedis
  const smtp = yield* makeSmtpServer({ password: "the-server-never-sees-a-login" })
  const gateway = yield* makeSmsGatewayServer()
  const database = new URL(DATABASE_URL)
  const proxies = {
    postgresql: yield* makeProxy(Number(database.port || 5432)),
    redis: yield* makeProxy(redis.port),
    smtp: yield* makeProxy(smtp.port),
    sms: yield* makeProxy(gateway.port)
  }
  // The local server trusts loopback and ignores a password; one that needs its own keeps it.
  if (database.password === "") database.password = secrets.postgresql
  database.host = `127.0.0.1:${proxies.postgresql.port}`
  const layer = Layer.mergeAll(
    PgClient.layer({ url: Redacted.make(database.toString()), maxConnections: 2, connectTimeout: "5 seconds" }),
    CacheStoreRedis.layer({ url: Redacted.make(`redis://:${secrets.redis}@127.0.0.1:${proxies.redis.port}`) }),
    MailerSmtp.layer({
      url: Redacted.make(`smtp://user:${secrets.smtp}@127.0.0.1:${proxies.smtp.port}`),
      from: "Health <health@infra.test>"
    }),
    SmsGatewayHttp.layer({
      url: `http://127.0.0.1:${proxies.sms.port}/v1/messages`,
      apiKey: Redacted.make(secrets.sms)
    }).pipe(Layer.provide(NodeHttpClient.layerUndici))
  )
  const context = yield* Layer.build(layer)
  return { redis, smtp, gateway, proxies, context }
})

const healthOver = <R>(context: Context.Context<R>, options?: InfraHealth.Options) =>
  Effect.provide(InfraHealth.make(options), context)

/**
 * For checks expected up: generous, since the machine running the tests may be busy. The hung servers' test is
 * the one about the timeout.
 */
const upTimeout: InfraHealth.Options = { timeout: "10 seconds" }

const statuses = (report: InfraHealth.HealthReport) =>
  Object.fromEntries(report.checks.map((check) => [check.name, check.status]))

const assertNoSecret = (report: InfraHealth.HealthReport) => {
  const shown = JSON.stringify(report)
  for (const secret of Object.values(secrets)) assert.notInclude(shown, secret)
}

/** Checks until every dependency is up again (a restarted Redis is reconnected to after a back-off). */
const healthyAgain = (health: InfraHealth.Service) =>
  health.check.pipe(
    Effect.repeat({ until: (report) => report.healthy, schedule: Schedule.spaced("100 millis") }),
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the dependencies did not come back") })
  )

describe("InfraHealth", () => {
  it.scopedLive("every dependency provided is checked and up; the checks send nothing", () =>
    Effect.gen(function*() {
      const { context, gateway, smtp } = yield* dependencies
      const health = yield* healthOver(context, upTimeout)
      const report = yield* health.check
      assert.isTrue(report.healthy, JSON.stringify(report))
      assert.deepStrictEqual(report.checks.map((check) => check.name), names)
      for (const check of report.checks) {
        assert.strictEqual(check.status, "up", check.error)
        assert.isUndefined(check.error)
        assert.isAtLeast(check.latencyMillis, 0)
        assert.isBelow(check.latencyMillis, 10_000)
      }
      // The report is data a health endpoint can serve as it is.
      assert.deepStrictEqual(
        Schema.decodeUnknownSync(InfraHealth.HealthReport)(Schema.encodeSync(InfraHealth.HealthReport)(report)),
        report
      )
      // SMTP: a greeting and QUIT, no login, no message; SMS: a HEAD without the API key.
      assert.isAtLeast(smtp.connections(), 1)
      assert.strictEqual(smtp.logins(), 0)
      assert.strictEqual(smtp.attempts(), 0)
      assert.isNotEmpty(gateway.received())
      for (const request of gateway.received()) {
        assert.strictEqual(request.method, "HEAD")
        assert.strictEqual(request.body, "")
        assert.isUndefined(request.headers.authorization)
      }
    }))

  it.scopedLive(
    "each dependency down in turn is reported down with an error and no secret, the others up",
    () =>
      Effect.gen(function*() {
        const { context, proxies, redis } = yield* dependencies
        const health = yield* healthOver(context, upTimeout)
        assert.isTrue((yield* health.check).healthy)
        const faults: ReadonlyArray<{
          readonly name: InfraHealth.Dependency
          readonly stop: Effect.Effect<void>
          readonly start: Effect.Effect<void>
          readonly error: RegExp
        }> = [
          // A pooled connection cut under the pool, or a new one refused, whichever the query meets first.
          {
            name: "postgresql",
            stop: proxies.postgresql.close,
            start: proxies.postgresql.reopen,
            error: /ECONNREFUSED|Connection terminated/
          },
          // The redis-server itself, killed. How the client words it depends on when it notices the connection gone
          // (the PING lost with it, or refused at once while the client reconnects); it is Unreachable either way.
          {
            name: "redis",
            stop: redis.stop,
            start: redis.start,
            error: /^CacheStore\.ping: Unreachable: /
          },
          { name: "smtp", stop: proxies.smtp.close, start: proxies.smtp.reopen, error: /ECONNREFUSED/ },
          // A kept-alive connection cut under the client, or a new one refused.
          { name: "sms", stop: proxies.sms.close, start: proxies.sms.reopen, error: /ECONNREFUSED|UND_ERR_SOCKET/ }
        ]
        for (const fault of faults) {
          yield* fault.stop
          const report = yield* health.check
          assert.isFalse(report.healthy)
          assert.deepStrictEqual(
            statuses(report),
            Object.fromEntries(names.map((name) => [name, name === fault.name ? "down" : "up"]))
          )
          const down = report.checks.find((check) => check.name === fault.name)
          assert.match(down?.error ?? "", fault.error)
          assert.isBelow(down?.latencyMillis ?? Infinity, 10_000)
          assertNoSecret(report)
          yield* fault.start
          yield* healthyAgain(health)
        }
      }),
    60_000
  )

  it.scopedLive(
    "hung dependencies (connections accepted, never answered) are down within the timeout, all at once",
    () =>
      Effect.gen(function*() {
        const { context, proxies } = yield* dependencies
        const health = yield* healthOver(context, { timeout: "1 second" })
        const warm = yield* healthOver(context, upTimeout)
        // Up first, so that PostgreSQL and the gateway hold open connections that will hang too.
        assert.isTrue((yield* warm.check).healthy)
        for (const name of names) proxies[name].blackHole()
        const started = Date.now()
        const report = yield* health.check
        const elapsed = Date.now() - started
        assert.deepStrictEqual(statuses(report), { postgresql: "down", redis: "down", smtp: "down", sms: "down" })
        for (const check of report.checks) {
          assert.isString(check.error)
          assert.isAtMost(check.latencyMillis, 2000, check.name)
        }
        // PostgreSQL, SMTP and the gateway wait for our timeout; the Redis client times its command out sooner.
        for (const name of ["postgresql", "smtp", "sms"] as const) {
          assert.strictEqual(report.checks.find((check) => check.name === name)?.error, "no answer within 1s")
        }
        assert.match(report.checks.find((check) => check.name === "redis")?.error ?? "", /Timeout/)
        // All at once, and without waiting for the interrupted checks to wind down (an interrupted PostgreSQL
        // query asks the server to cancel it, over a connection that hangs as well).
        assert.isBelow(elapsed, 2500)
        assertNoSecret(report)
      }),
    30_000
  )

  it.scopedLive("memory backends are no dependencies: with nothing to reach, the report is empty and healthy", () =>
    Effect.gen(function*() {
      const memory = yield* Layer.build(
        Layer.mergeAll(CacheStore.layerMemory(), Mailer.layerMemory(), SmsGateway.layerMemory)
      )
      assert.deepStrictEqual(yield* Effect.flatMap(healthOver(memory), (health) => health.check), {
        healthy: true,
        checks: []
      })
      const report = yield* Effect.flatMap(InfraHealth.InfraHealth, (health) => health.check).pipe(
        Effect.provide(InfraHealth.layer())
      )
      assert.deepStrictEqual(report, { healthy: true, checks: [] })
    }))
})

describe("InfraHealth.fromProbes", () => {
  it.live("a failure or a defect is a check down, described without credentials; the check itself succeeds", () =>
    Effect.gen(function*() {
      const health = InfraHealth.fromProbes([
        { name: "sms", run: Effect.void },
        {
          name: "smtp",
          run: Effect.fail(
            new Error("login refused", {
              cause: new Error("smtp://user:hunter2@mail.test:587 said no; retry with password=hunter2&x=1")
            })
          )
        },
        { name: "postgresql", run: Effect.die(new Error("connect postgres://app:s3cr%40t@db:5432/app failed")) }
      ])
      const report = yield* health.check
      assert.isFalse(report.healthy)
      // In the order of `Dependency`, whatever the order of the probes.
      assert.deepStrictEqual(report.checks.map((check) => [check.name, check.status]), [
        ["postgresql", "down"],
        ["smtp", "down"],
        ["sms", "up"]
      ])
      const [postgresql, smtp] = report.checks
      assert.strictEqual(postgresql?.error, "connect postgres://<redacted>@db:5432/app failed")
      assert.strictEqual(
        smtp?.error,
        "login refused: smtp://<redacted>@mail.test:587 said no; retry with password=<redacted>&x=1"
      )
    }))

  it.live("a check that ignores interruption is down at the timeout, not when it ends", () =>
    Effect.gen(function*() {
      const health = InfraHealth.fromProbes([
        { name: "redis", run: Effect.uninterruptible(Effect.sleep("3 seconds")) },
        { name: "smtp", run: Effect.sleep("20 millis") }
      ], { timeout: "200 millis" })
      const started = Date.now()
      const report = yield* health.check
      const elapsed = Date.now() - started
      assert.isBelow(elapsed, 1000)
      assert.deepStrictEqual(report.checks.map((check) => [check.name, check.status, check.error]), [
        ["redis", "down", "no answer within 200ms"],
        ["smtp", "up", undefined]
      ])
      assert.isAtLeast(report.checks[1]?.latencyMillis ?? 0, 15)
    }))
})
