import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as String from "effect/String"
import { PgPool } from "../src/internal/pgPool.js"
import * as Migrations from "../src/Migrations.js"
import * as TenantEvent from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchema, layerClientInFreshSchema, TestSchema, urlWithSchema } from "./utils/postgres.js"
import { newTenant, stampAt, uniqueCode } from "./utils/tenants.js"

const pgRepository = TenantRepositoryPg.layer().pipe(Layer.provideMerge(layerClientInFreshSchema))

describe("TenantRepositoryPg.layer()", () => {
  describe("migrations", () => {
    it.scoped("create the tables and indexes once, tracked in their own table", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const schema = yield* TestSchema
        const first = yield* Migrations.run
        const second = yield* Migrations.run
        assert.deepStrictEqual(first.map(([id]) => id), [1, 2, 3, 4, 5, 6])
        assert.deepStrictEqual(second, [])

        const tables = yield* sql<{ table_name: string }>`
          SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`
        assert.deepStrictEqual(tables.map((row) => row.table_name), [
          "tenant_deliveries",
          "tenant_delivery_attempts",
          "tenant_infra_migrations",
          "tenant_outbox",
          "tenants"
        ])

        const indexes = yield* sql<{ indexname: string; indexdef: string }>`
          SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = ${schema} AND tablename = 'tenants'`
        const definition = (name: string) => indexes.find((index) => index.indexname === name)?.indexdef ?? "missing"
        assert.match(definition("tenants_code_live_key"), /UNIQUE INDEX .* \(code\) WHERE \(deleted_at IS NULL\)/)
        assert.match(definition("tenants_domain_live_key"), /UNIQUE INDEX .* \(domain\) WHERE \(deleted_at IS NULL\)/)
        for (
          const name of ["tenants_created_at_idx", "tenants_updated_at_idx", "tenants_name_key_idx", "tenants_code_idx"]
        ) {
          assert.notStrictEqual(definition(name), "missing", name)
        }
        assert.match(definition("tenants_name_key_trgm_idx"), /USING gin \(name_key public\.gin_trgm_ops\)/)
        const [delivered] = yield* sql<{ indexdef: string }>`
          SELECT indexdef FROM pg_indexes WHERE schemaname = ${schema} AND indexname = 'tenant_deliveries_delivered_idx'`
        assert.match(delivered?.indexdef ?? "missing", /\(finished_at\) WHERE \(status = 'delivered'::text\)/)
        const [byTransaction] = yield* sql<{ indexdef: string }>`
          SELECT indexdef FROM pg_indexes WHERE schemaname = ${schema} AND indexname = 'tenant_outbox_xid_idx'`
        assert.match(byTransaction?.indexdef ?? "missing", /\(xid\)/)
      }).pipe(Effect.provide(layerClientInFreshSchema)))

    it.scoped("run safely from several clients at once: each migration runs exactly once", () =>
      Effect.gen(function*() {
        const schema = yield* freshSchema
        const client = Layer.fresh(PgClient.layer({ url: Redacted.make(urlWithSchema(schema)), maxConnections: 2 }))
        const runs = yield* Effect.all(
          Array.from({ length: 4 }, () => Effect.provide(Migrations.run, client)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(runs.flat().map(([id]) => id).sort(), [1, 2, 3, 4, 5, 6])
      }))
  })

  it.scoped("stores each event in the outbox as the JSON of Schema.encode(TenantEvent)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const repo = yield* TenantRepository.TenantRepository
      const { event, tenant } = yield* newTenant({ domain: `${uniqueCode()}.example.com`, settings: { seats: 3 } })
      yield* repo.insert(tenant, event)
      const rows = yield* sql<{ payload: unknown; event_type: string }>`
        SELECT payload, event_type FROM tenant_outbox WHERE tenant_id = ${tenant.id}`
      const encoded = yield* Schema.encode(TenantEvent.TenantEvent)(event)
      assert.deepStrictEqual(rows[0]?.payload, JSON.parse(JSON.stringify(encoded)))
      assert.strictEqual(rows[0]?.event_type, "TenantCreated")
    }).pipe(Effect.provide(pgRepository)))

  it.scoped("works under a host client that transforms names, leaving settings keys as they are", () =>
    Effect.gen(function*() {
      const repo = yield* TenantRepository.TenantRepository
      const { event, tenant } = yield* newTenant({ settings: { max_users: 10, uiTheme: "dark" } })
      yield* repo.insert(tenant, event)
      const found = Option.getOrThrow(yield* repo.findById(tenant.id))
      assert.deepStrictEqual(found, tenant)
      assert.deepStrictEqual(found.settings, { max_users: 10, uiTheme: "dark" })
      const activated = yield* TenantLifecycle.activate(found, stampAt(new Date()))
      yield* repo.save(activated.tenant, [activated.event], found.version)
      assert.deepStrictEqual(yield* repo.findByCode(tenant.code), Option.some(activated.tenant))
    }).pipe(
      Effect.provide(
        TenantRepositoryPg.layer().pipe(
          Layer.provide(Layer.unwrapScoped(Effect.map(freshSchema, (schema) =>
            PgClient.layer({
              url: Redacted.make(urlWithSchema(schema)),
              transformQueryNames: String.camelToSnake,
              transformResultNames: String.snakeToCamel
            }))))
        )
      )
    ))

  it.scoped("turns a database failure into RepositoryError naming the operation, without the query's values", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const repo = yield* TenantRepository.TenantRepository
      yield* sql`DROP TABLE tenants CASCADE`
      const code = uniqueCode("secret-")
      const error = yield* Effect.flip(repo.findByCode(code))
      assert.strictEqual(error._tag, "RepositoryError")
      assert.strictEqual(error.operation, "findByCode")
      assert.match(error.message, /^TenantRepository\.findByCode failed: .*SQLSTATE 42P01/)
      assert.notInclude(error.message, code)
      assert.isDefined(error.cause)

      const { event, tenant } = yield* newTenant()
      const insertError = yield* Effect.flip(repo.insert(tenant, event))
      assert.deepStrictEqual([insertError._tag, "operation" in insertError && insertError.operation], [
        "RepositoryError",
        "insert"
      ])
    }).pipe(Effect.provide(pgRepository)))
})

