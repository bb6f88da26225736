import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import type { AddressInfo, Socket } from "node:net"
import { connect, createServer } from "node:net"
import { performance } from "node:perf_hooks"
import { getActiveResourcesInfo } from "node:process"
import pg from "pg"
import { makeFaultProxy } from "./utils/faultProxy.js"
import { DATABASE_URL } from "./utils/postgres.js"
import { REDIS_URL } from "./utils/redis.js"

/** How long a test waits to be sure that nothing arrives. */
const QUIET = Duration.millis(300)

/** Waits until `check` holds, polling; fails the test with `what` when it does not within two seconds. */
const eventually = (what: string, check: () => boolean) =>
  Effect.suspend(() => check() ? Effect.void : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("5 millis")),
    Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error(`timed out waiting for: ${what}`) }),
    Effect.orDie
  )

interface EchoServer {
  readonly port: number
  /** Every byte the server read, from every connection. */
  readonly received: () => string
  readonly connections: () => number
  /** Writes `text` to every open connection, unasked, so that the server-to-client direction is seen alone. */
  readonly speak: (text: string) => void
  /** Resets (RST) every open connection. */
  readonly reset: () => void
  /** The codes of the errors its connections had. */
  readonly errors: () => ReadonlyArray<string>
}

/** A node:net server that echoes what it reads, on a free loopback port, closed with the scope. */
const makeEchoServer: Effect.Effect<EchoServer, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<{ readonly server: EchoServer; readonly close: Effect.Effect<void> }>((resume) => {
    let received = ""
    const errors: Array<string> = []
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message))
      socket.on("close", () => sockets.delete(socket))
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString()
        socket.write(chunk)
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({
        server: {
          port: (server.address() as AddressInfo).port,
          received: () => received,
          connections: () => sockets.size,
          speak: (text) => {
            for (const socket of sockets) socket.write(text)
          },
          reset: () => {
            for (const socket of sockets) socket.resetAndDestroy()
          },
          errors: () => errors
        },
        close: Effect.async<void>((done) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => done(Effect.void))
        })
      })))
  }),
  ({ close }) => close
).pipe(Effect.map(({ server }) => server))

interface TestClient {
  readonly socket: Socket
  readonly received: () => string
  /** The code of the socket's error (ECONNRESET, ECONNREFUSED), if it had one. */
  readonly error: () => string | undefined
  readonly connected: () => boolean
  readonly closed: () => boolean
}

/** A raw TCP client of `port`; it records what happens to it rather than failing, and is destroyed with the scope. */
const openClient = (port: number): Effect.Effect<TestClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let received = ""
      let error: string | undefined
      let connected = false
      let closed = false
      const socket = connect({ host: "127.0.0.1", port })
      socket.on("connect", () => connected = true)
      socket.on("data", (chunk: Buffer) => received += chunk.toString())
      socket.on("error", (cause: NodeJS.ErrnoException) => error = cause.code ?? cause.message)
      socket.on("close", () => closed = true)
      const client: TestClient = {
        socket,
        received: () => received,
        error: () => error,
        connected: () => connected,
        closed: () => closed
      }
      return client
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

/** A client that has connected and seen `text` echoed back. */
const echoingClient = (port: number, text: string) =>
  Effect.gen(function*() {
    const client = yield* openClient(port)
    client.socket.write(text)
    yield* eventually(`the echo of ${text}`, () => client.received() === text)
    return client
  })

const millisSince = (start: number) => performance.now() - start

