import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import { randomUUID } from "node:crypto"
import { performance } from "node:perf_hooks"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import type { Tenant } from "../src/Tenant.js"
import { TenantId } from "../src/Tenant.js"
import type { TenantEvent } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import { redisBackend } from "./utils/cacheBackends.js"
import { makeFaultProxy } from "./utils/faultProxy.js"
import * as Model from "./utils/modelCommands.js"
import { DATABASE_URL, freshSchema, layerClientInFreshSchema, urlWithSchema } from "./utils/postgres.js"

type Repository = TenantRepository.TenantRepository["Type"]
type Layers = { readonly memory: Repository; readonly pg: Repository; readonly cached: Repository }
const LAYER_NAMES = ["memory", "pg", "cached"] as const

/** A PostgreSQL repository in a schema of its own, and how to empty it between sequences. */
const pgStore = Effect.gen(function*() {
  const context = yield* Layer.build(TenantRepositoryPg.layer().pipe(Layer.provideMerge(layerClientInFreshSchema)))
  const sql = Context.get(context, SqlClient.SqlClient)
  return {
    context,
    repository: Context.get(context, TenantRepository.TenantRepository),
    reset: Effect.orDie(Effect.zipRight(sql`DELETE FROM tenant_outbox`, sql`DELETE FROM tenants`))
  }
})

/** A store that records every key read or written through it. */
const recordingStore = (inner: CacheStore.CacheStore["Type"], touched: Array<string>, hits: { count: number }) =>
  CacheStore.CacheStore.of({
    ...inner,
    get: (key) =>
      Effect.tap(Effect.sync(() => touched.push(key)).pipe(Effect.zipRight(inner.get(key))), (value) => {
        if (Option.isSome(value)) hits.count++
      }),
    getMany: (keys) => Effect.zipRight(Effect.sync(() => touched.push(...keys)), inner.getMany(keys)),
    getVersioned: (key) =>
      Effect.tap(Effect.sync(() => touched.push(key)).pipe(Effect.zipRight(inner.getVersioned(key))), (read) => {
        if (Option.isSome(read.value)) hits.count++
      }),
    set: (key, value, ttl) => Effect.zipRight(Effect.sync(() => touched.push(key)), inner.set(key, value, ttl)),
    setIfVersion: (key, value, ttl, version) =>
      Effect.zipRight(Effect.sync(() => touched.push(key)), inner.setIfVersion(key, value, ttl, version))
  })

// ---------------------------------------------------------------------------------------------------------------
// Answers, as compared across the layers
// ---------------------------------------------------------------------------------------------------------------

const failureFields = (error: unknown): unknown => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return { notTagged: String(error) }
  const fields = error as Record<string, unknown>
  // A store failure keeps the driver's error as its cause: not data to compare, and it may not serialise.
  if (fields["_tag"] === "RepositoryError") {
    return {
      _tag: "RepositoryError",
      operation: fields["operation"],
      reason: fields["reason"],
      detail: fields["detail"]
    }
  }
  return { ...fields, _tag: fields["_tag"] }
}

/**
 * An answer as text: a success as the exact JSON of its value (returned tenants included, key order and all), a
 * failure as its tag and fields, a defect or an interruption as such.
 */
const render = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.match(exit, {
    onSuccess: (value) => `ok ${JSON.stringify(value) ?? "undefined"}`,
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onSome: (error) => `fail ${JSON.stringify(failureFields(error))}`,
        onNone: () => `DEFECT ${Cause.pretty(cause)}`
      })
  })

const clip = (text: string, around: number, width = 400): string => {
  const start = Math.max(0, around - width / 2)
  return (start > 0 ? "…" : "") + text.slice(start, start + width) + (start + width < text.length ? "…" : "")
}

