/**
 * A relay over `TenantRepositoryPg.layer()`, run the way a script or a test runner runs one: inside
 * `Effect.runPromise`, stopped by the end of the program, with no `process.exit` after it. It prints `stopped`
 * once `runPromise` has returned; the test that spawns it (OutboxRelayListen.test.ts) then expects the process to
 * exit by itself, leaving no connection open.
 *
 * Settings, from the environment:
 * - `RELAY_SCRIPT_URL`: the database, its search_path set to the test's schema;
 * - `RELAY_SCRIPT_APP`: the `application_name` of every connection, so that the test can count them;
 * - `RELAY_SCRIPT_STOP`: when to stop. `listening`: once the relay has been woken by a committed event and has
 *   delivered its message (its LISTEN connection is open). `connecting`: while its LISTEN connection is still
 *   being opened; every connection opened after the store is up then takes `SLOW_CONNECT_MS` to connect, as
 *   over a slow network.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Socket } from "node:net"
import { DeliveryLedger } from "../../src/DeliveryLedger.js"
import { Mailer } from "../../src/Mailer.js"
import * as OutboxRelay from "../../src/OutboxRelay.js"
import { SmsGateway } from "../../src/SmsGateway.js"
import * as TenantNotifications from "../../src/TenantNotifications.js"
import * as TenantRepository from "../../src/TenantRepository.js"
import * as TenantRepositoryPg from "../../src/TenantRepository/Pg.js"
import { newTenant } from "./tenants.js"

const SLOW_CONNECT_MS = 500

const setting = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set`)
  return value
}

const stop = setting("RELAY_SCRIPT_STOP")
let slowConnects = false

/** A socket whose connection starts `SLOW_CONNECT_MS` late once `slowConnects` is set. */
const socket = () => {
  const opened = new Socket()
  if (slowConnects) {
    const connect = opened.connect.bind(opened)
    opened.connect = ((port: number, host: string) => {
      // A socket destroyed meanwhile stays closed (`connect` would open it again).
      setTimeout(() => opened.destroyed || connect(port, host), SLOW_CONNECT_MS)
      return opened
    }) as Socket["connect"]
  }
  return opened
}

const Database = TenantRepositoryPg.layer().pipe(
  Layer.provideMerge(PgClient.layer({
    url: Redacted.make(setting("RELAY_SCRIPT_URL")),
    applicationName: setting("RELAY_SCRIPT_APP"),
    stream: socket
  }))
)

const Senders = Layer.merge(
  Layer.succeed(
    Mailer,
    Mailer.of({
      from: "noreply@relay.test",
      send: () => Effect.succeed({ messageId: "<1@relay.test>", response: "250" })
    })
  ),
  Layer.succeed(SmsGateway, SmsGateway.of({ send: () => Effect.succeed({ id: "sms-1" }) }))
)

// Polling is slowed down to a minute: a message delivered within seconds was found through a wake-up.
const Relay = OutboxRelay.layer({ pollInterval: Duration.minutes(1), metricsInterval: Duration.minutes(1) }).pipe(
  Layer.provide(TenantNotifications.layer()),
  Layer.provide(Senders)
)

const untilDelivered = Effect.gen(function*() {
  const ledger = yield* DeliveryLedger
  while ((yield* ledger.stats).delivered === 0) yield* Effect.sleep(Duration.millis(20))
}).pipe(Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error("no wake-up delivered") }))

const program = Effect.gen(function*() {
  if (stop === "connecting") {
    // Enough pooled connections for the relay's first round, opened before connections slow down: only the
    // LISTEN connection is slow to open, and a stop does not first wait for it behind a slow query.
    const sql = yield* SqlClient.SqlClient
    yield* Effect.all(Array.from({ length: 6 }, () => sql`SELECT pg_sleep(0.05)`), { concurrency: "unbounded" })
    slowConnects = true
    yield* Layer.build(Relay)
    // The relay is up and its LISTEN connection waits to connect.
    yield* Effect.sleep(Duration.millis(SLOW_CONNECT_MS / 5))
    return
  }
  yield* Layer.build(Relay)
  // Its first round done, the relay sleeps until a wake-up (or the poll, a minute away).
  yield* Effect.sleep(Duration.millis(300))
  const created = yield* newTenant()
  yield* (yield* TenantRepository.TenantRepository).insert(created.tenant, created.event)
  yield* untilDelivered
})

await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Database)))
console.log("stopped")
