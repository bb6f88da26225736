/**
 * What the SMS gateway, a third party, learns of our traces: nothing by default; the `traceparent` and `b3`
 * headers of the current span when `tracePropagation` (`SMS_TRACE_PROPAGATION`) says so. Checked on the requests
 * a real HTTP server received, sent from inside a traced span.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as SmsGateway from "../src/SmsGateway.js"
import * as SmsGatewayHttp from "../src/SmsGateway/Http.js"
import * as TenantInfra from "../src/TenantInfra.js"
import type { ReceivedRequest, TestSmsGateway } from "./utils/smsGateway.js"
import { makeSmsGatewayServer } from "./utils/smsGateway.js"

const TRACE_HEADERS = ["traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "tracestate"]

const clients: ReadonlyArray<readonly [name: string, layer: Layer.Layer<HttpClient.HttpClient>]> = [
  ["undici", NodeHttpClient.layerUndici],
  ["fetch", FetchHttpClient.layer]
]

let sequence = 0

/**
 * Sends one SMS and pings the gateway, both inside a span of the test's own; answers the requests the server
 * received and the trace id of that span.
 */
const sendTraced = (server: TestSmsGateway) =>
  Effect.gen(function*() {
    const gateway = yield* SmsGateway.SmsGateway
    const traceId = yield* Effect.gen(function*() {
      yield* gateway.send({ key: `trace-${++sequence}:sms`, to: "+8613800138000", text: "hello" })
      yield* gateway.ping ?? Effect.void
      return (yield* Effect.currentSpan).traceId
    }).pipe(Effect.withSpan("test.notify"))
    const received = server.received()
    assert.deepStrictEqual(received.map((request) => request.method), ["POST", "HEAD"])
    return { received, traceId }
  })

const traceHeadersOf = (request: ReceivedRequest) =>
  Object.keys(request.headers).filter((name) => TRACE_HEADERS.includes(name))

const withServer = <A, E>(
  layerFor: (url: string) => Layer.Layer<SmsGateway.SmsGateway, unknown>,
  use: (server: TestSmsGateway) => Effect.Effect<A, E, SmsGateway.SmsGateway>
) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* makeSmsGatewayServer()
    return yield* Effect.provide(use(server), layerFor(server.url))
  }))

describe("SMS trace propagation", () => {
  for (const [name, client] of clients) {
    const layerHttp = (url: string, tracePropagation?: boolean) =>
      SmsGatewayHttp.layer({
        url,
        apiKey: Redacted.make("sms-key"),
        ...(tracePropagation === undefined ? {} : { tracePropagation })
      }).pipe(Layer.provide(client))

    it.effect(`${name}: by default no trace header reaches the gateway, from inside a traced span`, () =>
      withServer((url) => layerHttp(url), (server) =>
        Effect.gen(function*() {
          const { received } = yield* sendTraced(server)
          for (const request of received) assert.deepStrictEqual(traceHeadersOf(request), [], request.method)
          // The request itself is the same as ever.
          assert.strictEqual(received[0]?.headers["authorization"], "Bearer sms-key")
        })))

    it.effect(`${name}: tracePropagation false sends none either`, () =>
      withServer((url) => layerHttp(url, false), (server) =>
        Effect.gen(function*() {
          const { received } = yield* sendTraced(server)
          for (const request of received) assert.deepStrictEqual(traceHeadersOf(request), [], request.method)
        })))

    it.effect(`${name}: tracePropagation true sends traceparent and b3 of the caller's trace`, () =>
      withServer((url) => layerHttp(url, true), (server) =>
        Effect.gen(function*() {
          const { received, traceId } = yield* sendTraced(server)
          for (const request of received) {
            assert.match(request.headers["traceparent"] ?? "", new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
            assert.match(request.headers["b3"] ?? "", new RegExp(`^${traceId}-[0-9a-f]{16}-1`))
          }
        })))
  }

  const layerFromEnv = (env: Record<string, string>) =>
    SmsGatewayHttp.layerConfig(TenantInfra.smsConfig).pipe(
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({ SMS_API_KEY: "sms-key", ...env })))
    )

  it.effect("layerHttpConfig: none without SMS_TRACE_PROPAGATION, both with SMS_TRACE_PROPAGATION=true", () =>
    Effect.gen(function*() {
      const quiet = yield* withServer((url) => layerFromEnv({ SMS_GATEWAY_URL: url }), sendTraced)
      for (const request of quiet.received) assert.deepStrictEqual(traceHeadersOf(request), [])
      const off = yield* withServer(
        (url) => layerFromEnv({ SMS_GATEWAY_URL: url, SMS_TRACE_PROPAGATION: "false" }),
        sendTraced
      )
      for (const request of off.received) assert.deepStrictEqual(traceHeadersOf(request), [])
      const on = yield* withServer(
        (url) => layerFromEnv({ SMS_GATEWAY_URL: url, SMS_TRACE_PROPAGATION: "true" }),
        sendTraced
      )
      for (const request of on.received) {
        assert.deepStrictEqual(traceHeadersOf(request).sort(), ["b3", "traceparent"])
        assert.include(request.headers["traceparent"] ?? "", on.traceId)
      }
    }))
})
