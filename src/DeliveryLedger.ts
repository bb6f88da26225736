/**
 * The delivery ledger: one row per message an outbox event calls for (event, channel, recipient), the queue the
 * outbox relay works from and the record of every attempt it made. `TenantRepository.layerMemory` and
 * `TenantRepository/Pg` provide it over the same store as the tenants and their outbox; `DeliveryLedger/Pg`
 * provides it alone.
 *
 * A message goes `pending` → `delivered`, or `pending` → `dead` (with the reason); `replay` puts dead ones back.
 * A relay claims a pending message with a lease (an owner, an expiry and a fencing `epoch`), and the claim
 * itself records the attempt as started, before any provider is called. An attempt that a later claim finds
 * still started (its relay died or lost its lease mid-send) is closed as `Ambiguous`: the message may have gone
 * out. Every outcome is written only while the lease's epoch is current, so a relay that lost its lease cannot
 * overwrite what the next holder did.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { InvalidInput } from "./InvalidInput.js"
import type { Channel, SendError } from "./SendError.js"
import type { TenantId } from "./Tenant.js"
import type { TenantEvent } from "./TenantEvent.js"
import type { RepositoryError } from "./TenantRepositoryError.js"

/**
 * Where a message stands.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "pending" | "delivered" | "dead"

/**
 * How an attempt ended. `sending` is an attempt still under way, or one whose relay died (until the next claim
 * closes it as `Ambiguous`); `Cancelled` is an attempt that was claimed but not made (the policy dead-lettered
 * the message first).
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptOutcome = "sending" | "sent" | SendError["_tag"] | "Cancelled"

/**
 * A message a relay holds: send it, then `finish` it with the same claim.
 *
 * @since 0.1.0
 * @category models
 */
export interface Claim {
  readonly id: string
  /** `<event id>:<channel>:<recipient>`, the key of `TenantNotifications`. */
  readonly key: string
  readonly channel: Channel
  /** The fencing token: the outcome is recorded only while no later claim has taken the message. */
  readonly epoch: number
  /** The number of the attempt this claim started (1 for the first). */
  readonly attempt: number
  /** Failed attempts since the message was queued or last replayed, this one not counted. */
  readonly failures: number
  /** The previous attempt started and never finished: the message may already have been delivered. */
  readonly interrupted: boolean
  /** The event the message is for, as stored in the outbox. */
  readonly event: TenantEvent
}

/**
 * What an attempt came to, as the relay decided it.
 *
 * - `Delivered`: the provider accepted the message, under `providerId`.
 * - `Retry`: it failed with `error`; try again after `after`.
 * - `Dead`: it failed with `error` and will not be tried again until replayed; `reason` says why.
 * - `Cancelled`: no attempt was made and the message is dead for `reason` (the error of the interrupted
 *   attempt stands).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Delivered"; readonly providerId: string }
  | { readonly _tag: "Retry"; readonly error: SendError; readonly after: Duration.Duration }
  | { readonly _tag: "Dead"; readonly error: SendError; readonly reason: string }
  | { readonly _tag: "Cancelled"; readonly reason: string }

/**
 * What is still to do, cheap to count however long the ledger's history: `pending` includes the messages
 * `inFlight` (leased); `unexpandedEvents` are outbox events no relay has turned into messages yet;
 * `undecodableEvents` are events that got no messages because their payload did not decode (logged as errors
 * when met; they need a fix of the data or the code); `oldestPendingAt` is when the oldest event still waiting
 * for a message (or to be expanded) was recorded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Backlog {
  readonly unexpandedEvents: number
  readonly undecodableEvents: number
  readonly pending: number
  readonly inFlight: number
  readonly dead: number
  readonly oldestPendingAt: Option.Option<Date>
}

/**
 * The backlog and the count of messages delivered (which grows with the ledger's history: counting it reads
 * every delivered row in PostgreSQL).
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats extends Backlog {
  readonly delivered: number
}

/**
 * One attempt at a message.
 *
 * @since 0.1.0
 * @category models
 */
export interface Attempt {
  readonly attempt: number
  readonly relay: string
  readonly epoch: number
  readonly startedAt: Date
  readonly finishedAt: Option.Option<Date>
  readonly outcome: AttemptOutcome
  readonly detail: Option.Option<string>
}

