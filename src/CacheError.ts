/**
 * The error of a cache that failed to answer.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A cache that failed to answer: `Unreachable` (no connection), `Timeout` (no answer in time) or `Response`
 * (it answered with an error). Readers treat every one of them as a miss.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheError extends Schema.TaggedError<CacheError>("tenant-infra/CacheError")("CacheError", {
  reason: Schema.Literal("Unreachable", "Timeout", "Response"),
  operation: Schema.String,
  detail: Schema.String,
  cause: Schema.optionalWith(Schema.Defect, { exact: true })
}) {
  override get message(): string {
    return `CacheStore.${this.operation}: ${this.reason}: ${this.detail}`
  }
}
