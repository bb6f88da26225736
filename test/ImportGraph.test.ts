/**
 * The shape of `src/` as the runtime sees it: no module loads itself through others (no value-import cycles), and
 * the domain modules load no driver, so that an application using only them, or the memory layers, never loads
 * pg, ioredis or nodemailer.
 */
import { assert, describe, it } from "@effect/vitest"
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

// Public modules that still load a driver because a port and its backends share a module; each leaves this list
// when its backends move into modules of their own (issue 14), and no other module may join it.
const STILL_LOADING_DRIVERS = [
  "CacheStore.ts",
  "CachedTenantRepository.ts",
  "Cli.ts",
  "InfraHealth.ts",
  "Mailer.ts",
  "OutboxRelay.ts",
  "Postgres.ts",
  "SmsGateway.ts",
  "TenantNotifications.ts",
  "TenantRepository.ts",
  "index.ts"
]

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

  it("no public module outside the known list loads a driver", () => {
    const loading = [...graph.modules.keys()]
      .filter((module) => !module.startsWith("internal/") && driversLoadedBy(graph, module).length > 0)
      .sort()
    assert.includeMembers(STILL_LOADING_DRIVERS, loading)
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
