/**
 * The texts of tenant lifecycle notifications, in Simplified Chinese (`zh-CN`) and English (`en`), chosen by the
 * tenant's `contact.locale`. One entry, {@link render}: channel, template, data and locale in, message out; pure.
 *
 * | template | e-mail | SMS |
 * | --- | --- | --- |
 * | `welcome` (tenant created, awaiting activation) | yes | |
 * | `activated` | yes (for tenants without a phone) | yes |
 * | `suspended`, with the reason | yes | |
 * | `deleted`, with the reason | yes | |
 * | `restored` (suspended until activated) | yes | |
 *
 * Which event calls for which template on which channel, and the message keys, are `TenantNotifications`'
 * business and never depend on what a template renders.
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
import type { SafeHtml } from "./internal/html.js"
import { html, linesHtml } from "./internal/html.js"
import type { Block, LocaleCopy, Values } from "./internal/templates/copy.js"
import * as En from "./internal/templates/en.js"
import * as ZhCN from "./internal/templates/zh-CN.js"
import { clip, codePointsOf, headerLine, multiLine, singleLine } from "./internal/textCleaning.js"
import type { Channel } from "./SendError.js"
import * as SmsText from "./SmsText.js"
import type { Locale } from "./Tenant.js"

// The escaping library lives in a module of its own; users reach it as `NotificationTemplates.html`.
export { escapeHtml, html, SafeHtmlTypeId } from "./internal/html.js"
export type { HtmlValue, SafeHtml } from "./internal/html.js"

/**
 * The notifications there are texts for, each named after what happened to the tenant.
 *
 * @since 0.1.0
 * @category models
 */
export type Template = "welcome" | "activated" | "suspended" | "deleted" | "restored"

/**
 * The templates that also exist as an SMS.
 *
 * @since 0.1.0
 * @category models
 */
export type SmsTemplate = Extract<Template, "activated">

/**
 * The templates each channel has.
 *
 * @since 0.1.0
 * @category models
 */
export interface TemplatesOf {
  readonly email: Template
  readonly sms: SmsTemplate
}

/**
 * What each channel's templates render to.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rendered {
  readonly email: RenderedEmail
  readonly sms: string
}

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
  /**
   * Who made the change (a user id, a service name or `system`); e-mails name it only when it is given.
   * `TenantNotifications` gives it only when its layer is made with `showActor: true`.
   */
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

const COPY: { readonly [L in Locale]: LocaleCopy } = {
  "zh-CN": ZhCN.copy,
  en: En.copy
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

const valuesOf = (data: TemplateData): Values => ({
  name: clip(singleLine(data.tenantName), VALUE_MAX_LENGTH),
  code: clip(singleLine(data.tenantCode), VALUE_MAX_LENGTH),
  time: formatTime(data.occurredAt),
  actor: data.actor === undefined ? undefined : clip(singleLine(data.actor), VALUE_MAX_LENGTH),
  reason: data.reason === undefined || multiLine(data.reason) === "" ? undefined : multiLine(data.reason)
})

const textOf = (copy: LocaleCopy, blocks: ReadonlyArray<Block>): string =>
  blocks.map((block) =>
    block._tag === "Paragraph"
      ? block.text
      : block.rows.map(([label, value]) => `${label}${copy.words.colon}${value}`).join("\n")
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

const renderEmail = (template: Template, data: TemplateData, locale: Locale): RenderedEmail => {
  const copy = COPY[locale]
  const email = copy.emails[template]
  const values = valuesOf(data)
  const subject = subjectLine(email.subject, values.name)
  const blocks = email.body(values)
  return { subject, text: textOf(copy, blocks), html: htmlOf(locale, subject, blocks).value }
}

// Curly apostrophes (`O’Brien`, allowed in tenant names) go out as `'`, so that one apostrophe does not make an
// English text UCS-2 and cost it more than half its room.
const renderSms = (template: SmsTemplate, data: TemplateData, locale: Locale): string =>
  SmsText.fitTemplate(
    COPY[locale].sms[template],
    singleLine(data.tenantName).replace(/[‘’]/g, "'"),
    SMS_MAX_SEGMENTS
  )

const renderers: {
  readonly [C in Channel]: (template: TemplatesOf[C], data: TemplateData, locale: Locale) => Rendered[C]
} = { email: renderEmail, sms: renderSms }

/**
 * Renders a template for a channel: an e-mail (subject, text and HTML parts) or an SMS text.
 *
 * The SMS stays within {@link SMS_MAX_SEGMENTS} segment: a long tenant name is shortened with an ellipsis
 * (`SmsText.fitTemplate`), the fixed words are kept. The Chinese text is UCS-2 (70 units); the English text is
 * GSM-7 (160 septets) unless the name holds a character outside GSM-7, which makes it UCS-2 and is accounted
 * for. Curly apostrophes in the name are sent as `'`.
 *
 * @example
 * ```ts
 * import * as NotificationTemplates from "tenant-infra/NotificationTemplates"
 *
 * const data = { tenantName: "Acme Inc.", tenantCode: "acme", occurredAt: new Date(), actor: "system" }
 * const { subject, text, html } = NotificationTemplates.render("email", "welcome", data, "zh-CN")
 * // subject: "欢迎加入我们的平台：Acme Inc."
 * NotificationTemplates.render("sms", "activated", data, "en")
 * // "Your tenant Acme Inc. is now active and ready to use."
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const render = <C extends Channel>(
  channel: C,
  template: TemplatesOf[C],
  data: TemplateData,
  locale: Locale
): Rendered[C] => renderers[channel](template, data, locale)
