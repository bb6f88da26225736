import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { InvalidInput } from "../src/InvalidInput.js"
import * as Tenant from "../src/Tenant.js"
import * as TenantEvent from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import { stampAt } from "./utils/tenants.js"

const createdAt = new Date("2024-03-01T09:00:00.000Z")
const minutesLater = (minutes: number) => new Date(createdAt.getTime() + minutes * 60_000)

const validInput = { code: "acme", name: "Acme Inc.", contact: { email: "admin@acme.test" } }

/** Creates a tenant from valid input with `overrides` laid over it. */
const createWith = (overrides: Record<string, unknown>) =>
  Effect.flatMap(
    TenantLifecycle.newTenantId,
    (id) => TenantLifecycle.create(id, { ...validInput, ...overrides }, stampAt(createdAt))
  )

const createTenant = (overrides: Record<string, unknown>) => Effect.map(createWith(overrides), ({ tenant }) => tenant)

/** The distinct fields an error names: one field can break several rules at once. */
const badFields = (error: InvalidInput): Array<string> => [...new Set(error.fields)]

const withContact = (contact: Record<string, unknown>) => ({ contact: { email: "admin@acme.test", ...contact } })

const isRejectedBy = <A, I>(schema: Schema.Schema<A, I>, input: unknown): boolean =>
  Either.isLeft(Schema.decodeUnknownEither(schema)(input))

