/**
 * The `tenant-infra` command-line tool: migrations, the outbox relay, and the dead letters of the delivery
 * ledger, over the database of `DATABASE_URL`; and a health check of the servers the environment names.
 * `bin.ts` runs it on Node; this module holds the command tree so that it can also run in-process.
 *
 * Needs the optional peer dependencies `@effect/cli`, `@effect/platform-node`, `@effect/printer` and
 * `@effect/printer-ansi`; the rest of the package does not.
 *
 * @since 0.1.0
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as Runtime from "@effect/platform/Runtime"
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlError from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { createRequire } from "node:module"
import { DeliveryLedger, MAX_LIST_LIMIT } from "./DeliveryLedger.js"
import * as InfraHealth from "./InfraHealth.js"
import * as Demo from "./internal/demo.js"
import { causeChain } from "./internal/errorText.js"
import { InvalidInput } from "./InvalidInput.js"
import * as Migrations from "./Migrations.js"
import * as OutboxRelay from "./OutboxRelay.js"
import { Misconfigured } from "./SendError.js"
import * as TenantInfra from "./TenantInfra.js"
import * as TenantNotifications from "./TenantNotifications.js"
import * as TenantRepositoryPg from "./TenantRepository/Pg.js"
import type { RepositoryError } from "./TenantRepositoryError.js"

/**
 * No connection to the database of `DATABASE_URL` could be made (or its URL is not one); `cause` says why.
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseUnavailable
  extends Schema.TaggedError<DatabaseUnavailable>("tenant-infra/Cli/DatabaseUnavailable")("DatabaseUnavailable", {
    cause: Schema.Defect
  })
{
  override get message(): string {
    return "cannot connect to the database of DATABASE_URL"
  }
}

/**
 * `health` found dependencies down: `down` names them.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unhealthy extends Schema.TaggedError<Unhealthy>("tenant-infra/Cli/Unhealthy")("Unhealthy", {
  down: Schema.Array(InfraHealth.Dependency)
}) {
  override get message(): string {
    return `${this.down.join(", ")} ${this.down.length === 1 ? "is" : "are"} down`
  }
}

/**
 * Every way a run can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type CliError =
  | ValidationError.ValidationError
  | InvalidInput
  | ConfigError.ConfigError
  | Misconfigured
  | DatabaseUnavailable
  | Unhealthy
  | SqlError.SqlError
  | Migrator.MigrationError
  | RepositoryError

/**
 * What the process exits with: `0` when the command succeeded or was stopped by a signal, `2` for a command line
 * that does not parse or make sense, `3` for a missing or invalid setting in the environment, `1` for any other
 * failure (the database unreachable, a migration that failed, a dependency that `health` found down).
 *
 * @since 0.1.0
 * @category models
 */
export const ExitCode = {
  success: 0,
  failure: 1,
  usage: 2,
  configuration: 3
} as const

const isUsageError = (error: unknown): boolean =>
  ValidationError.isValidationError(error) || error instanceof InvalidInput

const isConfigurationError = (error: unknown): error is ConfigError.ConfigError | Misconfigured =>
  ConfigError.isConfigError(error) || error instanceof Misconfigured

/**
 * The exit code for how a run ended (see {@link ExitCode}). An interruption alone is a graceful stop: the relay
 * under SIGTERM ends that way.
 *
 * @since 0.1.0
 * @category models
 */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return ExitCode.success
  const failures = Array.from(Cause.failures(exit.cause))
  if (failures.some(isUsageError)) return ExitCode.usage
  if (failures.some(isConfigurationError)) return ExitCode.configuration
  return ExitCode.failure
}

/**
 * A `Runtime.Teardown` for `NodeRuntime.runMain` that exits with {@link exitCode}.
 *
 * @since 0.1.0
 * @category models
 */
export const teardown: Runtime.Teardown = (exit, onExit) => onExit(exitCode(exit))

// The environment provider names a nested setting by its path joined with "_", so this is the variable to fix.
const variableOf = (path: ReadonlyArray<string>) => path.join("_")

/**
 * One line per problem. A missing secret's message is `<redacted>`, so the variable's name has to carry it; an
 * invalid value's message may quote the value, which `Config.redacted` settings never do.
 */
