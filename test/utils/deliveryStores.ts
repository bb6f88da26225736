import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { Stats } from "../../src/DeliveryLedger.js"
import { DeliveryLedger } from "../../src/DeliveryLedger.js"
import type { Tenant } from "../../src/Tenant.js"
import type { TenantEvent } from "../../src/TenantEvent.js"
import * as TenantLifecycle from "../../src/TenantLifecycle.js"
import { envelopesFor } from "../../src/TenantNotifications.js"
import type { TenantOutbox } from "../../src/TenantOutbox.js"
import * as TenantRepository from "../../src/TenantRepository.js"
import * as TenantRepositoryPg from "../../src/TenantRepository/Pg.js"
import { layerClientInFreshSchema, TestSchema, urlWithSchema } from "./postgres.js"
import { newTenant, stampAt } from "./tenants.js"

/** Tenants, their outbox and the delivery ledger, over one store: what the relay and its tests work with. */
export type Store = TenantRepository.TenantRepository | TenantOutbox | DeliveryLedger

/**
 * Where a suite's tests get their stores. The ledger's `claim` takes whatever is due in the whole store, so each
 * test starts from an empty one: a new memory store, or the suite's PostgreSQL schema with every table emptied
 * (tests of one file run one after the other).
 */
export class Stores extends Context.Tag("test/Stores")<Stores, {
  readonly empty: Layer.Layer<Store, unknown>
  /**
   * The current test's store as another relay process would reach it: the same instance for memory, a
   * connection pool of its own on the same schema for PostgreSQL.
   */
  readonly another: Effect.Effect<Layer.Layer<Store, unknown>, never, Store>
}>() {}

export interface StoreBackend {
  readonly name: "memory" | "pg"
  /** Built once per suite. */
  readonly suite: Layer.Layer<Stores, unknown>
}

export const memoryStores: StoreBackend = {
  name: "memory",
  suite: Layer.succeed(Stores, {
    empty: TenantRepository.layerMemory,
    another: Effect.map(Effect.context<Store>(), Layer.succeedContext)
  })
}

const emptyTables = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`TRUNCATE tenant_delivery_attempts, tenant_deliveries, tenant_outbox, tenants`
)

export const pgStores: StoreBackend = {
  name: "pg",
  suite: Layer.effect(
    Stores,
    Effect.gen(function*() {
      const client = yield* Effect.context<SqlClient.SqlClient | PgClient.PgClient>()
      const url = urlWithSchema(yield* TestSchema)
      return {
        empty: Layer.effectDiscard(emptyTables).pipe(
          Layer.provideMerge(TenantRepositoryPg.layer()),
          Layer.provide(Layer.succeedContext(client))
        ),
        another: Effect.succeed(
          TenantRepositoryPg.layer().pipe(
            Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 4, connectTimeout: "5 seconds" }))
          )
        )
      }
    })
  ).pipe(Layer.provide(layerClientInFreshSchema))
}

export const storeBackends: ReadonlyArray<StoreBackend> = [memoryStores, pgStores]

/**
 * Runs `test` in an empty store of the suite. Its scope (the relays it starts, say) closes before the store does.
 */
export const inEmptyStore = <A, E, R>(test: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Stores, (stores) => Effect.provide(Effect.scoped(test), stores.empty))

/** One step of a tenant's life, as `TenantLifecycle` gives them. */
export type Step = (tenant: Tenant, stamp: TenantLifecycle.Stamp) => Either.Either<
  TenantLifecycle.Transition<TenantEvent>,
  unknown
>

/** The `update` step with this input (which must change something). */
export const updateWith = (input: Record<string, unknown>): Step => (tenant, stamp) =>
  Either.flatMap(
    TenantLifecycle.update(tenant, input, stamp),
    Option.match({
      onNone: () => Either.left(`the update ${JSON.stringify(input)} changes nothing`),
      onSome: Either.right
    })
  )

/**
 * Inserts a new tenant (valid defaults, `input` overriding them) and takes it through `steps`, each saved as a
 * write of its own; returns the tenant as it ends and its events in order.
 */
export const storedLife = (input: Record<string, unknown>, steps: ReadonlyArray<Step> = []) =>
  Effect.gen(function*() {
    const repository = yield* TenantRepository.TenantRepository
    const created = yield* newTenant(input)
    yield* repository.insert(created.tenant, created.event)
    const events: Array<TenantEvent> = [created.event]
    let tenant = created.tenant
    for (const step of steps) {
      const next = yield* step(tenant, stampAt(new Date(), { actor: "ops", reason: "invoice unpaid" }))
      yield* repository.save(next.tenant, [next.event], tenant.version)
      events.push(next.event)
      tenant = next.tenant
    }
    return { tenant, events }
  })

/** The keys of the messages `events` call for, in order. */
export const keysOf = (events: ReadonlyArray<TenantEvent>): ReadonlyArray<string> =>
  events.flatMap(envelopesFor).map((envelope) => envelope.key)

/** The key of the one message `event` calls for. */
export const keyOf = (event: TenantEvent | undefined): string => {
  const [key, ...more] = event === undefined ? [] : keysOf([event])
  if (key === undefined || more.length > 0) throw new Error(`expected one message for ${event?._tag}`)
  return key
}

/** The delivery with this key, which must exist. */
export const findDelivery = (key: string) =>
  Effect.flatMap(DeliveryLedger, (ledger) => Effect.flatten(ledger.find(key))).pipe(
    Effect.catchTag("NoSuchElementException", () => Effect.dieMessage(`no delivery ${key}`))
  )

/** The ledger's counts, without the time of the oldest waiting event. */
export const countsOf = ({ dead, delivered, inFlight, pending, unexpandedEvents }: Stats) => ({
  unexpandedEvents,
  pending,
  inFlight,
  delivered,
  dead
})
