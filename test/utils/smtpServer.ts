import * as Effect from "effect/Effect"
import type { AddressInfo, Socket } from "node:net"
import type { SMTPServerDataStream, SMTPServerSession } from "smtp-server"
import { SMTPServer } from "smtp-server"

/**
 * What the server does with one message attempt:
 * - `accept`: take it (250);
 * - `421` / `451` / `451-rate` / `550` / `554`: answer that code at the end of DATA (after the body);
 * - `rcpt-450-rate`, `rcpt-550`: answer at RCPT TO (before the body);
 * - `drop-before-body`: cut the connection at RCPT TO;
 * - `drop-after-body`: read the whole body, then cut the connection without answering (the message is kept
 *   as "possibly delivered": `received` holds it, `accepted` does not).
 *
 * Each message the server read notes how its transaction ended for the client (`ReceivedMessage.answer`).
 *
 * Authentication is scripted separately (`requireAuth`, `password`).
 */
export type Behaviour =
  | "accept"
  | "421"
  | "451"
  | "451-rate"
  | "550"
  | "554"
  | "rcpt-450-rate"
  | "rcpt-550"
  | "drop-before-body"
  | "drop-after-body"

export interface ReceivedMessage {
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly raw: string
  readonly messageId: string | undefined
  readonly subject: string | undefined
  readonly behaviour: Behaviour
  /**
   * How the transaction ended for the client: `acknowledged` when the server answered 250 on a connection still
   * open; `refused` when it answered an error code; `dropped` when it cut the connection without answering
   * (`drop-after-body`), or the client had gone before the answer (a killed sender). Only an acknowledged copy
   * is one the sender can know was delivered.
   */
  readonly answer: "acknowledged" | "refused" | "dropped"
}

export interface SmtpServerOptions {
  /** When set, clients must log in with user `user` and this password (535 otherwise). */
  readonly password?: string
  /** When set, every connection is refused with this reply code at the greeting. */
  readonly refuseWith?: number
  readonly hideSize?: boolean
}

export interface TestSmtpServer {
  readonly port: number
  readonly url: (credentials?: { readonly user: string; readonly password: string }) => string
  /** Behaviours for the next attempts, in order; once used up, `fallback` applies. */
  readonly script: (...behaviours: ReadonlyArray<Behaviour>) => void
  readonly setFallback: (behaviour: Behaviour) => void
  /** Every message whose body the server read, whatever it answered. */
  readonly received: () => ReadonlyArray<ReceivedMessage>
  /** Messages the server took and answered 250 to (whether or not the client was still there to read it). */
  readonly accepted: () => ReadonlyArray<ReceivedMessage>
  /** MAIL FROM commands seen: one per attempt that got past the connection. */
  readonly attempts: () => number
  /** Connections opened, and AUTH attempts. */
  readonly connections: () => number
  readonly logins: () => number
  readonly reset: () => void
  /** Cuts every open connection, as a server does to idle clients. */
  readonly dropConnections: () => void
  readonly stop: Effect.Effect<void>
}

const header = (raw: string, name: string): string | undefined => {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? ""
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ")
  const line = unfolded.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
  return line?.slice(name.length + 1).trim()
}

/** The behaviours that answer the body with an error code. */
const REFUSALS: ReadonlySet<Behaviour> = new Set(["421", "451", "451-rate", "550", "554"])

const replyError = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code })

