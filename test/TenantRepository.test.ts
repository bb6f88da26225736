import { assert, describe, layer } from "@effect/vitest"
import * as Array from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Tenant } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import { TenantOutbox } from "../src/TenantOutbox.js"
import { type ListQueryInput, MAX_PAGE_SIZE, type Page } from "../src/TenantQuery.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { TenantAlreadyExists } from "../src/TenantRepositoryError.js"
import { layerClientInFreshSchema, layerHostClientInFreshSchema } from "./utils/postgres.js"
import { newTenant, stampAt, uniqueCode, uniqueWindow } from "./utils/tenants.js"

const backends: ReadonlyArray<
  readonly [name: string, layer: Layer.Layer<TenantRepository.TenantRepository | TenantOutbox, unknown>]
> = [
  ["memory", TenantRepository.layerMemory],
  ["pg", TenantRepositoryPg.layer().pipe(Layer.provide(layerClientInFreshSchema))],
  // A host application's own PgClient: every statement through @effect/sql, none on the pool directly.
  ["pg, host client", TenantRepositoryPg.layer().pipe(Layer.provide(layerHostClientInFreshSchema))]
]

const repository = TenantRepository.TenantRepository

/** Inserts a new tenant and returns it. */
const inserted = (input: Record<string, unknown> = {}, at = new Date()) =>
  Effect.gen(function*() {
    const { event, tenant } = yield* newTenant(input, at)
    yield* (yield* repository).insert(tenant, event)
    return tenant
  })

/** Applies a transition to a stored tenant and saves it. */
const transition = <E extends Parameters<TenantRepository.Service["save"]>[1][0]>(
  tenant: Tenant,
  step: (tenant: Tenant, stamp: TenantLifecycle.Stamp) => Either.Either<TenantLifecycle.Transition<E>, unknown>,
  at = new Date()
) =>
  Effect.gen(function*() {
    const result = step(tenant, stampAt(at, { actor: "ops", reason: "because" }))
    if (Either.isLeft(result)) return yield* Effect.dieMessage(`transition refused: ${String(result.left)}`)
    yield* (yield* repository).save(result.right.tenant, [result.right.event], tenant.version)
    return result.right.tenant
  })

const outboxOf = (tenant: Tenant) => Effect.flatMap(TenantOutbox, (outbox) => outbox.list({ tenantId: tenant.id }))

const asAlreadyExists = (error: { readonly _tag: string }) => {
  if (!(error instanceof TenantAlreadyExists)) throw new Error(`expected TenantAlreadyExists, got ${error._tag}`)
  return error
}

const ids = (tenants: ReadonlyArray<Tenant>) => tenants.map((tenant) => tenant.id)