const configProblems = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
      return [...configProblems(error.left), ...configProblems(error.right)]
    case "Or":
      return [[...configProblems(error.left), ...configProblems(error.right)].join(", or ")]
    case "MissingData":
      return [`${variableOf(error.path)} is not set`]
    case "InvalidData":
      return [`${variableOf(error.path)} is invalid: ${error.message}`]
    case "SourceUnavailable":
      return [`${variableOf(error.path)} could not be read: ${error.message}`]
    case "Unsupported":
      return [`${variableOf(error.path)}: ${error.message}`]
  }
}

const problemsOf = (error: unknown): ReadonlyArray<string> =>
  ConfigError.isConfigError(error) ? configProblems(error) : [causeChain(error)]

/**
 * Prints why a run failed on stderr, one line per problem: errors by their message, a bug (a defect) with its
 * trace. An interruption is a stop, not a failure, and prints nothing; so do the command-line errors that
 * `@effect/cli` has already printed with the usage.
 *
 * @since 0.1.0
 * @category utils
 */
export const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (const failure of Cause.failures(cause)) {
      if (ValidationError.isValidationError(failure)) continue
      for (const problem of problemsOf(failure)) yield* Console.error(`tenant-infra: ${problem}`)
    }
    for (const defect of Cause.defects(cause)) {
      yield* Console.error(`tenant-infra: unexpected error\n${Cause.pretty(Cause.die(defect))}`)
    }
  })

// `Postgres.layer` fails with a `SqlError` only when it cannot connect; the driver's message ("Invalid URL",
// "ECONNREFUSED") does not say which setting to look at.
const PostgresLive = TenantInfra.layerPostgres.pipe(
  Layer.mapError((error) => ConfigError.isConfigError(error) ? error : new DatabaseUnavailable({ cause: error }))
)

/** The repository, its outbox and the delivery ledger on the database of `DATABASE_URL`, migrated on start. */
const DatabaseLive = TenantRepositoryPg.layer().pipe(Layer.provide(PostgresLive))

const NotificationsLive = TenantNotifications.layer().pipe(
  Layer.provide(Layer.merge(
    TenantInfra.layerSmtp,
    TenantInfra.layerSmsHttp
  ))
)

// The notifications and the database are built side by side: a missing SMTP or SMS setting is reported at once,
// not after a connection to the database has been attempted.
const RelayLive = OutboxRelay.layerConfig(TenantInfra.relayConfig).pipe(
  Layer.provide(Layer.merge(NotificationsLive, DatabaseLive))
)

const migrate = Command.make("migrate", {}, () =>
  Effect.gen(function*() {
    const ran = yield* Migrations.run
    if (ran.length === 0) {
      const known = Object.keys(Migrations.migrations).length
      return yield* Console.log(`Nothing to migrate: all ${known} migrations have run.`)
    }
    for (const [id, name] of ran) yield* Console.log(`ran ${id}_${name}`)
    yield* Console.log(`Ran ${ran.length} migration${ran.length === 1 ? "" : "s"}.`)
  }).pipe(Effect.provide(PostgresLive))).pipe(
    Command.withDescription(
      "Runs the package's database migrations that have not run yet (DATABASE_URL), and prints them."
    )
  )

const relay = Command.make("relay", {}, () => Layer.launch(RelayLive)).pipe(
  Command.withDescription(
    "Runs an outbox relay until SIGTERM or SIGINT, then lets the sends under way finish and releases its leases. " +
      "Reads DATABASE_URL, SMTP_URL, MAIL_FROM, SMS_GATEWAY_URL, SMS_API_KEY and the optional RELAY_* settings."
  )
)

const limit = Options.integer("limit").pipe(
  Options.filterMap(
    (n) => n >= 1 && n <= MAX_LIST_LIMIT ? Option.some(n) : Option.none(),
    `--limit must be between 1 and ${MAX_LIST_LIMIT}`
  ),
  Options.withDefault(100),
  Options.withDescription(`How many messages to print, at most ${MAX_LIST_LIMIT}.`)
)

/** One line per message, so that its fields split on tabs; a provider's reply may hold line breaks. */
const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

const deadLetters = Command.make("dead-letters", { limit }, ({ limit }) =>
  Effect.gen(function*() {
    const ledger = yield* DeliveryLedger
    const [letters, stats] = yield* Effect.all([ledger.list({ status: "dead", limit }), ledger.backlog])
    for (const letter of letters) {
      const error = Option.match(letter.lastError, { onNone: () => "-", onSome: oneLine })
      yield* Console.log([letter.key, letter.channel, letter.recipient, error].join("\t"))
    }
    yield* Console.log(
      letters.length < stats.dead
        ? `${letters.length} of ${stats.dead} dead letters shown (--limit ${limit}).`
        : `${letters.length} dead letter${letters.length === 1 ? "" : "s"}.`
    )
  })).pipe(
    Command.withDescription(
      "Prints the dead letters, one per line: key, channel, recipient and last error, separated by tabs."
    ),
    Command.provide(DatabaseLive)
  )

