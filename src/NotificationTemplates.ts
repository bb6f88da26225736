/**
 * The texts of tenant lifecycle notifications, in Simplified Chinese (`zh-CN`) and English (`en`), chosen by the
 * tenant's `contact.locale`. Every function is pure: data and locale in, message out.
 *
 * | template | e-mail | SMS |
 * | --- | --- | --- |
 * | welcome (tenant created, awaiting activation) | {@link welcomeEmail} | |
 * | activated | {@link activatedEmail} (for tenants without a phone) | {@link activatedSms} |
 * | suspended, with the reason | {@link suspendedEmail} | |
 * | deleted, with the reason | {@link deletedEmail} | |
 * | restored (suspended until activated) | {@link restoredEmail} | |
 *
 * Tenant data is attacker-controlled (anyone who can create a tenant chooses its name) and the messages go out
 * from our own domain, so each output is made safe for where it goes:
 *
 * - HTML is built only with the {@link html} tagged template, which escapes every interpolated string; the only
 *   way to put markup into a message is a {@link SafeHtml} fragment, and only `html` makes those. A name such as
 *   `<script>alert(1)</script>` arrives as text.
 * - Subjects are headers: no control character (Cc), line or paragraph separator (Zl, Zp) or other line break
 *   from tenant data reaches them (runs of them become one space), nor any format character (Cf: zero-width
 *   characters, the soft hyphen, bidirectional controls) or half of a surrogate pair (removed); and they stay
 *   within {@link SUBJECT_MAX_LENGTH} characters, the name being shortened with an ellipsis when needed. So a
 *   subject always passes `Mailer.checkHeaders`.
 * - The text part carries the values as they are, except that names, codes and actors are kept on one line (a
 *   name with a line break could otherwise forge a line of the message) and a reason keeps its line breaks.
 * - The SMS fits {@link SMS_MAX_SEGMENTS} segment, shortening the tenant name rather than the fixed words.
 *
 * @since 0.1.0
 */
import * as SmsText from "./SmsText.js"
import type { Locale } from "./Tenant.js"

/**
 * What the templates need to know about an event.
 *
 * @since 0.1.0
 * @category models
 */
export interface TemplateData {
  readonly tenantName: string
  readonly tenantCode: string
  /** When the event happened; shown in UTC. */
  readonly occurredAt: Date
  /** Who made the change (a user id, a service name or `system`). */
  readonly actor?: string
  /** Why; suspension and deletion messages say so when there is none. */
  readonly reason?: string
}

/**
 * A rendered e-mail: a one-line subject, a plain text part and an HTML part.
 *
 * @since 0.1.0
 * @category models
 */
export interface RenderedEmail {
  readonly subject: string
  readonly text: string
  readonly html: string
}

/**
 * The most characters (code points) a subject has. RFC 5322 allows 998 octets a line, but clients cut subjects
 * far sooner, and a long subject is a sign of a stuffed name.
 *
 * @since 0.1.0
 * @category models
 */
export const SUBJECT_MAX_LENGTH = 150

/**
 * How many segments the activation SMS may take: one, so that it costs one message (see `SmsText`).
 *
 * @since 0.1.0
 * @category models
 */
export const SMS_MAX_SEGMENTS = 1

// -----------------------------------------------------------------------------
// Safe HTML
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category html
 */
export const SafeHtmlTypeId: unique symbol = Symbol.for("tenant-infra/NotificationTemplates/SafeHtml")

/**
 * @since 0.1.0
 * @category html
 */
export type SafeHtmlTypeId = typeof SafeHtmlTypeId

/**
 * A fragment of HTML that is safe to concatenate: its markup was written in our code and every value in it was
 * escaped. Only {@link html} makes one. It is an object, not a branded string, so that `html` can tell at run
 * time a fragment to keep from a string to escape.
 *
 * @since 0.1.0
 * @category html
 */
export interface SafeHtml {
  readonly [SafeHtmlTypeId]: SafeHtmlTypeId
  readonly value: string
}

