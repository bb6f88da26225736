/**
 * The port that sends one SMS, and its layers: `layerHttp` (a JSON POST to an HTTP gateway through
 * `@effect/platform`'s `HttpClient`) and `layerMemory` (keeps every message).
 *
 * Every message has a `key` naming what it is; the gateway gets a digest of it as the `Idempotency-Key`, so a
 * resend after an ambiguous failure is recognised and not delivered twice.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { makeHttpGateway } from "./internal/httpSmsGateway.js"
import { checkNumber, idempotencyKeyFor } from "./internal/messageRules.js"
import type { SendError } from "./SendError.js"

/**
 * One SMS to an E.164 number.
 *
 * @since 0.1.0
 * @category models
 */
export interface SmsMessage {
  /** What this message is, e.g. `<event id>:sms:<number>`; the same key gives the same idempotency key. */
  readonly key: string
  readonly to: string
  readonly text: string
}

/**
 * What the gateway answered: its id for the message.
 *
 * @since 0.1.0
 * @category models
 */
export interface SentSms {
  readonly id: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Sends one SMS, one attempt; retries are the caller's (see `SendRetry`). */
  readonly send: (message: SmsMessage) => Effect.Effect<SentSms, SendError>
  /**
   * Proves that the gateway answers, sending nothing: `layerHttp` sends `HEAD <url>` without the API key, and
   * any HTTP answer, whatever its status, is one. For health checks (see `InfraHealth`); a gateway that reaches
   * no server has none.
   */
  readonly ping?: Effect.Effect<void, SendError> | undefined
}

/**
 * @since 0.1.0
 * @category services
 */
export class SmsGateway extends Context.Tag("tenant-infra/SmsGateway")<SmsGateway, Service>() {}

export {
  /**
   * Refuses a number that is not E.164 before any gateway sees it: no retry can make it valid.
   *
   * @since 0.1.0
   * @category validation
   */
  checkNumber,
  /**
   * The `Idempotency-Key` a message with this key is sent with.
   *
   * @since 0.1.0
   * @category constructors
   */
  idempotencyKeyFor
} from "./internal/messageRules.js"

/**
 * A message as the memory gateway kept it.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeptSms extends SmsMessage {
  readonly id: string
  readonly idempotencyKey: string
}

/**
 * What `layerMemory` sent, in order.
 *
 * @since 0.1.0
 * @category services
 */
export class MemorySmsGateway extends Context.Tag("tenant-infra/MemorySmsGateway")<MemorySmsGateway, {
  readonly sent: Effect.Effect<ReadonlyArray<KeptSms>>
}>() {}

/**
 * A gateway that keeps every message instead of sending it. Like a real gateway it deduplicates: a message
 * whose idempotency key it has seen gets the first message's id and is not kept twice.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SmsGateway | MemorySmsGateway> = Layer.effectContext(Effect.gen(function*() {
  const sent = yield* Ref.make<ReadonlyArray<KeptSms>>([])
  const gateway: Service = {
    send: (message) =>
      Effect.zipRight(
        checkNumber(message),
        Ref.modify(sent, (all) => {
          const idempotencyKey = idempotencyKeyFor(message.key)
          const seen = all.find((kept) => kept.idempotencyKey === idempotencyKey)
          if (seen !== undefined) return [{ id: seen.id }, all]
          const id = `memory-${all.length + 1}`
          return [{ id }, [...all, { ...message, id, idempotencyKey }]]
        })
      )
  }
  return Context.make(SmsGateway, gateway).pipe(Context.add(MemorySmsGateway, { sent: Ref.get(sent) }))
}))

/**
 * Where and how `layerHttp` reaches the gateway.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpOptions {
  /** The endpoint messages are POSTed to (`SMS_GATEWAY_URL`). */
  readonly url: string
  /** Sent as `Authorization: Bearer <key>` (`SMS_API_KEY`); never logged, never in an error. */
  readonly apiKey: Redacted.Redacted
  /** How long one request may take before it is abandoned (default 10 seconds). */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /**
   * Send the current trace's context to the gateway as `traceparent` and `b3` headers
   * (`SMS_TRACE_PROPAGATION`; default false). The gateway is a third party: by default it learns none of our
   * trace ids. The requests are traced on our side either way.
   */
  readonly tracePropagation?: boolean | undefined
}

/**
 * The HTTP gateway: each message is one `POST <url>` with the JSON body `{ "to": "+86...", "text": "..." }`,
 * `Authorization: Bearer <apiKey>` and `Idempotency-Key: <digest of the message key>`. A 2xx answer with
 * `{ "id": "..." }` is a success; every other outcome is a `SendError`:
 *
 * | answer | error |
 * | --- | --- |
 * | 429 | `RateLimited`, with the wait from `Retry-After` (seconds or an HTTP date) |
 * | 500-599, 408, 409 (an earlier attempt with the same idempotency key is in progress) | `Transient` |
 * | 401, 403 | `Misconfigured` |
 * | 400, 404, 422 and other 4xx | `Permanent` |
 * | connection refused, DNS or TLS failure: the request never went out | `Transient` |
 * | connection reset or dropped once the request may have gone out, a 2xx whose body broke off, a 2xx without an id | `Ambiguous` |
 * | no answer within `requestTimeout` | `Ambiguous` (`ETIMEDOUT`) |
 * | a malformed URL, a final 3xx | `Misconfigured` |
 *
 * No trace context is sent unless `tracePropagation` is set: the platform client would otherwise add
 * `traceparent` and `b3` headers to every request.
 *
 * Needs an `HttpClient` (for example `FetchHttpClient.layer` or `NodeHttpClient.layerUndici`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (options: HttpOptions): Layer.Layer<SmsGateway, never, HttpClient.HttpClient> =>
  Layer.effect(SmsGateway, makeHttpGateway(options))

/**
 * `layerHttp` configured from the environment: `SMS_GATEWAY_URL`, `SMS_API_KEY` (a secret),
 * `SMS_REQUEST_TIMEOUT` (default 10 seconds) and `SMS_TRACE_PROPAGATION` (`true` to send `traceparent` and `b3`
 * headers to the gateway; default false).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpConfig: Layer.Layer<SmsGateway, ConfigError.ConfigError, HttpClient.HttpClient> = Layer
  .unwrapEffect(
    Effect.map(
      Config.all({
        url: Config.string("SMS_GATEWAY_URL"),
        apiKey: Config.redacted("SMS_API_KEY"),
        requestTimeout: Config.duration("SMS_REQUEST_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
        tracePropagation: Config.boolean("SMS_TRACE_PROPAGATION").pipe(Config.withDefault(false))
      }),
      layerHttp
    )
  )