/** Every statement sent on a connection of the pool of `Postgres.layer`'s client while `effect` runs. */
const connectionTexts = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(PgPool, ({ pool }) => {
    const texts: Array<string> = []
    const tapped = new WeakSet<object>()
    const onAcquire = (client: { query: (...args: Array<unknown>) => unknown }) => {
      if (tapped.has(client)) return
      tapped.add(client)
      const query = client.query
      client.query = function(this: unknown, ...args: Array<unknown>) {
        if (typeof args[0] === "string") texts.push(args[0])
        return query.apply(this, args)
      }
    }
    pool.on("acquire", onAcquire)
    return Effect.map(
      Effect.ensuring(effect, Effect.sync(() => pool.off("acquire", onAcquire))),
      (value) => [value, texts] as const
    )
  })

describe("TenantRepositoryPg.list on Postgres.layer's pool", () => {
  it.scoped("a page and its total: one read-only snapshot of one connection, BEGIN to COMMIT", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const prefix = uniqueCode("snap")
      for (let i = 0; i < 3; i++) {
        const { event, tenant } = yield* newTenant({ code: `${prefix}-${i}`, name: `Snapshot ${prefix} ${i}` })
        yield* repository.insert(tenant, event)
      }
      const [page, texts] = yield* connectionTexts(repository.list({ search: prefix, pageSize: 2 }))
      assert.deepStrictEqual([page.items.length, page.total, page.totalIs], [2, 3, "exact"])
      assert.deepStrictEqual(
        texts.map((text) => text.replace(/\s+/g, " ").trim().slice(0, 24)),
        ["BEGIN ISOLATION LEVEL RE", "SELECT id, code, name, s", "SELECT count(*)::int AS ", "COMMIT"]
      )
      const [counted, single] = yield* connectionTexts(repository.list({ search: prefix, count: "none" }))
      assert.strictEqual(counted.items.length, 3)
      assert.strictEqual(single.length, 1)
    }).pipe(Effect.provide(pgRepository)))

  it.scoped("inside a caller's transaction, on its connection: what it wrote is listed", () =>
    Effect.gen(function*() {
      const repository = yield* TenantRepository.TenantRepository
      const sql = yield* SqlClient.SqlClient
      const { event, tenant } = yield* newTenant({ code: uniqueCode("txlist") })
      yield* repository.insert(tenant, event)
      const listed = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`UPDATE tenants SET name = 'Renamed Inside', name_key = 'renamed inside' WHERE id = ${tenant.id}`
        return yield* repository.list({ search: tenant.code })
      }))
      assert.deepStrictEqual(listed.items.map((t) => t.name), ["Renamed Inside"])
    }).pipe(Effect.provide(pgRepository)))
})
