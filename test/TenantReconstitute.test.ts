import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Tenant from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"

/**
 * `Tenant.reconstitute` checks the common case in plain code and leaves the rest to the schema. Whatever path it
 * takes, its answer must be the schema's: these tests compare it with the schema alone, on valid tenants of every
 * shape, on each field broken in every way we could think of, and on random values.
 */
const FieldsOnly = Schema.typeSchema(Schema.Struct(Tenant.Tenant.fields))
const bySchemaAlone = (input: unknown) =>
  Either.flatMap(
    Schema.decodeUnknownEither(FieldsOnly)(input),
    (fields) =>
      (fields.status === "deleted") === (fields.deletedAt !== undefined)
        ? Either.right(fields)
        : Either.left("status is 'deleted' exactly when deletedAt is set")
  )

const agrees = (input: unknown): void => {
  const reconstituted = Tenant.reconstitute(input)
  const expected = bySchemaAlone(input)
  const shown = () => {
    try {
      return JSON.stringify(input)
    } catch {
      return String(input)
    }
  }
  assert.strictEqual(Either.isRight(reconstituted), Either.isRight(expected), `accepted differently: ${shown()}`)
  if (Either.isRight(reconstituted) && Either.isRight(expected)) {
    assert.instanceOf(reconstituted.right, Tenant.Tenant)
    assert.deepStrictEqual({ ...reconstituted.right }, { ...expected.right }, `rebuilt differently: ${shown()}`)
    // In the same order of fields too: it shows in JSON and in logs.
    assert.deepStrictEqual(
      Object.keys(reconstituted.right),
      Object.keys(expected.right),
      `ordered differently: ${shown()}`
    )
  }
}

const at = new Date("2024-03-01T09:00:00.000Z")
const later = new Date("2024-03-02T09:00:00.000Z")

const base = {
  id: "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
  code: "acme-corp",
  name: "Acme Inc.",
  status: "active",
  contact: { email: "admin@acme.test", phone: "+8613800138000", locale: "zh-CN" },
  domain: "acme.example.com",
  settings: { "ui.theme": "dark", seats: 25, beta: true, note: null },
  version: 3,
  createdAt: at,
  updatedAt: later,
  lastStatusChange: { actor: "ops@acme", at: later, reason: "paid" }
}

const { domain: _domain, lastStatusChange: _change, ...minimal } = base
const shapes: ReadonlyArray<Record<string, unknown>> = [
  base,
  { ...minimal, contact: { email: "a@b.co", locale: "en" }, settings: {} },
  { ...base, status: "deleted", deletedAt: later },
  { ...base, lastStatusChange: { actor: "system", at } },
  { ...base, name: "北京 科技（集团）", code: "bj-tech-01" },
  { ...base, extra: "dropped", contact: { ...base.contact, extra: 1 } }
]

const strings = [
  "",
  " ",
  "a",
  "ab",
  "abc",
  "x".repeat(50),
  "x".repeat(51),
  "x".repeat(100),
  "x".repeat(101),
  "x".repeat(200),
  "x".repeat(201),
  "x".repeat(254),
  "x".repeat(255),
  "x".repeat(500),
  "x".repeat(501),
  "x".repeat(2000),
  "x".repeat(2001),
  " padded",
  "padded ",
  "two  spaces",
  "Tab\there",
  "nul\u0000",
  "lone \ud800",
  "pair \ud83d\ude00",
  "Acme",
  "ACME",
  "acme--corp",
  "acme-",
  "-acme",
  "1acme",
  "acme_corp",
  "e\u0301", // not NFC
  "é",
  "...",
  "Ünïcödé Name",
  "a@b.co",
  "a@b",
  "a b@c.de",
  "A@B.CO",
  "+8613800138000",
  "+0123",
  "8613800138000",
  "+1234567890123456",
  "example.com",
  "EXAMPLE.com",
  "a.b.c",
  "host.123",
  "-bad.example.com",
  "xn--fsq.example.com",
  "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
  "3F1C0C2E-5B7A-4D2A-9C1E-2B8F4E6A7D10",
  "3f1c0c2e5b7a4d2a9c1e2b8f4e6a7d10",
  "pending",
  "active",
  "suspended",
  "deleted",
  "Active",
  "en",
  "zh-CN",
  "fr"
]
const others: ReadonlyArray<unknown> = [
  undefined,
  null,
  0,
  1,
  -1,
  1.5,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  [],
  {},
  at,
  new Date(Number.NaN),
  new Date("0000-06-01T00:00:00.000Z"),
  new Date("+010000-01-01T00:00:00.000Z"),
  new Date("9999-12-31T23:59:59.999Z"),
  Object.create({ inherited: 1 })
]
const values: ReadonlyArray<unknown> = [...strings, ...others]

