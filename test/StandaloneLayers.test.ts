/**
 * The outbox and the delivery ledger have layers of their own on PostgreSQL: a process that stores no tenant
 * (a relay worker, an exporter) reads what the repository's writes stored, through the same tables.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { DeliveryLedger } from "../src/DeliveryLedger.js"
import * as DeliveryLedgerPg from "../src/DeliveryLedger/Pg.js"
import { TenantOutbox } from "../src/TenantOutbox.js"
import * as TenantOutboxPg from "../src/TenantOutbox/Pg.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { newTenant } from "./utils/tenants.js"

const client = (url: string) => PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })

describe("layers of their own", () => {
  it.scopedLive(
    "TenantOutbox/Pg and DeliveryLedger/Pg alone read what the repository stored",
    () =>
      Effect.gen(function*() {
        const url = urlWithSchema(yield* freshSchemaNamed("alone"))
        // Each built on its own client, as in a process of its own; the outbox first, on an empty schema: it migrates.
        const outbox = Context.get(
          yield* Layer.build(TenantOutboxPg.layer().pipe(Layer.provide(client(url)))),
          TenantOutbox
        )
        assert.deepStrictEqual(yield* outbox.list(), [])
        const repository = Context.get(
          yield* Layer.build(TenantRepositoryPg.layer().pipe(Layer.provide(client(url)))),
          TenantRepository.TenantRepository
        )
        const ledger = Context.get(
          yield* Layer.build(DeliveryLedgerPg.layer.pipe(Layer.provide(client(url)))),
          DeliveryLedger
        )

        const { event, tenant } = yield* newTenant()
        yield* repository.insert(tenant, event)
        const entries = yield* outbox.list({ tenantId: tenant.id })
        assert.deepStrictEqual(entries.map((entry) => entry.eventId), [event.eventId])

        assert.strictEqual(yield* ledger.expand(10), 1)
        const key = `${event.eventId}:email:${tenant.contact.email}`
        const delivery = yield* ledger.find(key)
        assert.isTrue(Option.isSome(delivery))
        assert.strictEqual(Option.getOrThrow(delivery).status, "pending")
        assert.isTrue(Option.isSome(Option.getOrThrow(delivery).nextAttemptAt), "a pending message has a next try")
      }),
    30_000
  )
})
