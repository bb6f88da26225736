/**
 * The package as a user gets it: `npm pack`, then the README's own install commands in fresh projects, plain Node
 * ESM imports of the barrel and of every subpath in `exports`, a type check against the installed declarations
 * with `skipLibCheck: false`, and the installed CLI. A broken `exports` map, a missing declaration or a peer range
 * that does not resolve fails here, before a user finds it.
 *
 * `PACK_ROOT` packs another checkout and `README_PATH` reads the install commands from another README (both for
 * trying the test against a deliberately broken copy). The npm registry must answer: in CI (`CI=true`) the test
 * always runs; elsewhere it is skipped, saying why, only when `npm ping` fails.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { vi } from "vitest"
import { describeRan, readmeInstallCommands, run, succeeded } from "./utils/packInstall.js"

const packRoot = path.resolve(process.env.PACK_ROOT ?? fileURLToPath(new URL("..", import.meta.url)))
const readmePath = path.resolve(process.env.README_PATH ?? path.join(packRoot, "README.md"))
const npm = process.platform === "win32" ? "npm.cmd" : "npm"
const npx = process.platform === "win32" ? "npx.cmd" : "npx"
const quiet = ["--no-audit", "--no-fund", "--loglevel=error"]

// Each test runs Node or the type checker over the installed packages: seconds, more on a loaded machine.
vi.setConfig({ testTimeout: 120_000 })

// The tooling of the type check, not a dependency of the package: installed after the README's commands.
const typeCheckTools = ["typescript@~5.9.3", "@types/node@^20"]

/** Names the barrel must export (a sample: `PackageShape.test.ts` keeps the full list). */
const barrelNames = [
  "TenantRepository",
  "CacheStore",
  "Mailer",
  "SmsGateway",
  "TenantNotifications",
  "CachedTenantRepository",
  "OutboxRelay",
  "TenantInfra"
]

/** The `tenant-infra` commands its help must list. */
const cliCommands = ["migrate", "relay", "dead-letters", "replay", "stats", "prune", "health"]

const registryProblem = async (): Promise<string | undefined> => {
  if (process.env.CI === "true") return undefined
  const ping = await run(npm, ["ping", "--loglevel=error"], { cwd: os.tmpdir(), timeoutMs: 15_000 })
  return ping.code === 0 && !ping.timedOut ? undefined : `the npm registry does not answer:\n${describeRan(ping)}`
}

const skipBecause = await registryProblem()
if (skipBecause !== undefined) console.warn(`PackInstall.test.ts skipped: ${skipBecause}`)

/** Imports the barrel, then reports the names it lacks and the optional peers it loaded. */
const barrelScript = `
import { createRequire } from "node:module"
const barrel = await import("tenant-infra")
const require = createRequire(import.meta.url)
// ioredis and nodemailer are CommonJS: Node loads them through require's cache, also when imported from ESM.
const loaded = Object.keys(require.cache)
  .map((file) => /[\\\\/]node_modules[\\\\/](ioredis|nodemailer)[\\\\/]/.exec(file)?.[1])
  .filter((name) => name !== undefined)
console.log(JSON.stringify({
  missing: ${JSON.stringify(barrelNames)}.filter((name) => typeof barrel[name] !== "object" || barrel[name] === null),
  loaded: [...new Set(loaded)]
}))
`

/** Imports each specifier on its own and reports the ones that fail or export nothing. */
const importAllScript = (specifiers: ReadonlyArray<string>) => `
const failed = []
for (const specifier of ${JSON.stringify(specifiers)}) {
  try {
    const module = await import(specifier)
    if (Object.keys(module).length === 0) failed.push(specifier + ": exports nothing")
  } catch (error) {
    failed.push(specifier + ": " + String(error))
  }
}
console.log(JSON.stringify({ failed }))
`

