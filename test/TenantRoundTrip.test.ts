/**
 * Whatever `TenantLifecycle.create` is given, it answers a typed `InvalidInput` or a tenant that comes back byte
 * for byte (its JSON, key order included) from `insert` and `findById` on memory and on PostgreSQL, and from the
 * cache codec: no defect, no thrown exception, no value that one store keeps and another changes.
 */
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
import * as Runtime from "effect/Runtime"
import { randomUUID } from "node:crypto"
import { performance } from "node:perf_hooks"
import * as InvalidInput from "../src/InvalidInput.js"
import type { Tenant } from "../src/Tenant.js"
import { TenantId } from "../src/Tenant.js"
import * as TenantCache from "../src/TenantCache.js"
import type { TenantCreated } from "../src/TenantEvent.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import * as TenantRepositoryPg from "../src/TenantRepository/Pg.js"
import * as Model from "./utils/modelCommands.js"
import { layerClientInFreshSchema } from "./utils/postgres.js"

// ---------------------------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------------------------

const ONE_MB = "m".repeat(1024 * 1024)
const TEN_MB = "t".repeat(10 * 1024 * 1024)

/** Text of every kind: any UTF-16 (lone surrogates too), any grapheme, odd characters, huge. */
const anyText: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { weight: 3, arbitrary: FastCheck.string({ unit: "binary", maxLength: 24 }) },
  { weight: 3, arbitrary: FastCheck.string({ unit: "grapheme", maxLength: 24 }) },
  { weight: 2, arbitrary: FastCheck.constantFrom(...Model.oddStrings) },
  { weight: 1, arbitrary: FastCheck.constantFrom(ONE_MB, TEN_MB, "a".repeat(2001), "b".repeat(255)) }
)

/** `valid` with an odd character put in somewhere. */
const spoiled = (valid: FastCheck.Arbitrary<string>): FastCheck.Arbitrary<string> =>
  FastCheck.tuple(valid, FastCheck.nat(), FastCheck.constantFrom(...Model.oddStrings)).map(([text, at, odd]) => {
    const position = at % (text.length + 1)
    return text.slice(0, position) + odd + text.slice(position)
  })

/** Any value at all: objects with odd keys, null prototypes, boxed values, maps, sets, dates, typed arrays. */
const anyValue: FastCheck.Arbitrary<unknown> = FastCheck.anything({
  maxDepth: 3,
  maxKeys: 5,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSet: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true
})

/** Mostly `valid`; now and then odd text, a spoiled valid value, or any value at all. */
const field = <A>(valid: FastCheck.Arbitrary<A>, spoil?: (valid: FastCheck.Arbitrary<A>) => FastCheck.Arbitrary<A>) =>
  FastCheck.oneof(
    { weight: 30, arbitrary: valid as FastCheck.Arbitrary<unknown> },
    { weight: 1, arbitrary: anyText },
    { weight: 1, arbitrary: spoil === undefined ? anyText : spoil(valid) },
    { weight: 1, arbitrary: anyValue }
  )

const letters = [
  "a",
  "Z",
  "é",
  "ß",
  "İ",
  "测",
  "ǅ",
  "Ω",
  "ｃ",
  "𐐀",
  "𝒜",
  "\u0301",
  " ",
  "\u3000",
  "\u00a0",
  "'",
  "_",
  "（"
]

const validName = FastCheck.oneof(
  FastCheck.constantFrom(...Model.namePool, ...Model.astralNamePool),
  FastCheck.string({ unit: FastCheck.constantFrom(...letters), minLength: 2, maxLength: 30 })
)

const validCode = FastCheck.oneof(
  Model.codeInput,
  FastCheck.stringMatching(/^[a-z][a-z0-9]{1,12}(-[a-z0-9]{1,8}){0,2}$/),
  FastCheck.stringMatching(/^ ?[A-Z][A-Z0-9]{1,12}(_[A-Z0-9]{1,8}){0,2} ?$/)
)

const validEmail = FastCheck.oneof(
  FastCheck.constantFrom("admin@acme.test", "Admin@ACME.Test", "a.b+c@sub.example.com", "o'hara@x.io"),
  FastCheck.emailAddress()
)

