/**
 * The domain events a tenant raises, one tagged class each, joined in the {@link TenantEvent} union. Every
 * event carries the tenant as it was right after the change, so a consumer (notifications, cache
 * invalidation) never has to read the tenant back.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { Actor, Hostname, Reason, Tenant, TenantCode, TenantId, TimestampFromString, Version } from "./Tenant.js"

const eventFields = {
  eventId: Schema.UUID,
  tenantId: TenantId,
  occurredAt: TimestampFromString,
  /** The aggregate version this event produced. */
  version: Version,
  actor: Actor,
  /** The tenant as it was right after the event. */
  tenant: Tenant
}

const withReason = {
  ...eventFields,
  reason: Schema.optionalWith(Reason, { exact: true })
}

/**
 * A tenant was created (status `pending`, version 1).
 *
 * @since 0.1.0
 * @category models
 */
export class TenantCreated
  extends Schema.TaggedClass<TenantCreated>("tenant-infra/TenantCreated")("TenantCreated", eventFields)
{}

/**
 * A tenant became active.
 *
 * @since 0.1.0
 * @category models
 */
export class TenantActivated
  extends Schema.TaggedClass<TenantActivated>("tenant-infra/TenantActivated")("TenantActivated", withReason)
{}

/**
 * A tenant was suspended.
 *
 * @since 0.1.0
 * @category models
 */
export class TenantSuspended
  extends Schema.TaggedClass<TenantSuspended>("tenant-infra/TenantSuspended")("TenantSuspended", withReason)
{}

/**
 * A tenant was soft-deleted: status `deleted`, `deletedAt` set.
 *
 * @since 0.1.0
 * @category models
 */
export class TenantDeleted
  extends Schema.TaggedClass<TenantDeleted>("tenant-infra/TenantDeleted")("TenantDeleted", withReason)
{}

/**
 * A deleted tenant was restored; it is `suspended` until someone activates it.
 *
 * @since 0.1.0
 * @category models
 */
export class TenantRestored
  extends Schema.TaggedClass<TenantRestored>("tenant-infra/TenantRestored")("TenantRestored", withReason)
{}

/**
 * The fields a {@link TenantUpdated} event can name as changed.
 *
 * @since 0.1.0
 * @category models
 */
export const UpdatedField = Schema.Literal("code", "name", "contact", "domain", "settings")

/**
 * @since 0.1.0
 * @category models
 */
export type UpdatedField = typeof UpdatedField.Type

/**
 * A tenant's details changed. `changes` names the fields, `reason` says why when one was given;
 * `previousCode` and `previousDomain` keep the values that were replaced, so that whoever indexed the tenant by
 * them can let go.
 *
 * @since 0.1.0
 * @category models
 */
export class TenantUpdated extends Schema.TaggedClass<TenantUpdated>("tenant-infra/TenantUpdated")("TenantUpdated", {
  ...withReason,
  changes: Schema.NonEmptyArray(UpdatedField),
  previousCode: Schema.optionalWith(TenantCode, { exact: true }),
  previousDomain: Schema.optionalWith(Hostname, { exact: true })
}) {}

/**
 * Every tenant event. Encoded with `Schema.encode(TenantEvent)`, an event becomes the JSON stored in the
 * outbox; `Schema.decodeUnknown(TenantEvent)` reads it back.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantEvent = Schema.Union(
  TenantCreated,
  TenantActivated,
  TenantSuspended,
  TenantDeleted,
  TenantRestored,
  TenantUpdated
)

/**
 * @since 0.1.0
 * @category models
 */
export type TenantEvent = typeof TenantEvent.Type

/**
 * The JSON form of an event, as stored in the outbox.
 *
 * @since 0.1.0
 * @category models
 */
export type TenantEventJson = typeof TenantEvent.Encoded

/**
 * The `_tag` of each event type.
 *
 * @since 0.1.0
 * @category models
 */
export type TenantEventType = TenantEvent["_tag"]
