import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import { SendError } from "../src/SendError.js"
import * as SendRetry from "../src/SendRetry.js"
import * as SmsGateway from "../src/SmsGateway.js"
import * as SmsGatewayHttp from "../src/SmsGateway/Http.js"
import * as TenantInfra from "../src/TenantInfra.js"
import type { Reply, SmsGatewayServerOptions, TestSmsGateway } from "./utils/smsGateway.js"
import { makeSmsGatewayServer, refusingUrl, retryAfter } from "./utils/smsGateway.js"

const API_KEY = "sk_live_SECRET_123"
const NUMBER = "+8613800138000"
const TEXT = "Your workspace acme is now active."

let sequence = 0
const message = (overrides: Partial<SmsGateway.SmsMessage> = {}): SmsGateway.SmsMessage => ({
  key: `event-${++sequence}:sms:${NUMBER}`,
  to: NUMBER,
  text: TEXT,
  ...overrides
})

/**
 * The suite's client is `NodeHttpClient.layerUndici`: its undici `Agent` belongs to the layer's scope, so each
 * test's keep-alive connections close with the test (`fetch` shares Node's global dispatcher with the whole
 * process), and it is what a Node service would use. The transport failures also run through `FetchHttpClient`,
 * whose errors arrive wrapped in a `TypeError("fetch failed")` around the same undici error.
 */
const clients: ReadonlyArray<readonly [name: string, layer: Layer.Layer<HttpClient.HttpClient>]> = [
  ["undici", NodeHttpClient.layerUndici],
  ["fetch", FetchHttpClient.layer]
]

interface GatewayOptions extends SmsGatewayServerOptions {
  readonly client?: Layer.Layer<HttpClient.HttpClient>
  readonly requestTimeout?: Duration.DurationInput
  /** Send somewhere else than the test server (a closed port, a malformed URL). */
  readonly url?: string
}

/** `layerHttp` pointed at a fresh scripted gateway, both gone when `use` ends. */
const withGateway = <A, E>(
  use: (server: TestSmsGateway) => Effect.Effect<A, E, SmsGateway.SmsGateway>,
  options: GatewayOptions = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* makeSmsGatewayServer(options)
    const layer = SmsGatewayHttp.layer({
      url: options.url ?? server.url,
      apiKey: Redacted.make(API_KEY),
      requestTimeout: options.requestTimeout
    }).pipe(Layer.provide(options.client ?? NodeHttpClient.layerUndici))
    return yield* Effect.provide(use(server), layer)
  }))

const send = (overrides: Partial<SmsGateway.SmsMessage> = {}) =>
  Effect.flatMap(SmsGateway.SmsGateway, (gateway) => gateway.send(message(overrides)))

const fast: SendRetry.Options = {
  baseDelay: Duration.millis(10),
  maxDelay: Duration.millis(40),
  maxAttempts: 4,
  attemptTimeout: Duration.seconds(2)
}

const sendRetried = (sms: SmsGateway.SmsMessage, options: SendRetry.Options = fast) =>
  Effect.flatMap(SmsGateway.SmsGateway, (gateway) => SendRetry.retry("sms", options)(gateway.send(sms)))

/** Every way an error can be shown: its message, its fields, its JSON and encoded forms, a pretty cause. */
const renderings = (error: SendError): ReadonlyArray<string> => [
  error.message,
  error.detail,
  error.response ?? "",
  String(error),
  String(error.cause),
  JSON.stringify(error),
  JSON.stringify(Schema.encodeSync(SendError)(error)),
  Cause.pretty(Cause.fail(error))
]

/** A logger that keeps every line, written both as logfmt and as JSON. */
const capturingLogger = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    lines.push(Logger.logfmtLogger.log(options), Logger.jsonLogger.log(options))
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const invalidNumbers = ["13800138000", "+0861380013800", "+86 138 0013 8000", "+1234567890123456", "+", ""]