const firstDifference = (a: string, b: string): number => {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

/** Every layer gave the same answer, and none of them a defect or a store failure. */
const checkAgreement = (label: string, answers: Record<(typeof LAYER_NAMES)[number], string>): void => {
  const [first, ...others] = LAYER_NAMES
  const reference = answers[first]
  const differing = others.filter((name) => answers[name] !== reference)
  if (differing.length > 0) {
    const at = Math.min(...differing.map((name) => firstDifference(reference, answers[name])))
    throw new Error(
      `${label}: the layers disagree (first difference at character ${at})\n` +
        LAYER_NAMES.map((name) => `  ${name}: ${clip(answers[name], at)}`).join("\n")
    )
  }
  if (reference.startsWith("DEFECT") || reference.startsWith(`fail {"_tag":"RepositoryError"`)) {
    throw new Error(`${label}: every layer answered ${clip(reference, 0, 1200)}`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The interpreter
// ---------------------------------------------------------------------------------------------------------------

/** A tenant the sequence created: every version of it that was written, the last one as stored. */
interface Handle {
  readonly history: Array<Tenant>
}

type Write = (repository: Repository) => Effect.Effect<void, unknown>

interface Stats {
  sequences: number
  commands: number
  repositoryCalls: number
  writesStored: number
  refusals: number
  localAnswers: number
  foundTenants: number
  listedTenants: number
  cacheHits: number
  /** Answers by command and outcome (`list:ok`, `insert:TenantAlreadyExists`, `update:local`...). */
  readonly outcomes: Map<string, number>
}

const countOutcome = (stats: Stats, op: string, exit: Exit.Exit<unknown, unknown> | "local") => {
  const outcome = exit === "local"
    ? "local"
    : Exit.isSuccess(exit)
    ? "ok"
    : Option.match(Cause.failureOption(exit.cause), {
      onNone: () => "defect",
      onSome: (error) => (error as { readonly _tag?: string })._tag ?? "untagged"
    })
  const key = `${op}:${outcome}`
  stats.outcomes.set(key, (stats.outcomes.get(key) ?? 0) + 1)
}

const stampAt = (at: Model.At, reason?: string) =>
  new TenantLifecycle.Stamp({
    eventId: randomUUID(),
    at: Model.timeOf(at),
    actor: "model",
    ...(reason === undefined ? {} : { reason })
  })

const transitions: Record<
  Model.Transition,
  (
    tenant: Tenant,
    stamp: TenantLifecycle.Stamp
  ) => Either.Either<TenantLifecycle.Transition<TenantEvent>, TenantLifecycle.InvalidTransition>
> = {
  activate: TenantLifecycle.activate,
  suspend: TenantLifecycle.suspend,
  softDelete: TenantLifecycle.softDelete,
  restore: TenantLifecycle.restore
}

const hex = (value: number, width: number) => value.toString(16).padStart(width, "0")

const runSequence = (
  commands: ReadonlyArray<Model.Command>,
  layers: Layers,
  stats: Stats
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const handles: Array<Handle> = []
    let inserts = 0
    let lastWrite: Write | undefined

    /** Runs one call on every layer (at once: each has a store of its own) and checks that they agree. */
    const onEvery = <A>(op: string, label: string, call: (repository: Repository) => Effect.Effect<A, unknown>) =>
      Effect.gen(function*() {
        stats.repositoryCalls++
        const exits = yield* Effect.all({
          memory: Effect.exit(Effect.suspend(() => call(layers.memory))),
          pg: Effect.exit(Effect.suspend(() => call(layers.pg))),
          cached: Effect.exit(Effect.suspend(() => call(layers.cached)))
        }, { concurrency: "unbounded" })
        checkAgreement(label, { memory: render(exits.memory), pg: render(exits.pg), cached: render(exits.cached) })
        countOutcome(stats, op, exits.memory)
        return exits.memory
      })

    const write = (op: string, label: string, run: Write) =>
      Effect.map(onEvery(op, label, run), (exit) => {
        lastWrite = run
        if (Exit.isSuccess(exit)) stats.writesStored++
        else stats.refusals++
        return Exit.isSuccess(exit)
      })

    const pick = (index: number): Handle | undefined => handles[index % Math.max(1, handles.length)]
    const version = (handle: Handle, stale: number): Tenant =>
      handle.history[Math.max(0, handle.history.length - 1 - stale)] as Tenant

    /** A lookup's input: a tenant's code or domain (now or before) as a user might type it, or the raw input. */
    const lookupInput = (target: Model.LookupTarget, of: (tenant: Tenant) => string, decoration: "_" | ".") => {
      if ("raw" in target) return target.raw
      const handle = pick(target.handle)
      const state = handle?.history[Math.max(0, handle.history.length - 1 - target.age)]
      if (state === undefined) return "nothing"
      const typed = target.upper ? of(state).toUpperCase() : of(state)
      return !target.decorated ? typed : decoration === "_" ? ` ${typed.replaceAll("-", "_")}\t` : `${typed}.`
    }

    const save = (op: string, label: string, handle: Handle, base: Tenant, tenant: Tenant, event: TenantEvent) =>
      Effect.map(write(op, label, (repository) => repository.save(tenant, [event], base.version)), (stored) => {
        if (stored) handle.history.push(tenant)
      })

    for (const [index, command] of commands.entries()) {
      stats.commands++
      const label = `command ${index} ${FastCheck.stringify(command)}`
      switch (command.op) {
        case "insert": {
          const reused = command.reuseIdOf === undefined ? undefined : pick(command.reuseIdOf)
          const id = reused?.history[0]?.id ??
            TenantId.make(`${hex(command.idSeed, 8)}-0000-4000-8000-${hex(inserts++, 12)}`)
          const created = TenantLifecycle.create(id, command.input, stampAt(command.at))
          if (Either.isLeft(created)) {
            stats.localAnswers++
            countOutcome(stats, "insert", "local")
            break
          }
          const { event, tenant } = created.right
          const stored = yield* write("insert", label, (repository) => repository.insert(tenant, event))
          // A tenant that took another's id replaces it as what the sequence knows of that id.
          if (reused !== undefined) {
            if (stored) reused.history.splice(0, reused.history.length, tenant)
          } else {
            handles.push({ history: [tenant] })
          }
          break
        }
        case "transition": {
          const handle = pick(command.handle)
          if (handle === undefined) break
          const base = version(handle, command.stale)
          const transition = transitions[command.kind](base, stampAt(command.at, command.reason))
          if (Either.isLeft(transition)) {
            stats.localAnswers++
            countOutcome(stats, command.kind, "local")
            break
          }
          yield* save(command.kind, label, handle, base, transition.right.tenant, transition.right.event)
          break
        }
        case "update": {
          const handle = pick(command.handle)
          if (handle === undefined) break
          const base = version(handle, command.stale)
          const updated = TenantLifecycle.update(base, command.patch, stampAt(command.at))
          if (Either.isLeft(updated) || Option.isNone(updated.right)) {
            stats.localAnswers++
            countOutcome(stats, "update", "local")
            break
          }
          yield* save("update", label, handle, base, updated.right.value.tenant, updated.right.value.event)
          break
        }
        case "repeatLastWrite": {
          // A retry of the last write with the same tenant and events: one that was stored succeeds again (even
          // after later writes), one that was refused is refused again.
          if (lastWrite !== undefined) yield* write("repeatLastWrite", label, lastWrite)
          break
        }
        case "findById": {
          const { target } = command
          const handle = "handle" in target ? pick(target.handle) : undefined
          const id = "raw" in target
            ? target.raw
            : handle === undefined
            ? "00000000-0000-4000-8000-000000000000"
            : target.upper
            ? handle.history[0]?.id.toUpperCase()
            : handle.history[0]?.id
          const found = yield* onEvery(
            "findById",
            label,
            (repository) => repository.findById(id as TenantId, { includeDeleted: command.includeDeleted })
          )
          if (Exit.isSuccess(found) && Option.isSome(found.value)) stats.foundTenants++
          break
        }
        case "findByCode": {
          const code = lookupInput(command.code, (tenant) => tenant.code, "_")
          const found = yield* onEvery("findByCode", label, (repository) => repository.findByCode(code as string))
          if (Exit.isSuccess(found) && Option.isSome(found.value)) stats.foundTenants++
          break
        }
        case "findByDomain": {
          const domain = lookupInput(command.domain, (tenant) => tenant.domain ?? "no-domain.example.com", ".")
          const found = yield* onEvery("findByDomain", label, (repository) => repository.findByDomain(domain as string))
          if (Exit.isSuccess(found) && Option.isSome(found.value)) stats.foundTenants++
          break
        }
        case "lookupEverything": {
          const handle = pick(command.handle)
          if (handle === undefined) break
          const lookups: Array<readonly [string, (repository: Repository) => Effect.Effect<unknown, unknown>]> = [
            ["findById", (repository) => repository.findById(handle.history[0]?.id as TenantId)]
          ]
          for (const code of new Set(handle.history.map((tenant) => tenant.code))) {
            lookups.push([`findByCode ${code}`, (repository) => repository.findByCode(code)])
          }
          for (const domain of new Set(handle.history.flatMap((tenant) => tenant.domain ?? []))) {
            lookups.push([`findByDomain ${domain}`, (repository) => repository.findByDomain(domain)])
          }
          for (const [name, lookup] of lookups) {
            const found = yield* onEvery("lookupEverything", `${label}: ${name}`, lookup)
            if (Exit.isSuccess(found) && Option.isSome(found.value as Option.Option<unknown>)) stats.foundTenants++
          }
          break
        }
        case "list": {
          const query = Model.listQueryInput(command.query)
          let page = yield* onEvery("list", label, (repository) => repository.list(query as never))
          if (Exit.isSuccess(page)) stats.listedTenants += page.value.items.length
          // The pages after it, each after the cursor every layer gave (they agree, or the check above failed).
          const continued = Object.fromEntries(Object.entries(query).filter(([field]) => field !== "page"))
          for (let step = 1; step <= command.follow; step++) {
            if (Exit.isFailure(page) || page.value.nextCursor === undefined) break
            const flip = command.flipLast && step === command.follow
            const next = {
              ...continued,
              after: page.value.nextCursor,
              ...(flip ? { sortDirection: query["sortDirection"] === "asc" ? "desc" : "asc" } : {})
            }
            page = yield* onEvery(
              flip ? "list after (flipped)" : "list after",
              `${label}: page ${step + 1}${flip ? ", the other direction" : ""}`,
              (repository) => repository.list(next as never)
            )
            if (Exit.isSuccess(page)) stats.listedTenants += page.value.items.length
          }
          break
        }
        case "countByStatus": {
          yield* onEvery("countByStatus", label, (repository) => repository.countByStatus)
          break
        }
      }
    }
  })

const MODEL_RUNS = Number(process.env.MODEL_RUNS ?? 200)
const MODEL_SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED)
const MODEL_PATH = process.env.MODEL_PATH
// The default run takes 35-55 s on a loaded 2-core machine; a run that cannot finish within the limit fails.
const TIME_LIMIT_MS = Math.max(240_000, MODEL_RUNS * 1_000)

describe("TenantRepository: one behaviour on memory, PostgreSQL and the cached repository", () => {
  it.scopedLive(
    `random command sequences (${MODEL_RUNS}; MODEL_RUNS=n for more) answer alike on every layer`,
    () =>
      Effect.gen(function*() {
        const [pg, pgUnderCache] = yield* Effect.all([pgStore, pgStore], { concurrency: 2 })
        const touched: Array<string> = []
        const hits = { count: 0 }
        const redis = yield* Layer.build(redisBackend.layer)
        const storeContext = Context.make(
          CacheStore.CacheStore,
          recordingStore(Context.get(redis, CacheStore.CacheStore), touched, hits)
        )
        const runtime = yield* Effect.runtime<never>()
        const stats: Stats = {
          sequences: 0,
          commands: 0,
          repositoryCalls: 0,
          writesStored: 0,
          refusals: 0,
          localAnswers: 0,
          foundTenants: 0,
          listedTenants: 0,
          cacheHits: 0,
          outcomes: new Map()
        }

        const sequenceRun = (commands: ReadonlyArray<Model.Command>) =>
          Effect.scoped(Effect.gen(function*() {
            stats.sequences++
            touched.length = 0
            yield* Effect.all([pg.reset, pgUnderCache.reset], { concurrency: 2 })
            const memory = Context.get(
              yield* Layer.build(TenantRepository.layerMemory),
              TenantRepository.TenantRepository
            )
            // A fresh cache under a prefix of its own: nothing a sequence cached is seen by the next.
            const cached = yield* CachedTenantRepository.make({ prefix: `model-${stats.sequences}:` }).pipe(
              Effect.provide(Context.merge(pgUnderCache.context, storeContext))
            )
            yield* runSequence(commands, { memory, pg: pg.repository, cached }, stats)
          }))

        const started = performance.now()
        const property = FastCheck.asyncProperty(Model.sequence, async (commands) => {
          const exit = await Runtime.runPromiseExit(runtime)(sequenceRun(commands))
          if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
        })
        const parameters: FastCheck.Parameters<[ReadonlyArray<Model.Command>]> = {
          numRuns: MODEL_RUNS,
          interruptAfterTimeLimit: TIME_LIMIT_MS,
          markInterruptAsFailure: true,
          ...(MODEL_SEED === undefined ? {} : { seed: MODEL_SEED }),
          ...(MODEL_PATH === undefined ? {} : { path: MODEL_PATH })
        }
        const result = yield* Effect.promise(() => FastCheck.check(property, parameters))
        stats.cacheHits = hits.count
        const seconds = ((performance.now() - started) / 1000).toFixed(1)
        console.log(
          `RepositoryModel: ${stats.sequences} sequences, ${stats.commands} commands ` +
            `(${stats.repositoryCalls} calls on each of memory, pg and cached; ${stats.writesStored} writes stored, ` +
            `${stats.refusals} refused; ${stats.localAnswers} answered by TenantLifecycle alone), ` +
            `${stats.foundTenants} lookups found a tenant, ${stats.listedTenants} tenants listed, ` +
            `${stats.cacheHits} values read from Redis, seed ${result.seed}, ${seconds} s\n  answers: ` +
            Array.from(stats.outcomes).sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `${key} ${n}`).join(
              ", "
            )
        )
        if (result.failed) {
          // fast-check's report: the seed, the path and the shrunk sequence, and how to replay it.
          assert.fail(
            `${FastCheck.defaultReportMessage(result)}\n\nReplay: MODEL_SEED=${result.seed} MODEL_PATH="${
              result.counterexamplePath ?? ""
            }" npx vitest run test/RepositoryModel.test.ts`
          )
        }
        assert.isAtLeast(stats.sequences, MODEL_RUNS)
        // The cache served answers, not only passed them through.
        assert.isAbove(stats.cacheHits, 0)
      }),
    TIME_LIMIT_MS + 60_000
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Lookups that can name no tenant
// ---------------------------------------------------------------------------------------------------------------

const TEN_MB = 10 * 1024 * 1024

/** Lookup input that no stored tenant can answer, after normalisation. */
const namesNoTenant: ReadonlyArray<readonly [string, unknown]> = [
  ["empty", ""],
  ["blank", " \t "],
  ["NUL", "\u0000"],
  ["a code with a NUL", "acme\u0000"],
  ["a host name with a NUL", "acme.example.com\u0000"],
  ["a lone high surrogate", "\ud800"],
  ["a lone low surrogate in a code", "ac\udc00me"],
  ["an id in upper case", "3F1C0C2E-5B7A-4D2A-9C1E-2B8F4E6A7D10"],
  ["an id with a NUL", "3f1c0c2e-5b7a-4d2a-9c1e-2b8f4e6a7d10\u0000"],
  ["10 MB of letters", "a".repeat(TEN_MB)],
  ["10 MB of spaces", " ".repeat(TEN_MB)],
  ["10 MB of upper-case letters with a NUL", "A".repeat(TEN_MB) + "\u0000"],
  ["a number", 42],
  ["null", null],
  ["undefined", undefined],
  ["an object that prints as a code", { toString: () => "acme" }],
  ["an array", ["acme"]],
  ["a symbol", Symbol("acme")],
  [
    "a throwing getter's object",
    Object.defineProperty({}, "trim", {
      get: () => {
        throw new Error("boom")
      }
    })
  ]
]

const lookupsOf = (repository: Repository) =>
  [
    ["findById", (input: unknown) => repository.findById(input as TenantId)],
    ["findById (includeDeleted)", (input: unknown) => repository.findById(input as TenantId, { includeDeleted: true })],
    ["findByCode", (input: unknown) => repository.findByCode(input as string)],
    ["findByDomain", (input: unknown) => repository.findByDomain(input as string)]
  ] as const

/** Every lookup of every input answers none: no failure, no defect, nothing thrown; the slowest one's time. */
const expectNone = (layer: string, repository: Repository) =>
  Effect.gen(function*() {
    let slowest = 0
    for (const [name, input] of namesNoTenant) {
      for (const [lookup, run] of lookupsOf(repository)) {
        const label = `${layer} ${lookup}(${name})`
        const started = performance.now()
        let effect: Effect.Effect<Option.Option<Tenant>, unknown>
        try {
          effect = run(input)
        } catch (error) {
          return assert.fail(`${label} threw ${String(error)}`)
        }
        const exit = yield* Effect.exit(effect)
        slowest = Math.max(slowest, performance.now() - started)
        assert.strictEqual(render(exit), `ok ${JSON.stringify(Option.none())}`, label)
      }
    }
    return slowest
  })

describe("lookups with input that can name no tenant", () => {
  it.scopedLive(
    "answer none on memory, PostgreSQL and the cache, without a query or a cache key",
    () =>
      Effect.gen(function*() {
        // PostgreSQL behind a proxy that resets every connection once the layers are up: any query then fails.
        const database = new URL(DATABASE_URL)
        const proxy = yield* makeFaultProxy({ targetPort: Number(database.port || 5432) })
        const schema = yield* freshSchema
        const client = PgClient.layer({
          url: Redacted.make(proxy.url(urlWithSchema(schema))),
          maxConnections: 2,
          connectTimeout: "2 seconds"
        })
        const pgContext = yield* Layer.build(
          TenantRepositoryPg.layer({ timeout: "5 seconds" }).pipe(Layer.provideMerge(client))
        )
        const pg = Context.get(pgContext, TenantRepository.TenantRepository)
        const touched: Array<string> = []
        const store = Context.get(yield* Layer.build(CacheStore.layerMemory()), CacheStore.CacheStore)
        // Trusted for a minute: a freshness poll delayed by a loaded machine would skip the store, and its key.
        const cached = yield* CachedTenantRepository.make({ maxStaleness: "1 minute" }).pipe(
          Effect.provide(
            Context.merge(pgContext, Context.make(CacheStore.CacheStore, recordingStore(store, touched, { count: 0 })))
          )
        )
        const memory = Context.get(yield* Layer.build(TenantRepository.layerMemory), TenantRepository.TenantRepository)

        const slowestMemory = yield* expectNone("memory", memory)

        // While the cache is in use (a lookup that can name a tenant reads its key), none of these reads a key.
        // Until its first freshness check is answered (late on a loaded machine) the cache reads no key at all.
        for (let attempt = 0; attempt < 100 && !touched.some((key) => key.includes("code:acme")); attempt++) {
          if (attempt > 0) yield* Effect.sleep("20 millis")
          yield* cached.findByCode("acme")
        }
        assert.deepStrictEqual(touched.filter((key) => key.includes("code:acme")).length > 0, true)
        touched.length = 0
        const slowestCachedReading = yield* expectNone("cached", cached)
        assert.deepStrictEqual(touched, [], "cache keys touched")

        yield* proxy.setMode("reset")
        // The control: a lookup that asks the database fails now, on its own and under the cache.
        for (const [name, repository] of [["pg", pg], ["cached", cached]] as const) {
          const control = render(yield* Effect.exit(repository.findByCode("control-code")))
          assert.include(control, `"_tag":"RepositoryError"`, `${name} control lookup`)
        }
        const slowestPg = yield* expectNone("pg", pg)
        const slowestCached = yield* expectNone("cached", cached)
        console.log(
          `lookups naming no tenant: ${namesNoTenant.length} inputs x 4 lookups on each layer; slowest: ` +
            `memory ${slowestMemory.toFixed(0)} ms, pg ${slowestPg.toFixed(0)} ms, ` +
            `cached ${Math.max(slowestCached, slowestCachedReading).toFixed(0)} ms`
        )
        // 10 MB inputs are normalised before they are refused; generous for a loaded machine.
        assert.isBelow(Math.max(slowestMemory, slowestPg, slowestCached, slowestCachedReading), 1_000)
      }),
    60_000
  )
})
