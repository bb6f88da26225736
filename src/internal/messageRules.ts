import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import type { EmailMessage } from "../Mailer.js"
import { Permanent } from "../SendError.js"
import type { SmsMessage } from "../SmsGateway.js"

/** A short, stable digest of a message's key: the same event and recipient always give the same value. */
export const digestOf = (key: string): string => createHash("sha256").update(key).digest("hex").slice(0, 32)

/** The domain of an address (`noreply@acme.test` gives `acme.test`), for the right side of a Message-ID. */
export const domainOf = (address: string): string => {
  const at = address.lastIndexOf("@")
  const domain = at < 0 ? "" : address.slice(at + 1).replace(/>.*$/, "").trim().toLowerCase()
  return /^[a-z0-9.-]+$/.test(domain) ? domain : "tenant-infra.invalid"
}

/** Control characters (CR and LF above all) that must never reach a header. */
export const hasControlCharacters = (value: string): boolean => /[\x00-\x1f\x7f]/.test(value)

/**
 * The `Message-ID` a message with this key gets when sent from `from`: `<digest@from-domain>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const messageIdFor = (key: string, from: string): string => `<${digestOf(key)}@${domainOf(from)}>`

/**
 * Refuses a message whose header values hold line breaks or control characters: sending it would let data
 * write headers (or SMTP commands) of its own.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkHeaders = (message: EmailMessage, from: string): Effect.Effect<void, Permanent> => {
  const values: ReadonlyArray<readonly [string, string]> = [
    ["subject", message.subject],
    ["to", message.to],
    ["from", from],
    ...Object.entries(message.headers ?? {}).flatMap(([name, value]) => [[`header name`, name], [name, value]] as const)
  ]
  const bad = values.find(([, value]) => hasControlCharacters(value))
  return bad === undefined ? Effect.void : Effect.fail(
    new Permanent({ channel: "email", detail: `refused: the ${bad[0]} holds a line break or control character` })
  )
}

/**
 * The `Idempotency-Key` an SMS with this key is sent with.
 *
 * @since 0.1.0
 * @category constructors
 */
export const idempotencyKeyFor = (key: string): string => digestOf(key)

const E164 = /^\+[1-9]\d{1,14}$/

/**
 * Refuses a number that is not E.164 before any gateway sees it: no retry can make it valid.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkNumber = (message: SmsMessage): Effect.Effect<void, Permanent> =>
  E164.test(message.to) ? Effect.void : Effect.fail(
    new Permanent({ channel: "sms", detail: "refused: the number is not in E.164 form (+ and up to 15 digits)" })
  )
