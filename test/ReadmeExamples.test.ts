/**
 * The README's examples, run: if one stops compiling or working, this file fails.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import {
  CachedTenantRepository,
  CacheStore,
  Mailer,
  OutboxRelay,
  SmsGateway,
  Tenant,
  TenantLifecycle,
  TenantNotifications,
  TenantOutbox,
  TenantRepository,
  TenantRepositoryError
} from "../src/index.js"
import * as SmsGatewayHttp from "../src/SmsGateway/Http.js"
import * as TenantInfra from "../src/TenantInfra.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"

const onboard = (input: unknown) =>
  Effect.gen(function*() {
    const repository = yield* TenantRepository.TenantRepository
    const { event, tenant } = yield* TenantLifecycle.create(
      yield* TenantLifecycle.newTenantId,
      input,
      yield* TenantLifecycle.stamp({ actor: "signup" })
    )
    yield* repository.insert(tenant, event)
    return tenant
  })

const activate = (id: Tenant.TenantId) =>
  Effect.gen(function*() {
    const repository = yield* TenantRepository.TenantRepository
    const found = yield* repository.findById(id)
    if (Option.isNone(found)) return yield* new TenantRepositoryError.TenantNotFound({ tenantId: id })
    const current = found.value
    const { event, tenant } = yield* TenantLifecycle.activate(current, yield* TenantLifecycle.stamp({ actor: "ops" }))
    yield* repository.save(tenant, [event], current.version)
    return tenant
  })

const someId = Tenant.TenantId.make("3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10")

describe("README examples", () => {
  it.effect("onboards and activates a tenant on the in-memory repository", () =>
    Effect.gen(function*() {
      const tenant = yield* onboard({ code: "Acme_Corp", name: "Acme Inc.", contact: { email: "admin@acme.test" } })
      const active = yield* activate(tenant.id)
      assert.deepStrictEqual([active.code, active.status, active.version], ["acme-corp", "active", 2])
      const error = yield* Effect.flip(onboard({ code: "acme-corp", name: "Acme", contact: { email: "a@b.test" } }))
      assert.strictEqual(error._tag, "TenantAlreadyExists")
    }).pipe(Effect.provide(TenantRepository.layerMemory)))

  it.effect("activating an unknown tenant fails with TenantNotFound (Layer.mock)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(activate(someId))
      assert.strictEqual(error._tag, "TenantNotFound")
    }).pipe(
      Effect.provide(
        Layer.mock(TenantRepository.TenantRepository, {
          findById: () => Effect.succeed(Option.none())
        })
      )
    ))

  it.effect("a mock's missing methods die when called, so a test cannot pass by accident", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const exit = yield* Effect.exit(repository.findByCode("acme"))
      assert.isTrue(exit._tag === "Failure")
    }).pipe(Effect.provide(Layer.mock(TenantRepository.TenantRepository, {}))))

  it.effect("Layer.succeed with every method written out", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(activate(someId))
      assert.strictEqual(error._tag, "TenantNotFound")
    }).pipe(
      Effect.provide(
        Layer.succeed(
          TenantRepository.TenantRepository,
          TenantRepository.TenantRepository.of({
            insert: () => Effect.void,
            save: () => Effect.void,
            findById: () => Effect.succeedNone,
            findByCode: () => Effect.succeedNone,
            findByDomain: () => Effect.succeedNone,
            list: () =>
              Effect.succeed({
                items: [],
                total: 0,
                totalIs: "exact",
                page: 1,
                pageSize: 20,
                pageCount: 0,
                nextCursor: undefined
              }),
            countByStatus: Effect.succeed({ pending: 0, active: 0, suspended: 0, deleted: 0 })
          })
        )
      )
    ))

  it.effect("the Cache section's composition: the cached repository in front, the outbox still visible", () =>
    Effect.gen(function*() {
      const tenant = yield* onboard({ code: "cached", name: "Cached Inc.", contact: { email: "a@b.test" } })
      const repository = yield* TenantRepository.TenantRepository
      assert.deepStrictEqual(yield* repository.findById(tenant.id), Option.some(tenant))
      const cache = yield* CacheStore.CacheStore
      assert.isTrue(Option.isSome(yield* cache.get(`tenant:v1:id:${tenant.id}`)))
      const outbox = yield* TenantOutbox.TenantOutbox
      assert.lengthOf(yield* outbox.list({ tenantId: tenant.id }), 1)
    }).pipe(
      Effect.provide(
        CachedTenantRepository.layer().pipe(
          Layer.provideMerge(TenantRepository.layerMemory),
          Layer.provideMerge(CacheStore.layerMemory())
        )
      )
    ))

  it.live("the Outbox relay section's composition delivers a new tenant's welcome e-mail", () =>
    Effect.gen(function*() {
      // The section's layers as written, with the senders and the database swapped for memory ones.
      const Senders = Layer.merge(Mailer.layerMemory({ from: "noreply@acme.test" }), SmsGateway.layerMemory)
      const Store = TenantRepository.layerMemory
      const Relay = OutboxRelay.layer({ pollInterval: "50 millis" }).pipe(
        Layer.provide(TenantNotifications.layer().pipe(Layer.provide(Senders))),
        Layer.provideMerge(Store)
      )
      const mailer = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Layer.merge(Relay, Senders))
        yield* onboard({ code: "acme", name: "Acme Inc.", contact: { email: "admin@acme.test" } }).pipe(
          Effect.provide(context)
        )
        const sent = Context.get(context, Mailer.MemoryMailer).sent
        while ((yield* sent).length === 0) yield* Effect.sleep("20 millis")
        return yield* sent
      }))
      assert.deepStrictEqual(mailer.map((email) => email.to), ["admin@acme.test"])
    }))

  it("the Outbox relay section's PostgreSQL composition type-checks with every requirement met", () => {
    const Senders = Layer.merge(
      TenantInfra.layerSmtp,
      SmsGatewayHttp.layerConfig(TenantInfra.smsConfig).pipe(Layer.provide(FetchHttpClient.layer))
    )
    const Relay = OutboxRelay.layerConfig(TenantInfra.relayConfig).pipe(
      Layer.provide(TenantNotifications.layer().pipe(Layer.provide(Senders))),
      Layer.provide(TenantRepositoryPg.layer().pipe(Layer.provide(TenantInfra.layerPostgres)))
    )
    const launched: Effect.Effect<never, unknown, never> = Layer.launch(Relay)
    assert.isTrue(Effect.isEffect(launched))
  })
})
