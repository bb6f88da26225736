/**
 * The chaos test of the outbox relay: tenants walk through their lifecycle in PostgreSQL while relays, each in
 * its own process, are killed with SIGKILL at random moments and restarted, the SMTP server refuses mail for a
 * stretch, the SMS gateway fails for a stretch, and both drop connections after taking a message. Afterwards
 * every message the events call for must have reached its server, no SMS may have been taken twice, and every
 * e-mail that reached the server more than once must be matched by ambiguous attempts in the ledger.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { digestOf, messageIdFor } from "../src/internal/messageRules.js"
import type { Tenant } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import { notificationsFor } from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import type { RelayProcess } from "./utils/relayProcess.js"
import { startRelay } from "./utils/relayProcess.js"
import { makeSmsGatewayServer } from "./utils/smsGateway.js"
import { makeSmtpServer } from "./utils/smtpServer.js"
import { uniqueCode } from "./utils/tenants.js"

const TENANTS = 200
const RELAYS = 3
const MIN_KILLS = 10
const MAIL_FROM = "noreply@chaos.test"

const pause = (millis: number) => Effect.sleep(`${Math.round(millis)} millis`)
const between = (low: number, high: number) => low + Math.random() * (high - low)

interface Row {
  readonly message_key: string
  readonly channel: "email" | "sms"
  readonly status: string
  readonly ambiguous_attempts: number
  readonly attempts: number
}

describe("OutboxRelay chaos", () => {
  it.live(
    `${TENANTS} tenants, ${RELAYS} relays killed at random: nothing lost, every duplicate accounted for`,
    () =>
      Effect.gen(function*() {
        const schema = yield* freshSchemaNamed("chaos")
        const url = urlWithSchema(schema)
        const smtp = yield* makeSmtpServer()
        const sms = yield* makeSmsGatewayServer({ dedupe: true })
        const context = yield* Layer.build(
          TenantRepository.layerPg.pipe(
            Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 12 }))
          )
        )
        const repository = Context.get(context, TenantRepository.TenantRepository)
        const sql = Context.get(context, SqlClient.SqlClient)

        const env = {
          DATABASE_URL: url,
          SMTP_URL: smtp.url(),
          MAIL_FROM,
          SMS_GATEWAY_URL: sms.url,
          SMS_API_KEY: "chaos-key",
          RELAY_LEASE: "2 seconds",
          RELAY_POLL_INTERVAL: "200 millis",
          RELAY_BASE_DELAY: "50 millis",
          RELAY_MAX_DELAY: "1 second",
          RELAY_MAX_ATTEMPTS: "100",
          RELAY_ATTEMPT_TIMEOUT: "5 seconds",
          RELAY_CONCURRENCY: "16"
        }
        let generation = 0
        const relays: Array<RelayProcess> = []
        const finished: Array<RelayProcess> = []
        const spawnRelay = () => startRelay(`chaos-relay-${++generation}`, env)
        for (let index = 0; index < RELAYS; index++) relays.push(spawnRelay())
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const relay of relays) relay.child.kill("SIGKILL")
          })
        )

        // The producer: every tenant is created, activated, suspended and deleted, a few at a time, with pauses.
        const events: Array<TenantEvent> = []
        const lifeOf = (index: number) =>
          Effect.gen(function*() {
            const created = yield* TenantLifecycle.create(
              yield* TenantLifecycle.newTenantId,
              {
                code: uniqueCode("chaos"),
                name: `Chaos ${index}`,
                contact: index % 2 === 0
                  ? { email: `admin${index}@chaos.test`, phone: `+86138${String(index).padStart(8, "0")}` }
                  : { email: `admin${index}@chaos.test`, locale: "en" }
              },
              yield* TenantLifecycle.stamp({ actor: "chaos" })
            )
            yield* repository.insert(created.tenant, created.event)
            events.push(created.event)
            let tenant: Tenant = created.tenant
            for (const step of [TenantLifecycle.activate, TenantLifecycle.suspend, TenantLifecycle.softDelete]) {
              yield* pause(between(0, 300))
              const next = yield* step(tenant, yield* TenantLifecycle.stamp({ actor: "chaos", reason: "chaos test" }))
              yield* repository.save(next.tenant, [next.event], tenant.version)
              events.push(next.event)
              tenant = next.tenant
            }
          })
        let producing = true
        const producer = Effect.forEach(Array.from({ length: TENANTS }, (_, index) => index), lifeOf, {
          concurrency: 8,
          discard: true
        }).pipe(Effect.ensuring(Effect.sync(() => (producing = false))))

        // Provider faults, timed by the servers' own progress so that they hit while messages flow: connections
        // dropped after the message, then a stretch of refusals on each server, then more drops.
        const until = (condition: () => boolean) =>
          Effect.gen(function*() {
            const giveUp = Date.now() + 30_000
            while (!condition() && Date.now() < giveUp) yield* pause(20)
          })
        const faults = Effect.gen(function*() {
          yield* until(() => smtp.accepted().length >= 60)
          smtp.script("drop-after-body", "accept", "drop-after-body")
          sms.script("accept-then-drop", "200", "accept-then-drop")
          yield* until(() => smtp.accepted().length >= 150)
          smtp.setFallback("451")
          sms.setFallback("503")
          // At least 1.5 s, and until the gateway has refused a few requests: SMS are one message in eight, and
          // with relays being killed a short stretch can pass without one.
          const refusedSms = () => sms.received().filter((request) => request.reply === "503").length
          const outageEnds = Date.now() + 1500
          yield* until(() => Date.now() >= outageEnds && refusedSms() >= 2)
          smtp.setFallback("accept")
          sms.setFallback("200")
          yield* until(() => smtp.accepted().length >= 300)
          smtp.script("drop-after-body", "drop-after-body")
          sms.script("accept-then-drop")
        })

        // The killer: SIGKILL a random relay every 0.8-2 s and start another in its place (a relay takes about a
        // second to start from source, so each relay lives long enough to claim and send).
        let kills = 0
        const killer = Effect.gen(function*() {
          while (producing || kills < MIN_KILLS) {
            yield* pause(between(800, 2000))
            const victim = Math.floor(Math.random() * relays.length)
            const relay = relays[victim]
            if (relay === undefined) continue
            relay.child.kill("SIGKILL")
            yield* Effect.promise(() => relay.exited)
            kills++
            relays[victim] = spawnRelay()
          }
        })

        const started = Date.now()
        yield* Effect.all([producer, faults, killer], { concurrency: "unbounded", discard: true })
        const chaosSeconds = (Date.now() - started) / 1000

        // Settle: the surviving relays finish the work, within a deadline.
        const deadline = Date.now() + 60_000
        for (;;) {
          const [counts] = yield* sql<{ open: number; unexpanded: number }>`
            SELECT
              (SELECT count(*)::int FROM tenant_deliveries WHERE status = 'pending') AS open,
              (SELECT count(*)::int FROM tenant_outbox WHERE expanded_at IS NULL) AS unexpanded`
          if (counts !== undefined && counts.open === 0 && counts.unexpanded === 0) break
          if (Date.now() > deadline) {
            assert.fail(`work left after 60 s: ${JSON.stringify(counts)}\n${relays.map((r) => r.output()).join("\n")}`)
          }
          yield* pause(200)
        }
        const settledSeconds = (Date.now() - started) / 1000

        // A graceful stop: SIGTERM, and every relay exits 0 (once it runs: before that, Node's default applies).
        yield* Effect.promise(() => Promise.all(relays.map((relay) => relay.started)))
        for (const relay of relays) relay.child.kill("SIGTERM")
        const exitCodes = yield* Effect.promise(() => Promise.all(relays.map((relay) => relay.exited)))
        finished.push(...relays.splice(0))

        const expected = events.flatMap(notificationsFor)
        const rows = yield* sql<Row>`
          SELECT message_key, channel, status, ambiguous_attempts, attempts FROM tenant_deliveries`
        const byKey = new Map(rows.map((row) => [row.message_key, row]))
        const outcomes = yield* sql<{ channel: string; outcome: string; count: number }>`
          SELECT d.channel, a.outcome, count(*)::int AS count
          FROM tenant_delivery_attempts a JOIN tenant_deliveries d ON d.id = a.delivery_id
          GROUP BY d.channel, a.outcome`
        const attemptsEnded = (channel: string, outcome: string) =>
          outcomes.find((row) => row.channel === channel && row.outcome === outcome)?.count ?? 0
        const ambiguous_recorded = attemptsEnded("email", "Ambiguous") + attemptsEnded("sms", "Ambiguous")

        // Copies each server holds: e-mail by Message-ID (a body read and then dropped counts: it may have been
        // delivered), SMS by idempotency key.
        const emailCopies = new Map<string, number>()
        for (const message of smtp.received()) {
          if (message.behaviour !== "accept" && message.behaviour !== "drop-after-body") continue
          if (message.messageId !== undefined) {
            emailCopies.set(message.messageId, (emailCopies.get(message.messageId) ?? 0) + 1)
          }
        }
        const smsRequestsPerKey = new Map<string, number>()
        for (const request of sms.received()) {
          const key = request.headers["idempotency-key"]
          if (key !== undefined) smsRequestsPerKey.set(key, (smsRequestsPerKey.get(key) ?? 0) + 1)
        }

        let lost = 0
        let smsTakenTwice = 0
        let emailDuplicates = 0
        let duplicatesMatched = 0
        let unaccounted = 0
        let smsResentUnderKey = 0
        for (const { channel, message } of expected) {
          const row = byKey.get(message.key)
          if (channel === "sms") {
            const key = digestOf(message.key)
            const taken = sms.acceptedCount(key)
            if (taken === 0) lost++
            if (taken > 1) smsTakenTwice++
            if ((smsRequestsPerKey.get(key) ?? 0) > 1) smsResentUnderKey++
            continue
          }
          const copies = emailCopies.get(messageIdFor(message.key, MAIL_FROM)) ?? 0
          if (copies === 0) lost++
          if (copies > 1) {
            emailDuplicates += copies - 1
            if (row !== undefined && row.ambiguous_attempts >= copies - 1) duplicatesMatched += copies - 1
            else unaccounted += copies - 1
          }
        }
        // The SMS bodies must be distinct too: the same message under two keys would slip past the dedupe.
        const smsBodies = new Set(sms.accepted().map((accepted) => accepted.body))
        const dead = rows.filter((row) => row.status === "dead").length
        const delivered = rows.filter((row) => row.status === "delivered").length

        const report = {
          events: events.length,
          messages: expected.length,
          emails: expected.filter((n) => n.channel === "email").length,
          sms: expected.filter((n) => n.channel === "sms").length,
          kills,
          relaysStarted: generation,
          lost,
          delivered,
          dead,
          emailDuplicates,
          duplicatesMatchedByAmbiguousAttempts: duplicatesMatched,
          unaccountedDuplicates: unaccounted,
          smsTakenTwice,
          smsResentUnderSameKey: smsResentUnderKey,
          ambiguousAttemptsRecorded: ambiguous_recorded,
          transientAttempts: { email: attemptsEnded("email", "Transient"), sms: attemptsEnded("sms", "Transient") },
          smtpBodiesRead: smtp.received().length,
          smsRequests: sms.received().length,
          chaosSeconds,
          settledSeconds
        }
        console.log(`outbox chaos: ${JSON.stringify(report)}`)

        assert.isAtLeast(report.events, 800)
        assert.isAtLeast(kills, MIN_KILLS)
        assert.strictEqual(rows.length, expected.length, "one ledger row per message the events call for")
        for (const { message } of expected) assert.isTrue(byKey.has(message.key), `no ledger row for ${message.key}`)
        assert.strictEqual(lost, 0, "messages that reached no server")
        assert.strictEqual(dead, 0, "dead letters")
        assert.strictEqual(delivered, expected.length)
        assert.strictEqual(smsTakenTwice, 0, "SMS taken twice under one idempotency key")
        assert.strictEqual(smsBodies.size, sms.accepted().length, "one SMS taken twice under different keys")
        assert.strictEqual(unaccounted, 0, "e-mail copies without an ambiguous attempt in the ledger")
        assert.isAbove(ambiguous_recorded, 0, "the run produced ambiguous attempts")
        assert.isAbove(report.transientAttempts.email, 0, "the SMTP server's refusals hit attempts")
        assert.isAbove(report.transientAttempts.sms, 0, "the SMS gateway's failures hit attempts")
        assert.deepStrictEqual(exitCodes, exitCodes.map(() => 0), "relays stop gracefully on SIGTERM")
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})