/** Every memory layer of the barrel, provided: the program's type says nothing is left to provide. */
const mainTs = `import { Effect, Layer } from "effect"
import {
  CachedTenantRepository,
  CacheStore,
  Mailer,
  OutboxRelay,
  SmsGateway,
  TenantInfra,
  TenantNotifications,
  TenantRepository
} from "tenant-infra"

const Live = Layer.mergeAll(
  CachedTenantRepository.layer().pipe(
    Layer.provideMerge(TenantRepository.layerMemory),
    Layer.provide(CacheStore.layerMemory())
  ),
  TenantNotifications.layer().pipe(Layer.provideMerge(Layer.merge(Mailer.layerMemory(), SmsGateway.layerMemory)))
)

export const program: Effect.Effect<unknown, unknown> = Effect.gen(function*() {
  const repository = yield* TenantRepository.TenantRepository
  yield* TenantNotifications.TenantNotifications
  return yield* repository.countByStatus
}).pipe(Effect.provide(Live))

// The whole stack from the environment: its declarations name no optional peer's types.
export const fromEnvironment: Effect.Effect<unknown, unknown> = Effect.gen(function*() {
  const repository = yield* TenantRepository.TenantRepository
  yield* OutboxRelay.OutboxRelay
  return yield* repository.countByStatus
}).pipe(Effect.provide(TenantInfra.layerConfig({ relay: true })))
`

/** One namespace import per specifier: a subpath without declarations is an implicit `any` under `strict`. */
const importAllTs = (specifiers: ReadonlyArray<string>) =>
  specifiers.map((specifier, index) => `import * as M${index} from ${JSON.stringify(specifier)}\n`).join("") +
  `export const modules = [${specifiers.map((_, index) => `M${index}`).join(", ")}]\n`

const tsconfig = {
  compilerOptions: {
    strict: true,
    module: "NodeNext",
    moduleResolution: "NodeNext",
    target: "ES2022",
    lib: ["ES2022"],
    types: ["node"],
    skipLibCheck: false,
    noEmit: true
  },
  include: ["*.ts"]
}

/** A fresh ESM project with the package installed by the README's first `take` commands and the type checker. */
const makeProject = async (dir: string, tarball: string, take: number) => {
  fs.mkdirSync(dir)
  await succeeded(npm, ["init", "-y", "--loglevel=error"], { cwd: dir, timeoutMs: 30_000 })
  const manifestPath = path.join(dir, "package.json")
  const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as Record<string, unknown>
  fs.writeFileSync(manifestPath, JSON.stringify({ ...manifest, type: "module" }, null, 2))
  for (const words of readmeInstallCommands(readmePath).slice(0, take)) {
    // `npm install tenant-infra ...`, as written, with the package replaced by the tarball.
    const args = words.slice(1).map((word) => (word === "tenant-infra" ? tarball : word))
    await succeeded(npm, [...args, ...quiet], { cwd: dir, timeoutMs: 180_000 })
  }
  await succeeded(npm, ["install", "--save-dev", ...typeCheckTools, ...quiet], { cwd: dir, timeoutMs: 180_000 })
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))
  fs.writeFileSync(path.join(dir, "main.ts"), mainTs)
  return dir
}

const nodeJson = async <A>(cwd: string, file: string, script: string): Promise<A> => {
  fs.writeFileSync(path.join(cwd, file), script)
  const ran = await succeeded(process.execPath, [file], { cwd, timeoutMs: 60_000 })
  const last = ran.stdout.trim().split("\n").at(-1) ?? ""
  try {
    return JSON.parse(last) as A
  } catch {
    throw new Error(`${file} printed no report\n${describeRan(ran)}`)
  }
}

