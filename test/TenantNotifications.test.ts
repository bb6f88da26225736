import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Mailer from "../src/Mailer.js"
import * as MailerSmtp from "../src/Mailer/Smtp.js"
import * as SmsGateway from "../src/SmsGateway.js"
import * as SmsGatewayHttp from "../src/SmsGateway/Http.js"
import type { Locale } from "../src/Tenant.js"
import { Tenant } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import { TenantCreated } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import { makeSmsGatewayServer } from "./utils/smsGateway.js"
import { makeSmtpServer } from "./utils/smtpServer.js"
import { stampAt, uniqueCode } from "./utils/tenants.js"

const fast = {
  retry: { baseDelay: Duration.millis(5), maxDelay: Duration.millis(20), maxAttempts: 3, attemptTimeout: "5 seconds" }
} as const

const memory = TenantNotifications.layer(fast).pipe(
  Layer.provideMerge(Layer.merge(Mailer.layerMemory({ from: "noreply@infra.test" }), SmsGateway.layerMemory))
)

/** A tenant's whole life, every event in order: created, activated, suspended, deleted, restored, updated. */
const lifeOf = (input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const at = new Date("2026-11-24T08:00:00Z")
    const created = yield* TenantLifecycle.create(
      yield* TenantLifecycle.newTenantId,
      { code: uniqueCode(), name: "Acme Inc.", contact: { email: "admin@acme.test" }, ...input },
      stampAt(at)
    )
    const events: Array<TenantEvent> = [created.event]
    let tenant: Tenant = created.tenant
    const steps = [
      TenantLifecycle.activate,
      TenantLifecycle.suspend,
      TenantLifecycle.softDelete,
      TenantLifecycle.restore
    ] as const
    for (const step of steps) {
      const next = yield* step(tenant, stampAt(at, { actor: "ops", reason: "invoice <b>unpaid</b> & late" }))
      events.push(next.event)
      tenant = next.tenant
    }
    const updated = yield* TenantLifecycle.update(tenant, { name: "Acme Renamed" }, stampAt(at))
    if (updated._tag === "Some") events.push(updated.value.event)
    return events
  })

const summary = (notifications: ReadonlyArray<TenantNotifications.Notification>) =>
  notifications.map((n) => `${n.event._tag}: ${n.template} ${n.channel} to ${n.message.to}`)

