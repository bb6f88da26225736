/**
 * Rules every TenantRepository layer shares, so that memory and PostgreSQL agree to the character: write
 * invariants, search normalisation, sort keys, paging.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as InvalidInput from "../InvalidInput.js"
import type { Tenant, TenantStatus } from "../Tenant.js"
import {
  Hostname,
  isTenantId,
  normalizeCode,
  normalizeHostname,
  normalizeName,
  TenantCode,
  TenantId
} from "../Tenant.js"
import type { TenantCreated, TenantEvent } from "../TenantEvent.js"
import { MAX_LIST_LIMIT } from "../TenantOutbox.js"
import type { Page } from "../TenantQuery.js"
import { ListQuery } from "../TenantQuery.js"

export const decodeListQuery = InvalidInput.decode("list query", ListQuery, { dates: true })

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

const compareBy: Record<ListQuery["sortBy"], (a: Tenant, b: Tenant) => number> = {
  name: (a, b) => compareCodePoints(nameKey(a.name), nameKey(b.name)),
  code: (a, b) => compareCodePoints(a.code, b.code),
  createdAt: (a, b) => a.createdAt.getTime() - b.createdAt.getTime(),
  updatedAt: (a, b) => a.updatedAt.getTime() - b.updatedAt.getTime()
}

/** The list order: the sort field, then the id, both in the query's direction. */
export const listOrder = (query: ListQuery) => {
  const sign = query.sortDirection === "asc" ? 1 : -1
  const primary = compareBy[query.sortBy]
  return (a: Tenant, b: Tenant): number => sign * (primary(a, b) || compareCodePoints(a.id, b.id))
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

export const offsetOf = (query: ListQuery): number => (query.page - 1) * query.pageSize

export const pageOf = (query: ListQuery, items: ReadonlyArray<Tenant>, total: number): Page => ({
  items,
  total,
  page: query.page,
  pageSize: query.pageSize,
  pageCount: Math.ceil(total / query.pageSize)
})

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