/**
 * What {@link html} accepts between its literal parts: strings and numbers (escaped), fragments and lists of
 * fragments (kept as they are).
 *
 * @since 0.1.0
 * @category html
 */
export type HtmlValue = string | number | SafeHtml | ReadonlyArray<SafeHtml>

const trusted = (value: string): SafeHtml => ({ [SafeHtmlTypeId]: SafeHtmlTypeId, value })

const isSafeHtml = (value: unknown): value is SafeHtml =>
  typeof value === "object" && value !== null && SafeHtmlTypeId in value

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "'": "&#39;"
}

/**
 * Escapes `& < > " '`, which makes a string safe as HTML text and inside a quoted attribute value.
 *
 * @since 0.1.0
 * @category html
 */
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char)

const fragment = (value: HtmlValue): string =>
  typeof value === "string" || typeof value === "number"
    ? escapeHtml(String(value))
    : isSafeHtml(value)
    ? value.value
    : value.map((part) => part.value).join("")

/**
 * Builds HTML from a template literal: the literal parts are trusted markup, every interpolated string or number
 * is escaped, and only {@link SafeHtml} fragments are inserted as they are.
 *
 * @example
 * ```ts
 * import * as NotificationTemplates from "tenant-infra/NotificationTemplates"
 *
 * const { html } = NotificationTemplates
 * html`<p>${"<script>alert(1)</script>"}</p>`.value // "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
 * ```
 *
 * @since 0.1.0
 * @category html
 */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<HtmlValue>): SafeHtml =>
  trusted(
    values.reduce<string>((out, value, index) => out + fragment(value) + (strings[index + 1] ?? ""), strings[0] ?? "")
  )

const joinHtml = (parts: ReadonlyArray<SafeHtml>, separator: SafeHtml): SafeHtml =>
  trusted(parts.map((part) => part.value).join(separator.value))

/** Text with its line breaks kept as `<br>`. */
const linesHtml = (text: string): SafeHtml => joinHtml(text.split("\n").map((line) => html`${line}`), html`<br>`)

// -----------------------------------------------------------------------------
// Cleaning tenant data
// -----------------------------------------------------------------------------

// Bidirectional controls can make a name read differently from what it is (a right-to-left override turns
// "invoice‮fdp.exe" into "invoiceexe.pdf"); they have no business in a name, a code or a reason. Nor has the
// byte order mark, an invisible character that `\s` would otherwise turn into a space.
const INVISIBLE_MARKS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/gu
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\u0085]/gu
const CONTROLS_AND_SPACE = /[\p{Cc}\p{Z}\s]+/gu
const CONTROLS_BUT_NEWLINE = /[^\P{Cc}\n\t]/gu

/** One line: runs of control and space characters become one space. */
const singleLine = (value: string): string => value.replace(INVISIBLE_MARKS, "").replace(CONTROLS_AND_SPACE, " ").trim()

// In a header, invisible characters make it read differently from what it holds, and a lone surrogate cannot be
// encoded; the body keeps zero-width joiners and non-joiners, which some scripts and emoji need.
const INVISIBLE_OR_BROKEN = /[\p{Cf}\p{Cs}]/gu

/** One line fit for a header: {@link singleLine} without format characters or lone surrogates. */
const headerLine = (value: string): string => singleLine(value.replace(INVISIBLE_OR_BROKEN, ""))

/** Several lines: line breaks unified to `\n`, other control characters dropped. */
const multiLine = (value: string): string =>
  value.replace(INVISIBLE_MARKS, "").replace(LINE_BREAKS, "\n").replace(CONTROLS_BUT_NEWLINE, "").trim()

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" })

const codePointsOf = (value: string): number => {
  let count = 0
  for (const _ of value) count++
  return count
}

/** At most `max` code points of `value`, cut between whole characters, with "…" when anything was cut. */
const clip = (value: string, max: number): string => {
  if (codePointsOf(value) <= max) return value
  let kept = ""
  let used = 0
  for (const { segment } of graphemes.segment(value)) {
    const size = codePointsOf(segment)
    if (used + size > max - 1) break
    kept += segment
    used += size
  }
  return kept.trimEnd() + "…"
}

