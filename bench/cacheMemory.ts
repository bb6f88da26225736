/**
 * The heap the memory tier takes per cached tenant, and its bound. The heap is read after forced full
 * collections (`global.gc`: the bench script runs Node with `--expose-gc`; without it, the flag is set at run
 * time), before and after a fill, around nothing else; the difference over the entries the store holds is the
 * figure. The entries a store holds are counted after the heap was read, by reading every key back (`getMany`).
 *
 * - The store alone, `CacheStore.makeMemory`, filled with 100,000 tenants as the cache writes them (key
 *   `tenant:v1:id:<id>`, value as `TenantCache.encode` makes it: each value is encoded once before the rounds
 *   and stored as a fresh copy, so that the store holds strings of its own, as it does in use), with
 *   `maxEntries: 100,000`: the heap per cached tenant. Then with `maxEntries: 10,000`, filled with 10,000 and
 *   with all 100,000: the second must keep exactly 10,000 entries, in a heap at most 1.25 times the first's.
 *   Three rounds, the scenarios taking turns.
 * - The bounded two through `CachedTenantRepository` over `CacheStore.layerMemory({ maxEntries: 10,000 })`:
 *   misses, each loaded from a repository that answers from tenants made beforehand (so that their heap is there
 *   before and after) and filled by the layer, its own bookkeeping included; the first gives the heap per
 *   cached tenant through the layer. Once each: the layer encodes every tenant it fills, about 100 us each
 *   (three times that on a loaded 2-core machine), so a full 100,000 through it is left to the store alone. The
 *   layer is given a `maxStaleness` of an hour: with the default 2 seconds, a fill is skipped whenever the
 *   freshness check has not confirmed the store lately, which a long loop of fills on a busy machine makes
 *   frequent, and the figure would count fewer entries.
 */
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as v8 from "node:v8"
import { runInNewContext } from "node:vm"
import * as CachedTenantRepository from "../src/CachedTenantRepository.js"
import * as CacheStore from "../src/CacheStore.js"
import { reconstitute, type Tenant, TenantId } from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as Harness from "./harness.js"
import { scopedRuntime } from "./runtimes.js"

const TENANTS = 100_000
const BOUNDED_MAX_ENTRIES = 10_000
/** Rounds of the store's scenarios (one in a smoke test). */
const rounds = () => Harness.isQuick() ? 1 : 3
const TTL = "1 hour"
/** How far above the heap of `BOUNDED_MAX_ENTRIES` entries a bounded store may stay after many more fills. */
const BOUND_GOAL = 1.25

/** A full collection: `global.gc` when Node runs with `--expose-gc`, else the same function exposed now. */
const collectorOf = (): () => void => {
  const exposed = globalThis.gc
  if (exposed !== undefined) return () => void exposed()
  v8.setFlagsFromString("--expose-gc")
  const late: unknown = runInNewContext("gc")
  if (typeof late !== "function") throw new Error("no garbage collector to call: run Node with --expose-gc")
  return () => void Reflect.apply(late, undefined, [])
}

/** The heap in use once the garbage is collected: full collections, with turns of the event loop between. */
const settledHeap = (collect: () => void) =>
  Effect.promise(async () => {
    for (let i = 0; i < 4; i++) {
      collect()
      await new Promise((resolve) => setImmediate(resolve))
    }
    return process.memoryUsage().heapUsed
  })

/** The id of the nth tenant: a valid UUID made from `n`, so that keys can be made again without being kept. */
const idOf = (n: number): TenantId => TenantId.make(`00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`)

/**
 * `TENANTS` tenants of the benchmarks' usual shape, by id, made by `reconstitute` (the rules a stored tenant is
 * read back by), which is many times quicker than `TenantLifecycle.create` and its input schemas.
 */
const makeTenants = Effect.gen(function*() {
  const createdAt = new Date("2026-01-01T00:00:00Z")
  const tenants = new Map<TenantId, Tenant>()
  for (let n = 1; n <= TENANTS; n++) {
    const tenant = yield* reconstitute({
      id: idOf(n),
      code: `bench-${n}`,
      name: `Bench Tenant ${n}`,
      status: "pending",
      contact: n % 2 === 0
        ? { email: `admin${n}@bench.test`, locale: "en" }
        : { email: `admin${n}@bench.test`, phone: "+15550100", locale: "en" },
      ...(n % 3 === 0 ? { domain: `tenant-${n}.bench.test` } : {}),
      settings: { plan: n % 5 === 0 ? "pro" : "free", seats: n % 50 },
      version: 1,
      createdAt,
      updatedAt: createdAt
    })
    tenants.set(tenant.id, tenant)
  }
  return tenants
})

/** How many of the `TENANTS` tenants' keys `store` holds a value for. */
const entriesIn = (store: CacheStore.Service) =>
  Effect.gen(function*() {
    const keys: Array<string> = []
    for (let n = 1; n <= TENANTS; n++) keys.push(TenantCache.idKey(idOf(n)))
    const values = yield* store.getMany(keys)
    return values.filter(Option.isSome).length
  })

