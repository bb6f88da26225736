/**
 * HTML that is safe by construction: markup comes only from template literals in our code, every value put into
 * it is escaped. `NotificationTemplates` exports the public part (`html`, `escapeHtml`, `SafeHtml`).
 */

/**
 * @since 0.1.0
 * @category utils
 */
export const SafeHtmlTypeId: unique symbol = Symbol.for("tenant-infra/NotificationTemplates/SafeHtml")

/**
 * @since 0.1.0
 * @category utils
 */
export type SafeHtmlTypeId = typeof SafeHtmlTypeId

/**
 * A fragment of HTML that is safe to concatenate: its markup was written in our code and every value in it was
 * escaped. Only {@link html} makes one. It is an object, not a branded string, so that `html` can tell at run
 * time a fragment to keep from a string to escape.
 *
 * @since 0.1.0
 * @category utils
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
 * @category utils
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
 * @category utils
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
 * @category utils
 */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<HtmlValue>): SafeHtml =>
  trusted(
    values.reduce<string>((out, value, index) => out + fragment(value) + (strings[index + 1] ?? ""), strings[0] ?? "")
  )

const joinHtml = (parts: ReadonlyArray<SafeHtml>, separator: SafeHtml): SafeHtml =>
  trusted(parts.map((part) => part.value).join(separator.value))

/** Text with its line breaks kept as `<br>`. */
export const linesHtml = (text: string): SafeHtml => joinHtml(text.split("\n").map((line) => html`${line}`), html`<br>`)
