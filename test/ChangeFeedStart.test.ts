import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import { ChangeFeed } from "../src/internal/changeFeed.js"
import * as Postgres from "../src/Postgres.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { newTenant } from "./utils/tenants.js"

describe("change feed start while a write is in flight", () => {
  it.live(
    "a write in flight when start() runs is delivered by the polls that follow",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const schema = yield* freshSchemaNamed("review")
        const context = yield* Layer.build(
          TenantRepositoryPg.layer().pipe(
            Layer.provideMerge(Postgres.layer({ url: Redacted.make(urlWithSchema(schema)) }))
          )
        )
        const repo = Context.get(context, TenantRepository.TenantRepository)
        const feed = Context.unsafeGet(context as Context.Context<unknown>, ChangeFeed)
        const direct = new pg.Client({ connectionString: urlWithSchema(schema) })
        yield* Effect.promise(() => direct.connect())
        yield* Effect.promise(() =>
          direct.query(
            `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$`
          )
        )
        yield* Effect.promise(() =>
          direct.query(
            `CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON tenant_outbox DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow()`
          )
        )
        const { event, tenant } = yield* newTenant()
        const write = yield* Effect.fork(repo.insert(tenant, event))
        yield* Effect.sleep("500 millis")
        // Any other transaction that takes an xid and ends meanwhile (routine on a busy database).
        yield* Effect.promise(() => direct.query("SELECT pg_current_xact_id()"))
        const from = yield* feed.start(Duration.minutes(7))
        yield* write.await
        yield* Effect.promise(() => direct.end())
        let mark = from
        const seen: Array<string> = []
        for (let i = 0; i < 3; i++) {
          const poll = yield* feed.poll(mark, 1000)
          seen.push(...poll.changes.map((c) => c.eventId))
          mark = poll.next
          yield* Effect.sleep("100 millis")
        }
        assert.include(seen, event.eventId)
      })),
    { timeout: 30_000 }
  )
})
