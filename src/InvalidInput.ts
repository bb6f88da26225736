/**
 * The error for input that does not decode: a tenant to create or update, a list query. It names every bad
 * field, so an API can answer with all of them at once.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

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
 * Input that was rejected before anything was stored. `subject` says what the input was meant to be
 * (`tenant`, `tenant update`, `list query`), `issues` lists each bad field.
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
    const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
      path: issue.path.map(String).join("."),
      message: issue.message
    }))
    return new InvalidInput({ subject, issues })
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
 * Decodes unknown input with every error reported and unknown fields rejected, failing with
 * {@link InvalidInput}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = <A, I>(
  subject: string,
  schema: Schema.Schema<A, I>
): (input: unknown) => Either.Either<A, InvalidInput> => {
  const decodeEither = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input) => Either.mapLeft(decodeEither(input), (error) => InvalidInput.fromParseError(subject, error))
}
