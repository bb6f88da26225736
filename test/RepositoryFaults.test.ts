/**
 * The PostgreSQL repository under network faults, through a fault-injecting TCP proxy of ours: a COMMIT whose
 * answer is lost, a connection killed inside a transaction, a network that silently drops everything, and a
 * mixed load through resets, held bytes, silent drops, refusals and latency. Every operation must end within the
 * repository's timeout with a value or a typed error (never a defect), a write whose outcome was unknown must be
 * resolved or safely retried, no acknowledged write may be missing, and the pool must serve again soon after
 * each fault ends.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import * as Postgres from "../src/Postgres.js"
import type { Tenant } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import type { FaultMode, FaultProxy } from "./utils/faultProxy.js"
import { makeFaultProxy } from "./utils/faultProxy.js"
import { DATABASE_URL, freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { newTenant, stampAt } from "./utils/tenants.js"

const TIMEOUT_MILLIS = 4_000
const QUERY_TIMEOUT_MILLIS = 1_000

/** A direct client (not through the proxy) for looking at what was stored and for arranging faults. */
const directClient = (schema: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: urlWithSchema(schema) })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end())
  )

/** A repository whose every connection goes through a fault proxy, in a fresh schema. */
const setUp = (options: { readonly maxConnections?: number } = {}) =>
  Effect.gen(function*() {
    const schema = yield* freshSchemaNamed("faults")
    const server = new URL(DATABASE_URL)
    const proxy = yield* makeFaultProxy({ targetPort: Number(server.port || 5432) })
    const context = yield* Layer.build(
      TenantRepositoryPg.layer({ timeout: `${TIMEOUT_MILLIS} millis` }).pipe(
        Layer.provideMerge(Postgres.layer({
          url: Redacted.make(proxy.url(urlWithSchema(schema))),
          maxConnections: options.maxConnections ?? 5,
          connectTimeout: "1 second",
          queryTimeout: `${QUERY_TIMEOUT_MILLIS} millis`
        }))
      )
    )
    const repository = Context.get(context, TenantRepository.TenantRepository)
    const direct = yield* directClient(schema)
    return { schema, proxy, repository, direct }
  })

const query = <A extends pg.QueryResultRow>(client: pg.Client, text: string, values: Array<unknown> = []) =>
  Effect.promise(() => client.query<A>(text, values)).pipe(Effect.map((result) => result.rows))

/** Makes every COMMIT of this tenant's writes take `seconds` on the server, before it commits. */
const slowCommitOf = (client: pg.Client, tenant: Tenant, seconds: number) =>
  Effect.zipRight(
    query(
      client,
      `CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM pg_sleep(${seconds}); RETURN NULL; END $$`
    ),
    query(
      client,
      `CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON tenant_outbox DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW WHEN (NEW.tenant_id = '${tenant.id}') EXECUTE FUNCTION slow_commit()`
    )
  )

const storedVersion = (client: pg.Client, tenant: Tenant) =>
  Effect.map(
    query<{ version: number }>(client, "SELECT version FROM tenants WHERE id = $1", [tenant.id]),
    (rows) => rows[0]?.version
  )

const outboxCount = (client: pg.Client, events: ReadonlyArray<TenantEvent>) =>
  Effect.map(
    query<{ count: number }>(client, "SELECT count(*)::int AS count FROM tenant_outbox WHERE event_id = ANY($1)", [
      events.map((event) => event.eventId)
    ]),
    (rows) => rows[0]?.count ?? 0
  )

/** Runs `effect` and says how long it took. */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const exit = yield* Effect.exit(effect)
    return { exit, millis: performance.now() - start }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const setMode = (proxy: FaultProxy, mode: FaultMode) => proxy.setMode(mode)

/**
 * A stored tenant whose next save's COMMIT takes `commitSeconds` on the server, and that save, started: the
 * network drops every byte from `dropAfter` ms on, for `dropFor` ms (or for good), so the COMMIT's answer is lost.
 */
