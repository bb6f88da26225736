/**
 * The port through which tenants are stored and found, and its two layers: `layerMemory` (no dependencies, the
 * embedded default) and `layerPg` (PostgreSQL through `@effect/sql`). Both behave the same: uniqueness of code
 * and domain among live tenants, optimistic versions, soft delete, search, sort and paging; one conformance
 * suite runs against both.
 *
 * Every write stores the tenant and its events together: the events go to the outbox (see `TenantOutbox`) in
 * the same transaction, so a stored change never loses its notification.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Option } from "effect"
 * import { Postgres, TenantLifecycle, TenantRepository } from "tenant-infra"
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
 * // On PostgreSQL (DATABASE_URL), migrations first:
 * const live = TenantRepository.layerPg.pipe(Layer.provide(Postgres.layer))
 * ```
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import type * as Array from "effect/Array"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { DeliveryLedger } from "./DeliveryLedger.js"
import { ChangeFeed } from "./internal/changeFeed.js"
import { makeMemoryStore } from "./internal/memoryRepository.js"
import { isTraced, timerKey, timerOf, timerWithTags } from "./internal/observability.js"
import { makePgStore } from "./internal/pgRepository.js"
import type { InvalidInput } from "./InvalidInput.js"
import type { Tenant, TenantId } from "./Tenant.js"
import type { TenantCreated, TenantEvent } from "./TenantEvent.js"
import { TenantOutbox } from "./TenantOutbox.js"
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

const operationDurationKey = timerKey(
  "tenant_repository_operation_duration",
  "How long TenantRepository operations take"
)

/**
 * How long repository operations take, in milliseconds, tagged with `operation` and `backend`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationDuration = timerOf(operationDurationKey)

/**
 * Repository operations that failed, tagged with `operation`, `backend` and `error` (the error's tag, so that
 * domain answers such as `ConcurrencyConflict` stay apart from `RepositoryError`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationFailures = Metric.counter("tenant_repository_operation_failures", {
  description: "TenantRepository operations that failed, by error",
  incremental: true
})

/**
 * Every public operation gets a duration, a failure count and, when a tracer that exports spans is installed, a
 * span. The durations are tagged once, in their key: a tagged metric looks itself up on every update otherwise,
 * a fair part of a lookup by id.
 */
const observed = (backend: string, service: Service): Service => {
  const observe = (operation: string) => {
    const span = `TenantRepository.${operation}`
    const spanOptions = { captureStackTrace: false, attributes: { "tenant.repository.backend": backend } }
    const duration = timerWithTags(operationDurationKey, { operation, backend })
    const failures = operationFailures.pipe(Metric.tagged("operation", operation), Metric.tagged("backend", backend))
    // The clock, the metric labels and the tracer are read off the fiber at once: as separate steps they took
    // more of a lookup by id than the metrics themselves.
    return <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.withFiberRuntime((fiber) => {
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
        const start = clock.unsafeCurrentTimeNanos()
        // On every end, interruption included: failures take time too.
        const timed = Effect.onExit(effect, (exit) => {
          duration.unsafeUpdate(Duration.nanos(clock.unsafeCurrentTimeNanos() - start), labels)
          if (Exit.isFailure(exit)) {
            const error = Cause.failureOption(exit.cause)
            if (Option.isSome(error)) Metric.tagged(failures, "error", error.value._tag).unsafeUpdate(1, labels)
          }
          return Effect.void
        })
        return isTraced(fiber.currentTracer) ? Effect.withSpan(timed, span, spanOptions) : timed
      })
  }
  const insert = observe("insert")
  const save = observe("save")
  const findById = observe("findById")
  const findByCode = observe("findByCode")
  const findByDomain = observe("findByDomain")
  const list = observe("list")
  return {
    insert: (tenant, event) => insert(service.insert(tenant, event)),
    save: (tenant, events, expectedVersion) => save(service.save(tenant, events, expectedVersion)),
    findById: (id, options) => findById(service.findById(id, options)),
    findByCode: (code) => findByCode(service.findByCode(code)),
    findByDomain: (domain) => findByDomain(service.findByDomain(domain)),
    list: (query) => list(service.list(query)),
    countByStatus: observe("countByStatus")(service.countByStatus)
  }
}

const toContext = (backend: string) =>
(
  store: {
    readonly repository: Service
    readonly outbox: TenantOutbox["Type"]
    readonly ledger: DeliveryLedger["Type"]
    readonly changes: ChangeFeed["Type"]
  }
) =>
  Context.make(TenantRepository, observed(backend, store.repository)).pipe(
    Context.add(TenantOutbox, store.outbox),
    Context.add(DeliveryLedger, store.ledger),
    Context.add(ChangeFeed, store.changes)
  )

/**
 * An empty in-memory repository and its outbox, for development, tests and the demo. Each build of the layer
 * starts empty.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TenantRepository | TenantOutbox | DeliveryLedger> = Layer.effectContext(
  Effect.map(makeMemoryStore, toContext("memory"))
)

/**
 * The PostgreSQL repository's settings.
 *
 * @since 0.2.0
 * @category models
 */
export interface PgOptions {
  /**
   * How long any operation may take, network faults included: then it fails with a `RepositoryError` whose
   * `reason` is `"Timeout"` (a read) or `"OutcomeUnknown"` (a write). Default 10 seconds. The client's own
   * timeouts (`Postgres.layer`: connect and query) should be shorter, so that a fault is seen and, for a write
   * whose COMMIT answer was lost, resolved within it.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The PostgreSQL repository and its outbox, with these settings (see `layerPg`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerPgWith = (options: PgOptions): Layer.Layer<
  TenantRepository | TenantOutbox | DeliveryLedger,
  SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> =>
  Layer.effectContext(
    Effect.map(
      makePgStore({ timeout: Duration.decode(options.timeout ?? Duration.seconds(10)) }),
      toContext("postgresql")
    )
  )

/**
 * The PostgreSQL repository and its outbox. Runs the package's migrations first (tables `tenants` and
 * `tenant_outbox`, tracked in `tenant_infra_migrations`), then serves from the `SqlClient` it is given, whatever
 * name transforms that client has. Provide `Postgres.layer` for a client from `DATABASE_URL`.
 *
 * Under network faults every operation ends within 10 seconds (`layerPgWith` sets another bound) with a value or
 * a typed error, never a defect. A write whose COMMIT answer was lost is resolved by asking the database for its
 * transaction's status; a retry of a write that was stored succeeds, so retrying after `"OutcomeUnknown"` is safe.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPg: Layer.Layer<
  TenantRepository | TenantOutbox | DeliveryLedger,
  SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> = layerPgWith({})
