/**
 * The outbox relay: delivers the notifications of every event in the outbox, through `TenantNotifications`,
 * keeping each message's state in the `DeliveryLedger`. Run it by providing {@link layer} (or
 * {@link layerConfig}) for as long as it should work; closing the layer's scope stops it gracefully.
 *
 * What it guarantees, with the ledger in PostgreSQL:
 *
 * - **No loss.** An event committed with its tenant is expanded into its messages, and each message is retried
 *   until its provider accepts it or it is dead-lettered with the reason (`DeliveryLedger.list`, `replay`).
 *   A relay that dies loses nothing: its leases expire and another relay (or the same one, restarted) goes on.
 * - **Accounted duplicates.** A message goes out more than once only after an attempt whose outcome is unknown:
 *   the connection dropped after the message was sent, an attempt timed out, or a relay died mid-send. Each
 *   such attempt is recorded as `Ambiguous`. SMS is then sent again under the same idempotency key, so the
 *   gateway drops the copy; e-mail is sent again with the same Message-ID by default (`ambiguousEmail:
 *   "resend"`), or dead-lettered for a person to decide (`"dead-letter"`).
 * - **Per-tenant order.** A tenant's message is not sent before the messages of the tenant's earlier events are
 *   delivered or dead.
 *
 * Several relays, in one process or many, share the work: each claims messages under a lease that no other
 * relay takes until it expires, and writes outcomes fenced by the lease's epoch.
 *
 * While a provider keeps failing, the relay says so at once and then at most once per `failureLogInterval`: a
 * warning per channel that names the provider's host and the error classes, with the attempts failed since.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import type { Claim, Outcome } from "./DeliveryLedger.js"
import { DeliveryLedger } from "./DeliveryLedger.js"
import { makeLogThrottle } from "./internal/logThrottle.js"
import { makeRelayCounters, reportBacklog } from "./internal/relayMetrics.js"
import type { AmbiguousEmailPolicy } from "./internal/relayPolicy.js"
import { cancellationOf, defaultRetry, finishRetry, outcomeOfFailure } from "./internal/relayPolicy.js"
import type { Channel, SendError } from "./SendError.js"
import { Ambiguous } from "./SendError.js"
import type * as SendRetry from "./SendRetry.js"
import type { Sent } from "./TenantNotifications.js"
import { envelopesFor, TenantNotifications } from "./TenantNotifications.js"
import type { RepositoryError } from "./TenantRepositoryError.js"

export type {
  /**
   * What to do with an e-mail whose last attempt may have been delivered (a drop after the body, a timeout, a
   * relay that died mid-send): send it again with the same Message-ID and record the possible duplicate
   * (`resend`), or dead-letter it (`dead-letter`). SMS is always sent again: the gateway deduplicates by key.
   *
   * @since 0.1.0
   * @category models
   */
  AmbiguousEmailPolicy
} from "./internal/relayPolicy.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** This relay's name in leases and attempts (default `<host>:<pid>:<random>`); must differ between relays. */
  readonly relayId?: string | undefined
  /**
   * Messages sent at once (default 32). A message whose send has ended makes room for the next claim while its
   * outcome is being written, so the relay holds up to twice this many claims (sent ones waiting for their outcome
   * to be recorded among them); a ledger slow to record outcomes holds the claims back. The relay claims once a
   * quarter of the room is free: each claim is one statement, whatever its size, so a larger concurrency delivers
   * more per second from a backlog, at the price of more messages to retry as ambiguous should the relay die.
   */
  readonly concurrency?: number | undefined
  /** How long a claim holds a message before another relay may take it (default 15 s; renewed while held). */
  readonly lease?: Duration.DurationInput | undefined
  /** How often to look for new events and due messages, whatever the wake-ups (default 1 s). */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Outbox events expanded into messages per step (default 200). */
  readonly expandBatch?: number | undefined
  /**
   * Backoff between attempts, attempts before a message is dead, and the attempt timeout (default
   * {@link defaultRetry}). An attempt is cut off between its timeout and a tenth of it (at most 1 s) later.
   */
  readonly retry?: SendRetry.Options | undefined
  /** Default `resend`. */
  readonly ambiguousEmail?: AmbiguousEmailPolicy | undefined
  /** How often the backlog gauges are refreshed (default 5 s). */
  readonly metricsInterval?: Duration.DurationInput | undefined
  /**
   * While attempts on a channel fail, a warning names the channel, the error classes and the provider's host,
   * with how many attempts failed since the previous one: at the first failure, then at most once per this
   * interval (default 30 s).
   */
  readonly failureLogInterval?: Duration.DurationInput | undefined
  /**
   * The host each channel's provider is reached at, for those warnings: `smtp.example.com:587`, or a URL of which
   * only the host is kept (never its credentials, path or query).
   */
  readonly providerHosts?: { readonly email?: string | undefined; readonly sms?: string | undefined } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly relayId: string
  /** Makes the relay look for work now, as a committed event's notification would. */
  readonly wake: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category services
 */
