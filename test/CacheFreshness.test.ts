/**
 * The cache's bound on staleness across processes, under real faults: two application instances, A and B, each
 * with its own cached repository, PostgreSQL pool and Redis clients, over one database and one Redis server of
 * the test's own. Writes go through A, reads through B, while Redis is stalled (SIGSTOP), A alone is cut off from
 * Redis (a fault proxy on A's connections only), and Redis is killed and started again. Every read must succeed,
 * and none may return a tenant older than a save acknowledged more than `maxStaleness` before the read began.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStoreRedis from "../src/CacheStore/Redis.js"
import * as CacheStoreTiered from "../src/CacheStore/Tiered.js"
import * as Postgres from "../src/Postgres.js"
import type { Tenant } from "../src/Tenant.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { makeFaultProxy } from "./utils/faultProxy.js"
import { freshSchemaNamed, urlWithSchema } from "./utils/postgres.js"
import { ownRedis } from "./utils/redisServer.js"
import { newTenant, stampAt } from "./utils/tenants.js"

const MAX_STALENESS_MILLIS = 2_000
const TENANTS = 40
const WRITERS = 2
const READERS = 4

type StoreKind = "redis" | "tiered"

interface Phase {
  reads: number
  failed: number
  /** Reads that returned a tenant older than a save acknowledged before the read began. */
  behind: number
  /** Reads that returned a tenant older than a save acknowledged more than the bound before the read began. */
  stale: number
  /** How long before the read the oldest save it missed was acknowledged, at worst (ms). */
  worst: number
}

const storeLayer = (kind: StoreKind, url: string, prefix: string) =>
  kind === "redis"
    ? CacheStoreRedis.layer({ url: Redacted.make(url), prefix })
    : CacheStoreTiered.layer({ url: Redacted.make(url), prefix })

const instance = (kind: StoreKind, databaseUrl: string, redisUrl: string, prefix: string) =>
  Effect.map(
    Layer.build(
      CachedTenantRepository.layer({ ttl: "10 minutes", maxStaleness: `${MAX_STALENESS_MILLIS} millis` }).pipe(
        Layer.provide(
          TenantRepositoryPg.layer().pipe(
            Layer.provide(Postgres.layer({ url: Redacted.make(databaseUrl), maxConnections: 4 }))
          )
        ),
        Layer.provide(storeLayer(kind, redisUrl, prefix))
      )
    ),
    Context.get(TenantRepository.TenantRepository)
  )

const renamed = (tenant: Tenant, name: string) =>
  Effect.map(TenantLifecycle.update(tenant, { name }, stampAt(new Date())), Option.getOrThrow)

