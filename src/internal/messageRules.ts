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

/**
 * Characters no header value may carry: controls (Cc: CR and LF above all, but also the C1 controls such as
 * U+0085), format characters (Cf: zero-width characters, the soft hyphen and every bidirectional control such as
 * the right-to-left override U+202E), the line and paragraph separators (Zl, Zp), and halves of surrogate pairs
 * (Cs), which cannot be encoded.
 */
const UNSAFE_IN_HEADER = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u

/** Whether `value` holds a character that must never reach a header (see `UNSAFE_IN_HEADER`). */
export const hasUnsafeHeaderCharacters = (value: string): boolean => UNSAFE_IN_HEADER.test(value)

const unsafeCharacterIn = (field: string) =>
  `the ${field} holds a line break or a control, format or bidirectional character`

/**
 * An RFC 2047 encoded word (`=?charset?q?...?=`). Inside an address it is valid `atext` in a local part, yet RFC
 * 2047 forbids it there and decoders that decode it anyway show another address than the one the message goes to.
 * Address headers are refused when they hold one anywhere, display name included: telling the two apart takes an
 * address parser (the driver's), and a display name never needs one, since it is encoded when sent.
 */
const ENCODED_WORD = /=\?[\s\S]*\?=/

/**
 * Why `value`, an address header value (`to`, `from`), can never be delivered, or `undefined` when it can be
 * tried: an unsafe character or an encoded word anywhere in it.
 */
export const addressProblem = (field: string, value: string): string | undefined => {
  if (hasUnsafeHeaderCharacters(value)) return unsafeCharacterIn(field)
  if (ENCODED_WORD.test(value)) {
    return `the ${field} holds an encoded word (=?...?=), which is not allowed in an address header (a display ` +
      `name is encoded when sent: write it as plain text)`
  }
  return undefined
}

/**
 * The `Message-ID` a message with this key gets when sent from `from`: `<digest@from-domain>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const messageIdFor = (key: string, from: string): string => `<${digestOf(key)}@${domainOf(from)}>`

/**
 * Refuses a message that no header may carry as it is, before any server sees it: a header value (subject,
 * recipient, sender, extra headers and their names) holding a line break or another control character (Cc), a
 * format character (Cf: zero-width characters, bidirectional controls), a line or paragraph separator (Zl, Zp)
 * or half a surrogate pair; or a recipient or sender whose address holds an RFC 2047 encoded word. Line breaks
 * would let data write headers (or SMTP commands) of its own; the others make a header read differently from
 * what it is, or an address that no server delivers to.
 *
 * @since 0.1.0
 * @category guards
 */
export const checkHeaders = (message: EmailMessage, from: string): Effect.Effect<void, Permanent> => {
  const values: ReadonlyArray<readonly [string, string]> = [
    ["subject", message.subject],
    ...Object.entries(message.headers ?? {}).flatMap(([name, value]) =>
      [["name of a header", name], [`${name.slice(0, 100)} header`, value]] as const
    )
  ]
  const unsafe = values.find(([, value]) => hasUnsafeHeaderCharacters(value))
  const problem = addressProblem("recipient", message.to) ?? addressProblem("sender", from) ??
    (unsafe === undefined ? undefined : unsafeCharacterIn(unsafe[0]))
  return problem === undefined
    ? Effect.void
    : Effect.fail(new Permanent({ channel: "email", detail: `refused: ${problem}` }))
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
 * @category guards
 */
export const checkNumber = (message: SmsMessage): Effect.Effect<void, Permanent> =>
  E164.test(message.to) ? Effect.void : Effect.fail(
    new Permanent({ channel: "sms", detail: "refused: the number is not in E.164 form (+ and up to 15 digits)" })
  )
