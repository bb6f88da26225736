/**
 * How to ask `TenantRepository.list` for tenants: filters, sort and page, and the page that comes back.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import type { Tenant } from "./Tenant.js"
import { StorableText, TenantStatus, Timestamp } from "./Tenant.js"

/**
 * The largest page `list` returns; asking for more is an `InvalidInput`, not a silently shorter page.
 *
 * @since 0.1.0
 * @category models
 */
export const MAX_PAGE_SIZE = 100

/**
 * @since 0.1.0
 * @category models
 */
export const DEFAULT_PAGE_SIZE = 20

/**
 * @since 0.1.0
 * @category models
 */
export const SortField = Schema.Literal("name", "code", "createdAt", "updatedAt")

/**
 * @since 0.1.0
 * @category models
 */
export type SortField = typeof SortField.Type

/**
 * @since 0.1.0
 * @category models
 */
export const SortDirection = Schema.Literal("asc", "desc")

/**
 * @since 0.1.0
 * @category models
 */
export type SortDirection = typeof SortDirection.Type

/**
 * A list query. Every field is optional:
 *
 * - `status`: one status or several.
 * - `search`: case-insensitive text found anywhere in the name or the code; `%`, `_` and `\` are plain
 *   characters, not wildcards. At most 100 characters, with no NUL and no unpaired surrogate (text no tenant
 *   field can hold, refused as it is on every layer).
 * - `createdFrom` (inclusive) and `createdBefore` (exclusive): a creation-time range.
 * - `includeDeleted` (default `false`): soft-deleted tenants are left out unless this is `true`; asking for
 *   `status: "deleted"` without it is an error rather than an empty page.
 * - `sortBy` (default `createdAt`) and `sortDirection` (default `desc`); ties are broken by id in the same
 *   direction, so pages never overlap. Names sort by their lower-cased Unicode code points.
 * - `page` (from 1, default 1) and `pageSize` (1 to {@link MAX_PAGE_SIZE}, default {@link DEFAULT_PAGE_SIZE}).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ListQuery = Schema.Struct({
  status: Schema.optionalWith(Schema.Union(TenantStatus, Schema.NonEmptyArray(TenantStatus)), { exact: true }),
  search: Schema.optionalWith(
    StorableText.pipe(Schema.maxLength(100, { message: () => "must be at most 100 characters" })),
    { exact: true }
  ),
  createdFrom: Schema.optionalWith(Timestamp, { exact: true }),
  createdBefore: Schema.optionalWith(Timestamp, { exact: true }),
  includeDeleted: Schema.optionalWith(Schema.Boolean, { exact: true, default: () => false }),
  sortBy: Schema.optionalWith(SortField, { exact: true, default: () => "createdAt" as const }),
  sortDirection: Schema.optionalWith(SortDirection, { exact: true, default: () => "desc" as const }),
  page: Schema.optionalWith(
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be an integer of at least 1" })),
    { exact: true, default: () => 1 }
  ),
  pageSize: Schema.optionalWith(
    Schema.Int.pipe(
      Schema.between(1, MAX_PAGE_SIZE, { message: () => `must be an integer from 1 to ${MAX_PAGE_SIZE}` })
    ),
    { exact: true, default: () => DEFAULT_PAGE_SIZE }
  )
}).pipe(
  Schema.filter((query) => {
    const statuses = query.status === undefined ? [] : typeof query.status === "string" ? [query.status] : query.status
    return query.includeDeleted || !statuses.includes("deleted") ?
      undefined :
      { path: ["status"], message: "asks for deleted tenants: set includeDeleted: true" }
  }),
  Schema.filter((query) =>
    query.createdFrom === undefined || query.createdBefore === undefined ||
      query.createdFrom.getTime() < query.createdBefore.getTime() ?
      undefined :
      { path: ["createdBefore"], message: "must be later than createdFrom" }
  )
)

/**
 * A list query as callers write it (every field optional).
 *
 * @since 0.1.0
 * @category models
 */
export type ListQueryInput = typeof ListQuery.Encoded

/**
 * A list query with its defaults filled in.
 *
 * @since 0.1.0
 * @category models
 */
export type ListQuery = typeof ListQuery.Type

/**
 * One page of tenants. `total` counts every tenant that matches, across all pages; a page past the last one is
 * empty but still reports the total.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page {
  readonly items: ReadonlyArray<Tenant>
  readonly total: number
  readonly page: number
  readonly pageSize: number
  readonly pageCount: number
}

/**
 * The number of tenants in each status, deleted ones included.
 *
 * @since 0.1.0
 * @category models
 */
export type StatusCounts = { readonly [S in TenantStatus]: number }
