/**
 * Health checks of the servers an application depends on: PostgreSQL (`select 1`), Redis (`PING`), the SMTP
 * server (its greeting) and the SMS gateway (any HTTP answer). Each check runs under a timeout, all of them at
 * once, and reports up or down, how long it took and, when down, why: the whole check takes the timeout at most,
 * and never fails. `tenant-infra health` prints it.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { CacheError } from "./CacheError.js"
import { CacheStore } from "./CacheStore.js"
import { causeChain } from "./internal/errorText.js"
import { Mailer } from "./Mailer.js"
import type { SendError } from "./SendError.js"
import { SmsGateway } from "./SmsGateway.js"

/**
 * What a check is about.
 *
 * @since 0.1.0
 * @category models
 */
export const Dependency = Schema.Literal("postgresql", "redis", "smtp", "sms")

/**
 * @since 0.1.0
 * @category models
 */
export type Dependency = typeof Dependency.Type

/**
 * The outcome of one check. `error` says why a dependency is down, in one line without secrets: no password,
 * no credentials of a URL, no API key.
 *
 * @since 0.1.0
 * @category models
 */
export const HealthCheck = Schema.Struct({
  name: Dependency,
  status: Schema.Literal("up", "down"),
  /** From the start of the check to its answer, or to the timeout. */
  latencyMillis: Schema.Number,
  error: Schema.optionalWith(Schema.String, { exact: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface HealthCheck extends Schema.Schema.Type<typeof HealthCheck> {}

/**
 * Every check, in the order of {@link Dependency}; `healthy` when every one is up (so also when there is none).
 *
 * @since 0.1.0
 * @category models
 */
export const HealthReport = Schema.Struct({
  healthy: Schema.Boolean,
  checks: Schema.Array(HealthCheck)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface HealthReport extends Schema.Schema.Type<typeof HealthReport> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Checks every dependency now. Never fails: a dependency that is down is in the report. */
  readonly check: Effect.Effect<HealthReport>
}

/**
 * @since 0.1.0
 * @category services
 */
export class InfraHealth extends Context.Tag("tenant-infra/InfraHealth")<InfraHealth, Service>() {}

/**
 * One check: `run` succeeds when the dependency answered. Its failure, or a defect, is described for the report.
 *
 * @since 0.1.0
 * @category models
 */
export interface Probe {
  readonly name: Dependency
  readonly run: Effect.Effect<unknown, unknown>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long each check may take before its dependency counts as down (default 2 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * `select 1` through the `SqlClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pingPostgresql: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => Effect.asVoid(sql`select 1`)
)

/**
 * The cache store's `ping` (Redis: `PING`); a store without one (in memory) is always there.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pingRedis: Effect.Effect<void, CacheError, CacheStore> = Effect.flatMap(
  CacheStore,
  (store) => store.ping ?? Effect.void
)

/**
 * The mailer's `ping` (SMTP: the server's greeting, then QUIT); a mailer without one is always there.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pingSmtp: Effect.Effect<void, SendError, Mailer> = Effect.flatMap(
  Mailer,
  (mailer) => mailer.ping ?? Effect.void
)

/**
 * The SMS gateway's `ping` (HTTP: any answer to `HEAD`); a gateway without one is always there.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pingSms: Effect.Effect<void, SendError, SmsGateway> = Effect.flatMap(
  SmsGateway,
  (gateway) => gateway.ping ?? Effect.void
)

/**
 * The probes for the dependencies in the context: PostgreSQL when there is a `SqlClient`, and Redis, SMTP and
 * the SMS gateway when the `CacheStore`, `Mailer` or `SmsGateway` there reaches a server (has a `ping`); the
 * memory layers do not, and are not dependencies.
 *
 * @since 0.1.0
 * @category constructors
 */
export const probes: Effect.Effect<ReadonlyArray<Probe>> = Effect.gen(function*() {
  const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
  const cache = Option.flatMapNullable(yield* Effect.serviceOption(CacheStore), (store) => store.ping)
  const mailer = Option.flatMapNullable(yield* Effect.serviceOption(Mailer), (mailer) => mailer.ping)
  const sms = Option.flatMapNullable(yield* Effect.serviceOption(SmsGateway), (gateway) => gateway.ping)
  const found: ReadonlyArray<Option.Option<Probe>> = [
    Option.map(sql, (sql): Probe => ({ name: "postgresql", run: sql`select 1` })),
    Option.map(cache, (run): Probe => ({ name: "redis", run })),
    Option.map(mailer, (run): Probe => ({ name: "smtp", run })),
    Option.map(sms, (run): Probe => ({ name: "sms", run }))
  ]
  return Arr.getSomes(found)
})

// Error messages come from drivers and servers: they name hosts, never passwords as far as we know, but a URL or
// a connection string can end up in one, and a health report is printed, logged and served.
const URL_CREDENTIALS = /([a-z][a-z\d+.-]*:\/\/)[^\s@]+@/gi
const SECRET_PARAMETERS = /\b(password|passwd|pwd|pass|api[_-]?key|token|secret)=[^\s&;,]+/gi
const MAX_ERROR_CHARS = 300

const scrub = (text: string): string =>
  text.replace(URL_CREDENTIALS, "$1<redacted>@").replace(SECRET_PARAMETERS, "$1=<redacted>")

/** An error and its causes on one line (see `causeChain`), cut short and scrubbed of credentials. */
const describe = (error: unknown): string => {
  const line = scrub(causeChain(error).replace(/\s+/g, " ").trim())
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS - 1)}…` : line
}

const order = Dependency.literals

/**
 * A service that runs `probes`, all at once, each under the timeout. A probe that does not finish in time is
 * left to end in the background: the report never waits for it, not even for its interruption (a PostgreSQL
 * query, interrupted, asks the server to cancel it, over a connection that may hang as well).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromProbes = (probes: ReadonlyArray<Probe>, options: Options = {}): Service => {
  const timeout = Duration.decode(options.timeout ?? Duration.seconds(2))
  const sorted = [...probes].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))

  const checkOne = (probe: Probe): Effect.Effect<HealthCheck> =>
    Effect.gen(function*() {
      const start = yield* Clock.currentTimeNanos
      const outcome = yield* probe.run.pipe(Effect.exit, Effect.disconnect, Effect.timeoutOption(timeout))
      const latencyMillis = Math.round(Number((yield* Clock.currentTimeNanos) - start) / 1_000_000)
      if (Option.isNone(outcome)) {
        return {
          name: probe.name,
          status: "down",
          latencyMillis,
          error: `no answer within ${Duration.format(timeout)}`
        }
      }
      return Exit.isSuccess(outcome.value)
        ? { name: probe.name, status: "up", latencyMillis }
        : { name: probe.name, status: "down", latencyMillis, error: describe(Cause.squash(outcome.value.cause)) }
    })

  return {
    check: Effect.forEach(sorted, checkOne, { concurrency: "unbounded" }).pipe(
      Effect.map((checks) => ({ healthy: checks.every((check) => check.status === "up"), checks })),
      Effect.withSpan("InfraHealth.check", {
        captureStackTrace: false,
        attributes: { "health.dependencies": sorted.map((probe) => probe.name) }
      })
    )
  }
}

/**
 * The service for the dependencies in the context (see {@link probes}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.map(probes, (probes) => fromProbes(probes, options))

/**
 * Checks the dependencies the layer is given: provide it with the application's `SqlClient`, `CacheStore`,
 * `Mailer` and `SmsGateway`, whichever it has.
 *
 * @example
 * ```ts
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 * import { InfraHealth, TenantInfra } from "tenant-infra"
 *
 * const Health = InfraHealth.layer({ timeout: "1 second" }).pipe(
 *   Layer.provide(Layer.merge(TenantInfra.layerPostgres, TenantInfra.layerRedis))
 * )
 *
 * const program = Effect.gen(function*() {
 *   const report = yield* Effect.flatMap(InfraHealth.InfraHealth, (health) => health.check)
 *   for (const check of report.checks) {
 *     console.log(check.name, check.status, `${check.latencyMillis} ms`, check.error ?? "")
 *   }
 * }).pipe(Effect.provide(Health))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<InfraHealth> => Layer.effect(InfraHealth, make(options))