// Names are at most 100 characters and codes 50 when they come from a `Tenant`; this bounds what a message can
// carry if data arrives from elsewhere (a 10 KB name would otherwise land in the body whole).
const VALUE_MAX_LENGTH = 200

/** The subject `render` makes around `name`, shortening the name until the subject fits. */
const subjectLine = (render: (name: string) => string, name: string): string => {
  const full = headerLine(render(name))
  if (codePointsOf(full) <= SUBJECT_MAX_LENGTH) return full
  const room = SUBJECT_MAX_LENGTH - codePointsOf(headerLine(render("")))
  return clip(headerLine(render(clip(headerLine(name), Math.max(1, room)))), SUBJECT_MAX_LENGTH)
}

/** UTC, to the second: `2024-03-01T09:00:00Z`. */
const formatTime = (date: Date): string =>
  Number.isNaN(date.getTime()) ? "-" : date.toISOString().replace(/\.\d{3}Z$/, "Z")

// -----------------------------------------------------------------------------
// Message structure
// -----------------------------------------------------------------------------

/** The values a template fills in, cleaned. */
interface Values {
  readonly name: string
  readonly code: string
  readonly time: string
  readonly actor: string | undefined
  readonly reason: string | undefined
}

type Block =
  | { readonly _tag: "Paragraph"; readonly text: string }
  | { readonly _tag: "Fields"; readonly rows: ReadonlyArray<readonly [label: string, value: string]> }

const paragraph = (text: string): Block => ({ _tag: "Paragraph", text })

interface EmailCopy {
  readonly subject: (name: string) => string
  readonly body: (values: Values) => ReadonlyArray<Block>
}

interface Words {
  /** Between a label and its value in the text part. */
  readonly colon: string
  readonly greeting: (name: string) => string
  readonly name: string
  readonly code: string
  readonly actor: string
  readonly reason: string
  readonly noReason: string
  readonly footer: string
}

const WORDS: { readonly [L in Locale]: Words } = {
  "zh-CN": {
    colon: "：",
    greeting: (name) => `${name} 管理员，您好：`,
    name: "租户名称",
    code: "租户代码",
    actor: "操作人",
    reason: "原因",
    noReason: "未提供原因",
    footer: "此邮件由系统自动发送。"
  },
  en: {
    colon: ": ",
    greeting: () => "Hello,",
    name: "Tenant name",
    code: "Tenant code",
    actor: "By",
    reason: "Reason",
    noReason: "No reason given",
    footer: "This message was sent automatically."
  }
}

/**
 * The usual body: greeting, what happened, the details (name, code, time, actor and, when `reason` says so,
 * the reason), footer.
 */
const standardBody = (
  locale: Locale,
  values: Values,
  options: {
    readonly message: string
    readonly timeLabel: string
    readonly reason: "always" | "whenGiven" | "never"
  }
): ReadonlyArray<Block> => {
  const words = WORDS[locale]
  const rows: Array<readonly [string, string]> = [
    [words.name, values.name],
    [words.code, values.code],
    [options.timeLabel, values.time]
  ]
  if (values.actor !== undefined) rows.push([words.actor, values.actor])
  if (options.reason === "always" || (options.reason === "whenGiven" && values.reason !== undefined)) {
    rows.push([words.reason, values.reason ?? words.noReason])
  }
  return [
    paragraph(words.greeting(values.name)),
    paragraph(options.message),
    { _tag: "Fields", rows },
    paragraph(words.footer)
  ]
}

type EmailTemplate = "welcome" | "activated" | "suspended" | "deleted" | "restored"