const typeCheck = (cwd: string) =>
  succeeded(process.execPath, [path.join(cwd, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], {
    cwd,
    timeoutMs: 120_000
  })

describe.skipIf(skipBecause !== undefined)("the packed package, installed with the README's commands", () => {
  let work = ""
  // Only the README's first command: the required peers.
  let minimal = ""
  // Every command of the README's Install section: the optional peers too.
  let full = ""

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "tenant-infra-pack-"))
    const manifest = JSON.parse(fs.readFileSync(path.join(packRoot, "package.json"), "utf8")) as {
      readonly scripts?: Record<string, string>
    }
    // `npm pack` runs `prepack` and `prepare` itself; without them, `dist/` is built here as a release would be.
    if (manifest.scripts?.prepack === undefined && manifest.scripts?.prepare === undefined) {
      await succeeded(npm, ["run", "build", "--loglevel=error"], { cwd: packRoot, timeoutMs: 180_000 })
    }
    const packed = path.join(work, "packed")
    fs.mkdirSync(packed)
    await succeeded(npm, ["pack", "--pack-destination", packed, "--loglevel=error"], {
      cwd: packRoot,
      timeoutMs: 180_000
    })
    const tarballs = fs.readdirSync(packed).filter((file) => file.endsWith(".tgz"))
    assert.strictEqual(tarballs.length, 1, `npm pack made one tarball: ${tarballs.join(", ")}`)
    const tarball = path.join(packed, tarballs[0] ?? "")
    const commands = readmeInstallCommands(readmePath)
    assert.isTrue(
      commands[0]?.includes("tenant-infra"),
      `the README's first install command installs tenant-infra: ${commands[0]?.join(" ")}`
    )
    // Both to their end before failing, so that no npm is still writing in the directory when it is removed.
    const [minimalMade, fullMade] = await Promise.allSettled([
      makeProject(path.join(work, "minimal"), tarball, 1),
      makeProject(path.join(work, "full"), tarball, commands.length)
    ])
    if (minimalMade.status === "rejected") throw minimalMade.reason
    if (fullMade.status === "rejected") throw fullMade.reason
    minimal = minimalMade.value
    full = fullMade.value
  }, 360_000)

  afterAll(() => {
    if (work !== "") fs.rmSync(work, { recursive: true, force: true })
  })

  it("the barrel loads in plain Node ESM with the required peers alone, and loads neither ioredis nor nodemailer", async () => {
    const report = await nodeJson<{ missing: Array<string>; loaded: Array<string> }>(
      minimal,
      "barrel.mjs",
      barrelScript
    )
    assert.deepStrictEqual(report.missing, [], "names the barrel must export")
    assert.deepStrictEqual(report.loaded, [], "optional peers loaded by importing the barrel")
  })

  it("the README's first command installs neither ioredis nor nodemailer: they are optional peers", async () => {
    const installed = ["ioredis", "nodemailer"].filter((name) =>
      fs.existsSync(path.join(minimal, "node_modules", name))
    )
    assert.deepStrictEqual(installed, [])
  })

  it("a program providing the memory layers type-checks (skipLibCheck: false) with the required peers alone", async () => {
    await typeCheck(minimal)
  })

  it("with the optional peers, every subpath in exports imports in plain Node ESM and type-checks", async () => {
    const installed = JSON.parse(
      fs.readFileSync(path.join(full, "node_modules", "tenant-infra", "package.json"), "utf8")
    ) as { readonly exports: Record<string, unknown> }
    const specifiers = Object.keys(installed.exports)
      .filter((subpath) => subpath !== "./package.json")
      .map((subpath) => `tenant-infra${subpath.slice(1)}`)
    assert.isAbove(specifiers.length, 1)
    const report = await nodeJson<{ failed: Array<string> }>(full, "subpaths.mjs", importAllScript(specifiers))
    assert.deepStrictEqual(report.failed, [], "subpaths that do not import")
    fs.writeFileSync(path.join(full, "subpaths.ts"), importAllTs(specifiers))
    await typeCheck(full)
  })

  it("the installed CLI prints its help", async () => {
    // `--no`: a missing executable must fail here, not be fetched from the registry; `--`: the help is the CLI's,
    // not npx's.
    const ran = await succeeded(npx, ["--no", "--", "tenant-infra", "--help"], {
      cwd: full,
      timeoutMs: 60_000,
      env: { NO_COLOR: "1" }
    })
    const missing = cliCommands.filter((command) => !ran.stdout.includes(command))
    assert.deepStrictEqual(missing, [], `commands missing from the help\n${describeRan(ran)}`)
  })

  it("without its optional peers, the CLI names them with their ranges and exits 3", async () => {
    const ran = await run(npx, ["--no", "--", "tenant-infra", "--help"], { cwd: minimal, timeoutMs: 60_000 })
    assert.strictEqual(ran.code, 3, describeRan(ran))
    assert.include(
      ran.stderr,
      "tenant-infra: the command needs its optional peers: npm install @effect/cli@",
      describeRan(ran)
    )
  })
})
