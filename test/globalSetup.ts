import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { connect } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** The CLI's executable, built from `src/` for this run: the tests run what users run, not the sources. */
    readonly builtBin: string
  }
}

const root = path.resolve(import.meta.dirname, "..")

/**
 * Compiles `src/` as `npm run build` does, into a directory of its own (so that `npm pack` in another test, which
 * rebuilds `dist/`, cannot pull it away mid-run), beside a copy of `package.json` (the CLI reads its version
 * there) and the project's `node_modules`.
 */
const buildPackage = (): { readonly bin: string; readonly remove: () => void } => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "tenant-infra-built-"))
  execFileSync(
    process.execPath,
    [
      path.join(root, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      path.join(root, "tsconfig.build.json"),
      "--outDir",
      path.join(directory, "dist"),
      "--declaration",
      "false",
      "--declarationMap",
      "false",
      "--sourceMap",
      "false"
    ],
    { cwd: root, stdio: "inherit", timeout: 180_000 }
  )
  fs.copyFileSync(path.join(root, "package.json"), path.join(directory, "package.json"))
  fs.symlinkSync(path.join(root, "node_modules"), path.join(directory, "node_modules"), "dir")
  return {
    bin: path.join(directory, "dist", "bin.js"),
    remove: () => fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** Answers whether Redis at `url` replies PONG, within `timeoutMs`. */
const redisAnswers = (url: string, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = connect({ host: hostname, port: Number(port || 6379) })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.on("error", () => done(false))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (data) => done(data.toString().startsWith("+PONG")))
  })

/**
 * Runs once before the test files. It makes sure PostgreSQL and Redis answer (a clear failure rather than a
 * hundred connection errors; a server that is down fails the run, it never skips tests) and installs pg_trgm
 * once, in `public`, so that suites migrating in parallel do not race to create it. It builds the package for the
 * CLI's tests, and removes the build when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
  if (!(await redisAnswers(redisUrl, 5000))) {
    throw new Error(`Redis does not answer at ${new URL(redisUrl).host} (REDIS_URL)`)
  }
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${new URL(url).host} (DATABASE_URL): ${String(error)}`)
  }
  try {
    await client.query("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
  } finally {
    await client.end()
  }
  const built = buildPackage()
  project.provide("builtBin", built.bin)
  return built.remove
}