const EMAILS: { readonly [L in Locale]: { readonly [T in EmailTemplate]: EmailCopy } } = {
  "zh-CN": {
    welcome: {
      subject: (name) => `欢迎加入我们的平台：${name}`,
      body: (values) =>
        standardBody("zh-CN", values, {
          message: "欢迎加入我们的平台！您的租户已创建成功，目前处于待激活状态，激活后即可开始使用。",
          timeLabel: "创建时间（UTC）",
          reason: "never"
        })
    },
    activated: {
      subject: (name) => `租户“${name}”已成功激活`,
      body: (values) =>
        standardBody("zh-CN", values, {
          message: `您的租户“${values.name}”已成功激活，现在可以开始使用。`,
          timeLabel: "激活时间（UTC）",
          reason: "whenGiven"
        })
    },
    suspended: {
      subject: (name) => `租户“${name}”已被暂停`,
      body: (values) =>
        standardBody("zh-CN", values, {
          message: `您的租户“${values.name}”已被暂停，暂停期间无法使用。如有疑问，请联系平台管理员。`,
          timeLabel: "暂停时间（UTC）",
          reason: "always"
        })
    },
    deleted: {
      subject: (name) => `租户“${name}”已被删除`,
      body: (values) =>
        standardBody("zh-CN", values, {
          message: `您的租户“${values.name}”已被删除。如果这不是您预期的操作，请尽快联系平台管理员。`,
          timeLabel: "删除时间（UTC）",
          reason: "always"
        })
    },
    restored: {
      subject: (name) => `租户“${name}”已恢复`,
      body: (values) =>
        standardBody("zh-CN", values, {
          message: `您的租户“${values.name}”已恢复，目前处于暂停状态，重新激活后即可使用。`,
          timeLabel: "恢复时间（UTC）",
          reason: "whenGiven"
        })
    }
  },
  en: {
    welcome: {
      subject: (name) => `Welcome to our platform: ${name}`,
      body: (values) =>
        standardBody("en", values, {
          message: "Welcome to our platform. Your tenant has been created and is awaiting activation; " +
            "you can start using it once it has been activated.",
          timeLabel: "Created (UTC)",
          reason: "never"
        })
    },
    activated: {
      subject: (name) => `Your tenant ${name} is now active`,
      body: (values) =>
        standardBody("en", values, {
          message: `Your tenant ${values.name} has been activated and is ready to use.`,
          timeLabel: "Activated (UTC)",
          reason: "whenGiven"
        })
    },
    suspended: {
      subject: (name) => `Your tenant ${name} has been suspended`,
      body: (values) =>
        standardBody("en", values, {
          message: `Your tenant ${values.name} has been suspended and cannot be used while it is suspended. ` +
            "If you have questions, contact your platform administrator.",
          timeLabel: "Suspended (UTC)",
          reason: "always"
        })
    },
    deleted: {
      subject: (name) => `Your tenant ${name} has been deleted`,
      body: (values) =>
        standardBody("en", values, {
          message: `Your tenant ${values.name} has been deleted. ` +
            "If you did not expect this, contact your platform administrator as soon as possible.",
          timeLabel: "Deleted (UTC)",
          reason: "always"
        })
    },
    restored: {
      subject: (name) => `Your tenant ${name} has been restored`,
      body: (values) =>
        standardBody("en", values, {
          message: `Your tenant ${values.name} has been restored. It remains suspended until it is activated again.`,
          timeLabel: "Restored (UTC)",
          reason: "whenGiven"
        })
    }
  }
}

const textOf = (locale: Locale, blocks: ReadonlyArray<Block>): string =>
  blocks.map((block) =>
    block._tag === "Paragraph"
      ? block.text
      : block.rows.map(([label, value]) => `${label}${WORDS[locale].colon}${value}`).join("\n")
  ).join("\n\n")

const blockHtml = (block: Block): SafeHtml =>
  block._tag === "Paragraph"
    ? html`<p>${linesHtml(block.text)}</p>`
    : html`<table role="presentation" cellpadding="4" cellspacing="0">${
      block.rows.map(([label, value]) =>
        html`<tr><th align="left" valign="top">${label}</th><td>${linesHtml(value)}</td></tr>`
      )
    }</table>`

const htmlOf = (locale: Locale, subject: string, blocks: ReadonlyArray<Block>): SafeHtml =>
  html`<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><title>${subject}</title></head>
<body style="font-family: sans-serif; line-height: 1.5">${blocks.map(blockHtml)}</body></html>`