describe("SmsGateway", () => {
  describe("layerMemory", () => {
    it.effect("keeps every message, answers a repeated idempotency key with the first id, refuses a bad number", () =>
      Effect.gen(function*() {
        const gateway = yield* SmsGateway.SmsGateway
        const first = yield* gateway.send(message({ key: "evt-1:sms:+8613800138000" }))
        const again = yield* gateway.send(message({ key: "evt-1:sms:+8613800138000", text: "resent" }))
        const other = yield* gateway.send(message({ key: "evt-2:sms:+8613800138000" }))
        assert.strictEqual(again.id, first.id)
        assert.notStrictEqual(other.id, first.id)
        for (const to of invalidNumbers) {
          const error = yield* Effect.flip(gateway.send(message({ to })))
          assert.deepStrictEqual([error._tag, error.channel], ["Permanent", "sms"])
        }
        const sent = yield* (yield* SmsGateway.MemorySmsGateway).sent
        assert.deepStrictEqual(sent.map((kept) => [kept.id, kept.idempotencyKey, kept.text]), [
          [first.id, SmsGateway.idempotencyKeyFor("evt-1:sms:+8613800138000"), TEXT],
          [other.id, SmsGateway.idempotencyKeyFor("evt-2:sms:+8613800138000"), TEXT]
        ])
      }).pipe(Effect.provide(SmsGateway.layerMemory)))
  })

  describe("layerHttp against a node:http gateway", () => {
    it.live("posts { to, text } as JSON with the bearer key and the idempotency key, and returns the gateway's id", () =>
      withGateway((server) =>
        Effect.gen(function*() {
          const sent = yield* send({ key: "evt-7:sms:+8613800138000" })
          const [request] = server.received()
          assert.strictEqual(sent.id, server.accepted()[0]?.id)
          assert.deepStrictEqual([request?.method, request?.path], ["POST", "/v1/messages"])
          assert.deepStrictEqual(JSON.parse(request?.body ?? ""), { to: NUMBER, text: TEXT })
          assert.strictEqual(request?.headers["authorization"], `Bearer ${API_KEY}`)
          assert.strictEqual(
            request?.headers["idempotency-key"],
            SmsGateway.idempotencyKeyFor("evt-7:sms:+8613800138000")
          )
          assert.strictEqual(request?.headers["content-type"], "application/json")
        })
      ))

    it.live("refuses an invalid number as Permanent, exactly like layerMemory, and the gateway sees nothing", () =>
      withGateway((server) =>
        Effect.gen(function*() {
          for (const to of invalidNumbers) {
            const error = yield* Effect.flip(send({ to }))
            const fromMemory = yield* Effect.flip(send({ to })).pipe(Effect.provide(SmsGateway.layerMemory))
            assert.deepStrictEqual([error._tag, error.detail], [fromMemory._tag, fromMemory.detail])
          }
          for (const to of ["+12", "+861380013800012"]) yield* send({ to })
          assert.lengthOf(server.received(), 2)
        })
      ))

    const answers: ReadonlyArray<readonly [Reply, SendError["_tag"], number, string]> = [
      ["200-no-id", "Ambiguous", 200, "queued"],
      ["429", "RateLimited", 429, "too many requests"],
      ["503", "Transient", 503, "service unavailable"],
      ["500", "Transient", 500, "internal error"],
      ["408", "Transient", 408, "request timeout"],
      [{ status: 409, body: "{\"error\":\"idempotency key in use\"}" }, "Transient", 409, "idempotency key in use"],
      ["400", "Permanent", 400, "not a mobile number"],
      ["422", "Permanent", 422, "unprocessable"],
      ["404", "Permanent", 404, "no such endpoint"],
      ["401", "Misconfigured", 401, "invalid API key"],
      ["403", "Misconfigured", 403, "account suspended"]
    ]
    for (const [reply, tag, code, response] of answers) {
      it.live(`classifies ${reply} as ${tag}, keeping the status and the body`, () =>
        withGateway(
          (server) =>
            Effect.gen(function*() {
              const error = yield* Effect.flip(send())
              assert.deepStrictEqual([error._tag, error.channel, error.code], [tag, "sms", code])
              assert.include(error.response, response)
              assert.isTrue(error._tag !== "RateLimited" || error.retryAfter === undefined)
              assert.lengthOf(server.received(), 1)
            }),
          { script: [reply] }
        ))
    }

    it.live("keeps at most 500 characters of a long answer", () =>
      withGateway(
        () =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(send())
            assert.strictEqual(error._tag, "Permanent")
            assert.strictEqual(error.response, "x".repeat(500))
          }),
        { script: [{ status: 400, body: "x".repeat(5000) }] }
      ))

    it.effect("reads Retry-After as delta-seconds or an HTTP date; an unreadable one gives no wait", () =>
      Effect.gen(function*() {
        // The test clock makes "now" exact, so a date 90 s ahead is exactly 90 s of wait.
        const now = Date.parse("2030-05-06T07:08:09Z")
        yield* TestClock.setTime(now)
        const cases: ReadonlyArray<readonly [string, Duration.Duration | undefined]> = [
          ["7", Duration.seconds(7)],
          [" 120 ", Duration.seconds(120)],
          [new Date(now + 90_000).toUTCString(), Duration.seconds(90)],
          ["Monday, 06-May-30 07:08:19 GMT", Duration.seconds(10)],
          [new Date(now - 60_000).toUTCString(), Duration.zero],
          ["soon", undefined],
          ["1.5", undefined],
          ["-3", undefined]
        ]
        yield* withGateway(
          () =>
            Effect.forEach(cases, ([, expected]) =>
              Effect.gen(function*() {
                const error = yield* Effect.flip(send())
                if (error._tag !== "RateLimited") return assert.fail(`expected RateLimited, got ${error._tag}`)
                assert.deepStrictEqual(error.retryAfter, expected)
              })),
          { script: cases.map(([header]) => retryAfter(header)) }
        )
      }))

    for (const [client, layer] of clients) {
      describe(`transport failures through ${client}`, () => {
        it.live("a connection dropped after the request went out is Ambiguous", () =>
          withGateway(
            (server) =>
              Effect.gen(function*() {
                for (const _ of ["drop", "accept-then-drop"]) {
                  const error = yield* Effect.flip(send())
                  assert.strictEqual(error._tag, "Ambiguous")
                  assert.strictEqual(error.code, "UND_ERR_SOCKET")
                  assert.match(String(error.cause), /other side closed/)
                }
                assert.lengthOf(server.received(), 2)
                yield* send()
              }),
            { script: ["drop", "accept-then-drop"], client: layer }
          ))

        it.live("no answer within the request timeout is Ambiguous", () =>
          withGateway(
            (server) =>
              Effect.gen(function*() {
                const error = yield* Effect.flip(send())
                assert.deepStrictEqual([error._tag, error.code], ["Ambiguous", "ETIMEDOUT"])
                assert.lengthOf(server.received(), 1)
              }),
            { script: ["hang"], requestTimeout: Duration.millis(150), client: layer }
          ))

        it.live("a refused connection is Transient: nothing was sent", () =>
          Effect.gen(function*() {
            const url = yield* refusingUrl
            const error = yield* withGateway(() => Effect.flip(send()), { url, client: layer })
            assert.deepStrictEqual([error._tag, error.code], ["Transient", "ECONNREFUSED"])
            assert.match(String(error.cause), /ECONNREFUSED/)
          }))
      })
    }

    it.live("a malformed gateway URL is Misconfigured and nothing is sent", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(send())
            assert.deepStrictEqual([error._tag, error.code], ["Misconfigured", "EINVALIDURL"])
            assert.lengthOf(server.received(), 0)
          }),
        { url: "not a url" }
      ))

    it.live("a span per send, whose attributes hold neither the number, the text nor the key", () =>
      Effect.gen(function*() {
        const spans: Array<Tracer.Span> = []
        const recording = yield* Effect.tracerWith((tracer) =>
          Effect.succeed(Tracer.make({
            span: (...args) => {
              const span = tracer.span(...args)
              spans.push(span)
              return span
            },
            context: tracer.context
          }))
        )
        yield* withGateway(() => Effect.zipRight(send(), Effect.flip(send())), { script: ["200", "503"] }).pipe(
          Effect.withTracer(recording)
        )
        const sends = spans.filter((span) => span.name === "SmsGateway.send")
        assert.lengthOf(sends, 2)
        assert.strictEqual(sends[1]?.attributes.get("sms.error"), "Transient")
        const values = spans.flatMap((span) => [...span.attributes.values()].map(String))
        assert.isNotEmpty(values)
        for (const value of values) {
          for (const secret of [NUMBER, TEXT, API_KEY]) assert.notInclude(value, secret)
        }
      }))

    it.live("never shows the API key: not in any error of any class, not in a log line", () => {
      const { layer: logs, lines } = capturingLogger()
      return Effect.gen(function*() {
        const refused = yield* refusingUrl
        const failures: ReadonlyArray<readonly [Reply | "refused" | "bad number", GatewayOptions]> = [
          ["200-no-id", {}],
          [retryAfter("3"), {}],
          ["503", {}],
          ["400", {}],
          // A gateway that echoes the key it refused: the kept response must not.
          [{ status: 401, body: JSON.stringify({ error: `invalid API key ${API_KEY}` }) }, {}],
          ["drop", {}],
          ["hang", { requestTimeout: Duration.millis(100) }],
          ["refused", { url: refused }],
          ["bad number", {}]
        ]
        const errors: Array<SendError> = []
        for (const [, layer] of clients) {
          for (const [reply, options] of failures) {
            const script = reply === "refused" || reply === "bad number" ? [] : [reply]
            const error = yield* withGateway(
              () =>
                Effect.flip(send(reply === "bad number" ? { to: "0800" } : {})).pipe(
                  Effect.tap((error) => Effect.logError("SMS send failed", error)),
                  Effect.tap((error) => Effect.logWarning(Cause.fail(error)))
                ),
              { ...options, script, client: layer }
            )
            errors.push(error)
          }
        }
        assert.deepStrictEqual(
          [...new Set(errors.map((error) => error._tag))].sort(),
          ["Ambiguous", "Misconfigured", "Permanent", "RateLimited", "Transient"]
        )
        assert.include(errors.find((error) => error.code === 401)?.response, "invalid API key <redacted>")
        for (const text of errors.flatMap(renderings)) assert.notInclude(text, API_KEY)
        assert.isAbove(lines.length, errors.length)
        for (const line of lines) assert.notInclude(line, API_KEY)
      }).pipe(Effect.provide(logs))
    })
  })

  describe("layerHttp with SendRetry", () => {
    const keysOf = (server: TestSmsGateway) => server.received().map((request) => request.headers["idempotency-key"])

    it.live("retries 503, 503 and succeeds on the third attempt, always under the same idempotency key", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            const sms = message()
            const sent = yield* sendRetried(sms)
            assert.strictEqual(sent.id, server.accepted()[0]?.id)
            assert.deepStrictEqual(keysOf(server), Array(3).fill(SmsGateway.idempotencyKeyFor(sms.key)))
          }),
        { script: ["503", "503", "200"] }
      ))

    it.live("waits at least the Retry-After of a 429 before the next attempt", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            yield* sendRetried(message())
            const [first, second] = server.received()
            assert.lengthOf(server.received(), 2)
            // The base delay is 10 ms; only the gateway's one second explains the gap.
            assert.isAtLeast((second?.at ?? 0) - (first?.at ?? 0), 990)
          }),
        { script: [retryAfter("1"), "200"] }
      ))

    for (const reply of ["400", "401"] as const) {
      it.live(`never retries ${reply}: one attempt`, () =>
        withGateway(
          (server) =>
            Effect.gen(function*() {
              const error = yield* Effect.flip(sendRetried(message()))
              assert.strictEqual(error.code, Number(reply))
              assert.lengthOf(server.received(), 1)
            }),
          { script: [reply], fallback: "200" }
        ))
    }

    it.live("retries a reply lost after acceptance; a deduplicating gateway takes the message once", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            const sms = message()
            const key = SmsGateway.idempotencyKeyFor(sms.key)
            const sent = yield* sendRetried(sms)
            assert.deepStrictEqual(keysOf(server), [key, key])
            assert.strictEqual(server.acceptedCount(key), 1)
            assert.strictEqual(sent.id, server.accepted()[0]?.id)
          }),
        { script: ["accept-then-drop", "200"], dedupe: true }
      ))

    it.live("the same retry against a gateway that ignores the key delivers twice (what the key prevents)", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            const sms = message()
            yield* sendRetried(sms)
            assert.strictEqual(server.acceptedCount(SmsGateway.idempotencyKeyFor(sms.key)), 2)
          }),
        { script: ["accept-then-drop", "200"] }
      ))

    it.live("retries an attempt cut off by the attempt timeout, under the same key", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            const sms = message()
            yield* sendRetried(sms, { ...fast, attemptTimeout: Duration.millis(150) })
            assert.deepStrictEqual(keysOf(server), Array(2).fill(SmsGateway.idempotencyKeyFor(sms.key)))
          }),
        { script: ["hang", "200"] }
      ))

    it.live("stops after maxAttempts and fails with the last error", () =>
      withGateway(
        (server) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(sendRetried(message(), { ...fast, maxAttempts: 3 }))
            assert.deepStrictEqual([error._tag, error.code], ["Transient", 503])
            assert.lengthOf(server.received(), 3)
          }),
        { fallback: "503" }
      ))
  })

  describe("layerHttpConfig", () => {
    const configured = (server: TestSmsGateway, entries: ReadonlyArray<readonly [string, string]>) =>
      SmsGatewayHttp.layerConfig(TenantInfra.smsConfig).pipe(
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["SMS_GATEWAY_URL", server.url],
            ...entries
          ])
        )))
      )

    it.live("reads SMS_GATEWAY_URL, SMS_API_KEY and SMS_REQUEST_TIMEOUT", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* makeSmsGatewayServer({ script: ["200", "hang"] })
        const layer = configured(server, [["SMS_API_KEY", API_KEY], ["SMS_REQUEST_TIMEOUT", "150 millis"]])
        const [sent, timedOut] = yield* Effect.zip(send(), Effect.flip(send())).pipe(Effect.provide(layer))
        assert.strictEqual(sent.id, server.accepted()[0]?.id)
        assert.strictEqual(server.received()[0]?.headers["authorization"], `Bearer ${API_KEY}`)
        assert.deepStrictEqual([timedOut._tag, timedOut.code], ["Ambiguous", "ETIMEDOUT"])
      })))

    it.live("fails to build without SMS_API_KEY", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* makeSmsGatewayServer()
        const error = yield* Effect.flip(Layer.build(configured(server, [])))
        assert.include(String(error), "SMS_API_KEY")
        assert.lengthOf(server.received(), 0)
      })))
  })
})
