/**
 * The shape of `src/` as the runtime sees it: no module loads itself through others (no value-import cycles), and
 * the domain modules load no driver, so that an application using only them, or the memory layers, never loads
 * pg, ioredis or nodemailer.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { cycles, reachable, readImportGraph } from "./utils/importGraph.js"

const DRIVERS = ["pg", "@effect/sql-pg", "ioredis", "nodemailer"]

const driversLoadedBy = (graph: ReturnType<typeof readImportGraph>, module: string): ReadonlyArray<string> => {
  const loaded = new Set<string>()
  for (const reached of reachable(graph, module)) {
    for (const pkg of graph.packages.get(reached) ?? []) {
      const driver = DRIVERS.find((name) => pkg === name || pkg.startsWith(`${name}/`))
      if (driver !== undefined) loaded.add(driver)
    }
  }
  return [...loaded].sort()
}

// The tenant domain, its errors and rules: what every layer builds on.
const DOMAIN = [
  "Tenant.ts",
  "TenantEvent.ts",
  "TenantLifecycle.ts",
  "TenantQuery.ts",
  "TenantRepositoryError.ts",
  "InvalidInput.ts",
  "TenantCache.ts",
  "TenantOutbox.ts",
  "DeliveryLedger.ts",
  "CacheError.ts",
  "SendError.ts",
  "SendRetry.ts",
  "SmsText.ts",
  "NotificationTemplates.ts",
  "Migrations.ts"
]

// The modules that load a driver: the backends, each in its port's folder, the PostgreSQL client, and the CLI
// (an application, not a library module).
const loadsDrivers = (module: string): boolean =>
  module.includes("/") || module === "Postgres.ts" || module === "Cli.ts"

describe("the import graph of src/", () => {
  const graph = readImportGraph()

  it("has no value-import cycles", () => {
    assert.isAbove(graph.modules.size, 40)
    assert.deepStrictEqual(cycles(graph), [])
  })

  it("domain modules load no driver", () => {
    for (const module of DOMAIN) {
      assert.isTrue(graph.modules.has(module), module)
      assert.deepStrictEqual(driversLoadedBy(graph, module), [], module)
    }
  })

  it("ports, the barrel and every other public module load no driver; only backends do", () => {
    const loading = [...graph.modules.keys()]
      .filter((module) => !module.startsWith("internal/") && driversLoadedBy(graph, module).length > 0)
      .sort()
    assert.deepStrictEqual(loading.filter((module) => !loadsDrivers(module)), [])
    // Each backend is where its driver is: the check above is not passing for want of drivers.
    assert.deepStrictEqual(driversLoadedBy(graph, "CacheStore/Redis.ts"), ["ioredis"])
    assert.deepStrictEqual(driversLoadedBy(graph, "Mailer/Smtp.ts"), ["nodemailer"])
    assert.deepStrictEqual(driversLoadedBy(graph, "TenantRepository/Pg.ts"), ["@effect/sql-pg", "pg"])
  })

  it("backends import their port, never the reverse: no module outside a port's folder loads one inside", () => {
    const backends = [...graph.modules.keys()].filter((module) =>
      !module.startsWith("internal/") && module.includes("/")
    )
    assert.includeMembers(backends, [
      "CacheStore/Redis.ts",
      "CacheStore/Tiered.ts",
      "DeliveryLedger/Pg.ts",
      "Mailer/Smtp.ts",
      "SmsGateway/Http.ts",
      "TenantRepository/Pg.ts"
    ])
    for (const backend of backends) {
      const port = `${backend.split("/")[0]}.ts`
      assert.isTrue(reachable(graph, backend).has(port), `${backend} builds on ${port}`)
    }
    const importers = [...graph.modules.entries()]
      .filter(([module, imports]) =>
        !module.includes("/") && module !== "Cli.ts" && imports.some((to) => backends.includes(to))
      )
      .map(([module]) => module)
    assert.deepStrictEqual(importers, [])
  })

  it("the README's architecture diagram names every backend, the port it builds on, and the stack's entry", () => {
    const readme = fs.readFileSync(path.resolve(import.meta.dirname, "..", "README.md"), "utf8")
    const diagram = /## Architecture\n\n```mermaid\n([\s\S]*?)```/.exec(readme)?.[1] ?? ""
    assert.isAbove(diagram.length, 100, "the diagram is there")
    const backends = [...graph.modules.keys()].filter((module) =>
      !module.startsWith("internal/") && module.includes("/")
    )
    for (const backend of backends) {
      assert.include(diagram, backend.replace(/\.ts$/, ""), backend)
      assert.include(diagram, backend.split("/")[0] ?? backend, `${backend}'s port`)
    }
    for (const module of ["TenantInfra", "CachedTenantRepository", "TenantNotifications", "OutboxRelay", "Postgres"]) {
      assert.include(diagram, module)
    }
  })

  it("finds a cycle and a driver when there is one (the checks can fail)", () => {
    const withCycle = {
      modules: new Map([...graph.modules, ["Tenant.ts", [
        ...(graph.modules.get("Tenant.ts") ?? []),
        "TenantEvent.ts"
      ]]]),
      packages: new Map([...graph.packages, ["Tenant.ts", ["effect/Schema", "ioredis"]]])
    }
    assert.deepStrictEqual(cycles(withCycle), [["Tenant.ts", "TenantEvent.ts"]])
    assert.deepStrictEqual(driversLoadedBy(withCycle, "TenantLifecycle.ts"), ["ioredis"])
  })
})