for (const [backend, backendLayer] of backends) {
  layer(backendLayer, { timeout: "60 seconds", excludeTestServices: true })(
    `TenantRepository conformance [${backend}]`,
    (it) => {
      describe("insert and find", () => {
        it.effect("finds a tenant by id, by normalised code and by domain, exactly as stored", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const code = uniqueCode("acme-")
            const tenant = yield* inserted({
              code,
              name: "Société Générale",
              domain: `${code}.example.com`,
              contact: { email: "admin@acme.test", phone: "+8613800138000", locale: "zh-CN" },
              settings: { "ui.theme": "dark", seats: 25, beta: true, note: null }
            })
            assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(tenant))
            assert.deepStrictEqual(
              yield* repo.findByCode(` ${code.toUpperCase().replace("-", "_")} `),
              Option.some(tenant)
            )
            assert.deepStrictEqual(yield* repo.findByDomain(`${code.toUpperCase()}.Example.COM.`), Option.some(tenant))
          }))

        it.effect("answers none for an unknown id, code or domain, and for an id that is not a UUID", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            assert.isTrue(Option.isNone(yield* repo.findById(yield* TenantLifecycle.newTenantId)))
            assert.isTrue(Option.isNone(yield* repo.findById("not-a-uuid" as Tenant["id"])))
            assert.isTrue(Option.isNone(yield* repo.findByCode(uniqueCode())))
            assert.isTrue(Option.isNone(yield* repo.findByDomain(`${uniqueCode()}.example.com`)))
          }))

        it.effect("writes one outbox entry per event, the event decoding back equal", () =>
          Effect.gen(function*() {
            const { event, tenant } = yield* newTenant()
            yield* (yield* repository).insert(tenant, event)
            const activated = yield* transition(tenant, TenantLifecycle.activate)
            const entries = yield* outboxOf(tenant)
            assert.deepStrictEqual(entries.map((entry) => [entry.eventType, entry.tenantVersion]), [
              ["TenantCreated", 1],
              ["TenantActivated", 2]
            ])
            assert.deepStrictEqual(entries[0]?.event, event)
            assert.strictEqual(entries[1]?.event.tenant.status, "active")
            assert.deepStrictEqual(entries[1]?.event.tenant, activated)
            assert.isTrue((entries[1]?.position ?? 0) > (entries[0]?.position ?? 0))
          }))

        it.effect("rejects a taken id, code or domain with TenantAlreadyExists and writes nothing", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const code = uniqueCode()
            const first = yield* inserted({ code, domain: `${code}.example.com` })

            const sameId = yield* TenantLifecycle.create(
              first.id,
              { code: uniqueCode(), name: "Other", contact: { email: "x@y.test" } },
              stampAt(new Date())
            )
            const idError = yield* Effect.flip(repo.insert(sameId.tenant, sameId.event)).pipe(
              Effect.map(asAlreadyExists)
            )
            assert.deepStrictEqual([idError._tag, idError.field, idError.value], [
              "TenantAlreadyExists",
              "id",
              first.id
            ])

            const sameCode = yield* newTenant({ code: code.toUpperCase() })
            const codeError = yield* Effect.flip(repo.insert(sameCode.tenant, sameCode.event)).pipe(
              Effect.map(asAlreadyExists)
            )
            assert.deepStrictEqual([codeError._tag, codeError.field, codeError.value], [
              "TenantAlreadyExists",
              "code",
              code
            ])

            const sameDomain = yield* newTenant({ domain: `${code}.example.com` })
            const domainError = yield* Effect.flip(repo.insert(sameDomain.tenant, sameDomain.event)).pipe(
              Effect.map(asAlreadyExists)
            )
            assert.deepStrictEqual([domainError.field, domainError.value], ["domain", `${code}.example.com`])

            for (const rejected of [sameCode.tenant, sameDomain.tenant]) {
              assert.isTrue(Option.isNone(yield* repo.findById(rejected.id, { includeDeleted: true })))
              assert.lengthOf(yield* outboxOf(rejected), 0)
            }
            assert.lengthOf(yield* outboxOf(first), 1)
            assert.deepStrictEqual(yield* repo.findById(first.id), Option.some(first))
          }))
      })

      describe("save", () => {
        it.effect("stores a transition and bumps the version", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted()
            const suspended = yield* transition(tenant, TenantLifecycle.suspend)
            const stored = yield* repo.findById(tenant.id)
            assert.deepStrictEqual(stored, Option.some(suspended))
            assert.strictEqual(suspended.version, 2)
            assert.deepStrictEqual(
              Option.map(stored, (t) => t.lastStatusChange?.reason),
              Option.some("because")
            )
          }))

        it.effect("fails with ConcurrencyConflict against a stale version and writes nothing", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted()
            const activated = yield* transition(tenant, TenantLifecycle.activate)
            const stale = yield* TenantLifecycle.suspend(tenant, stampAt(new Date()))
            const error = yield* Effect.flip(repo.save(stale.tenant, [stale.event], tenant.version))
            assert.strictEqual(error._tag, "ConcurrencyConflict")
            if (error._tag === "ConcurrencyConflict") {
              assert.deepStrictEqual([error.expectedVersion, error.actualVersion], [1, 2])
            }
            assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(activated))
            assert.lengthOf(yield* outboxOf(tenant), 2)
          }))

        it.effect("fails with TenantNotFound for a tenant that was never stored", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const { tenant } = yield* newTenant()
            const next = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
            const error = yield* Effect.flip(repo.save(next.tenant, [next.event], 1))
            assert.deepStrictEqual([error._tag, "tenantId" in error && error.tenantId], ["TenantNotFound", tenant.id])
            assert.lengthOf(yield* outboxOf(tenant), 0)
          }))

        it.effect("lets exactly one of many concurrent saves of one version win", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted()
            const steps = [TenantLifecycle.activate, TenantLifecycle.suspend, TenantLifecycle.softDelete] as const
            const attempts = Array.makeBy(12, (i) => {
              const step: Either.Either<TenantLifecycle.Transition<TenantEvent>, unknown> = Array.unsafeGet(
                steps,
                i % 3
              )(
                tenant,
                stampAt(new Date())
              )
              return Either.getOrThrow(step)
            })
            const results = yield* Effect.forEach(
              attempts,
              (next) => Effect.either(repo.save(next.tenant, [next.event], 1)),
              { concurrency: "unbounded" }
            )
            const wins = results.filter(Either.isRight)
            const conflicts = results.filter((r) => Either.isLeft(r) && r.left._tag === "ConcurrencyConflict")
            assert.strictEqual(wins.length, 1)
            assert.strictEqual(conflicts.length, attempts.length - 1)
            const stored = Option.getOrThrow(yield* repo.findById(tenant.id, { includeDeleted: true }))
            assert.strictEqual(stored.version, 2)
            const entries = yield* outboxOf(tenant)
            assert.lengthOf(entries, 2)
            assert.strictEqual(entries[1]?.event.tenant.status, stored.status)
          }))

        it.effect("moves the code and domain keys when they change, and refuses a taken one", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const [oldCode, newCode, otherCode] = [uniqueCode(), uniqueCode(), uniqueCode()]
            const tenant = yield* inserted({ code: oldCode, domain: `${oldCode}.example.com` })
            const other = yield* inserted({ code: otherCode, domain: `${otherCode}.example.com` })
            const changed = yield* transition(
              tenant,
              (t, stamp) =>
                Either.map(
                  TenantLifecycle.update(t, { code: newCode, domain: `${newCode}.example.com` }, stamp),
                  Option.getOrThrow
                )
            )
            assert.isTrue(Option.isNone(yield* repo.findByCode(oldCode)))
            assert.isTrue(Option.isNone(yield* repo.findByDomain(`${oldCode}.example.com`)))
            assert.deepStrictEqual(yield* repo.findByCode(newCode), Option.some(changed))
            assert.deepStrictEqual(yield* repo.findByDomain(`${newCode}.example.com`), Option.some(changed))

            const clash = Option.getOrThrow(
              Either.getOrThrow(TenantLifecycle.update(changed, { domain: other.domain ?? "" }, stampAt(new Date())))
            )
            const error = yield* Effect.flip(repo.save(clash.tenant, [clash.event], changed.version))
            assert.deepStrictEqual([error._tag, "field" in error && error.field], ["TenantAlreadyExists", "domain"])
            assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(changed))
            assert.lengthOf(yield* outboxOf(tenant), 2)
          }))
      })

      describe("soft delete", () => {
        it.effect("hides a deleted tenant unless asked, frees its code and domain, and restores it", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const code = uniqueCode()
            const tenant = yield* inserted({ code, domain: `${code}.example.com` }, window.at(1))
            const deleted = yield* transition(tenant, TenantLifecycle.softDelete, window.at(2))
            assert.strictEqual(deleted.status, "deleted")
            assert.deepStrictEqual(deleted.deletedAt, window.at(2))

            assert.isTrue(Option.isNone(yield* repo.findById(tenant.id)))
            assert.deepStrictEqual(yield* repo.findById(tenant.id, { includeDeleted: true }), Option.some(deleted))
            assert.isTrue(Option.isNone(yield* repo.findByCode(code)))
            assert.isTrue(Option.isNone(yield* repo.findByDomain(`${code}.example.com`)))
            const range = { createdFrom: window.createdFrom, createdBefore: window.createdBefore }
            assert.strictEqual((yield* repo.list(range)).total, 0)
            assert.deepStrictEqual(ids((yield* repo.list({ ...range, includeDeleted: true })).items), [tenant.id])
            assert.deepStrictEqual(
              ids((yield* repo.list({ ...range, includeDeleted: true, status: "deleted" })).items),
              [tenant.id]
            )

            // The code and domain are free again...
            const successor = yield* inserted({ code, domain: `${code}.example.com` }, window.at(3))
            assert.deepStrictEqual(yield* repo.findByCode(code), Option.some(successor))

            // ...so restoring the old tenant now collides, and changes nothing.
            const restore = Either.getOrThrow(TenantLifecycle.restore(deleted, stampAt(window.at(4))))
            const error = yield* Effect.flip(repo.save(restore.tenant, [restore.event], deleted.version))
            assert.deepStrictEqual([error._tag, "field" in error && error.field], ["TenantAlreadyExists", "code"])
            assert.lengthOf(yield* outboxOf(tenant), 2)

            // Once the successor is deleted too, the restore goes through.
            yield* transition(successor, TenantLifecycle.softDelete, window.at(5))
            const restored = yield* transition(deleted, TenantLifecycle.restore, window.at(6))
            assert.deepStrictEqual([restored.status, restored.deletedAt], ["suspended", undefined])
            assert.deepStrictEqual(yield* repo.findByCode(code), Option.some(restored))
          }))
      })

      describe("list", () => {
        it.effect("filters by status, one or several", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const pending = yield* inserted({}, window.at(1))
            const active = yield* transition(yield* inserted({}, window.at(2)), TenantLifecycle.activate)
            const suspended = yield* transition(yield* inserted({}, window.at(3)), TenantLifecycle.suspend)
            const range = {
              createdFrom: window.createdFrom,
              createdBefore: window.createdBefore,
              sortDirection: "asc"
            } as const
            assert.deepStrictEqual(ids((yield* repo.list({ ...range, status: "active" })).items), [active.id])
            assert.deepStrictEqual(
              ids((yield* repo.list({ ...range, status: ["pending", "suspended"] })).items),
              [pending.id, suspended.id]
            )
          }))

        it.effect("searches name and code case-insensitively, with % _ and \\ as plain characters", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const underscore = yield* inserted({ name: "Alpha_Beta Labs" }, window.at(1))
            const plain = yield* inserted({ name: "AlphaXBeta Labs" }, window.at(2))
            const byCode = yield* inserted({ code: uniqueCode("zulu-"), name: "Other Corp" }, window.at(3))
            const cjk = yield* inserted({ name: "测试（北京）科技" }, window.at(4))
            const range = {
              createdFrom: window.createdFrom,
              createdBefore: window.createdBefore,
              sortDirection: "asc"
            } as const
            const search = (text: string) =>
              Effect.map(repo.list({ ...range, search: text }), (page) => ids(page.items))

            assert.deepStrictEqual(yield* search("alpha"), [underscore.id, plain.id])
            assert.deepStrictEqual(yield* search("ALPHA_BETA"), [underscore.id])
            assert.deepStrictEqual(yield* search("a_b"), [underscore.id])
            assert.deepStrictEqual(yield* search("%"), [])
            assert.deepStrictEqual(yield* search("alpha%beta"), [])
            assert.deepStrictEqual(yield* search("\\"), [])
            assert.deepStrictEqual(yield* search("ZULU-"), [byCode.id])
            assert.deepStrictEqual(yield* search("（北京）"), [cjk.id])
            assert.deepStrictEqual(yield* search("  labs  "), [underscore.id, plain.id])
            assert.deepStrictEqual(yield* search("   "), [underscore.id, plain.id, byCode.id, cjk.id])
          }))

        it.effect("filters by a creation range, from inclusive and before exclusive", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const t1 = yield* inserted({}, window.at(1))
            const t2 = yield* inserted({}, window.at(2))
            yield* inserted({}, window.at(3))
            const page = yield* repo.list({
              createdFrom: window.at(1),
              createdBefore: window.at(3),
              sortDirection: "asc"
            })
            assert.deepStrictEqual(ids(page.items), [t1.id, t2.id])
          }))

        it.effect("sorts by name, code, createdAt and updatedAt both ways, ties broken by id", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const names = ["zeta Works", "Alpha Labs", "Émile & Co", "测试公司", "beta Group"]
            const codes = ["q", "c", "x", "a", "m"].map((prefix) => uniqueCode(prefix))
            const tenants: Array<Tenant> = []
            for (const [i, name] of names.entries()) {
              tenants.push(yield* inserted({ name, code: codes[i] }, window.at(10 - i)))
            }
            // Two tenants share a creation time, so only the id can order them.
            const twinA = yield* inserted({ name: "Twin" }, window.at(20))
            const twinB = yield* inserted({ name: "Twin" }, window.at(20))
            const updated = yield* transition(Array.unsafeGet(tenants, 3), TenantLifecycle.activate, window.at(30))
            const all = [...tenants, twinA, twinB]
            const range = { createdFrom: window.createdFrom, createdBefore: window.createdBefore }
            const list = (sortBy: "name" | "code" | "createdAt" | "updatedAt", sortDirection: "asc" | "desc") =>
              Effect.map(repo.list({ ...range, sortBy, sortDirection }), (page) => ids(page.items))
            const byId = (a: Tenant, b: Tenant) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
            const [firstTwin, secondTwin] = [twinA, twinB].sort(byId)

            assert.deepStrictEqual(yield* list("name", "asc"), [
              tenants[1]?.id,
              tenants[4]?.id,
              firstTwin?.id,
              secondTwin?.id,
              tenants[0]?.id,
              tenants[2]?.id,
              tenants[3]?.id
            ])
            assert.deepStrictEqual(yield* list("name", "desc"), (yield* list("name", "asc")).reverse())
            assert.deepStrictEqual(
              yield* list("code", "asc"),
              ids([...all].sort((a, b) => (a.code < b.code ? -1 : 1)))
            )
            assert.deepStrictEqual(yield* list("createdAt", "asc"), [
              tenants[4]?.id,
              tenants[3]?.id,
              tenants[2]?.id,
              tenants[1]?.id,
              tenants[0]?.id,
              firstTwin?.id,
              secondTwin?.id
            ])
            assert.deepStrictEqual(yield* list("createdAt", "desc"), (yield* list("createdAt", "asc")).reverse())
            assert.strictEqual((yield* list("updatedAt", "desc"))[0], updated.id)
          }))

        it.effect("pages with a total: full pages, the last page, past the end, and nothing at all", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const tenants: Array<Tenant> = []
            for (let i = 0; i < 5; i++) tenants.push(yield* inserted({}, window.at(i)))
            const query = {
              createdFrom: window.createdFrom,
              createdBefore: window.createdBefore,
              sortDirection: "asc" as const,
              pageSize: 2
            }
            const pages = yield* Effect.forEach([1, 2, 3, 4], (page) => repo.list({ ...query, page }))
            assert.deepStrictEqual(pages.map((page) => page.items.length), [2, 2, 1, 0])
            assert.deepStrictEqual(pages.map((page) => [page.total, page.pageCount]), [[5, 3], [5, 3], [5, 3], [5, 3]])
            assert.deepStrictEqual(pages.map((page) => page.totalIs), ["exact", "exact", "exact", "exact"])
            assert.deepStrictEqual(pages.flatMap((page) => ids(page.items)), ids(tenants))
            // A cursor wherever a tenant follows the page; none on the last page (one row more is read to know).
            assert.deepStrictEqual(pages.map((page) => page.nextCursor !== undefined), [true, true, false, false])

            const empty = yield* repo.list({ search: uniqueCode() })
            assert.deepStrictEqual([empty.items.length, empty.total, empty.pageCount], [0, 0, 0])

            const defaults = yield* repo.list({ createdFrom: window.createdFrom, createdBefore: window.createdBefore })
            assert.deepStrictEqual([defaults.page, defaults.pageSize], [1, 20])
            assert.deepStrictEqual(ids(defaults.items), ids(tenants).reverse())
          }))

        it.effect("rejects a page size over the maximum and other bad queries with InvalidInput naming the field", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tooBig = yield* Effect.flip(repo.list({ pageSize: MAX_PAGE_SIZE + 1 }))
            assert.strictEqual(tooBig._tag, "InvalidInput")
            if (tooBig._tag === "InvalidInput") assert.deepStrictEqual(tooBig.fields, ["pageSize"])
            const bad = yield* Effect.flip(
              repo.list({ page: 0, sortBy: "email" as "name", status: "deleted" } as never)
            )
            if (bad._tag !== "InvalidInput") return assert.fail(`expected InvalidInput, got ${bad._tag}`)
            assert.includeMembers([...bad.fields], ["page", "sortBy"])
            const deleted = yield* Effect.flip(repo.list({ status: "deleted" }))
            if (deleted._tag !== "InvalidInput") return assert.fail(`expected InvalidInput, got ${deleted._tag}`)
            assert.deepStrictEqual(deleted.fields, ["status"])
            assert.match(deleted.message, /includeDeleted/)
            const range = yield* Effect.flip(
              repo.list({ createdFrom: new Date(2000, 1, 1), createdBefore: new Date(2000, 0, 1) })
            )
            if (range._tag !== "InvalidInput") return assert.fail(`expected InvalidInput, got ${range._tag}`)
            assert.deepStrictEqual(range.fields, ["createdBefore"])
          }))
      })

      describe("keyset paging (after a cursor)", () => {
        /** Follows `nextCursor` from the first page to the last; at most 50 pages, so a cursor loop fails fast. */
        const walk = (
          query: ListQueryInput,
          between: (page: Page) => Effect.Effect<void, unknown, TenantRepository.TenantRepository> = () => Effect.void
        ) =>
          Effect.gen(function*() {
            const repo = yield* repository
            const pages: Array<Page> = []
            let after: string | undefined
            do {
              const page = yield* repo.list(after === undefined ? query : { ...query, after })
              pages.push(page)
              if (pages.length > 50) return assert.fail(`the walk did not end: ${pages.length} pages`)
              yield* between(page)
              after = page.nextCursor
            } while (after !== undefined)
            return pages
          })

        /** Tenants with ties in every sort: names equal once lower-cased, creation (and update) times shared. */
        const withTies = (window: ReturnType<typeof uniqueWindow>) =>
          Effect.gen(function*() {
            const names = ["Twin", "twin", "Alpha", "TWIN", "beta", "alpha", "Zeta", "Twin", "Émile"]
            const seconds = [1, 1, 1, 2, 2, 3, 4, 4, 4]
            const tenants: Array<Tenant> = []
            for (const [i, name] of names.entries()) {
              tenants.push(
                yield* inserted({ name, code: uniqueCode(["b", "a", "c"][i % 3]) }, window.at(seconds[i] ?? 0))
              )
            }
            return tenants
          })

        it.effect("walks every sort both ways: each tenant once, in the order of one long page, ties and all", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            const tenants = yield* withTies(window)
            const range = { createdFrom: window.createdFrom, createdBefore: window.createdBefore }
            for (const sortBy of ["name", "code", "createdAt", "updatedAt"] as const) {
              for (const sortDirection of ["asc", "desc"] as const) {
                const label = `${sortBy} ${sortDirection}`
                const whole = ids(
                  (yield* repo.list({ ...range, sortBy, sortDirection, pageSize: MAX_PAGE_SIZE })).items
                )
                assert.sameMembers(whole, ids(tenants), label)
                const pages = yield* walk({ ...range, sortBy, sortDirection, pageSize: 2 })
                assert.deepStrictEqual(pages.flatMap((page) => ids(page.items)), whole, label)
                assert.deepStrictEqual(pages.map((page) => page.items.length), [2, 2, 2, 2, 1], label)
                assert.deepStrictEqual(pages.map((page) => page.page), [1, 2, 3, 4, 5], label)
                assert.deepStrictEqual(pages.map((page) => [page.total, page.pageCount]), Array.replicate([9, 5], 5))
              }
            }
          }))

        it.effect("goes on from a page asked by number, and numbers the pages after it", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            yield* withTies(window)
            const query = {
              createdFrom: window.createdFrom,
              createdBefore: window.createdBefore,
              sortBy: "name",
              pageSize: 3
            } as const
            const second = yield* repo.list({ ...query, page: 2 })
            assert.isDefined(second.nextCursor)
            const third = yield* repo.list({ ...query, page: 1, after: second.nextCursor ?? "" })
            assert.deepStrictEqual(ids(third.items), ids((yield* repo.list({ ...query, page: 3 })).items))
            assert.deepStrictEqual([third.page, third.total, third.pageCount, third.nextCursor], [3, 9, 3, undefined])
          }))

        it.effect("sees each tenant once while others are written around the walk, where page numbers repeat", () =>
          Effect.gen(function*() {
            const window = uniqueWindow()
            const tenants: Array<Tenant> = []
            for (let second = 10; second < 16; second++) tenants.push(yield* inserted({}, window.at(second)))
            const query = {
              createdFrom: window.createdFrom,
              createdBefore: window.createdBefore,
              sortBy: "createdAt",
              sortDirection: "asc",
              pageSize: 2
            } as const
            const written: Array<Tenant> = []
            const pages = yield* walk(query, (page) =>
              Effect.gen(function*() {
                if (page.page === 1) {
                  // One tenant before the walk's position, which it must not see, and one after, which it must.
                  yield* inserted({}, window.at(5))
                  written.push(yield* inserted({}, window.at(20)))
                }
                // The row the cursor points at goes away: the walk goes on from its position all the same.
                const last = page.items[page.items.length - 1]
                if (page.page === 2 && last !== undefined) yield* transition(last, TenantLifecycle.softDelete)
              }))
            assert.deepStrictEqual(pages.flatMap((page) => ids(page.items)), ids([...tenants, ...written]))

            // Page numbers count rows from the start, so the tenant inserted before shifts the page boundary.
            const repo = yield* repository
            const first = yield* repo.list({ ...query, page: 1 })
            yield* inserted({}, window.at(1))
            const second = yield* repo.list({ ...query, page: 2 })
            assert.includeMembers(ids(second.items), ids(first.items).slice(1))
          }))

        it.effect("counts exactly, by estimate (exact below the threshold) or not at all", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            yield* withTies(window)
            const query = { createdFrom: window.createdFrom, createdBefore: window.createdBefore, pageSize: 4 }
            const exact = yield* repo.list(query)
            assert.deepStrictEqual([exact.total, exact.pageCount, exact.totalIs], [9, 3, "exact"])
            const estimated = yield* repo.list({ ...query, count: "estimate" })
            assert.deepStrictEqual(estimated, exact)

            // Not counted: at least the tenants the walk has seen, and one more while a next page exists.
            const pages = yield* walk({ ...query, count: "none" })
            assert.deepStrictEqual(pages.map((page) => [page.total, page.pageCount, page.totalIs]), [
              [5, 2, "atLeast"],
              [9, 3, "atLeast"],
              [9, 3, "atLeast"]
            ])
            assert.deepStrictEqual(
              pages.flatMap((page) => ids(page.items)),
              ids((yield* walk(query)).flatMap((page) => page.items))
            )
            const pastTheEnd = yield* repo.list({ ...query, count: "none", page: 4 })
            assert.deepStrictEqual([pastTheEnd.items.length, pastTheEnd.total, pastTheEnd.nextCursor], [
              0,
              0,
              undefined
            ])
            const bad = yield* Effect.flip(repo.list({ count: "approximate" as "none" }))
            if (bad._tag !== "InvalidInput") return assert.fail(`expected InvalidInput, got ${bad._tag}`)
            assert.deepStrictEqual(bad.fields, ["count"])
          }))

        it.effect("refuses a cursor that does not decode or belongs to another sort, and a page number beside one", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const window = uniqueWindow()
            yield* withTies(window)
            const query = {
              createdFrom: window.createdFrom,
              createdBefore: window.createdBefore,
              sortBy: "name",
              sortDirection: "asc",
              pageSize: 2
            } as const
            const cursor = (yield* repo.list(query)).nextCursor ?? assert.fail("no cursor")
            const refusal = (input: ListQueryInput) =>
              Effect.flatMap(Effect.flip(repo.list(input)), (error) =>
                error._tag === "InvalidInput" ?
                  Effect.succeed(error) :
                  Effect.dieMessage(`expected InvalidInput, got ${error._tag}`))
            const base64url = (json: unknown) => Buffer.from(JSON.stringify(json)).toString("base64url")
            const id = yield* TenantLifecycle.newTenantId

            const garbage = yield* refusal({ ...query, after: "not a cursor!" })
            assert.deepStrictEqual(garbage.fields, ["after"])
            assert.include(garbage.message, `"not a cursor!"`)
            const long = yield* refusal({ ...query, after: "x".repeat(1_500) })
            assert.deepStrictEqual(long.fields, ["after"])
            assert.include(long.message, "(1500 characters)")
            assert.isBelow(long.message.length, 200)
            const tooLong = yield* refusal({ ...query, after: cursor + "x".repeat(3_000) })
            assert.deepStrictEqual(tooLong.fields, ["after"])
            assert.include(tooLong.message, `(${cursor.length + 3_000} characters)`)
            // Lists that decode but are no cursor: a number for a name, a bad id, a NUL (which PostgreSQL cannot
            // compare), a time outside the years 1-9999, a negative count, an unknown sort.
            for (
              const fields of [
                ["name", "asc", 1, id, 2],
                ["name", "asc", "twin", "nope", 2],
                ["name", "asc", "a\u0000", id, 2],
                ["createdAt", "asc", Date.parse("+010000-01-01T00:00:00Z"), id, 2],
                ["name", "asc", "twin", id, -1],
                ["email", "asc", "twin", id, 2],
                { sortBy: "name" }
              ]
            ) {
              const error = yield* refusal({ ...query, after: base64url(fields) })
              assert.deepStrictEqual(error.fields, ["after"], JSON.stringify(fields))
            }

            const otherField = yield* refusal({ ...query, sortBy: "code", after: cursor })
            assert.deepStrictEqual(otherField.fields, ["after"])
            assert.match(otherField.message, /sorted by name asc, not code asc/)
            const otherDirection = yield* refusal({ ...query, sortDirection: "desc", after: cursor })
            assert.deepStrictEqual(otherDirection.fields, ["after"])
            const defaults = yield* refusal({ after: cursor })
            assert.match(defaults.message, /not createdAt desc/)

            const both = yield* refusal({ ...query, page: 2, after: cursor })
            assert.deepStrictEqual(both.fields, ["page"])
            assert.match(both.message, /after/)
            assert.lengthOf((yield* repo.list({ ...query, page: 1, after: cursor })).items, 2)
          }))
      })

      it.effect("counts tenants by status, deleted ones included", () =>
        Effect.gen(function*() {
          const repo = yield* repository
          const before = yield* repo.countByStatus
          yield* inserted()
          yield* transition(yield* inserted(), TenantLifecycle.activate)
          yield* transition(yield* inserted(), TenantLifecycle.activate)
          yield* transition(yield* inserted(), TenantLifecycle.softDelete)
          const after = yield* repo.countByStatus
          assert.deepStrictEqual(
            {
              pending: after.pending - before.pending,
              active: after.active - before.active,
              suspended: after.suspended - before.suspended,
              deleted: after.deleted - before.deleted
            },
            { pending: 1, active: 2, suspended: 0, deleted: 1 }
          )
        }))

      describe("a write repeated with the same events (a retry after an unknown outcome)", () => {
        it.effect("succeeds for an insert and a save already stored, and stores nothing twice", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const { event, tenant } = yield* newTenant()
            yield* repo.insert(tenant, event)
            yield* repo.insert(tenant, event)
            const next = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
            yield* repo.save(next.tenant, [next.event], tenant.version)
            yield* repo.save(next.tenant, [next.event], tenant.version)
            // Still a retry once the tenant has moved on: its events are stored.
            const later = yield* TenantLifecycle.suspend(next.tenant, stampAt(new Date()))
            yield* repo.save(later.tenant, [later.event], next.tenant.version)
            yield* repo.save(next.tenant, [next.event], tenant.version)
            yield* repo.insert(tenant, event)
            assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(later.tenant))
            assert.deepStrictEqual((yield* outboxOf(tenant)).map((entry) => entry.tenantVersion), [1, 2, 3])
          }))

        it.effect("still fails as a conflict when only the tenant matches, with other events", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted()
            const first = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
            const second = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
            yield* repo.save(first.tenant, [first.event], tenant.version)
            const error = yield* Effect.flip(repo.save(second.tenant, [second.event], tenant.version))
            assert.strictEqual(error._tag, "ConcurrencyConflict")
          }))

        it.effect("dies when the stamp was reused for another change of the same tenant", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted()
            const stamp = stampAt(new Date())
            const activated = yield* TenantLifecycle.activate(tenant, stamp)
            yield* repo.save(activated.tenant, [activated.event], tenant.version)
            // Same event id, another kind of change at the same version: not a retry.
            const suspended = yield* TenantLifecycle.suspend(tenant, stamp)
            const exit = yield* Effect.exit(repo.save(suspended.tenant, [suspended.event], tenant.version))
            assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
            assert.deepStrictEqual(yield* repo.findById(tenant.id), Option.some(activated.tenant))
          }))
      })

      describe("caller bugs die and write nothing, the same on both layers", () => {
        it.effect("a stamp reused for a second tenant: its row and its outbox entry are rolled back", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const stamp = stampAt(new Date())
            const first = Either.getOrThrow(
              TenantLifecycle.create(
                yield* TenantLifecycle.newTenantId,
                { code: uniqueCode(), name: "First", contact: { email: "a@b.test" } },
                stamp
              )
            )
            const second = Either.getOrThrow(
              TenantLifecycle.create(
                yield* TenantLifecycle.newTenantId,
                { code: uniqueCode(), name: "Second", contact: { email: "a@b.test" } },
                stamp
              )
            )
            yield* repo.insert(first.tenant, first.event)
            const exit = yield* Effect.exit(repo.insert(second.tenant, second.event))
            assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
            assert.isTrue(Option.isNone(yield* repo.findById(second.tenant.id, { includeDeleted: true })))
            assert.lengthOf(yield* outboxOf(second.tenant), 0)
            assert.lengthOf(yield* outboxOf(first.tenant), 1)
          }))

        it.effect("a tenant built by hand in a status its event does not lead to", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const { event, tenant } = yield* newTenant()
            const forged = new Tenant({ ...event.tenant, status: "active" })
            const exit = yield* Effect.exit(repo.insert(forged, event))
            assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
            assert.isTrue(Option.isNone(yield* repo.findById(tenant.id)))
          }))
      })

      describe("values", () => {
        it.effect("are copied in and out: changing a tenant after storing it changes nothing stored", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted({ settings: { seats: 1, zero: -0 } })
            Object.assign(tenant.settings, { seats: 99 })
            const found = Option.getOrThrow(yield* repo.findById(tenant.id))
            assert.deepStrictEqual(found.settings, { seats: 1, zero: 0 })
            Object.assign(found.settings, { seats: 42 })
            assert.deepStrictEqual(Option.getOrThrow(yield* repo.findById(tenant.id)).settings, { seats: 1, zero: 0 })
          }))

        it.effect("are copied on save too: changing a saved tenant afterwards changes nothing stored", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted({ settings: { seats: 1 } })
            const next = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
            yield* repo.save(next.tenant, [next.event], tenant.version)
            Object.assign(next.tenant.settings, { seats: 99, extra: true })
            assert.deepStrictEqual(Option.getOrThrow(yield* repo.findById(tenant.id)).settings, { seats: 1 })
          }))

        it.effect("an id in upper case names no tenant (ids are lower case everywhere)", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const tenant = yield* inserted()
            assert.isTrue(Option.isNone(yield* repo.findById(tenant.id.toUpperCase() as Tenant["id"])))
          }))

        it.effect("out-of-range query values are InvalidInput, not store errors", () =>
          Effect.gen(function*() {
            const repo = yield* repository
            const ancient = yield* Effect.flip(repo.list({ createdFrom: new Date(Date.UTC(-5000, 0, 1)) }))
            assert.deepStrictEqual([ancient._tag, ancient._tag === "InvalidInput" && ancient.fields], [
              "InvalidInput",
              ["createdFrom"]
            ])
            const outbox = yield* TenantOutbox
            for (const options of [{ limit: 1.5 }, { limit: 0 }, { afterPosition: -1 }, { afterPosition: 0.5 }]) {
              const error = yield* Effect.flip(outbox.list(options))
              assert.strictEqual(error._tag, "InvalidInput")
            }
          }))
      })

      it.effect("dies on a write whose events do not match its versions (a caller bug, not a condition)", () =>
        Effect.gen(function*() {
          const repo = yield* repository
          const tenant = yield* inserted()
          const next = Either.getOrThrow(TenantLifecycle.activate(tenant, stampAt(new Date())))
          const exit = yield* Effect.exit(repo.save(next.tenant, [next.event], 0))
          assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
          assert.lengthOf(yield* outboxOf(tenant), 1)
        }))
    }
  )
}
