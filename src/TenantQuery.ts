/**
 * How to ask `TenantRepository.list` for tenants: filters, sort and page, and the page that comes back.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { preview } from "./InvalidInput.js"
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
 * With `count: "estimate"`, a result the planner expects to hold more tenants than this is counted by its
 * estimate; a smaller one is counted exactly.
 *
 * @since 0.2.0
 * @category models
 */
export const ESTIMATE_ABOVE = 10_000

// A cursor holds one sort value (a name of at most 200 characters, lower-cased) and an id: far below this.
const MAX_CURSOR_LENGTH = 2_048

/**
 * How `list` counts the tenants that match: `exact` (a `count(*)`), `estimate` (the planner's estimate when it is
 * above {@link ESTIMATE_ABOVE}, exact below it; exact on the memory layer), or `none` (no count at all).
 *
 * @since 0.2.0
 * @category models
 */
export const CountMode = Schema.Literal("exact", "estimate", "none")

/**
 * @since 0.2.0
 * @category models
 */
export type CountMode = typeof CountMode.Type

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
 * - `after`: the `nextCursor` of the previous page of the same query, to read the page after it (keyset paging:
 *   it costs the same however deep the page, and a walk sees each tenant once while others are written). It
 *   cannot be combined with a `page` other than 1, and must come from a query with the same `sortBy` and
 *   `sortDirection`. A cursor marks a position in the sort order, not a result: with other filters it goes on
 *   from the same position.
 * - `count` (default `exact`): how the page's `total` is found, see {@link CountMode} and {@link Page}.
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
  ),
  after: Schema.optionalWith(
    Schema.String.pipe(
      Schema.maxLength(MAX_CURSOR_LENGTH, {
        message: (issue) => `must be the nextCursor of a page of this list, got ${preview(issue.actual)}`
      })
    ),
    { exact: true }
  ),
  count: Schema.optionalWith(CountMode, { exact: true, default: () => "exact" as const })
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
  ),
  // The cursor says where the page starts; a page number would say it a second time, perhaps otherwise.
  Schema.filter((query) =>
    query.after === undefined || query.page === 1 ?
      undefined :
      { path: ["page"], message: "cannot be combined with after: the cursor says where the page starts" }
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
 * One page of tenants.
 *
 * - `items`: at most `pageSize` tenants.
 * - `nextCursor`: pass it as `after` to read the next page; `undefined` when no tenant follows this page (`list`
 *   reads one row more than the page to know, so the last page has none and no walk ends on an empty page).
 * - `page`: the page's number: the one asked for, or on a page read `after` a cursor, its place in the walk
 *   (counted with the page size of each step).
 * - `total`, with `totalIs` saying what it is:
 *   - `"exact"`: every tenant that matches, across all pages (counted in the same snapshot as the page on
 *     PostgreSQL);
 *   - `"estimate"`: the PostgreSQL planner's estimate (with `count: "estimate"`, above {@link ESTIMATE_ABOVE}); may
 *     be off either way, typically by a few percent after `ANALYZE`, much more for a `search`;
 *   - `"atLeast"`: with `count: "none"`, nothing was counted: `total` is the tenants known to match from the walk,
 *     those before this page and on it, plus one when a next page exists (0 for an empty page asked by number).
 * - `pageCount`: `Math.ceil(total / pageSize)`, with the same meaning as `total` (at least that many with
 *   `"atLeast"`).
 *
 * A page past the last one is empty but still reports the total.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page extends PageFields {
  readonly totalIs: "exact" | "estimate" | "atLeast"
}

/**
 * The fields every {@link Page} has.
 *
 * @since 0.2.0
 * @category models
 */
export interface PageFields {
  readonly items: ReadonlyArray<Tenant>
  readonly total: number
  readonly page: number
  readonly pageSize: number
  readonly pageCount: number
  readonly nextCursor: string | undefined
}

/**
 * The number of tenants in each status, deleted ones included.
 *
 * @since 0.1.0
 * @category models
 */
export type StatusCounts = { readonly [S in TenantStatus]: number }
