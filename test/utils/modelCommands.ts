import * as FastCheck from "effect/FastCheck"

/**
 * Arbitraries for the repository properties (test/RepositoryModel.test.ts, test/TenantRoundTrip.test.ts). Commands
 * are plain data, so that fast-check shrinks them and prints a failing sequence readably; the test interprets
 * them. Values come from small pools on purpose: codes, names and domains that collide, names that sort and
 * search alike only when every layer lower-cases, collates and escapes the same way.
 */

/** The time every generated stamp is an offset from. */
export const BASE_TIME = Date.UTC(2024, 0, 1)

/** A stamp time: seconds after {@link BASE_TIME} (ties on purpose), or the first or last millisecond stored. */
export type At = number | "first" | "last"

export const timeOf = (at: At): Date =>
  at === "first"
    ? new Date("0001-01-01T00:00:00.000Z")
    : at === "last"
    ? new Date("9999-12-31T23:59:59.999Z")
    : new Date(BASE_TIME + at * 1000)

const atArbitrary: FastCheck.Arbitrary<At> = FastCheck.oneof(
  { weight: 30, arbitrary: FastCheck.integer({ min: 0, max: 12 }) },
  { weight: 1, arbitrary: FastCheck.constantFrom<Array<At>>("first", "last") }
)

/**
 * Text that stores are known to treat differently when they are not careful: escapes for LIKE, NUL, lone
 * surrogates, characters whose case mapping changes their length, characters beyond U+FFFF (which UTF-16 and
 * UTF-8 order differently), combining marks, control, format and bidi characters, full-width forms.
 */
export const oddStrings: ReadonlyArray<string> = [
  "",
  " ",
  "   ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udc00",
  "x\ud83d",
  "\ud83d\ude00",
  "%",
  "_",
  "\\",
  "\\%",
  "%_\\",
  "'",
  "\"",
  "\n",
  "\t",
  "\r\n",
  "\u0085",
  "\u00a0",
  "\u200b",
  "\u202e",
  "\u2028",
  "\ufeff",
  "\uffff",
  "İ",
  "i\u0307",
  "ß",
  "SS",
  "ǅ",
  "Ω",
  "\u2126",
  "𐐀",
  "𐐨",
  "𝒜",
  "\uff21",
  "é",
  "e\u0301",
  "测试",
  "（",
  "..",
  "-",
  "a-",
  "--"
]

const oddString = FastCheck.constantFrom(...oddStrings)

/** A code as stored, and how a user might type it. */
const codePool = [
  "acme",
  "acme-corp",
  "beta",
  "b2b",
  "zeta-9",
  "omega",
  "delta-x",
  "kappa",
  "s2-s3",
  "t3st"
] as const

const typedCode = FastCheck.record({
  base: FastCheck.constantFrom(...codePool),
  upper: FastCheck.boolean(),
  separator: FastCheck.constantFrom("-", "_", " "),
  pad: FastCheck.constantFrom("", " ", "\t", "  ")
}).map(({ base, pad, separator, upper }) => {
  const typed = base.replaceAll("-", separator)
  return pad + (upper ? typed.toUpperCase() : typed) + pad
})

/** Codes that no tenant can have once normalised. */
const badCodes = ["1acme", "ac", "acme-", "acme--x", "ａｃｍｅ", "acme\u0000", "acme\ud800", "ac!me", "a".repeat(51)]

export const codeInput: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { weight: 12, arbitrary: typedCode },
  { weight: 1, arbitrary: FastCheck.constantFrom(...badCodes) }
)

/** Names that sort and search in interesting ways: case, accents, other scripts, `_`. */
export const namePool = [
  "Acme Inc.",
  "ACME inc.",
  "acme  Corp",
  "Beta",
  "Société Générale",
  "Societe Generale",
  "e\u0301clair",
  "测试（北京）",
  "Zeta_Corp",
  "O'Reilly",
  "İstanbul Ltd",
  "STRASSE ß",
  "Ωmega",
  "\u2126hm",
  "ǅungla"
] as const

/**
 * Names whose order differs between UTF-16 code units and code points (PostgreSQL's "C" collation): beyond
 * U+FFFF (surrogates, U+D800-U+DFFF in UTF-16) against U+E000-U+FFFF (full-width forms, ligatures).
 */
