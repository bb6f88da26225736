/**
 * Delivery keys are a function of the event alone. Every function `NotificationTemplates` exports throws in this
 * file, so anything that renders a message fails here: the keys, the ledger's expansion and what it stores must
 * come out without a template. The expected keys are literals, as ledgers in production hold them
 * (`<event id>:<channel>:<recipient in lower case>`), checked against the implementation from before this rule.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { vi } from "vitest"
import { DeliveryLedger } from "../src/DeliveryLedger.js"
import { TenantId } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantNotifications from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { inEmptyStore, storeBackends } from "./utils/deliveryStores.js"

vi.mock("../src/NotificationTemplates.js", async (importOriginal) => {
  const actual = await importOriginal<Record<string, unknown>>()
  return Object.fromEntries(
    Object.entries(actual).map(([name, value]) => [
      name,
      typeof value === "function"
        ? () => {
          throw new Error(`rendered with NotificationTemplates.${name}`)
        }
        : value
    ])
  )
})

const at = new Date("2026-11-24T08:00:00Z")

const stamp = (n: number) =>
  new TenantLifecycle.Stamp({
    eventId: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    at,
    actor: "ops",
    reason: "unpaid"
  })

/**
 * A tenant's whole life with fixed event ids (`base` and on): its creation, then each change (activated,
 * suspended, deleted, restored, updated) with the tenant as the change left it.
 */
const lifeOf = (tenantId: string, base: number, input: Record<string, unknown>) =>
  Effect.gen(function*() {
    const created = yield* TenantLifecycle.create(
      TenantId.make(tenantId),
      { code: `acme${base}`, ...input },
      stamp(base)
    )
    const changes: Array<TenantLifecycle.Transition<TenantEvent>> = []
    let tenant = created.tenant
    let n = base
    for (
      const step of [
        TenantLifecycle.activate,
        TenantLifecycle.suspend,
        TenantLifecycle.softDelete,
        TenantLifecycle.restore
      ]
    ) {
      const next = yield* step(tenant, stamp(++n))
      changes.push(next)
      tenant = next.tenant
    }
    const updated = yield* TenantLifecycle.update(tenant, { name: "Acme Renamed" }, stamp(++n))
    if (Option.isSome(updated)) changes.push(updated.value)
    return { created, changes, events: [created.event, ...changes.map((change) => change.event)] }
  })

/** One tenant with a phone (mixed-case e-mail, zh-CN), one without (en). */
const lives = Effect.all([
  lifeOf("10000000-0000-4000-8000-000000000001", 1, {
    name: "测试（北京）科技",
    contact: { email: "Owner@Acme.TEST", phone: "+8613800138000", locale: "zh-CN" }
  }),
  lifeOf("10000000-0000-4000-8000-000000000002", 11, {
    name: "Beta & Sons (Asia) Ltd.",
    contact: { email: "admin@beta.test", locale: "en" }
  })
])

const eventsOf = Effect.map(lives, (all) => all.flatMap((life) => life.events))

