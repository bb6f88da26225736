import * as Effect from "effect/Effect"
import { Redis } from "ioredis"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A free loopback port, found by letting the OS pick one. */
export const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface OwnRedis {
  readonly port: number
  readonly url: string
  /** Stops the server (SIGKILL: connections drop at once; only a persistent server keeps its data). */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port and waits until it answers. */
  readonly start: Effect.Effect<void>
  /** Stalls the server (SIGSTOP): connections stay open and nothing answers, until `resume` (SIGCONT). */
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

export interface OwnRedisOptions {
  /**
   * Write every change to an append-only file, synced before the reply, in a directory of the server's own:
   * a server killed and started again comes back with every write it acknowledged (default: nothing is kept).
   */
  readonly persistent?: boolean | undefined
}

/** A directory for a persistent server's files, deleted when the scope closes. */
const dataDirectory = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "own-redis-"))),
  (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
)

/**
 * A `redis-server` of the test's own, on a free port, that the test can stop and start to see what the code
 * does while Redis is away, with or without its data kept across a restart. Killed when the scope closes.
 */
export const ownRedis = (options: OwnRedisOptions = {}) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const persistence = options.persistent === true
      ? ["--dir", yield* dataDirectory, "--appendonly", "yes", "--appendfsync", "always"]
      : ["--appendonly", "no"]
    let child: ChildProcess | undefined

    const start = Effect.async<void, Error>((resume) => {
      const process = spawn("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        ...persistence,
        "--enable-debug-command",
        "yes"
      ], {
        stdio: ["ignore", "pipe", "ignore"]
      })
      child = process
      let output = ""
      process.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("Ready to accept connections")) resume(Effect.void)
      })
      process.on("error", (error) => resume(Effect.fail(error)))
    }).pipe(Effect.orDie)

    const stop = Effect.async<void>((resume) => {
      const running = child
      // After a SIGKILL only signalCode is set; exitCode stays null.
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return resume(Effect.void)
      running.once("exit", () => resume(Effect.void))
      running.kill("SIGKILL")
    })

    const signal = (name: NodeJS.Signals) => Effect.sync(() => child?.kill(name))

    yield* Effect.acquireRelease(start, () => stop)
    const server: OwnRedis = {
      port,
      url: `redis://127.0.0.1:${port}`,
      stop,
      start,
      pause: signal("SIGSTOP"),
      resume: signal("SIGCONT")
    }
    return server
  })

/** A `redis-server` of the test's own that keeps nothing across a restart (see {@link ownRedis}). */
export const makeOwnRedis = ownRedis()

/**
 * A plain client of a test's own Redis, for looking behind the cache's back; it reconnects by itself after a
 * restart, and is disconnected with the scope.
 */
export const plainClient = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis(url)
      // While the server is stopped every reconnection attempt fails; the commands that matter say so.
      client.on("error", () => undefined)
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )
