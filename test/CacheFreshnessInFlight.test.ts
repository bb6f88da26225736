import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as Postgres from "../src/Postgres.js"
import type { Tenant } from "../src/Tenant.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { newTenant, stampAt } from "./utils/tenants.js"

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const renamed = (tenant: Tenant, name: string) =>
  Effect.map(TenantLifecycle.update(tenant, { name }, stampAt(new Date())), Option.getOrThrow)

describe("a write in flight across several polls, seen by no inline invalidation", () => {
  it.live("is applied by the reader's feed once it commits", () =>
    Effect.scoped(Effect.gen(function*() {
      const schema = yield* freshSchemaNamed("review")
      const db = () => Postgres.layer({ url: Redacted.make(urlWithSchema(schema)), maxConnections: 4 })
      // The writer: no cache (an admin tool, or a process cut off from Redis).
      const raw = Context.get(
        yield* Layer.build(TenantRepositoryPg.layer().pipe(Layer.provide(db()))),
        TenantRepository.TenantRepository
      )
      const b = Context.get(
        yield* Layer.build(
          CachedTenantRepository.layer({ ttl: "10 minutes", maxStaleness: "2 seconds" }).pipe(
            Layer.provide(TenantRepositoryPg.layer().pipe(Layer.provide(db()))),
            Layer.provide(
              CacheStoreRedis.layer({ url: Redacted.make(url), prefix: `review-inflight-${Math.random()}:` })
            )
          )
        ),
        TenantRepository.TenantRepository
      )
      const t = yield* newTenant()
      const u = yield* newTenant()
      yield* raw.insert(t.tenant, t.event)
      yield* raw.insert(u.tenant, u.event)
      yield* Effect.sleep("700 millis")
      yield* b.findById(t.tenant.id)
      assert.deepStrictEqual(Option.map(yield* b.findById(t.tenant.id), (x) => x.version), Option.some(1))
      const direct = new pg.Client({ connectionString: urlWithSchema(schema) })
      yield* Effect.promise(() => direct.connect())
      yield* Effect.promise(() =>
        direct.query(
          `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$`
        )
      )
      yield* Effect.promise(() =>
        direct.query(
          `CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON tenant_outbox DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.tenant_id = '${t.tenant.id}') EXECUTE FUNCTION slow()`
        )
      )
      yield* Effect.promise(() => direct.end())
      // Other writes keep committing meanwhile, so that the head moves past the write in flight.
      let running = true
      let other = u.tenant
      const traffic = yield* Effect.fork(Effect.gen(function*() {
        while (running) {
          const next = yield* renamed(other, `U ${Math.random()}`)
          yield* raw.save(next.tenant, [next.event], other.version)
          other = next.tenant
          yield* Effect.sleep("50 millis")
        }
      }))
      const next = yield* renamed(t.tenant, "Renamed")
      yield* raw.save(next.tenant, [next.event], t.tenant.version)
      yield* Effect.sleep("2500 millis")
      running = false
      yield* traffic.await
      assert.deepStrictEqual(Option.map(yield* b.findById(t.tenant.id), (x) => x.version), Option.some(2))
    })), { timeout: 30_000 })
})
