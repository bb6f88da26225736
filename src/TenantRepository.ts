/**
 * The port through which tenants are stored and found, and its memory layer (`layerMemory`: no dependencies, the
 * embedded default). PostgreSQL (through `@effect/sql`) lives beside it, in `tenant-infra/TenantRepository/Pg`. Both behave the same: uniqueness of code
 * and domain among live tenants, optimistic versions, soft delete, search, sort and paging; one conformance
 * suite runs against both.
 *
 * Every write stores the tenant and its events together: the events go to the outbox (see `TenantOutbox`) in
 * the same transaction, so a stored change never loses its notification.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Option } from "effect"
 * import { TenantInfra, TenantLifecycle, TenantRepository } from "tenant-infra"
 *
 * const program = Effect.gen(function*() {
 *   const repository = yield* TenantRepository.TenantRepository
 *   const id = yield* TenantLifecycle.newTenantId
 *   const { event, tenant } = yield* TenantLifecycle.create(
 *     id,
 *     { code: "acme", name: "Acme Inc.", contact: { email: "admin@acme.test" } },
 *     yield* TenantLifecycle.stamp({ actor: "admin" })
 *   )
 *   yield* repository.insert(tenant, event)
 *   return yield* repository.findByCode("ACME") // Option.some(tenant)
 * })
 *
 * // In memory:
 * Effect.runPromise(Effect.provide(program, TenantRepository.layerMemory))
 * // On PostgreSQL (DATABASE_URL), migrations first, with
 * // import * as TenantRepositoryPg from "tenant-infra/TenantRepository/Pg":
 * const live = TenantRepositoryPg.layer().pipe(Layer.provide(TenantInfra.layerPostgres))
 * ```
 *
 * @since 0.1.0
 */
import type * as Array from "effect/Array"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { DeliveryLedger } from "./DeliveryLedger.js"
import { makeMemoryStore } from "./internal/memoryRepository.js"
import * as Observed from "./internal/observedRepository.js"
import type { InvalidInput } from "./InvalidInput.js"
import type { Tenant, TenantId } from "./Tenant.js"
import type { TenantCreated, TenantEvent } from "./TenantEvent.js"
import type { TenantOutbox } from "./TenantOutbox.js"
import type { ListQueryInput, Page, StatusCounts } from "./TenantQuery.js"
import type {
  ConcurrencyConflict,
  RepositoryError,
  TenantAlreadyExists,
  TenantNotFound
} from "./TenantRepositoryError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Stores a new tenant (version 1) with its `TenantCreated` event. Fails with `TenantAlreadyExists` when the
   * id is taken, or the code or domain is held by a live tenant.
   */
  readonly insert: (tenant: Tenant, event: TenantCreated) => Effect.Effect<void, TenantAlreadyExists | RepositoryError>
  /**
   * Stores a changed tenant with the events that changed it, one per version since `expectedVersion`, the
   * version it was read at. Fails with `ConcurrencyConflict` when the stored tenant is no longer at that
   * version, `TenantNotFound` when there is none, `TenantAlreadyExists` when a new code or domain (or a restore)
   * collides with a live tenant. Nothing is written when it fails.
   */
  readonly save: (
    tenant: Tenant,
    events: Array.NonEmptyReadonlyArray<TenantEvent>,
    expectedVersion: number
  ) => Effect.Effect<void, TenantNotFound | ConcurrencyConflict | TenantAlreadyExists | RepositoryError>
  /** A live tenant by id; a deleted one too with `includeDeleted: true`. */
  readonly findById: (
    id: TenantId,
    options?: { readonly includeDeleted?: boolean | undefined }
  ) => Effect.Effect<Option.Option<Tenant>, RepositoryError>
  /** The live tenant with this code; the code is normalised first, so `"Acme_Corp"` finds `acme-corp`. */
  readonly findByCode: (code: string) => Effect.Effect<Option.Option<Tenant>, RepositoryError>
  /** The live tenant with this domain, compared case-insensitively. */
  readonly findByDomain: (domain: string) => Effect.Effect<Option.Option<Tenant>, RepositoryError>
  /** One page of tenants; see `TenantQuery.ListQuery` for filters, sort and paging. */
  readonly list: (query?: ListQueryInput) => Effect.Effect<Page, InvalidInput | RepositoryError>
  /** How many tenants are in each status, deleted ones included. */
  readonly countByStatus: Effect.Effect<StatusCounts, RepositoryError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class TenantRepository extends Context.Tag("tenant-infra/TenantRepository")<TenantRepository, Service>() {}

/**
 * How long repository operations take, in milliseconds, tagged with `operation` and `backend`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationDuration = Observed.operationDuration

/**
 * Repository operations that failed, tagged with `operation`, `backend` and `error` (the error's tag, so that
 * domain answers such as `ConcurrencyConflict` stay apart from `RepositoryError`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationFailures = Observed.operationFailures

/**
 * An empty in-memory repository with its outbox and delivery ledger, for development, tests and the demo. The
 * three share one store (a write adds its events to the outbox in the same step; the ledger expands that outbox),
 * which is why they come in one layer. Each build of the layer starts empty.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TenantRepository | TenantOutbox | DeliveryLedger> = Layer.effectContext(
  Effect.map(makeMemoryStore, Observed.storeContext(TenantRepository, "memory"))
)
