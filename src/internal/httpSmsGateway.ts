/**
 * The gateway behind `SmsGateway.layerHttp`: one JSON POST per message, every outcome sorted into a `SendError`
 * by what it proves about the message (see the table on `layerHttp`).
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Ambiguous, Misconfigured, Permanent, RateLimited, Transient } from "../SendError.js"
import type { SendError } from "../SendError.js"
import type { SentSms, Service, SmsMessage } from "../SmsGateway.js"
import type { Options as HttpOptions } from "../SmsGateway/Http.js"
import { checkNumber, idempotencyKeyFor } from "./messageRules.js"

/** How much of a gateway's answer an error keeps: enough to read the reason, not a whole HTML error page. */
const MAX_RESPONSE_CHARS = 500

const DEFAULT_TIMEOUT = Duration.seconds(10)

/** The answer to an accepted message; other fields are the gateway's business. */
const decodeAccepted = Schema.decodeUnknownOption(Schema.parseJson(Schema.Struct({ id: Schema.NonEmptyString })))

/**
 * Client error codes that only happen before the request is written: the name did not resolve, nothing listened,
 * the connection or its TLS handshake could not be set up (the handshake precedes the request).
 */
const BEFORE_REQUEST_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])

/** Node sets `syscall` on socket errors; these two run before any byte of the request can be written. */
const BEFORE_REQUEST_SYSCALLS: ReadonlySet<string> = new Set(["connect", "getaddrinfo"])

const stringField = (value: object, field: string): string | undefined => {
  const found: unknown = Reflect.get(value, field)
  return typeof found === "string" ? found : undefined
}

/**
 * The chain under a transport failure, outermost first. The `fetch` client wraps undici's error in a
 * `TypeError("fetch failed")` and `NodeHttpClient.layerUndici` does not, so the codes are searched along `cause`
 * (and through the `errors` of the `AggregateError` Node raises when every address of a host refused).
 */
const chainOf = (cause: unknown): ReadonlyArray<object> => {
  const chain: Array<object> = []
  let current: unknown = cause
  while (Predicate.isObject(current) && chain.length < 8 && !chain.includes(current)) {
    chain.push(current)
    current = Reflect.get(current, "cause")
  }
  return chain
}

const innerErrorsOf = (error: object): ReadonlyArray<unknown> => {
  const errors: unknown = Reflect.get(error, "errors")
  return Array.isArray(errors) ? errors : []
}

/**
 * Whether the chain proves the request never left: the first error in it that names a code or a system call
 * decides. Everything else, "other side closed" (undici `UND_ERR_SOCKET`), "socket hang up" (`ECONNRESET`), an
 * abort, a code we do not know, or no code at all, may come after the request was written: the client does not
 * report whether it had flushed the request, so those stay `Ambiguous`.
 */
const failedBeforeRequest = (cause: unknown): boolean => {
  for (const error of chainOf(cause)) {
    const inner = innerErrorsOf(error)
    if (inner.length > 0) return inner.every(failedBeforeRequest)
    const code = stringField(error, "code")
    const syscall = stringField(error, "syscall")
    if (code !== undefined || syscall !== undefined) {
      return (code !== undefined && BEFORE_REQUEST_CODES.has(code)) ||
        (syscall !== undefined && BEFORE_REQUEST_SYSCALLS.has(syscall))
    }
  }
  return false
}

const codeOf = (cause: unknown): string | undefined => {
  for (const error of chainOf(cause)) {
    const code = stringField(error, "code")
    if (code !== undefined) return code
    const [first] = innerErrorsOf(error)
    if (Predicate.isObject(first)) return stringField(first, "code")
  }
  return undefined
}

/** Cuts every occurrence of the API key out of text that came from elsewhere (an echoing gateway, a client). */
const redactor = (apiKey: Redacted.Redacted) => {
  const secret = Redacted.value(apiKey)
  return (text: string): string => secret === "" ? text : text.replaceAll(secret, "<redacted>")
}

/**
 * A transport failure as a plain `Error` holding only the names, codes and messages of its chain. The platform's
 * `RequestError` itself is never kept: it holds the request, and its JSON shows the `Authorization` header in
 * clear (header redaction only applies when it is inspected inside a fiber).
 */