interface Filled {
  readonly heapBytes: number
  readonly entries: number
}

/**
 * The fill measured, once its store holds every entry it should: `fills` distinct keys in a store of `maxEntries`
 * leave the smaller of the two. Fewer means fills were skipped, and the heap per entry would be meaningless (and
 * the bound met by keeping nothing).
 */
const checked = (filled: Filled, fills: number, maxEntries: number): Effect.Effect<Filled> =>
  filled.entries === Math.min(fills, maxEntries) ? Effect.succeed(filled) : Effect.dieMessage(
    `${Harness.format(fills)} fills into a store of ${Harness.format(maxEntries)} left ` +
      `${Harness.format(filled.entries)} entries, not ${
        Harness.format(Math.min(fills, maxEntries))
      }: fills were skipped`
  )

/** A copy of `text` that shares no memory with it (a flat string of its own). */
const copyOf = (text: string): string => Buffer.from(text, "utf8").toString("utf8")

/** The store alone, of `maxEntries`, given the first `fills` encoded tenants in turn. */
const storeAlone = (encoded: ReadonlyArray<string>, maxEntries: number, fills: number, collect: () => void) =>
  Effect.gen(function*() {
    const store = yield* CacheStore.makeMemory({ maxEntries })
    const before = yield* settledHeap(collect)
    for (let n = 1; n <= fills; n++) {
      yield* store.set(TenantCache.idKey(idOf(n)), copyOf(encoded[n - 1] ?? ""), TTL)
    }
    const after = yield* settledHeap(collect)
    return yield* checked({ heapBytes: after - before, entries: yield* entriesIn(store) }, fills, maxEntries)
  })

/**
 * A repository whose lookups by id answer from `tenants`; everything else is the memory repository's, its change
 * feed included (the whole context is passed on), so that the cache runs as it does over a real repository.
 */
const answeringFrom = (tenants: ReadonlyMap<TenantId, Tenant>) =>
  Layer.effectContext(
    Effect.map(Effect.context<TenantRepository.TenantRepository>(), (context) =>
      Context.add(
        context,
        TenantRepository.TenantRepository,
        TenantRepository.TenantRepository.of({
          ...Context.get(context, TenantRepository.TenantRepository),
          findById: (id) => Effect.sync(() => Option.fromNullable(tenants.get(id)))
        })
      ))
  ).pipe(Layer.provide(TenantRepository.layerMemory))

/** `fills` misses (the first tenants) through `CachedTenantRepository` over a memory store of `maxEntries`. */
const throughCache = (
  tenants: ReadonlyMap<TenantId, Tenant>,
  maxEntries: number,
  fills: number,
  collect: () => void
) =>
  Effect.scoped(Effect.gen(function*() {
    const runtime = yield* scopedRuntime(
      CachedTenantRepository.layer({ maxStaleness: "1 hour" }).pipe(
        Layer.provide(answeringFrom(tenants)),
        Layer.provideMerge(CacheStore.layerMemory({ maxEntries }))
      )
    )
    const { context } = yield* runtime.runtimeEffect
    const repository = Context.get(context, TenantRepository.TenantRepository)
    const store = Context.get(context, CacheStore.CacheStore)
    const fill = Effect.gen(function*() {
      for (let n = 1; n <= fills; n++) {
        const found = yield* repository.findById(idOf(n))
        if (Option.isNone(found)) return yield* Effect.dieMessage(`tenant ${n} was not found`)
      }
    })
    // A lookup first, outside the measure: the layer's lazily made parts (metrics, its first freshness check).
    yield* Effect.promise(() => runtime.runPromise(repository.findById(idOf(1))))
    const before = yield* settledHeap(collect)
    yield* Effect.promise(() => runtime.runPromise(fill))
    const after = yield* settledHeap(collect)
    return yield* checked({ heapBytes: after - before, entries: yield* entriesIn(store) }, fills, maxEntries)
  }))

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

const describe = (name: string, runs: ReadonlyArray<Filled>) =>
  `  ${name.padEnd(44)} ${
    runs.map((filled) =>
      `${Harness.format(filled.heapBytes / 1e6, 1)} MB for ${Harness.format(filled.entries)} entries ` +
      `(${Harness.format(filled.heapBytes / filled.entries)} B each)`
    ).join("; ")
  }`

