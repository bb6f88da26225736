/**
 * The tenants the lookup benchmarks read: of a realistic shape, every other one with a phone, every third one
 * with a domain, and a way to pick one at random.
 */
import * as Array from "effect/Array"
import * as Effect from "effect/Effect"
import type { TenantId } from "../src/Tenant.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"

/** The columns `internal/pgRepository.ts` reads for a tenant, in its order. */
const COLUMNS = "id, code, name, status, email, phone, locale, domain, settings, version, created_at, updated_at, " +
  "deleted_at, status_changed_by, status_change_reason, status_changed_at"

/** The statement `internal/pgRepository.ts` compiles for `findById` without `includeDeleted`: the raw baselines'. */
export const FIND_BY_ID = `SELECT ${COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL`

/** The statement `internal/pgRepository.ts` compiles for `findByCode`: the raw baselines'. */
export const FIND_BY_CODE = `SELECT ${COLUMNS} FROM tenants WHERE code = $1 AND deleted_at IS NULL`

/** Inserts `count` tenants through the `TenantRepository`, `concurrency` at a time; fails if none was made. */
export const seed = (
  count: number,
  concurrency = 1
): Effect.Effect<Array.NonEmptyReadonlyArray<TenantId>, unknown, TenantRepository.TenantRepository> =>
  Effect.gen(function*() {
    const repository = yield* TenantRepository.TenantRepository
    const ids = yield* Effect.forEach(Array.range(1, count), (n) =>
      Effect.gen(function*() {
        const id = yield* TenantLifecycle.newTenantId
        const { event, tenant } = yield* TenantLifecycle.create(id, {
          code: `bench-${n}`,
          name: `Bench Tenant ${n}`,
          contact: n % 2 === 0
            ? { email: `admin${n}@bench.test` }
            : { email: `admin${n}@bench.test`, phone: "+15550100" },
          ...(n % 3 === 0 ? { domain: `tenant-${n}.bench.test` } : {}),
          settings: { plan: n % 5 === 0 ? "pro" : "free", seats: n % 50 }
        }, yield* TenantLifecycle.stamp({ actor: "bench" }))
        yield* repository.insert(tenant, event)
        return id
      }), { concurrency })
    return Array.isNonEmptyReadonlyArray(ids) ? ids : yield* Effect.dieMessage("no tenant was seeded")
  })

/** One of `ids`, at random. */
export const pick = (ids: Array.NonEmptyReadonlyArray<TenantId>): TenantId =>
  ids[Math.floor(Math.random() * ids.length)] ?? Array.headNonEmpty(ids)

/** `count` lookups by id of tenants picked at random, one after another in one fiber, as a request makes them. */
export const lookupsInFiber = (
  repository: TenantRepository.Service,
  ids: Array.NonEmptyReadonlyArray<TenantId>,
  count: number
): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* repository.findById(pick(ids))
  })

/** `op` `count` times, each awaited before the next. */
export const sequentially = async (count: number, op: () => Promise<unknown>): Promise<void> => {
  for (let i = 0; i < count; i++) await op()
}

/** `count` different elements of `items` (which must hold at least `count`), picked at random. */
export const pickDistinct = <A>(items: Array.NonEmptyReadonlyArray<A>, count: number): ReadonlyArray<A> => {
  const chosen = new Set<number>()
  while (chosen.size < Math.min(count, items.length)) chosen.add(Math.floor(Math.random() * items.length))
  return [...chosen].map((index) => items[index] ?? Array.headNonEmpty(items))
}