export class OutboxRelay extends Context.Tag("tenant-infra/OutboxRelay")<OutboxRelay, Service>() {}

export {
  /**
   * Attempts finished, tagged with `channel` and `outcome` (`sent` or the error's tag).
   *
   * @since 0.1.0
   * @category metrics
   */
  attemptsFinished,
  /**
   * Dead letters waiting for a replay.
   *
   * @since 0.1.0
   * @category metrics
   */
  dead,
  /**
   * Messages dead-lettered, tagged with `channel` and `error`.
   *
   * @since 0.1.0
   * @category metrics
   */
  deadLettered,
  /**
   * Messages delivered, tagged with `channel`.
   *
   * @since 0.1.0
   * @category metrics
   */
  delivered,
  /**
   * Outcomes this relay could not record because another relay had claimed the message since (its lease had
   * expired): each one is an attempt the ledger already counts as ambiguous.
   *
   * @since 0.1.0
   * @category metrics
   */
  fenced,
  /**
   * Messages leased to a relay right now, across all relays.
   *
   * @since 0.1.0
   * @category metrics
   */
  inFlight,
  /**
   * Age in seconds of the oldest event still waiting for a message; 0 when none waits.
   *
   * @since 0.1.0
   * @category metrics
   */
  lag,
  /**
   * Messages waiting (leased ones included), across all relays.
   *
   * @since 0.1.0
   * @category metrics
   */
  pending
} from "./internal/relayMetrics.js"

export {
  /**
   * The wait before attempt `failures + 1` after `failures` failed ones, the last with `error`: the policy's
   * point on `SendRetry`'s backoff curve (`SendRetry.delayOf`: exponential with ±20% jitter, capped at
   * `maxDelay`), and never shorter than a wait the provider asked for (which, unlike in `SendRetry.retry`, is
   * honoured however long: the ledger keeps the message meanwhile, not memory).
   *
   * @since 0.1.0
   * @category combinators
   */
  backoff,
  /**
   * The relay's retry policy unless told otherwise: `SendRetry`'s backoff curve (exponential from 1 s with ±20%
   * jitter), but with a budget fit for a durable queue, since the ledger, not memory, holds a message between
   * attempts: delays capped at 5 minutes and 20 attempts, so a provider outage of about an hour is waited out
   * before messages are dead-lettered. Each attempt still has 30 s.
   *
   * @since 0.1.0
   * @category combinators
   */
  defaultRetry,
  /**
   * What a failed attempt leads to: a retry after {@link backoff}, or a dead letter when the error is final
   * (`Permanent`, `Misconfigured`, an ambiguous e-mail under the `dead-letter` policy) or the attempts are spent.
   *
   * @since 0.1.0
   * @category combinators
   */
  outcomeOfFailure
} from "./internal/relayPolicy.js"

interface Settings {
  readonly relayId: string
  readonly concurrency: number
  readonly lease: Duration.Duration
  readonly pollInterval: Duration.Duration
  readonly expandBatch: number
  readonly retry: SendRetry.Options
  readonly ambiguousEmail: AmbiguousEmailPolicy
  readonly metricsInterval: Duration.Duration
  readonly failureLogInterval: Duration.Duration
  readonly providerHosts: { readonly [channel in Channel]: string | undefined }
}

/**
 * The host (and port) of `location`, a host or a URL; never its user name or password, path or query. `undefined`
 * when it names no host.
 */
const hostOf = (location: string | undefined): string | undefined => {
  if (location === undefined) return undefined
  try {
    const host = new URL(location.includes("://") ? location : `host://${location}`).host
    return host === "" ? undefined : host
  } catch {
    return undefined
  }
}