const valuesOf = (data: TemplateData): Values => ({
  name: clip(singleLine(data.tenantName), VALUE_MAX_LENGTH),
  code: clip(singleLine(data.tenantCode), VALUE_MAX_LENGTH),
  time: formatTime(data.occurredAt),
  actor: data.actor === undefined ? undefined : clip(singleLine(data.actor), VALUE_MAX_LENGTH),
  reason: data.reason === undefined || multiLine(data.reason) === "" ? undefined : multiLine(data.reason)
})

const renderEmail = (template: EmailTemplate) => (data: TemplateData, locale: Locale): RenderedEmail => {
  const copy = EMAILS[locale][template]
  const values = valuesOf(data)
  const subject = subjectLine(copy.subject, values.name)
  const blocks = copy.body(values)
  return { subject, text: textOf(locale, blocks), html: htmlOf(locale, subject, blocks).value }
}

// -----------------------------------------------------------------------------
// Templates
// -----------------------------------------------------------------------------

/**
 * The welcome e-mail for a new tenant: its name and code, and that it awaits activation.
 *
 * @example
 * ```ts
 * import * as NotificationTemplates from "tenant-infra/NotificationTemplates"
 *
 * const { subject, text, html } = NotificationTemplates.welcomeEmail(
 *   { tenantName: "Acme Inc.", tenantCode: "acme", occurredAt: new Date(), actor: "system" },
 *   "zh-CN"
 * )
 * // subject: "欢迎加入我们的平台：Acme Inc."
 * ```
 *
 * @since 0.1.0
 * @category templates
 */
export const welcomeEmail: (data: TemplateData, locale: Locale) => RenderedEmail = renderEmail("welcome")

/**
 * The activation e-mail, for tenants without a phone number (the others get {@link activatedSms}).
 *
 * @since 0.1.0
 * @category templates
 */
export const activatedEmail: (data: TemplateData, locale: Locale) => RenderedEmail = renderEmail("activated")

/**
 * The suspension e-mail, with the reason or a plain "no reason given" / "未提供原因".
 *
 * @since 0.1.0
 * @category templates
 */
export const suspendedEmail: (data: TemplateData, locale: Locale) => RenderedEmail = renderEmail("suspended")

/**
 * The deletion e-mail, with the reason or a plain "no reason given" / "未提供原因".
 *
 * @since 0.1.0
 * @category templates
 */
export const deletedEmail: (data: TemplateData, locale: Locale) => RenderedEmail = renderEmail("deleted")

/**
 * The restoration e-mail: the tenant is back, and suspended until someone activates it.
 *
 * @since 0.1.0
 * @category templates
 */
export const restoredEmail: (data: TemplateData, locale: Locale) => RenderedEmail = renderEmail("restored")

const SMS: { readonly [L in Locale]: (name: string) => string } = {
  "zh-CN": (name) => `您的租户“${name}”已成功激活，现在可以开始使用。`,
  en: (name) => `Your tenant ${name} is now active and ready to use.`
}

/**
 * The activation SMS, within {@link SMS_MAX_SEGMENTS} segment: a long tenant name is shortened with an ellipsis
 * (`SmsText.fitTemplate`), the fixed words are kept. The Chinese text is UCS-2 (70 units); the English text is
 * GSM-7 (160 septets) unless the name holds a character outside GSM-7, which makes it UCS-2 and is accounted
 * for. Curly apostrophes in the name (`O’Brien`, allowed in tenant names) are sent as `'`, so that one
 * apostrophe does not cost an English message more than half its room.
 *
 * @example
 * ```ts
 * import * as NotificationTemplates from "tenant-infra/NotificationTemplates"
 *
 * NotificationTemplates.activatedSms(
 *   { tenantName: "Acme Inc.", tenantCode: "acme", occurredAt: new Date() },
 *   "en"
 * ) // "Your tenant Acme Inc. is now active and ready to use."
 * ```
 *
 * @since 0.1.0
 * @category templates
 */
export const activatedSms = (data: TemplateData, locale: Locale): string =>
  SmsText.fitTemplate(SMS[locale], singleLine(data.tenantName).replace(/[‘’]/g, "'"), SMS_MAX_SEGMENTS)