const validPhone = FastCheck.oneof(
  FastCheck.stringMatching(/^\+[1-9][0-9]{1,14}$/),
  FastCheck.constantFrom("+86 138-0013-8000", "+1 (415) 555.0100")
)

const validDomain = FastCheck.oneof(
  Model.domainInput,
  FastCheck.domain(),
  FastCheck.domain().map((domain) => `${domain.toUpperCase()}.`)
)

/** Keys a settings object may hold, and keys it may not (or that JavaScript treats specially). */
const settingKey = FastCheck.oneof(
  { weight: 6, arbitrary: FastCheck.stringMatching(/^[A-Za-z][A-Za-z0-9._-]{0,12}$/) },
  {
    weight: 1,
    arbitrary: FastCheck.constantFrom("__proto__", "constructor", "toString", "", "1a", "a b", "k".repeat(65), "é")
  }
)

const settingsShape: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  { weight: 10, arbitrary: Model.settingsInput },
  {
    weight: 4,
    arbitrary: FastCheck.dictionary(
      settingKey,
      FastCheck.oneof(
        { weight: 8, arbitrary: Model.settingValue },
        { weight: 1, arbitrary: anyText },
        { weight: 1, arbitrary: anyValue }
      ),
      { maxKeys: 12 }
    )
  },
  {
    weight: 1,
    arbitrary: FastCheck.integer({ min: 95, max: 105 }).map((count) =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]))
    )
  },
  {
    weight: 1,
    // Near the 16 KiB limit, in characters of one, two and three bytes of UTF-8.
    arbitrary: FastCheck.tuple(FastCheck.integer({ min: 1, max: 10 }), FastCheck.constantFrom("x", "é", "测")).map((
      [count, character]
    ) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, character.repeat(1990)])))
  },
  { weight: 1, arbitrary: anyValue }
)

const contactShape = FastCheck.record({
  email: field(validEmail, spoiled),
  phone: field(validPhone, spoiled),
  locale: field(FastCheck.constantFrom("en", "zh-CN"))
}, { requiredKeys: ["email"] })

/** Input near a valid tenant: each field valid most of the time, odd or of any type now and then. */
const nearValidInput: FastCheck.Arbitrary<unknown> = FastCheck.tuple(
  FastCheck.record({
    code: field(validCode, spoiled),
    name: field(validName, spoiled),
    contact: FastCheck.oneof({ weight: 20, arbitrary: contactShape }, { weight: 1, arbitrary: anyValue }),
    domain: field(validDomain, spoiled),
    settings: settingsShape
  }, { requiredKeys: ["code", "name", "contact"] }),
  // An unknown field is rejected by name: one input in ten has one.
  FastCheck.oneof(
    { weight: 9, arbitrary: FastCheck.constant(undefined) },
    { weight: 1, arbitrary: FastCheck.record({ unknownField: anyValue }) }
  )
).map(([input, unknown]) => ({ ...input, ...unknown }))

/** Shapes no generator makes: a cycle, a getter that throws, a proxy, a class instance, deep nesting. */
const cycle: Record<string, unknown> = { code: "acme", name: "Acme Inc.", contact: { email: "a@acme.test" } }
cycle["settings"] = cycle
const deep = (depth: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = [value]
  return value
}
const throwing = () => {
  throw new Error("hostile")
}
const hostileShapes: ReadonlyArray<unknown> = [
  cycle,
  { code: "acme", name: "Acme Inc.", contact: { email: "a@acme.test" }, settings: { a: deep(100_000) } },
  Object.defineProperty({ name: "Acme Inc.", contact: { email: "a@acme.test" } }, "code", {
    enumerable: true,
    get: throwing
  }),
  { code: "acme", name: "Acme Inc.", contact: new Proxy({}, { get: throwing, ownKeys: throwing }) },
  {
    code: "acme",
    name: "Acme Inc.",
    contact: { email: "a@acme.test" },
    settings: new (class Settings {
      readonly a = 1
    })()
  },
  { code: "acme", name: "Acme Inc.", contact: { email: "a@acme.test" }, settings: { a: 1, toJSON: throwing } },
  { code: "acme", name: "Acme Inc.", contact: { email: "a@acme.test" }, settings: new Date(0) },
  { code: "acme", name: "Acme Inc.", contact: { email: "a@acme.test" }, settings: new Map([["a", 1]]) }
]

