/**
 * The `Tenant` aggregate: its fields, their validation and normalisation rules, and the schemas that decode
 * untrusted input into them. State changes live in `TenantLifecycle`; this module only describes what a valid
 * tenant is.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Struct from "effect/Struct"

const utf8 = new TextEncoder()

// A NUL or a lone surrogate is valid in a JavaScript string and invalid in PostgreSQL text and in JSON sent to
// most services: refusing it at the boundary keeps every layer able to store what it accepted.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Text that every store can hold: no NUL character, no unpaired surrogate.
 *
 * @since 0.1.0
 * @category models
 */
export const StorableText = Schema.String.pipe(
  Schema.filter((text) => !text.includes("\u0000") || "must not contain a NUL character"),
  Schema.filter((text) => !LONE_SURROGATE.test(text) || "must not contain an unpaired surrogate")
)

/**
 * A point in time that every store can hold: a valid date between the years 1 and 9999.
 *
 * @since 0.1.0
 * @category models
 */
export const Timestamp = Schema.ValidDateFromSelf.pipe(
  Schema.filter((date) => {
    const year = date.getUTCFullYear()
    return (year >= 1 && year <= 9999) || "must be between the years 1 and 9999"
  })
)

/**
 * {@link Timestamp} encoded as an ISO 8601 string.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TimestampFromString = Schema.compose(Schema.DateFromString, Timestamp, { strict: false })

const codePointLength = (value: string): number => {
  let length = 0
  for (const _ of value) length++
  return length
}

/**
 * A tenant's identity: a UUID in lower case (the form PostgreSQL gives back, so that an id compares equal
 * wherever it was stored), branded so that it cannot be confused with another id.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantId = Schema.UUID.pipe(
  Schema.lowercased({ message: () => "must be a UUID in lower case" }),
  Schema.brand("TenantId")
)

/**
 * @since 0.1.0
 * @category models
 */
export type TenantId = typeof TenantId.Type

const LOWER_CASE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Whether `input` is a {@link TenantId}: what `Schema.is(TenantId)` answers, by one regular expression, for the
 * paths that check an id on every call (a lookup by id).
 *
 * @since 0.1.0
 * @category guards
 */
export const isTenantId = (input: unknown): input is TenantId =>
  typeof input === "string" && LOWER_CASE_UUID.test(input)

const CODE_START = /^[a-z]/
const CODE_CHARACTERS = /^[a-z0-9-]+$/

