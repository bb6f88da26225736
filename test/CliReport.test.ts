/**
 * How the CLI words a failure: one line per problem, an error's message followed by its causes' messages, each
 * only once (a driver's error often quotes its cause word for word).
 */
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Cli from "../src/Cli.js"

const printed = (cause: Cause.Cause<unknown>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const current = yield* Console.consoleWith(Effect.succeed)
    const console: Console.Console = {
      ...current,
      error: (...args) => Effect.sync(() => void lines.push(args.join(" ")))
    }
    yield* Cli.report(cause).pipe(Effect.withConsole(console))
    return lines
  })

describe("Cli.report", () => {
  it.effect("a cause that says what its error said is not repeated", () =>
    Effect.gen(function*() {
      const timedOut = new Error("Connection timed out")
      const lines = yield* printed(
        Cause.fail(
          new Cli.DatabaseUnavailable({ cause: new SqlError({ message: "Connection timed out", cause: timedOut }) })
        )
      )
      assert.deepStrictEqual(lines, [
        "tenant-infra: cannot connect to the database of DATABASE_URL: Connection timed out"
      ])
    }))

  it.effect("causes that add something are kept, in order", () =>
    Effect.gen(function*() {
      const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })
      const lines = yield* printed(
        Cause.fail(
          new Cli.DatabaseUnavailable({ cause: new SqlError({ message: "Connection failed", cause: refused }) })
        )
      )
      assert.deepStrictEqual(lines, [
        "tenant-infra: cannot connect to the database of DATABASE_URL: Connection failed: connect ECONNREFUSED 127.0.0.1:1"
      ])
    }))

  it.effect("every bad variable on its own line, never a secret's value", () =>
    Effect.gen(function*() {
      const lines = yield* printed(
        Cause.fail(ConfigError.And(
          ConfigError.InvalidData(["REDIS_URL"], "must be a URL such as redis://host:6379/0"),
          ConfigError.MissingData(["MAIL_FROM"], "Expected MAIL_FROM to exist")
        ))
      )
      assert.deepStrictEqual(lines, [
        "tenant-infra: REDIS_URL is invalid: must be a URL such as redis://host:6379/0",
        "tenant-infra: MAIL_FROM is not set"
      ])
    }))
})
