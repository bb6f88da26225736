import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { PassThrough } from "node:stream"
import addressparser from "nodemailer/lib/addressparser"
import type { NodemailerError } from "nodemailer/lib/errors"
import MailComposer from "nodemailer/lib/mail-composer"
import SMTPConnection from "nodemailer/lib/smtp-connection"
import type * as Mailer from "../Mailer.js"
import type { SendError } from "../SendError.js"
import { Ambiguous, Misconfigured, Permanent, RateLimited, Transient } from "../SendError.js"
import { addressProblem, checkHeaders, messageIdFor } from "./messageRules.js"

/** A plain address needs no parsing; only a display name (`Admin <admin@acme.test>`) does. */
const BARE_ADDRESS = /^[^\s<>@,;:"]+@[^\s<>@,;:"]+$/

/**
 * The addresses in an address header value, as nodemailer reads them for the envelope and the header: the value
 * itself when it is a bare address, else what its parser finds.
 */
const addressesIn = (value: string): ReadonlyArray<string> =>
  BARE_ADDRESS.test(value)
    ? [value]
    : addressparser(value, { flatten: true }).map((parsed) => parsed.address).filter((address) => address !== "")

/**
 * Why not nodemailer's pooled transport: on a dropped connection it reports the same error whether the message
 * body had been sent or not, and by default it requeues the message itself, which turns "maybe delivered" into
 * a silent duplicate. This pool hands each message to one of nodemailer's `SMTPConnection`s and watches the body
 * stream: a failure without a server reply after the whole body went out is `Ambiguous`, before it `Transient`.
 */

interface Connection {
  readonly smtp: SMTPConnection
  /** False once the server closed it or it failed: it is thrown away instead of reused. */
  alive: boolean
  sent: number
}

interface Endpoint {
  readonly host: string
  readonly port: number | undefined
  readonly secure: boolean
  readonly auth: { readonly user: string; readonly pass: Redacted.Redacted } | undefined
}

/** Reads an `smtp://user:password@host:port` or `smtps://...` URL; the password stays redacted. */
export const parseSmtpUrl = (url: Redacted.Redacted): Endpoint | string => {
  let parsed: URL
  try {
    parsed = new URL(Redacted.value(url))
  } catch {
    return "SMTP_URL is not a URL (expected smtp://user:password@host:port)"
  }
  if (parsed.protocol !== "smtp:" && parsed.protocol !== "smtps:") {
    return `SMTP_URL must start with smtp:// or smtps://, not ${parsed.protocol}//`
  }
  if (parsed.hostname === "") return "SMTP_URL has no host"
  let user: string
  let password: string
  try {
    user = decodeURIComponent(parsed.username)
    password = decodeURIComponent(parsed.password)
  } catch {
    return "SMTP_URL holds a malformed %-escape in its user or password"
  }
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: parsed.port === "" ? undefined : Number(parsed.port),
    secure: parsed.protocol === "smtps:",
    auth: user === "" ? undefined : { user, pass: Redacted.make(password) }
  }
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1)$/

/** Credentials never travel in clear text, except to this very machine (a local relay, the tests). */
export const mustEncrypt = (endpoint: Endpoint): boolean =>
  endpoint.auth !== undefined && !endpoint.secure && !LOOPBACK.test(endpoint.host)

const RATE_LIMITED = /rate|too many|throttl|slow down|try again later/i

/** Commands of the session itself, before any message: a refusal there is about us, not about a message. */
const SESSION_COMMANDS = /^(CONN|EHLO|HELO|LHLO|STARTTLS|AUTH)/