/**
 * A tenant's code as stored: lower case, 3-50 characters, starting with a letter, letters, digits and single
 * hyphens, no trailing hyphen. See {@link TenantCodeFromInput} for the normalising decoder.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantCode = Schema.String.pipe(
  Schema.minLength(3, { message: () => "must be at least 3 characters" }),
  Schema.maxLength(50, { message: () => "must be at most 50 characters" }),
  Schema.pattern(CODE_START, { message: () => "must start with a letter (a-z)" }),
  Schema.pattern(CODE_CHARACTERS, { message: () => "may contain only letters a-z, digits and hyphens" }),
  Schema.filter((code) => !code.includes("--") || "must not contain two hyphens in a row"),
  Schema.filter((code) => !code.endsWith("-") || "must not end with a hyphen"),
  Schema.annotations({ identifier: "TenantCode" })
)

// Only A-Z: `toLowerCase` maps some other characters into a-z (the Kelvin sign to `k`, `İ` to `i` and a mark),
// which would let a look-alike pass as a plain letter.
const asciiLowerCase = (input: string): string => input.replace(/[A-Z]+/g, (letters) => letters.toLowerCase())

/**
 * Normalises a code the way users type it: trimmed, A-Z lower-cased, spaces and `_` turned into `-`. Other
 * characters are kept, for the code's rules to refuse.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalizeCode = (input: string): string => asciiLowerCase(input.trim()).replace(/[_ ]/g, "-")

/**
 * Decodes a user-typed code into a {@link TenantCode}: `" My_Tenant "` becomes `"my-tenant"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantCodeFromInput = Schema.transform(Schema.String, TenantCode, {
  strict: true,
  decode: normalizeCode,
  encode: (code) => code
})

const NAME_CHARACTERS = /^[\p{L}\p{M}\p{Nd} .,&'’()\-_（）．，＆＇－＿]+$/u
const NAME_HAS_LETTER_OR_DIGIT = /[\p{L}\p{Nd}]/u

/**
 * A tenant's display name as stored: 2-100 characters, trimmed, single spaces; letters of any script, digits,
 * spaces and `. , & ' ( ) - _` (ASCII or full width). See {@link TenantNameFromInput} for the normalising
 * decoder.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantName = Schema.String.pipe(
  Schema.filter((name) => codePointLength(name) >= 2 || "must be at least 2 characters"),
  Schema.filter((name) => codePointLength(name) <= 100 || "must be at most 100 characters"),
  Schema.filter((name) => name === normalizeName(name) || "must be trimmed, with single spaces between words"),
  Schema.filter((name) =>
    NAME_CHARACTERS.test(name) ||
    "may contain only letters, digits, spaces and . , & ' ( ) - _"
  ),
  Schema.filter((name) => NAME_HAS_LETTER_OR_DIGIT.test(name) || "must contain a letter or a digit"),
  Schema.annotations({ identifier: "TenantName" })
)

/**
 * Normalises a name: Unicode NFC, trimmed, runs of whitespace collapsed to one space.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalizeName = (input: string): string => input.normalize("NFC").trim().replace(/\s+/gu, " ")

/**
 * Decodes a user-typed name into a {@link TenantName}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantNameFromInput = Schema.transform(Schema.String, TenantName, {
  strict: true,
  decode: normalizeName,
  encode: (name) => name
})

const HOSTNAME_PATTERN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const NUMERIC_LAST_LABEL = /\.\d+$/
const isHostname = (value: unknown): value is string =>
  typeof value === "string" && value.length <= 253 && HOSTNAME_PATTERN.test(value) && !NUMERIC_LAST_LABEL.test(value)

// RFC 5321's Mailbox without its rarely deliverable forms: a dot-string local part (no quoted strings) and a
// domain name (no address literals), all in ASCII, since SMTPUTF8 is not supported.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/
const ENCODED_WORD = /=\?.*\?=/

const emailProblem = (email: string): string | undefined => {
  if (email.length > 254) return "must be at most 254 characters"
  const at = email.lastIndexOf("@")
  if (at <= 0 || at === email.length - 1) return "must be an e-mail address such as admin@example.com"
  const local = email.slice(0, at)
  const domain = email.slice(at + 1)
  if (!LOCAL_PART.test(local)) {
    return "must be an e-mail address such as admin@example.com: before the @ only ASCII letters, digits, " +
      "!#$%&'*+-/=?^_`{|}~ and single dots between them"
  }
  if (local.length > 64) return "must have at most 64 characters before the @"
  if (ENCODED_WORD.test(local)) return "must not contain an encoded word (=?...?=) before the @"
  if (!isHostname(asciiLowerCase(domain))) {
    return "must have a host name such as example.com after the @ (use the xn-- form for non-ASCII names)"
  }
  return undefined
}

/**
 * An e-mail address as SMTP servers accept it (RFC 5321, ASCII only: SMTPUTF8 is not supported): at most 64
 * characters of letters, digits, `!#$%&'*+-/=?^_\`{|}~` and single dots before the `@` (no quoted strings, no
 * encoded words), a host name after it (internationalised names in their `xn--` form; no address literals), at
 * most 254 characters. The domain part is lower-cased by {@link EmailFromInput}.
 *
 * @since 0.1.0
 * @category models
 */
export const Email = Schema.String.pipe(
  Schema.filter((email) => emailProblem(email) ?? true),
  Schema.annotations({ identifier: "Email" })
)

const normalizeEmail = (input: string): string => {
  const trimmed = input.trim()
  const at = trimmed.lastIndexOf("@")
  return at < 0 ? trimmed : trimmed.slice(0, at) + asciiLowerCase(trimmed.slice(at))
}

