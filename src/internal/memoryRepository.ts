import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Tenant } from "../Tenant.js"
import type { TenantId } from "../Tenant.js"
import { TenantEvent } from "../TenantEvent.js"
import type * as TenantOutbox from "../TenantOutbox.js"
import { OutboxEntry } from "../TenantOutbox.js"
import type * as TenantRepository from "../TenantRepository.js"
import { ConcurrencyConflict, TenantAlreadyExists, TenantNotFound } from "../TenantRepositoryError.js"
import type * as ChangeFeed from "./changeFeed.js"
import { makeMemoryLedger } from "./memoryDeliveryLedger.js"
import * as Rules from "./repositoryRules.js"

/**
 * Values go in and out through their JSON encoding, as they do in PostgreSQL: the store never shares a live
 * object with a caller, and what it gives back is exactly what PostgreSQL would (`-0` becomes `0`, say).
 */
const throughJson = <A, I>(schema: Schema.Schema<A, I>) => {
  const encode = Schema.encodeSync(schema)
  const decode = Schema.decodeUnknownSync(schema)
  return (value: A): A => decode(JSON.parse(JSON.stringify(encode(value))))
}
const copyTenant = throughJson(Tenant)
const copyEvent = throughJson(TenantEvent)

/**
 * The in-memory store. Every write checks and applies its changes in one synchronous step, so it is atomic
 * under Effect's cooperative scheduling: two saves of one version cannot both pass the version check.
 */
