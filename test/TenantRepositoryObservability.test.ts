import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant } from "./utils/tenants.js"

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
      yield* Effect.flip(repository.insert(tenant, event))

      assert.strictEqual((yield* Metric.value(durationOf("findById"))).count - findsBefore, 2)
      assert.strictEqual((yield* Metric.value(durationOf("insert"))).count - insertsBefore, 2)
      assert.strictEqual((yield* Metric.value(failuresOf("insert", "TenantAlreadyExists"))).count - clashesBefore, 1)
    }).pipe(Effect.provide(TenantRepository.layerMemory)))
})
