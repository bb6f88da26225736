import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createServer } from "node:net"
import { mustEncrypt } from "../src/internal/smtpMailer.js"
import * as Mailer from "../src/Mailer.js"
import * as MailerSmtp from "../src/Mailer/Smtp.js"
import { SendError } from "../src/SendError.js"
import * as SendRetry from "../src/SendRetry.js"
import type { Behaviour } from "./utils/smtpServer.js"
import { makeSmtpServer } from "./utils/smtpServer.js"

const PASSWORD = "s3cret-PASSWORD-xyz"

const message = (overrides: Partial<Mailer.EmailMessage> = {}): Mailer.EmailMessage => ({
  key: `event-${Math.random()}:email:admin@acme.test`,
  to: "admin@acme.test",
  subject: "Welcome",
  text: "Hello",
  html: "<p>Hello</p>",
  ...overrides
})

const closers: Array<() => void> = []

const fast: SendRetry.Options = {
  baseDelay: Duration.millis(5),
  maxDelay: Duration.millis(20),
  maxAttempts: 4,
  attemptTimeout: Duration.seconds(5)
}

/** A mailer on a fresh SMTP server; `password` makes the server require it. */
const withSmtp = <A, E>(
  use: (
    server: Effect.Effect.Success<ReturnType<typeof makeSmtpServer>>
  ) => Effect.Effect<A, E, Mailer.Mailer>,
  options: { readonly password?: string; readonly login?: string; readonly maxConnections?: number } = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* makeSmtpServer(options.password === undefined ? {} : { password: options.password })
    const url = options.password === undefined
      ? server.url()
      : server.url({ user: "user", password: options.login ?? options.password })
    const layer = MailerSmtp.layer({
      url: Redacted.make(url),
      from: "Tenant Infra <noreply@infra.test>",
      maxConnections: options.maxConnections ?? 2,
      socketTimeout: Duration.seconds(2)
    })
    return yield* Effect.provide(use(server), layer)
  }))

const send = (overrides: Partial<Mailer.EmailMessage> = {}) =>
  Effect.flatMap(Mailer.Mailer, (mailer) => mailer.send(message(overrides)))