describe("Tenant", () => {
  describe("code", () => {
    it.effect.each<readonly [input: string, stored: string]>([
      [" My_Tenant Code", "my-tenant-code"],
      ["ok_code", "ok-code"],
      ["ABC", "abc"],
      ["a".repeat(50), "a".repeat(50)]
    ])("stores %s as %s", ([input, stored]) =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({ code: input })
        assert.strictEqual(tenant.code, stored)
        assert.strictEqual(yield* Schema.decodeUnknown(Tenant.TenantCodeFromInput)(input), stored)
      }))

    it.effect.each<readonly [why: string, input: string]>([
      ["shorter than 3 characters", "AB"],
      ["with two hyphens in a row", "a--b"],
      ["starting with a hyphen", "-abc"],
      ["ending with a hyphen", "abc-"],
      ["starting with a digit", "1abc"],
      ["with a dot", "a.b"],
      ["in Chinese characters", "中文编码"],
      ["of 51 characters", "a".repeat(51)]
    ])("rejects a code %s", ([, input]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith({ code: input }))
        assert.deepStrictEqual(badFields(error), ["code"])
        assert.isTrue(isRejectedBy(Tenant.TenantCodeFromInput, input))
      }))

    it("takes the stored form as it is: TenantCode does not normalise", () => {
      assert.isTrue(Schema.is(Tenant.TenantCode)("my-tenant-code"))
      assert.isFalse(Schema.is(Tenant.TenantCode)(" My_Tenant Code"))
    })
  })

  describe("name", () => {
    it.effect.each<readonly [input: string, stored: string]>([
      ["Acme Inc.", "Acme Inc."],
      ["O'Reilly", "O'Reilly"],
      ["Société Générale", "Société Générale"],
      ["测试（北京）", "测试（北京）"],
      ["Acme & Co", "Acme & Co"],
      ["  Acme   Corp  ", "Acme Corp"],
      ["Socie\u0301te\u0301 Ge\u0301ne\u0301rale", "Société Générale"],
      ["a".repeat(100), "a".repeat(100)]
    ])("stores %s as %s", ([input, stored]) =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({ name: input })
        assert.strictEqual(tenant.name, stored)
        assert.strictEqual(yield* Schema.decodeUnknown(Tenant.TenantNameFromInput)(input), stored)
      }))

    it.effect.each<readonly [why: string, input: string]>([
      ["of one character", "A"],
      ["of 101 characters", "a".repeat(101)],
      ["with angle brackets", "<script>"],
      ["with an @", "Acme@Corp"],
      ["without a letter or a digit", "..."],
      ["of whitespace only", "  \t "]
    ])("rejects a name %s", ([, input]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith({ name: input }))
        assert.deepStrictEqual(badFields(error), ["name"])
        assert.isTrue(isRejectedBy(Tenant.TenantNameFromInput, input))
      }))
  })

  describe("contact", () => {
    it.effect("keeps the e-mail's local part and lower-cases its domain", () =>
      Effect.gen(function*() {
        const tenant = yield* createTenant(withContact({ email: " Admin.User@Acme.EXAMPLE.com " }))
        assert.strictEqual(tenant.contact.email, "Admin.User@acme.example.com")
      }))

    it.effect.each<readonly [why: string, input: string]>([
      ["without an @", "admin.acme.test"],
      ["without a dotted domain", "admin@acme"],
      ["with a space", "ad min@acme.test"],
      ["with two @", "admin@acme@example.test"]
    ])("rejects an e-mail %s", ([, input]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith(withContact({ email: input })))
        assert.deepStrictEqual(badFields(error), ["contact.email"])
        assert.isTrue(isRejectedBy(Tenant.EmailFromInput, input))
      }))

    it.effect.each<readonly [input: string, stored: string]>([
      ["+86 138-0013-8000", "+8613800138000"],
      ["+1 (415) 555.0100", "+14155550100"]
    ])("stores the phone %s as %s", ([input, stored]) =>
      Effect.gen(function*() {
        const tenant = yield* createTenant(withContact({ phone: input }))
        assert.strictEqual(tenant.contact.phone, stored)
        assert.strictEqual(yield* Schema.decodeUnknown(Tenant.PhoneFromInput)(input), stored)
      }))

    it.effect("rejects a phone number without a country code", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith(withContact({ phone: "12345" })))
        assert.deepStrictEqual(badFields(error), ["contact.phone"])
        assert.isTrue(isRejectedBy(Tenant.PhoneFromInput, "12345"))
      }))

    it.effect("defaults the locale to en and keeps zh-CN", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* createTenant({})).contact.locale, "en")
        assert.strictEqual((yield* createTenant(withContact({ locale: "zh-CN" }))).contact.locale, "zh-CN")
      }))

    it.effect("rejects a locale notifications are not written in", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith(withContact({ locale: "fr" })))
        assert.deepStrictEqual(badFields(error), ["contact.locale"])
      }))
  })

  describe("domain", () => {
    it.effect.each<readonly [input: string, stored: string]>([
      ["Acme.Example.COM.", "acme.example.com"],
      [" xn--bcher-kva.example ", "xn--bcher-kva.example"]
    ])("stores %s as %s", ([input, stored]) =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({ domain: input })
        assert.strictEqual(tenant.domain, stored)
        assert.strictEqual(yield* Schema.decodeUnknown(Tenant.HostnameFromInput)(input), stored)
      }))

    it.effect("is absent when none is given", () =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({})
        assert.isFalse("domain" in tenant)
      }))

    it.effect.each<readonly [why: string, input: string]>([
      ["of a single label", "localhost"],
      ["with a label starting with a hyphen", "-bad.example.com"],
      ["with a space", "exa mple.com"],
      ["that is an IP address", "1.2.3.4"]
    ])("rejects a domain %s", ([, input]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith({ domain: input }))
        assert.deepStrictEqual(badFields(error), ["domain"])
        assert.isTrue(isRejectedBy(Tenant.HostnameFromInput, input))
      }))
  })

  describe("settings", () => {
    const keys = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`key${i}`, i]))

    it.effect("accepts a flat record of strings, numbers, booleans and nulls", () =>
      Effect.gen(function*() {
        const settings = { "ui.theme": "dark", max_users: 25, ratio: 0.5, beta: true, note: null }
        assert.deepStrictEqual((yield* createTenant({ settings })).settings, settings)
        assert.deepStrictEqual(yield* Schema.decodeUnknown(Tenant.TenantSettings)(settings), settings)
      }))

    it.effect("defaults to no settings", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual((yield* createTenant({})).settings, {})
      }))

    it.effect(`accepts exactly ${Tenant.SETTINGS_MAX_KEYS} keys`, () =>
      Effect.gen(function*() {
        const settings = keys(Tenant.SETTINGS_MAX_KEYS)
        assert.deepStrictEqual((yield* createTenant({ settings })).settings, settings)
      }))

    it.effect.each<readonly [why: string, settings: Record<string, unknown>, field: string]>([
      ["a nested object", { theme: { dark: true } }, "settings.theme"],
      ["an array", { tags: ["a", "b"] }, "settings.tags"],
      ["NaN", { ratio: Number.NaN }, "settings.ratio"],
      ["Infinity", { limit: Number.POSITIVE_INFINITY }, "settings.limit"],
      ["a string of 2001 characters", { note: "x".repeat(2001) }, "settings.note"],
      [`more than ${Tenant.SETTINGS_MAX_KEYS} keys`, keys(Tenant.SETTINGS_MAX_KEYS + 1), "settings"],
      [
        `more than ${Tenant.SETTINGS_MAX_BYTES} bytes`,
        Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`note${i}`, "x".repeat(2000)])),
        "settings"
      ],
      ["a key starting with a digit", { "1st": "x" }, "settings.1st"],
      ["a key with a space", { "ui theme": "dark" }, "settings.ui theme"]
    ])("rejects %s", ([, settings, field]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith({ settings }))
        assert.deepStrictEqual(badFields(error), [field])
      }))

    it.effect("are refused, not silently trimmed, when a stored tenant's settings hold a bad key", () =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({ settings: { seats: 25 } })
        const result = Tenant.reconstitute({ ...tenant, settings: { seats: 25, "1st": "x" } })
        if (Either.isRight(result)) {
          return assert.fail(`reconstitute accepted it, settings became ${JSON.stringify(result.right.settings)}`)
        }
        assert.include(String(result.left), "1st")
      }))
  })

  describe("text and times every store can hold", () => {
    it.effect.each<readonly [why: string, overrides: Record<string, unknown>, field: string]>([
      ["a NUL in the e-mail", withContact({ email: "a\u0000b@acme.test" }), "contact.email"],
      ["a NUL in a setting", { settings: { note: "a\u0000b" } }, "settings.note"],
      ["a lone surrogate in a setting", { settings: { note: "x\ud800y" } }, "settings.note"]
    ])("rejects %s as InvalidInput", ([, overrides, field]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith(overrides))
        assert.include(badFields(error), field)
      }))

    it.effect("accepts a paired surrogate (an emoji) in a setting", () =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({ settings: { note: "launch 🚀" } })
        assert.strictEqual(tenant.settings["note"], "launch 🚀")
      }))

    it.effect("rejects a stamp whose reason holds a lone surrogate, and a time before the year 1", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(TenantLifecycle.stamp({ actor: "ops", reason: "x\udc00" }))
        assert.deepStrictEqual(error.fields, ["reason"])
        assert.throws(() =>
          new TenantLifecycle.Stamp({
            eventId: "6f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
            at: new Date(Date.UTC(-5000, 0, 1)),
            actor: "ops"
          })
        )
      }))
  })

  describe("InvalidInput", () => {
    it.effect("names every bad field at once", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith({
          code: "AB",
          name: "<script>",
          contact: { email: "nope", phone: "12345", locale: "fr" },
          domain: "localhost",
          settings: { theme: { dark: true } }
        }))
        const paths = ["code", "name", "contact.email", "contact.phone", "contact.locale", "domain", "settings.theme"]
        assert.strictEqual(error.subject, "tenant")
        assert.sameMembers(badFields(error), paths)
        for (const path of paths) assert.include(error.message, `${path}: `)
      }))

    it.effect("names unknown fields alongside bad ones", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith({ code: "AB", domian: "acme.example.com" }))
        assert.sameMembers(badFields(error), ["code", "domian"])
        assert.include(error.message, "domian: ")
      }))

    it.effect("names missing fields", () =>
      Effect.gen(function*() {
        const id = yield* TenantLifecycle.newTenantId
        const error = yield* Effect.flip(TenantLifecycle.create(id, { name: "Acme Inc." }, stampAt(createdAt)))
        assert.sameMembers(badFields(error), ["code", "contact"])
      }))
  })

  describe("deletion invariant", () => {
    it.effect.each<readonly [why: string, change: { readonly status: Tenant.TenantStatus; readonly deletedAt?: Date }]>(
      [
        ["status deleted without deletedAt", { status: "deleted" }],
        ["deletedAt on an active tenant", { status: "active", deletedAt: createdAt }],
        ["deletedAt on a pending tenant", { status: "pending", deletedAt: createdAt }]
      ]
    )("refuses %s", ([, change]) =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({})
        assert.throws(() => new Tenant.Tenant({ ...tenant, ...change }), /deletedAt/)
        assert.isTrue(Either.isLeft(Tenant.reconstitute({ ...tenant, ...change })))
      }))

    it.effect("accepts a deleted tenant with deletedAt", () =>
      Effect.gen(function*() {
        const tenant = yield* createTenant({})
        const deleted = new Tenant.Tenant({ ...tenant, status: "deleted", deletedAt: minutesLater(1) })
        assert.isFalse(deleted.isLive)
        assert.deepStrictEqual(deleted.deletedAt, minutesLater(1))
      }))
  })

  describe("round trips", () => {
    const minimal = createTenant({})
    const full = createTenant({
      domain: "acme.example.com",
      contact: { email: "admin@acme.test", phone: "+8613800138000", locale: "zh-CN" },
      settings: { "ui.theme": "dark", seats: 25, beta: true, note: null }
    })
    const deleted = Effect.flatMap(full, (tenant) =>
      Effect.map(
        TenantLifecycle.softDelete(tenant, stampAt(minutesLater(5), { actor: "ops", reason: "contract ended" })),
        (transition) => transition.tenant
      ))
    const shapes = [
      ["a minimal tenant", minimal],
      ["a tenant with every optional field", full],
      ["a soft-deleted tenant with its status change", deleted]
    ] as const

    it.effect.each(shapes)("reconstitute gives %s back equal", ([, make]) =>
      Effect.gen(function*() {
        const tenant = yield* make
        const rebuilt = yield* Tenant.reconstitute({ ...tenant })
        assert.instanceOf(rebuilt, Tenant.Tenant)
        assert.deepStrictEqual(rebuilt, tenant)
      }))

    it.effect.each(shapes)("JSON gives %s back equal", ([, make]) =>
      Effect.gen(function*() {
        const tenant = yield* make
        const json: unknown = JSON.parse(JSON.stringify(yield* Schema.encode(Tenant.Tenant)(tenant)))
        const decoded = yield* Schema.decodeUnknown(Tenant.Tenant)(json)
        assert.instanceOf(decoded, Tenant.Tenant)
        assert.instanceOf(decoded.updatedAt, Date)
        assert.deepStrictEqual(decoded, tenant)
      }))

    it.effect("JSON carries dates as ISO strings and a tenant id that must still be a UUID", () =>
      Effect.gen(function*() {
        const encoded = yield* Schema.encode(Tenant.Tenant)(yield* minimal)
        assert.strictEqual(encoded.createdAt, createdAt.toISOString())
        assert.isTrue(isRejectedBy(Tenant.Tenant, { ...encoded, id: "not-a-uuid" }))
      }))

    const history = Effect.gen(function*() {
      const created = yield* createWith({ domain: "acme.example.com", settings: { seats: 25 } })
      const activated = yield* TenantLifecycle.activate(
        created.tenant,
        stampAt(minutesLater(1), { actor: "billing", reason: "first payment" })
      )
      const suspended = yield* TenantLifecycle.suspend(
        activated.tenant,
        stampAt(minutesLater(2), { actor: "ops", reason: "unpaid" })
      )
      const deleted = yield* TenantLifecycle.softDelete(suspended.tenant, stampAt(minutesLater(3), { actor: "ops" }))
      const restored = yield* TenantLifecycle.restore(
        deleted.tenant,
        stampAt(minutesLater(4), { actor: "support", reason: "came back" })
      )
      const updated = yield* TenantLifecycle.update(
        restored.tenant,
        { code: "acme-two", domain: "two.example.com" },
        stampAt(minutesLater(5))
      )
      const events: ReadonlyArray<TenantEvent.TenantEvent> = [
        created.event,
        activated.event,
        suspended.event,
        deleted.event,
        restored.event,
        (yield* updated).event
      ]
      return events
    })

    it.effect.each(TenantEvent.TenantEvent.members.map((member) => member._tag))(
      "JSON gives a %s event back equal through the TenantEvent union",
      (tag) =>
        Effect.gen(function*() {
          const event = (yield* history).find((event) => event._tag === tag)
          if (event === undefined) return assert.fail(`the sample history has no ${tag}`)
          const json: unknown = JSON.parse(JSON.stringify(yield* Schema.encode(TenantEvent.TenantEvent)(event)))
          const decoded = yield* Schema.decodeUnknown(TenantEvent.TenantEvent)(json)
          assert.strictEqual(decoded._tag, tag)
          assert.deepStrictEqual(decoded, event)
        })
    )
  })
})