const saveWithLostCommit = (
  options: { readonly commitSeconds: number; readonly dropAfter: number; readonly dropFor?: number }
) =>
  Effect.gen(function*() {
    const { direct, proxy, repository } = yield* setUp()
    const { event, tenant } = yield* newTenant()
    yield* repository.insert(tenant, event)
    yield* slowCommitOf(direct, tenant, options.commitSeconds)
    const next = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
    const save = yield* Effect.fork(timed(repository.save(next.tenant, [next.event], tenant.version)))
    yield* Effect.sleep(`${options.dropAfter} millis`)
    yield* setMode(proxy, "drop")
    if (options.dropFor !== undefined) {
      yield* Effect.sleep(`${options.dropFor} millis`)
      yield* setMode(proxy, "pass")
    }
    const { exit, millis } = yield* Effect.flatten(save.await)
    return { direct, proxy, repository, tenant, next, exit, millis }
  })

describe("TenantRepositoryPg.layer() under network faults", () => {
  it.live("a COMMIT whose answer is lost after the server committed: the save succeeds, stored once", () =>
    Effect.scoped(Effect.gen(function*() {
      // The COMMIT reaches the server, which commits 0.5 s later; its answer is dropped.
      const { direct, exit, millis, next, repository, tenant } = yield* saveWithLostCommit({
        commitSeconds: 0.5,
        dropAfter: 200,
        dropFor: QUERY_TIMEOUT_MILLIS + 200
      })
      assert.isTrue(
        Exit.isSuccess(exit),
        `expected success, got ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`
      )
      assert.isBelow(millis, TIMEOUT_MILLIS + 500)
      assert.strictEqual(yield* storedVersion(direct, tenant), 2)
      assert.strictEqual(yield* outboxCount(direct, [next.event]), 1)
      // And a retry with the same events, as after an unknown outcome, succeeds without storing it twice.
      yield* repository.save(next.tenant, [next.event], tenant.version)
      assert.strictEqual(yield* outboxCount(direct, [next.event]), 1)
    })))

  it.live("a COMMIT the server never finished: its transaction is ended, nothing is stored, the row is free", () =>
    Effect.scoped(Effect.gen(function*() {
      // Long enough that the COMMIT is still running when the repository asks about it.
      const { direct, exit, millis, next, repository, tenant } = yield* saveWithLostCommit({
        commitSeconds: 30,
        dropAfter: 200,
        dropFor: QUERY_TIMEOUT_MILLIS + 200
      })
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "RepositoryError")
      if (error._tag === "RepositoryError") {
        assert.isUndefined(error.reason, error.message)
        assert.match(error.message, /nothing was stored/)
      }
      assert.isBelow(millis, TIMEOUT_MILLIS + 500)
      assert.strictEqual(yield* storedVersion(direct, tenant), 1)
      assert.strictEqual(yield* outboxCount(direct, [next.event]), 0)
      // The transaction's row lock is gone with it: the same save goes through now.
      yield* query(direct, "DROP TRIGGER slow_commit ON tenant_outbox")
      yield* repository.save(next.tenant, [next.event], tenant.version)
      assert.strictEqual(yield* storedVersion(direct, tenant), 2)
    })))

  it.live("a database that stays silent past the deadline: the write fails as OutcomeUnknown, and its retry succeeds", () =>
    Effect.scoped(Effect.gen(function*() {
      const { direct, exit, millis, next, proxy, repository, tenant } = yield* saveWithLostCommit({
        commitSeconds: 0.3,
        dropAfter: 150
      })
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "RepositoryError")
      if (error._tag === "RepositoryError") assert.strictEqual(error.reason, "OutcomeUnknown")
      assert.isAtMost(millis, TIMEOUT_MILLIS + 500)
      yield* setMode(proxy, "pass")
      // It did commit (the server got the COMMIT); the retry must say so, not ConcurrencyConflict.
      yield* repository.save(next.tenant, [next.event], tenant.version)
      assert.strictEqual(yield* storedVersion(direct, tenant), 2)
      assert.strictEqual(yield* outboxCount(direct, [next.event]), 1)
    })))

  it.live("a connection terminated while its save waits on a row lock: a typed RepositoryError, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const { direct, repository, schema } = yield* setUp()
      const { event, tenant } = yield* newTenant()
      yield* repository.insert(tenant, event)
      const locker = yield* directClient(schema)
      yield* query(locker, "BEGIN")
      yield* query(locker, "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", [tenant.id])
      const next = yield* TenantLifecycle.activate(tenant, stampAt(new Date()))
      const save = yield* Effect.fork(Effect.exit(repository.save(next.tenant, [next.event], tenant.version)))
      // Wait for the save to be blocked on the lock, then end its server process.
      let waiting: ReadonlyArray<{ pid: number }> = []
      for (let tries = 0; tries < 50 && waiting.length === 0; tries++) {
        yield* Effect.sleep("50 millis")
        waiting = yield* query<{ pid: number }>(
          direct,
          "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE tenants%'"
        )
      }
      assert.lengthOf(waiting, 1)
      yield* query(direct, "SELECT pg_terminate_backend($1)", [waiting[0]?.pid])
      const exit = yield* save.await.pipe(Effect.flatten)
      yield* query(locker, "ROLLBACK")
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "RepositoryError")
      assert.strictEqual(yield* storedVersion(direct, tenant), 1)
    })))

  it.live("a network that silently drops everything: every call ends in time, typed; the pool serves again after", () =>
    Effect.scoped(Effect.gen(function*() {
      const { proxy, repository } = yield* setUp({ maxConnections: 4 })
      const tenants: Array<Tenant> = []
      for (let i = 0; i < 4; i++) {
        const { event, tenant } = yield* newTenant()
        yield* repository.insert(tenant, event)
        tenants.push(tenant)
      }
      const tenant0 = tenants[0]
      if (tenant0 === undefined) return assert.fail("no tenant")
      yield* setMode(proxy, "drop")
      // More calls than connections, so that every pooled connection hangs.
      const calls = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => tenants[i % tenants.length] ?? tenant0),
        (tenant) => timed(repository.findById(tenant.id)),
        { concurrency: "unbounded" }
      )
      for (const { exit, millis } of calls) {
        assert.isAtMost(millis, TIMEOUT_MILLIS + 500)
        assert.strictEqual(failureOf(exit)._tag, "RepositoryError")
      }
      yield* setMode(proxy, "pass")
      const back = performance.now()
      let served = false
      while (!served && performance.now() - back < 10_000) {
        served = Exit.isSuccess(yield* Effect.exit(repository.findById(tenant0.id)))
        if (!served) yield* Effect.sleep("50 millis")
      }
      const recovery = performance.now() - back
      assert.isTrue(served)
      assert.isBelow(recovery, 5_000, `the pool served again only after ${Math.round(recovery)} ms`)
      // Every connection, not just one: four lookups at once all succeed.
      const all = yield* Effect.forEach(tenants, (tenant) => Effect.exit(repository.findById(tenant.id)), {
        concurrency: "unbounded"
      })
      assert.isTrue(all.every(Exit.isSuccess))
    })))
})

