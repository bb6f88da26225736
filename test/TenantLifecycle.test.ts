import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { InvalidInput } from "../src/InvalidInput.js"
import { type Tenant, TenantStatus } from "../src/Tenant.js"
import * as TenantEvent from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import { newTenant, stampAt } from "./utils/tenants.js"

const createdAt = new Date("2024-05-01T08:00:00.000Z")
const minutesLater = (minutes: number) => new Date(createdAt.getTime() + minutes * 60_000)

/** A new tenant, moved (unless `pending`) to `status` one minute after it was created. */
const tenantIn = (status: TenantStatus, input: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const { tenant } = yield* newTenant(input, createdAt)
    const stamp = stampAt(minutesLater(1), { actor: "setup" })
    switch (status) {
      case "pending":
        return tenant
      case "active":
        return (yield* TenantLifecycle.activate(tenant, stamp)).tenant
      case "suspended":
        return (yield* TenantLifecycle.suspend(tenant, stamp)).tenant
      case "deleted":
        return (yield* TenantLifecycle.softDelete(tenant, stamp)).tenant
    }
  })

/** An operation of the machine, its result widened to what `update` returns. */
type Step = (
  tenant: Tenant,
  stamp: TenantLifecycle.Stamp
) => Either.Either<
  Option.Option<TenantLifecycle.Transition<TenantEvent.TenantEvent>>,
  TenantLifecycle.InvalidTransition | InvalidInput
>

const statusChange = <E extends TenantEvent.TenantEvent>(
  step: (
    tenant: Tenant,
    stamp: TenantLifecycle.Stamp
  ) => Either.Either<TenantLifecycle.Transition<E>, TenantLifecycle.InvalidTransition>
): Step =>
(tenant, stamp) => Either.map(step(tenant, stamp), Option.some)

interface Rule {
  readonly step: Step
  /** The name `InvalidTransition` and `canApply` use. */
  readonly operation: TenantLifecycle.Operation
  readonly event: (typeof TenantEvent.TenantEvent.members)[number]
  /** Whether the move records `lastStatusChange`. */
  readonly changesStatus: boolean
  /** Where the operation takes a tenant from each status it is allowed on. */
  readonly moves: Partial<Record<TenantStatus, TenantStatus>>
}

/** The documented status machine. */
const machine: Record<string, Rule> = {
  activate: {
    step: statusChange(TenantLifecycle.activate),
    operation: "activate",
    event: TenantEvent.TenantActivated,
    changesStatus: true,
    moves: { pending: "active", suspended: "active" }
  },
  suspend: {
    step: statusChange(TenantLifecycle.suspend),
    operation: "suspend",
    event: TenantEvent.TenantSuspended,
    changesStatus: true,
    moves: { pending: "suspended", active: "suspended" }
  },
  softDelete: {
    step: statusChange(TenantLifecycle.softDelete),
    operation: "delete",
    event: TenantEvent.TenantDeleted,
    changesStatus: true,
    moves: { pending: "deleted", active: "deleted", suspended: "deleted" }
  },
  restore: {
    step: statusChange(TenantLifecycle.restore),
    operation: "restore",
    event: TenantEvent.TenantRestored,
    changesStatus: true,
    moves: { deleted: "suspended" }
  },
  update: {
    step: (tenant, stamp) => TenantLifecycle.update(tenant, { name: "Renamed Inc." }, stamp),
    operation: "update",
    event: TenantEvent.TenantUpdated,
    changesStatus: false,
    moves: { pending: "pending", active: "active", suspended: "suspended" }
  }
}

const cells = Object.entries(machine).flatMap(([name, rule]) =>
  TenantStatus.literals.map((from) => ({ name, rule, from, to: rule.moves[from] }))
)
const allowed = cells.flatMap(({ from, name, rule, to }) => to === undefined ? [] : [[name, from, to, rule] as const])
const forbidden = cells.flatMap(({ from, name, rule, to }) => to === undefined ? [[name, from, rule] as const] : [])

