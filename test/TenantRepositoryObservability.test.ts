import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant } from "./utils/tenants.js"
import { recordingTracer } from "./utils/tracing.js"

const durationOf = (operation: string) =>
  TenantRepository.operationDuration.pipe(Metric.tagged("operation", operation), Metric.tagged("backend", "memory"))

const failuresOf = (operation: string, error: string) =>
  TenantRepository.operationFailures.pipe(
    Metric.tagged("operation", operation),
    Metric.tagged("backend", "memory"),
    Metric.tagged("error", error)
  )

describe("TenantRepository observability", () => {
  it.effect("times every operation and counts failures by error tag", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const findsBefore = (yield* Metric.value(durationOf("findById"))).count
      const insertsBefore = (yield* Metric.value(durationOf("insert"))).count
      const clashesBefore = (yield* Metric.value(failuresOf("insert", "TenantAlreadyExists"))).count

      const { event, tenant } = yield* newTenant()
      yield* repository.insert(tenant, event)
      yield* repository.findById(tenant.id)
      yield* repository.findById(tenant.id)
      // Another tenant with the same code: a clash (the same write again would be a retry, and succeed).
      const clash = yield* newTenant({ code: tenant.code })
      yield* Effect.flip(repository.insert(clash.tenant, clash.event))

      assert.strictEqual((yield* Metric.value(durationOf("findById"))).count - findsBefore, 2)
      assert.strictEqual((yield* Metric.value(durationOf("insert"))).count - insertsBefore, 2)
      assert.strictEqual((yield* Metric.value(failuresOf("insert", "TenantAlreadyExists"))).count - clashesBefore, 1)
    }).pipe(Effect.provide(TenantRepository.layerMemory)))

  it.effect("gives every operation a span under an installed tracer, and makes none under the built-in one", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const { spans, tracer } = yield* recordingTracer
      const { event, tenant } = yield* newTenant()
      yield* repository.insert(tenant, event)
      yield* repository.findById(tenant.id)
      assert.deepStrictEqual(spans, [], "the built-in tracer: no span asked for")
      yield* Effect.withTracer(repository.findById(tenant.id), tracer)
      yield* Effect.withTracer(repository.findByCode(tenant.code), tracer)
      assert.deepStrictEqual(spans.map((span) => span.name), [
        "TenantRepository.findById",
        "TenantRepository.findByCode"
      ])
      assert.strictEqual(spans[0]?.attributes.get("tenant.repository.backend"), "memory")
    }).pipe(Effect.provide(TenantRepository.layerMemory)))
})