const settingsOf = (options: Options): Settings => ({
  relayId: options.relayId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
  concurrency: Math.max(1, Math.floor(options.concurrency ?? 32)),
  lease: Duration.decode(options.lease ?? Duration.seconds(15)),
  pollInterval: Duration.decode(options.pollInterval ?? Duration.seconds(1)),
  expandBatch: Math.max(1, Math.floor(options.expandBatch ?? 200)),
  retry: options.retry ?? defaultRetry,
  ambiguousEmail: options.ambiguousEmail ?? "resend",
  metricsInterval: Duration.decode(options.metricsInterval ?? Duration.seconds(5)),
  failureLogInterval: Duration.decode(options.failureLogInterval ?? Duration.seconds(30)),
  providerHosts: { email: hostOf(options.providerHosts?.email), sms: hostOf(options.providerHosts?.sms) }
})

/**
 * Starts a relay in the current scope and returns its handle; it stops (see {@link layer}) when the scope
 * closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Service, never, DeliveryLedger | TenantNotifications | Scope.Scope> =>
  Effect.gen(function*() {
    const settings = settingsOf(options)
    const ledger = yield* DeliveryLedger
    const notifications = yield* TenantNotifications
    const owner = settings.relayId
    // Two signals, each keeping at most one wake-up: `signal` makes the loop claim, `expandSignal` makes the
    // expander turn new events into messages. A committed event's notification (or a poll) raises both.
    const signal = yield* Queue.sliding<void>(1)
    const expandSignal = yield* Queue.sliding<void>(1)
    const wake = Effect.zipRight(Queue.offer(expandSignal, undefined), Queue.offer(signal, undefined))
    // The claims this relay holds, from the claim until their outcome is recorded: only their leases are renewed.
    // Keyed by lease, not message: after a lease lapsed, this relay may hold the same message again under a new
    // epoch.
    const working = new Map<string, Claim>()
    const leaseOf = (claim: Claim) => `${claim.id}:${claim.epoch}`
    // `concurrency` bounds the attempts under way; a claim whose attempt has ended frees its slot while its
    // outcome is written, so that the next claim overlaps the writing. The claims held at once (working) stay
    // within twice the concurrency, so that a slow ledger holds the relay back instead of piling up outcomes.
    let sending = 0
    const held = settings.concurrency * 2
    const freeSlots = () => Math.min(settings.concurrency - sending, held - working.size)
    // Claiming a few messages at a time costs a query each: wait for a quarter of the slots (or an idle relay).
    const claimAtLeast = Math.max(1, Math.floor(settings.concurrency / 4))
    // Wakes the loop once enough slots are free to claim: not after every delivery, which would run the loop
    // (and a claim's checks) once per message.
    const nudge = () => {
      if (freeSlots() >= claimAtLeast || working.size === 0) signal.unsafeOffer(undefined)
    }

    const counters = makeRelayCounters()

    // Outcomes are written in groups, one statement (and one commit) for all that finished meanwhile. A short
    // outage of the ledger should not turn a sent message into an ambiguous one, so a group is retried for a
    // moment before its deliveries give up.
    interface Finished {
      readonly claim: Claim
      readonly outcome: Outcome
      readonly recorded: Deferred.Deferred<boolean, RepositoryError>
    }
    const finished = yield* Queue.unbounded<Finished>()
    yield* Effect.gen(function*() {
      const group = Chunk.toReadonlyArray(yield* Queue.takeBetween(finished, 1, 256))
      yield* ledger.finishAll(group).pipe(
        Effect.retry(finishRetry),
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.forEach(group, (item, index) =>
            Deferred.complete(
              item.recorded,
              Exit.map(exit, (recorded) => recorded[index] === true)
            ), { discard: true })
        )
      )
    }).pipe(Effect.forever, Effect.forkScoped)

    const record = (claim: Claim, outcome: Outcome) =>
      Effect.gen(function*() {
        const recorded = yield* Deferred.make<boolean, RepositoryError>()
        yield* Queue.offer(finished, { claim, outcome, recorded })
        yield* counters.outcomeRecorded(claim, outcome, yield* Deferred.await(recorded))
      })

    // A provider that keeps failing is seen within the interval, not when dead letters appear an hour later.
    const failures = makeLogThrottle(settings.failureLogInterval)
    const warnFailure = (channel: Channel, error: SendError) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const counts = failures.note(channel, error._tag, now)
        if (counts === undefined) return Effect.void
        const host = settings.providerHosts[channel]
        return Effect.logWarning(
          `outbox relay: ${channel === "email" ? "e-mail" : "SMS"} attempts are failing` +
            (host === undefined ? "" : ` at ${host}`)
        ).pipe(Effect.annotateLogs({
          relay: owner,
          channel,
          ...(host === undefined ? {} : { host }),
          error: error._tag,
          failed: Array.from(counts.values()).reduce((sum, count) => sum + count, 0),
          errors: Array.from(counts, ([tag, count]) => `${tag}=${count}`).join(" "),
          detail: error.message
        }))
      })

    // The attempt timeout. The delivery around a send is uninterruptible (a stop waits for it), so the send runs
    // in a fiber of its own, which the timeout can still cut off, as an ambiguous attempt. One watchdog for all
    // of them, not a timer and a race per attempt (which cost the relay more than the rest of a delivery): it
    // interrupts the sends past their deadline, so an attempt is cut off between `attemptTimeout` and a tenth of
    // it (at most 1 s) later.
    interface UnderWay {
      readonly fiber: Fiber.RuntimeFiber<Sent, SendError>
      readonly deadline: number
      timedOut: boolean
    }
    const underWay = new Set<UnderWay>()
    const timeoutMillis = Duration.toMillis(settings.retry.attemptTimeout)
    const timedOut = (channel: Channel) =>
      new Ambiguous({
        channel,
        detail: `attempt timed out after ${Duration.format(settings.retry.attemptTimeout)}`,
        code: "ETIMEDOUT"
      })
    const timed = (channel: Channel, send: Effect.Effect<Sent, SendError>) =>
      Effect.gen(function*() {
        const deadline = (yield* Clock.currentTimeMillis) + timeoutMillis
        const sending = { fiber: yield* Effect.forkDaemon(Effect.interruptible(send)), deadline, timedOut: false }
        underWay.add(sending)
        const exit = yield* Fiber.await(sending.fiber)
        underWay.delete(sending)
        return yield* sending.timedOut && Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
          ? Effect.fail(timedOut(channel))
          : exit
      })
    const watchdog = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const late: Array<Fiber.RuntimeFiber<Sent, SendError>> = []
      for (const sending of underWay) {
        if (!sending.timedOut && sending.deadline <= now) {
          sending.timedOut = true
          late.push(sending.fiber)
        }
      }
      return Effect.forEach(late, Fiber.interruptFork, { discard: true })
    })

    const attempt = (claim: Claim): Effect.Effect<Outcome> => {
      const cancelled = cancellationOf(claim, settings.retry, settings.ambiguousEmail)
      if (cancelled !== undefined) return Effect.succeed({ _tag: "Cancelled", reason: cancelled })
      // Only the claimed message is rendered: the others of the event are not being sent now.
      const envelope = envelopesFor(claim.event).find((candidate) => candidate.key === claim.key)
      if (envelope === undefined) {
        return Effect.succeed({ _tag: "Cancelled", reason: "the event no longer calls for this message" })
      }
      const notification = notifications.notificationOf(claim.event, envelope)
      return timed(claim.channel, notifications.deliver(notification)).pipe(
        Effect.either,
        Effect.tap((result) =>
          counters.attemptFinished(claim.channel, Either.isRight(result) ? "sent" : result.left._tag)
        ),
        Effect.tap((result) => Either.isLeft(result) ? warnFailure(claim.channel, result.left) : Effect.void),
        Effect.flatMap(Either.match({
          onRight: (sent): Effect.Effect<Outcome> => Effect.succeed({ _tag: "Delivered", providerId: sent.id }),
          onLeft: (error) => outcomeOfFailure(claim, error, settings.retry, settings.ambiguousEmail)
        }))
      )
    }

    // A delivery runs to its end once started, even when the relay stops: the stop waits for it (bounded by
    // the attempt timeout) instead of leaving an attempt whose outcome the ledger would then call ambiguous.
    // When its outcome cannot be recorded, the claim is dropped from `working`: its lease then expires and the
    // next claim records the attempt as ambiguous and tries again.
    const deliver = (claim: Claim) =>
      Effect.flatMap(
        Effect.ensuring(attempt(claim), Effect.sync(() => (sending--, nudge()))),
        (outcome) => record(claim, outcome)
      ).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning("outbox relay: could not record an outcome; the message waits for its lease to expire")
            .pipe(Effect.annotateLogs({ key: claim.key, cause: Cause.pretty(cause) }))
        ),
        Effect.withSpan("OutboxRelay.deliver", {
          captureStackTrace: false,
          attributes: { "message.key": claim.key, channel: claim.channel, attempt: claim.attempt }
        }),
        Effect.ensuring(Effect.sync(() => (working.delete(leaseOf(claim)), nudge()))),
        Effect.uninterruptible
      )

    // Failures and defects alike are logged and retried: a relay whose loop died would keep renewing leases and
    // reporting gauges while delivering nothing.
    const retryQuietly = <A, E>(label: string, effect: Effect.Effect<A, E>): Effect.Effect<A> =>
      effect.pipe(
        Effect.sandbox,
        Effect.tapError((cause) => Effect.logWarning(`outbox relay: ${label} failed`, cause)),
        Effect.retry(Schedule.spaced(settings.pollInterval)),
        Effect.orDie
      )

    yield* Effect.addFinalizer(() =>
      ledger.release(owner).pipe(
        Effect.flatMap((released) =>
          Effect.logInfo("outbox relay stopped").pipe(Effect.annotateLogs({ relay: owner, released }))
        ),
        Effect.catchAllCause((cause) => Effect.logWarning("outbox relay: could not release its leases", cause))
      )
    )
    yield* retryQuietly(
      "renewing leases",
      Effect.suspend(() => ledger.renew(Array.from(working.values()), settings.lease))
    ).pipe(
      Effect.repeat(Schedule.spaced(Duration.divide(settings.lease, 3).pipe(Option.getOrElse(() => settings.lease)))),
      Effect.forkScoped
    )
    // The watchdog of attempts, like the writer of outcomes and the lease renewal, stops after the deliveries.
    yield* Effect.sleep(Duration.millis(Math.min(1_000, Math.max(10, timeoutMillis / 10)))).pipe(
      Effect.zipRight(watchdog),
      Effect.forever,
      Effect.forkScoped
    )
    // Closed before the writer of outcomes and the lease renewal stop: the stop waits for the deliveries.
    const deliveries = yield* FiberSet.make<void>()

    /** One round: claims what there is room for; true when there is likely more to claim at once. */
    const step = Effect.gen(function*() {
      const free = freeSlots()
      if (free < claimAtLeast && working.size > 0) return false
      // Claiming and starting the deliveries is one step that a stop waits for: a claim already records its
      // attempt as started, so a claim left unsent would later count as ambiguous.
      return yield* Effect.uninterruptible(Effect.gen(function*() {
        const claims = yield* ledger.claim({ owner, limit: free, lease: settings.lease })
        for (const claim of claims) {
          working.set(leaseOf(claim), claim)
          sending++
          yield* FiberSet.run(deliveries, deliver(claim))
        }
        return claims.length === free
      }))
    })

    const loop = Effect.gen(function*() {
      for (;;) {
        const busy = yield* retryQuietly("claiming work", step)
        if (!busy) yield* Queue.take(signal)
      }
    })

    // New events are turned into messages beside the claims, not before them: the first messages go out while
    // the rest of a long outbox is still being expanded. Each batch wakes the loop for what it added.
    const expander = Effect.gen(function*() {
      for (;;) {
        yield* Queue.take(expandSignal)
        yield* retryQuietly(
          "expanding events",
          Effect.gen(function*() {
            for (;;) {
              const taken = yield* ledger.expand(settings.expandBatch)
              if (taken > 0) signal.unsafeOffer(undefined)
              if (taken < settings.expandBatch) return
            }
          })
        )
      }
    })

    // The poll: new events and due messages are looked for at least this often, whatever the wake-ups.
    const poll = Effect.sleep(settings.pollInterval).pipe(Effect.zipRight(wake), Effect.forever)

    yield* retryQuietly("refreshing the backlog gauges", Effect.flatMap(ledger.backlog, reportBacklog)).pipe(
      Effect.repeat(Schedule.spaced(settings.metricsInterval)),
      Effect.forkScoped
    )
    yield* Stream.runForEach(ledger.wakeups, () => wake).pipe(Effect.forkScoped)
    yield* Effect.forkScoped(expander)
    yield* Effect.forkScoped(loop)
    yield* Effect.forkScoped(poll)
    yield* wake
    yield* Effect.logInfo("outbox relay started").pipe(
      Effect.annotateLogs({ relay: owner, concurrency: settings.concurrency })
    )
    return { relayId: owner, wake: Effect.asVoid(wake) }
  })

/**
 * A relay for the lifetime of the layer. On interruption (SIGTERM through `NodeRuntime.runMain`, or the end of
 * the scope) it stops claiming, lets the attempts under way finish and record their outcome, gives up its other
 * leases, and only then lets the scope close.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<OutboxRelay, never, DeliveryLedger | TenantNotifications> =>
  Layer.scoped(OutboxRelay, make(options))

/**
 * {@link layer} with its options read from `Config`. `TenantInfra.relayConfig` reads them from the `RELAY_*`
 * environment variables.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<OutboxRelay, ConfigError, DeliveryLedger | TenantNotifications> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
