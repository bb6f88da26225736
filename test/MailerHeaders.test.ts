/**
 * No control (Cc, C1 included), format (Cf: zero-width, bidirectional controls), line or paragraph separator
 * character reaches a header that a real SMTP server receives. Addresses holding one, or an encoded word, are
 * refused as `Permanent` before any server sees them (a misconfigured sender fails the layer as `Misconfigured`);
 * template subjects have them removed or turned into spaces. Every case looks at the raw message the server got.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Mailer from "../src/Mailer.js"
import * as MailerSmtp from "../src/Mailer/Smtp.js"
import * as NotificationTemplates from "../src/NotificationTemplates.js"
import { isRetryable } from "../src/SendError.js"
import type { Locale } from "../src/Tenant.js"
import type { TestSmtpServer } from "./utils/smtpServer.js"
import { makeSmtpServer } from "./utils/smtpServer.js"

const FROM = "Tenant Infra <noreply@infra.test>"

/** The characters that must never reach a header: one per class and the bidi controls. */
const CLASSES: ReadonlyArray<readonly [label: string, char: string]> = [
  ["C1 control U+0085 (Cc)", "\u0085"],
  ["C1 control U+009B (Cc)", "\u009B"],
  ["zero-width space U+200B (Cf)", "\u200B"],
  ["soft hyphen U+00AD (Cf)", "\u00AD"],
  ["byte order mark U+FEFF (Cf)", "\uFEFF"],
  ["right-to-left override U+202E (Cf, bidi)", "\u202E"],
  ["right-to-left isolate U+2067 (Cf, bidi)", "\u2067"],
  ["line separator U+2028 (Zl)", "\u2028"],
  ["paragraph separator U+2029 (Zp)", "\u2029"]
]

const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u

/** RFC 2047 words (B and Q, any charset spelled UTF-8) decoded; adjacent words joined as RFC 2047 says. */
const decodeWords = (value: string): string =>
  value.replace(/(=\?UTF-8\?[BQ]\?[^?]*\?=)(\s+(?==\?UTF-8\?[BQ]\?))?/gi, "$1").replace(
    /(?:=\?UTF-8\?([BQ])\?([^?]*)\?=)+/gi,
    (run: string) => {
      const bytes: Array<Buffer> = []
      for (const [, encoding, text] of run.matchAll(/=\?UTF-8\?([BQ])\?([^?]*)\?=/gi)) {
        bytes.push(
          encoding?.toUpperCase() === "B"
            ? Buffer.from(text ?? "", "base64")
            : Buffer.from(
              (text ?? "").replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (_, hex: string) => `%${hex}`)
                .replace(/%([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
              "latin1"
            )
        )
      }
      return Buffer.concat(bytes).toString("utf8")
    }
  )

/** The header block of a raw message: unfolded lines, encoded words decoded. */
const headerLines = (raw: string): ReadonlyArray<string> => {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? ""
  return head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/).map(decodeWords)
}

const headerOf = (raw: string, name: string): string | undefined =>
  headerLines(raw).find((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1)
    .trim()

/** Asserts that the raw message's header block is plain ASCII and that no header, decoded, holds an unsafe character. */
const assertCleanHeaders = (raw: string) => {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? ""
  assert.match(head, /^[\x20-\x7e\r\n\t]*$/, "the raw header block is ASCII")
  for (const line of headerLines(raw)) assert.notMatch(line, UNSAFE, JSON.stringify(line))
}

let sequence = 0
const message = (overrides: Partial<Mailer.EmailMessage> = {}): Mailer.EmailMessage => ({
  key: `headers-${++sequence}:email`,
  to: "admin@acme.test",
  subject: "Welcome",
  text: "Hello",
  html: "<p>Hello</p>",
  ...overrides
})

const smtpLayer = (server: TestSmtpServer, from = FROM) =>
  MailerSmtp.layer({
    url: Redacted.make(server.url()),
    from,
    maxConnections: 1,
    socketTimeout: Duration.seconds(2)
  })

/** A fresh SMTP server and a mailer sending to it, both gone when `use` ends. */
const withSmtp = <A, E>(use: (server: TestSmtpServer) => Effect.Effect<A, E, Mailer.Mailer>) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* makeSmtpServer()
    return yield* Effect.provide(use(server), smtpLayer(server))
  }))

