import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Tenant } from "../../src/Tenant.js"
import * as TenantLifecycle from "../../src/TenantLifecycle.js"
import type * as TenantRepository from "../../src/TenantRepository.js"
import { newTenant, stampAt } from "./tenants.js"

/** The next version of `tenant`, renamed. */
export const renamed = (tenant: Tenant, name: string) =>
  Effect.map(TenantLifecycle.update(tenant, { name }, stampAt(new Date())), Option.getOrThrow)

/**
 * `rounds` times: B reads a tenant twice (so that a memory tier keeps a copy), A saves a new version, and B is
 * polled until it serves it (failing after 2 s). Answers how long, in ms, B took to see each update, sorted.
 */
export const updatesSeenByB = (
  a: TenantRepository.Service,
  b: TenantRepository.Service,
  rounds: number
) =>
  Effect.gen(function*() {
    const created = yield* newTenant()
    yield* a.insert(created.tenant, created.event)
    let current = created.tenant
    const delays: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      assert.deepStrictEqual(yield* b.findById(current.id), Option.some(current))
      assert.deepStrictEqual(yield* b.findById(current.id), Option.some(current))
      const next = yield* renamed(current, `Renamed ${round}`)
      yield* a.save(next.tenant, [next.event], current.version)
      const saved = performance.now()
      for (;;) {
        const seen = yield* b.findById(current.id)
        if (Option.isSome(seen) && seen.value.version === next.tenant.version) break
        assert.isBelow(performance.now() - saved, 2000, "B never saw the update")
        yield* Effect.sleep("1 millis")
      }
      delays.push(performance.now() - saved)
      current = next.tenant
    }
    return delays.sort((x, y) => x - y)
  })