/** A real SMTP server (the `smtp-server` package) on a free loopback port, closed with the scope. */
export const makeSmtpServer = (options: SmtpServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.async<TestSmtpServer>((resume) => {
      let queue: Array<Behaviour> = []
      let fallback: Behaviour = "accept"
      let received: Array<ReceivedMessage> = []
      let accepted: Array<ReceivedMessage> = []
      let attempts = 0
      let connections = 0
      let logins = 0
      // Each transaction takes its behaviour at MAIL FROM, so RCPT and DATA agree on it.
      const current = new Map<string, Behaviour>()

      const server = new SMTPServer({
        disabledCommands: options.password === undefined ? ["STARTTLS", "AUTH"] : ["STARTTLS"],
        authOptional: options.password === undefined,
        allowInsecureAuth: true,
        hideSize: options.hideSize ?? false,
        logger: false,
        // A reverse DNS lookup per connection costs ~100 ms in a sandbox without a resolver.
        disableReverseLookup: true,
        onConnect(_session, callback) {
          connections++
          if (options.refuseWith !== undefined) return callback(replyError(options.refuseWith, "5.7.1 Go away"))
          callback()
        },
        onAuth(auth, _session, callback) {
          logins++
          if (auth.username === "user" && auth.password === options.password) return callback(null, { user: "user" })
          return callback(replyError(535, "5.7.8 Authentication credentials invalid"))
        },
        onMailFrom(_address, session, callback) {
          attempts++
          current.set(session.id, queue.shift() ?? fallback)
          callback()
        },
        onRcptTo(_address, session, callback) {
          const behaviour = current.get(session.id) ?? "accept"
          if (behaviour === "drop-before-body") return dropConnection(session)
          if (behaviour === "rcpt-450-rate") return callback(replyError(450, "4.7.1 Rate limit exceeded, slow down"))
          if (behaviour === "rcpt-550") return callback(replyError(550, "5.1.1 No such user here"))
          callback()
        },
        onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
          const chunks: Array<Buffer> = []
          stream.on("data", (chunk: Buffer) => chunks.push(chunk))
          stream.on("end", () => {
            const behaviour = current.get(session.id) ?? "accept"
            const raw = Buffer.concat(chunks).toString("utf8")
            const message: ReceivedMessage = {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
              to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
              raw,
              messageId: header(raw, "Message-ID"),
              subject: header(raw, "Subject"),
              behaviour,
              answer: REFUSALS.has(behaviour)
                ? "refused"
                : behaviour === "drop-after-body" || !clientConnected(session)
                ? "dropped"
                : "acknowledged"
            }
            received.push(message)
            switch (behaviour) {
              case "accept":
                accepted.push(message)
                return callback(null, `Ok: queued as ${received.length}`)
              case "drop-after-body":
                return dropConnection(session)
              case "421":
                return callback(replyError(421, "4.7.0 Try again later, closing connection"))
              case "451":
                return callback(replyError(451, "4.3.0 Local error in processing"))
              case "451-rate":
                return callback(replyError(451, "4.7.1 Too many messages, rate limited"))
              case "550":
                return callback(replyError(550, "5.7.1 Message rejected"))
              case "554":
                return callback(replyError(554, "5.6.0 Message content rejected"))
              default:
                return callback(null, "Ok")
            }
          })
        }
      })

      // smtp-server types its connections as `any`; these are the two fields used here.
      const openConnections = () => server.connections as Set<{ readonly id: string; readonly _socket: Socket }>

      const clientConnected = (session: SMTPServerSession) => {
        for (const connection of openConnections()) {
          if (connection.id === session.id) return connection._socket.writable
        }
        return false
      }

      const dropConnection = (session: SMTPServerSession) => {
        for (const connection of openConnections()) {
          if (connection.id === session.id) connection._socket.destroy()
        }
      }

      server.on("error", () => {
        // Client resets are expected when a test drops connections.
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.server.address() as AddressInfo
        resume(Effect.succeed({
          port,
          url: (credentials) =>
            credentials === undefined
              ? `smtp://127.0.0.1:${port}`
              : `smtp://${encodeURIComponent(credentials.user)}:${
                encodeURIComponent(credentials.password)
              }@127.0.0.1:${port}`,
          script: (...behaviours) => {
            queue.push(...behaviours)
          },
          setFallback: (behaviour) => {
            fallback = behaviour
          },
          received: () => received,
          accepted: () => accepted,
          attempts: () => attempts,
          connections: () => connections,
          logins: () => logins,
          reset: () => {
            queue = []
            fallback = "accept"
            received = []
            accepted = []
            attempts = 0
            connections = 0
            logins = 0
          },
          dropConnections: () => {
            for (const connection of openConnections()) connection._socket.destroy()
          },
          stop: Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            // Clients keep pooled connections open; the test is over, so cut them rather than wait.
            for (const connection of openConnections()) connection._socket.destroy()
          })
        }))
      })
    }),
    (smtp) => smtp.stop
  )