const asInvalidTransition = (error: TenantLifecycle.InvalidTransition | InvalidInput) =>
  error instanceof TenantLifecycle.InvalidTransition
    ? error
    : assert.fail(`expected InvalidTransition, got ${error._tag}: ${error.message}`)

describe("TenantLifecycle", () => {
  describe("the status machine", () => {
    it.effect.each(allowed)("%s from %s gives %s", ([, from, to, rule]) =>
      Effect.gen(function*() {
        const before = yield* tenantIn(from)
        const stamp = stampAt(minutesLater(2), { actor: "ops", reason: "by the table" })
        const changed = yield* rule.step(before, stamp)
        const { event, tenant } = yield* changed

        assert.isTrue(TenantLifecycle.canApply(from, rule.operation))
        assert.strictEqual(tenant.status, to)
        assert.strictEqual(tenant.version, before.version + 1)
        assert.deepStrictEqual(tenant.updatedAt, stamp.at)
        assert.deepStrictEqual([tenant.id, tenant.createdAt], [before.id, before.createdAt])
        assert.deepStrictEqual(tenant.deletedAt, to === "deleted" ? stamp.at : undefined)
        assert.deepStrictEqual(
          tenant.lastStatusChange,
          rule.changesStatus ? { actor: "ops", at: stamp.at, reason: "by the table" } : before.lastStatusChange
        )
        assert.strictEqual(before.status, from, "the tenant passed in is left as it was")

        assert.isTrue(event instanceof rule.event, `expected ${rule.event._tag}, got ${event._tag}`)
        assert.deepStrictEqual(
          {
            eventId: event.eventId,
            occurredAt: event.occurredAt,
            version: event.version,
            actor: event.actor,
            tenantId: event.tenantId
          },
          {
            eventId: stamp.eventId,
            occurredAt: stamp.at,
            version: tenant.version,
            actor: "ops",
            tenantId: before.id
          }
        )
        // Every event carries the stamp's reason, updates included.
        assert.strictEqual("reason" in event ? event.reason : undefined, "by the table")
        assert.deepStrictEqual(event.tenant, tenant)
      }))

    it.effect.each(forbidden)("%s from %s is refused", ([, from, rule]) =>
      Effect.gen(function*() {
        const before = yield* tenantIn(from)
        const error = asInvalidTransition(yield* Effect.flip(rule.step(before, stampAt(minutesLater(2)))))
        assert.isFalse(TenantLifecycle.canApply(from, rule.operation))
        assert.deepStrictEqual(
          { tenantId: error.tenantId, status: error.status, operation: error.operation },
          { tenantId: before.id, status: from, operation: rule.operation }
        )
        assert.match(error.message, new RegExp(`\\b${rule.operation}\\b`))
        assert.match(error.message, new RegExp(`\\b${from}\\b`))
      }))
  })

  describe("soft delete and restore", () => {
    it.effect("soft delete sets status deleted and deletedAt together and records who and why", () =>
      Effect.gen(function*() {
        const active = yield* tenantIn("active")
        const stamp = stampAt(minutesLater(5), { actor: "ops", reason: "contract ended" })
        const { event, tenant } = yield* TenantLifecycle.softDelete(active, stamp)
        assert.strictEqual(tenant.status, "deleted")
        assert.isFalse(tenant.isLive)
        assert.deepStrictEqual(tenant.deletedAt, minutesLater(5))
        assert.deepStrictEqual(tenant.lastStatusChange, { actor: "ops", at: minutesLater(5), reason: "contract ended" })
        assert.strictEqual(event.reason, "contract ended")
      }))

    it.effect("restore clears deletedAt and leaves the tenant suspended until someone activates it", () =>
      Effect.gen(function*() {
        const deleted = yield* tenantIn("deleted")
        const { tenant } = yield* TenantLifecycle.restore(deleted, stampAt(minutesLater(6), { actor: "support" }))
        assert.strictEqual(tenant.status, "suspended")
        assert.isTrue(tenant.isLive)
        assert.isFalse("deletedAt" in tenant)
        assert.deepStrictEqual(tenant.lastStatusChange, { actor: "support", at: minutesLater(6) })
        const activated = yield* TenantLifecycle.activate(tenant, stampAt(minutesLater(7)))
        assert.strictEqual(activated.tenant.status, "active")
      }))
  })

  describe("update", () => {
    it.effect("changing code and domain keeps the replaced values in the event", () =>
      Effect.gen(function*() {
        const before = yield* tenantIn("active", { code: "acme-old", domain: "old.example.com" })
        const changed = yield* TenantLifecycle.update(
          before,
          { code: "Acme_New", domain: "New.Example.com." },
          stampAt(minutesLater(3))
        )
        const { event, tenant } = yield* changed
        assert.deepStrictEqual([tenant.code, tenant.domain], ["acme-new", "new.example.com"])
        assert.deepStrictEqual(event.changes, ["code", "domain"])
        assert.deepStrictEqual([event.previousCode, event.previousDomain], ["acme-old", "old.example.com"])
      }))

    it.effect("setting a first domain records no previous domain or code", () =>
      Effect.gen(function*() {
        const before = yield* tenantIn("pending")
        const changed = yield* TenantLifecycle.update(before, { domain: "acme.example.com" }, stampAt(minutesLater(3)))
        const { event, tenant } = yield* changed
        assert.strictEqual(tenant.domain, "acme.example.com")
        assert.deepStrictEqual(event.changes, ["domain"])
        assert.isFalse("previousDomain" in event)
        assert.isFalse("previousCode" in event)
      }))

    it.effect("names every changed field", () =>
      Effect.gen(function*() {
        const before = yield* tenantIn("pending", { domain: "acme.example.com" })
        const changed = yield* TenantLifecycle.update(before, {
          code: "acme-renamed",
          name: "Acme Renamed",
          contact: { email: "owner@acme.test", locale: "zh-CN" },
          domain: "renamed.example.com",
          settings: { seats: 10 }
        }, stampAt(minutesLater(3)))
        const { event, tenant } = yield* changed
        assert.deepStrictEqual(event.changes, ["code", "name", "contact", "domain", "settings"])
        assert.deepStrictEqual(tenant.contact, { email: "owner@acme.test", locale: "zh-CN" })
        assert.deepStrictEqual(tenant.settings, { seats: 10 })
      }))

    it.effect("domain: null removes the domain", () =>
      Effect.gen(function*() {
        const before = yield* tenantIn("suspended", { domain: "acme.example.com" })
        const changed = yield* TenantLifecycle.update(before, { domain: null }, stampAt(minutesLater(3)))
        const { event, tenant } = yield* changed
        assert.isFalse("domain" in tenant)
        assert.deepStrictEqual(event.changes, ["domain"])
        assert.strictEqual(event.previousDomain, "acme.example.com")
      }))

    it.effect.each<readonly [why: string, update: Record<string, unknown>]>([
      ["nothing", {}],
      ["the same code typed differently", { code: " ACME_CODE " }],
      ["the same name with extra spaces", { name: "  Acme   Inc. " }],
      ["the same contact typed differently", { contact: { email: "admin@ACME.test", phone: "+86 138-0013-8000" } }],
      ["the same domain typed differently", { domain: "ACME.example.com." }],
      ["the same settings in another order", { settings: { beta: true, seats: 25 } }]
    ])("an update giving %s changes nothing and raises no event", ([, update]) =>
      Effect.gen(function*() {
        const before = yield* tenantIn("active", {
          code: "acme-code",
          contact: { email: "admin@acme.test", phone: "+8613800138000" },
          domain: "acme.example.com",
          settings: { seats: 25, beta: true }
        })
        const result = yield* TenantLifecycle.update(before, update, stampAt(minutesLater(3)))
        assert.deepStrictEqual(result, Option.none())
      }))

    it.effect("domain: null on a tenant without a domain changes nothing", () =>
      Effect.gen(function*() {
        const before = yield* tenantIn("pending")
        const result = yield* TenantLifecycle.update(before, { domain: null }, stampAt(minutesLater(3)))
        assert.deepStrictEqual(result, Option.none())
      }))

    it.effect("invalid input gives InvalidInput naming each field, as a value rather than a throw", () =>
      Effect.gen(function*() {
        const before = yield* tenantIn("active")
        const result = TenantLifecycle.update(
          before,
          { name: "A", contact: { email: "nope" }, domian: "acme.example.com" },
          stampAt(minutesLater(3))
        )
        const error = yield* Effect.flip(result)
        if (!(error instanceof InvalidInput)) return assert.fail(`expected InvalidInput, got ${error._tag}`)
        assert.strictEqual(error.subject, "tenant update")
        assert.sameMembers([...new Set(error.fields)], ["name", "contact.email", "domian"])
        assert.include(error.message, "contact.email: ")
      }))
  })

  describe("stamp", () => {
    it.effect.each<readonly [why: string, by: { readonly actor: string; readonly reason?: string }, field: string]>([
      ["an empty actor", { actor: "" }, "actor"],
      ["an actor with surrounding spaces", { actor: " ops " }, "actor"],
      ["an actor of 201 characters", { actor: "a".repeat(201) }, "actor"],
      ["an empty reason", { actor: "ops", reason: "" }, "reason"],
      ["a reason of 501 characters", { actor: "ops", reason: "r".repeat(501) }, "reason"]
    ])("refuses %s with InvalidInput naming the field", ([, by, field]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(TenantLifecycle.stamp(by))
        assert.instanceOf(error, InvalidInput)
        assert.deepStrictEqual(error.fields, [field])
        assert.include(error.message, `${field}: `)
      }))

    it.effect("takes its time from the Clock and a fresh event id each time", () =>
      Effect.gen(function*() {
        const now = new Date("2030-01-02T03:04:05.678Z")
        yield* TestClock.setTime(now.getTime())
        const first = yield* TenantLifecycle.stamp({ actor: "ops", reason: "maintenance" })
        assert.deepStrictEqual(first.at, now)
        assert.deepStrictEqual([first.actor, first.reason], ["ops", "maintenance"])

        yield* TestClock.adjust("90 seconds")
        const second = yield* TenantLifecycle.stamp({ actor: "ops" })
        assert.deepStrictEqual(second.at, new Date(now.getTime() + 90_000))
        assert.notStrictEqual(second.eventId, first.eventId)
        assert.isFalse("reason" in second)
      }))
  })

  describe("create", () => {
    it.effect("gives a pending tenant at version 1 and a TenantCreated event holding it", () =>
      Effect.gen(function*() {
        const id = yield* TenantLifecycle.newTenantId
        const stamp = stampAt(createdAt, { actor: "signup" })
        const { event, tenant } = yield* TenantLifecycle.create(
          id,
          { code: "acme", name: "Acme Inc.", contact: { email: "admin@acme.test" } },
          stamp
        )
        assert.deepStrictEqual(
          [tenant.id, tenant.status, tenant.version, tenant.createdAt, tenant.updatedAt],
          [id, "pending", 1, createdAt, createdAt]
        )
        assert.isTrue(tenant.isLive)
        assert.isFalse("deletedAt" in tenant)
        assert.isFalse("lastStatusChange" in tenant)
        assert.instanceOf(event, TenantEvent.TenantCreated)
        assert.deepStrictEqual(
          [event.eventId, event.tenantId, event.occurredAt, event.version, event.actor],
          [stamp.eventId, id, createdAt, 1, "signup"]
        )
        assert.deepStrictEqual(event.tenant, tenant)
      }))
  })
})
