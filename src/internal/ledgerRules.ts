import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import type { AttemptOutcome, Outcome, Status } from "../DeliveryLedger.js"
import { MAX_LIST_LIMIT } from "../DeliveryLedger.js"
import * as InvalidInput from "../InvalidInput.js"

export const decodeListOptions = InvalidInput.decode(
  "delivery list options",
  Schema.Struct({
    // Absent and undefined alike mean "the default", as the options' types say.
    status: Schema.optionalWith(Schema.Literal("pending", "delivered", "dead"), { default: () => "dead" }),
    limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, MAX_LIST_LIMIT)), { default: () => 100 }),
    afterKey: Schema.optional(Schema.String)
  })
)

/** How an outcome changes the message and closes its attempt; one reading for both stores. */
export interface Transition {
  readonly status: Status
  readonly attemptOutcome: AttemptOutcome
  readonly detail: string | undefined
  readonly providerId: string | undefined
  readonly lastError: string | undefined
  readonly failed: number
  readonly ambiguous: number
  readonly retryAfterMillis: number
}

export const transitionOf = (outcome: Outcome): Transition => {
  switch (outcome._tag) {
    case "Delivered":
      return {
        status: "delivered",
        attemptOutcome: "sent",
        detail: `accepted as ${outcome.providerId}`,
        providerId: outcome.providerId,
        lastError: undefined,
        failed: 0,
        ambiguous: 0,
        retryAfterMillis: 0
      }
    case "Retry":
    case "Dead":
      return {
        status: outcome._tag === "Retry" ? "pending" : "dead",
        attemptOutcome: outcome.error._tag,
        detail: outcome.error.message,
        providerId: undefined,
        lastError: outcome._tag === "Dead" ? outcome.reason : outcome.error.message,
        failed: 1,
        ambiguous: outcome.error._tag === "Ambiguous" ? 1 : 0,
        retryAfterMillis: outcome._tag === "Retry" ? Duration.toMillis(outcome.after) : 0
      }
    case "Cancelled":
      return {
        status: "dead",
        attemptOutcome: "Cancelled",
        detail: outcome.reason,
        providerId: undefined,
        lastError: outcome.reason,
        failed: 0,
        ambiguous: 0,
        retryAfterMillis: 0
      }
  }
}

export const INTERRUPTED_DETAIL =
  "the relay stopped or lost its lease during the attempt; the message may have been sent"

/** Longer than any history a ledger holds (PostgreSQL's dates start 4713 BC): `prune` finds nothing that old. */
export const LONGEST_HISTORY = Duration.days(365 * 5_000)
