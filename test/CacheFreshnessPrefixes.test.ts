import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant, stampAt } from "./utils/tenants.js"

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

describe("two caches with their own key prefixes over one store", () => {
  const check = (withOther: boolean) =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* Layer.build(
        CacheStoreRedis.layer({ url: Redacted.make(url), prefix: `review-shared-${Math.random()}:` })
      )
      const repo1 = yield* Layer.build(TenantRepository.layerMemory)
      const repo2 = yield* Layer.build(TenantRepository.layerMemory)
      const cached = (repo: Context.Context<TenantRepository.TenantRepository>, prefix: string) =>
        Effect.map(
          Layer.build(
            CachedTenantRepository.layer({ prefix, maxStaleness: "2 seconds" }).pipe(
              Layer.provide(Layer.succeedContext(Context.merge(repo, store)))
            )
          ),
          Context.get(TenantRepository.TenantRepository)
        )
      const b = yield* cached(repo2 as Context.Context<TenantRepository.TenantRepository>, "b:")
      if (withOther) {
        const a = yield* cached(repo1 as Context.Context<TenantRepository.TenantRepository>, "a:")
        for (let i = 0; i < 20; i++) {
          const { event, tenant } = yield* newTenant()
          yield* a.insert(tenant, event)
        }
      }
      const { event, tenant } = yield* newTenant()
      yield* b.insert(tenant, event)
      yield* Effect.sleep("600 millis")
      yield* b.findById(tenant.id)
      yield* b.findById(tenant.id)
      // A write that reaches the repository but not this cache's inline invalidation (another process, cut off).
      const raw = Context.get(repo2, TenantRepository.TenantRepository)
      const next = yield* Effect.map(
        TenantLifecycle.update(tenant, { name: "Renamed" }, stampAt(new Date())),
        Option.getOrThrow
      )
      yield* raw.save(next.tenant, [next.event], tenant.version)
      yield* Effect.sleep("3 seconds")
      return Option.getOrThrow(yield* b.findById(tenant.id)).version
    }))
  it.live("alone: the feed applies the write", () => Effect.map(check(false), (v) => assert.strictEqual(v, 2)), {
    timeout: 20_000
  })
  it.live(
    "beside another cache: the feed still applies it",
    () => Effect.map(check(true), (v) => assert.strictEqual(v, 2)),
    { timeout: 20_000 }
  )
})
