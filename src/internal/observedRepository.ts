/**
 * What every repository layer adds around its store: a duration, a failure count and (when traced) a span per
 * operation, and the services it provides together.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { DeliveryLedger } from "../DeliveryLedger.js"
import { TenantOutbox } from "../TenantOutbox.js"
import type { Service, TenantRepository } from "../TenantRepository.js"
import { ChangeFeed } from "./changeFeed.js"
import { isTraced, timerKey, timerOf, timerWithTags } from "./observability.js"

const operationDurationKey = timerKey(
  "tenant_repository_operation_duration",
  "How long TenantRepository operations take"
)

export const operationDuration = timerOf(operationDurationKey)

export const operationFailures = Metric.counter("tenant_repository_operation_failures", {
  description: "TenantRepository operations that failed, by error",
  incremental: true
})

/**
 * Every public operation gets a duration, a failure count and, when a tracer that exports spans is installed, a
 * span. The durations are tagged once, in their key: a tagged metric looks itself up on every update otherwise,
 * a fair part of a lookup by id.
 */
export const observed = (backend: string, service: Service): Service => {
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

/**
 * The services a store provides together. The port's tag is passed in: the port module imports this one.
 */
export const storeContext = (tag: Context.Tag<TenantRepository, Service>, backend: string) =>
(
  store: {
    readonly repository: Service
    readonly outbox: TenantOutbox["Type"]
    readonly ledger: DeliveryLedger["Type"]
    readonly changes: ChangeFeed["Type"]
  }
) =>
  Context.make(tag, observed(backend, store.repository)).pipe(
    Context.add(TenantOutbox, store.outbox),
    Context.add(DeliveryLedger, store.ledger),
    Context.add(ChangeFeed, store.changes)
  )
