/**
 * The chaos test of the outbox relay: tenants walk through their lifecycle in PostgreSQL while relays, each in
 * its own process, are killed with SIGKILL (preferably while they hold claims) and restarted, the SMTP server
 * refuses mail for a stretch, the SMS gateway fails for a stretch, and both drop connections after taking a
 * message. Afterwards:
 * - every e-mail has a copy the SMTP server acknowledged to the relay (a copy taken and then dropped proves
 *   nothing: the relay must have sent it again), and every copy beyond the first is matched by an ambiguous
 *   attempt in the ledger;
 * - every SMS went to the gateway under one idempotency key, however often it was sent, so the deduplicating
 *   gateway took each exactly once; resends after a lost answer happened and were recognised by their key;
 * - kills hit relays holding claims, and those claims were taken over as interrupted attempts.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { INTERRUPTED_DETAIL } from "../src/internal/ledgerRules.js"
import { messageIdFor } from "../src/internal/messageRules.js"
import type { Tenant } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import { notificationsFor } from "../src/TenantNotifications.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import type { RelayProcess } from "./utils/relayProcess.js"
import { startRelay } from "./utils/relayProcess.js"
import type { ReceivedRequest } from "./utils/smsGateway.js"
import { makeSmsGatewayServer } from "./utils/smsGateway.js"
import { makeSmtpServer } from "./utils/smtpServer.js"
import { uniqueCode } from "./utils/tenants.js"

const TENANTS = 200
const RELAYS = 3
const MIN_KILLS = 10
/** Kills that must hit a relay holding claims: an idle relay's death tests only the restart. */
const MIN_KILLS_HOLDING_CLAIMS = 3
const MAIL_FROM = "noreply@chaos.test"

const pause = (millis: number) => Effect.sleep(`${Math.round(millis)} millis`)
const between = (low: number, high: number) => low + Math.random() * (high - low)

/** What an SMS request carries besides its key: the same message sent again has the same number and text. */
const decodeSmsBody = Schema.decodeUnknownSync(
  Schema.parseJson(Schema.Struct({ to: Schema.String, text: Schema.String }))
)
const smsIdentity = (sms: { readonly to: string; readonly text: string }) => `${sms.to}\n${sms.text}`

interface Row {
  readonly message_key: string
  readonly channel: "email" | "sms"
  readonly status: string
  readonly ambiguous_attempts: number
  readonly attempts: number
}

