import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as String from "effect/String"
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