interface Counts {
  attempted: number
  ok: number
  typed: Record<string, number>
  defects: number
  overTime: number
  retryRefused: number
}

describe("TenantRepositoryPg.layer() under a mixed load through every fault", () => {
  it.live(
    "counts: no defect, nothing over time, no acknowledged write lost, a retry never refused",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { direct, proxy, repository } = yield* setUp({ maxConnections: 6 })
        const counts: Counts = { attempted: 0, ok: 0, typed: {}, defects: 0, overTime: 0, retryRefused: 0 }
        const acknowledged = new Map<string, { version: number; events: Array<string> }>()
        let running = true

        const run = <A, E extends { readonly _tag: string; readonly reason?: string | undefined }>(
          effect: Effect.Effect<A, E>,
          label = "write"
        ) =>
          Effect.gen(function*() {
            counts.attempted++
            const { exit, millis } = yield* timed(effect)
            if (millis > TIMEOUT_MILLIS + 500) counts.overTime++
            if (Exit.isSuccess(exit)) counts.ok++
            else {
              const failure = Cause.failureOption(exit.cause)
              if (Option.isSome(failure)) {
                const tag = failure.value.reason === undefined
                  ? failure.value._tag
                  : `${failure.value._tag}:${failure.value.reason}`
                counts.typed[tag] = (counts.typed[tag] ?? 0) + 1
              } else {
                counts.defects++
                console.log(`repository fault load: a defect in ${label}`, Cause.pretty(exit.cause))
              }
            }
            return exit
          })

        /** A write retried with the same events until it succeeds, as a caller would after a store failure. */
        const write = (
          tenant: Tenant,
          events: ReadonlyArray<TenantEvent>,
          attempt: Effect.Effect<void, { readonly _tag: string; readonly reason?: string }>
        ) =>
          Effect.gen(function*() {
            for (let tries = 0; tries < 60; tries++) {
              const exit = yield* run(attempt)
              if (Exit.isSuccess(exit)) {
                const known = acknowledged.get(tenant.id)
                acknowledged.set(tenant.id, {
                  version: tenant.version,
                  events: [...(known?.events ?? []), ...events.map((event) => event.eventId)]
                })
                return true
              }
              const failure = Cause.failureOption(exit.cause)
              if (Option.isNone(failure) || failure.value._tag !== "RepositoryError") {
                if (tries > 0) counts.retryRefused++
                return false
              }
              yield* Effect.sleep("200 millis")
            }
            return false
          })

        const worker = Effect.gen(function*() {
          const mine: Array<Tenant> = []
          while (running) {
            const dice = Math.random()
            const tenant = mine[Math.floor(Math.random() * mine.length)]
            if (tenant === undefined || dice < 0.2) {
              const created = yield* newTenant()
              if (yield* write(created.tenant, [created.event], repository.insert(created.tenant, created.event))) {
                mine.push(created.tenant)
              }
            } else if (dice < 0.5) {
              const step = tenant.status === "active" ? TenantLifecycle.suspend : TenantLifecycle.activate
              const next = yield* step(tenant, stampAt(new Date()))
              if (yield* write(next.tenant, [next.event], repository.save(next.tenant, [next.event], tenant.version))) {
                mine[mine.indexOf(tenant)] = next.tenant
              }
            } else if (dice < 0.9) {
              yield* run(repository.findById(tenant.id), "findById")
            } else {
              yield* run(repository.list({ pageSize: 10, status: "active" }), "list")
            }
          }
        })

        const probe = yield* newTenant()
        yield* repository.insert(probe.tenant, probe.event)
        /** How long after a fault ends the repository serves again (one lookup at a time, while the load runs). */
        const recoveryAfter = (label: string, recoveries: Record<string, number>) =>
          Effect.gen(function*() {
            const back = performance.now()
            while (Exit.isFailure(yield* Effect.exit(repository.findById(probe.tenant.id)))) {
              if (performance.now() - back > 15_000) break
              yield* Effect.sleep("20 millis")
            }
            recoveries[label] = Math.round(performance.now() - back)
          })

        const workers = yield* Effect.fork(Effect.all(Array.from({ length: 8 }, () => worker), { concurrency: 8 }))
        const recoveries: Record<string, number> = {}
        const phases: ReadonlyArray<readonly [label: string, mode: FaultMode | "resetAll", millis: number]> = [
          ["reset", "resetAll", 0],
          ["hold", "hold", 2_000],
          ["drop", "drop", 2_500],
          ["refuse", "refuse", 1_500],
          ["latency", { _tag: "latency", millis: 150 }, 1_500]
        ]
        yield* Effect.sleep("1500 millis")
        for (const [label, mode, millis] of phases) {
          if (mode === "resetAll") yield* proxy.resetAll
          else yield* setMode(proxy, mode)
          yield* Effect.sleep(`${millis} millis`)
          yield* setMode(proxy, "pass")
          yield* recoveryAfter(label, recoveries)
          yield* Effect.sleep("1500 millis")
        }
        running = false
        // The workers themselves never fail: every outcome is counted.
        assert.isTrue(Exit.isSuccess(yield* workers.await))

        // Every acknowledged write is in the database, checked directly.
        let lost = 0
        for (const [id, { events, version }] of acknowledged) {
          const rows = yield* query<{ version: number }>(direct, "SELECT version FROM tenants WHERE id = $1", [id])
          const stored = yield* query<{ count: number }>(
            direct,
            "SELECT count(*)::int AS count FROM tenant_outbox WHERE event_id = ANY($1)",
            [events]
          )
          if (rows[0]?.version !== version) lost++
          lost += events.length - (stored[0]?.count ?? 0)
        }
        console.log(
          "repository fault load",
          JSON.stringify({ ...counts, acknowledgedTenants: acknowledged.size, lost, recoveries })
        )
        assert.isAbove(counts.ok, 500)
        assert.isAbove(Object.values(counts.typed).reduce((a, b) => a + b, 0), 0, "no fault was seen")
        assert.strictEqual(counts.defects, 0)
        assert.strictEqual(counts.overTime, 0)
        assert.strictEqual(counts.retryRefused, 0)
        assert.strictEqual(lost, 0)
        for (const [label, millis] of Object.entries(recoveries)) {
          assert.isBelow(millis, 5_000, `served again ${millis} ms after ${label} ended`)
        }
      })),
    { timeout: 90_000 }
  )
})