/**
 * Decodes a typed e-mail address into an {@link Email}: trimmed, its domain lower-cased.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EmailFromInput = Schema.transform(Schema.String, Email, {
  strict: true,
  decode: normalizeEmail,
  encode: (email) => email
})

const PHONE_PATTERN = /^\+[1-9]\d{1,14}$/

/**
 * A phone number in E.164 form: `+`, a country code and at most 15 digits in all.
 *
 * @since 0.1.0
 * @category models
 */
export const Phone = Schema.String.pipe(
  Schema.pattern(PHONE_PATTERN, { message: () => "must be an E.164 number such as +8613800138000" }),
  Schema.annotations({ identifier: "Phone" })
)

/**
 * Decodes a phone number typed with spaces, dashes, dots or brackets (`+86 138-0013-8000`) into {@link Phone}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PhoneFromInput = Schema.transform(Schema.String, Phone, {
  strict: true,
  decode: (input) => input.replace(/[\s\-().]/g, ""),
  encode: (phone) => phone
})

/**
 * The languages notifications are written in.
 *
 * @since 0.1.0
 * @category models
 */
export const Locale = Schema.Literal("zh-CN", "en")

/**
 * @since 0.1.0
 * @category models
 */
export type Locale = typeof Locale.Type

/**
 * Whom to tell about the tenant, and in which language.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantContact = Schema.Struct({
  email: Email,
  phone: Schema.optionalWith(Phone, { exact: true }),
  locale: Locale
})

/**
 * @since 0.1.0
 * @category models
 */
export type TenantContact = typeof TenantContact.Type

/**
 * Decodes contact input: normalises e-mail and phone, and defaults the locale to `en`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantContactFromInput = Schema.Struct({
  email: EmailFromInput,
  phone: Schema.optionalWith(PhoneFromInput, { exact: true }),
  locale: Schema.optionalWith(Locale, { exact: true, default: () => "en" as const })
})

/**
 * A host name in ASCII (internationalised names in their `xn--` form): lower case, at least two labels of
 * 1-63 letters, digits and inner hyphens, at most 253 characters, not ending in a numeric label.
 *
 * @since 0.1.0
 * @category models
 */
export const Hostname = Schema.String.pipe(
  Schema.maxLength(253, { message: () => "must be at most 253 characters" }),
  Schema.pattern(HOSTNAME_PATTERN, {
    message: () => "must be a host name such as acme.example.com (use the xn-- form for non-ASCII names)"
  }),
  Schema.filter((host) => !NUMERIC_LAST_LABEL.test(host) || "must not end in a numeric label"),
  Schema.annotations({ identifier: "Hostname" })
)

/**
 * Decodes a typed host name: trimmed, lower-cased, without a trailing dot.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HostnameFromInput = Schema.transform(Schema.String, Hostname, {
  strict: true,
  decode: (input) => normalizeHostname(input),
  encode: (host) => host
})

/**
 * Normalises a host name the way users type it: trimmed, lower-cased, without a trailing dot.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalizeHostname = (input: string): string => asciiLowerCase(input.trim()).replace(/\.$/, "")

/**
 * The most keys a tenant's settings may hold.
 *
 * @since 0.1.0
 * @category models
 */
export const SETTINGS_MAX_KEYS = 100

/**
 * The most bytes a tenant's settings may take as JSON.
 *
 * @since 0.1.0
 * @category models
 */
export const SETTINGS_MAX_BYTES = 16_384

/**
 * One setting's value: a string of at most 2,000 characters, a finite number, a boolean or null.
 *
 * @since 0.1.0
 * @category models
 */
export const SettingValue = Schema.Union(
  StorableText.pipe(Schema.maxLength(2000, { message: () => "must be at most 2000 characters" })),
  Schema.Finite,
  Schema.Boolean,
  Schema.Null
).annotations({ description: "text of at most 2000 characters, a finite number, true, false or null" })

/**
 * @since 0.1.0
 * @category models
 */
export type SettingValue = typeof SettingValue.Type