const pending = Command.make("pending", { limit }, ({ limit }) =>
  Effect.gen(function*() {
    const ledger = yield* DeliveryLedger
    const [messages, stats] = yield* Effect.all([ledger.list({ status: "pending", limit }), ledger.backlog])
    for (const message of messages) {
      const error = Option.match(message.lastError, { onNone: () => "-", onSome: oneLine })
      const next = Option.match(message.nextAttemptAt, { onNone: () => "-", onSome: (at) => at.toISOString() })
      yield* Console.log(
        [message.key, message.channel, message.recipient, String(message.attempts.length), next, error].join("\t")
      )
    }
    yield* Console.log(
      messages.length < stats.pending
        ? `${messages.length} of ${stats.pending} pending messages shown (--limit ${limit}).`
        : `${messages.length} pending message${messages.length === 1 ? "" : "s"}.`
    )
  })).pipe(
    Command.withDescription(
      "Prints the messages not yet delivered nor dead, one per line: key, channel, recipient, attempts so far, " +
        "next try (ISO time; already past: as soon as a relay is free) and last error, separated by tabs."
    ),
    Command.provide(DatabaseLive)
  )

const demo = Command.make("demo", {}, () =>
  // In memory whatever the environment says: a demo never writes to a real database or sends a real message.
  Demo.program.pipe(
    Effect.provide(
      TenantInfra.layerConfig({ relay: true }).pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
      )
    ),
    // The memory stack builds from nothing and the script expects each answer it gets: a failure is a bug.
    Effect.orDie,
    Effect.asVoid
  )).pipe(
    Command.withDescription(
      "Runs a short demo in memory (whatever the environment names): four tenants through their life, their " +
        "notifications delivered by a relay, and what the delivery ledger says of each message."
    )
  )

/** The dead letters to replay: some, by key, or `"all"`; the command line must name one or the other. */
const selection = Options.all({
  keys: Options.text("key").pipe(
    Options.repeated,
    Options.withDescription("The key of a dead letter to replay (repeat for several).")
  ),
  all: Options.boolean("all").pipe(Options.withDescription("Replay every dead letter."))
}).pipe(
  Options.mapEffect(({ all, keys }) =>
    all && keys.length > 0
      ? Effect.fail(ValidationError.invalidValue(HelpDoc.p("replay takes --key or --all, not both")))
      : !all && keys.length === 0
      ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(
        "replay needs the dead letters to replay: --key KEY (repeatable), or --all for every one"
      )))
      : Effect.succeed(all ? "all" as const : keys)
  )
)

const replay = Command.make("replay", { selection }, ({ selection }) =>
  Effect.gen(function*() {
    const ledger = yield* DeliveryLedger
    const replayed = yield* (selection === "all" ? ledger.replay() : ledger.replay(selection))
    yield* Console.log(`Replayed ${replayed} dead letter${replayed === 1 ? "" : "s"}.`)
    if (selection !== "all" && replayed < selection.length) {
      yield* Console.log(`${selection.length - replayed} of the keys given named no dead letter.`)
    }
  })).pipe(
    Command.withDescription("Puts dead letters back in the queue, with a fresh attempt budget: --key KEY... or --all."),
    Command.provide(DatabaseLive)
  )

const stats = Command.make("stats", {}, () =>
  Effect.gen(function*() {
    const ledger = yield* DeliveryLedger
    const stats = yield* ledger.stats
    const rows: ReadonlyArray<readonly [string, string]> = [
      ["unexpanded events", String(stats.unexpandedEvents)],
      ["undecodable events", String(stats.undecodableEvents)],
      ["pending", String(stats.pending)],
      ["in flight", String(stats.inFlight)],
      ["delivered", String(stats.delivered)],
      ["dead", String(stats.dead)],
      ["oldest pending", Option.match(stats.oldestPendingAt, { onNone: () => "-", onSome: (at) => at.toISOString() })]
    ]
    for (const [label, value] of rows) yield* Console.log(`${label.padEnd(20)}${value}`)
  })).pipe(
    Command.withDescription("Prints the delivery ledger's counts."),
    Command.provide(DatabaseLive)
  )