describe("FaultProxy, in front of an echo server", () => {
  it.scopedLive("pass forwards bytes both ways and closes each side when the other closes", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const client = yield* echoingClient(proxy.port, "hello")
      assert.strictEqual(echo.received(), "hello")
      echo.speak(" from the server")
      yield* eventually("the server's words", () => client.received() === "hello from the server")
      assert.deepStrictEqual([proxy.accepted(), proxy.connections(), echo.connections()], [1, 1, 1])
      client.socket.end()
      yield* eventually("both sides closed", () => proxy.connections() === 0 && echo.connections() === 0)
      assert.isUndefined(client.error())
      assert.strictEqual(
        proxy.url("postgres://postgres@127.0.0.1:5432/test?options=x"),
        `postgres://postgres@127.0.0.1:${proxy.port}/test?options=x`
      )
    }))

  it.scoped("forwards to loopback only", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(makeFaultProxy({ targetHost: "192.0.2.1", targetPort: 5432 }))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
    }))

  it.scopedLive("latency delays each direction by its millis, and keeps the order across a switch to pass", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const client = yield* echoingClient(proxy.port, "warm")
      yield* proxy.setMode({ _tag: "latency", millis: 100 })
      const start = performance.now()
      client.socket.write("ping")
      yield* eventually("the delayed echo", () => client.received() === "warmping")
      const elapsed = millisSince(start)
      // 100 ms on the way there and 100 ms on the way back.
      assert.isAtLeast(elapsed, 200)
      assert.isBelow(elapsed, 500)

      // Chunks written under latency and then under pass, a few milliseconds apart: the later ones would overtake
      // the delayed ones if pass did not queue behind them.
      let expected = "warmping"
      for (let i = 0; i < 30; i++) {
        if (i === 15) yield* proxy.setMode("pass")
        client.socket.write(`${i},`)
        expected += `${i},`
        yield* Effect.sleep("2 millis")
      }
      yield* eventually("every chunk echoed", () => client.received().length === expected.length)
      assert.strictEqual(client.received(), expected)
      assert.strictEqual(echo.received(), expected)
    }))

  it.scopedLive("reset resets open connections and each new one; resetAll resets them once and stays in pass", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const before = yield* echoingClient(proxy.port, "a")
      yield* proxy.setMode("reset")
      yield* eventually("the open client reset", () => before.closed())
      assert.strictEqual(before.error(), "ECONNRESET")
      yield* eventually("the server's side closed", () => echo.connections() === 0 && proxy.connections() === 0)

      const during = yield* openClient(proxy.port)
      during.socket.write("b")
      yield* eventually("the new client reset", () => during.closed())
      assert.strictEqual(during.error(), "ECONNRESET")
      assert.strictEqual(during.received(), "")
      assert.strictEqual(echo.received(), "a")
      assert.strictEqual(proxy.accepted(), 2)

      yield* proxy.setMode("pass")
      const open = yield* echoingClient(proxy.port, "c")
      yield* proxy.resetAll
      yield* eventually("the client reset by resetAll", () => open.closed())
      assert.strictEqual(open.error(), "ECONNRESET")
      assert.strictEqual(proxy.mode(), "pass")
      const after = yield* echoingClient(proxy.port, "d")
      assert.isUndefined(after.error())
    }))

  it.scopedLive("hold delivers nothing either way until pass, then everything in order", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const client = yield* echoingClient(proxy.port, "a")
      yield* proxy.setMode("hold")
      client.socket.write("held")
      echo.speak("spoken")
      const late = yield* openClient(proxy.port)
      late.socket.write("late")
      yield* Effect.sleep(QUIET)
      assert.deepStrictEqual([client.received(), late.received(), echo.received()], ["a", "", "a"])
      assert.strictEqual(proxy.buffered(), "held".length + "spoken".length + "late".length)
      assert.isFalse(client.closed() || late.closed())

      yield* proxy.setMode("pass")
      yield* eventually("the held bytes", () => client.received() === "aspokenheld" && late.received() === "late")
      assert.strictEqual(proxy.buffered(), 0)
      assert.strictEqual(proxy.dropped(), 0)
    }))

  it.scopedLive("drop delivers nothing and closes nothing; what it dropped is lost after pass, new bytes pass", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const client = yield* echoingClient(proxy.port, "a")
      // Bytes held when drop starts are dropped with it.
      yield* proxy.setMode("hold")
      client.socket.write("held")
      yield* eventually("the bytes held", () => proxy.buffered() === 4)
      yield* proxy.setMode("drop")
      client.socket.write("lost")
      echo.speak("gone")
      yield* Effect.sleep(QUIET)
      assert.deepStrictEqual([client.received(), echo.received()], ["a", "a"])
      assert.strictEqual(proxy.dropped(), "held".length + "lost".length + "gone".length)
      assert.deepStrictEqual([client.closed(), proxy.connections(), echo.connections()], [false, 1, 1])

      yield* proxy.setMode("pass")
      yield* Effect.sleep(QUIET)
      assert.deepStrictEqual([client.received(), echo.received()], ["a", "a"])
      client.socket.write("after")
      yield* eventually("new bytes on the same connection", () => client.received() === "aafter")
      const fresh = yield* echoingClient(proxy.port, "new")
      assert.isUndefined(fresh.error())
      assert.strictEqual(echo.received(), "aafternew")
    }))

  it.scopedLive("refuse refuses new connections at once and keeps the open ones passing", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const open = yield* echoingClient(proxy.port, "a")
      yield* proxy.setMode("refuse")
      const start = performance.now()
      const refused = yield* openClient(proxy.port)
      yield* eventually("the new client refused", () => refused.closed())
      assert.isBelow(millisSince(start), 250)
      assert.strictEqual(refused.error(), "ECONNREFUSED")
      assert.isFalse(refused.connected())
      assert.strictEqual(proxy.accepted(), 1)
      open.socket.write("b")
      yield* eventually("the open client's echo", () => open.received() === "ab")

      yield* proxy.setMode("pass")
      yield* echoingClient(proxy.port, "c")
      assert.strictEqual(proxy.accepted(), 2)
    }))

  it.scopedLive("a peer's reset reaches the other peer as a reset, and never throws in the proxy", () =>
    Effect.gen(function*() {
      const echo = yield* makeEchoServer
      const proxy = yield* makeFaultProxy({ targetPort: echo.port })
      const first = yield* echoingClient(proxy.port, "a")
      echo.reset()
      yield* eventually("the server's reset at the client", () => first.closed())
      assert.strictEqual(first.error(), "ECONNRESET")
      yield* eventually("the connection gone", () => proxy.connections() === 0)

      const second = yield* echoingClient(proxy.port, "b")
      second.socket.resetAndDestroy()
      yield* eventually("the client's reset at the server", () => echo.connections() === 0)
      assert.deepStrictEqual(echo.errors(), ["ECONNRESET"])
      yield* eventually("the connection gone", () => proxy.connections() === 0)

      // Bytes still on their way to a peer that is gone by the time they are due.
      yield* proxy.setMode({ _tag: "latency", millis: 50 })
      const third = yield* openClient(proxy.port)
      yield* eventually("the third client connected", () => echo.connections() === 1)
      third.socket.write("c")
      echo.speak("d")
      echo.reset()
      third.socket.resetAndDestroy()
      yield* Effect.sleep("100 millis")
      assert.strictEqual(proxy.connections(), 0)
      yield* proxy.setMode("pass")
      yield* echoingClient(proxy.port, "e")
    }))

  it.scopedLive("closing the scope closes the listener, every connection and every timer", () =>
    Effect.gen(function*() {
      const resources = () => {
        const counts: Record<string, number> = {}
        for (const name of getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1
        return counts
      }
      const echo = yield* makeEchoServer
      const before = resources()
      const scope = yield* Scope.make()
      const proxy = yield* Scope.extend(makeFaultProxy({ targetPort: echo.port }), scope)
      // The client belongs to the test's scope, not the proxy's: only the proxy can close it.
      const client = yield* echoingClient(proxy.port, "a")
      // A chunk in flight for ten seconds: its timer would keep the process alive if left behind.
      yield* proxy.setMode({ _tag: "latency", millis: 10_000 })
      client.socket.write("slow")
      yield* eventually("the chunk delayed", () => proxy.buffered() === 4)
      yield* Scope.close(scope, Exit.void).pipe(
        // A release that waits for connections it did not close would never end: fail instead of hanging.
        Effect.disconnect,
        Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("the proxy's scope did not close") }),
        Effect.orDie
      )
      yield* eventually("the client closed by the proxy", () => client.closed())
      yield* eventually("the server's side closed", () => echo.connections() === 0)
      yield* Effect.sleep("20 millis")
      const after = resources()
      for (const name of ["TCPServerWrap", "TCPSocketWrap", "Timeout"]) {
        assert.isAtMost(after[name] ?? 0, before[name] ?? 0, `${name} left behind`)
      }
      assert.strictEqual(client.received(), "a")
      const refused = yield* openClient(proxy.port)
      yield* eventually("a connection to the closed proxy refused", () => refused.closed())
      assert.strictEqual(refused.error(), "ECONNREFUSED")
    }))
})

