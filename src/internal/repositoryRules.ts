/**
 * Rules every TenantRepository layer shares, so that memory and PostgreSQL agree to the character: write
 * invariants, search normalisation, sort keys, paging.
 */
import * as Effect from "effect/Effect"
import * as InvalidInput from "../InvalidInput.js"
import type { Tenant, TenantStatus } from "../Tenant.js"
import type { TenantCreated, TenantEvent } from "../TenantEvent.js"
import type { Page } from "../TenantQuery.js"
import { ListQuery } from "../TenantQuery.js"

export const decodeListQuery = InvalidInput.decode("list query", ListQuery)

/** The lower-cased name that search matches and name sorting orders by. */
export const nameKey = (name: string): string => name.toLowerCase()

/** The lower-cased, whitespace-collapsed text to look for, or undefined when there is none. */
export const searchNeedle = (search: string | undefined): string | undefined => {
  if (search === undefined) return undefined
  const needle = search.normalize("NFC").trim().replace(/\s+/gu, " ").toLowerCase()
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Ids that are not UUIDs can name no tenant; looking one up answers "none" instead of a database error. */
export const isUuid = (id: string): boolean => UUID.test(id)

export const normalizeDomain = (domain: string): string => domain.trim().toLowerCase().replace(/\.$/, "")

/**
 * A write whose events do not belong to its tenant is a bug in the caller, not a condition to handle: it dies
 * with a message that says what is inconsistent.
 */
export const checkInsert = (tenant: Tenant, event: TenantCreated): Effect.Effect<void> =>
  tenant.version !== 1 || event.version !== 1 || event.tenantId !== tenant.id || event._tag !== "TenantCreated" ?
    Effect.dieMessage(
      `TenantRepository.insert: expects a new tenant (version 1) and its TenantCreated event, got version ${tenant.version} and ${event._tag} v${event.version} for ${event.tenantId}`
    ) :
    Effect.void

export const checkSave = (
  tenant: Tenant,
  events: ReadonlyArray<TenantEvent>,
  expectedVersion: number
): Effect.Effect<void> => {
  const consistent = events.length > 0 &&
    tenant.version === expectedVersion + events.length &&
    events.every((event, i) =>
      event.tenantId === tenant.id && event.version === expectedVersion + i + 1 && event._tag !== "TenantCreated"
    )
  return consistent ? Effect.void : Effect.dieMessage(
    `TenantRepository.save: tenant ${tenant.id} at version ${tenant.version} read at ${expectedVersion} needs one event per version in between, got [${
      events.map((event) => `${event._tag} v${event.version}`).join(", ")
    }]`
  )
}