// A negative duration decodes as zero, which would forget every delivered message: refused, as a typo.
const durationOf = (text: string): Option.Option<Duration.Duration> =>
  Option.filter(
    Duration.decodeUnknown(text.trim()),
    (duration) => Duration.isFinite(duration) && !text.trim().startsWith("-")
  )

const olderThan = Options.text("older-than").pipe(
  Options.mapEffect((text) =>
    Option.match(durationOf(text), {
      onNone: () =>
        Effect.fail(ValidationError.invalidValue(HelpDoc.p(
          `--older-than takes a duration such as "30 days" or "12 hours", not ${JSON.stringify(text)}`
        ))),
      onSome: Effect.succeed
    })
  ),
  Options.withDescription("How long ago a message must have been delivered to be forgotten: \"30 days\", say.")
)

const prune = Command.make("prune", { olderThan }, ({ olderThan }) =>
  Effect.gen(function*() {
    const ledger = yield* DeliveryLedger
    const pruned = yield* ledger.prune(olderThan)
    yield* Console.log(
      `Forgot ${pruned} message${pruned === 1 ? "" : "s"} delivered more than ${Duration.format(olderThan)} ago.`
    )
  })).pipe(
    Command.withDescription(
      "Deletes delivered messages, and their attempts, delivered more than --older-than ago. Pending and dead " +
        "messages and the outbox's events are kept."
    ),
    Command.provide(DatabaseLive)
  )

const timeout = Options.text("timeout").pipe(
  Options.mapEffect((text) =>
    Option.match(Option.filter(durationOf(text), Duration.greaterThan(Duration.zero)), {
      onNone: () =>
        Effect.fail(ValidationError.invalidValue(HelpDoc.p(
          `--timeout takes a positive duration such as "2 seconds" or "500 millis", not ${JSON.stringify(text)}`
        ))),
      onSome: Effect.succeed
    })
  ),
  Options.withDefault(Duration.seconds(2)),
  Options.withDescription("How long each check may take before its dependency counts as down (default 2 seconds).")
)

/**
 * Each dependency `health` can check: the variable that says it is there, and the check on the layer that the
 * relay would build from the environment (so `SMTP_URL` comes with `MAIL_FROM`, `SMS_GATEWAY_URL` with
 * `SMS_API_KEY`). Building the layer is part of the check: a database that refuses connections fails there.
 */
const dependencies: ReadonlyArray<{
  readonly name: InfraHealth.Dependency
  readonly variable: string
  readonly run: Effect.Effect<void, unknown>
}> = [
  {
    name: "postgresql",
    variable: "DATABASE_URL",
    run: Effect.provide(InfraHealth.pingPostgresql, TenantInfra.layerPostgres)
  },
  { name: "redis", variable: "REDIS_URL", run: Effect.provide(InfraHealth.pingRedis, TenantInfra.layerRedis) },
  { name: "smtp", variable: "SMTP_URL", run: Effect.provide(InfraHealth.pingSmtp, TenantInfra.layerSmtp) },
  { name: "sms", variable: "SMS_GATEWAY_URL", run: Effect.provide(InfraHealth.pingSms, TenantInfra.layerSmsHttp) }
]

