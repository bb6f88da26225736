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

/**
 * After a store's subscription dropped and came back: reads until the store answers from its memory tier again
 * (`memoryHits` moves), each read, from either tier, asserted to be `expected`, never the copy from before.
 */
export const readsExpectedUntilMemoryHit = <E, R>(
  read: Effect.Effect<Option.Option<string>, E, R>,
  memoryHits: Effect.Effect<number>,
  expected: string
) =>
  Effect.gen(function*() {
    const resubscribed = yield* memoryHits
    const startedAt = performance.now()
    while ((yield* memoryHits) === resubscribed) {
      assert.deepStrictEqual(yield* read, Option.some(expected), "B served a copy made before its subscription dropped")
      assert.isBelow(performance.now() - startedAt, 3000, "B never used its memory tier again")
      yield* Effect.sleep("10 millis")
    }
  })
