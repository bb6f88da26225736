import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Mailer from "../src/Mailer.js"
import * as SmsGateway from "../src/SmsGateway.js"
import type { Locale, Tenant } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import { stampAt, uniqueCode } from "./utils/tenants.js"

// An internal name no template word contains, so that finding it anywhere means the actor leaked.
const ACTOR = "billing-svc-7f3a"
// The actor's label in each locale, as the text part lays out a detail row.
const LABELS: { readonly [L in Locale]: RegExp } = { en: /^By: /m, "zh-CN": /^操作人：/m }
const LOCALES = ["en", "zh-CN"] as const satisfies ReadonlyArray<Locale>

/** Every event of a tenant's life, each made by `ACTOR`: created, activated, suspended, deleted, restored. */
const lifeOf = (contact: Record<string, unknown>) =>
  Effect.gen(function*() {
    const at = new Date("2026-11-24T08:00:00Z")
    const created = yield* TenantLifecycle.create(
      yield* TenantLifecycle.newTenantId,
      { code: uniqueCode(), name: "Acme Inc.", contact },
      stampAt(at, { actor: ACTOR })
    )
    const events: Array<TenantEvent> = [created.event]
    let tenant: Tenant = created.tenant
    for (
      const step of [
        TenantLifecycle.activate,
        TenantLifecycle.suspend,
        TenantLifecycle.softDelete,
        TenantLifecycle.restore
      ] as const
    ) {
      const next = yield* step(tenant, stampAt(at, { actor: ACTOR, reason: "unpaid" }))
      events.push(next.event)
      tenant = next.tenant
    }
    return events
  })

/** Both locales, with a phone (activation by SMS) and without one (activation by e-mail): every template. */
const everyLife = Effect.gen(function*() {
  const events: Array<TenantEvent> = []
  for (const locale of LOCALES) {
    events.push(...(yield* lifeOf({ email: "admin@acme.test", phone: "+8613800138000", locale })))
    events.push(...(yield* lifeOf({ email: "admin@acme.test", locale })))
  }
  return events
})

/** What the memory senders received when `notify` ran over `events` with `options`. */
const sentWith = (options: TenantNotifications.Options, events: ReadonlyArray<TenantEvent>) =>
  Effect.gen(function*() {
    const notifications = yield* TenantNotifications.TenantNotifications
    for (const event of events) {
      const report = yield* notifications.notify(event)
      assert.lengthOf(report.failed, 0)
    }
    const emails = yield* Effect.flatMap(Mailer.MemoryMailer, (m) => m.sent)
    const sms = yield* Effect.flatMap(SmsGateway.MemorySmsGateway, (g) => g.sent)
    return { emails, sms }
  }).pipe(
    Effect.provide(
      TenantNotifications.layer(options).pipe(
        Layer.provideMerge(Layer.merge(Mailer.layerMemory({ from: "noreply@infra.test" }), SmsGateway.layerMemory))
      )
    )
  )

const localeOf = (event: TenantEvent): Locale => event.tenant.contact.locale

describe("whether messages name the actor", () => {
  it.effect("by default, no e-mail or SMS names the actor, in any locale or template", () =>
    Effect.gen(function*() {
      const events = yield* everyLife
      const { emails, sms } = yield* sentWith({}, events)
      // Every template in both locales went out by e-mail, and the activation SMS in both.
      const expected = events.flatMap((event) => TenantNotifications.envelopesFor(event))
      assert.lengthOf(emails, expected.filter((e) => e.channel === "email").length)
      assert.lengthOf(sms, expected.filter((e) => e.channel === "sms").length)
      assert.sameMembers(
        [...new Set(events.flatMap((event) => TenantNotifications.notificationsFor(event).map((n) => n.template)))],
        ["welcome", "activated", "suspended", "deleted", "restored"]
      )
      for (const email of emails) {
        assert.notInclude(`${email.subject}\n${email.text}\n${email.html}`, ACTOR)
        for (const label of Object.values(LABELS)) assert.notMatch(email.text, label)
        assert.notMatch(email.html, />(By|操作人)</)
      }
      for (const message of sms) assert.notInclude(message.text, ACTOR)
    }))

  it.effect("the pure renderers leave the actor out by default and name it with showActor: true", () =>
    Effect.gen(function*() {
      for (const event of yield* everyLife) {
        const shown = TenantNotifications.notificationsWith({ showActor: true })(event)
        for (const n of shown) {
          if (n.channel === "email") assert.include(n.message.text, ACTOR)
        }
        assert.deepStrictEqual(
          shown.map((n) => n.message.key),
          TenantNotifications.envelopesFor(event).map((e) => e.key)
        )
        for (const n of TenantNotifications.notificationsFor(event)) {
          const all = n.channel === "email" ? `${n.message.subject}${n.message.text}${n.message.html}` : n.message.text
          assert.notInclude(all, ACTOR)
        }
        for (const envelope of TenantNotifications.envelopesFor(event)) {
          assert.notInclude(JSON.stringify(TenantNotifications.notificationOf(event, envelope).message), ACTOR)
        }
      }
    }))

  it.effect("with showActor: true, every e-mail names the actor under its label, in the tenant's language", () =>
    Effect.gen(function*() {
      const events = yield* everyLife
      const { emails, sms } = yield* sentWith({ showActor: true }, events)
      const emailEvents = events.flatMap((event) =>
        TenantNotifications.envelopesFor(event).filter((e) => e.channel === "email").map(() => event)
      )
      assert.lengthOf(emails, emailEvents.length)
      for (const [i, email] of emails.entries()) {
        const event = emailEvents[i]
        if (event === undefined) return assert.fail(`no event for e-mail ${i}`)
        const locale = localeOf(event)
        assert.match(email.text, LABELS[locale])
        assert.include(email.text, ACTOR)
        assert.include(email.html, ACTOR)
        // The subject never named it.
        assert.notInclude(email.subject, ACTOR)
      }
      // The SMS never named it: the option is about e-mails.
      for (const message of sms) assert.notInclude(message.text, ACTOR)
    }))

  it.effect("the service renders with its layer's option (what the outbox relay calls)", () =>
    Effect.gen(function*() {
      const events = yield* everyLife
      const render = (options: TenantNotifications.Options) =>
        Effect.map(TenantNotifications.TenantNotifications, (service) =>
          events.flatMap((event) =>
            TenantNotifications.envelopesFor(event).map((envelope) =>
              service.notificationOf(event, envelope)
            )
          )).pipe(
            Effect.provide(
              TenantNotifications.layer(options).pipe(
                Layer.provide(Layer.merge(Mailer.layerMemory(), SmsGateway.layerMemory))
              )
            )
          )
      const hidden = yield* render({})
      const shown = yield* render({ showActor: true })
      const emailText = (ns: ReadonlyArray<TenantNotifications.Notification>) =>
        ns.flatMap((n) => n.channel === "email" ? [n.message.text] : [])
      assert.isTrue(emailText(hidden).every((text) => !text.includes(ACTOR)))
      assert.isTrue(emailText(shown).every((text) => text.includes(ACTOR)))
      // The option changes texts only: the same messages, under the same keys, as the envelopes say.
      const keys = events.flatMap((event) => TenantNotifications.envelopesFor(event).map((e) => e.key))
      assert.deepStrictEqual(hidden.map((n) => n.message.key), keys)
      assert.deepStrictEqual(shown.map((n) => n.message.key), keys)
      assert.deepStrictEqual(
        shown.map((n) => [n.channel, n.template, n.message.to]),
        hidden.map((n) => [n.channel, n.template, n.message.to])
      )
    }))
})