/** Decides the class of an SMTP failure from the reply code and, without a reply, from how far the message got. */
export const classify = (error: NodemailerError, bodySent: boolean): SendError => {
  const code = error.responseCode
  const base = {
    channel: "email" as const,
    ...(error.response === undefined ? {} : { response: error.response.slice(0, 500) })
  }
  if (code !== undefined) {
    const withCode = { ...base, code }
    const at = error.command === undefined ? "" : ` at ${error.command}`
    if (code === 535 || code === 530 || code === 534 || code === 538 || error.code === "EAUTH") {
      return code >= 500
        ? new Misconfigured({ ...withCode, detail: `authentication refused${at}` })
        : new Transient({ ...withCode, detail: `authentication failed for now${at}` })
    }
    if (code === 421 || code === 450 || code === 451 || code === 452) {
      return RATE_LIMITED.test(error.response ?? "")
        ? new RateLimited({ ...withCode, detail: `rate limited by the server${at}` })
        : new Transient({ ...withCode, detail: `refused for now by the server${at}` })
    }
    if (code >= 400 && code < 500) return new Transient({ ...withCode, detail: `refused for now by the server${at}` })
    if (code >= 500 && SESSION_COMMANDS.test(error.command ?? "")) {
      return new Misconfigured({ ...withCode, detail: `the server refuses our session${at}` })
    }
    if (code >= 500) return new Permanent({ ...withCode, detail: `rejected by the server${at}` })
  }
  if (error.code === "EAUTH" || error.code === "ENOAUTH" || error.code === "ETLS" || error.code === "EREQUIRETLS") {
    return new Misconfigured({ ...base, code: error.code, detail: `cannot authenticate or secure the connection` })
  }
  // Refused by nodemailer before the server saw it (a recipient it cannot parse, a message it cannot send).
  if (error.code === "EENVELOPE" || error.code === "EMESSAGE" || error.code === "EPROTOCOL") {
    return new Permanent({ ...base, code: error.code, detail: "the message cannot be sent as it is" })
  }
  const clientCode = error.code ?? "ECONNECTION"
  return bodySent
    ? new Ambiguous({
      ...base,
      code: clientCode,
      detail: "connection lost after the whole message was sent, before the server answered"
    })
    : new Transient({ ...base, code: clientCode, detail: "connection failed before the message was sent" })
}

export interface SmtpMailerOptions {
  readonly url: Redacted.Redacted
  readonly from: string
  readonly maxConnections: number
  readonly maxMessagesPerConnection: number
  readonly connectionTimeout: Duration.DurationInput
  readonly greetingTimeout: Duration.DurationInput
  readonly socketTimeout: Duration.DurationInput
  readonly rejectUnauthorized: boolean
}

const asNodemailerError = (error: unknown): NodemailerError =>
  error instanceof Error ? error : Object.assign(new Error(String(error)), { code: "ECONNECTION" })