describe("Mailer", () => {
  describe("both layers", () => {
    it.effect("derive the Message-ID from the message key and the sender's domain", () =>
      Effect.gen(function*() {
        const mailer = yield* Mailer.Mailer
        const first = yield* mailer.send(message({ key: "evt-1:email:a@acme.test" }))
        const again = yield* mailer.send(message({ key: "evt-1:email:a@acme.test" }))
        const other = yield* mailer.send(message({ key: "evt-1:email:b@acme.test" }))
        assert.strictEqual(first.messageId, again.messageId)
        assert.notStrictEqual(first.messageId, other.messageId)
        assert.match(first.messageId, /^<[0-9a-f]{32}@infra\.test>$/)
        assert.strictEqual(first.messageId, Mailer.messageIdFor("evt-1:email:a@acme.test", "noreply@infra.test"))
        assert.lengthOf(yield* (yield* Mailer.MemoryMailer).sent, 3)
      }).pipe(Effect.provide(Mailer.layerMemory({ from: "Tenant Infra <noreply@infra.test>" }))))

    it.live("refuse a line break in a header value as Permanent, and the server sees nothing", () =>
      withSmtp((server) =>
        Effect.gen(function*() {
          for (
            const overrides of [
              { subject: "Hi\r\nBcc: victim@evil.test" },
              { to: "a@acme.test\nRCPT TO:<x@evil.test>" },
              { headers: { "X-Tenant": "acme\r\nBcc: x@evil.test" } }
            ]
          ) {
            const error = yield* Effect.flip(send(overrides))
            assert.strictEqual(error._tag, "Permanent")
            assert.match(error.message, /line break/)
          }
          assert.strictEqual(server.attempts(), 0)
        })
      ))
  })

  describe("layerSmtp against a real SMTP server", () => {
    it.live("delivers with the Message-ID, and encodes a Chinese subject", () =>
      withSmtp((server) =>
        Effect.gen(function*() {
          const sent = yield* send({ subject: "欢迎加入我们的平台：测试（北京）", key: "evt-9:email:admin@acme.test" })
          const [received] = server.accepted()
          assert.strictEqual(received?.messageId, sent.messageId)
          assert.deepStrictEqual([received?.from, received?.to], ["noreply@infra.test", ["admin@acme.test"]])
          assert.match(received?.subject ?? "", /^=\?UTF-8\?[BQ]\?/)
          const decoded = (received?.subject ?? "").replace(/=\?UTF-8\?B\?([^?]+)\?=\s*/g, (_, b64: string) =>
            Buffer.from(b64, "base64").toString("utf8"))
          assert.strictEqual(decoded, "欢迎加入我们的平台：测试（北京）")
          assert.match(sent.response, /^250/)
        })
      ))

    const cases: ReadonlyArray<readonly [Behaviour, SendError["_tag"], number | string]> = [
      ["451", "Transient", 451],
      ["451-rate", "RateLimited", 451],
      ["421", "RateLimited", 421],
      ["rcpt-450-rate", "RateLimited", 450],
      ["550", "Permanent", 550],
      ["554", "Permanent", 554],
      ["rcpt-550", "Permanent", 550],
      ["drop-before-body", "Transient", "ECONNECTION"],
      ["drop-after-body", "Ambiguous", "ECONNECTION"]
    ]
    for (const [behaviour, tag, code] of cases) {
      it.live(`classifies '${behaviour}' as ${tag}`, () =>
        withSmtp((server) =>
          Effect.gen(function*() {
            server.script(behaviour)
            const error = yield* Effect.flip(send())
            assert.deepStrictEqual([error._tag, error.code, error.channel], [tag, code, "email"])
            // The mailer never resends by itself: one attempt reached the server.
            assert.strictEqual(server.attempts(), 1)
            // And the connection pool recovers for the next message.
            yield* send()
            assert.lengthOf(server.accepted(), 1)
          })
        ))
    }

    it.live("classifies a refused connection as Transient", () =>
      Effect.gen(function*() {
        const port = yield* Effect.scoped(Effect.map(makeSmtpServer(), (server) => server.port))
        const error = yield* Effect.flip(send()).pipe(
          Effect.provide(MailerSmtp.layer({ url: Redacted.make(`smtp://127.0.0.1:${port}`), from: "a@infra.test" }))
        )
        assert.strictEqual(error._tag, "Transient")
        assert.include(["ECONNECTION", "ESOCKET"], error.code)
      }))

    it.live("classifies refused credentials as Misconfigured, without the password anywhere", () =>
      withSmtp(
        (server) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(send())
            assert.deepStrictEqual([error._tag, error.code], ["Misconfigured", 535])
            assert.strictEqual(server.attempts(), 0)
            const shown = [
              error.message,
              JSON.stringify(Schema.encodeSync(SendError)(error)),
              String(error.cause),
              JSON.stringify(error)
            ]
            for (const text of shown) assert.notInclude(text, PASSWORD)
          }),
        { password: PASSWORD, login: `wrong-${PASSWORD}` }
      ))

    it.live("logs in with the password from the URL", () =>
      withSmtp(
        (server) =>
          Effect.gen(function*() {
            yield* send()
            assert.strictEqual(server.logins(), 1)
            assert.lengthOf(server.accepted(), 1)
          }),
        { password: PASSWORD }
      ))

    it.live("reuses pooled connections, up to maxConnections at once", () =>
      withSmtp(
        (server) =>
          Effect.gen(function*() {
            yield* Effect.forEach(Array.from({ length: 20 }), () => send(), { concurrency: 10 })
            assert.lengthOf(server.accepted(), 20)
            assert.isAtMost(server.connections(), 3)
          }),
        { maxConnections: 3 }
      ))

    it.live("replaces pooled connections the server closed while they were idle", () =>
      withSmtp((server) =>
        Effect.gen(function*() {
          yield* Effect.forEach([1, 2], () => send(), { concurrency: 2 })
          server.dropConnections()
          yield* Effect.sleep("50 millis")
          yield* Effect.forEach([1, 2, 3], () => send(), { concurrency: 3 })
          assert.lengthOf(server.accepted(), 5)
          assert.strictEqual(server.attempts(), 5)
        })
      ))

    it.live("fails fast, never loops, on a server that closes every connection before its greeting", () =>
      Effect.scoped(Effect.gen(function*() {
        let accepted = 0
        const port = yield* Effect.acquireRelease(
          Effect.async<number>((resume) => {
            const server = createServer((socket) => {
              accepted++
              socket.destroy()
            })
            server.listen(0, "127.0.0.1", () => {
              const address = server.address()
              resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
            })
            closers.push(() => server.close())
          }),
          () => Effect.sync(() => closers.forEach((close) => close()))
        )
        const error = yield* Effect.flip(send()).pipe(
          Effect.timeout("3 seconds"),
          Effect.provide(MailerSmtp.layer({ url: Redacted.make(`smtp://127.0.0.1:${port}`), from: "a@infra.test" }))
        )
        assert.strictEqual(error._tag, "Transient")
        assert.isAtMost(accepted, 3)
      })))

    it.live("fails every waiting message when connections cannot be opened, instead of leaving one waiting", () =>
      Effect.gen(function*() {
        const port = yield* Effect.scoped(Effect.map(makeSmtpServer(), (server) => server.port))
        const errors = yield* Effect.forEach(
          [1, 2, 3, 4, 5],
          () => Effect.flip(send()),
          { concurrency: "unbounded" }
        ).pipe(
          Effect.timeout("3 seconds"),
          Effect.provide(MailerSmtp.layer({
            url: Redacted.make(`smtp://127.0.0.1:${port}`),
            from: "a@infra.test",
            maxConnections: 2
          }))
        )
        assert.deepStrictEqual(errors.map((error) => error._tag), Array(5).fill("Transient"))
      }))

    it.live("takes the envelope address out of a recipient with a display name", () =>
      withSmtp((server) =>
        Effect.gen(function*() {
          yield* send({ to: "Acme Admin <admin@acme.test>" })
          assert.deepStrictEqual(server.accepted()[0]?.to, ["admin@acme.test"])
        })
      ))

    it.live("classifies a server that refuses our session (5xx at the greeting) as Misconfigured", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* makeSmtpServer({ refuseWith: 554 })
        const error = yield* Effect.flip(send()).pipe(
          Effect.provide(MailerSmtp.layer({ url: Redacted.make(server.url()), from: "a@infra.test" }))
        )
        assert.deepStrictEqual([error._tag, error.code], ["Misconfigured", 554])
      })))

    describe("with SendRetry", () => {
      const retried = (overrides: Partial<Mailer.EmailMessage> = {}) =>
        Effect.flatMap(Mailer.Mailer, (mailer) => SendRetry.retry("email", fast)(mailer.send(message(overrides))))

      it.live("retries Transient and RateLimited answers until accepted", () =>
        withSmtp((server) =>
          Effect.gen(function*() {
            server.script("451", "rcpt-450-rate", "drop-before-body", "accept")
            yield* retried()
            assert.strictEqual(server.attempts(), 4)
            assert.lengthOf(server.accepted(), 1)
          })
        ))

      it.live("never retries Permanent or Ambiguous e-mail", () =>
        withSmtp((server) =>
          Effect.gen(function*() {
            for (const behaviour of ["550", "drop-after-body"] as const) {
              server.reset()
              server.script(behaviour)
              yield* Effect.flip(retried())
              assert.strictEqual(server.attempts(), 1, behaviour)
            }
            // The ambiguous message did reach the server: resending it would have duplicated it.
            assert.lengthOf(server.received(), 1)
          })
        ))

      it.live("gives up after maxAttempts", () =>
        withSmtp((server) =>
          Effect.gen(function*() {
            server.setFallback("451")
            const error = yield* Effect.flip(retried())
            assert.strictEqual(error._tag, "Transient")
            assert.strictEqual(server.attempts(), fast.maxAttempts)
          })
        ))
    })

    it.live("logs nothing that holds the password", () =>
      Effect.gen(function*() {
        const lines: Array<string> = []
        const capture = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ message }) => lines.push(JSON.stringify(message)))
        )
        yield* withSmtp(
          (server) =>
            Effect.gen(function*() {
              server.script("drop-before-body")
              const error = yield* Effect.flip(Effect.flatMap(Mailer.Mailer, (mailer) => mailer.send(message())))
              // What an application would do with the error: log it, cause and all.
              yield* Effect.logError("send failed", error, Cause.fail(error))
            }),
          { password: PASSWORD }
        ).pipe(Effect.provide(capture))
        for (const line of lines) assert.notInclude(line, PASSWORD)
      }))
  })

  it.effect("layerSmtp refuses an SMTP_URL that is not smtp:// with Misconfigured", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(
          Mailer.Mailer,
          MailerSmtp.layer({ url: Redacted.make(`https://user:${PASSWORD}@mail.test`), from: "a@infra.test" })
        )
      )
      assert.strictEqual(error._tag, "Misconfigured")
      assert.notInclude(error.message, PASSWORD)
    }))

  it("sends credentials only encrypted, except to this machine", () => {
    const endpoint = (host: string, secure = false) => ({
      host,
      port: 587,
      secure,
      auth: { user: "u", pass: Redacted.make(PASSWORD) }
    })
    assert.isTrue(mustEncrypt(endpoint("smtp.example.com")))
    assert.isFalse(mustEncrypt(endpoint("smtp.example.com", true)))
    assert.isFalse(mustEncrypt(endpoint("127.0.0.1")))
    assert.isFalse(mustEncrypt({ ...endpoint("smtp.example.com"), auth: undefined }))
  })
})
