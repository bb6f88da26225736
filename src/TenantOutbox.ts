/**
 * The transactional outbox: every event a `TenantRepository` stores is written, in the same transaction as the
 * tenant, as one {@link OutboxEntry}. This port reads the entries back; the relay that delivers them builds on
 * it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { InvalidInput } from "./InvalidInput.js"
import { TenantId, TimestampFromString, Version } from "./Tenant.js"
import { TenantEvent } from "./TenantEvent.js"
import type { RepositoryError } from "./TenantRepositoryError.js"

/**
 * One stored event. `position` orders entries in the order they were recorded; `event` is the event itself,
 * stored as the JSON of `Schema.encode(TenantEvent)`.
 *
 * @since 0.1.0
 * @category models
 */
export class OutboxEntry extends Schema.Class<OutboxEntry>("tenant-infra/OutboxEntry")({
  position: Schema.Int,
  eventId: Schema.UUID,
  tenantId: TenantId,
  tenantVersion: Version,
  eventType: Schema.Literal(
    "TenantCreated",
    "TenantActivated",
    "TenantSuspended",
    "TenantDeleted",
    "TenantRestored",
    "TenantUpdated"
  ) satisfies Schema.Schema<TenantEvent["_tag"]>,
  occurredAt: TimestampFromString,
  recordedAt: TimestampFromString,
  event: TenantEvent
}) {}

/**
 * Which entries to read: one tenant's, those after a position, at most `limit` (default 100, at most 1,000).
 * Values out of range fail with `InvalidInput`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  readonly tenantId?: TenantId | undefined
  readonly afterPosition?: number | undefined
  readonly limit?: number | undefined
}

/**
 * The most entries one `list` call returns, here and in `DeliveryLedger`.
 *
 * @since 0.1.0
 * @category models
 */
export const MAX_LIST_LIMIT = 1000

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Entries in position order. */
  readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<OutboxEntry>, InvalidInput | RepositoryError>
}

/**
 * The outbox of the store behind `TenantRepository`; `TenantRepository.layerMemory` and `TenantRepository/Pg` provide both; `TenantOutbox/Pg` provides it alone.
 *
 * @since 0.1.0
 * @category services
 */
export class TenantOutbox extends Context.Tag("tenant-infra/TenantOutbox")<TenantOutbox, Service>() {}
