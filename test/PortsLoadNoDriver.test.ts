/**
 * At run time, as Node loads them: importing a port (or the barrel) loads none of the drivers, which are
 * optional peers that a memory-only application does not install. The static graph (`ImportGraph.test.ts`)
 * reads our sources; this test asks Node what it actually loaded, dependencies' own imports included.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")

const PORTS = [
  "index",
  "TenantRepository",
  "TenantOutbox",
  "DeliveryLedger",
  "CacheStore",
  "CachedTenantRepository",
  "Mailer",
  "SmsGateway",
  "TenantNotifications",
  "OutboxRelay",
  "InfraHealth",
  "TenantInfra"
]

// What Node resolved: ES modules through a resolve hook that writes down every URL, CommonJS ones (what the
// drivers load among themselves) from \`require.cache\`.
const hooks = `
import { appendFileSync } from "node:fs"
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  appendFileSync(process.env.RESOLVED_LOG, resolved.url + "\\n")
  return resolved
}
`

const script = (modules: ReadonlyArray<string>) => `
import { readFileSync } from "node:fs"
import { createRequire, register } from "node:module"
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hooks)}))
const require = createRequire(import.meta.url)
const drivers = () => {
  const files = [...Object.keys(require.cache), ...readFileSync(process.env.RESOLVED_LOG, "utf8").split("\\n")]
  return [...new Set(files.flatMap((file) => {
    const match = /node_modules[\\\\/](pg|ioredis|nodemailer)[\\\\/]/.exec(file)
    return match === null ? [] : [match[1]]
  }))].sort()
}
const report = {}
for (const module of ${JSON.stringify(modules)}) {
  await import("./src/" + module + ".ts")
  report[module] = drivers()
}
console.log(JSON.stringify(report))
`

const loadedBy = (modules: ReadonlyArray<string>): Record<string, ReadonlyArray<string>> => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "tenant-infra-loads-"))
  const log = path.join(directory, "resolved.log")
  fs.writeFileSync(log, "")
  try {
    return JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(modules)], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, RESOLVED_LOG: log },
        timeout: 60_000
      }).trim().split("\n").at(-1) ?? "{}"
    )
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

describe("what Node loads", () => {
  it("importing every port and the barrel, one after another, loads no driver", () => {
    const report = loadedBy(PORTS)
    assert.deepStrictEqual(Object.keys(report), PORTS)
    for (const port of PORTS) assert.deepStrictEqual(report[port], [], `after ${port}`)
  }, 90_000)

  it("importing a backend loads its driver (the check sees drivers)", () => {
    const report = loadedBy(["CacheStore", "CacheStore/Redis", "Mailer/Smtp", "TenantRepository/Pg"])
    assert.deepStrictEqual(report["CacheStore"], [])
    assert.deepStrictEqual(report["CacheStore/Redis"], ["ioredis"])
    assert.deepStrictEqual(report["Mailer/Smtp"], ["ioredis", "nodemailer"])
    assert.deepStrictEqual(report["TenantRepository/Pg"], ["ioredis", "nodemailer", "pg"])
  }, 90_000)
})