const anyInput: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  { weight: 12, arbitrary: nearValidInput },
  { weight: 2, arbitrary: anyValue },
  { weight: 1, arbitrary: FastCheck.jsonValue() },
  { weight: 1, arbitrary: FastCheck.constantFrom(...hostileShapes) }
)

/** When the tenant is created: mostly now-ish, now and then anywhere from the year 1 to 9999, to the millisecond. */
const createdAt = FastCheck.oneof(
  { weight: 4, arbitrary: FastCheck.constant(new Date(Model.BASE_TIME)) },
  {
    weight: 1,
    arbitrary: FastCheck.date({
      min: new Date("0001-01-01T00:00:00.000Z"),
      max: new Date("9999-12-31T23:59:59.999Z"),
      noInvalidDate: true
    })
  }
)

// ---------------------------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------------------------

const ROUND_TRIP_RUNS = Number(process.env.ROUND_TRIP_RUNS ?? 500)
const ROUND_TRIP_SEED = process.env.ROUND_TRIP_SEED === undefined ? undefined : Number(process.env.ROUND_TRIP_SEED)
const ROUND_TRIP_PATH = process.env.ROUND_TRIP_PATH

interface Stats {
  runs: number
  invalid: number
  roundTrips: number
  slowestCreateMs: number
  longestIssue: number
}

const describeExit = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.match(exit, {
    onSuccess: (value) => `ok ${JSON.stringify(value) ?? "undefined"}`,
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onSome: (error) =>
          `fail ${String((error as { readonly _tag?: unknown })._tag)}: ${String(error)}`.slice(0, 2000),
        onNone: () => `DEFECT ${Cause.pretty(cause)}`.slice(0, 2000)
      })
  })

const sameJson = (label: string, expected: string, actual: string) => {
  if (actual !== expected) {
    let at = 0
    while (at < expected.length && expected[at] === actual[at]) at++
    throw new Error(
      `${label}: does not round-trip (first difference at character ${at})\n  created: ${
        expected.slice(Math.max(0, at - 200), at + 200)
      }\n  read:    ${actual.slice(Math.max(0, at - 200), at + 200)}`
    )
  }
}