const program = Effect.gen(function*() {
  const collect = collectorOf()
  const [made, tenants] = yield* Effect.timed(makeTenants)
  const encoded: Array<string> = []
  const [encoding] = yield* Effect.timed(Effect.gen(function*() {
    for (const tenant of tenants.values()) encoded.push(yield* TenantCache.encode(Option.some(tenant)))
  }))
  const roundCount = rounds()
  yield* Console.log(
    `${Harness.format(TENANTS)} tenants made in ${Harness.format(Duration.toSeconds(made), 1)} s, encoded in ` +
      `${Harness.format(Duration.toSeconds(encoding), 1)} s; the store alone ${roundCount} rounds, taking turns, ` +
      `through the layer once; heap after forced full collections ` +
      `(${globalThis.gc === undefined ? "gc exposed at run time" : "--expose-gc"})`
  )
  const full = `maxEntries ${Harness.format(TENANTS)}`
  const bounded = `maxEntries ${Harness.format(BOUNDED_MAX_ENTRIES)}`
  // The store alone: full, bounded after as many fills as it holds, bounded after ten times as many.
  const alone = { full: new Array<Filled>(), boundedFew: new Array<Filled>(), boundedMany: new Array<Filled>() }
  // A warm-up round first, not counted: a first fill in a fresh heap measured lower than the later ones by a
  // fifth in trial runs (the engine settling its object shapes and string handling), whatever its order.
  yield* storeAlone(encoded, TENANTS, TENANTS, collect)
  for (let round = 0; round < roundCount; round++) {
    const turns = [
      Effect.map(storeAlone(encoded, TENANTS, TENANTS, collect), (filled) => alone.full.push(filled)),
      Effect.map(
        storeAlone(encoded, BOUNDED_MAX_ENTRIES, BOUNDED_MAX_ENTRIES, collect),
        (filled) => alone.boundedFew.push(filled)
      ),
      Effect.map(storeAlone(encoded, BOUNDED_MAX_ENTRIES, TENANTS, collect), (filled) => alone.boundedMany.push(filled))
    ]
    yield* Effect.all([...turns.slice(round % turns.length), ...turns.slice(0, round % turns.length)], {
      discard: true
    })
  }
  const [through, cached] = yield* Effect.timed(Effect.all({
    boundedFew: throughCache(tenants, BOUNDED_MAX_ENTRIES, BOUNDED_MAX_ENTRIES, collect),
    boundedMany: throughCache(tenants, BOUNDED_MAX_ENTRIES, TENANTS, collect)
  }))
  const fills = (count: number) => `${Harness.format(count)} fills`
  yield* Console.log(describe(`store alone, ${full}`, alone.full))
  yield* Console.log(describe(`store alone, ${bounded}, ${fills(BOUNDED_MAX_ENTRIES)}`, alone.boundedFew))
  yield* Console.log(describe(`store alone, ${bounded}, ${fills(TENANTS)}`, alone.boundedMany))
  yield* Console.log(describe(`CachedTenantRepository, ${bounded}, ${fills(BOUNDED_MAX_ENTRIES)}`, [cached.boundedFew]))
  yield* Console.log(describe(`CachedTenantRepository, ${bounded}, ${fills(TENANTS)}`, [cached.boundedMany]))
  yield* Console.log(`  (through the layer: ${Harness.format(Duration.toSeconds(through), 1)} s)`)

  const comparisons: Array<Harness.Comparison> = [
    {
      name: `heap per cached tenant, memory store alone (${Harness.format(TENANTS)} tenants)`,
      value: median(alone.full.map((filled) => filled.heapBytes / filled.entries)),
      unit: "bytes",
      rounds: roundCount
    },
    {
      name: `heap per cached tenant, CachedTenantRepository over the memory store ` +
        `(${Harness.format(BOUNDED_MAX_ENTRIES)} tenants)`,
      value: cached.boundedFew.heapBytes / cached.boundedFew.entries,
      unit: "bytes",
      rounds: 1
    }
  ]
  const boundChecks: ReadonlyArray<readonly [string, ReadonlyArray<Filled>, ReadonlyArray<Filled>]> = [
    ["memory store alone", alone.boundedFew, alone.boundedMany],
    ["CachedTenantRepository", [cached.boundedFew], [cached.boundedMany]]
  ]
  for (const [name, few, many] of boundChecks) {
    const kept = Math.max(...many.map((filled) => filled.entries))
    const heap = median(many.map((filled) => filled.heapBytes)) / median(few.map((filled) => filled.heapBytes))
    yield* Console.log(
      `  ${name}, ${bounded}: ${many.map((filled) => Harness.format(filled.entries)).join(", ")} entries kept ` +
        `after ${fills(TENANTS)} (must be ${Harness.format(BOUNDED_MAX_ENTRIES)}); heap ${Harness.format(heap, 2)}x ` +
        `that after ${fills(BOUNDED_MAX_ENTRIES)} (goal <= ${BOUND_GOAL}x)`
    )
    comparisons.push(
      {
        name: `entries kept after ${fills(TENANTS)}, ${bounded} (${name})`,
        value: kept,
        unit: "entries",
        goal: BOUNDED_MAX_ENTRIES,
        rounds: many.length
      },
      {
        name: `heap after ${fills(TENANTS)} / after ${fills(BOUNDED_MAX_ENTRIES)}, ${bounded} (${name})`,
        value: heap,
        unit: "x",
        goal: BOUND_GOAL,
        rounds: many.length
      }
    )
  }
  const report: Harness.Report = { measurements: [], comparisons }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "cache memory",
  run: program
}
