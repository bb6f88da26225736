/**
 * The package as users import it: an explicit list of public entry points (the barrel and one subpath per
 * public module), none for internals, and none for the CLI's executable, which starts the CLI when loaded.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as TenantInfra from "../src/TenantInfra.js"

const root = path.resolve(import.meta.dirname, "..")
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  readonly exports: Record<string, unknown>
  readonly peerDependencies: Record<string, string>
  readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
  readonly sideEffects: ReadonlyArray<string>
  readonly bin: Record<string, string>
}

const topLevelModules = fs.readdirSync(path.join(root, "src"))
  .filter((file) => file.endsWith(".ts") && file !== "index.ts" && file !== "bin.ts")
  .map((file) => file.slice(0, -".ts".length))

// Each backend in its port's folder (`CacheStore/Redis.ts`), internals aside.
const backendModules = fs.readdirSync(path.join(root, "src"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && entry.name !== "internal")
  .flatMap((entry) =>
    fs.readdirSync(path.join(root, "src", entry.name))
      .filter((file) => file.endsWith(".ts"))
      .map((file) => `${entry.name}/${file.slice(0, -".ts".length)}`)
  )

const publicModules = [...topLevelModules, ...backendModules].sort()

describe("package.json", () => {
  it("exports the barrel, each public module by name, and nothing else", () => {
    const subpaths = Object.keys(manifest.exports)
    assert.deepStrictEqual(
      subpaths.filter((subpath) => subpath !== "." && subpath !== "./package.json").sort(),
      publicModules.map((module) => `./${module}`)
    )
    assert.isFalse(subpaths.some((subpath) => subpath.includes("*")), "no wildcard")
    for (const module of publicModules) {
      assert.deepStrictEqual(manifest.exports[`./${module}`], {
        types: `./dist/${module}.d.ts`,
        default: `./dist/${module}.js`
      })
    }
  })

  it("keeps the executable out of the library: installed as a command, not importable, the one side effect", () => {
    assert.deepStrictEqual(manifest.bin, { "tenant-infra": "./dist/bin.js" })
    assert.isFalse(Object.keys(manifest.exports).some((subpath) => subpath.includes("bin")))
    assert.deepStrictEqual(manifest.sideEffects, ["./dist/bin.js"])
  })

  it("the barrel re-exports every top-level module but those that load a driver: the CLI and Postgres", () => {
    const barrel = fs.readFileSync(path.join(root, "src", "index.ts"), "utf8")
    const reexported = [...barrel.matchAll(/^export \* as (\w+) from "\.\/(\w+)\.js"$/gm)]
    assert.isTrue(reexported.every(([, name, module]) => name === module))
    assert.deepStrictEqual(
      reexported.map(([, name]) => name).sort(),
      topLevelModules.filter((module) => module !== "Cli" && module !== "Postgres").sort()
    )
  })

  it("the install hints of TenantInfra name the optional peers' ranges of package.json", () => {
    for (const [name, range] of Object.entries(TenantInfra.OPTIONAL_PEERS)) {
      assert.strictEqual(manifest.peerDependencies[name], range, name)
      assert.isTrue(manifest.peerDependenciesMeta[name]?.optional, name)
    }
  })
})
