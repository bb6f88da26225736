/**
 * The relay's warnings while a provider keeps failing: at most one line per channel per interval, each naming
 * the channel, the error class and the provider's host, with the attempts failed since the previous line, and
 * never a credential. The relay runs on the memory store under the `TestClock`, configured as `tenant-infra
 * relay` is (`OutboxRelay.layerConfig(TenantInfra.relayConfig)`), with credentials in every setting that may hold one.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as TestClock from "effect/TestClock"
import { Mailer } from "../src/Mailer.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import type { Channel } from "../src/SendError.js"
import * as SendError from "../src/SendError.js"
import { SmsGateway } from "../src/SmsGateway.js"
import * as TenantInfra from "../src/TenantInfra.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { storedLife } from "./utils/deliveryStores.js"

const SMTP_PASSWORD = "smtp-pw-0f3a9c"
const SMS_URL_KEY = "sms-url-key-7d21b4"
const SMS_API_KEY = "sms-api-key-c85e60"
const SECRETS = [SMTP_PASSWORD, SMS_URL_KEY, SMS_API_KEY, "relay-mailer", "gw-account"]

const INTERVAL = Duration.seconds(20)

const DOWN = "admin@down.test"
const UP = "admin@up.test"

/**
 * The environment of a `tenant-infra relay`: a second between attempts, a budget that is never spent, and one
 * send at a time, so that the senders' count of failures is in step with the warnings.
 */
const environment = ConfigProvider.fromMap(
  new Map([
    ["SMTP_URL", `smtp://relay-mailer:${SMTP_PASSWORD}@smtp.provider.test:2525`],
    ["SMS_GATEWAY_URL", `https://gw-account:${SMS_URL_KEY}@sms.provider.test/v1/messages?key=${SMS_URL_KEY}`],
    ["SMS_API_KEY", SMS_API_KEY],
    ["RELAY_CONCURRENCY", "1"],
    ["RELAY_POLL_INTERVAL", "1 second"],
    ["RELAY_BASE_DELAY", "1 second"],
    ["RELAY_MAX_DELAY", "1 second"],
    ["RELAY_MAX_ATTEMPTS", "100000"],
    ["RELAY_FAILURE_LOG_INTERVAL", "20 seconds"]
  ])
)

interface Line {
  readonly at: number
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
  /** The attempts the senders had failed on the line's channel when it was written. */
  readonly failedSoFar: number
}

/**
 * Senders that fail every attempt (e-mail `Transient`, SMS `RateLimited`), and count them; but e-mail to
 * `UP`, so that its tenants' SMS, which wait for their welcome e-mail, are tried too.
 */
const failingSenders = () => {
  const failed: Record<Channel, number> = { email: 0, sms: 0 }
  const layer = Layer.merge(
    Layer.succeed(
      Mailer,
      Mailer.of({
        from: "noreply@relay.test",
        send: (message) =>
          Effect.suspend(() => {
            if (message.to === UP) return Effect.succeed({ messageId: `<${message.key}@relay.test>`, response: "250" })
            failed.email++
            return Effect.fail(
              new SendError.Transient({ channel: "email", detail: "refused for now by the server", code: 451 })
            )
          })
      })
    ),
    Layer.succeed(
      SmsGateway,
      SmsGateway.of({
        send: () =>
          Effect.suspend(() => {
            failed.sms++
            return Effect.fail(new SendError.RateLimited({ channel: "sms", detail: "slow down", code: 429 }))
          })
      })
    )
  )
  return { failed, layer }
}

