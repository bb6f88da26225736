/**
 * Rules every TenantRepository layer shares, so that memory and PostgreSQL agree to the character: write
 * invariants, search normalisation, sort keys, paging.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as InvalidInput from "../InvalidInput.js"
import type { Tenant, TenantStatus } from "../Tenant.js"
import {
  Hostname,
  isTenantId,
  normalizeCode,
  normalizeHostname,
  normalizeName,
  StorableText,
  TenantCode,
  TenantId
} from "../Tenant.js"
import type { TenantCreated, TenantEvent } from "../TenantEvent.js"
import { MAX_LIST_LIMIT } from "../TenantOutbox.js"
import type { Page, SortField } from "../TenantQuery.js"
import { ListQuery, SortDirection } from "../TenantQuery.js"

const decodeListQuery = InvalidInput.decode("list query", ListQuery, { dates: true })

/** The lower-cased name that search matches and name sorting orders by. */
export const nameKey = (name: string): string => name.toLowerCase()

/** The lower-cased, whitespace-collapsed text to look for, or undefined when there is none. */
export const searchNeedle = (search: string | undefined): string | undefined => {
  if (search === undefined) return undefined
  const needle = nameKey(normalizeName(search))
  return needle === "" ? undefined : needle
}

/** A LIKE pattern that finds `needle` anywhere, with `\`, `%` and `_` matched literally (ESCAPE '\'). */
export const likePattern = (needle: string): string => `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

export const statusesOf = (status: ListQuery["status"]): ReadonlyArray<TenantStatus> | undefined =>
  status === undefined ? undefined : typeof status === "string" ? [status] : status

/**
 * Orders strings by Unicode code point, as PostgreSQL's "C" collation orders UTF-8 text. Plain `<` compares UTF-16
 * code units, which puts characters beyond U+FFFF before U+E000-U+FFFF; the fix-up moves surrogates above them.
 */
export const compareCodePoints = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return fixUp(x) - fixUp(y)
  }
  return a.length - b.length
}

const fixUp = (unit: number): number => unit >= 0xd800 ? (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000) : unit

/** A tenant's place in a sort order: the text of a name (its key) or code, the milliseconds of a time. */
type SortValue = string | number

const textValueOf: Record<"name" | "code", (tenant: Tenant) => string> = {
  name: (tenant) => nameKey(tenant.name),
  code: (tenant) => tenant.code
}

const timeValueOf: Record<"createdAt" | "updatedAt", (tenant: Tenant) => number> = {
  createdAt: (tenant) => tenant.createdAt.getTime(),
  updatedAt: (tenant) => tenant.updatedAt.getTime()
}

const sortValueOf = (field: SortField): (tenant: Tenant) => SortValue =>
  field === "name" || field === "code" ? textValueOf[field] : timeValueOf[field]

// A sort field's values are all text or all numbers (the cursor's schema holds it to that too).
const compareValues = (a: SortValue, b: SortValue): number =>
  typeof a === "number" && typeof b === "number" ? a - b : compareCodePoints(String(a), String(b))

/** Where a page read `after` a cursor starts: just past the previous page's last row. */
export interface ListPosition {
  /** The last row's sort value: text for `name` (its lower-cased key) and `code`, milliseconds for times. */
  readonly value: SortValue
  readonly id: string
  /** How many rows the walk has read up to and including that row, which numbers the pages that follow. */
  readonly seen: number
}

/** The list order: the sort field, then the id, both in the query's direction. */
export const listOrder = (query: ListQuery) => {
  const sign = query.sortDirection === "asc" ? 1 : -1
  const valueOf = sortValueOf(query.sortBy)
  return (a: Tenant, b: Tenant): number =>
    sign * (compareValues(valueOf(a), valueOf(b)) || compareCodePoints(a.id, b.id))
}

/**
 * Whether a tenant comes after a position in the list order: `(value, id) > (last value, last id)` ascending,
 * `<` descending; PostgreSQL's keyset predicate (see `pgList`) says the same of the same values.
 */
export const comesAfter = (query: ListQuery, position: ListPosition) => {
  const sign = query.sortDirection === "asc" ? 1 : -1
  const valueOf = sortValueOf(query.sortBy)
  return (tenant: Tenant): boolean =>
    sign * (compareValues(valueOf(tenant), position.value) || compareCodePoints(tenant.id, position.id)) > 0
}

export const matches = (query: ListQuery) => {
  const statuses = statusesOf(query.status)
  const needle = searchNeedle(query.search)
  return (tenant: Tenant): boolean =>
    (query.includeDeleted || tenant.status !== "deleted") &&
    (statuses === undefined || statuses.includes(tenant.status)) &&
    (needle === undefined || nameKey(tenant.name).includes(needle) || tenant.code.includes(needle)) &&
    (query.createdFrom === undefined || tenant.createdAt.getTime() >= query.createdFrom.getTime()) &&
    (query.createdBefore === undefined || tenant.createdAt.getTime() < query.createdBefore.getTime())
}

// A cursor is base64url of a short JSON list: [sortBy, sortDirection, value, id, seen]. Text values are text every
// store can hold and times are within the years every store can hold, so a cursor that decodes never makes
// PostgreSQL fail where memory would answer.
const Seen = Schema.Int.pipe(Schema.nonNegative())
const TimeMillis = Schema.Int.pipe(
  Schema.between(Date.parse("0001-01-01T00:00:00.000Z"), Date.parse("9999-12-31T23:59:59.999Z"))
)
const CursorFields = Schema.Union(
  Schema.Tuple(Schema.Literal("name", "code"), SortDirection, StorableText, TenantId, Seen),
  Schema.Tuple(Schema.Literal("createdAt", "updatedAt"), SortDirection, TimeMillis, TenantId, Seen)
)
const Cursor = Schema.compose(Schema.StringFromBase64Url, Schema.parseJson(CursorFields))
const decodeCursor = Schema.decodeUnknownEither(Cursor)
const encodeCursor = Schema.encodeSync(Cursor)

/** The cursor of the page that follows `last`, the `seen`th row of the walk. */
const cursorAfter = (query: ListQuery, last: Tenant, seen: number): string =>
  encodeCursor(
    query.sortBy === "name" || query.sortBy === "code" ?
      [query.sortBy, query.sortDirection, textValueOf[query.sortBy](last), last.id, seen] :
      [query.sortBy, query.sortDirection, timeValueOf[query.sortBy](last), last.id, seen]
  )

/** A list query and, when it continues from a cursor, the position it continues from. */
export interface ListRequest {
  readonly query: ListQuery
  readonly after: ListPosition | undefined
}

const positionOf = (query: ListQuery, after: string): Either.Either<ListPosition, InvalidInput.InvalidInput> =>
  Either.match(decodeCursor(after), {
    onLeft: () =>
      Either.left(InvalidInput.InvalidInput.single(
        "list query",
        ["after"],
        `must be the nextCursor of a page of this list, got ${InvalidInput.preview(after)}`
      )),
    onRight: ([sortBy, sortDirection, value, id, seen]) =>
      sortBy === query.sortBy && sortDirection === query.sortDirection ?
        Either.right({ value, id, seen }) :
        Either.left(InvalidInput.InvalidInput.single(
          "list query",
          ["after"],
          `is a cursor of a list sorted by ${sortBy} ${sortDirection}, not ${query.sortBy} ${query.sortDirection}: ` +
            `ask with the sort it was made for, or start again without after`
        ))
  })

/** Decodes a list query (see `TenantQuery.ListQuery`), with the position its `after` cursor names. */
export const decodeListRequest = (input: unknown): Either.Either<ListRequest, InvalidInput.InvalidInput> =>
  Either.flatMap(
    decodeListQuery(input),
    (query): Either.Either<ListRequest, InvalidInput.InvalidInput> =>
      query.after === undefined ?
        Either.right({ query, after: undefined }) :
        Either.map(positionOf(query, query.after), (after) => ({ query, after }))
  )

/** The rows a page skips when it is asked by number; one read `after` a cursor skips none. */
export const offsetOf = ({ after, query }: ListRequest): number =>
  after === undefined ? (query.page - 1) * query.pageSize : 0

/** The rows to read for a page: one more than it holds, to know whether a next page exists. */
export const rowsToRead = ({ query }: ListRequest): number => query.pageSize + 1

/** How a layer counted the matching tenants: exactly, by the planner's estimate, or not at all. */
export type Counted = { readonly exact: number } | { readonly estimate: number } | "none"

/**
 * The page of `rows`, read in the list order from the page's start (at most {@link rowsToRead}: any row past
 * the page only says that a next page exists).
 */
export const pageOf = (request: ListRequest, rows: ReadonlyArray<Tenant>, counted: Counted): Page => {
  const { after, query } = request
  const items = rows.slice(0, query.pageSize)
  const hasNext = rows.length > query.pageSize
  const before = after === undefined ? offsetOf(request) : after.seen
  const last = items[items.length - 1]
  const fields = {
    items,
    page: after === undefined ? query.page : Math.floor(after.seen / query.pageSize) + 1,
    pageSize: query.pageSize,
    nextCursor: hasNext && last !== undefined ? cursorAfter(query, last, before + items.length) : undefined
  }
  const counts = (total: number) => ({ total, pageCount: Math.ceil(total / query.pageSize) })
  if (counted === "none") {
    // What the walk has seen: the rows before this page (unknown past the end of a page asked by number), the
    // page, and the row that shows a next page exists.
    const known = items.length > 0 || after !== undefined ? before + items.length + (hasNext ? 1 : 0) : 0
    return { ...fields, ...counts(known), totalIs: "atLeast" }
  }
  return "exact" in counted ?
    { ...fields, ...counts(counted.exact), totalIs: "exact" } :
    { ...fields, ...counts(counted.estimate), totalIs: "estimate" }
}

export const zeroCounts = (): { -readonly [S in TenantStatus]: number } => ({
  pending: 0,
  active: 0,
  suspended: 0,
  deleted: 0
})

/** Ids that are not tenant ids can name no tenant; looking one up answers "none" instead of a database error. */
export { isTenantId }

const isTenantCode = Schema.is(TenantCode)
const isHostname = Schema.is(Hostname)

// A lookup whose input can name no tenant (not a string, from a caller in JavaScript; not a valid code or host
// name once normalised: a NUL, a lone surrogate, megabytes of text) answers "none" on every layer without asking
// its store: PostgreSQL refuses some of that text with an error, and a cache would spend its room on it.

// No code (at most 50 characters) or host name (253) comes near this once trimmed, and normalising a trimmed text
// keeps its length but for a trailing dot: longer input is refused before it is lower-cased and scanned, which
// takes tens of milliseconds for 10 MB.
const MAX_TRIMMED_LOOKUP = 4096

const trimmedWithin = (input: string): boolean =>
  input.length <= MAX_TRIMMED_LOOKUP || input.trim().length <= MAX_TRIMMED_LOOKUP

/** The code a lookup by code looks for, normalised, or undefined when the input can name no tenant. */
export const codeToFind = (input: unknown): string | undefined => {
  if (typeof input !== "string" || !trimmedWithin(input)) return undefined
  const code = normalizeCode(input)
  return isTenantCode(code) ? code : undefined
}

/** The host name a lookup by domain looks for, normalised, or undefined when the input can name no tenant. */
export const domainToFind = (input: unknown): string | undefined => {
  if (typeof input !== "string" || !trimmedWithin(input)) return undefined
  const domain = normalizeHostname(input)
  return isHostname(domain) ? domain : undefined
}

const statusAfter: Partial<Record<TenantEvent["_tag"], TenantStatus>> = {
  TenantCreated: "pending",
  TenantActivated: "active",
  TenantSuspended: "suspended",
  TenantDeleted: "deleted",
  TenantRestored: "suspended"
}

const describeEvents = (events: ReadonlyArray<TenantEvent>) =>
  events.map((event) => `${event._tag} v${event.version} (${event.tenant.status})`).join(", ")

/** Each event carries the tenant it produced; its status must be the one the event's kind leads to. */
const eventMatchesItsTenant = (event: TenantEvent): boolean =>
  event.tenant.id === event.tenantId &&
  event.tenant.version === event.version &&
  (statusAfter[event._tag] === undefined || statusAfter[event._tag] === event.tenant.status)

/**
 * A write whose events do not describe its tenant is a bug in the caller (a tenant built by hand rather than by
 * `TenantLifecycle`, events left out or reused), not a condition to handle: it dies with a message that says
 * what is inconsistent, and nothing is written.
 */
export const checkInsert = (tenant: Tenant, event: TenantCreated): Effect.Effect<void> =>
  tenant.version === 1 && tenant.status === "pending" && event._tag === "TenantCreated" &&
    event.tenantId === tenant.id && eventMatchesItsTenant(event) ?
    Effect.void :
    Effect.dieMessage(
      `TenantRepository.insert: expects a new pending tenant (version 1) and the TenantCreated event that made it, ` +
        `got ${tenant.status} v${tenant.version} with ${describeEvents([event])}`
    )

export const checkSave = (
  tenant: Tenant,
  events: ReadonlyArray<TenantEvent>,
  expectedVersion: number
): Effect.Effect<void> => {
  const last = events[events.length - 1]
  const consistent = last !== undefined &&
    tenant.version === expectedVersion + events.length &&
    last.tenant.status === tenant.status &&
    new Set(events.map((event) => event.eventId)).size === events.length &&
    events.every((event, i) =>
      event.tenantId === tenant.id && event.version === expectedVersion + i + 1 && event._tag !== "TenantCreated" &&
      eventMatchesItsTenant(event)
    )
  return consistent ? Effect.void : Effect.dieMessage(
    `TenantRepository.save: tenant ${tenant.id} (${tenant.status} v${tenant.version}) read at v${expectedVersion} ` +
      `needs one event per version in between, each with the tenant it produced; got [${describeEvents(events)}]`
  )
}

/** Reusing a stamp gives two changes one event id; the outbox keeps event ids unique, so that is refused. */
export const duplicateEventId = (eventId: string): Effect.Effect<never> =>
  Effect.dieMessage(`event ${eventId} is already in the outbox: every change needs a fresh Stamp`)

/** What the outbox holds under an event id: enough to tell a repeated write from a reused stamp. */
export interface StoredEvent {
  readonly eventId: string
  readonly tenantId: string
  readonly tenantVersion: number
  readonly eventType: string
}

/**
 * Whether a write is already stored, judged by its events: a write whose outcome was unknown (a lost COMMIT
 * answer, a timeout) may be retried with the same events, and a retry of one that did commit must succeed
 * rather than fail with `ConcurrencyConflict` or `TenantAlreadyExists`. All its events in the outbox, each for the
 * same tenant, version and kind: stored. None: not stored. Anything in between is a reused stamp, the caller's
 * bug, and dies.
 */
export const storedAlready = (
  events: ReadonlyArray<TenantEvent>,
  stored: ReadonlyArray<StoredEvent>
): Effect.Effect<boolean> => {
  if (stored.length === 0) return Effect.succeed(false)
  const byId = new Map(stored.map((entry) => [entry.eventId, entry]))
  const same = events.every((event) => {
    const entry = byId.get(event.eventId)
    return entry !== undefined && entry.tenantId === event.tenantId && entry.tenantVersion === event.version &&
      entry.eventType === event._tag
  })
  return same ? Effect.succeed(true) : duplicateEventId(stored.map((entry) => entry.eventId).join(", "))
}

export const decodeOutboxOptions = InvalidInput.decode(
  "outbox query",
  Schema.Struct({
    // Absent and undefined alike mean "not given", as `ListOptions` says.
    tenantId: Schema.optional(TenantId),
    afterPosition: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
    limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, MAX_LIST_LIMIT)), { default: () => 100 })
  })
)
