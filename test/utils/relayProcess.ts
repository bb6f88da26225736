import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** A `tenant-infra relay` run from source in its own process, so that a test can kill it for real. */
export interface RelayProcess {
  readonly name: string
  readonly child: ChildProcess
  /** Everything the process wrote, stdout and stderr interleaved. */
  readonly output: () => string
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>
  /** Resolves once the relay has logged that it started (true), or when it exited before that (false). */
  readonly started: Promise<boolean>
}

export const startRelay = (name: string, env: Readonly<Record<string, string>>): RelayProcess => {
  const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "relay"], {
    cwd: root,
    env: { ...process.env, ...env, RELAY_ID: name },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  let markStarted: (started: boolean) => void = () => {}
  const started = new Promise<boolean>((resolve) => (markStarted = resolve))
  const collect = (chunk: Buffer) => {
    output += chunk.toString("utf8")
    if (output.includes("outbox relay started")) markStarted(true)
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => {
      markStarted(false)
      resolve(code ?? signal ?? "unknown")
    })
  )
  return { name, child, output: () => output, exited, started }
}
