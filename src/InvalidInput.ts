/**
 * The error for input that does not decode: a tenant to create or update, a list query. It names every bad
 * field, so an API can answer with all of them at once.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as PlainData from "./internal/plainData.js"

/**
 * One problem with one field: `path` is dotted (`contact.email`), empty for the input as a whole.
 *
 * @since 0.1.0
 * @category models
 */
export const FieldIssue = Schema.Struct({
  path: Schema.String,
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type FieldIssue = typeof FieldIssue.Type

/**
 * The most issues an {@link InvalidInput} lists; a last one says how many more there were.
 *
 * @since 0.1.0
 * @category models
 */
export const MAX_ISSUES = 20

/**
 * The most characters of one issue, its path and message together. Values are never shown whole: text is cut
 * after {@link PREVIEW_LENGTH} characters, lists and objects are described by their size.
 *
 * @since 0.1.0
 * @category models
 */
export const MAX_ISSUE_LENGTH = 1_000

/**
 * @since 0.1.0
 * @category models
 */
export const PREVIEW_LENGTH = 40

const MAX_PATH_SEGMENT = 40
const MAX_PATH_LENGTH = 200

// Characters that would break a log line or reorder it on screen: controls, format characters (bidi overrides,
// zero-width ones), line and paragraph separators.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu

const cut = (text: string, max: number): string => {
  if (text.length <= max) return text
  const end = /[\ud800-\udbff]/.test(text.charAt(max - 2)) ? max - 2 : max - 1
  return `${text.slice(0, end)}\u2026`
}

const visible = (text: string): string =>
  text.replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/**
 * A short description of a value for an error message: text quoted and cut, other values by their kind and size.
 *
 * @since 0.1.0
 * @category utils
 */
export const preview = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      return value.length <= PREVIEW_LENGTH
        ? visible(JSON.stringify(value))
        : `${visible(JSON.stringify(cut(value, PREVIEW_LENGTH)))} (${value.length} characters)`
    case "number":
    case "boolean":
    case "undefined":
      return String(value)
    case "bigint":
      return `${value}n`
    case "symbol":
      return "a symbol"
    case "function":
      return "a function"
    default:
      if (value === null) return "null"
      if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? "" : "s"}`
      return value instanceof Date ? "a date" : "an object"
  }
}

const pathOf = (path: ReadonlyArray<PropertyKey>): string =>
  cut(path.map((segment) => visible(cut(String(segment), MAX_PATH_SEGMENT))).join("."), MAX_PATH_LENGTH)

const annotatedMessage = (issue: ParseResult.ParseIssue): { message: string; override: boolean } | undefined => {
  if (!("ast" in issue)) return undefined
  const annotation = SchemaAST.getMessageAnnotation(issue.ast)
  if (Option.isNone(annotation)) return undefined
  const message = annotation.value(issue)
  if (typeof message === "string") return { message, override: false }
  if (typeof message === "object" && message !== null && "override" in message && typeof message.message === "string") {
    return { message: message.message, override: message.override }
  }
  return undefined
}

const nounOf = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "StringKeyword":
      return "text"
    case "NumberKeyword":
      return "a number"
    case "BooleanKeyword":
      return "true or false"
    case "Literal":
      return ast.literal === null ? "null" : JSON.stringify(String(ast.literal))
    case "TypeLiteral":
      return "an object"
    case "TupleType":
      return "a list"
    case "Union": {
      const description = SchemaAST.getDescriptionAnnotation(ast)
      if (Option.isSome(description)) return description.value
      const nouns = ast.types.map(nounOf)
      return nouns.length <= 1 ? nouns.join("") : `${nouns.slice(0, -1).join(", ")} or ${nouns[nouns.length - 1]}`
    }
    case "Refinement":
      return Option.getOrElse(SchemaAST.getDescriptionAnnotation(ast), () => nounOf(ast.from))
    case "Transformation":
      return nounOf(ast.from)
    case "Declaration":
      return Option.getOrElse(SchemaAST.getDescriptionAnnotation(ast), () => "a value of another kind")
    default:
      return "a value of another kind"
  }
}

const expected = (ast: SchemaAST.AST, actual: unknown): string => {
  const noun = SchemaAST.isUnion(ast) && ast.types.every(SchemaAST.isLiteral) && ast.types.length > 1
    ? `one of ${ast.types.map(nounOf).join(", ")}`
    : nounOf(ast)
  return `must be ${noun}, got ${preview(actual)}`
}

// Whether the value failed by its type (a string where a number was expected), not by a rule of its type.
const isTypeMismatch = (issue: ParseResult.ParseIssue): boolean => {
  switch (issue._tag) {
    case "Type":
      return !SchemaAST.isRefinement(issue.ast)
    case "Refinement":
      return issue.kind === "From" && isTypeMismatch(issue.issue)
    case "Transformation":
      return issue.kind === "Encoded" && isTypeMismatch(issue.issue)
    default:
      return false
  }
}

const collect = (
  issue: ParseResult.ParseIssue,
  path: ReadonlyArray<PropertyKey>,
  found: Array<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>
): void => {
  const annotated = annotatedMessage(issue)
  switch (issue._tag) {
    case "Pointer":
      return collect(issue.issue, path.concat(issue.path), found)
    case "Missing":
      found.push({ path, message: "is required" })
      return
    case "Unexpected":
      found.push({ path, message: "is not a known field" })
      return
    case "Forbidden":
      found.push({ path, message: "could not be checked" })
      return
    case "Type":
      found.push({ path, message: annotated?.message ?? issue.message ?? expected(issue.ast, issue.actual) })
      return
    case "Refinement":
    case "Transformation":
      // As Schema's own formatters decide: a message on a refinement that failed on its input's type, or on a
      // transformation's ends, gives way to the inner one unless it overrides.
      if (
        annotated !== undefined && (annotated.override || issue.kind === "Predicate" || issue.kind === "Transformation")
      ) {
        found.push({ path, message: annotated.message })
        return
      }
      return collect(issue.issue, path, found)
    case "Composite":
      if (annotated?.override === true) {
        found.push({ path, message: annotated.message })
        return
      }
      if (SchemaAST.isUnion(issue.ast)) {
        // The value had the type of one member and broke one of its rules: that rule says what is wrong.
        const [only, ...others] = (Array.isArray(issue.issues) ? issue.issues : [issue.issues]).filter(
          (member) => !isTypeMismatch(member)
        )
        if (only !== undefined && others.length === 0) return collect(only, path, found)
      }
      if (SchemaAST.isUnion(issue.ast)) {
        // Each member's complaint would repeat the value once per member; one line says what was expected.
        found.push({ path, message: annotated?.message ?? expected(issue.ast, issue.actual) })
        return
      }
      for (const inner of Array.isArray(issue.issues) ? issue.issues : [issue.issues]) collect(inner, path, found)
  }
}

const issuesOf = (
  found: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>
): Array<FieldIssue> => {
  const shown = found.length > MAX_ISSUES ? found.slice(0, MAX_ISSUES - 1) : found
  const issues = shown.map((issue) => {
    const path = pathOf(issue.path)
    return { path, message: cut(issue.message, MAX_ISSUE_LENGTH - path.length - 2) }
  })
  if (shown.length < found.length) {
    issues.push({ path: "", message: `and ${found.length - shown.length} more issues` })
  }
  return issues
}

/**
 * Input that was rejected before anything was stored. `subject` says what the input was meant to be
 * (`tenant`, `tenant update`, `list query`), `issues` lists each bad field (at most {@link MAX_ISSUES}), in plain
 * words, each at most {@link MAX_ISSUE_LENGTH} characters with any value shown cut short.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>("tenant-infra/InvalidInput")("InvalidInput", {
  subject: Schema.String,
  issues: Schema.Array(FieldIssue)
}) {
  /**
   * Builds the error from Schema's `ParseError`, one issue per bad field.
   *
   * @since 0.1.0
   */
  static fromParseError(subject: string, error: ParseResult.ParseError): InvalidInput {
    const found: Array<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }> = []
    collect(error.issue, [], found)
    return new InvalidInput({ subject, issues: issuesOf(found) })
  }

  /**
   * The error for input that names one problem at one path.
   *
   * @since 0.1.0
   */
  static single(subject: string, path: ReadonlyArray<PropertyKey>, message: string): InvalidInput {
    return new InvalidInput({ subject, issues: issuesOf([{ path, message }]) })
  }

  /**
   * The bad fields' paths, in the order Schema reported them.
   *
   * @since 0.1.0
   */
  get fields(): ReadonlyArray<string> {
    return this.issues.map((issue) => issue.path)
  }

  override get message(): string {
    const details = this.issues.map((issue) => issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`)
    return `Invalid ${this.subject}: ${details.join("; ")}`
  }
}

/**
 * Options of {@link decode}. `dates`: the input may hold `Date` objects (a list query's time range).
 *
 * @since 0.1.0
 * @category models
 */
export interface DecodeOptions {
  readonly dates?: boolean | undefined
}

/**
 * Decodes untrusted input with every error reported and unknown fields rejected, failing with
 * {@link InvalidInput}. The input is first copied as plain data within fixed limits (see the README's input
 * rules): deep nesting, cycles, throwing getters or proxies, class instances, huge lists, objects or text are
 * refused before the schema sees them, so that no input can make decoding throw or take long.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = <A, I>(
  subject: string,
  schema: Schema.Schema<A, I>,
  options?: DecodeOptions
): (input: unknown) => Either.Either<A, InvalidInput> => {
  const decodeEither = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input) =>
    Either.match(PlainData.copy(input, options), {
      onLeft: (refusal) => Either.left(InvalidInput.single(subject, refusal.path, refusal.message)),
      onRight: (plain) => Either.mapLeft(decodeEither(plain), (error) => InvalidInput.fromParseError(subject, error))
    })
}
