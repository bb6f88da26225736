/**
 * The keys a write touches (`TenantCache.keysOfWrite`) and the keys of changes read from the repository's feed
 * (`TenantCache.keysOfChanges`): every key the tenant had or has, each once, code and domain keys apart from id
 * keys so that they can be invalidated first.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import * as TenantCache from "../src/TenantCache.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant, stampAt } from "./utils/tenants.js"

describe("TenantCache's keys of a write", () => {
  it.effect("an insert touches the tenant's id, code and domain keys, under the prefix", () =>
    Effect.gen(function*() {
      const { event, tenant } = yield* newTenant({ code: "acme-corp", domain: "acme.example.com" })
      assert.deepStrictEqual(TenantCache.keysOfWrite(tenant, [event], "app:"), {
        lookups: [["code", "app:tenant:v1:code:acme-corp"], ["domain", "app:tenant:v1:domain:acme.example.com"]],
        ids: [["id", `app:tenant:v1:id:${tenant.id}`]]
      })
      const { event: bareEvent, tenant: bare } = yield* newTenant({ code: "bare-corp" })
      assert.deepStrictEqual(TenantCache.keysOfWrite(bare, [bareEvent]), {
        lookups: [["code", "tenant:v1:code:bare-corp"]],
        ids: [["id", `tenant:v1:id:${bare.id}`]]
      })
    }))

  it.effect("an update touches the code and domain it replaced too, each key once, no id key among the others", () =>
    Effect.gen(function*() {
      const { tenant } = yield* newTenant({ code: "old-code", domain: "old.example.com" })
      const renamed = yield* (yield* TenantLifecycle.update(tenant, { code: "new-code" }, stampAt(new Date())))
      const moved = yield* (yield* TenantLifecycle.update(
        renamed.tenant,
        { domain: "new.example.com" },
        stampAt(new Date())
      ))
      const keys = TenantCache.keysOfWrite(moved.tenant, [renamed.event, moved.event])
      assert.deepStrictEqual(keys.lookups, [
        ["code", "tenant:v1:code:new-code"],
        ["domain", "tenant:v1:domain:new.example.com"],
        ["domain", "tenant:v1:domain:old.example.com"],
        ["code", "tenant:v1:code:old-code"]
      ])
      assert.deepStrictEqual(keys.ids, [["id", TenantCache.idKey(tenant.id)]])
    }))

  it.effect("the changes of a feed name the same keys as the writes that made them", () =>
    Effect.gen(function*() {
      const { tenant } = yield* newTenant({ code: "old-code", domain: "old.example.com" })
      const { event, tenant: updated } = yield* (yield* TenantLifecycle.update(
        tenant,
        { code: "new-code", domain: "new.example.com" },
        stampAt(new Date())
      ))
      const { tenant: other } = yield* newTenant({ code: "other-code" })
      const keys = TenantCache.keysOfChanges([
        {
          tenantId: updated.id,
          code: updated.code,
          domain: updated.domain,
          previousCode: "old-code",
          previousDomain: "old.example.com"
        },
        { tenantId: other.id, code: other.code, domain: undefined, previousCode: undefined, previousDomain: undefined },
        { tenantId: updated.id, code: updated.code, domain: updated.domain }
      ], "p:")
      assert.deepStrictEqual(keys.ids, [["id", TenantCache.idKey(updated.id, "p:")], [
        "id",
        TenantCache.idKey(other.id, "p:")
      ]])
      const written = TenantCache.keysOfWrite(updated, [event], "p:")
      assert.sameDeepMembers(
        [...keys.lookups],
        [...written.lookups, ["code", TenantCache.codeKey("other-code", "p:")]]
      )
      assert.lengthOf(keys.lookups, 5)
    }))

  it.scopedLive("a cache applies the changes another process wrote with code and domain keys before the id key", () =>
    Effect.gen(function*() {
      const repositoryContext = yield* Layer.build(TenantRepository.layerMemory)
      // Writes made on the repository itself, not through the cache: as another process's, they reach the cache
      // only through the repository's change feed.
      const elsewhere = Context.get(repositoryContext, TenantRepository.TenantRepository)
      const inner = Context.get(yield* Layer.build(CacheStore.layerMemory()), CacheStore.CacheStore)
      const batches: Array<ReadonlyArray<string>> = []
      const store = CacheStore.CacheStore.of({
        ...inner,
        invalidate: (keys) => Effect.zipRight(Effect.sync(() => batches.push(keys)), inner.invalidate(keys))
      })
      yield* CachedTenantRepository.make({ freshnessInterval: "20 millis" }).pipe(
        Effect.provide(Context.add(repositoryContext, CacheStore.CacheStore, store))
      )

      const { event, tenant } = yield* newTenant({ code: "old-code", domain: "old.example.com" })
      yield* elsewhere.insert(tenant, event)
      const updated = yield* (yield* TenantLifecycle.update(
        tenant,
        { code: "new-code", domain: "new.example.com" },
        stampAt(new Date())
      ))
      yield* elsewhere.save(updated.tenant, [updated.event], tenant.version)

      const lookups = [
        TenantCache.codeKey("old-code"),
        TenantCache.domainKey("old.example.com"),
        TenantCache.codeKey("new-code"),
        TenantCache.domainKey("new.example.com")
      ]
      const idKey = TenantCache.idKey(tenant.id)
      const applied = () => [...lookups, idKey].every((key) => batches.some((batch) => batch.includes(key)))
      yield* Effect.repeat(Effect.sync(applied), { until: (done) => done, schedule: Schedule.spaced("20 millis") })
        .pipe(
          Effect.timeout("10 seconds")
        )
      for (const batch of batches) {
        const at = batch.indexOf(idKey)
        if (at === -1) continue
        for (const key of lookups) {
          if (batch.includes(key)) {
            assert.isBelow(batch.indexOf(key), at, `${key} before the id key in ${batch.join(" ")}`)
          }
        }
      }
    }))
})