/** A pg client through `port`, whose errors are recorded (an unheard 'error' event would crash the test run). */
const pgClient = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new pg.Client({
        host: "127.0.0.1",
        port,
        user: new URL(DATABASE_URL).username || "postgres",
        database: new URL(DATABASE_URL).pathname.slice(1) || "test",
        connectionTimeoutMillis: 2000
      })
      const errors: Array<string> = []
      client.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message))
      return { client, errors }
    }),
    ({ client }) => Effect.promise(() => client.end().catch(() => {})).pipe(Effect.timeout("1 second"), Effect.ignore)
  )

const connected = (port: number) =>
  Effect.gen(function*() {
    const pgc = yield* pgClient(port)
    yield* Effect.promise(() => pgc.client.connect())
    return pgc
  })

const selectOne = (client: pg.Client) =>
  Effect.tryPromise(() => client.query<{ one: number }>("SELECT 1 AS one")).pipe(
    Effect.map((result) => result.rows[0]?.one)
  )

/** A query left running: what it came to, read later without awaiting it. */
const pending = (client: pg.Client) => {
  let outcome: "pending" | "answered" | "failed" = "pending"
  client.query("SELECT 1").then(() => outcome = "answered", () => outcome = "failed")
  return () => outcome
}

const errorCode = (error: unknown): string =>
  error instanceof Error ? (error as NodeJS.ErrnoException).code ?? error.message : String(error)