const topLevelFields = [
  "id",
  "code",
  "name",
  "status",
  "contact",
  "domain",
  "settings",
  "version",
  "createdAt",
  "updatedAt",
  "deletedAt",
  "lastStatusChange"
]

describe("Tenant.reconstitute agrees with the schema", () => {
  it("on valid tenants of every shape", () => {
    for (const shape of shapes) {
      agrees(shape)
      assert.isTrue(Either.isRight(Tenant.reconstitute(shape)), JSON.stringify(shape))
    }
  })

  it("on every field set to every value in the list, and removed", () => {
    for (const shape of shapes) {
      for (const field of topLevelFields) {
        for (const value of values) agrees({ ...shape, [field]: value })
        const { [field]: _removed, ...without } = shape
        agrees(without)
      }
    }
  })

  it("on contact, status change and settings fields set to every value in the list", () => {
    for (const value of values) {
      for (const field of ["email", "phone", "locale"]) {
        agrees({ ...base, contact: { ...base.contact, [field]: value } })
      }
      for (const field of ["actor", "at", "reason"]) {
        agrees({ ...base, lastStatusChange: { ...base.lastStatusChange, [field]: value } })
      }
      agrees({ ...base, settings: { ...base.settings, plan: value } })
      if (typeof value === "string") agrees({ ...base, settings: { [value]: 1 } })
    }
  })

  it("on settings at their bounds and with keys the schema reads but Object.keys does not list", () => {
    const many = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]))
    agrees({ ...base, settings: many(100) })
    agrees({ ...base, settings: many(101) })
    // 16,384 bytes of JSON, around the bound, in ASCII and in three-byte characters.
    for (const size of [16_370, 16_371, 16_372, 16_380]) agrees({ ...base, settings: { a: "x".repeat(size - 8) } })
    for (const count of [1_900, 2_000]) {
      agrees({
        ...base,
        settings: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, "中".repeat(count)]))
      })
    }
    // Control characters take 6 bytes each in JSON.
    agrees({ ...base, settings: { a: "\u0001".repeat(2000) } })
    agrees({ ...base, settings: { a: "\u0001".repeat(2000), b: "\u0001".repeat(2000) } })
    agrees({ ...base, settings: { a: "\u0001".repeat(1365), b: "x".repeat(2000), c: "x".repeat(2000) } })
    const hidden = { ...base.settings }
    Object.defineProperty(hidden, "secret", { value: "x", enumerable: false })
    agrees({ ...base, settings: hidden })
    agrees({ ...base, settings: { ...base.settings, [Symbol("s")]: "x" } })
    agrees({ ...base, settings: Object.assign(Object.create({ inherited: "x" }), base.settings) })
  })

  it("on getters that answer differently each time they are read, and dates that are not what they seem", () => {
    const changing = (first: unknown, then: unknown) => {
      let reads = 0
      return () => reads++ === 0 ? first : then
    }
    for (
      const [field, first, then] of [
        ["domain", "acme.example.com", 42],
        ["deletedAt", later, "later"],
        ["createdAt", at, new Date(Number.NaN)],
        ["name", "Acme Inc.", ""]
      ] as const
    ) {
      const input: Record<string, unknown> = { ...base, status: field === "deletedAt" ? "deleted" : base.status }
      Object.defineProperty(input, field, { enumerable: true, get: changing(first, then) })
      const reconstituted = Tenant.reconstitute(input)
      if (Either.isRight(reconstituted)) {
        assert.isTrue(Schema.is(FieldsOnly)({ ...reconstituted.right }), `${field}: kept a value it did not check`)
      }
    }
    const lying = new Date(Number.NaN)
    lying.getUTCFullYear = () => 2020
    class NotATime extends Date {
      override getTime() {
        return Number.NaN
      }
    }
    for (const date of [lying, new NotATime(at.getTime())]) {
      agrees({ ...base, createdAt: date })
      agrees({ ...base, lastStatusChange: { actor: "ops", at: date } })
    }
  })

  it("on status and deletedAt in every combination", () => {
    for (const status of ["pending", "active", "suspended", "deleted"]) {
      agrees({ ...base, status })
      agrees({ ...base, status, deletedAt: later })
      agrees({ ...base, status, deletedAt: undefined })
    }
  })

  it("on random values", () => {
    const text = FastCheck.oneof(
      FastCheck.constantFrom(...strings),
      FastCheck.string({ maxLength: 60 }),
      FastCheck.string({ unit: "grapheme", maxLength: 30 }),
      FastCheck.string({ unit: "binary", maxLength: 30 })
    )
    const anything = FastCheck.oneof(text, FastCheck.constantFrom(...others), FastCheck.integer(), FastCheck.double())
    const maybe = <A>(arbitrary: FastCheck.Arbitrary<A>) => FastCheck.option(arbitrary, { nil: undefined })
    const fields = FastCheck.record({
      field: FastCheck.constantFrom(...topLevelFields, "contact.email", "contact.phone", "lastStatusChange.actor"),
      value: FastCheck.oneof(anything, maybe(text))
    })
    FastCheck.assert(
      FastCheck.property(
        FastCheck.constantFrom(...shapes),
        FastCheck.array(fields, { maxLength: 3 }),
        (shape, changes) => {
          const input: Record<string, unknown> = {
            ...shape,
            contact: { ...(shape["contact"] as object) },
            ...(shape["lastStatusChange"] === undefined
              ? {}
              : { lastStatusChange: { ...(shape["lastStatusChange"] as object) } })
          }
          for (const { field, value } of changes) {
            const [outer, inner] = field.split(".")
            if (outer === undefined) continue
            if (inner === undefined) input[outer] = value
            else if (typeof input[outer] === "object" && input[outer] !== null) {
              ;(input[outer] as Record<string, unknown>)[inner] = value
            }
          }
          agrees(input)
        }
      ),
      { numRuns: 3_000 }
    )
  })
})

