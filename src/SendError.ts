/**
 * Why a message was not (or may not have been) delivered, in five classes that say what a retry can do:
 *
 * - `Transient`: not accepted, for a passing reason (SMTP 4xx, connection refused or reset before the body,
 *   HTTP 5xx). Retried.
 * - `RateLimited`: not accepted, the provider asked us to slow down (SMTP 421/450/451 rate replies, HTTP 429).
 *   Retried after the wait it named.
 * - `Permanent`: will never be accepted as it is (SMTP 5xx such as 550, HTTP 400/404/422, a bad number or
 *   header). Never retried.
 * - `Misconfigured`: our side is wrong for every message (SMTP 535 authentication, HTTP 401/403). Never retried.
 * - `Ambiguous`: the connection dropped after the whole message went out and before the reply, so it may have
 *   been delivered. Retried for SMS only, where the gateway deduplicates by idempotency key.
 *
 * Each keeps the provider's code and response. None ever holds a password or an API key.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * Where the message was going.
 *
 * @since 0.1.0
 * @category models
 */
export const Channel = Schema.Literal("email", "sms")

/**
 * @since 0.1.0
 * @category models
 */
export type Channel = typeof Channel.Type

const fields = {
  channel: Channel,
  /** What went wrong, in words, without secrets. */
  detail: Schema.String,
  /** The provider's code: an SMTP reply code, an HTTP status, or a client error code such as `ECONNECTION`. */
  code: Schema.optionalWith(Schema.Union(Schema.Number, Schema.String), { exact: true }),
  /** The provider's response text, as far as it came. */
  response: Schema.optionalWith(Schema.String, { exact: true }),
  cause: Schema.optionalWith(Schema.Defect, { exact: true })
}

const describe = (error: { readonly channel: Channel; readonly detail: string; readonly code?: number | string }) =>
  `${error.channel === "email" ? "E-mail" : "SMS"} ${error.detail}${error.code === undefined ? "" : ` (${error.code})`}`

/**
 * Not accepted, for a reason that passes: retrying can help.
 *
 * @since 0.1.0
 * @category errors
 */
export class Transient extends Schema.TaggedError<Transient>("tenant-infra/SendError/Transient")("Transient", fields) {
  override get message(): string {
    return describe(this)
  }
}

/**
 * Not accepted: the provider asked us to wait `retryAfter` (when it said how long).
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>("tenant-infra/SendError/RateLimited")("RateLimited", {
  ...fields,
  retryAfter: Schema.optionalWith(Schema.DurationFromMillis, { exact: true })
}) {
  override get message(): string {
    return describe(this)
  }
}

/**
 * Will never be accepted as it is: a rejected recipient, a bad number, a message the provider refuses.
 *
 * @since 0.1.0
 * @category errors
 */
export class Permanent extends Schema.TaggedError<Permanent>("tenant-infra/SendError/Permanent")("Permanent", fields) {
  override get message(): string {
    return describe(this)
  }
}

/**
 * Our configuration is wrong (credentials, endpoint): every message would fail the same way until it is fixed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Misconfigured
  extends Schema.TaggedError<Misconfigured>("tenant-infra/SendError/Misconfigured")("Misconfigured", fields)
{
  override get message(): string {
    return describe(this)
  }
}

/**
 * The whole message went out and the connection dropped before the provider answered: it may or may not have
 * been delivered. Resending risks a duplicate; not resending risks a loss.
 *
 * @since 0.1.0
 * @category errors
 */
export class Ambiguous extends Schema.TaggedError<Ambiguous>("tenant-infra/SendError/Ambiguous")("Ambiguous", fields) {
  override get message(): string {
    return describe(this)
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type SendError = Transient | RateLimited | Permanent | Misconfigured | Ambiguous

/**
 * @since 0.1.0
 * @category errors
 */
export const SendError = Schema.Union(Transient, RateLimited, Permanent, Misconfigured, Ambiguous)

/**
 * Whether trying the same message again can succeed on `channel`: `Transient` and `RateLimited` always,
 * `Ambiguous` on SMS only (the gateway recognises the repeat by its idempotency key; an SMTP server would deliver
 * it twice).
 *
 * @since 0.1.0
 * @category guards
 */
export const isRetryable = (error: SendError): boolean => {
  switch (error._tag) {
    case "Transient":
    case "RateLimited":
      return true
    case "Ambiguous":
      return error.channel === "sms"
    case "Permanent":
    case "Misconfigured":
      return false
  }
}