/** How an attempt to connect ended: "connected", or the error's code. */
const connectOutcome = (connect: () => Promise<unknown>) =>
  Effect.tryPromise(connect).pipe(
    Effect.as("connected"),
    Effect.catchAll((error) => Effect.succeed(errorCode(error.error)))
  )

describe("FaultProxy, in front of PostgreSQL", () => {
  const target = new URL(DATABASE_URL)
  const targetPort = Number(target.port || 5432)

  it.scopedLive("pass answers SELECT 1; latency adds its millis both ways", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const { client } = yield* connected(proxy.port)
      assert.strictEqual(yield* selectOne(client), 1)
      const [fast] = yield* Effect.timed(selectOne(client))
      yield* proxy.setMode({ _tag: "latency", millis: 100 })
      const [slow, one] = yield* Effect.timed(selectOne(client))
      assert.strictEqual(one, 1)
      assert.isAtLeast(Duration.toMillis(slow), 200)
      assert.isBelow(Duration.toMillis(slow), 200 + Duration.toMillis(fast) + 300)
    }))

  it.scopedLive("reset breaks the open connection with ECONNRESET, and a new one cannot start", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const open = yield* connected(proxy.port)
      yield* proxy.setMode("reset")
      yield* eventually("the client's error", () => open.errors.length > 0)
      assert.strictEqual(open.errors[0], "ECONNRESET")
      assert.isTrue((yield* Effect.flip(selectOne(open.client))) instanceof Error)
      const fresh = yield* pgClient(proxy.port)
      const [elapsed, outcome] = yield* Effect.timed(connectOutcome(() => fresh.client.connect()))
      assert.include(["ECONNRESET", "Connection terminated unexpectedly"], outcome)
      assert.isBelow(Duration.toMillis(elapsed), 500)
    }))

  it.scopedLive("hold leaves a query unanswered until pass, then answers it", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const { client } = yield* connected(proxy.port)
      yield* proxy.setMode("hold")
      const outcome = pending(client)
      yield* Effect.sleep(QUIET)
      assert.strictEqual(outcome(), "pending")
      yield* proxy.setMode("pass")
      yield* eventually("the held query answered", () => outcome() === "answered")
      assert.strictEqual(yield* selectOne(client), 1)
    }))

  it.scopedLive("drop: a query is never answered, even after pass, while a new connection works", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const dropped = yield* connected(proxy.port)
      yield* proxy.setMode("drop")
      const outcome = pending(dropped.client)
      yield* Effect.sleep("500 millis")
      assert.strictEqual(outcome(), "pending")
      yield* proxy.setMode("pass")
      yield* Effect.sleep(QUIET)
      assert.strictEqual(outcome(), "pending")
      assert.deepStrictEqual(dropped.errors, [])
      const fresh = yield* connected(proxy.port)
      assert.strictEqual(yield* selectOne(fresh.client), 1)
      assert.strictEqual(outcome(), "pending")
      assert.isAbove(proxy.dropped(), 0)
    }))

  it.scopedLive("refuse fails a new connection with ECONNREFUSED at once; the open one still answers", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const open = yield* connected(proxy.port)
      yield* proxy.setMode("refuse")
      const fresh = yield* pgClient(proxy.port)
      const [elapsed, outcome] = yield* Effect.timed(connectOutcome(() => fresh.client.connect()))
      assert.strictEqual(outcome, "ECONNREFUSED")
      assert.isBelow(Duration.toMillis(elapsed), 250)
      assert.strictEqual(yield* selectOne(open.client), 1)
    }))
})