export const makeMemoryStore = Effect.sync(() => {
  const tenants = new Map<TenantId, Tenant>()
  const liveByCode = new Map<string, TenantId>()
  const liveByDomain = new Map<string, TenantId>()
  const outbox: Array<OutboxEntry> = []
  const storedEvents = new Map<string, OutboxEntry>()
  const deliveries = makeMemoryLedger(outbox)

  const index = (tenant: Tenant) => {
    if (!tenant.isLive) return
    liveByCode.set(tenant.code, tenant.id)
    if (tenant.domain !== undefined) liveByDomain.set(tenant.domain, tenant.id)
  }

  const unindex = (tenant: Tenant) => {
    if (liveByCode.get(tenant.code) === tenant.id) liveByCode.delete(tenant.code)
    if (tenant.domain !== undefined && liveByDomain.get(tenant.domain) === tenant.id) {
      liveByDomain.delete(tenant.domain)
    }
  }

  const collision = (tenant: Tenant): TenantAlreadyExists | undefined => {
    if (!tenant.isLive) return undefined
    const codeHolder = liveByCode.get(tenant.code)
    if (codeHolder !== undefined && codeHolder !== tenant.id) {
      return new TenantAlreadyExists({ field: "code", value: tenant.code })
    }
    const domainHolder = tenant.domain === undefined ? undefined : liveByDomain.get(tenant.domain)
    if (tenant.domain !== undefined && domainHolder !== undefined && domainHolder !== tenant.id) {
      return new TenantAlreadyExists({ field: "domain", value: tenant.domain })
    }
    return undefined
  }

  const record = (events: ReadonlyArray<TenantEvent>, recordedAt: Date) => {
    for (const event of events) {
      const entry = new OutboxEntry({
        position: outbox.length + 1,
        eventId: event.eventId,
        tenantId: event.tenantId,
        tenantVersion: event.version,
        eventType: event._tag,
        occurredAt: event.occurredAt,
        recordedAt,
        event: copyEvent(event)
      })
      storedEvents.set(event.eventId, entry)
      outbox.push(entry)
    }
    if (events.length > 0) deliveries.wake()
  }

  const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))

  /** The entries of these events already stored: a repeated write, or a reused stamp (see `storedAlready`). */
  const storedOf = (events: ReadonlyArray<TenantEvent>) =>
    events.flatMap((event) => {
      const entry = storedEvents.get(event.eventId)
      return entry === undefined ? [] : [entry]
    })

  const repository: TenantRepository.Service = {
    insert: (tenant, event) =>
      Effect.zipRight(
        Rules.checkInsert(tenant, event),
        Effect.flatMap(now, (recordedAt) =>
          Effect.suspend(() => {
            const stored = storedOf([event])
            if (stored.length > 0) return Effect.asVoid(Rules.storedAlready([event], stored))
            if (tenants.has(tenant.id)) return Effect.fail(new TenantAlreadyExists({ field: "id", value: tenant.id }))
            const taken = collision(tenant)
            if (taken !== undefined) return Effect.fail(taken)
            tenants.set(tenant.id, copyTenant(tenant))
            index(tenant)
            record([event], recordedAt)
            return Effect.void
          }))
      ),
    save: (tenant, events, expectedVersion) =>
      Effect.zipRight(
        Rules.checkSave(tenant, events, expectedVersion),
        Effect.flatMap(now, (recordedAt) =>
          Effect.suspend((): Effect.Effect<void, TenantNotFound | ConcurrencyConflict | TenantAlreadyExists> => {
            const stored = storedOf(events)
            if (stored.length > 0) {
              return Effect.asVoid(Rules.storedAlready(events, stored))
            }
            const current = tenants.get(tenant.id)
            if (current === undefined) {
              return Effect.fail(new TenantNotFound({ tenantId: tenant.id }))
            }
            if (current.version !== expectedVersion) {
              return Effect.fail(
                new ConcurrencyConflict({ tenantId: tenant.id, expectedVersion, actualVersion: current.version })
              )
            }
            const taken = collision(tenant)
            if (taken !== undefined) {
              return Effect.fail(taken)
            }
            unindex(current)
            tenants.set(tenant.id, copyTenant(tenant))
            index(tenant)
            record(events, recordedAt)
            return Effect.void
          }))
      ),
    findById: (id, options) =>
      Rules.isTenantId(id) ?
        Effect.sync(() =>
          Option.fromNullable(tenants.get(id)).pipe(
            Option.filter((tenant) => tenant.isLive || options?.includeDeleted === true),
            Option.map(copyTenant)
          )
        ) :
        Effect.succeedNone,
    findByCode: (input) => {
      const code = Rules.codeToFind(input)
      return code === undefined ? Effect.succeedNone : Effect.sync(() =>
        Option.fromNullable(liveByCode.get(code)).pipe(
          Option.flatMapNullable((id) => tenants.get(id)),
          Option.map(copyTenant)
        )
      )
    },
    findByDomain: (input) => {
      const domain = Rules.domainToFind(input)
      return domain === undefined ?
        Effect.succeedNone :
        Effect.sync(() =>
          Option.fromNullable(liveByDomain.get(domain)).pipe(
            Option.flatMapNullable((id) => tenants.get(id)),
            Option.map(copyTenant)
          )
        )
    },
    list: (input) =>
      Effect.map(Rules.decodeListRequest(input ?? {}), (request) => {
        const { after, query } = request
        const matching = Array.from(tenants.values()).filter(Rules.matches(query)).sort(Rules.listOrder(query))
        const following = after === undefined ? -1 : matching.findIndex(Rules.comesAfter(query, after))
        const start = after === undefined ? Rules.offsetOf(request) : following === -1 ? matching.length : following
        const rows = matching.slice(start, start + Rules.rowsToRead(request)).map(copyTenant)
        return Rules.pageOf(request, rows, query.count === "none" ? "none" : { exact: matching.length })
      }),
    countByStatus: Effect.sync(() => {
      const counts = Rules.zeroCounts()
      for (const tenant of tenants.values()) counts[tenant.status]++
      return counts
    })
  }

  const outboxService: TenantOutbox.Service = {
    list: (options) =>
      Effect.map(Rules.decodeOutboxOptions(options ?? {}), (query) =>
        outbox
          .filter((entry) =>
            entry.position > (query.afterPosition ?? 0) &&
            (query.tenantId === undefined || entry.tenantId === query.tenantId)
          )
          .slice(0, query.limit)
          .map((entry) => new OutboxEntry({ ...entry, event: copyEvent(entry.event) })))
  }

  // Positions are assigned as each write commits (synchronously), so they are in commit order already.
  const changeOf = (entry: OutboxEntry): ChangeFeed.Change => ({
    eventId: entry.eventId,
    mark: BigInt(entry.position),
    tenantId: entry.tenantId,
    code: entry.event.tenant.code,
    domain: entry.event.tenant.domain,
    previousCode: entry.event._tag === "TenantUpdated" ? entry.event.previousCode : undefined,
    previousDomain: entry.event._tag === "TenantUpdated" ? entry.event.previousDomain : undefined
  })
  const changes: ChangeFeed.Service = {
    start: (window) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const recent = outbox.find((entry) => entry.recordedAt.getTime() >= now - Duration.toMillis(window))
        return BigInt(recent?.position ?? outbox.length + 1)
      }),
    poll: (from, limit) =>
      Effect.sync(() => {
        const head = BigInt(outbox.length + 1)
        const first = Math.max(0, Number(from) - 1)
        const entries = outbox.slice(first, first + limit)
        return {
          head,
          next: first + entries.length >= outbox.length ? head : BigInt(first + entries.length + 1),
          changes: entries.map(changeOf)
        }
      })
  }

  return { repository, outbox: outboxService, ledger: deliveries.ledger, changes }
})