const SETTING_KEY = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/
const SETTINGS_SHAPE = `a JSON object of at most ${SETTINGS_MAX_KEYS} keys`

const isPlainObject = (input: unknown): input is { readonly [key: string]: SettingValue } => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return false
  const prototype: unknown = Object.getPrototypeOf(input)
  return prototype === Object.prototype || prototype === null
}

// Checked before the record's values: an object of a million keys is refused by its size, not after a million
// values were checked. A date, a map or a class instance is refused rather than read as an empty object.
const SettingsObject = Schema.declare(isPlainObject, { description: SETTINGS_SHAPE }).pipe(
  Schema.filter((settings) => Object.keys(settings).length <= SETTINGS_MAX_KEYS || `must be ${SETTINGS_SHAPE}`)
)

const SettingsRecord = Schema.Record({ key: Schema.String, value: SettingValue }).pipe(
  // Keys are checked here, not by the record's key schema: Schema.Record drops keys that fail the key schema
  // as excess properties, which would lose a stored setting silently instead of refusing it.
  Schema.filter((settings) =>
    Object.keys(settings)
      .filter((key) => !SETTING_KEY.test(key))
      .map((key) => ({
        path: [key],
        message: "setting keys start with a letter and hold at most 64 letters, digits, '.', '_' or '-'"
      }))
  ),
  Schema.filter((settings) => Object.keys(settings).length <= SETTINGS_MAX_KEYS || `must be ${SETTINGS_SHAPE}`),
  Schema.filter((settings) =>
    utf8.encode(JSON.stringify(settings)).length <= SETTINGS_MAX_BYTES ||
    `must take at most ${SETTINGS_MAX_BYTES} bytes as JSON`
  )
)

const inKeyOrder = (keys: ReadonlyArray<string>): boolean => {
  let previous = ""
  for (const key of keys) {
    if (key < previous) return false
    previous = key
  }
  return true
}

/**
 * Settings with their keys in ascending order (setting keys are ASCII, so this is also code point order): the
 * one order every layer gives them back in. PostgreSQL's `jsonb` keeps its own order, and a JavaScript object
 * the order its keys were added in; without one order, equal settings would print as different JSON.
 *
 * @since 0.1.0
 * @category constructors
 */
export const canonicalSettings = <S extends { readonly [key: string]: SettingValue }>(settings: S): S => {
  const keys = Object.keys(settings)
  if (inKeyOrder(keys)) return settings
  const sorted: Record<string, SettingValue> = {}
  for (const key of keys.sort()) sorted[key] = settings[key] as SettingValue
  return sorted as S
}

/**
 * A tenant's settings: a flat record from keys (`ui.theme`, `max_users`: a letter, then letters, digits,
 * `.`, `_` or `-`, at most 64 characters) to {@link SettingValue}s, with at most {@link SETTINGS_MAX_KEYS}
 * keys and {@link SETTINGS_MAX_BYTES} bytes of JSON. Decoding puts the keys in {@link canonicalSettings} order.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantSettings = Schema.transform(
  Schema.compose(SettingsObject, SettingsRecord, { strict: false }),
  Schema.typeSchema(SettingsRecord),
  { strict: true, decode: canonicalSettings, encode: (settings) => settings }
).annotations({ identifier: "TenantSettings" })

/**
 * @since 0.1.0
 * @category models
 */
export type TenantSettings = typeof TenantSettings.Type

/**
 * Where a tenant is in its life: see `TenantLifecycle` for the moves between them.
 *
 * @since 0.1.0
 * @category models
 */
export const TenantStatus = Schema.Literal("pending", "active", "suspended", "deleted")

/**
 * @since 0.1.0
 * @category models
 */
export type TenantStatus = typeof TenantStatus.Type

/**
 * Who made a change: a user id, a service name or `system`; 1-200 characters, trimmed.
 *
 * @since 0.1.0
 * @category models
 */
export const Actor = StorableText.pipe(
  Schema.trimmed({ message: () => "must not start or end with whitespace" }),
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(200, { message: () => "must be at most 200 characters" }),
  Schema.annotations({ identifier: "Actor" })
)

