/**
 * The shape of a locale's copy: the words every message shares, each e-mail's subject and body, and the SMS
 * texts. A locale module (`en.ts`, `zh-CN.ts`) fills it in; `NotificationTemplates.render` lays it out.
 */
import type { SmsTemplate, Template } from "../../NotificationTemplates.js"

/** The values a template fills in, already cleaned (one line, bounded, time formatted). */
export interface Values {
  readonly name: string
  readonly code: string
  readonly time: string
  readonly actor: string | undefined
  readonly reason: string | undefined
}

/** A part of a body; the text and the HTML part each lay it out in their own way. */
export type Block =
  | { readonly _tag: "Paragraph"; readonly text: string }
  | { readonly _tag: "Fields"; readonly rows: ReadonlyArray<readonly [label: string, value: string]> }

const paragraph = (text: string): Block => ({ _tag: "Paragraph", text })

export interface EmailCopy {
  readonly subject: (name: string) => string
  readonly body: (values: Values) => ReadonlyArray<Block>
}

export interface Words {
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

/** Everything one locale says. */
export interface LocaleCopy {
  readonly words: Words
  readonly emails: { readonly [T in Template]: EmailCopy }
  readonly sms: { readonly [T in SmsTemplate]: (name: string) => string }
}

/**
 * The usual body: greeting, what happened, the details (name, code, time, actor and, when `reason` says so,
 * the reason), footer.
 */
export const standardBody = (
  words: Words,
  values: Values,
  options: {
    readonly message: string
    readonly timeLabel: string
    readonly reason: "always" | "whenGiven" | "never"
  }
): ReadonlyArray<Block> => {
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
