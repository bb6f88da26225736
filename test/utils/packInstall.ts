import { spawn } from "node:child_process"
import * as fs from "node:fs"

/** How a child process ended, with everything it wrote. */
export interface Ran {
  readonly command: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  readonly stdout: string
  readonly stderr: string
}

// A nested npm run from `npm test` would otherwise see the outer project's lifecycle variables, and
// `npm_config_local_prefix` would point it at the checkout instead of the temporary project.
const inheritedEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(([name]) =>
      !/^(npm_package_|npm_lifecycle_|npm_command$|npm_config_local_prefix$|init_cwd$)/i.test(name)
    )
  )

/**
 * Runs a command to its end, or kills it (its whole process group: npm starts children of its own) after
 * `timeoutMs`. Never rejects: the caller decides what a failure is, usually with `succeeded`.
 */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  options: {
    readonly cwd: string
    readonly timeoutMs: number
    readonly env?: Readonly<Record<string, string>>
  }
): Promise<Ran> =>
  new Promise((resolve) => {
    const command = [file, ...args].join(" ")
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: { ...inheritedEnv(), npm_config_update_notifier: "false", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL")
        } catch {
          // Already gone.
        }
      }
    }, options.timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      resolve({ command, code: null, signal: null, timedOut, stdout, stderr: `${stderr}${String(error)}` })
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ command, code, signal, timedOut, stdout, stderr })
    })
  })

const tail = (text: string, lines = 40): string => text.trimEnd().split("\n").slice(-lines).join("\n")

/** What a failed command said, for an assertion message. */
export const describeRan = (ran: Ran): string =>
  [
    `$ ${ran.command}`,
    ran.timedOut ? "killed: it did not end in time" : `exit code ${ran.code ?? ran.signal}`,
    `--- stdout (tail) ---\n${tail(ran.stdout)}`,
    `--- stderr (tail) ---\n${tail(ran.stderr)}`
  ].join("\n")

/** Runs a command and throws, with its output's tail, unless it exits 0 in time. */
export const succeeded = async (...params: Parameters<typeof run>): Promise<Ran> => {
  const ran = await run(...params)
  if (ran.code !== 0 || ran.timedOut) throw new Error(`command failed\n${describeRan(ran)}`)
  return ran
}

/**
 * Every `npm install` line of the fenced `sh` blocks under the README's `## Install` heading (up to the next
 * `## ` heading), split into words, in order. Throws when there is no such section or it holds no command: the
 * test must run what the README says, not a copy of it.
 */
export const readmeInstallCommands = (readmePath: string): ReadonlyArray<ReadonlyArray<string>> => {
  const lines = fs.readFileSync(readmePath, "utf8").split(/\r?\n/)
  const start = lines.findIndex((line) => /^## Install\s*$/.test(line))
  if (start === -1) throw new Error(`${readmePath} has no "## Install" section`)
  const end = lines.findIndex((line, index) => index > start && /^## /.test(line))
  const commands: Array<ReadonlyArray<string>> = []
  let inSh = false
  for (const line of lines.slice(start + 1, end === -1 ? undefined : end)) {
    if (/^```/.test(line)) {
      inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(line)
      continue
    }
    if (inSh && /^npm install /.test(line)) {
      commands.push(line.replace(/\s#.*$/, "").trim().split(/\s+/))
    }
  }
  if (commands.length === 0) throw new Error(`the Install section of ${readmePath} holds no "npm install" line`)
  return commands
}