export const makeSmtpMailer = (
  options: SmtpMailerOptions
): Effect.Effect<Mailer.Service, Misconfigured, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const checkoutTimeout = Duration.sum(options.connectionTimeout, options.greetingTimeout)
    const endpoint = parseSmtpUrl(options.url)
    if (typeof endpoint === "string") {
      return yield* Effect.fail(new Misconfigured({ channel: "email", detail: endpoint }))
    }
    // A sender no message could be sent from is a setting to fix, not a failure of every message.
    const fromProblem = addressProblem("sender", options.from)
    if (fromProblem !== undefined) {
      return yield* Effect.fail(
        new Misconfigured({ channel: "email", detail: `MAIL_FROM is unusable: ${fromProblem}` })
      )
    }
    const envelopeFrom = addressesIn(options.from)[0]
    if (envelopeFrom === undefined) {
      return yield* Effect.fail(new Misconfigured({ channel: "email", detail: "MAIL_FROM holds no address" }))
    }

    const open = () =>
      new SMTPConnection({
        host: endpoint.host,
        ...(endpoint.port === undefined ? {} : { port: endpoint.port }),
        secure: endpoint.secure,
        connectionTimeout: Duration.toMillis(options.connectionTimeout),
        greetingTimeout: Duration.toMillis(options.greetingTimeout),
        socketTimeout: Duration.toMillis(options.socketTimeout),
        tls: { rejectUnauthorized: options.rejectUnauthorized },
        requireTLS: mustEncrypt(endpoint)
      })

    const connect: Effect.Effect<Connection, SendError> = Effect.async<Connection, SendError>((resume) => {
      const smtp = open()
      const connection: Connection = { smtp, alive: true, sent: 0 }
      let settled = false
      const fail = (error: unknown) => {
        connection.alive = false
        if (settled) return
        settled = true
        smtp.close()
        resume(Effect.fail(classify(asNodemailerError(error), false)))
      }
      // A connection fails outside any send too (idle timeout, server shutdown); without a listener the
      // 'error' event would crash the process.
      smtp.on("error", fail)
      smtp.on("end", () => {
        connection.alive = false
      })
      // nodemailer hands a close before the greeting to this callback as an error: that is a failed connect.
      smtp.connect((error?: Error | null) => {
        if (error) return fail(error)
        if (endpoint.auth === undefined) {
          settled = true
          return resume(Effect.succeed(connection))
        }
        smtp.login({ user: endpoint.auth.user, pass: Redacted.value(endpoint.auth.pass) }, (error) => {
          if (error) return fail(error)
          settled = true
          resume(Effect.succeed(connection))
        })
      })
      return Effect.sync(() => smtp.close())
    })

    // Outside the pool: a health check must see the server as it is now, not a connection opened earlier.
    const ping: Effect.Effect<void, SendError> = Effect.async<void, SendError>((resume) => {
      const smtp = open()
      let settled = false
      const fail = (error: unknown) => {
        if (settled) return
        settled = true
        smtp.close()
        const { code, message } = asNodemailerError(error)
        resume(Effect.fail(
          new Transient({
            channel: "email",
            detail: `server did not greet: ${message}`,
            ...(code === undefined ? {} : { code })
          })
        ))
      }
      smtp.on("error", fail)
      smtp.connect((error?: Error | null) => {
        if (error) return fail(error)
        settled = true
        smtp.quit()
        resume(Effect.void)
      })
      return Effect.sync(() => smtp.close())
    })

    /**
     * The pool. A message waits for whichever comes first: a connection handed back, or one being opened for
     * it. (Effect's `Pool` makes a message wait for the connection opened on its behalf, even when another one
     * is free sooner; with servers that delay their greeting, that stalls whole batches.) A failed open is
     * handed to every message waiting at that moment, so no one waits for a connection that will never come.
     */
    const ready = yield* Queue.unbounded<Either.Either<Connection, SendError>>()
    const everyConnection = new Set<Connection>()
    let opened = 0
    // When a connection last came free or was opened: messages that wait longer than the connect and greeting
    // timeouts together are failed by one watchdog, rather than by a timer per waiting message (which costs
    // a fifth of the throughput when most messages wait).
    let lastProgress = Date.now()

    const openOne = Effect.suspend(() => {
      opened++
      return connect.pipe(
        Effect.tap((connection) => Effect.sync(() => everyConnection.add(connection))),
        Effect.either,
        Effect.tap((result) => Effect.sync(() => Either.isLeft(result) && opened--)),
        Effect.flatMap((result) =>
          Either.isRight(result)
            ? Effect.zipRight(Effect.sync(() => (lastProgress = Date.now())), Queue.offer(ready, result))
            : Effect.flatMap(
              Queue.size(ready),
              (size) => Queue.offerAll(ready, Array.from({ length: Math.max(1, -size) }, () => result))
            )
        ),
        Effect.forkIn(scope)
      )
    })

    const discard = (connection: Connection) =>
      Effect.sync(() => {
        connection.alive = false
        everyConnection.delete(connection)
        opened--
        connection.smtp.quit()
      })

    const checkout: Effect.Effect<Connection, SendError> = Effect.gen(function*() {
      for (;;) {
        const waiting = yield* Queue.poll(ready)
        if (Option.isNone(waiting) && opened < options.maxConnections) yield* openOne
        // Waiting for a connection sends nothing: running out of time here is Transient, not Ambiguous.
        const next = Option.isSome(waiting) ? waiting.value : yield* Queue.take(ready)
        if (Either.isLeft(next)) return yield* Effect.fail(next.left)
        // A connection the server closed while it sat idle is noticed here: drop it and take another.
        if (next.right.alive) return next.right
        yield* discard(next.right)
      }
    })

    let inFlight = 0

    const checkoutTimeoutMillis = Duration.toMillis(checkoutTimeout)
    yield* Effect.gen(function*() {
      const waiting = -Math.min(0, yield* Queue.size(ready))
      if (waiting === 0 || Date.now() - lastProgress < checkoutTimeoutMillis) return
      lastProgress = Date.now()
      // Waiting for a connection sends nothing: running out of time here is Transient, not Ambiguous.
      const timedOut = new Transient({ channel: "email", detail: "no SMTP connection became available in time" })
      yield* Queue.offerAll(ready, Array.from({ length: waiting }, () => Either.left(timedOut)))
    }).pipe(Effect.repeat(Schedule.spaced(Duration.seconds(1))), Effect.forkIn(scope))

    const checkin = (connection: Connection, reusable: boolean) =>
      Effect.flatMap(Queue.isShutdown(ready), (closing) =>
        !closing && reusable && connection.alive && connection.sent < options.maxMessagesPerConnection
          ? Effect.zipRight(
            Effect.sync(() => (lastProgress = Date.now())),
            Queue.offer(ready, Either.right(connection))
          )
          : Effect.zipRight(
            discard(connection),
            // Messages are waiting: open the replacement now rather than when the next one asks.
            Effect.flatMap(
              Queue.size(ready),
              (size) =>
                !closing && size < 0 && opened < options.maxConnections ? openOne : Effect.void
            )
          ))

    // Closing: no new sends start, those under way may finish (a QUIT in the middle of a body would corrupt it,
    // and a caller told "interrupted" about a delivered message would send it again), then every connection goes.
    const drained = Effect.suspend(() =>
      inFlight === 0 ? Effect.void : Effect.fail("busy")
    ).pipe(
      Effect.retry(Schedule.spaced("10 millis")),
      Effect.timeoutOption(options.socketTimeout),
      Effect.ignore
    )
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Effect.zipRight(Queue.shutdown(ready), drained),
        Effect.sync(() => {
          for (const connection of everyConnection) {
            connection.alive = false
            connection.smtp.quit()
          }
        })
      )
    )

    const compose = (message: Mailer.EmailMessage, from: string, messageId: string) =>
      Effect.tryPromise({
        try: () =>
          new MailComposer({
            from,
            to: message.to,
            subject: message.subject,
            text: message.text,
            html: message.html,
            messageId,
            ...(message.headers === undefined ? {} : { headers: { ...message.headers } }),
            // Content never comes from files or URLs; a template must not be able to make us read either.
            disableFileAccess: true,
            disableUrlAccess: true
          }).compile().build(),
        catch: (cause) => new Permanent({ channel: "email", detail: "the message could not be composed", cause })
      })

    const deliver = (connection: Connection, to: string, body: Buffer) =>
      Effect.async<SMTPConnection.SentMessageInfo, SendError>((resume) => {
        // The body reaches the connection only after the server accepted MAIL, RCPT and DATA; the stream
        // ends when the connection has read all of it, which is when a silent failure becomes ambiguous.
        let bodySent = false
        const stream = new PassThrough()
        stream.on("end", () => {
          bodySent = true
        })
        connection.smtp.send({ from: envelopeFrom, to: [to] }, stream, (error, info) => {
          if (error) {
            connection.alive = false
            return resume(Effect.fail(classify(error, bodySent)))
          }
          connection.sent++
          resume(Effect.succeed(info))
        })
        stream.end(body)
        // Interrupted mid-send (a timeout): the connection's state is unknown, so it is closed, not reused.
        return Effect.sync(() => {
          connection.alive = false
          connection.smtp.close()
        })
      })

    const send = (message: Mailer.EmailMessage): Effect.Effect<Mailer.SentEmail, SendError> =>
      Effect.gen(function*() {
        const from = message.from ?? options.from
        yield* checkHeaders(message, from)
        const messageId = messageIdFor(message.key, from)
        const body = yield* compose(message, from, messageId)
        const recipient = addressesIn(message.to)[0]
        if (recipient === undefined) {
          return yield* Effect.fail(new Permanent({ channel: "email", detail: "the recipient holds no address" }))
        }
        const info = yield* Effect.uninterruptibleMask((restore) =>
          restore(checkout).pipe(
            Effect.flatMap((connection) => {
              inFlight++
              return restore(deliver(connection, recipient, body)).pipe(
                Effect.onExit((exit) =>
                  Effect.zipRight(
                    checkin(connection, Exit.isSuccess(exit)),
                    Effect.sync(() => inFlight--)
                  )
                )
              )
            })
          )
        )
        return { messageId, response: info.response }
      }).pipe(Effect.withSpan("Mailer.send", { captureStackTrace: false, attributes: { "mailer.backend": "smtp" } }))

    return { from: options.from, send, ping }
  })
