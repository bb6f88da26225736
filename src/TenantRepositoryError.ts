/**
 * The errors a `TenantRepository` fails with, the same for every layer.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { TenantId } from "./Tenant.js"

/**
 * No tenant has this id (a soft-deleted tenant still counts as existing).
 *
 * @since 0.1.0
 * @category errors
 */
export class TenantNotFound extends Schema.TaggedError<TenantNotFound>("tenant-infra/TenantNotFound")(
  "TenantNotFound",
  { tenantId: TenantId }
) {
  override get message(): string {
    return `Tenant ${this.tenantId} does not exist`
  }
}

/**
 * Another tenant already holds this id, or (among live tenants) this code or domain.
 *
 * @since 0.1.0
 * @category errors
 */
export class TenantAlreadyExists extends Schema.TaggedError<TenantAlreadyExists>("tenant-infra/TenantAlreadyExists")(
  "TenantAlreadyExists",
  {
    field: Schema.Literal("id", "code", "domain"),
    value: Schema.String
  }
) {
  override get message(): string {
    return `A tenant with ${this.field} '${this.value}' already exists`
  }
}

/**
 * The tenant changed since it was read: its stored version is not the one the write expected.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyConflict extends Schema.TaggedError<ConcurrencyConflict>("tenant-infra/ConcurrencyConflict")(
  "ConcurrencyConflict",
  {
    tenantId: TenantId,
    expectedVersion: Schema.Int,
    actualVersion: Schema.Int
  }
) {
  override get message(): string {
    return `Tenant ${this.tenantId} is at version ${this.actualVersion}, not ${this.expectedVersion}: read it again`
  }
}

/**
 * The store failed: the database was unreachable, a query failed, a stored row did not decode. `operation`
 * names the repository method; `cause` keeps the driver's error. The message never holds query parameters.
 *
 * `reason` says what a caller can know of a write:
 * - absent: the operation failed and, for a write, nothing was stored;
 * - `"Timeout"`: a read had no answer within the repository's timeout;
 * - `"OutcomeUnknown"`: a write may or may not have been stored (its COMMIT's answer was lost and the database
 *   could not be asked in time, or it ran out of time). Retrying it with the same tenant and events is safe:
 *   a retry of a write that was stored succeeds.
 *
 * @since 0.1.0
 * @category errors
 */
export class RepositoryError extends Schema.TaggedError<RepositoryError>("tenant-infra/RepositoryError")(
  "RepositoryError",
  {
    operation: Schema.String,
    detail: Schema.String,
    reason: Schema.optionalWith(Schema.Literal("Timeout", "OutcomeUnknown"), { exact: true }),
    cause: Schema.optionalWith(Schema.Defect, { exact: true })
  }
) {
  override get message(): string {
    return `TenantRepository.${this.operation} failed: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type TenantRepositoryError = TenantNotFound | TenantAlreadyExists | ConcurrencyConflict | RepositoryError

/**
 * @since 0.1.0
 * @category errors
 */
export const TenantRepositoryError = Schema.Union(
  TenantNotFound,
  TenantAlreadyExists,
  ConcurrencyConflict,
  RepositoryError
)