/**
 * Why a change was made: 1-500 characters, trimmed.
 *
 * @since 0.1.0
 * @category models
 */
export const Reason = StorableText.pipe(
  Schema.trimmed({ message: () => "must not start or end with whitespace" }),
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(500, { message: () => "must be at most 500 characters" }),
  Schema.annotations({ identifier: "Reason" })
)

/**
 * The last status change: who made it, when, and why when a reason was given.
 *
 * @since 0.1.0
 * @category models
 */
export const StatusChange = Schema.Struct({
  actor: Actor,
  at: TimestampFromString,
  reason: Schema.optionalWith(Reason, { exact: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export type StatusChange = typeof StatusChange.Type

/**
 * An aggregate version: 1 when created, one more for every event.
 *
 * @since 0.1.0
 * @category models
 */
export const Version = Schema.Int.pipe(Schema.greaterThanOrEqualTo(1), Schema.annotations({ identifier: "Version" }))

const TenantStruct = Schema.Struct({
  id: TenantId,
  code: TenantCode,
  name: TenantName,
  status: TenantStatus,
  contact: TenantContact,
  domain: Schema.optionalWith(Hostname, { exact: true }),
  settings: TenantSettings,
  version: Version,
  createdAt: TimestampFromString,
  updatedAt: TimestampFromString,
  deletedAt: Schema.optionalWith(TimestampFromString, { exact: true }),
  lastStatusChange: Schema.optionalWith(StatusChange, { exact: true })
})

const TenantFields = TenantStruct.pipe(
  Schema.filter((tenant) =>
    (tenant.status === "deleted") === (tenant.deletedAt !== undefined) ||
    "status is 'deleted' exactly when deletedAt is set"
  )
)

/**
 * The aggregate. Construct one through `TenantLifecycle.create`; a tenant is never changed in place:
 * each `TenantLifecycle` operation returns a new one together with its event.
 *
 * Invariant: `status` is `deleted` exactly when `deletedAt` is set.
 *
 * @since 0.1.0
 * @category models
 */
export class Tenant extends Schema.Class<Tenant>("tenant-infra/Tenant")(TenantFields) {
  /**
   * A live tenant is one that is not soft-deleted.
   *
   * @since 0.1.0
   */
  get isLive(): boolean {
    return this.status !== "deleted"
  }
}

const TenantProps = Schema.typeSchema(TenantFields)
const validateProps = Schema.decodeUnknownEither(TenantProps, { errors: "all" })

// The common case of `reconstitute`, a valid tenant read back from storage, checked in plain code by the same
// rules as the schemas above, which take about 15 us per tenant and are most of a read. It answers only what the
// schema would accept (tested against it, field by field and on random inputs) and gives up on anything else,
// valid or not, which the schema then checks and, when invalid, explains. It builds the fields the schema would
// hand back: the known ones, excess ones left out.

type Props = typeof TenantProps.Type
type Fields = Record<string, unknown>

const STATUSES: ReadonlySet<unknown> = new Set(TenantStatus.literals)
const LOCALES: ReadonlySet<unknown> = new Set(Locale.literals)

const isFields = (value: unknown): value is Fields =>
  typeof value === "object" && value !== null && !Array.isArray(value)
const has = (fields: Fields, key: string): boolean => Object.prototype.hasOwnProperty.call(fields, key)
// Own properties only, each read once: an inherited value is left to the schema (which reads a required field
// whether own or inherited), and a getter cannot answer one thing to the check and another to the copy.
const own = (fields: Fields, key: string): unknown => has(fields, key) ? fields[key] : undefined
const isStorable = (text: string): boolean => !text.includes("\u0000") && !LONE_SURROGATE.test(text)
const isText = (value: unknown, min: number, max: number): value is string =>
  typeof value === "string" && value.length >= min && value.length <= max && value === value.trim() &&
  isStorable(value)
const isTimestamp = (value: unknown): value is Date => {
  // The schema's calls, in its order: a valid date (getTime), then the year.
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) return false
  const year = value.getUTCFullYear()
  return year >= 1 && year <= 9999
}
const isCode = (value: unknown): value is string =>
  typeof value === "string" && value.length >= 3 && value.length <= 50 && CODE_START.test(value) &&
  CODE_CHARACTERS.test(value) && !value.includes("--") && !value.endsWith("-")
// For a name in ASCII the rules of TenantName come to this: NFC changes no ASCII text, the only whitespace
// NAME_CHARACTERS allows is the space, and its letters and digits are A-Z, a-z and 0-9. The Unicode rules (ICU's
// normalisation, property classes) cost several times more, most of all when their tables are not in cache.
const ASCII_NAME = /^[A-Za-z0-9.,&'()_-]+(?: [A-Za-z0-9.,&'()_-]+)*$/
const ASCII_LETTER_OR_DIGIT = /[A-Za-z0-9]/
const isName = (value: unknown): value is string => {
  if (typeof value !== "string") return false
  if (ASCII_NAME.test(value)) {
    return value.length >= 2 && value.length <= 100 && ASCII_LETTER_OR_DIGIT.test(value)
  }
  const length = codePointLength(value)
  return length >= 2 && length <= 100 && value === normalizeName(value) && NAME_CHARACTERS.test(value) &&
    NAME_HAS_LETTER_OR_DIGIT.test(value)
}
const isSettingValue = (value: unknown): boolean =>
  value === null || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value)) ||
  (typeof value === "string" && value.length <= 2000 && isStorable(value))