/**
 * A message and its history.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivery {
  readonly key: string
  readonly eventId: string
  readonly tenantId: TenantId
  readonly tenantVersion: number
  readonly channel: Channel
  readonly recipient: string
  readonly status: Status
  /** Attempts whose outcome is unknown: a delivered message with any may have been received more than once. */
  readonly ambiguousAttempts: number
  readonly failures: number
  readonly providerId: Option.Option<string>
  /** For a dead message: why; for a pending one: the last failure, if any. */
  readonly lastError: Option.Option<string>
  /**
   * For a pending message: when its backoff ends and a relay may try it again (a time already past: as soon as
   * a relay is free and the tenant's earlier messages are done). None for a delivered or dead one.
   */
  readonly nextAttemptAt: Option.Option<Date>
  readonly attempts: ReadonlyArray<Attempt>
}

/**
 * Which messages to list: by status (default `dead`, the dead letters), at most `limit` (default 100, at most
 * 1,000), after the key-ordered cursor `afterKey`. Values out of range fail with `InvalidInput`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  readonly status?: Status | undefined
  readonly limit?: number | undefined
  readonly afterKey?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Turns up to `limit` outbox events that no relay has expanded yet into their messages (see
   * `TenantNotifications.envelopesFor`, which renders no template), in outbox order; returns how many events it
   * took. Safe to run from several relays at once.
   */
  readonly expand: (limit: number) => Effect.Effect<number, RepositoryError>
  /**
   * Leases up to `limit` due messages to `owner` for `lease`, starting an attempt at each. A message is due when
   * it is pending, its backoff has passed, no live lease holds it, and every earlier event of its tenant is
   * expanded and has its messages delivered or dead.
   */
  readonly claim: (
    options: { readonly owner: string; readonly limit: number; readonly lease: Duration.Duration }
  ) => Effect.Effect<ReadonlyArray<Claim>, RepositoryError>
  /**
   * Records the outcome of a claim; `false` when a later claim took the message or the outcome is already
   * recorded (nothing is changed then, so a finish repeated after a lost reply counts once).
   */
  readonly finish: (claim: Claim, outcome: Outcome) => Effect.Effect<boolean, RepositoryError>
  /**
   * Records several outcomes at once, each as `finish` would (one statement and one commit in PostgreSQL);
   * returns, in the same order, whether each was recorded.
   */
  readonly finishAll: (
    outcomes: ReadonlyArray<{ readonly claim: Claim; readonly outcome: Outcome }>
  ) => Effect.Effect<ReadonlyArray<boolean>, RepositoryError>
  /**
   * Extends the leases of these claims, those still current (no later claim took the message, no outcome
   * recorded), to `lease` from now; returns how many. A relay renews only what it is still working on, so a
   * message whose outcome it could not record is let go when its lease expires.
   */
  readonly renew: (claims: ReadonlyArray<Claim>, lease: Duration.Duration) => Effect.Effect<number, RepositoryError>
  /** Gives up every lease `owner` holds, so that another relay can take the messages at once; returns how many. */
  readonly release: (owner: string) => Effect.Effect<number, RepositoryError>
  /**
   * Emits when new work may have arrived (events committed, messages replayed). A hint only: a relay still
   * polls, since a signal can be lost.
   */
  readonly wakeups: Stream.Stream<void>
  /** What is left to do; the relay's gauges read this every few seconds. */
  readonly backlog: Effect.Effect<Backlog, RepositoryError>
  /** The backlog and the delivered count, for operators (`tenant-infra stats`). */
  readonly stats: Effect.Effect<Stats, RepositoryError>
  /** Messages in key order; dead letters by default. */
  readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<Delivery>, InvalidInput | RepositoryError>
  /** A message and its attempts, by key. */
  readonly find: (key: string) => Effect.Effect<Option.Option<Delivery>, RepositoryError>
  /**
   * Puts dead messages back to pending with a fresh attempt budget: those with the given keys, or every dead
   * one when `keys` is omitted. Returns how many.
   */
  readonly replay: (keys?: ReadonlyArray<string>) => Effect.Effect<number, RepositoryError>
  /**
   * Forgets delivered messages, and their attempts, delivered more than `olderThan` ago; returns how many. The
   * ledger keeps one row per message and one per attempt, so without this it only grows. Pending and dead
   * messages are never pruned (a dead letter waits for an operator), nor are the outbox's events, which are the
   * application's record. A pruned message is no longer found by `find` nor counted as delivered by `stats`. In
   * PostgreSQL it deletes in batches of 1,000, each its own statement, so that it never holds many rows at once.
   */
  readonly prune: (olderThan: Duration.Duration) => Effect.Effect<number, RepositoryError>
}

/**
 * The most messages `list` returns at once: the outbox's limit, one constant for both lists.
 *
 * @since 0.1.0
 * @category models
 */
export { MAX_LIST_LIMIT } from "./TenantOutbox.js"

/**
 * @since 0.1.0
 * @category services
 */
export class DeliveryLedger extends Context.Tag("tenant-infra/DeliveryLedger")<DeliveryLedger, Service>() {}