describe("TenantNotifications", () => {
  describe("the notification matrix", () => {
    for (const locale of ["en", "zh-CN"] as const satisfies ReadonlyArray<Locale>) {
      it.effect(`maps every event to its messages [${locale}, with a phone]`, () =>
        Effect.gen(function*() {
          const events = yield* lifeOf({ contact: { email: "admin@acme.test", phone: "+8613800138000", locale } })
          assert.deepStrictEqual(summary(events.flatMap(TenantNotifications.notificationsFor)), [
            "TenantCreated: welcome email to admin@acme.test",
            "TenantActivated: activated sms to +8613800138000",
            "TenantSuspended: suspended email to admin@acme.test",
            "TenantDeleted: deleted email to admin@acme.test",
            "TenantRestored: restored email to admin@acme.test"
          ])
        }))

      it.effect(`sends an e-mail instead of an SMS to a tenant without a phone [${locale}]`, () =>
        Effect.gen(function*() {
          const events = yield* lifeOf({ contact: { email: "admin@acme.test", locale } })
          const activated = events.flatMap(TenantNotifications.notificationsFor).filter((n) =>
            n.event._tag === "TenantActivated"
          )
          assert.deepStrictEqual(summary(activated), ["TenantActivated: activated email to admin@acme.test"])
        }))
    }

    it.effect("writes in the tenant's language and puts the reason in suspended and deleted e-mails", () =>
      Effect.gen(function*() {
        const texts = (locale: Locale) =>
          Effect.map(
            lifeOf({ name: "测试（北京）科技", contact: { email: "admin@bj.test", locale } }),
            (events) => events.flatMap(TenantNotifications.notificationsFor)
          )
        const zh = yield* texts("zh-CN")
        const en = yield* texts("en")
        const emailOf = (all: typeof zh, tag: TenantEvent["_tag"]): Mailer.EmailMessage => {
          const found = all.find((n) => n.event._tag === tag)
          if (found?.channel !== "email") throw new Error(`no e-mail for ${tag}`)
          return found.message
        }
        assert.match(emailOf(zh, "TenantCreated").subject, /欢迎/)
        assert.match(emailOf(en, "TenantCreated").subject, /Welcome/)
        for (const tag of ["TenantSuspended", "TenantDeleted"] as const) {
          const message = emailOf(en, tag)
          assert.include(message.text, "invoice <b>unpaid</b> & late")
          assert.include(message.html, "invoice &lt;b&gt;unpaid&lt;/b&gt; &amp; late")
          assert.notInclude(message.html, "<b>unpaid</b>")
        }
      }))

    it.effect("keys every message by event, channel and recipient", () =>
      Effect.gen(function*() {
        const [created] = yield* lifeOf({})
        if (created === undefined) return assert.fail("no event")
        const [welcome] = TenantNotifications.notificationsFor(created)
        assert.strictEqual(welcome?.message.key, `${created.eventId}:email:admin@acme.test`)
        assert.deepStrictEqual(TenantNotifications.notificationsFor(created), welcome === undefined ? [] : [welcome])
      }))

    it.effect("renders exactly the envelopes: one message per envelope, same key, channel, template and recipient", () =>
      Effect.gen(function*() {
        const events = [
          ...(yield* lifeOf({ contact: { email: "Admin@Acme.test", phone: "+8613800138000", locale: "zh-CN" } })),
          ...(yield* lifeOf({ contact: { email: "admin@acme.test" } }))
        ]
        for (const event of events) {
          const envelopes = TenantNotifications.envelopesFor(event)
          const notifications = TenantNotifications.notificationsFor(event)
          assert.deepStrictEqual(
            notifications.map((n) => [n.message.key, n.channel, n.template, n.message.to]),
            envelopes.map((e) => [e.key, e.channel, e.template, e.recipient])
          )
          assert.deepStrictEqual(envelopes.map((e) => TenantNotifications.notificationOf(event, e)), notifications)
          for (const e of envelopes) {
            assert.strictEqual(e.key, TenantNotifications.keyOf(event.eventId, e.channel, e.recipient))
          }
        }
      }))
  })

  describe("notify", () => {
    it.effect("sends through the memory layers and reports each message", () =>
      Effect.gen(function*() {
        const notifications = yield* TenantNotifications.TenantNotifications
        const events = yield* lifeOf({ contact: { email: "admin@acme.test", phone: "+8613800138000" } })
        const reports = yield* Effect.forEach(events, notifications.notify)
        assert.deepStrictEqual(reports.map((r) => [r.sent.length, r.failed.length]), [
          [1, 0],
          [1, 0],
          [1, 0],
          [1, 0],
          [1, 0],
          [0, 0]
        ])
        const mails = yield* (yield* Mailer.MemoryMailer).sent
        const sms = yield* (yield* SmsGateway.MemorySmsGateway).sent
        assert.deepStrictEqual([mails.length, sms.length], [4, 1])
        assert.strictEqual(reports[0]?.sent[0]?.id, mails[0]?.messageId)
      }).pipe(Effect.provide(memory)))

    it.live("through real servers: retries what may succeed, reports what cannot, never resends twice", () =>
      Effect.scoped(Effect.gen(function*() {
        const smtp = yield* makeSmtpServer()
        const sms = yield* makeSmsGatewayServer({ dedupe: true })
        const live = TenantNotifications.layer(fast).pipe(
          Layer.provide(MailerSmtp.layer({ url: Redacted.make(smtp.url()), from: "noreply@infra.test" })),
          Layer.provide(
            SmsGatewayHttp.layer({ url: sms.url, apiKey: Redacted.make("sk_test_key") }).pipe(
              Layer.provide(FetchHttpClient.layer)
            )
          )
        )
        const [created, activated] = yield* lifeOf({
          name: "测试（北京）科技",
          contact: { email: "admin@bj.test", phone: "+8613800138000", locale: "zh-CN" }
        })
        if (created === undefined || activated === undefined) return assert.fail("no events")

        const notifications = Context.get(yield* Layer.build(live), TenantNotifications.TenantNotifications)
        // The welcome e-mail is refused for good: reported, not retried.
        smtp.script("550")
        const refused = yield* notifications.notify(created)
        assert.deepStrictEqual(refused.failed.map((f) => [f.error._tag, f.error.code]), [["Permanent", 550]])
        assert.strictEqual(smtp.attempts(), 1)

        // The SMS meets a busy gateway, then goes through.
        sms.script("503")
        const report = yield* notifications.notify(activated)
        assert.deepStrictEqual([report.sent.length, report.failed.length], [1, 0])
        assert.lengthOf(sms.received(), 2)

        // Notifying again (a relay that restarted) sends recognisable repeats: the same Message-ID, the same
        // idempotency key, which the gateway does not deliver twice.
        const first = yield* notifications.notify(created)
        const second = yield* notifications.notify(created)
        assert.strictEqual(first.sent[0]?.id, second.sent[0]?.id)
        assert.deepStrictEqual(smtp.accepted().map((m) => m.messageId), [first.sent[0]?.id, second.sent[0]?.id])
        const subject = smtp.accepted()[0]?.subject ?? ""
        const decoded = subject.replace(
          /=\?UTF-8\?B\?([^?]+)\?=\s*/g,
          (_, b64: string) => Buffer.from(b64, "base64").toString("utf8")
        )
        assert.include(decoded, "测试（北京）科技")
        yield* notifications.notify(activated)
        assert.lengthOf(sms.accepted(), 1)
      })))
  })

  it.effect("a template never lets a line break reach the subject, even from data that skipped validation", () =>
    Effect.gen(function*() {
      const [created] = yield* lifeOf({})
      if (created?._tag !== "TenantCreated") return assert.fail("no TenantCreated event")
      // A name with CR/LF, as a bug or an old row might bring one: built with validation turned off.
      const tenant = new Tenant({ ...created.tenant, name: "Acme\r\nBcc: victim@evil.test" }, true)
      const forged = new TenantCreated({ ...created, tenant }, true)
      const [welcome] = TenantNotifications.notificationsFor(forged)
      if (welcome?.channel !== "email") return assert.fail("no welcome e-mail")
      assert.notMatch(welcome.message.subject, /[\r\n]/)
      assert.include(welcome.message.subject, "Acme Bcc: victim@evil.test")
    }))
})