const quickContact = (value: unknown): Props["contact"] | undefined => {
  if (!isFields(value)) return undefined
  const email = own(value, "email")
  const locale = own(value, "locale")
  const phone = own(value, "phone")
  if (
    typeof email !== "string" || emailProblem(email) !== undefined ||
    !LOCALES.has(locale)
  ) return undefined
  if (!has(value, "phone")) return { email, locale: locale as Locale }
  return typeof phone === "string" && PHONE_PATTERN.test(phone) ? { email, phone, locale: locale as Locale } : undefined
}

const quickSettings = (value: unknown): Props["settings"] | undefined => {
  if (!isFields(value)) return undefined
  const keys = Object.keys(value)
  // Keys that are not enumerable strings (symbols, hidden ones) are left to the schema.
  if (keys.length > SETTINGS_MAX_KEYS || Reflect.ownKeys(value).length !== keys.length) return undefined
  const settings: Record<string, SettingValue> = {}
  // An upper bound of the settings' size as JSON, in UTF-8 bytes: braces, and per entry its key (letters, digits
  // and `._-`, never escaped), quotes, colon and comma, and its value: a string's code units take at most 6 bytes
  // each (`\u001f`), a number at most 24 characters, `false` 5. Most settings are far within the bound, and
  // are not encoded to find out.
  let bound = 2
  for (const key of keys) {
    const setting = value[key]
    if (!SETTING_KEY.test(key) || !isSettingValue(setting)) return undefined
    settings[key] = setting as SettingValue
    bound += key.length + 4 + (typeof setting === "string" ? setting.length * 6 + 2 : 24)
  }
  return bound <= SETTINGS_MAX_BYTES || utf8.encode(JSON.stringify(settings)).length <= SETTINGS_MAX_BYTES
    ? canonicalSettings(settings)
    : undefined
}

const quickStatusChange = (value: unknown): StatusChange | undefined => {
  if (!isFields(value)) return undefined
  const actor = own(value, "actor")
  const at = own(value, "at")
  const reason = own(value, "reason")
  if (!isText(actor, 1, 200) || !isTimestamp(at)) return undefined
  if (!has(value, "reason")) return { actor, at }
  return isText(reason, 1, 500) ? { actor, at, reason } : undefined
}

type Field = keyof Props
type Building = { -readonly [K in Field]?: Props[K] }

