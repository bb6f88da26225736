import * as Effect from "effect/Effect"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { createServer } from "node:net"

/** A free loopback port, found by letting the OS pick one. */
const freePort = Effect.async<number>((resume) => {
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
  /** Stops the server (SIGKILL: nothing is saved, connections drop at once). */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port and waits until it answers. */
  readonly start: Effect.Effect<void>
}

/**
 * A `redis-server` of the test's own, on a free port, that the test can stop and start to see what the code
 * does while Redis is away. Killed when the scope closes.
 */
export const makeOwnRedis = Effect.gen(function*() {
  const port = yield* freePort
  let child: ChildProcess | undefined

  const start = Effect.async<void, Error>((resume) => {
    const process = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
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

  yield* Effect.acquireRelease(start, () => stop)
  const server: OwnRedis = { port, url: `redis://127.0.0.1:${port}`, stop, start }
  return server
})
