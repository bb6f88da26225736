/**
 * The outbox relay's metrics: counters of attempts and outcomes, tagged by channel, outcome and error, and
 * gauges of the ledger's backlog across all relays. `OutboxRelay` exports the metrics themselves.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { Backlog, Claim, Outcome } from "../DeliveryLedger.js"
import type { Channel, SendError } from "../SendError.js"

export const attemptsFinished = Metric.counter("tenant_outbox_attempts", {
  description: "Delivery attempts finished, by outcome",
  incremental: true
})

export const delivered = Metric.counter("tenant_outbox_delivered", {
  description: "Messages accepted by their provider",
  incremental: true
})

export const deadLettered = Metric.counter("tenant_outbox_dead_lettered", {
  description: "Messages that will not be retried until replayed",
  incremental: true
})

export const fenced = Metric.counter("tenant_outbox_fenced", {
  description: "Outcomes refused because the lease had passed to another relay",
  incremental: true
})

export const pending = Metric.gauge("tenant_outbox_pending", { description: "Messages waiting for delivery" })

export const inFlight = Metric.gauge("tenant_outbox_in_flight", { description: "Messages leased to a relay" })

export const dead = Metric.gauge("tenant_outbox_dead", { description: "Dead-lettered messages" })

export const lag = Metric.gauge("tenant_outbox_lag_seconds", {
  description: "Age of the oldest event whose messages are not all delivered or dead"
})

/** What one relay counts, as it happens. */
export interface RelayCounters {
  /** An attempt ended: `sent`, or the tag of its error. */
  readonly attemptFinished: (channel: Channel, outcome: "sent" | SendError["_tag"]) => Effect.Effect<void>
  /** An outcome was written (`recorded`), or refused because another relay had claimed the message since. */
  readonly outcomeRecorded: (claim: Pick<Claim, "channel">, outcome: Outcome, recorded: boolean) => Effect.Effect<void>
}

export const makeRelayCounters = (): RelayCounters => {
  // Tagging a metric builds a new key each time; these are built once per metric and tags.
  const counters = new Map<Metric.Metric.Counter<number>, Map<string, Metric.Metric.Counter<number>>>()
  const counter = (metric: Metric.Metric.Counter<number>, ...tags: ReadonlyArray<readonly [string, string]>) => {
    const id = tags.map(([key, value]) => `${key}=${value}`).join("|")
    let byTags = counters.get(metric)
    if (byTags === undefined) {
      byTags = new Map()
      counters.set(metric, byTags)
    }
    let tagged = byTags.get(id)
    if (tagged === undefined) {
      tagged = tags.reduce((current, [key, value]) => Metric.tagged(current, key, value), metric)
      byTags.set(id, tagged)
    }
    return tagged
  }
  return {
    attemptFinished: (channel, outcome) =>
      Metric.increment(counter(attemptsFinished, ["channel", channel], ["outcome", outcome])),
    outcomeRecorded: (claim, outcome, recorded) => {
      if (!recorded) return Metric.increment(fenced)
      switch (outcome._tag) {
        case "Delivered":
          return Metric.increment(counter(delivered, ["channel", claim.channel]))
        case "Retry":
          return Effect.void
        case "Dead":
          return Metric.increment(counter(deadLettered, ["channel", claim.channel], ["error", outcome.error._tag]))
        case "Cancelled":
          return Metric.increment(counter(deadLettered, ["channel", claim.channel], ["error", "Cancelled"]))
      }
    }
  }
}

/** Sets the backlog gauges from the ledger's `backlog`; the lag is measured from now. */
export const reportBacklog = (backlog: Backlog): Effect.Effect<void> =>
  Effect.all([
    Metric.set(pending, backlog.pending),
    Metric.set(inFlight, backlog.inFlight),
    Metric.set(dead, backlog.dead),
    Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        Metric.set(
          lag,
          Option.match(backlog.oldestPendingAt, {
            onNone: () => 0,
            onSome: (at) => Math.max(0, (now - at.getTime()) / 1000)
          })
        )
    )
  ], { discard: true })