export const astralNamePool = ["𐐀𐐨 Deseret", "𝒜cme", "ａｃｍｅ", "\ufb01ne Corp"] as const

export const nameInput: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { weight: 15, arbitrary: FastCheck.constantFrom(...namePool) },
  { weight: 8, arbitrary: FastCheck.constantFrom(...astralNamePool) },
  { weight: 1, arbitrary: FastCheck.constantFrom("A", "100% Corp", "back\\slash", "x\u0000y") }
)

const domainPool = ["acme.example.com", "ACME.Example.COM.", "beta.example.com", "xn--80ak6aa92e.com", "b2b.test"]

export const domainInput: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { weight: 12, arbitrary: FastCheck.constantFrom(...domainPool) },
  { weight: 1, arbitrary: FastCheck.constantFrom("localhost", "a..b", "acme.example.com\u0000", "-x.com") }
)

/** Setting keys whose order differs by insertion, by ASCII and by PostgreSQL's jsonb (shorter keys first). */
const settingKey = FastCheck.constantFrom("a", "b", "B", "Z", "aa", "a1", "a_b", "a-b", "a.b", "ui.theme", "seats")

/** A valid setting value: strings with odd but storable text, numbers at the edges of JSON, booleans, null. */
export const settingValue: FastCheck.Arbitrary<string | number | boolean | null> = FastCheck.oneof(
  FastCheck.string({ maxLength: 6 }),
  FastCheck.string({ unit: "grapheme", maxLength: 4 }),
  FastCheck.constantFrom(...oddStrings.filter((text) => !text.includes("\u0000") && !/[\ud800-\udfff]/.test(text))),
  FastCheck.integer(),
  FastCheck.double({ noNaN: true, noDefaultInfinity: true }),
  FastCheck.constantFrom(0, -0, 1e21, 5e-324, Number.MAX_SAFE_INTEGER + 2, 1.7976931348623157e308, 0.1 + 0.2),
  FastCheck.boolean(),
  FastCheck.constant(null)
)

export const settingsInput: FastCheck.Arbitrary<Record<string, unknown>> = FastCheck.dictionary(
  settingKey,
  settingValue,
  { maxKeys: 4, noNullPrototype: true }
)

const contactInput = FastCheck.record({
  email: FastCheck.constantFrom("admin@acme.test", "Admin@ACME.test", "ops@beta.example.com"),
  phone: FastCheck.constantFrom("+8613800138000", "+86 138-0013-8000", "+1 (415) 555.0100"),
  locale: FastCheck.constantFrom("en", "zh-CN")
}, { requiredKeys: ["email"] })

/** A field present now and then (`percent` of the time), absent otherwise. */
const sometimes = <A>(percent: number, arbitrary: FastCheck.Arbitrary<A>): FastCheck.Arbitrary<A | undefined> =>
  FastCheck.oneof(
    { weight: 100 - percent, arbitrary: FastCheck.constant(undefined) },
    { weight: percent, arbitrary }
  )