const health = Command.make("health", { timeout }, ({ timeout }) =>
  Effect.gen(function*() {
    const configured = yield* Effect.filter(
      dependencies,
      (dependency) => Effect.map(Config.option(Config.string(dependency.variable)), Option.isSome)
    )
    if (configured.length === 0) {
      return yield* Effect.fail(
        dependencies.map((dependency) => ConfigError.MissingData([dependency.variable], "not set")).reduce(
          (left, right) => ConfigError.Or(left, right)
        )
      )
    }
    // A setting that is missing or invalid makes its dependency down, and the run a configuration error (exit 3)
    // rather than an outage (exit 1).
    const misconfigured = yield* Ref.make(new Map<InfraHealth.Dependency, ConfigError.ConfigError | Misconfigured>())
    const report = yield* InfraHealth.fromProbes(
      configured.map((dependency) => ({
        name: dependency.name,
        run: dependency.run.pipe(
          Effect.tapError((error) =>
            isConfigurationError(error)
              ? Ref.update(misconfigured, (all) => new Map(all).set(dependency.name, error))
              : Effect.void
          ),
          Effect.mapError((error) => ConfigError.isConfigError(error) ? configProblems(error).join(", ") : error)
        )
      })),
      { timeout }
    ).check
    for (const dependency of dependencies) {
      const check = report.checks.find((check) => check.name === dependency.name)
      const line = check === undefined
        ? `not configured (${dependency.variable} is not set)`
        : [check.status.padEnd(4), `${check.latencyMillis} ms`, ...(check.error === undefined ? [] : [check.error])]
          .join("  ")
      yield* Console.log(`${dependency.name.padEnd(12)}${line}`)
    }
    const problems = yield* Ref.get(misconfigured)
    const down = report.checks.filter((check) => check.status === "down" && !problems.has(check.name))
      .map((check) => check.name)
    const failures: ReadonlyArray<ConfigError.ConfigError | Misconfigured | Unhealthy> = [
      ...problems.values(),
      ...(down.length === 0 ? [] : [new Unhealthy({ down })])
    ]
    if (failures.length > 0) {
      return yield* Effect.failCause(
        failures.map((error) => Cause.fail(error)).reduce((left, right) => Cause.parallel(left, right))
      )
    }
  })).pipe(
    Command.withDescription(
      "Checks the servers the environment names, each under --timeout and all at once, and prints one line per " +
        "dependency: up or down, latency, and why. PostgreSQL (DATABASE_URL), Redis (REDIS_URL), SMTP (SMTP_URL, " +
        "MAIL_FROM) and the SMS gateway (SMS_GATEWAY_URL, SMS_API_KEY), whichever are set. Exits 1 when one is down."
    )
  )

/**
 * The command tree: `migrate`, `relay`, `pending`, `dead-letters`, `replay`, `stats`, `prune`, `health` and
 * `demo`. Without a
 * subcommand it prints the help.
 *
 * @since 0.1.0
 * @category constructors
 */
export const command = Command.make("tenant-infra").pipe(
  Command.withDescription("Operates the tenant-infra database and outbox relay, and checks their dependencies."),
  Command.withSubcommands([migrate, relay, pending, deadLetters, replay, stats, prune, health, demo])
)

// Read when the tool starts rather than imported: JSON imports need import attributes, which the NodeNext build
// and tsx treat differently. `../package.json` is the package's from both `src/` and `dist/`.
const version = Effect.try(() => createRequire(import.meta.url)("../package.json") as unknown).pipe(
  Effect.flatMap(Schema.decodeUnknown(Schema.Struct({ version: Schema.String }))),
  Effect.map((pkg) => pkg.version),
  Effect.orDie
)

// Logs go to stderr, so that what a command prints on stdout (a list of dead letters, say) can be piped.
const StderrLogger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true }))

/**
 * Runs the command line `argv` (as in `process.argv`: the runtime and script first). A failure is printed (see
 * {@link report}) before the effect fails with it; {@link exitCode} turns the end into the process's exit code.
 *
 * @example
 * ```ts
 * import * as NodeContext from "@effect/platform-node/NodeContext"
 * import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
 * import * as Effect from "effect/Effect"
 * import * as Cli from "tenant-infra/Cli"
 *
 * Cli.run(process.argv).pipe(
 *   Effect.provide(NodeContext.layer),
 *   NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<void, CliError, CliApp.CliApp.Environment> =>
  Effect.flatMap(version, (version) => Command.run(command, { name: "tenant-infra", version })(argv)).pipe(
    Effect.tapErrorCause(report),
    Effect.provide(StderrLogger),
    withColorsWhenWanted
  )

// @effect/cli writes its help with ANSI styles whatever the output; a pipe, a file or NO_COLOR
// (https://no-color.org: set and not empty) gets plain text.
const ANSI_ESCAPE = /\u001b\[[0-9;]*m/g
const plain = (value: unknown): unknown => typeof value === "string" ? value.replace(ANSI_ESCAPE, "") : value

const withColorsWhenWanted = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() =>
    process.stdout.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""
      ? effect
      : Console.consoleWith((console) =>
        Console.withConsole(effect, {
          ...console,
          log: (...args) => console.log(...args.map(plain)),
          error: (...args) => console.error(...args.map(plain)),
          unsafe: {
            ...console.unsafe,
            log: (...args) => console.unsafe.log(...args.map(plain)),
            error: (...args) => console.unsafe.error(...args.map(plain))
          }
        })
      )
  )
