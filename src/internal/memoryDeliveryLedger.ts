import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as DeliveryLedger from "../DeliveryLedger.js"
import type { Channel } from "../SendError.js"
import type { TenantId } from "../Tenant.js"
import type { TenantEvent } from "../TenantEvent.js"
import type { OutboxEntry } from "../TenantOutbox.js"
import * as Rules from "./ledgerRules.js"
import { envelopesFor } from "./notificationRules.js"
import { compareCodePoints } from "./repositoryRules.js"

interface Attempt {
  readonly attempt: number
  readonly relay: string
  readonly epoch: number
  readonly startedAt: number
  finishedAt: number | undefined
  outcome: DeliveryLedger.AttemptOutcome
  detail: string | undefined
}

interface Message {
  readonly id: string
  readonly key: string
  readonly event: TenantEvent
  readonly channel: Channel
  readonly recipient: string
  readonly recordedAt: number
  status: DeliveryLedger.Status
  attempts: number
  failures: number
  ambiguous: number
  nextAttemptAt: number
  leaseOwner: string | undefined
  leaseUntil: number | undefined
  epoch: number
  providerId: string | undefined
  lastError: string | undefined
  readonly log: Array<Attempt>
}

const toDelivery = (message: Message): DeliveryLedger.Delivery => ({
  key: message.key,
  eventId: message.event.eventId,
  tenantId: message.event.tenantId as TenantId,
  tenantVersion: message.event.version,
  channel: message.channel,
  recipient: message.recipient,
  status: message.status,
  ambiguousAttempts: message.ambiguous,
  failures: message.failures,
  providerId: Option.fromNullable(message.providerId),
  lastError: Option.fromNullable(message.lastError),
  // A message no attempt has failed yet is due from the moment it was recorded.
  nextAttemptAt: message.status === "pending"
    ? Option.some(new Date(Math.max(message.nextAttemptAt, message.recordedAt)))
    : Option.none(),
  attempts: message.log.map((attempt) => ({
    attempt: attempt.attempt,
    relay: attempt.relay,
    epoch: attempt.epoch,
    startedAt: new Date(attempt.startedAt),
    finishedAt: Option.map(Option.fromNullable(attempt.finishedAt), (at) => new Date(at)),
    outcome: attempt.outcome,
    detail: Option.fromNullable(attempt.detail)
  }))
})

/**
 * The ledger beside the memory store's outbox, with the PostgreSQL ledger's semantics: the same claim rules
 * (backoff, leases, per-tenant order), the same fencing and the same closing of interrupted attempts. Each step
 * is synchronous, hence atomic under Effect's scheduling; times come from the `Clock`, so `TestClock` drives
 * leases and backoff.
 */