/** Drops the fields that are undefined, so that a printed query shows only what it asks. */
const defined = <A extends object>(fields: A): { [K in keyof A]?: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as {
    [K in keyof A]?: Exclude<A[K], undefined>
  }

/** Input to `TenantLifecycle.create`: mostly valid, each field now and then not. */
export const createInput: FastCheck.Arbitrary<Record<string, unknown>> = FastCheck.record({
  code: codeInput,
  name: nameInput,
  contact: contactInput,
  domain: sometimes(30, domainInput),
  settings: sometimes(50, settingsInput)
}).map(defined)

/** Input to `TenantLifecycle.update`: any subset of the fields, `domain: null` removing the domain. */
export const updateInput: FastCheck.Arbitrary<Record<string, unknown>> = FastCheck.record({
  code: sometimes(30, codeInput),
  name: sometimes(30, nameInput),
  contact: sometimes(15, contactInput),
  domain: sometimes(25, FastCheck.oneof(domainInput, FastCheck.constant(null))),
  settings: sometimes(30, settingsInput)
}).map(defined)

const statusArbitrary = FastCheck.constantFrom("pending", "active", "suspended", "deleted")

const searchText: FastCheck.Arbitrary<string> = FastCheck.oneof(
  {
    weight: 4,
    arbitrary: FastCheck.constantFrom("acme", "ACME", "corp", "inc.", " acme   inc ", "é", "É", "e", "eclair")
  },
  {
    weight: 4,
    arbitrary: FastCheck.constantFrom("测试", "_", "%", "\\", "b2b", "zeta-", "ß", "ss", "i̇", "İ", "𐐨", "ω")
  },
  { weight: 3, arbitrary: oddString },
  // Text no store can hold, and halves of the surrogate pair in "𐐀𐐨 Deseret" (which `includes` would find).
  { weight: 2, arbitrary: FastCheck.constantFrom("\u0000", "acme\u0000", "\ud801", "\udc28", "\ud801x") },
  { weight: 2, arbitrary: FastCheck.string({ maxLength: 3 }) },
  { weight: 1, arbitrary: FastCheck.string({ unit: "binary", maxLength: 3 }) },
  { weight: 1, arbitrary: FastCheck.constant("a".repeat(101)) }
)

/** A list query as plain data: times are {@link At}s, made into dates when the query is run. */
export interface ListQueryData {
  readonly status?: string | ReadonlyArray<string>
  readonly search?: string
  readonly createdFrom?: At
  readonly createdBefore?: At
  readonly includeDeleted?: boolean
  readonly sortBy?: string
  readonly sortDirection?: string
  readonly page?: number
  readonly pageSize?: number
  readonly count?: string
  /** A cursor typed by hand: the interpreter follows real ones (see the `list` command's `follow`). */
  readonly after?: string
}

const base64url = (json: unknown): string => Buffer.from(JSON.stringify(json)).toString("base64url")

/**
 * Cursors that are not a page's: text that is no base64url, base64url of no JSON, and lists shaped almost like a
 * cursor (a number for a name, text PostgreSQL cannot hold, a time past the year 9999, an id in upper case). The
 * last ones are well formed, for a tenant of no sequence: each layer must continue from that position alike.
 */
const handTypedCursor: FastCheck.Arbitrary<string> = FastCheck.constantFrom(
  "",
  "not a cursor",
  "eyJ9",
  "x".repeat(2_049),
  base64url(["name", "asc", 1, "00000000-0000-4000-8000-000000000000", 1]),
  base64url(["name", "asc", "acme\u0000", "00000000-0000-4000-8000-000000000000", 1]),
  base64url(["name", "asc", "acme", "00000000-0000-4000-8000-00000000000A", 1]),
  base64url(["createdAt", "desc", 253402300800000, "00000000-0000-4000-8000-000000000000", 1]),
  base64url(["name", "asc", "acme inc.", "00000000-0000-4000-8000-000000000000", 1]),
  base64url(["name", "desc", "\ud801\udc28", "ffffffff-ffff-4fff-bfff-ffffffffffff", 7]),
  base64url(["createdAt", "desc", BASE_TIME + 6_000, "80000000-0000-4000-8000-000000000000", 3]),
  base64url(["code", "asc", "beta", "00000000-0000-4000-8000-000000000000", 0])
)

export const listQuery: FastCheck.Arbitrary<ListQueryData> = FastCheck.record({
  status: sometimes(
    25,
    FastCheck.oneof(statusArbitrary, FastCheck.array(statusArbitrary, { minLength: 1, maxLength: 3 }))
  ),
  search: sometimes(35, searchText),
  createdFrom: sometimes(15, atArbitrary),
  createdBefore: sometimes(15, atArbitrary),
  includeDeleted: sometimes(50, FastCheck.boolean()),
  sortBy: sometimes(75, FastCheck.constantFrom("name", "code", "createdAt", "updatedAt")),
  sortDirection: sometimes(50, FastCheck.constantFrom("asc", "desc")),
  page: sometimes(
    35,
    FastCheck.oneof(
      { weight: 12, arbitrary: FastCheck.integer({ min: 1, max: 3 }) },
      { weight: 1, arbitrary: FastCheck.constantFrom(0, 1.5, 1e6) }
    )
  ),
  pageSize: sometimes(
    60,
    FastCheck.oneof(
      { weight: 12, arbitrary: FastCheck.integer({ min: 1, max: 4 }) },
      { weight: 1, arbitrary: FastCheck.constantFrom(0, 100, 101) }
    )
  ),
  count: sometimes(30, FastCheck.constantFrom("exact", "estimate", "none", "approximate")),
  after: sometimes(5, handTypedCursor)
}).map(defined)

export const listQueryInput = (query: ListQueryData): Record<string, unknown> => ({
  ...query,
  ...(query.createdFrom === undefined ? {} : { createdFrom: timeOf(query.createdFrom) }),
  ...(query.createdBefore === undefined ? {} : { createdBefore: timeOf(query.createdBefore) })
})

/** Lookup input that is not a string, as a JavaScript caller may pass. */
const notAString = FastCheck.constantFrom<Array<unknown>>(undefined, null, 42, ["acme"], { code: "acme" })

/** What a lookup by id asks for: a known tenant's id, that id in upper case, or an arbitrary input. */
export type IdTarget =
  | { readonly handle: number; readonly upper: boolean }
  | { readonly raw: unknown }

const idTarget: FastCheck.Arbitrary<IdTarget> = FastCheck.oneof(
  { weight: 8, arbitrary: FastCheck.record({ handle: FastCheck.nat(7), upper: FastCheck.boolean() }) },
  {
    weight: 1,
    arbitrary: FastCheck.record({
      raw: FastCheck.oneof(FastCheck.uuid(), oddString, notAString, FastCheck.constant("not-a-uuid"))
    })
  }
)

/**
 * What a lookup by code or domain asks for: the code or domain of a tenant of the sequence as it is now (`age`
 * 0) or was before its last writes (a renamed tenant's old code must find nothing, from the cache too), typed in
 * upper case or with `_`, spaces and a trailing dot; or an arbitrary input.
 */
export type LookupTarget =
  | { readonly handle: number; readonly age: number; readonly upper: boolean; readonly decorated: boolean }
  | { readonly raw: unknown }

const lookupTarget = (raw: FastCheck.Arbitrary<unknown>): FastCheck.Arbitrary<LookupTarget> =>
  FastCheck.oneof(
    {
      weight: 6,
      arbitrary: FastCheck.record({
        handle: FastCheck.nat(7),
        age: FastCheck.oneof({ weight: 2, arbitrary: FastCheck.constant(0) }, {
          weight: 1,
          arbitrary: FastCheck.nat(2)
        }),
        upper: FastCheck.boolean(),
        decorated: FastCheck.boolean()
      })
    },
    { weight: 4, arbitrary: FastCheck.record({ raw }) }
  )

export type Transition = "activate" | "suspend" | "softDelete" | "restore"

/**
 * One step of a sequence. `handle` picks a tenant the sequence created (modulo their number); `stale` picks an
 * older version of it than the last one written (0: the last), so that its save expects the wrong version.
 * `lookupEverything` looks a tenant up by its id and by every code and domain it ever had: a cache that kept a key
 * a write should have invalidated answers with a tenant that the stores no longer have there.
 */
export type Command =
  | {
    readonly op: "insert"
    readonly input: Record<string, unknown>
    readonly at: At
    readonly idSeed: number
    readonly reuseIdOf: number | undefined
  }
  | {
    readonly op: "transition"
    readonly handle: number
    readonly kind: Transition
    readonly at: At
    readonly stale: number
    readonly reason?: string
  }
  | {
    readonly op: "update"
    readonly handle: number
    readonly patch: Record<string, unknown>
    readonly at: At
    readonly stale: number
  }
  | { readonly op: "repeatLastWrite" }
  | { readonly op: "findById"; readonly target: IdTarget; readonly includeDeleted: boolean }
  | { readonly op: "findByCode"; readonly code: LookupTarget }
  | { readonly op: "findByDomain"; readonly domain: LookupTarget }
  | { readonly op: "lookupEverything"; readonly handle: number }
  | {
    readonly op: "list"
    readonly query: ListQueryData
    /** How many pages to read after the first, each `after` the `nextCursor` of the one before. */
    readonly follow: number
    /** Whether the last page followed flips the sort direction: its cursor belongs to the other one. */
    readonly flipLast: boolean
  }
  | { readonly op: "countByStatus" }

const handle = FastCheck.nat(7)
const stale = FastCheck.oneof(
  { weight: 5, arbitrary: FastCheck.constant(0) },
  { weight: 1, arbitrary: FastCheck.integer({ min: 1, max: 3 }) }
)

const insert = FastCheck.record({
  op: FastCheck.constant("insert" as const),
  input: createInput,
  at: atArbitrary,
  idSeed: FastCheck.nat(0xffff),
  // Most inserts get an id of their own; a few take the id of a tenant of the sequence.
  reuseIdOf: sometimes(10, handle)
})

export const command: FastCheck.Arbitrary<Command> = FastCheck.oneof(
  { weight: 6, arbitrary: insert },
  {
    weight: 6,
    arbitrary: FastCheck.record({
      op: FastCheck.constant("transition" as const),
      handle,
      kind: FastCheck.constantFrom<Array<Transition>>("activate", "suspend", "softDelete", "restore"),
      at: atArbitrary,
      stale,
      reason: FastCheck.constantFrom("unpaid", "理由：欠费", "a".repeat(500))
    }, { requiredKeys: ["op", "handle", "kind", "at", "stale"] })
  },
  {
    weight: 4,
    arbitrary: FastCheck.record({
      op: FastCheck.constant("update" as const),
      handle,
      patch: updateInput,
      at: atArbitrary,
      stale
    })
  },
  { weight: 1, arbitrary: FastCheck.constant({ op: "repeatLastWrite" as const }) },
  {
    weight: 3,
    arbitrary: FastCheck.record({
      op: FastCheck.constant("findById" as const),
      target: idTarget,
      includeDeleted: FastCheck.boolean()
    })
  },
  {
    weight: 3,
    arbitrary: FastCheck.record({
      op: FastCheck.constant("findByCode" as const),
      code: lookupTarget(FastCheck.oneof(
        { weight: 8, arbitrary: codeInput },
        { weight: 1, arbitrary: oddString },
        { weight: 1, arbitrary: notAString }
      ))
    })
  },
  {
    weight: 2,
    arbitrary: FastCheck.record({
      op: FastCheck.constant("findByDomain" as const),
      domain: lookupTarget(FastCheck.oneof(
        { weight: 8, arbitrary: domainInput },
        { weight: 1, arbitrary: oddString },
        { weight: 1, arbitrary: notAString }
      ))
    })
  },
  {
    weight: 3,
    arbitrary: FastCheck.record({ op: FastCheck.constant("lookupEverything" as const), handle })
  },
  {
    weight: 5,
    arbitrary: FastCheck.record({
      op: FastCheck.constant("list" as const),
      query: listQuery,
      follow: FastCheck.oneof({ weight: 1, arbitrary: FastCheck.constant(0) }, {
        weight: 2,
        arbitrary: FastCheck.integer({ min: 1, max: 4 })
      }),
      flipLast: FastCheck.oneof({ weight: 9, arbitrary: FastCheck.constant(false) }, {
        weight: 1,
        arbitrary: FastCheck.constant(true)
      }),
      walkPageSize: FastCheck.integer({ min: 1, max: 2 })
    }).map(({ walkPageSize, ...list }) =>
      // A sequence holds a few tenants: pages of one or two leave pages for a walk to follow.
      list.follow === 0 ? list : { ...list, query: { ...list.query, pageSize: walkPageSize } }
    )
  },
  { weight: 1, arbitrary: FastCheck.constant({ op: "countByStatus" as const }) }
)

/** A sequence: a few inserts first, so that the commands after them have tenants to act on. */
export const sequence: FastCheck.Arbitrary<ReadonlyArray<Command>> = FastCheck.tuple(
  FastCheck.array(insert, { minLength: 1, maxLength: 4 }),
  // Lengths up to the maximum from the first run (fast-check starts small otherwise); shrinks down to none.
  FastCheck.array(command, { maxLength: 20, size: "max" })
).map(([inserts, rest]) => [...inserts, ...rest])