const send = (overrides: Partial<Mailer.EmailMessage>) =>
  Effect.flatMap(Mailer.Mailer, (mailer) => mailer.send(message(overrides)))

/** Sends on both layers, expecting a `Permanent` refusal matching `detail` and nothing sent or kept. */
const expectRefusedEverywhere = (overrides: Partial<Mailer.EmailMessage>, detail: RegExp) =>
  Effect.gen(function*() {
    yield* withSmtp((server) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(send(overrides))
        assert.strictEqual(error._tag, "Permanent")
        assert.isFalse(isRetryable(error))
        assert.match(error.detail, detail)
        assert.strictEqual(server.attempts(), 0, "no MAIL FROM reached the server")
        assert.lengthOf(server.received(), 0)
      })
    )
    yield* Effect.gen(function*() {
      const error = yield* Effect.flip(send(overrides))
      assert.strictEqual(error._tag, "Permanent")
      assert.match(error.detail, detail)
      assert.lengthOf(yield* (yield* Mailer.MemoryMailer).sent, 0)
    }).pipe(Effect.provide(Mailer.layerMemory({ from: FROM })))
  })

const CHARACTER = /line break or a control, format or bidirectional character/
const ENCODED = /encoded word/

describe("e-mail headers: no control, format or bidi character", () => {
  describe("recipients are refused as Permanent, and no server sees them", () => {
    for (const [label, char] of CLASSES) {
      it.live(`${label} in the local part, the domain or the display name`, () =>
        Effect.forEach(
          [`admin${char}@acme.test`, `admin@acme${char}.test`, `Acme Admin${char} <admin@acme.test>`],
          (to) => expectRefusedEverywhere({ to }, CHARACTER),
          { discard: true }
        ))
    }

    it.live("a lone surrogate (half of a pair, which no encoding can carry)", () =>
      expectRefusedEverywhere({ to: "admin\uD800@acme.test" }, CHARACTER))

    it.live("an encoded-word local part, bare or in angle brackets", () =>
      Effect.forEach(
        [
          "=?utf-8?q?admin=40bank.test?=@acme.test",
          "=?UTF-8?B?YWRtaW5AYmFuay50ZXN0?=@acme.test",
          "Bank <=?utf-8?q?admin=40bank.test=00?=@acme.test>",
          "\"=?utf-8?q?x?=\"@acme.test"
        ],
        (to) => expectRefusedEverywhere({ to }, ENCODED),
        { discard: true }
      ))

    it.live("while a plain address, one with a display name, and a Chinese display name are delivered", () =>
      withSmtp((server) =>
        Effect.gen(function*() {
          yield* send({ to: "admin@acme.test" })
          yield* send({ to: "Acme Admin <admin@acme.test>" })
          yield* send({ to: "张三 <zhang@acme.test>" })
          const received = server.accepted()
          assert.deepStrictEqual(received.map((m) => m.to), [["admin@acme.test"], ["admin@acme.test"], [
            "zhang@acme.test"
          ]])
          assert.strictEqual(headerOf(received[2]?.raw ?? "", "To"), "张三 <zhang@acme.test>")
          for (const m of received) assertCleanHeaders(m.raw)
        })
      ))
  })

  describe("senders", () => {
    for (const [label, char] of CLASSES) {
      it.live(`${label} in MAIL_FROM fails the SMTP layer as Misconfigured, before any connection`, () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* makeSmtpServer()
          const exit = yield* Effect.exit(Layer.build(smtpLayer(server, `Tenant Infra${char} <noreply@infra.test>`)))
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) {
            const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
            assert.strictEqual(error?._tag, "Misconfigured")
            assert.match(error?.detail ?? "", /^MAIL_FROM is unusable/)
          }
          assert.strictEqual(server.connections(), 0)
        })))

      it.live(`${label} in a message's own from is refused as Permanent`, () =>
        expectRefusedEverywhere({ from: `noreply${char}@infra.test` }, CHARACTER))
    }

    it.live("an encoded word in MAIL_FROM fails the SMTP layer as Misconfigured", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* makeSmtpServer()
        const error = yield* Effect.flip(Layer.build(smtpLayer(server, "=?utf-8?q?ceo=40acme.test?=@infra.test")))
        assert.strictEqual(error._tag, "Misconfigured")
        assert.match(error.detail, ENCODED)
      })))
  })

  describe("subjects and other header values given to the mailer are refused, not sent", () => {
    for (const [label, char] of CLASSES) {
      it.live(`${label} in the subject or an extra header`, () =>
        Effect.forEach(
          [{ subject: `Welcome${char}` }, { headers: { "X-Tenant": `acme${char}` } }, {
            headers: { [`X-Tenant${char}`]: "acme" }
          }],
          (overrides) => expectRefusedEverywhere(overrides, CHARACTER),
          { discard: true }
        ))
    }
  })

  describe("template subjects are cleaned, and reach the server without those characters", () => {
    const templates: ReadonlyArray<
      readonly [
        string,
        (data: NotificationTemplates.TemplateData, locale: Locale) => NotificationTemplates.RenderedEmail
      ]
    > = [
      ["welcome", (data, locale) => NotificationTemplates.render("email", "welcome", data, locale)],
      ["activated", (data, locale) => NotificationTemplates.render("email", "activated", data, locale)],
      ["suspended", (data, locale) => NotificationTemplates.render("email", "suspended", data, locale)],
      ["deleted", (data, locale) => NotificationTemplates.render("email", "deleted", data, locale)],
      ["restored", (data, locale) => NotificationTemplates.render("email", "restored", data, locale)]
    ]
    const locales: ReadonlyArray<Locale> = ["en", "zh-CN"]

    /** Renders every template in every locale for `tenantName`, sends each, and answers the received Subjects. */
    const receivedSubjects = (tenantName: string, extra: Partial<NotificationTemplates.TemplateData> = {}) =>
      withSmtp((server) =>
        Effect.gen(function*() {
          for (const [, render] of templates) {
            for (const locale of locales) {
              const email = render(
                {
                  tenantName,
                  tenantCode: "acme",
                  occurredAt: new Date("2024-03-01T09:00:00Z"),
                  actor: `ops${tenantName}`,
                  reason: `Unpaid${tenantName}`,
                  ...extra
                },
                locale
              )
              yield* send({ subject: email.subject, text: email.text, html: email.html })
            }
          }
          const received = server.accepted()
          assert.lengthOf(received, templates.length * locales.length)
          for (const m of received) assertCleanHeaders(m.raw)
          return received.map((m) => headerOf(m.raw, "Subject") ?? "")
        })
      )

    const FORMAT = CLASSES.filter(([label]) => label.includes("Cf"))
    const BREAKING = CLASSES.filter(([label]) => !label.includes("Cf"))

    for (const [label, char] of FORMAT) {
      it.live(`${label} is removed: the name reads as it shows`, () =>
        Effect.gen(function*() {
          const subjects = yield* receivedSubjects(`Acme${char}Corp${char}`)
          for (const subject of subjects) {
            assert.include(subject, "AcmeCorp")
            assert.notMatch(subject, UNSAFE)
          }
        }))
    }

    for (const [label, char] of BREAKING) {
      it.live(`${label} becomes a space`, () =>
        Effect.gen(function*() {
          const subjects = yield* receivedSubjects(`Acme${char}Corp${char}`)
          for (const subject of subjects) {
            assert.include(subject, "Acme Corp")
            assert.notMatch(subject, UNSAFE)
          }
        }))
    }

    it.live("a lone surrogate is removed", () =>
      Effect.gen(function*() {
        const subjects = yield* receivedSubjects("Acme\uD800Corp\uDC00")
        for (const subject of subjects) assert.include(subject, "AcmeCorp")
      }))

    it.live("a name of nothing but such characters, clipped to the subject's length, still sends", () =>
      Effect.gen(function*() {
        const subjects = yield* receivedSubjects(
          CLASSES.map(([, char]) => char).join("").repeat(5) + "Acme\u200B".repeat(60)
        )
        for (const subject of subjects) {
          assert.isAtMost([...subject].length, NotificationTemplates.SUBJECT_MAX_LENGTH)
          assert.include(subject, "AcmeAcme")
        }
      }))
  })
})