export const makeMemoryLedger = (outbox: ReadonlyArray<OutboxEntry>) => {
  const messages = new Map<string, Message>()
  const byId = new Map<string, Message>()
  const pending = new Set<Message>()
  const listeners = new Set<() => void>()
  let expanded = 0
  // Ids only grow: `prune` forgets messages, so a count of them would give a new message a live one's id.
  let lastId = 0

  const wake = () => {
    for (const listener of listeners) listener()
  }

  const expand = (limit: number) =>
    Effect.sync(() => {
      const entries = outbox.slice(expanded, expanded + limit)
      for (const entry of entries) {
        for (const envelope of envelopesFor(entry.event)) {
          if (messages.has(envelope.key)) continue
          const created: Message = {
            id: String(++lastId),
            key: envelope.key,
            event: entry.event,
            channel: envelope.channel,
            recipient: envelope.recipient,
            recordedAt: entry.recordedAt.getTime(),
            status: "pending",
            attempts: 0,
            failures: 0,
            ambiguous: 0,
            nextAttemptAt: Number.NEGATIVE_INFINITY,
            leaseOwner: undefined,
            leaseUntil: undefined,
            epoch: 0,
            providerId: undefined,
            lastError: undefined,
            log: []
          }
          messages.set(created.key, created)
          byId.set(created.id, created)
          pending.add(created)
        }
      }
      expanded += entries.length
      return entries.length
    })

  /** Per tenant, the earliest version still waiting: unexpanded, or with a pending message. */
  const earliestWaiting = () => {
    const earliest = new Map<string, number>()
    const note = (tenantId: string, version: number) => {
      const known = earliest.get(tenantId)
      if (known === undefined || version < known) earliest.set(tenantId, version)
    }
    for (const message of pending) note(message.event.tenantId, message.event.version)
    for (const entry of outbox.slice(expanded)) note(entry.tenantId, entry.tenantVersion)
    return earliest
  }

  const claim: DeliveryLedger.Service["claim"] = ({ lease, limit, owner }) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const earliest = earliestWaiting()
      const due = Array.from(pending)
        .filter((message) =>
          message.nextAttemptAt <= now && (message.leaseUntil === undefined || message.leaseUntil < now) &&
          message.event.version <= (earliest.get(message.event.tenantId) ?? Number.POSITIVE_INFINITY)
        )
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || Number(a.id) - Number(b.id))
        .slice(0, limit)
      return due.map((message): DeliveryLedger.Claim => {
        const open = message.log.find((attempt) => attempt.finishedAt === undefined)
        if (open !== undefined) {
          open.finishedAt = now
          open.outcome = "Ambiguous"
          open.detail = Rules.INTERRUPTED_DETAIL
          message.failures++
          message.ambiguous++
        }
        message.leaseOwner = owner
        message.leaseUntil = now + Duration.toMillis(lease)
        message.epoch++
        message.attempts++
        message.log.push({
          attempt: message.attempts,
          relay: owner,
          epoch: message.epoch,
          startedAt: now,
          finishedAt: undefined,
          outcome: "sending",
          detail: undefined
        })
        return {
          id: message.id,
          key: message.key,
          channel: message.channel,
          epoch: message.epoch,
          attempt: message.attempts,
          failures: message.failures,
          interrupted: open !== undefined,
          event: message.event
        }
      })
    })

  const finish: DeliveryLedger.Service["finish"] = (claimed, outcome) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const message = byId.get(claimed.id)
      if (
        message === undefined || message.epoch !== claimed.epoch || message.status !== "pending" ||
        message.leaseOwner === undefined
      ) return false
      // A finish repeated after its outcome was recorded counts once.
      const attempt = message.log.find((entry) => entry.attempt === claimed.attempt && entry.finishedAt === undefined)
      if (attempt === undefined) return false
      const next = Rules.transitionOf(outcome)
      attempt.finishedAt = now
      attempt.outcome = next.attemptOutcome
      attempt.detail = next.detail
      message.status = next.status
      message.leaseOwner = undefined
      message.leaseUntil = undefined
      message.nextAttemptAt = now + next.retryAfterMillis
      message.failures += next.failed
      message.ambiguous += next.ambiguous
      message.providerId = next.providerId ?? message.providerId
      message.lastError = next.lastError ?? message.lastError
      if (next.status !== "pending") pending.delete(message)
      return true
    })

  const backlog = Effect.map(Clock.currentTimeMillis, (now): DeliveryLedger.Backlog => {
    let dead = 0
    let inFlight = 0
    let oldest = Number.POSITIVE_INFINITY
    for (const message of messages.values()) if (message.status === "dead") dead++
    for (const message of pending) {
      if (message.leaseUntil !== undefined && message.leaseUntil > now) inFlight++
      oldest = Math.min(oldest, message.recordedAt)
    }
    for (const entry of outbox.slice(expanded)) oldest = Math.min(oldest, entry.recordedAt.getTime())
    return {
      unexpandedEvents: outbox.length - expanded,
      // The memory outbox holds decoded events: none can fail to decode.
      undecodableEvents: 0,
      pending: pending.size,
      inFlight,
      dead,
      oldestPendingAt: Number.isFinite(oldest) ? Option.some(new Date(oldest)) : Option.none()
    }
  })

  const heldBy = (owner: string) => Array.from(pending).filter((message) => message.leaseOwner === owner)

  const service: DeliveryLedger.Service = {
    expand,
    claim,
    finish,
    finishAll: (outcomes) => Effect.forEach(outcomes, ({ claim: claimed, outcome }) => finish(claimed, outcome)),
    renew: (claims, lease) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        let renewed = 0
        for (const held of claims) {
          const message = byId.get(held.id)
          if (message === undefined || message.epoch !== held.epoch || message.status !== "pending") continue
          message.leaseUntil = now + Duration.toMillis(lease)
          renewed++
        }
        return renewed
      }),
    release: (owner) =>
      Effect.sync(() => {
        const held = heldBy(owner)
        for (const message of held) {
          message.leaseOwner = undefined
          message.leaseUntil = undefined
        }
        return held.length
      }),
    wakeups: Stream.async<void>((emit) => {
      const listener = () => void emit.single(undefined)
      listeners.add(listener)
      return Effect.sync(() => listeners.delete(listener))
    }),
    backlog,
    stats: Effect.map(backlog, (counts) => {
      let delivered = 0
      for (const message of messages.values()) if (message.status === "delivered") delivered++
      return { ...counts, delivered }
    }),
    list: (options) =>
      Effect.map(Rules.decodeListOptions(options ?? {}), (query) =>
        Array.from(messages.values())
          .filter((message) =>
            message.status === query.status &&
            (query.afterKey === undefined || compareCodePoints(message.key, query.afterKey) > 0)
          )
          .sort((a, b) => compareCodePoints(a.key, b.key))
          .slice(0, query.limit)
          .map(toDelivery)),
    find: (key) => Effect.sync(() => Option.map(Option.fromNullable(messages.get(key)), toDelivery)),
    replay: (keys) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const chosen = keys === undefined
          ? Array.from(messages.values())
          : keys.flatMap((key) => Option.toArray(Option.fromNullable(messages.get(key))))
        let count = 0
        for (const message of chosen) {
          if (message.status !== "dead") continue
          message.status = "pending"
          message.failures = 0
          message.nextAttemptAt = now
          pending.add(message)
          count++
        }
        if (count > 0) wake()
        return count
      }),
    prune: (olderThan) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const cutoff = now - Duration.toMillis(olderThan)
        let count = 0
        for (const message of Array.from(messages.values())) {
          if (message.status !== "delivered") continue
          // Delivered when its last attempt finished.
          const deliveredAt = message.log.at(-1)?.finishedAt
          if (deliveredAt === undefined || deliveredAt >= cutoff) continue
          messages.delete(message.key)
          byId.delete(message.id)
          count++
        }
        return count
      })
  }
  return { ledger: service, wake }
}