describe("OutboxRelay chaos", () => {
  it.live(
    `${TENANTS} tenants, ${RELAYS} relays killed, some holding claims: nothing lost, every duplicate accounted for`,
    () =>
      Effect.gen(function*() {
        const schema = yield* freshSchemaNamed("chaos")
        const url = urlWithSchema(schema)
        const smtp = yield* makeSmtpServer()
        const sms = yield* makeSmsGatewayServer({ dedupe: true })
        const context = yield* Layer.build(
          TenantRepositoryPg.layer().pipe(
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
          // At least 1.5 s, and until a relay has recorded a refused SMS attempt: SMS are one message in eight, and
          // with relays being killed (a refusal taken by a relay killed before it records it ends as an
          // interrupted attempt) or a loaded machine, a short stretch can pass without one.
          const refusedSms = () => sms.received().filter((request) => request.reply === "503").length
          const transientSmsRecorded = Effect.map(
            sql<{ count: number }>`
              SELECT count(*)::int AS count FROM tenant_delivery_attempts a
              JOIN tenant_deliveries d ON d.id = a.delivery_id WHERE d.channel = 'sms' AND a.outcome = 'Transient'`,
            (rows) => (rows[0]?.count ?? 0) > 0
          )
          const outageEnds = Date.now() + 1500
          const outageGivesUp = Date.now() + 30_000
          while (Date.now() < outageGivesUp) {
            if (Date.now() >= outageEnds && refusedSms() >= 2 && (yield* transientSmsRecorded)) break
            yield* pause(50)
          }
          smtp.setFallback("accept")
          sms.setFallback("200")
          yield* until(() => smtp.accepted().length >= 300)
          smtp.script("drop-after-body", "drop-after-body")
          sms.script("accept-then-drop")
        })

        // The killer: every 0.8-2 s, SIGKILL a relay and start another in its place. Until MIN_KILLS_HOLDING_CLAIMS
        // kills have cut off claims, the victim is a relay that holds leases, waited for while the producer runs
        // (2 s at most after): a random victim is often a relay still starting (one takes a second or more to start
        // from source, many more on a busy machine), and a run could end without any kill that tested a takeover.
        // The other kills take any relay. What the victim held is read once it is dead, when it can no longer
        // finish anything: its attempts still open are the claims the kill cut off.
        const leasesHeld = (names: ReadonlyArray<string>) =>
          sql<{ relay: string }>`
            SELECT DISTINCT lease_owner AS relay FROM tenant_deliveries
            WHERE status = 'pending' AND lease_until > now() AND lease_owner IN ${sql.in(names)}`
        const openAttemptsOf = (relay: string) =>
          sql<{ open: number }>`
            SELECT count(*)::int AS open FROM tenant_delivery_attempts WHERE relay = ${relay} AND finished_at IS NULL`
        const busyRelays = Effect.map(
          Effect.suspend(() => leasesHeld(relays.map((relay) => relay.name))),
          (rows) => {
            const holding = new Set(rows.map((row) => row.relay))
            return relays.flatMap((relay, index) => holding.has(relay.name) ? [index] : [])
          }
        )
        let kills = 0
        let killsHoldingClaims = 0
        let claimsCutOff = 0
        const victims: Array<string> = []
        const killer = Effect.gen(function*() {
          while (producing || kills < MIN_KILLS) {
            yield* pause(between(800, 2000))
            const targeted = killsHoldingClaims < MIN_KILLS_HOLDING_CLAIMS
            const giveUp = Date.now() + 2000
            let busy = targeted ? yield* busyRelays : []
            while (targeted && busy.length === 0 && (producing || Date.now() < giveUp)) {
              yield* pause(50)
              busy = yield* busyRelays
            }
            const victim = busy.length > 0
              ? busy[Math.floor(Math.random() * busy.length)] ?? 0
              : Math.floor(Math.random() * relays.length)
            const relay = relays[victim]
            if (relay === undefined) continue
            relay.child.kill("SIGKILL")
            yield* Effect.promise(() => relay.exited)
            kills++
            victims.push(relay.name)
            const open = (yield* openAttemptsOf(relay.name))[0]?.open ?? 0
            if (open > 0) killsHoldingClaims++
            claimsCutOff += open
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
        // The claims the kills cut off, as the relays that took them over recorded them.
        const [takenOver] = yield* sql<{ interrupted: number; open: number }>`
          SELECT
            count(*) FILTER (WHERE outcome = 'Ambiguous' AND detail = ${INTERRUPTED_DETAIL})::int AS interrupted,
            count(*) FILTER (WHERE finished_at IS NULL)::int AS open
          FROM tenant_delivery_attempts WHERE relay IN ${sql.in(victims)}`

        // E-mail copies by Message-ID: those the server acknowledged to the relay, and those it took without the
        // relay hearing of it (dropped after the body, or the relay killed before the answer). A dropped copy
        // may reach the recipient, so it counts as a copy, but never as the delivery: the relay cannot know of it.
        const emailCopies = new Map<string, { acknowledged: number; dropped: number }>()
        for (const message of smtp.received()) {
          if (message.answer === "refused" || message.messageId === undefined) continue
          const copies = emailCopies.get(message.messageId) ?? { acknowledged: 0, dropped: 0 }
          if (message.answer === "acknowledged") copies.acknowledged++
          else copies.dropped++
          emailCopies.set(message.messageId, copies)
        }
        // Every request the SMS gateway read, by the message it carried rather than by its key: a resend under a
        // fresh key must show up as the same message taken twice.
        const smsRequests = new Map<string, Array<ReceivedRequest>>()
        for (const request of sms.received()) {
          const identity = smsIdentity(decodeSmsBody(request.body))
          smsRequests.set(identity, [...(smsRequests.get(identity) ?? []), request])
        }

        let lost = 0
        let emailsOnlyInDroppedCopies = 0
        let emailDuplicates = 0
        let duplicatesMatched = 0
        let unaccounted = 0
        let smsTakenTwice = 0
        let smsUnderSeveralKeys = 0
        let smsResent = 0
        for (const { channel, message } of expected) {
          const row = byKey.get(message.key)
          if (channel === "sms") {
            const requests = smsRequests.get(smsIdentity(message)) ?? []
            const taken = requests.filter((request) => request.taken === "new").length
            if (taken === 0) lost++
            if (taken > 1) smsTakenTwice++
            if (new Set(requests.map((request) => request.headers["idempotency-key"])).size > 1) smsUnderSeveralKeys++
            if (requests.length > 1) smsResent++
            continue
          }
          const copies = emailCopies.get(messageIdFor(message.key, MAIL_FROM)) ?? { acknowledged: 0, dropped: 0 }
          if (copies.acknowledged === 0) {
            lost++
            if (copies.dropped > 0) emailsOnlyInDroppedCopies++
          }
          const held = copies.acknowledged + copies.dropped
          if (held > 1) {
            emailDuplicates += held - 1
            if (row !== undefined && row.ambiguous_attempts >= held - 1) duplicatesMatched += held - 1
            else unaccounted += held - 1
          }
        }
        const emailCopiesDropped = smtp.received().filter((message) => message.answer === "dropped").length
        // Requests the gateway took whose answer never reached the relay (the connection cut after taking it, or
        // the relay killed), and replays: requests under a key the gateway had taken before, the resends.
        const smsAnswersLost = sms.received().filter((request) => request.taken !== "none" && !request.answered).length
        const smsReplays = sms.received().filter((request) => request.taken === "replay").length
        const dead = rows.filter((row) => row.status === "dead").length
        const delivered = rows.filter((row) => row.status === "delivered").length

        const report = {
          events: events.length,
          messages: expected.length,
          emails: expected.filter((n) => n.channel === "email").length,
          sms: expected.filter((n) => n.channel === "sms").length,
          kills,
          killsHoldingClaims,
          claimsCutOff,
          claimsTakenOverAsInterrupted: takenOver?.interrupted ?? 0,
          relaysStarted: generation,
          lost,
          emailsOnlyInDroppedCopies,
          delivered,
          dead,
          emailCopiesDropped,
          emailDuplicates,
          duplicatesMatchedByAmbiguousAttempts: duplicatesMatched,
          unaccountedDuplicates: unaccounted,
          smsResent,
          smsAnswersLost,
          smsReplays,
          smsTakenTwice,
          smsUnderSeveralKeys,
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
        assert.isAtLeast(killsHoldingClaims, MIN_KILLS_HOLDING_CLAIMS, "kills that hit a relay holding claims")
        assert.strictEqual(takenOver?.open, 0, "attempts of killed relays never closed")
        assert.isAtLeast(takenOver?.interrupted ?? 0, claimsCutOff, "claims cut off by kills and not taken over")
        assert.strictEqual(rows.length, expected.length, "one ledger row per message the events call for")
        for (const { message } of expected) assert.isTrue(byKey.has(message.key), `no ledger row for ${message.key}`)
        assert.isAbove(emailCopiesDropped, 0, "the run dropped e-mail connections after the body")
        assert.strictEqual(emailsOnlyInDroppedCopies, 0, "e-mails whose only copies the relay never heard accepted")
        assert.strictEqual(lost, 0, "messages without a copy their server acknowledged (e-mail) or took (SMS)")
        assert.strictEqual(dead, 0, "dead letters")
        assert.strictEqual(delivered, expected.length)
        assert.strictEqual(smsUnderSeveralKeys, 0, "SMS sent under more than one idempotency key")
        assert.strictEqual(smsTakenTwice, 0, "SMS the deduplicating gateway took twice")
        assert.isAbove(smsAnswersLost, 0, "the run lost the answers to SMS the gateway took")
        assert.isAbove(smsReplays, 0, "SMS resent after a lost answer, recognised by their key")
        assert.strictEqual(unaccounted, 0, "e-mail copies without an ambiguous attempt in the ledger")
        assert.isAbove(ambiguous_recorded, 0, "the run produced ambiguous attempts")
        assert.isAbove(report.transientAttempts.email, 0, "the SMTP server's refusals hit attempts")
        assert.isAbove(report.transientAttempts.sms, 0, "the SMS gateway's failures hit attempts")
        assert.deepStrictEqual(exitCodes, exitCodes.map(() => 0), "relays stop gracefully on SIGTERM")
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})