/** [event, key, channel, template, recipient], as the implementation that rendered every e-mail gave them. */
const EXPECTED = [
  [
    "TenantCreated",
    "00000000-0000-4000-8000-000000000001:email:owner@acme.test",
    "email",
    "welcome",
    "Owner@acme.test"
  ],
  ["TenantActivated", "00000000-0000-4000-8000-000000000002:sms:+8613800138000", "sms", "activated", "+8613800138000"],
  [
    "TenantSuspended",
    "00000000-0000-4000-8000-000000000003:email:owner@acme.test",
    "email",
    "suspended",
    "Owner@acme.test"
  ],
  [
    "TenantDeleted",
    "00000000-0000-4000-8000-000000000004:email:owner@acme.test",
    "email",
    "deleted",
    "Owner@acme.test"
  ],
  [
    "TenantRestored",
    "00000000-0000-4000-8000-000000000005:email:owner@acme.test",
    "email",
    "restored",
    "Owner@acme.test"
  ],
  [
    "TenantCreated",
    "00000000-0000-4000-8000-000000000011:email:admin@beta.test",
    "email",
    "welcome",
    "admin@beta.test"
  ],
  [
    "TenantActivated",
    "00000000-0000-4000-8000-000000000012:email:admin@beta.test",
    "email",
    "activated",
    "admin@beta.test"
  ],
  [
    "TenantSuspended",
    "00000000-0000-4000-8000-000000000013:email:admin@beta.test",
    "email",
    "suspended",
    "admin@beta.test"
  ],
  [
    "TenantDeleted",
    "00000000-0000-4000-8000-000000000014:email:admin@beta.test",
    "email",
    "deleted",
    "admin@beta.test"
  ],
  [
    "TenantRestored",
    "00000000-0000-4000-8000-000000000015:email:admin@beta.test",
    "email",
    "restored",
    "admin@beta.test"
  ]
] as const

describe("delivery keys", () => {
  it.effect("rendering fails in this file: the templates are replaced by functions that throw", () =>
    Effect.gen(function*() {
      const [created] = yield* eventsOf
      if (created === undefined) return assert.fail("no event")
      assert.throws(() => TenantNotifications.notificationsFor(created), /rendered with NotificationTemplates/)
    }))

  it.effect("every event kind gives the keys, channels, templates and recipients it always gave", () =>
    Effect.gen(function*() {
      const events = yield* eventsOf
      const envelopes = events.flatMap((event) =>
        TenantNotifications.envelopesFor(event).map((envelope) =>
          [event._tag, envelope.key, envelope.channel, envelope.template, envelope.recipient] as const
        )
      )
      assert.deepStrictEqual(envelopes, [...EXPECTED])
      const updates = events.filter((event) => event._tag === "TenantUpdated")
      assert.lengthOf(updates, 2)
      assert.deepStrictEqual(updates.flatMap(TenantNotifications.envelopesFor), [], "an update calls for nothing")
    }))

  it.effect("what templates read (name, locale, reason, actor) does not change a key", () =>
    Effect.gen(function*() {
      const keysOf = (events: ReadonlyArray<TenantEvent>) =>
        events.flatMap(TenantNotifications.envelopesFor).map((envelope) => envelope.key)
      const one = yield* lifeOf("10000000-0000-4000-8000-000000000003", 21, {
        name: "Acme",
        contact: { email: "admin@acme.test", locale: "en" }
      })
      const other = yield* lifeOf("10000000-0000-4000-8000-000000000003", 21, {
        name: "另一个名字",
        contact: { email: "admin@acme.test", locale: "zh-CN" }
      })
      assert.deepStrictEqual(keysOf(other.events), keysOf(one.events))
    }))
})

for (const backend of storeBackends) {
  layer(backend.suite, { timeout: "60 seconds", excludeTestServices: true })(
    `the ledger stores delivery keys without rendering [${backend.name}]`,
    (it) => {
      it.effect("expands every event kind into the keys, channels and recipients it always stored", () =>
        inEmptyStore(Effect.gen(function*() {
          const repository = yield* TenantRepository.TenantRepository
          const ledger = yield* DeliveryLedger
          for (const { changes, created } of yield* lives) {
            yield* repository.insert(created.tenant, created.event)
            let version = created.tenant.version
            for (const change of changes) {
              yield* repository.save(change.tenant, [change.event], version)
              version = change.tenant.version
            }
          }
          assert.strictEqual(yield* ledger.expand(100), 12)
          const stored = yield* ledger.list({ status: "pending" })
          // The ledger lists by key.
          assert.deepStrictEqual(
            stored.map((delivery) => `${delivery.key} ${delivery.channel} ${delivery.recipient}`),
            EXPECTED.map(([, key, channel, , recipient]) => `${key} ${channel} ${recipient}`).sort()
          )
        })))
    }
  )
}
