/**
 * A memory-tier hit: `findById` through `CachedTenantRepository` over `CacheStore.layerMemory`, against
 * bentocache's memory-tier `getOrSet` hit on the same tenant (its JSON form, which is what bentocache's memory
 * tier serialises by default, as ours does). Both sides are warmed first, so every timed call is a hit.
 */
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import { Tenant } from "../src/Tenant.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as Harness from "./harness.js"

const PLAN: Harness.Plan = { warmup: 5_000, rounds: 7, opsPerRound: 10_000 }

const program = Effect.gen(function*() {
  const runtime = yield* Effect.acquireRelease(
    Effect.sync(() =>
      ManagedRuntime.make(
        CachedTenantRepository.layer().pipe(
          Layer.provide(TenantRepository.layerMemory),
          Layer.provide(CacheStore.layerMemory())
        )
      )
    ),
    (runtime) => Effect.promise(() => runtime.dispose())
  )
  const repository = yield* Effect.promise(() => runtime.runPromise(TenantRepository.TenantRepository))
  const created = yield* TenantLifecycle.create(
    yield* TenantLifecycle.newTenantId,
    {
      code: "bench-memory-hit",
      name: "Bench Memory Hit",
      contact: { email: "admin@bench.test", phone: "+15550100" },
      settings: { plan: "pro", seats: 25 }
    },
    yield* TenantLifecycle.stamp({ actor: "bench" })
  )
  yield* Effect.promise(() => runtime.runPromise(repository.insert(created.tenant, created.event)))
  const id = created.tenant.id
  const json = Schema.encodeSync(Tenant)(created.tenant)

  const bento = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new BentoCache({
        default: "memory",
        stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) }
      })
    ),
    (bento) => Effect.promise(() => bento.disconnectAll())
  )
  const viaBento = () => bento.getOrSet({ key: `tenant:v1:id:${id}`, factory: async () => json, ttl: "5m" })
  const viaOurs = () => runtime.runPromise(repository.findById(id))

  yield* Console.log(`${PLAN.warmup} warm-up hits, then ${PLAN.rounds} rounds x ${PLAN.opsPerRound} hits per candidate`)
  return yield* Harness.headToHead(
    { name: "CachedTenantRepository (memory)", op: viaOurs },
    { name: "bentocache getOrSet (memory)", op: viaBento },
    PLAN,
    // Issue 16's goal (it was 1).
    { goal: 0.5 }
  )
})

export const benchmark: Harness.Benchmark = {
  name: "cache hit (memory)",
  run: Effect.scoped(program)
}