/** The cache's decode of a stored value must be the schema's full decode, whichever way it went. */
const decodeBySchemaAlone = Schema.decodeEither(Schema.parseJson(Tenant.Tenant))

const decodesAlike = (value: string): void => {
  const decoded = TenantCache.decode(value)
  const expected = decodeBySchemaAlone(value)
  assert.strictEqual(Either.isRight(decoded), Either.isRight(expected), `accepted differently: ${value}`)
  if (Either.isRight(decoded) && Either.isRight(expected)) {
    const tenant = decoded.right
    assert.isTrue(tenant._tag === "Some", value)
    if (tenant._tag === "Some") {
      assert.instanceOf(tenant.value, Tenant.Tenant)
      assert.deepStrictEqual({ ...tenant.value }, { ...expected.right }, `decoded differently: ${value}`)
      assert.strictEqual(JSON.stringify(tenant.value), JSON.stringify(expected.right), `ordered differently: ${value}`)
    }
  }
}

describe("TenantCache.decode agrees with the schema's full decode", () => {
  const encoded = shapes.map((shape) => {
    const tenant = Tenant.reconstitute(shape)
    if (Either.isLeft(tenant)) throw new Error("a shape does not check")
    return Schema.encodeSync(Tenant.Tenant)(tenant.right) as unknown as Record<string, unknown>
  })
  const timestamps = ["2024-03-01T09:00:00.000Z", "2024-03-01", "2024-03-01T09:00:00+08:00", "not a date", "", "0"]

  it("on valid values of every shape, and values that are not JSON objects", () => {
    for (const value of encoded) decodesAlike(JSON.stringify(value))
    for (const value of ["", "{", "null", "[]", "1", "\"x\"", "{}", "[{}]"]) decodesAlike(value)
  })

  it("on every field set to every value in the list, timestamps as strings too, and removed", () => {
    for (const value of encoded) {
      for (const field of topLevelFields) {
        for (const replacement of [...values, ...timestamps]) {
          decodesAlike(JSON.stringify({ ...value, [field]: replacement }))
        }
        const { [field]: _removed, ...without } = value
        decodesAlike(JSON.stringify(without))
      }
      for (const replacement of [...values, ...timestamps]) {
        decodesAlike(JSON.stringify({ ...value, lastStatusChange: { actor: "ops", at: replacement } }))
      }
      decodesAlike(JSON.stringify({ ...value, lastStatusChange: { actor: "ops" } }))
      decodesAlike(`{"__proto__":{"status":"active"},${JSON.stringify(value).slice(1)}`)
    }
  })
})

describe("Tenant.isTenantId", () => {
  it("answers what Schema.is(TenantId) answers", () => {
    const bySchema = Schema.is(Tenant.TenantId)
    for (const value of values) assert.strictEqual(Tenant.isTenantId(value), bySchema(value), String(value))
    FastCheck.assert(
      FastCheck.property(
        FastCheck.oneof(FastCheck.uuid(), FastCheck.uuid().map((id) => id.toUpperCase()), FastCheck.string()),
        (value) => Tenant.isTenantId(value) === bySchema(value)
      ),
      { numRuns: 2_000 }
    )
  })
})
