import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { copyTenant, fieldNames, propsOf, rowToProps, toColumns } from "../src/internal/tenantFields.js"
import * as Tenant from "../src/Tenant.js"

/**
 * Copies, `TenantLifecycle`'s props and the row mapping are derived from one list of the tenant's fields, the
 * schema's; the compiler holds the per-field rules to that list. These tests hold the list to the schema, and
 * each derived path to the tenant: every field set to a value other than its default comes through each path
 * equal, and an optional field left out stays out.
 */
const at = new Date("2024-03-01T09:00:00.000Z")
const later = new Date("2024-03-02T09:00:00.000Z")
const gone = new Date("2024-03-03T09:00:00.000Z")

const full = Either.getOrThrow(Tenant.reconstitute({
  id: "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10",
  code: "acme-corp",
  name: "Acme Inc.",
  status: "deleted",
  contact: { email: "admin@acme.test", phone: "+8613800138000", locale: "zh-CN" },
  domain: "acme.example.com",
  settings: { "ui.theme": "dark", seats: 25, beta: true, note: null },
  version: 7,
  createdAt: at,
  updatedAt: later,
  deletedAt: gone,
  lastStatusChange: { actor: "ops@acme", at: gone, reason: "closed" }
}))

const minimal = Either.getOrThrow(Tenant.reconstitute({
  id: "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d11",
  code: "beta-co",
  name: "Beta Co",
  status: "pending",
  contact: { email: "a@beta.test", locale: "en" },
  settings: {},
  version: 1,
  createdAt: at,
  updatedAt: at
}))

// The row as PostgreSQL gives it back: the settings written as JSON, read from `jsonb` as an object.
const fromRow = (tenant: Tenant.Tenant): Tenant.Tenant => {
  const row = toColumns(tenant)
  return Either.getOrThrow(Tenant.reconstitute(rowToProps({ ...row, settings: JSON.parse(String(row.settings)) })))
}
const throughSchema = (tenant: Tenant.Tenant): Tenant.Tenant =>
  Schema.decodeSync(Tenant.Tenant)(Schema.encodeSync(Tenant.Tenant)(tenant))

const paths: ReadonlyArray<readonly [string, (tenant: Tenant.Tenant) => object]> = [
  ["copyTenant", copyTenant],
  ["propsOf", propsOf],
  ["the row (toColumns, rowToProps, reconstitute)", fromRow]
]

describe("the tenant's field list", () => {
  it("is the schema's, in its order", () => {
    assert.deepStrictEqual<ReadonlyArray<string>>(fieldNames, Object.keys(Tenant.Tenant.fields))
  })

  it("names every field of a tenant that has them all", () => {
    assert.deepStrictEqual(Object.keys(full), [...fieldNames])
  })

  for (const [name, path] of paths) {
    it(`${name} keeps every field`, () => {
      const through = path(full)
      assert.deepStrictEqual(Object.keys(through), [...fieldNames])
      for (const field of fieldNames) {
        assert.deepStrictEqual(
          (through as Record<string, unknown>)[field],
          full[field],
          `${field} differs`
        )
      }
      assert.deepStrictEqual({ ...through }, { ...throughSchema(full) })
    })

    it(`${name} leaves absent fields out`, () => {
      const through = path(minimal)
      assert.deepStrictEqual(Object.keys(through), Object.keys(minimal))
      assert.deepStrictEqual({ ...through }, { ...minimal })
    })
  }

  it("copyTenant gives a tenant that shares nothing mutable", () => {
    const copy = copyTenant(full)
    assert.instanceOf(copy, Tenant.Tenant)
    assert.isFalse(copy.isLive)
    for (const field of fieldNames) {
      const value: unknown = full[field]
      if (typeof value === "object" && value !== null) {
        assert.notStrictEqual((copy as unknown as Record<string, unknown>)[field], value, `${field} is shared`)
      }
    }
    assert.notStrictEqual(copy.lastStatusChange?.at, full.lastStatusChange?.at)
  })

  it("the row holds an absent field as null", () => {
    const row = toColumns(minimal)
    assert.strictEqual(row.domain, null)
    assert.strictEqual(row.phone, null)
    assert.strictEqual(row.deleted_at, null)
    assert.strictEqual(row.status_changed_by, null)
    assert.strictEqual(row.status_change_reason, null)
    assert.strictEqual(row.status_changed_at, null)
    assert.strictEqual(row.settings, "{}")
  })
})
