/**
 * How tenants are kept in a `CacheStore`: the key scheme and the value codec, as pure functions, so that every
 * reader and every invalidator of cached tenants (see `CachedTenantRepository`) agrees on both.
 *
 * Keys, each under an optional prefix (default none):
 *
 * - `tenant:v1:id:<id>`: the live tenant with this id;
 * - `tenant:v1:code:<code>`: the live tenant with this code, normalised as `Tenant.normalizeCode` does;
 * - `tenant:v1:domain:<domain>`: the live tenant with this domain, normalised as `Tenant.normalizeHostname` does.
 *
 * `v1` names the value encoding. A change that readers of the old encoding cannot decode moves every key to
 * `v2`, so that processes of both releases can share one store during a deployment without reading each
 * other's values. Within one encoding a value that does not decode is reported as such, and readers treat it
 * as a miss.
 *
 * Values: a found tenant is the JSON of `Schema.encode(Tenant)` (dates as ISO strings, optional fields absent,
 * never `null`), decoded back with the `Tenant` schema, so what comes out is equal to what went in. A lookup
 * known to find nothing is stored as {@link ABSENT}, which is not JSON and so can never be mistaken for a
 * tenant.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { codeToFind, domainToFind } from "./internal/repositoryRules.js"
import { copyTenant } from "./internal/tenantFields.js"
import { isTenantId, normalizeCode, normalizeHostname, reconstitute, Tenant } from "./Tenant.js"
import type { TenantEvent } from "./TenantEvent.js"

/**
 * The three ways a tenant is looked up, each with keys of its own.
 *
 * @since 0.1.0
 * @category models
 */
export type Lookup = "id" | "code" | "domain"

const NAMESPACE = "tenant:v1:"

/**
 * The key of the live tenant with this id. Ids are stored in lower case and taken as they are.
 *
 * @since 0.1.0
 * @category utils
 */
export const idKey = (id: string, prefix = ""): string => `${prefix}${NAMESPACE}id:${id}`

/**
 * The key of the live tenant with this code; `"Acme_Corp"` and `"acme-corp"` share one key, as they find one
 * tenant.
 *
 * @since 0.1.0
 * @category utils
 */
export const codeKey = (code: string, prefix = ""): string => `${prefix}${NAMESPACE}code:${normalizeCode(code)}`

/**
 * The key of the live tenant with this domain; `"Acme.Example.com."` and `"acme.example.com"` share one key.
 *
 * @since 0.1.0
 * @category utils
 */
export const domainKey = (domain: string, prefix = ""): string =>
  `${prefix}${NAMESPACE}domain:${normalizeHostname(domain)}`

/**
 * Every key under which a tenant can be cached: its id, its code and, when it has one, its domain.
 *
 * @since 0.1.0
 * @category utils
 */
export const keysOf = (tenant: Tenant, prefix = ""): ReadonlyArray<string> =>
  tenant.domain === undefined
    ? [idKey(tenant.id, prefix), codeKey(tenant.code, prefix)]
    : [idKey(tenant.id, prefix), codeKey(tenant.code, prefix), domainKey(tenant.domain, prefix)]

/**
 * The key a lookup reads, or `None` when no stored tenant can answer the input (an id that is not a UUID in
 * lower case, a code or domain that is invalid once normalised, anything but a string). Such lookups are not
 * cached: a cache that remembered every mistyped or hostile input would spend its room on them.
 *
 * @since 0.1.0
 * @category utils
 */
export const lookupKey = (lookup: Lookup, input: unknown, prefix = ""): Option.Option<string> => {
  switch (lookup) {
    case "id":
      return isTenantId(input) ? Option.some(idKey(input, prefix)) : Option.none()
    case "code": {
      const code = codeToFind(input)
      return code === undefined ? Option.none() : Option.some(codeKey(code, prefix))
    }
    case "domain": {
      const domain = domainToFind(input)
      return domain === undefined ? Option.none() : Option.some(domainKey(domain, prefix))
    }
  }
}

/**
 * The keys a write touched, as they are invalidated: every code and domain key in one batch, then every id key in
 * another. The order is a rule: a lookup by code or domain fills the tenant's id key only once its own fill was
 * accepted, and that is safe only because a write moves the code and domain keys before the id key (see
 * `CachedTenantRepository`). Each key comes with the lookup it serves.
 *
 * @since 0.1.0
 * @category utils
 */
export interface WriteKeys {
  readonly lookups: ReadonlyArray<readonly [Lookup, string]>
  readonly ids: ReadonlyArray<readonly [Lookup, string]>
}

const writeKeys = (lookups: ReadonlyMap<string, Lookup>, ids: ReadonlyMap<string, Lookup>): WriteKeys => ({
  lookups: Array.from(lookups, ([key, lookup]) => [lookup, key] as const),
  ids: Array.from(ids, ([key, lookup]) => [lookup, key] as const)
})

/**
 * Every key a write of `tenant` with `events` touched: those of the tenant and of every state its events carry,
 * and those of the code and domain that an update replaced, each once.
 *
 * @since 0.1.0
 * @category utils
 */
export const keysOfWrite = (tenant: Tenant, events: ReadonlyArray<TenantEvent>, prefix = ""): WriteKeys => {
  const lookups = new Map<string, Lookup>()
  const ids = new Map<string, Lookup>()
  for (const state of [tenant, ...events.map((event) => event.tenant)]) {
    ids.set(idKey(state.id, prefix), "id")
    lookups.set(codeKey(state.code, prefix), "code")
    if (state.domain !== undefined) lookups.set(domainKey(state.domain, prefix), "domain")
  }
  for (const event of events) {
    if (event._tag !== "TenantUpdated") continue
    if (event.previousCode !== undefined) lookups.set(codeKey(event.previousCode, prefix), "code")
    if (event.previousDomain !== undefined) lookups.set(domainKey(event.previousDomain, prefix), "domain")
  }
  return writeKeys(lookups, ids)
}