/** An ioredis client through `port` that neither retries nor reconnects: each fault shows as it is. */
const redisClient = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis({
        host: "127.0.0.1",
        port,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        commandTimeout: 400,
        connectTimeout: 1000,
        retryStrategy: () => null
      })
      const errors: Array<string> = []
      client.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message))
      return { client, errors }
    }),
    ({ client }) => Effect.sync(() => client.disconnect())
  )

const ping = (client: Redis) => Effect.tryPromise(() => client.ping())

describe("FaultProxy, in front of Redis", () => {
  const targetPort = Number(new URL(REDIS_URL).port || 6379)

  it.scopedLive("pass answers PING; latency adds its millis both ways", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const { client } = yield* redisClient(proxy.port)
      yield* Effect.promise(() => client.connect())
      assert.strictEqual(yield* ping(client), "PONG")
      yield* proxy.setMode({ _tag: "latency", millis: 100 })
      const [elapsed, pong] = yield* Effect.timed(ping(client))
      assert.strictEqual(pong, "PONG")
      assert.isAtLeast(Duration.toMillis(elapsed), 200)
      assert.isBelow(Duration.toMillis(elapsed), 400)
    }))

  it.scopedLive("reset closes the connection with ECONNRESET", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const { client, errors } = yield* redisClient(proxy.port)
      yield* Effect.promise(() => client.connect())
      yield* proxy.setMode("reset")
      yield* eventually("the client's end", () => client.status === "end")
      assert.include(errors, "ECONNRESET")
      yield* Effect.flip(ping(client))
    }))

  it.scopedLive("hold times PING out and delivers it on pass; drop loses it, so the connection's replies shift", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      const held = yield* redisClient(proxy.port)
      yield* Effect.promise(() => held.client.connect())
      const lost = yield* redisClient(proxy.port)
      yield* Effect.promise(() => lost.client.connect())

      yield* proxy.setMode("hold")
      assert.strictEqual(errorCode((yield* Effect.flip(ping(held.client))).error), "Command timed out")
      yield* proxy.setMode("pass")
      // The held PING's reply comes first and goes to the timed-out command; the next PING gets its own.
      assert.strictEqual(yield* ping(held.client), "PONG")

      yield* proxy.setMode("drop")
      assert.strictEqual(errorCode((yield* Effect.flip(ping(lost.client))).error), "Command timed out")
      yield* proxy.setMode("pass")
      // The lost PING never gets a reply: the next one's goes to it, and the next one times out in turn.
      assert.strictEqual(errorCode((yield* Effect.flip(ping(lost.client))).error), "Command timed out")
      const fresh = yield* redisClient(proxy.port)
      yield* Effect.promise(() => fresh.client.connect())
      assert.strictEqual(yield* ping(fresh.client), "PONG")
    }))

  it.scopedLive("refuse fails a new connection with ECONNREFUSED at once", () =>
    Effect.gen(function*() {
      const proxy = yield* makeFaultProxy({ targetPort })
      yield* proxy.setMode("refuse")
      const { client, errors } = yield* redisClient(proxy.port)
      const [elapsed, outcome] = yield* Effect.timed(connectOutcome(() => client.connect()))
      assert.notStrictEqual(outcome, "connected")
      assert.deepStrictEqual(errors, ["ECONNREFUSED"])
      assert.isBelow(Duration.toMillis(elapsed), 250)
    }))
})
