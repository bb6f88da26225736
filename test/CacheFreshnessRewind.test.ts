import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant, stampAt } from "./utils/tenants.js"

const port = 30000 + Math.floor(Math.random() * 20000)
const dir = mkdtempSync(join(tmpdir(), "rewind-"))
let child: ChildProcess | undefined
const start = () =>
  new Promise<void>((resolve) => {
    child = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--dbfilename",
      "d.rdb",
      "--save",
      "",
      "--appendonly",
      "no"
    ], { stdio: ["ignore", "pipe", "ignore"] })
    let out = ""
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString()
      if (out.includes("Ready to accept")) resolve()
    })
  })
const kill = () =>
  new Promise<void>((resolve) => {
    child?.once("exit", () => resolve())
    child?.kill("SIGKILL")
  })

describe("store rewound from an RDB snapshot", () => {
  it.live(
    "the writer's own inline-applied change is re-applied after the store rewinds",
    () =>
      Effect.scoped(Effect.gen(function*() {
        yield* Effect.promise(start)
        yield* Effect.addFinalizer(() => Effect.promise(kill))
        const admin = new Redis(`redis://127.0.0.1:${port}`)
        admin.on("error", () => undefined)
        const context = yield* Layer.build(
          CachedTenantRepository.layer({ ttl: "10 minutes", maxStaleness: "2 seconds" }).pipe(
            Layer.provide(TenantRepository.layerMemory),
            Layer.provide(CacheStoreRedis.layer({ url: Redacted.make(`redis://127.0.0.1:${port}`), prefix: "rw:" }))
          )
        )
        const a = Context.get(context, TenantRepository.TenantRepository)
        const { event, tenant } = yield* newTenant()
        yield* a.insert(tenant, event)
        yield* Effect.sleep("700 millis")
        assert.deepStrictEqual(Option.map(yield* a.findById(tenant.id), (t) => t.version), Option.some(1))
        assert.deepStrictEqual(Option.map(yield* a.findById(tenant.id), (t) => t.version), Option.some(1))
        yield* Effect.promise(() => admin.save())
        const next = yield* Effect.map(
          TenantLifecycle.update(tenant, { name: "Renamed" }, stampAt(new Date())),
          Option.getOrThrow
        )
        yield* a.save(next.tenant, [next.event], tenant.version)
        assert.deepStrictEqual(Option.map(yield* a.findById(tenant.id), (t) => t.version), Option.some(2))
        yield* Effect.sleep("700 millis")
        admin.disconnect()
        yield* Effect.promise(kill)
        yield* Effect.promise(start)
        const admin2 = new Redis(`redis://127.0.0.1:${port}`)
        yield* Effect.sleep("7 seconds")
        admin2.disconnect()
        const versions: Array<number> = []
        for (let i = 0; i < 5; i++) {
          versions.push(Option.getOrThrow(yield* a.findById(tenant.id)).version)
          yield* Effect.sleep("300 millis")
        }
        assert.deepStrictEqual(versions, [2, 2, 2, 2, 2])
      })),
    { timeout: 30_000 }
  )
})