/** Every line logged, rendered as logfmt and as JSON; and the relay's failure warnings, parsed. */
const capturingLogger = (failed: Readonly<Record<Channel, number>>) => {
  const rendered: Array<string> = []
  const warnings: Array<Line> = []
  const logger = Logger.make((options) => {
    rendered.push(Logger.logfmtLogger.log(options), Logger.jsonLogger.log(options))
    const message = String(options.message)
    if (!message.includes("attempts are failing")) return
    const annotations = Object.fromEntries(HashMap.toEntries(options.annotations))
    const channel = annotations.channel === "sms" ? "sms" : "email"
    warnings.push({ at: options.date.getTime(), message, annotations, failedSoFar: failed[channel] })
  })
  return { rendered, warnings, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("OutboxRelay failure warnings", () => {
  it.scoped("one line per channel per interval, with the count since the last, the class and the host; no secret", () =>
    Effect.gen(function*() {
      const senders = failingSenders()
      const logs = capturingLogger(senders.failed)
      const store = yield* Layer.build(TenantRepository.layerMemory)
      // Three welcome e-mails that will never go out, and three activation SMS that will never go out either.
      for (let tenant = 0; tenant < 3; tenant++) {
        yield* storedLife({ contact: { email: DOWN } }).pipe(Effect.provide(store))
        yield* storedLife({ contact: { email: UP, phone: "+8613800138000" } }, [TenantLifecycle.activate]).pipe(
          Effect.provide(store)
        )
      }
      const relay = yield* Layer.build(
        OutboxRelay.layerConfig(TenantInfra.relayConfig).pipe(
          Layer.provide(TenantNotifications.layer()),
          Layer.provide(senders.layer),
          Layer.provide(Layer.succeedContext(store)),
          Layer.provide(Layer.setConfigProvider(environment))
        )
      ).pipe(Effect.provide(logs.layer))
      const { relayId } = Context.get(relay, OutboxRelay.OutboxRelay)

      const warningsOf = (channel: Channel) => logs.warnings.filter((line) => line.annotations.channel === channel)
      const now = TestClock.currentTimeMillis
      /** Advances the clock a tenth of a second at a time until `done` holds (at most a minute). */
      const advanceUntil = (done: () => boolean) =>
        Effect.gen(function*() {
          for (let step = 0; step < 600 && !done(); step++) yield* TestClock.adjust(Duration.millis(100))
          assert.isTrue(done(), `not there within a minute: ${JSON.stringify(senders.failed)} failed attempts`)
        })

      const start = yield* now
      // Ten failed attempts per message on each channel, within the interval: one line each, the first.
      yield* advanceUntil(() => senders.failed.email >= 30 && senders.failed.sms >= 30)
      assert.isBelow((yield* now) - start, Duration.toMillis(INTERVAL))
      assert.deepStrictEqual(warningsOf("email").map((line) => line.annotations), [{
        relay: relayId,
        channel: "email",
        host: "smtp.provider.test:2525",
        error: "Transient",
        failed: 1,
        errors: "Transient=1",
        detail: "E-mail refused for now by the server (451)"
      }])
      assert.deepStrictEqual(warningsOf("sms").map((line) => line.annotations), [{
        relay: relayId,
        channel: "sms",
        host: "sms.provider.test",
        error: "RateLimited",
        failed: 1,
        errors: "RateLimited=1",
        detail: "SMS slow down (429)"
      }])
      assert.strictEqual(
        warningsOf("email")[0]?.message,
        "outbox relay: e-mail attempts are failing at smtp.provider.test:2525"
      )

      // Still one line each until the interval has passed since the first...
      const first = Math.max(...logs.warnings.map((line) => line.at))
      yield* TestClock.adjust(Duration.millis(first + Duration.toMillis(INTERVAL) - 100 - (yield* now)))
      assert.isAtLeast(Math.min(senders.failed.email, senders.failed.sms), 40)
      assert.deepStrictEqual([warningsOf("email").length, warningsOf("sms").length], [1, 1])
      // ...then a second, at the next failure, counting every attempt failed since the first line.
      yield* advanceUntil(() => warningsOf("email").length === 2 && warningsOf("sms").length === 2)
      for (const channel of ["email", "sms"] as const) {
        const [one, two] = warningsOf(channel)
        // Each message is tried every second: the next failure comes within one once the interval is over.
        const apart = (two?.at ?? 0) - (one?.at ?? 0)
        assert.isTrue(
          apart >= Duration.toMillis(INTERVAL) && apart <= Duration.toMillis(INTERVAL) + 1500,
          `${apart} ms`
        )
        assert.isAtLeast(Number(two?.annotations.failed), 30)
        assert.strictEqual(Number(one?.annotations.failed) + Number(two?.annotations.failed), two?.failedSoFar)
        assert.strictEqual(
          two?.annotations.errors,
          `${channel === "email" ? "Transient" : "RateLimited"}=${two?.annotations.failed}`
        )
      }

      const everything = logs.rendered.join("\n")
      assert.include(everything, "smtp.provider.test:2525")
      for (const secret of SECRETS) assert.notInclude(everything, secret)
    }))
})
