import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { newTenant, stampAt } from "./utils/tenants.js"

describe("a stamp reused for the same kind of change at the next version", () => {
  it.effect("dies and is not acknowledged", () =>
    Effect.gen(function*() {
      const repo = yield* TenantRepository.TenantRepository
      const { event, tenant } = yield* newTenant()
      yield* repo.insert(tenant, event)
      const stamp = stampAt(new Date())
      const first = Option.getOrThrow(yield* TenantLifecycle.update(tenant, { name: "First" }, stamp))
      yield* repo.save(first.tenant, [first.event], tenant.version)
      const second = Option.getOrThrow(yield* TenantLifecycle.update(first.tenant, { name: "Second" }, stamp))
      const exit = yield* Effect.exit(repo.save(second.tenant, [second.event], first.tenant.version))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
    }).pipe(Effect.provide(TenantRepository.layerMemory)))
})