const sanitizedCause = (cause: unknown, scrub: (text: string) => string): Error => {
  const links = chainOf(cause).map((error) => {
    const name = stringField(error, "name") ?? "Error"
    const code = stringField(error, "code")
    return `${name}${code === undefined ? "" : ` [${code}]`}: ${stringField(error, "message") ?? ""}`
  })
  const error = new Error(scrub(links.length === 0 ? String(cause) : links.join("; caused by ")))
  error.name = "TransportError"
  return error
}

const delta = /^\d+$/
/** IMF-fixdate, RFC 850 and asctime dates all start with the day's name; `Date.parse` alone accepts far more. */
const httpDate = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)/i

/** `Retry-After` as delta-seconds or an HTTP date (a date in the past means now); anything else is no wait. */
const parseRetryAfter = (value: string, now: number): Duration.Duration | undefined => {
  const trimmed = value.trim()
  if (delta.test(trimmed)) return Duration.seconds(Number(trimmed))
  if (!httpDate.test(trimmed)) return undefined
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Duration.millis(Math.max(at - now, 0))
}

interface Answer {
  readonly status: number
  readonly retryAfter: Option.Option<string>
  /** Left when the body could not be read (the connection dropped during it). */
  readonly body: Either.Either<string, HttpClientError.ResponseError>
}

/** Everything after the status line, as one total decision. */
const classifyAnswer = (
  answer: Answer,
  now: number,
  scrub: (text: string) => string
): Either.Either<SentSms, SendError> => {
  const { status } = answer
  const text = Either.getOrUndefined(answer.body)
  const shown = text === undefined ? undefined : scrub(text).slice(0, MAX_RESPONSE_CHARS)
  const base = { channel: "sms" as const, code: status, ...(shown === undefined ? {} : { response: shown }) }
  if (status >= 200 && status < 300) {
    const accepted = Option.flatMap(Option.fromNullable(text), decodeAccepted)
    if (Option.isSome(accepted)) return Either.right({ id: accepted.value.id })
    return Either.left(
      new Ambiguous({
        ...base,
        detail: Either.isLeft(answer.body)
          ? "gateway answered success but the connection dropped before its message id: it may send the message"
          : "gateway answered success without a message id: it may send the message"
      })
    )
  }
  if (status === 429) {
    const retryAfter = Option.getOrUndefined(
      Option.flatMapNullable(answer.retryAfter, (value) => parseRetryAfter(value, now))
    )
    return Either.left(
      new RateLimited({
        ...base,
        detail: retryAfter === undefined
          ? "rate limited by the gateway"
          : `rate limited by the gateway for ${Duration.format(retryAfter)}`,
        ...(retryAfter === undefined ? {} : { retryAfter })
      })
    )
  }
  if (status === 408 || status >= 500) {
    return Either.left(new Transient({ ...base, detail: "not accepted by the gateway, for now" }))
  }
  // "Idempotency key in use": an earlier attempt with this key is still being processed; asking again later
  // gets its outcome, so this is no refusal.
  if (status === 409) {
    return Either.left(
      new Transient({ ...base, detail: "an earlier attempt with this idempotency key is in progress" })
    )
  }
  if (status === 401 || status === 403) {
    return Either.left(new Misconfigured({ ...base, detail: "gateway refused the API key or the account" }))
  }
  if (status >= 400) {
    return Either.left(new Permanent({ ...base, detail: "gateway refused the message" }))
  }
  // A redirect or an informational status as the final answer: the endpoint is wrong for every message.
  return Either.left(new Misconfigured({ ...base, detail: "gateway answered an unexpected status" }))
}

