/**
 * Every change a tenant can go through, as pure functions: each takes the current tenant and a {@link Stamp}
 * (event id, time, actor, reason) and returns the new tenant with the one event that records the change, or a
 * typed error. Nothing here touches storage; hand the result to `TenantRepository.insert` or `save`.
 *
 * The status machine:
 *
 * ```text
 * pending   -> active | suspended | deleted
 * active    -> suspended | deleted
 * suspended -> active | deleted
 * deleted   -> suspended            (restore)
 * ```
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TenantLifecycle } from "tenant-infra"
 *
 * const program = Effect.gen(function*() {
 *   const id = yield* TenantLifecycle.newTenantId
 *   const created = yield* TenantLifecycle.create(
 *     id,
 *     { code: "Acme_Corp", name: "Acme Inc.", contact: { email: "admin@acme.test" } },
 *     yield* TenantLifecycle.stamp({ actor: "admin" })
 *   )
 *   const activated = yield* TenantLifecycle.activate(created.tenant, yield* TenantLifecycle.stamp({ actor: "ops" }))
 *   return activated.tenant.status // "active"
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomUUID } from "node:crypto"
import { propsOf, type TenantProps } from "./internal/tenantFields.js"
import * as InvalidInput from "./InvalidInput.js"
import type { TenantContact, TenantSettings } from "./Tenant.js"
import {
  Actor,
  CreateTenantInput,
  isTenantId,
  Reason,
  Tenant,
  TenantId,
  TenantStatus,
  Timestamp,
  UpdateTenantInput
} from "./Tenant.js"
import type { UpdatedField } from "./TenantEvent.js"
import {
  TenantActivated,
  TenantCreated,
  TenantDeleted,
  TenantRestored,
  TenantSuspended,
  TenantUpdated
} from "./TenantEvent.js"

/**
 * What identifies and explains one change: the id its event gets, when it happened, who made it and why.
 *
 * @since 0.1.0
 * @category models
 */
export class Stamp extends Schema.Class<Stamp>("tenant-infra/Stamp")({
  eventId: Schema.UUID,
  at: Timestamp,
  actor: Actor,
  reason: Schema.optionalWith(Reason, { exact: true })
}) {}

const decodeStampInput = InvalidInput.decode(
  "stamp",
  Schema.Struct({ actor: Actor, reason: Schema.optional(Reason) })
)

/**
 * A {@link Stamp} for a change made now (by `Clock`), with a fresh event id. Fails with `InvalidInput` when
 * the actor or the reason is empty or too long.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stamp = (by: {
  readonly actor: string
  readonly reason?: string | undefined
}): Effect.Effect<Stamp, InvalidInput.InvalidInput> =>
  Effect.flatMap(
    decodeStampInput(by),
    ({ actor, reason }) =>
      Effect.map(Clock.currentTimeMillis, (millis) =>
        new Stamp({
          actor,
          ...(reason === undefined ? {} : { reason }),
          eventId: randomUUID(),
          at: new Date(millis)
        }))
  )

/**
 * A fresh, random tenant id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newTenantId: Effect.Effect<TenantId> = Effect.sync(() => TenantId.make(randomUUID()))

/**
 * A new tenant and the event that records how it got there.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition<E> {
  readonly tenant: Tenant
  readonly event: E
}

/**
 * The operations the status machine guards.
 *
 * @since 0.1.0
 * @category models
 */
export const Operation = Schema.Literal("activate", "suspend", "delete", "restore", "update")

/**
 * @since 0.1.0
 * @category models
 */
export type Operation = typeof Operation.Type

const allowedFrom: Record<Operation, ReadonlyArray<TenantStatus>> = {
  activate: ["pending", "suspended"],
  suspend: ["pending", "active"],
  delete: ["pending", "active", "suspended"],
  restore: ["deleted"],
  update: ["pending", "active", "suspended"]
}

/**
 * Whether `operation` is allowed on a tenant in `status`.
 *
 * @since 0.1.0
 * @category guards
 */
export const canApply = (status: TenantStatus, operation: Operation): boolean => allowedFrom[operation].includes(status)

