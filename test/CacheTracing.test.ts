import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant } from "./utils/tenants.js"
import { recordingTracer } from "./utils/tracing.js"

const cached = CachedTenantRepository.layer().pipe(
  Layer.provide(TenantRepository.layerMemory),
  Layer.provide(CacheStore.layerMemory())
)

describe("CachedTenantRepository spans", () => {
  it.effect("a lookup has a TenantCache.get span with its outcome under an installed tracer, none without", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const { event, tenant } = yield* newTenant()
      yield* repository.insert(tenant, event)
      const { spans, tracer } = yield* recordingTracer
      const outcomes = () =>
        spans.filter((span) => span.name === "TenantCache.get").map((span) =>
          span.attributes.get("tenant.cache.outcome")
        )

      yield* repository.findById(tenant.id)
      assert.deepStrictEqual(outcomes(), [], "the built-in tracer: no span asked for")

      yield* Effect.withTracer(repository.findById(tenant.id), tracer)
      assert.deepStrictEqual(outcomes(), ["hit"])
      const { event: other, tenant: absent } = yield* newTenant()
      assert.deepStrictEqual(yield* Effect.withTracer(repository.findById(absent.id), tracer), Option.none())
      assert.deepStrictEqual(outcomes(), ["hit", "miss"])
      assert.isTrue(spans.some((span) => span.name === "TenantCache.fill"))
      yield* Effect.withTracer(repository.insert(absent, other), tracer)
      assert.isTrue(spans.some((span) => span.name === "TenantCache.invalidate"))
    }).pipe(Effect.provide(cached)))
})