const fromRequestError = (error: HttpClientError.HttpClientError, scrub: (text: string) => string): SendError => {
  if (error._tag === "ResponseError") {
    return new Ambiguous({
      channel: "sms",
      detail: "the gateway's answer could not be read",
      code: error.response.status
    })
  }
  switch (error.reason) {
    case "InvalidUrl":
      return new Misconfigured({
        channel: "sms",
        detail: "not sent: the gateway URL is not valid",
        code: "EINVALIDURL"
      })
    case "Encode":
      return new Permanent({ channel: "sms", detail: "not sent: the message could not be encoded" })
    case "Transport": {
      const code = codeOf(error.cause)
      const fields = {
        channel: "sms" as const,
        cause: sanitizedCause(error.cause, scrub),
        ...(code === undefined ? {} : { code })
      }
      return failedBeforeRequest(error.cause)
        ? new Transient({ ...fields, detail: "not sent: the gateway could not be reached" })
        : new Ambiguous({ ...fields, detail: "connection lost after the request went out: the gateway may have it" })
    }
  }
}

/**
 * @see SmsGateway.layerHttp
 */
export const makeHttpGateway = (options: HttpOptions): Effect.Effect<Service, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (platformClient) => {
    // The platform client puts the current trace's ids on every request; the gateway is a third party.
    const client = HttpClient.withTracerPropagation(platformClient, options.tracePropagation ?? false)
    const timeout = Duration.decode(options.requestTimeout ?? DEFAULT_TIMEOUT)
    const scrub = redactor(options.apiKey)

    const requestFor = (message: SmsMessage) =>
      HttpClientRequest.post(options.url).pipe(
        HttpClientRequest.bearerToken(options.apiKey),
        HttpClientRequest.setHeader("Idempotency-Key", idempotencyKeyFor(message.key)),
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyText(JSON.stringify({ to: message.to, text: message.text }), "application/json")
      )

    const exchange = (message: SmsMessage): Effect.Effect<Answer, SendError> =>
      client.execute(requestFor(message)).pipe(
        Effect.flatMap((response) =>
          Effect.map(Effect.either(response.text), (body): Answer => ({
            status: response.status,
            retryAfter: Headers.get(response.headers, "retry-after"),
            body
          }))
        ),
        Effect.mapError((error) => fromRequestError(error, scrub)),
        // The client does not say whether the request had been written when time ran out (it may still have been
        // connecting), so a timeout is `Ambiguous`: a resend under the same idempotency key is safe, a loss is not.
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new Ambiguous({
              channel: "sms",
              detail: `no answer from the gateway within ${Duration.format(timeout)}: it may have the message`,
              code: "ETIMEDOUT"
            })
        }),
        // Whatever the caller set, the bearer token never reaches the client span's header attributes.
        Effect.locallyWith(
          Headers.currentRedactedNames,
          (names) => names.includes("authorization") ? names : [...names, "authorization"]
        )
      )

    const send = (message: SmsMessage): Effect.Effect<SentSms, SendError> =>
      Effect.gen(function*() {
        yield* checkNumber(message)
        const answer = yield* exchange(message)
        const sent = yield* classifyAnswer(answer, yield* Clock.currentTimeMillis, scrub)
        yield* Effect.annotateCurrentSpan("sms.gateway.message_id", sent.id)
        return sent
      }).pipe(
        Effect.tapError((error) =>
          Effect.annotateCurrentSpan({ "sms.error": error._tag, "sms.error.code": String(error.code ?? "") })
        ),
        Effect.withSpan("SmsGateway.send", {
          captureStackTrace: false,
          attributes: { "sms.gateway.backend": "http", "sms.text.length": message.text.length }
        })
      )

    // Without the API key: a gateway that answers at all is up, and a key that is never sent cannot leak.
    const ping: Effect.Effect<void, SendError> = client.execute(HttpClientRequest.head(options.url)).pipe(
      Effect.asVoid,
      Effect.mapError((error) => {
        if (error._tag !== "RequestError" || error.reason !== "Transport") return fromRequestError(error, scrub)
        const code = codeOf(error.cause)
        return new Transient({
          channel: "sms",
          detail: "gateway did not answer",
          cause: sanitizedCause(error.cause, scrub),
          ...(code === undefined ? {} : { code })
        })
      }),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new Transient({
            channel: "sms",
            detail: `no answer from the gateway within ${Duration.format(timeout)}`,
            code: "ETIMEDOUT"
          })
      })
    )

    return { send, ping }
  })
