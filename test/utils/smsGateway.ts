import * as Effect from "effect/Effect"
import type * as Types from "effect/Types"
import type { IncomingMessage, ServerResponse } from "node:http"
import { createServer } from "node:http"

/**
 * What the gateway does with one request, once it has read all of it:
 * - `200`: accepts the message and answers `{ "id": "sms-<n>" }`;
 * - `200-no-id`: answers 200 with `{ "status": "queued" }` and no id (the message is not counted as accepted);
 * - `408`, `429`, `500`, `503`, `400`, `401`, `403`, `404`, `422`: answers that status with a JSON error body
 *   (`429` without `Retry-After`; see {@link retryAfter});
 * - `drop`: cuts the connection without answering, the message not taken;
 * - `accept-then-drop`: accepts the message, then cuts the connection without answering: the reply is lost, the
 *   case an idempotency key is for;
 * - `hang`: never answers (the connection is cut when the server stops);
 * - an object: answers exactly that status, headers and body.
 */
export type Reply =
  | "200"
  | "200-no-id"
  | "408"
  | "429"
  | "500"
  | "503"
  | "400"
  | "401"
  | "403"
  | "404"
  | "422"
  | "drop"
  | "accept-then-drop"
  | "hang"
  | CustomReply

export interface CustomReply {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

/** A 429 with this `Retry-After` (delta-seconds or an HTTP date). */
export const retryAfter = (value: string): CustomReply => ({
  status: 429,
  headers: { "retry-after": value },
  body: JSON.stringify({ error: "too many requests" })
})

export interface ReceivedRequest {
  readonly method: string
  readonly path: string
  /** Lower-case names, repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** When the whole request had been read (`Date.now()`). */
  readonly at: number
  readonly reply: Reply
  /**
   * What the gateway made of the message: `new` when it took it (and would send it), `replay` when deduplication
   * recognised the key of a message it had taken before (nothing taken, the first id answered), `none` when it
   * took nothing. With `dedupe` off every message it takes is `new`, whatever its key.
   */
  readonly taken: "new" | "replay" | "none"
  /**
   * Whether the answer was written out to the client: false when the gateway cut the connection (`drop`,
   * `accept-then-drop`), never answered (`hang`), or the client had gone before the answer.
   */
  readonly answered: boolean
}

export interface AcceptedSms {
  readonly id: string
  readonly idempotencyKey: string | undefined
  readonly body: string
}

export interface SmsGatewayServerOptions {
  /** Replies for the first requests, in order. */
  readonly script?: ReadonlyArray<Reply>
  /** The reply once the script is used up; `200` unless set. */
  readonly fallback?: Reply
  /**
   * Behave like a gateway that honours `Idempotency-Key`: a message whose key was accepted before is not accepted
   * again, and a `200` answers the first message's id.
   */
  readonly dedupe?: boolean
}

export interface TestSmsGateway {
  readonly port: number
  readonly url: string
  /** Appends replies to the script. */
  readonly script: (...replies: ReadonlyArray<Reply>) => void
  readonly setFallback: (reply: Reply) => void
  /** Every request the server read, whatever it answered, deduplicated or not. */
  readonly received: () => ReadonlyArray<ReceivedRequest>
  /** Messages the gateway took (and would deliver), in order. */
  readonly accepted: () => ReadonlyArray<AcceptedSms>
  /** How many times a message with this idempotency key was taken: more than 1 is a duplicate delivered. */
  readonly acceptedCount: (idempotencyKey: string) => number
  readonly reset: () => void
}

const statusBodies: Readonly<Record<string, string>> = {
  "408": "request timeout",
  "429": "too many requests",
  "500": "internal error",
  "503": "service unavailable",
  "400": "invalid 'to': not a mobile number",
  "401": "invalid API key",
  "403": "account suspended",
  "404": "no such endpoint",
  "422": "unprocessable message"
}

const flatHeaders = (request: IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return out
}

const answer = (response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) =>
  response.writeHead(status, { "content-type": "application/json", ...headers }).end(body)

/** A scriptable SMS gateway on node:http, on a free loopback port, closed with the scope. */
export const makeSmsGatewayServer = (options: SmsGatewayServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.async<{ readonly gateway: TestSmsGateway; readonly stop: Effect.Effect<void> }, Error>((resume) => {
      let queue: Array<Reply> = [...(options.script ?? [])]
      let fallback: Reply = options.fallback ?? "200"
      let received: Array<Types.Mutable<ReceivedRequest>> = []
      let accepted: Array<AcceptedSms> = []
      const idsByKey = new Map<string, string>()

      /**
       * Takes the message unless deduplication recognises its key, and notes which on the request; answers the id
       * the gateway holds for it.
       */
      const accept = (request: Types.Mutable<ReceivedRequest>): string => {
        const idempotencyKey = request.headers["idempotency-key"]
        const known = options.dedupe === true && idempotencyKey !== undefined ? idsByKey.get(idempotencyKey) : undefined
        if (known !== undefined) {
          request.taken = "replay"
          return known
        }
        const id = `sms-${accepted.length + 1}`
        accepted.push({ id, idempotencyKey, body: request.body })
        if (idempotencyKey !== undefined && !idsByKey.has(idempotencyKey)) idsByKey.set(idempotencyKey, id)
        request.taken = "new"
        return id
      }

      const server = createServer((request, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const reply = queue.shift() ?? fallback
          const entry: Types.Mutable<ReceivedRequest> = {
            method: request.method ?? "",
            path: request.url ?? "",
            headers: flatHeaders(request),
            body: Buffer.concat(chunks).toString("utf8"),
            at: Date.now(),
            reply,
            taken: "none",
            answered: false
          }
          received.push(entry)
          // 'finish' means the whole answer went to the socket; a client that has gone never gets there.
          response.once("finish", () => {
            entry.answered = true
          })
          if (typeof reply === "object") return answer(response, reply.status, reply.body ?? "", { ...reply.headers })
          switch (reply) {
            case "200":
              return answer(response, 200, JSON.stringify({ id: accept(entry), status: "queued" }))
            case "200-no-id":
              return answer(response, 200, JSON.stringify({ status: "queued" }))
            case "drop":
              return request.socket.destroy()
            case "accept-then-drop":
              accept(entry)
              return request.socket.destroy()
            case "hang":
              return
            default:
              return answer(response, Number(reply), JSON.stringify({ error: statusBodies[reply] ?? "error" }))
          }
        })
      })

      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        if (address === null || typeof address === "string") {
          return resume(Effect.fail(new Error(`expected a TCP address, got ${String(address)}`)))
        }
        const { port } = address
        resume(Effect.succeed({
          gateway: {
            port,
            url: `http://127.0.0.1:${port}/v1/messages`,
            script: (...replies) => {
              queue.push(...replies)
            },
            setFallback: (reply) => {
              fallback = reply
            },
            received: () => received,
            accepted: () => accepted,
            acceptedCount: (idempotencyKey) =>
              accepted.filter((message) => message.idempotencyKey === idempotencyKey).length,
            reset: () => {
              queue = []
              fallback = options.fallback ?? "200"
              received = []
              accepted = []
              idsByKey.clear()
            }
          },
          stop: Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            // Hanging requests and pooled keep-alive connections would hold `close` open: the test is over.
            server.closeAllConnections()
          })
        }))
      })
    }),
    ({ stop }) => stop
  ).pipe(Effect.map(({ gateway }) => gateway))

/** A loopback URL where nothing listens (a server was there and has closed): connecting is refused. */
export const refusingUrl: Effect.Effect<string, Error> = Effect.scoped(
  Effect.map(makeSmsGatewayServer(), (gateway) => gateway.url)
)