/**
 * An operation the tenant's status does not allow, such as activating an active tenant or changing a deleted
 * one.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTransition
  extends Schema.TaggedError<InvalidTransition>("tenant-infra/InvalidTransition")("InvalidTransition", {
    tenantId: TenantId,
    status: TenantStatus,
    operation: Operation
  })
{
  override get message(): string {
    const allowed = allowedFrom[this.operation].join(", ")
    return `Cannot ${this.operation} tenant ${this.tenantId}: it is ${this.status} (allowed from: ${allowed})`
  }
}

const eventBase = (tenant: Tenant, stamp: Stamp) => ({
  eventId: stamp.eventId,
  tenantId: tenant.id,
  occurredAt: stamp.at,
  version: tenant.version,
  actor: stamp.actor,
  tenant
})

const decodeCreateInput = InvalidInput.decode("tenant", CreateTenantInput)

// Typed arguments a JavaScript caller may still get wrong: refused like bad input, rather than thrown from the
// tenant's constructor.
const misusedArguments = (subject: string, id: unknown, stamp: unknown): InvalidInput.InvalidInput | undefined => {
  if (!isTenantId(id)) return InvalidInput.InvalidInput.single(subject, ["id"], "must be a tenant id from newTenantId")
  if (!(stamp instanceof Stamp)) {
    return InvalidInput.InvalidInput.single(subject, ["stamp"], "must be a Stamp from TenantLifecycle.stamp")
  }
  return undefined
}
const decodeUpdateInput = InvalidInput.decode("tenant update", UpdateTenantInput)

/**
 * Creates a tenant from untrusted input: status `pending`, version 1. Fails with `InvalidInput` naming every bad
 * field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const create = (
  id: TenantId,
  input: unknown,
  stamp: Stamp
): Either.Either<Transition<TenantCreated>, InvalidInput.InvalidInput> => {
  const misuse = misusedArguments("tenant", id, stamp)
  if (misuse !== undefined) return Either.left(misuse)
  return Either.map(decodeCreateInput(input), (fields) => {
    const tenant = new Tenant({
      id,
      ...fields,
      status: "pending",
      version: 1,
      createdAt: stamp.at,
      updatedAt: stamp.at
    })
    return { tenant, event: new TenantCreated(eventBase(tenant, stamp)) }
  })
}

const sameContact = (a: TenantContact, b: TenantContact): boolean =>
  a.email === b.email && a.phone === b.phone && a.locale === b.locale

const sameSettings = (a: TenantSettings, b: TenantSettings): boolean => {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key])
}

/**
 * Changes a tenant's details from untrusted input (see `Tenant.UpdateTenantInput`). Returns `None` when the
 * input changes nothing, so no event is raised for a no-op. A deleted tenant cannot be changed.
 *
 * @since 0.1.0
 * @category combinators
 */
export const update = (
  tenant: Tenant,
  input: unknown,
  stamp: Stamp
): Either.Either<
  Option.Option<Transition<TenantUpdated>>,
  InvalidInput.InvalidInput | InvalidTransition
> => {
  if (!canApply(tenant.status, "update")) {
    return Either.left(new InvalidTransition({ tenantId: tenant.id, status: tenant.status, operation: "update" }))
  }
  const misuse = misusedArguments("tenant update", tenant.id, stamp)
  if (misuse !== undefined) return Either.left(misuse)
  return Either.map(decodeUpdateInput(input), (patch) => {
    const changes: Array<UpdatedField> = []
    const next: { -readonly [K in keyof TenantProps]: TenantProps[K] } = propsOf(tenant)
    if (patch.code !== undefined && patch.code !== tenant.code) {
      changes.push("code")
      next.code = patch.code
    }
    if (patch.name !== undefined && patch.name !== tenant.name) {
      changes.push("name")
      next.name = patch.name
    }
    if (patch.contact !== undefined && !sameContact(patch.contact, tenant.contact)) {
      changes.push("contact")
      next.contact = patch.contact
    }
    if (patch.domain !== undefined && (patch.domain ?? undefined) !== tenant.domain) {
      changes.push("domain")
      if (patch.domain === null) delete next.domain
      else next.domain = patch.domain
    }
    if (patch.settings !== undefined && !sameSettings(patch.settings, tenant.settings)) {
      changes.push("settings")
      next.settings = patch.settings
    }
    const [first, ...rest] = changes
    if (first === undefined) return Option.none()
    const updated = new Tenant({ ...next, version: tenant.version + 1, updatedAt: stamp.at })
    const event = new TenantUpdated({
      ...eventBase(updated, stamp),
      ...(stamp.reason === undefined ? {} : { reason: stamp.reason }),
      changes: [first, ...rest],
      ...(changes.includes("code") ? { previousCode: tenant.code } : {}),
      ...(changes.includes("domain") && tenant.domain !== undefined ? { previousDomain: tenant.domain } : {})
    })
    return Option.some({ tenant: updated, event })
  })
}

const changeStatus = <E>(
  operation: Exclude<Operation, "update">,
  status: TenantStatus,
  makeEvent: (fields: ReturnType<typeof eventBase> & { readonly reason?: string }) => E
) =>
(tenant: Tenant, stamp: Stamp): Either.Either<Transition<E>, InvalidTransition> => {
  if (!canApply(tenant.status, operation)) {
    return Either.left(new InvalidTransition({ tenantId: tenant.id, status: tenant.status, operation }))
  }
  const { deletedAt: _deletedAt, ...props } = propsOf(tenant)
  const next = new Tenant({
    ...props,
    status,
    version: tenant.version + 1,
    updatedAt: stamp.at,
    ...(status === "deleted" ? { deletedAt: stamp.at } : {}),
    lastStatusChange: stamp.reason === undefined
      ? { actor: stamp.actor, at: stamp.at }
      : { actor: stamp.actor, at: stamp.at, reason: stamp.reason }
  })
  const base = eventBase(next, stamp)
  return Either.right({
    tenant: next,
    event: makeEvent(stamp.reason === undefined ? base : { ...base, reason: stamp.reason })
  })
}

/**
 * `pending` or `suspended` to `active`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const activate = changeStatus("activate", "active", (fields) => new TenantActivated(fields))

/**
 * `pending` or `active` to `suspended`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const suspend = changeStatus("suspend", "suspended", (fields) => new TenantSuspended(fields))

/**
 * Soft delete: any live status to `deleted`, with `deletedAt` set to the stamp's time.
 *
 * @since 0.1.0
 * @category combinators
 */
export const softDelete = changeStatus("delete", "deleted", (fields) => new TenantDeleted(fields))

/**
 * `deleted` back to `suspended`, with `deletedAt` cleared; someone must activate it again.
 *
 * @since 0.1.0
 * @category combinators
 */
export const restore = changeStatus("restore", "suspended", (fields) => new TenantRestored(fields))