/**
 * What a committed write changed of one tenant's keys, as a feed of the repository's changes reports it: the
 * tenant's id, code and domain after the write, and the code and domain it replaced.
 *
 * @since 0.1.0
 * @category utils
 */
export interface KeyChange {
  readonly tenantId: string
  readonly code: string
  readonly domain?: string | undefined
  readonly previousCode?: string | undefined
  readonly previousDomain?: string | undefined
}

/**
 * Every key the writes behind `changes` touched, each once: the keys a process that did not make the writes
 * invalidates.
 *
 * @since 0.1.0
 * @category utils
 */
export const keysOfChanges = (changes: Iterable<KeyChange>, prefix = ""): WriteKeys => {
  const lookups = new Map<string, Lookup>()
  const ids = new Map<string, Lookup>()
  for (const change of changes) {
    ids.set(idKey(change.tenantId, prefix), "id")
    for (const code of [change.code, change.previousCode]) {
      if (code !== undefined) lookups.set(codeKey(code, prefix), "code")
    }
    for (const domain of [change.domain, change.previousDomain]) {
      if (domain !== undefined) lookups.set(domainKey(domain, prefix), "domain")
    }
  }
  return writeKeys(lookups, ids)
}

/**
 * The value of a lookup known to find nothing (a negative entry). Every encoded tenant is a JSON object and
 * starts with `{`; this does not.
 *
 * @since 0.1.0
 * @category utils
 */
export const ABSENT = "!absent"

const TenantJson = Schema.parseJson(Tenant)
const encodeTenant = Schema.encodeEither(TenantJson)
const decodeTenant = Schema.decodeEither(TenantJson)

/**
 * Encodes what a lookup found: a tenant as its JSON, nothing as {@link ABSENT}. Fails only for a tenant that
 * breaks its own schema, which is then not cached.
 *
 * @since 0.1.0
 * @category utils
 */
export const encode = (found: Option.Option<Tenant>): Either.Either<string, ParseResult.ParseError> =>
  Option.isNone(found) ? Either.right(ABSENT) : encodeTenant(found.value)

/**
 * Decodes a cached value back into what the lookup found. A value that is neither {@link ABSENT} nor a tenant
 * in the current shape (not JSON, an older shape, an invalid field) is a `Left`: the reader treats it as a miss
 * and replaces it.
 *
 * @since 0.1.0
 * @category utils
 */
export const decode = (value: string): Either.Either<Option.Option<Tenant>, ParseResult.ParseError> => {
  if (value === ABSENT) return Either.right(Option.none())
  const tenant = quickDecode(value)
  return tenant === undefined ? Either.map(decodeTenant(value), Option.some) : Either.right(Option.some(tenant))
}

const TIMESTAMPS = ["createdAt", "updatedAt", "deletedAt"] as const

/**
 * The common case of {@link decode}, a tenant in the current shape, by `JSON.parse` and `Tenant.reconstitute`:
 * in the encoded form only the timestamps differ from the tenant's fields (ISO strings, read as the schema reads
 * them, with `new Date`), and `reconstitute` checks the rest by the schema's rules, quickly when it can. Anything
 * else (not JSON, a timestamp that is not a string, a field that does not check) is left to the schema's full
 * decode, which has the last word and explains what is wrong.
 */
const quickDecode = (value: string): Tenant | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const fields: Record<string, unknown> = { ...parsed }
  for (const name of TIMESTAMPS) {
    if (!Object.prototype.hasOwnProperty.call(fields, name)) continue
    const timestamp = fields[name]
    if (typeof timestamp !== "string") return undefined
    fields[name] = new Date(timestamp)
  }
  const change = fields["lastStatusChange"]
  if (change !== undefined) {
    if (typeof change !== "object" || change === null || Array.isArray(change)) return undefined
    const at: unknown = (change as Record<string, unknown>)["at"]
    if (typeof at !== "string") return undefined
    fields["lastStatusChange"] = { ...change, at: new Date(at) }
  }
  return Either.getOrUndefined(reconstitute(fields))
}

/**
 * {@link decode} with a memory of the value last decoded under each of the last `capacity` keys (default
 * 1,000; the key remembered first is forgotten first): a key read again with the same value is not parsed and checked again, and every caller still gets a
 * tenant of its own, a copy of the one decoded. Decoding is most of the cost of a cache hit; comparing the value
 * with the one remembered, and the copy, take a fraction of it.
 *
 * @since 0.1.0
 * @category utils
 */
export const makeDecoder = (capacity = 1_000) => {
  const limit = Math.max(1, Math.floor(capacity))
  const decoded = new Map<string, { readonly value: string; readonly tenant: Tenant }>()
  return (key: string, value: string): Either.Either<Option.Option<Tenant>, ParseResult.ParseError> => {
    if (value === ABSENT) return Either.right(Option.none())
    const known = decoded.get(key)
    if (known !== undefined && known.value === value) return Either.right(Option.some(copyTenant(known.tenant)))
    const fresh = quickDecode(value)
    return Either.map(fresh === undefined ? decodeTenant(value) : Either.right(fresh), (tenant) => {
      if (known === undefined && decoded.size >= limit) {
        const oldest = decoded.keys().next()
        if (oldest.done !== true) decoded.delete(oldest.value)
      }
      decoded.set(key, { value, tenant })
      return Option.some(copyTenant(tenant))
    })
  }
}
