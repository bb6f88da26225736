/**
 * The SMS gateway over HTTP, through `@effect/platform`'s `HttpClient`.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import * as SmsGatewayHttp from "tenant-infra/SmsGateway/Http"
 *
 * const gateway = SmsGatewayHttp.layer({ url: "https://sms.example/send", apiKey: Redacted.make("key") }).pipe(
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import { makeHttpGateway } from "../internal/httpSmsGateway.js"
import { SmsGateway } from "../SmsGateway.js"

/**
 * Where and how the gateway is reached.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The endpoint messages are POSTed to. */
  readonly url: string
  /** Sent as `Authorization: Bearer <key>`; never logged, never in an error. */
  readonly apiKey: Redacted.Redacted
  /** How long one request may take before it is abandoned (default 10 seconds). */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /**
   * Send the current trace's context to the gateway as `traceparent` and `b3` headers
   * (default false). The gateway is a third party: by default it learns none of our
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
 * @since 0.2.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<SmsGateway["Type"], never, HttpClient.HttpClient> =
  makeHttpGateway

/**
 * The gateway of {@link make}.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SmsGateway, never, HttpClient.HttpClient> =>
  Layer.effect(SmsGateway, make(options))

/**
 * {@link layer} with its options read from `Config`. The environment variables of `TenantInfra`
 * (`SMS_GATEWAY_URL`, `SMS_API_KEY`, ...) are one such configuration.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<SmsGateway, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