// One rule per field of the schema, keyed by its fields so that a field without a rule does not compile: the
// field's value as the schema would hand it back, or `undefined` to leave it to the schema.
const quickFields: { readonly [K in Field]: (value: unknown) => NonNullable<Props[K]> | undefined } = {
  id: (id) => isTenantId(id) ? id : undefined,
  code: (code) => isCode(code) ? code : undefined,
  name: (name) => isName(name) ? name : undefined,
  status: (status) => STATUSES.has(status) ? status as TenantStatus : undefined,
  contact: quickContact,
  domain: (domain) => isHostname(domain) ? domain : undefined,
  settings: quickSettings,
  version: (version) =>
    typeof version === "number" && Number.isSafeInteger(version) && version >= 1 ? version : undefined,
  createdAt: (at) => isTimestamp(at) ? at : undefined,
  updatedAt: (at) => isTimestamp(at) ? at : undefined,
  deletedAt: (at) => isTimestamp(at) ? at : undefined,
  lastStatusChange: quickStatusChange
}

// In the schema's order of fields, as its decode builds them: the order shows in JSON and in logs.
const fieldNames: ReadonlyArray<Field> = Struct.keys(TenantStruct.fields)
const OPTIONAL: ReadonlySet<PropertyKey> = new Set(
  SchemaAST.getPropertySignatures(Schema.typeSchema(TenantStruct).ast).flatMap((field) =>
    field.isOptional ? [field.name] : []
  )
)

const quickField = <K extends Field>(fields: Fields, name: K, into: Building): boolean => {
  if (!has(fields, name)) return OPTIONAL.has(name)
  const value = quickFields[name](fields[name])
  if (value === undefined) return false
  into[name] = value
  return true
}

const quickProps = (value: unknown): Props | undefined => {
  if (!isFields(value)) return undefined
  const props: Building = {}
  for (const name of fieldNames) {
    if (!quickField(value, name, props)) return undefined
  }
  if ((props.status === "deleted") !== (props.deletedAt !== undefined)) return undefined
  // Every required field was found valid: quickField answers false for a missing one.
  return props as Props
}

/**
 * Rebuilds a tenant from stored fields (dates as `Date`s, optional fields absent): the reconstitution path that
 * storage uses. It checks every field and the aggregate's invariant, puts the settings in
 * {@link canonicalSettings} order, and raises no event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reconstitute = (props: unknown): Either.Either<Tenant, ParseResult.ParseError> => {
  const valid = quickProps(props)
  return valid === undefined
    ? Either.map(
      validateProps(props),
      (checked) =>
        new Tenant({ ...checked, settings: canonicalSettings(checked.settings) }, { disableValidation: true })
    )
    : Either.right(instanceOf(valid))
}

// What `new Tenant(props, { disableValidation: true })` builds (the fields assigned to an object of the class's
// prototype) without its copy of the fields and its search for defaults, which the fields have none of: a few
// microseconds of every read.
const instanceOf = (props: Props): Tenant => Object.assign(Object.create(Tenant.prototype) as Tenant, props)

/**
 * The input that creates a tenant, as an application receives it. Strings are normalised before they are
 * checked (see the `*FromInput` schemas); unknown fields are rejected.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreateTenantInput = Schema.Struct({
  code: TenantCodeFromInput,
  name: TenantNameFromInput,
  contact: TenantContactFromInput,
  domain: Schema.optionalWith(HostnameFromInput, { exact: true }),
  settings: Schema.optionalWith(TenantSettings, { exact: true, default: () => ({}) })
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type CreateTenantInput = typeof CreateTenantInput.Encoded

/**
 * The input that changes a tenant's details. Every field is optional; `contact` and `settings` replace the
 * whole value, and `domain: null` removes the domain.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UpdateTenantInput = Schema.Struct({
  code: Schema.optionalWith(TenantCodeFromInput, { exact: true }),
  name: Schema.optionalWith(TenantNameFromInput, { exact: true }),
  contact: Schema.optionalWith(TenantContactFromInput, { exact: true }),
  domain: Schema.optionalWith(Schema.NullOr(HostnameFromInput), { exact: true }),
  settings: Schema.optionalWith(TenantSettings, { exact: true })
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type UpdateTenantInput = typeof UpdateTenantInput.Encoded