describe("TenantLifecycle.create: a typed InvalidInput, or a tenant that round-trips on every layer", () => {
  it.scopedLive(
    `any input (${ROUND_TRIP_RUNS} runs; ROUND_TRIP_RUNS=n for more)`,
    () =>
      Effect.gen(function*() {
        const pgContext = yield* Layer.build(
          TenantRepositoryPg.layer().pipe(Layer.provideMerge(layerClientInFreshSchema))
        )
        const pg = Context.get(pgContext, TenantRepository.TenantRepository)
        const sql = Context.get(pgContext, SqlClient.SqlClient)
        const reset = Effect.orDie(Effect.zipRight(sql`DELETE FROM tenant_outbox`, sql`DELETE FROM tenants`))
        const runtime = yield* Effect.runtime<never>()
        const stats: Stats = { runs: 0, invalid: 0, roundTrips: 0, slowestCreateMs: 0, longestIssue: 0 }
        const decodeCached = TenantCache.makeDecoder()

        /** Insert, then find by id: the tenant read back, as JSON; anything else fails the property. */
        const throughStore = (
          label: string,
          repository: TenantRepository.TenantRepository["Type"],
          tenant: Tenant,
          event: TenantCreated
        ) =>
          Effect.gen(function*() {
            const inserted = yield* Effect.exit(repository.insert(tenant, event))
            if (Exit.isFailure(inserted)) throw new Error(`${label} insert: ${describeExit(inserted)}`)
            const found = yield* Effect.exit(repository.findById(tenant.id, { includeDeleted: true }))
            if (Exit.isFailure(found) || Option.isNone(found.value)) {
              throw new Error(`${label} findById: ${describeExit(found)}`)
            }
            return JSON.stringify(found.value.value)
          })

        const check = (input: unknown, at: Date) =>
          Effect.gen(function*() {
            stats.runs++
            const id = TenantId.make(randomUUID())
            const stamp = new TenantLifecycle.Stamp({ eventId: randomUUID(), at, actor: "round-trip" })
            let created: ReturnType<typeof TenantLifecycle.create>
            const started = performance.now()
            try {
              created = TenantLifecycle.create(id, input, stamp)
            } catch (error) {
              throw new Error(`create threw ${String(error)}`)
            }
            stats.slowestCreateMs = Math.max(stats.slowestCreateMs, performance.now() - started)
            if (Either.isLeft(created)) {
              const error: unknown = created.left
              if (!(error instanceof InvalidInput.InvalidInput) || error._tag !== "InvalidInput") {
                throw new Error(`create failed with something other than InvalidInput: ${String(error)}`)
              }
              assert.isAbove(error.issues.length, 0, "an InvalidInput names at least one issue")
              for (const issue of error.issues) {
                assert.isString(issue.path)
                assert.isString(issue.message)
                stats.longestIssue = Math.max(stats.longestIssue, issue.path.length + issue.message.length)
              }
              assert.isString(error.message)
              stats.invalid++
              return
            }
            const { event, tenant } = created.right
            const expected = JSON.stringify(tenant)

            const memory = Context.get(
              yield* Layer.build(TenantRepository.layerMemory),
              TenantRepository.TenantRepository
            )
            sameJson("memory", expected, yield* throughStore("memory", memory, tenant, event))
            yield* reset
            sameJson("pg", expected, yield* throughStore("pg", pg, tenant, event))

            const encoded = TenantCache.encode(Option.some(tenant))
            if (Either.isLeft(encoded)) throw new Error(`TenantCache.encode: ${encoded.left.message}`)
            for (
              const [label, decoded] of [
                ["TenantCache.decode", TenantCache.decode(encoded.right)],
                ["TenantCache.makeDecoder", decodeCached(tenant.id, encoded.right)],
                ["TenantCache.makeDecoder (remembered)", decodeCached(tenant.id, encoded.right)]
              ] as const
            ) {
              if (Either.isLeft(decoded) || Option.isNone(decoded.right)) {
                throw new Error(`${label}: ${Either.isLeft(decoded) ? decoded.left.message : "none"}`)
              }
              sameJson(label, expected, JSON.stringify(decoded.right.value))
            }
            stats.roundTrips++
          })

        const property = FastCheck.asyncProperty(anyInput, createdAt, async (input, at) => {
          const exit = await Runtime.runPromiseExit(runtime)(Effect.scoped(check(input, at)))
          if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
        })
        const started = performance.now()
        const result = yield* Effect.promise(() =>
          FastCheck.check(property, {
            numRuns: ROUND_TRIP_RUNS,
            ...(ROUND_TRIP_SEED === undefined ? {} : { seed: ROUND_TRIP_SEED }),
            ...(ROUND_TRIP_PATH === undefined ? {} : { path: ROUND_TRIP_PATH })
          })
        )
        console.log(
          `TenantRoundTrip: ${stats.runs} inputs, ${stats.roundTrips} tenants round-tripped through memory, ` +
            `PostgreSQL and the cache codec, ${stats.invalid} InvalidInput (longest issue ${stats.longestIssue} ` +
            `characters), slowest create ${stats.slowestCreateMs.toFixed(0)} ms, seed ${result.seed}, ` +
            `${((performance.now() - started) / 1000).toFixed(1)} s`
        )
        if (result.failed) {
          assert.fail(
            `${FastCheck.defaultReportMessage(result)}\n\nReplay: ROUND_TRIP_SEED=${result.seed} ROUND_TRIP_PATH="${
              result.counterexamplePath ?? ""
            }" npx vitest run test/TenantRoundTrip.test.ts`
          )
        }
        // Both answers were seen, in fair numbers: the property is not vacuous either way.
        assert.isAtLeast(stats.roundTrips, ROUND_TRIP_RUNS / 5)
        assert.isAtLeast(stats.invalid, ROUND_TRIP_RUNS / 5)
      }),
    180_000
  )
})
