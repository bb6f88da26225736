import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant } from "./utils/tenants.js"

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const build = (prefix: string) =>
  Layer.build(
    CachedTenantRepository.layer({ maxStaleness: "2 seconds" }).pipe(
      Layer.provide(TenantRepository.layerMemory),
      Layer.provide(CacheStoreRedis.layer({ url: Redacted.make(url), prefix }))
    )
  )

describe("a mark that is not a number", () => {
  it.live("at start-up", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = `review-badmark-${Math.random()}:`
      const admin = new Redis(url)
      yield* Effect.promise(() => admin.set(`${prefix}{tenant-cache:mark:}`, "not-a-number", "PX", 60_000))
      const exit = yield* Effect.exit(build(prefix))
      admin.disconnect()
      assert.isTrue(Exit.isSuccess(exit))
    })))
  it.live("while running: polling stops for good", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = `review-badmark-${Math.random()}:`
      const admin = new Redis(url)
      const a = Context.get(yield* build(prefix), TenantRepository.TenantRepository)
      const { event, tenant } = yield* newTenant()
      yield* a.insert(tenant, event)
      yield* Effect.sleep("500 millis")
      yield* Effect.promise(() => admin.set(`${prefix}{tenant-cache:mark:}`, "oops", "PX", 1_000))
      yield* Effect.sleep("3 seconds") // the bad value expired long ago
      const mark = yield* Effect.promise(() => admin.get(`${prefix}{tenant-cache:mark:}`))
      admin.disconnect()
      assert.isNotNull(mark)
    })))
})
