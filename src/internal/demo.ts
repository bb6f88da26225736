/**
 * The demo's script, shared by `npm start` (`scratchpad/demo.ts`, on the stack from the environment) and
 * `tenant-infra demo` (in memory).
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as DeliveryLedger from "../DeliveryLedger.js"
import type { Tenant } from "../Tenant.js"
import * as TenantLifecycle from "../TenantLifecycle.js"
import * as TenantNotifications from "../TenantNotifications.js"
import * as TenantOutbox from "../TenantOutbox.js"
import * as TenantRepository from "../TenantRepository.js"

const describeTenant = (tenant: Tenant) =>
  `${tenant.code} "${tenant.name}" ${tenant.status} v${tenant.version}` +
  (tenant.deletedAt ? ` deletedAt=${tenant.deletedAt.toISOString()}` : "")

const step = (title: string) => Console.log(`\n== ${title}`)

/**
 * A few tenants through their life on the repository in context, every step printed; the relay in context
 * delivers their notifications, and the run ends by printing each message and what the ledger says of it.
 */
export const program = Effect.gen(function*() {
  const repository = yield* TenantRepository.TenantRepository
  const outbox = yield* TenantOutbox.TenantOutbox
  // A suffix keeps codes unique when the demo runs again on the same database.
  const run = Date.now().toString(36)
  const startedAt = new Date()

  yield* step("Create four tenants")
  const inputs = [
    {
      code: `Acme_Corp ${run}`,
      name: "  Acme   Inc. ",
      contact: { email: "admin@acme.test", phone: "+86 138 0013 8000" }
    },
    { code: `oreilly-${run}`, name: "O'Reilly Media", contact: { email: "ops@oreilly.test" } },
    { code: `sg-${run}`, name: "Société Générale", contact: { email: "it@sg.test" }, domain: `sg-${run}.example.com` },
    { code: `bj-${run}`, name: "测试（北京）科技", contact: { email: "admin@bj.test", locale: "zh-CN" } }
  ]
  const created: Array<Tenant> = []
  for (const input of inputs) {
    const { event, tenant } = yield* TenantLifecycle.create(
      yield* TenantLifecycle.newTenantId,
      input,
      yield* TenantLifecycle.stamp({ actor: "demo" })
    )
    yield* repository.insert(tenant, event)
    created.push(tenant)
    yield* Console.log(`created ${describeTenant(tenant)}   (code typed as ${JSON.stringify(input.code)})`)
  }

  yield* step("Reject bad input: every bad field is named, nothing is stored")
  const bad = TenantLifecycle.create(
    yield* TenantLifecycle.newTenantId,
    { code: "a--", name: "<script>alert(1)</script>", contact: { email: "not-an-email", phone: "12345" } },
    yield* TenantLifecycle.stamp({ actor: "demo" })
  )
  if (Either.isLeft(bad)) {
    for (const issue of bad.left.issues) yield* Console.log(`rejected ${issue.path}: ${issue.message}`)
  }

  yield* step("Reject a code that a live tenant holds")
  const duplicate = yield* TenantLifecycle.create(
    yield* TenantLifecycle.newTenantId,
    { code: `ACME-CORP-${run}`, name: "Acme Again", contact: { email: "x@acme.test" } },
    yield* TenantLifecycle.stamp({ actor: "demo" })
  )
  const clash = yield* Effect.flip(repository.insert(duplicate.tenant, duplicate.event))
  yield* Console.log(`${clash._tag}: ${clash.message}`)

  yield* step("Walk Acme through its life")
  const [first, second] = created
  if (first === undefined || second === undefined) return yield* Effect.dieMessage("the demo creates four tenants")
  let acme = first
  const apply = (
    label: string,
    change: (
      tenant: Tenant,
      stamp: TenantLifecycle.Stamp
    ) => Either.Either<TenantLifecycle.Transition<Parameters<TenantRepository.Service["save"]>[1][0]>, unknown>,
    by: { readonly actor: string; readonly reason?: string }
  ) =>
    Effect.gen(function*() {
      const result = change(acme, yield* TenantLifecycle.stamp(by))
      if (Either.isLeft(result)) return yield* Effect.die(result.left)
      yield* repository.save(result.right.tenant, [result.right.event], acme.version)
      acme = result.right.tenant
      yield* Console.log(
        `${label.padEnd(9)} -> ${describeTenant(acme)}  event ${result.right.event._tag}` +
          (by.reason ? ` (reason: ${by.reason})` : "")
      )
    })
  yield* apply("activate", TenantLifecycle.activate, { actor: "ops@demo" })
  yield* apply("suspend", TenantLifecycle.suspend, { actor: "billing", reason: "invoice 2026-11 unpaid" })

  yield* step("Reject an illegal transition")
  const illegal = TenantLifecycle.restore(acme, yield* TenantLifecycle.stamp({ actor: "ops@demo" }))
  if (Either.isLeft(illegal)) yield* Console.log(`${illegal.left._tag}: ${illegal.left.message}`)

  yield* step("Delete, restore, delete again")
  yield* apply("delete", TenantLifecycle.softDelete, { actor: "ops@demo", reason: "customer left" })
  const hidden = yield* repository.findById(acme.id)
  yield* Console.log(`findById after delete: ${Option.isNone(hidden) ? "none (hidden)" : "found"}`)
  yield* apply("restore", TenantLifecycle.restore, { actor: "ops@demo", reason: "customer came back" })
  yield* apply("delete", TenantLifecycle.softDelete, { actor: "ops@demo", reason: "customer left for good" })

  yield* step("Rejected write: saving a stale copy")
  const stale = yield* TenantLifecycle.activate(second, yield* TenantLifecycle.stamp({ actor: "a" }))
  yield* repository.save(stale.tenant, [stale.event], 1)
  const again = yield* TenantLifecycle.suspend(second, yield* TenantLifecycle.stamp({ actor: "b" }))
  const conflict = yield* Effect.flip(repository.save(again.tenant, [again.event], 1))
  yield* Console.log(`${conflict._tag}: ${conflict.message}`)

  yield* step("List this run's tenants, two per page, by name")
  const query = { createdFrom: startedAt, sortBy: "name", sortDirection: "asc", pageSize: 2 } as const
  for (let page = 1;; page++) {
    const result = yield* repository.list({ ...query, page })
    yield* Console.log(`page ${result.page}/${result.pageCount} (total ${result.total}):`)
    for (const tenant of result.items) yield* Console.log(`  ${describeTenant(tenant)}`)
    if (page >= result.pageCount) break
  }
  const withDeleted = yield* repository.list({ ...query, includeDeleted: true, pageSize: 10 })
  yield* Console.log(`with includeDeleted: ${withDeleted.total} tenants`)
  const search = yield* repository.list({ createdFrom: startedAt, search: "Société" })
  yield* Console.log(`search "Société": ${search.items.map((tenant) => tenant.code).join(", ")}`)

  yield* step("Count by status (the whole store)")
  yield* Console.log(JSON.stringify(yield* repository.countByStatus))

  yield* step("Acme's outbox: one entry per event, written with each change")
  for (const entry of yield* outbox.list({ tenantId: acme.id })) {
    yield* Console.log(`#${entry.position} v${entry.tenantVersion} ${entry.eventType} by ${entry.event.actor}`)
  }

  yield* step("The relay delivered every event's messages (the delivery ledger)")
  const ledger = yield* DeliveryLedger.DeliveryLedger
  const deadline = Date.now() + 15_000
  for (;;) {
    const stats = yield* ledger.stats
    if ((stats.pending === 0 && stats.unexpandedEvents === 0) || Date.now() > deadline) break
    yield* Effect.sleep("50 millis")
  }
  for (const tenant of created) {
    for (const entry of yield* outbox.list({ tenantId: tenant.id })) {
      for (const { channel, message } of TenantNotifications.notificationsFor(entry.event)) {
        const delivery = yield* ledger.find(message.key)
        const state = Option.match(delivery, {
          onNone: () => "not in the ledger yet",
          onSome: (found) =>
            `${found.status} after ${found.attempts.length} attempt(s)` +
            Option.match(found.providerId, { onNone: () => "", onSome: (id) => ` as ${id}` })
        })
        const what = "subject" in message ? `"${message.subject}"` : `"${message.text}"`
        yield* Console.log(
          `${entry.eventType.padEnd(15)} ${
            channel === "email" ? "e-mail" : "SMS"
          } to ${message.to}: ${what} -> ${state}`
        )
      }
    }
  }
  yield* Console.log(JSON.stringify(yield* ledger.stats, (key, value) => key === "oldestPendingAt" ? undefined : value))
})