const scenario = (kind: StoreKind, persistent: boolean) =>
  Effect.gen(function*() {
    const redis = yield* ownRedis({ persistent })
    const schema = yield* freshSchemaNamed("freshness")
    const databaseUrl = urlWithSchema(schema)
    const prefix = `freshness-${kind}-${persistent ? "kept" : "lost"}:`
    // A reaches Redis through a proxy, so that A alone can be cut off; B connects directly.
    const proxy = yield* makeFaultProxy({ targetPort: redis.port })
    const a = yield* instance(kind, databaseUrl, proxy.url(redis.url), prefix)
    const b = yield* instance(kind, databaseUrl, redis.url, prefix)

    const tenants: Array<Tenant> = []
    for (let i = 0; i < TENANTS; i++) {
      const { event, tenant } = yield* newTenant()
      yield* a.insert(tenant, event)
      tenants.push(tenant)
    }
    /** Every acknowledged save per tenant: its version and when it was acknowledged. */
    const acks = new Map<string, Array<{ readonly version: number; readonly at: number }>>()
    const phases: Record<string, Phase> = {}
    let phase = "normal"
    let running = true

    const writer = (index: number) =>
      Effect.gen(function*() {
        let round = 0
        while (running) {
          for (let i = index; i < tenants.length; i += WRITERS) {
            if (!running) break
            const current = tenants[i]
            if (current === undefined) continue
            const next = yield* renamed(current, `Renamed ${index}-${round}-${i}`)
            yield* a.save(next.tenant, [next.event], current.version)
            const at = performance.now()
            tenants[i] = next.tenant
            const list = acks.get(current.id) ?? []
            list.push({ version: next.tenant.version, at })
            acks.set(current.id, list)
            yield* Effect.sleep("15 millis")
          }
          round++
        }
      })

    const reader = Effect.gen(function*() {
      while (running) {
        const tenant = tenants[Math.floor(Math.random() * tenants.length)]
        if (tenant === undefined) continue
        const startedAt = performance.now()
        const label = phase
        const counts = phases[label] ??= { reads: 0, failed: 0, behind: 0, stale: 0, worst: 0 }
        counts.reads++
        const exit = yield* Effect.exit(b.findById(tenant.id))
        if (Exit.isFailure(exit) || Option.isNone(exit.value)) {
          counts.failed++
          continue
        }
        const version = exit.value.value.version
        const missed = (acks.get(tenant.id) ?? []).find((ack) => ack.version > version && ack.at < startedAt)
        if (missed !== undefined) {
          const age = startedAt - missed.at
          counts.behind++
          counts.worst = Math.max(counts.worst, Math.round(age))
          if (age > MAX_STALENESS_MILLIS) counts.stale++
        }
        yield* Effect.sleep("2 millis")
      }
    })

    const load = yield* Effect.fork(
      Effect.all([
        ...Array.from({ length: WRITERS }, (_, i) => writer(i)),
        ...Array.from({ length: READERS }, () => reader)
      ], {
        concurrency: "unbounded"
      })
    )
    const during = (label: string, millis: number) =>
      Effect.zipRight(
        Effect.sync(() => {
          phase = label
        }),
        Effect.sleep(`${millis} millis`)
      )

    yield* during("normal", 1_500)
    yield* redis.pause
    yield* during("stall", 3_000)
    yield* redis.resume
    yield* during("after stall", 2_500)
    // Held, then reset when the path comes back, as TCP would end connections whose bytes were lost.
    yield* proxy.setMode("hold")
    yield* during("A cut off", 3_000)
    yield* proxy.setMode("reset")
    yield* proxy.setMode("pass")
    yield* during("after cut-off", 2_500)
    yield* redis.stop
    yield* during("killed", 2_000)
    yield* redis.start
    yield* during("restarted", 3_000)
    running = false
    const ended = yield* load.await
    assert.isTrue(Exit.isSuccess(ended), "the load itself failed")

    // Settled: every tenant reads as last saved.
    for (const tenant of tenants) {
      assert.deepStrictEqual(
        Option.map(yield* b.findById(tenant.id), (found) => found.version),
        Option.some(tenant.version)
      )
    }
    const writes = [...acks.values()].reduce((sum, list) => sum + list.length, 0)
    console.log(`cache freshness [${kind}${persistent ? ", persistent" : ""}]`, JSON.stringify({ writes, phases }))
    return { writes, phases }
  })

describe("CachedTenantRepository across instances under Redis faults", () => {
  for (
    const [kind, persistent] of [["redis", true], ["redis", false], ["tiered", true], ["tiered", false]] as const
  ) {
    it.live(
      `[${kind}${
        persistent ? ", persistent" : ""
      }] no read fails, none is older than the bound, none in normal operation`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { phases, writes } = yield* scenario(kind, persistent)
          assert.isAbove(writes, 200)
          const all = Object.values(phases)
          assert.isAbove(all.reduce((sum, counts) => sum + counts.reads, 0), 1_000)
          assert.strictEqual(all.reduce((sum, counts) => sum + counts.failed, 0), 0, "failed reads")
          assert.strictEqual(all.reduce((sum, counts) => sum + counts.stale, 0), 0, "reads older than the bound")
          assert.strictEqual(phases.normal?.stale, 0)
        })),
      { timeout: 90_000 }
    )
  }
})
