/**
 * The whole stack from the environment, in one layer: the repository, the cache, the notifications and, if
 * asked, the relay, each from the variables that are set.
 *
 * | set | provides |
 * | --- | --- |
 * | nothing | the memory repository, and memory senders that keep every message (the embedded default) |
 * | `DATABASE_URL` | the PostgreSQL repository (migrated on start), with a cache in front (memory, or Redis below) |
 * | `REDIS_URL` | a Redis cache store (`CACHE_TIERS=2`: a memory tier in front of it) |
 * | `SMTP_URL` and `MAIL_FROM` | e-mail over SMTP |
 * | `SMS_GATEWAY_URL` and `SMS_API_KEY` | SMS over the HTTP gateway |
 *
 * Every variable is checked when the layer is built, and every bad or missing one is reported in one
 * `ConfigError` that names each (never a secret's value). The drivers of what is not configured are never
 * loaded: a memory stack needs neither ioredis nor nodemailer installed.
 *
 * This module and the CLI are the only places that name environment variables; every backend module takes its
 * options as values (`layer`) or as `Config` (`layerConfig`).
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { InfraHealth, TenantInfra } from "tenant-infra"
 *
 * const main = Effect.gen(function*() {
 *   const health = yield* InfraHealth.InfraHealth
 *   yield* Effect.log(yield* health.check)
 * })
 *
 * main.pipe(Effect.provide(TenantInfra.layerConfig({ relay: true })), NodeRuntime.runMain)
 * ```
 *
 * @since 0.2.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CachedTenantRepository from "./CachedTenantRepository.js"
import * as CacheStore from "./CacheStore.js"
import type { DeliveryLedger } from "./DeliveryLedger.js"
import * as InfraHealth from "./InfraHealth.js"
import type * as RedisSettings from "./internal/redisSettings.js"
import { defaultRetry } from "./internal/relayPolicy.js"
import * as Mailer from "./Mailer.js"
import type * as MailerSmtp from "./Mailer/Smtp.js"
import * as OutboxRelay from "./OutboxRelay.js"
import type * as Postgres from "./Postgres.js"
import type { Misconfigured } from "./SendError.js"
import * as SmsGateway from "./SmsGateway.js"
import type * as SmsGatewayHttp from "./SmsGateway/Http.js"
import * as TenantNotifications from "./TenantNotifications.js"
import type { TenantOutbox } from "./TenantOutbox.js"
import * as TenantRepository from "./TenantRepository.js"

// ---------------------------------------------------------------------------------------------------------------
// Checks shared by the URL variables
// ---------------------------------------------------------------------------------------------------------------

/**
 * A secret URL variable, checked for its scheme and host. The message names the variable and the form expected,
 * never the value: it holds a password.
 */
const secretUrl = (name: string, schemes: ReadonlyArray<string>, example: string) =>
  Config.mapOrFail(Config.redacted(name), (url) => {
    let parsed: URL | undefined
    try {
      parsed = new URL(Redacted.value(url))
    } catch {
      parsed = undefined
    }
    return parsed !== undefined && schemes.includes(parsed.protocol) &&
        (parsed.hostname !== "" || parsed.searchParams.has("host"))
      ? Either.right(url)
      : Either.left(ConfigError.InvalidData([name], `must be a URL such as ${example}`))
  })

/**
 * A variable that may be left unset: then `undefined`, and the backend applies its own default, which the tables
 * below repeat for the reader (one constant, in the backend).
 */
const unlessUnset = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const atLeastOne = Config.validate({ message: "must be at least 1", validation: (n: number) => n >= 1 })

/** A variable that must be set when `by` is: the message says so, not only that it is missing. */
const requiredWith = <A>(by: string, name: string, config: Config.Config<A>): Config.Config<A> =>
  Config.mapOrFail(
    Config.option(config),
    Option.match({
      onNone: () => Either.left(ConfigError.MissingData([name], `${name} is required when ${by} is set`)),
      onSome: Either.right
    })
  )

/**
 * The settings of a component that is configured only when its variable `name` is set: then every variable of
 * its group is read and checked, required ones included.
 */
const whenSet = <A>(name: string, config: Config.Config<A>): Effect.Effect<Option.Option<A>, ConfigError.ConfigError> =>
  Effect.flatMap(Config.option(Config.string(name)), (value) =>
    Option.isSome(value) && value.value.trim() !== ""
      ? Effect.map(config, Option.some)
      : Effect.succeedNone)

// ---------------------------------------------------------------------------------------------------------------
// Each component's variables
// ---------------------------------------------------------------------------------------------------------------

/**
 * The PostgreSQL client's settings, when `DATABASE_URL` is set:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `DATABASE_URL` | (none: memory) | `postgres://user:password@host:port/database`, a secret |
 * | `DATABASE_POOL_MAX` | `10` | most pooled connections |
 * | `DATABASE_CONNECT_TIMEOUT` | `5 seconds` | how long to wait for a connection |
 * | `DATABASE_QUERY_TIMEOUT` | `5 seconds` | how long the server may stay silent while a query waits |
 *
 * @since 0.2.0
 * @category config
 */
export const postgresConfig: Config.Config<Postgres.Options> = Config.all({
  url: secretUrl("DATABASE_URL", ["postgres:", "postgresql:"], "postgres://user:password@host:5432/database"),
  maxConnections: unlessUnset(Config.integer("DATABASE_POOL_MAX").pipe(atLeastOne)),
  connectTimeout: unlessUnset(Config.duration("DATABASE_CONNECT_TIMEOUT")),
  queryTimeout: unlessUnset(Config.duration("DATABASE_QUERY_TIMEOUT"))
})

const postgresSettings = whenSet("DATABASE_URL", postgresConfig)

/**
 * The cache store's settings, when `REDIS_URL` is set:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `REDIS_URL` | (none: memory) | `redis://[:password@]host:port[/db]` or `rediss://...`, a secret |
 * | `REDIS_KEY_PREFIX` | `tenant-infra:` | put in front of every key |
 * | `REDIS_COMMAND_TIMEOUT` | `200 millis` | how long one command may take |
 * | `CACHE_TIERS` | `1` | `2` puts a memory tier in front of Redis, kept fresh by pub/sub |
 * | `CACHE_LOCAL_TTL` | `10 seconds` | with two tiers: how long a memory copy may live |
 *
 * @since 0.2.0
 * @category config
 */
export const redisConfig: Config.Config<RedisSettings.TieredOptions & { readonly tiers: 1 | 2 }> = Config.all({
  url: secretUrl("REDIS_URL", ["redis:", "rediss:"], "redis://host:6379/0 or rediss://host:6380"),
  prefix: unlessUnset(Config.string("REDIS_KEY_PREFIX")),
  commandTimeout: unlessUnset(Config.duration("REDIS_COMMAND_TIMEOUT")),
  tiers: Config.literal(1, 2)("CACHE_TIERS").pipe(Config.withDefault(1 as const)),
  localTtl: unlessUnset(Config.duration("CACHE_LOCAL_TTL"))
})

const redisSettings = whenSet("REDIS_URL", redisConfig)

/**
 * The SMTP mailer's settings, when `SMTP_URL` is set:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `SMTP_URL` | (none: memory) | `smtp://user:password@host:port` (STARTTLS when offered) or `smtps://...`, a secret |
 * | `MAIL_FROM` | (required with `SMTP_URL`) | the sender, `noreply@acme.test` or `Acme <noreply@acme.test>` |
 * | `SMTP_MAX_CONNECTIONS` | `5` | most open connections |
 *
 * @since 0.2.0
 * @category config
 */
export const smtpConfig: Config.Config<MailerSmtp.Options> = Config.all({
  url: secretUrl("SMTP_URL", ["smtp:", "smtps:"], "smtp://host:587 or smtps://host:465"),
  from: requiredWith("SMTP_URL", "MAIL_FROM", Config.nonEmptyString("MAIL_FROM")),
  maxConnections: unlessUnset(Config.integer("SMTP_MAX_CONNECTIONS").pipe(atLeastOne))
})

const smtpSettings = whenSet("SMTP_URL", smtpConfig)

/**
 * The SMS gateway's settings, when `SMS_GATEWAY_URL` is set:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `SMS_GATEWAY_URL` | (none: memory) | the endpoint messages are POSTed to, `http://` or `https://` |
 * | `SMS_API_KEY` | (required with `SMS_GATEWAY_URL`) | sent as `Authorization: Bearer <key>`, a secret |
 * | `SMS_REQUEST_TIMEOUT` | `10 seconds` | how long one request may take |
 * | `SMS_TRACE_PROPAGATION` | `false` | `true` sends `traceparent` and `b3` headers to the gateway |
 *
 * @since 0.2.0
 * @category config
 */
export const smsConfig: Config.Config<SmsGatewayHttp.Options> = Config.all({
  url: Config.map(secretUrl("SMS_GATEWAY_URL", ["http:", "https:"], "https://sms.example/send"), Redacted.value),
  apiKey: requiredWith("SMS_GATEWAY_URL", "SMS_API_KEY", Config.redacted("SMS_API_KEY")),
  requestTimeout: unlessUnset(Config.duration("SMS_REQUEST_TIMEOUT")),
  tracePropagation: unlessUnset(Config.boolean("SMS_TRACE_PROPAGATION"))
})

const smsSettings = whenSet("SMS_GATEWAY_URL", smsConfig)

/**
 * The relay's settings:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `RELAY_ID` | `<host>:<pid>:<random>` | this relay's name in leases and attempts |
 * | `RELAY_CONCURRENCY` | `32` | messages sent at once |
 * | `RELAY_LEASE` | `15 seconds` | how long a claim holds a message |
 * | `RELAY_POLL_INTERVAL` | `1 second` | how often to look for work without a wake-up |
 * | `RELAY_AMBIGUOUS_EMAIL` | `resend` | `resend` or `dead-letter` |
 * | `RELAY_MAX_ATTEMPTS` | `20` | attempts before a message is dead |
 * | `RELAY_BASE_DELAY` | `1 second` | the first backoff |
 * | `RELAY_MAX_DELAY` | `5 minutes` | the longest backoff |
 * | `RELAY_ATTEMPT_TIMEOUT` | `30 seconds` | how long one attempt may take |
 * | `RELAY_FAILURE_LOG_INTERVAL` | `30 seconds` | at most one warning per channel this often while attempts fail |
 * | `SMTP_URL`, `SMS_GATEWAY_URL` | (none) | read for their hosts only, which those warnings name |
 *
 * @since 0.2.0
 * @category config
 */
export const relayConfig: Config.Config<OutboxRelay.Options> = Config.all({
  relayId: unlessUnset(Config.nonEmptyString("RELAY_ID")),
  concurrency: unlessUnset(Config.integer("RELAY_CONCURRENCY").pipe(atLeastOne)),
  lease: unlessUnset(Config.duration("RELAY_LEASE")),
  pollInterval: unlessUnset(Config.duration("RELAY_POLL_INTERVAL")),
  ambiguousEmail: unlessUnset(Config.literal("resend", "dead-letter")("RELAY_AMBIGUOUS_EMAIL")),
  // The retry policy is given whole or not at all: its defaults come from the relay's own (`defaultRetry`).
  maxAttempts: Config.integer("RELAY_MAX_ATTEMPTS").pipe(atLeastOne, Config.withDefault(defaultRetry.maxAttempts)),
  baseDelay: Config.duration("RELAY_BASE_DELAY").pipe(Config.withDefault(Duration.decode(defaultRetry.baseDelay))),
  maxDelay: Config.duration("RELAY_MAX_DELAY").pipe(Config.withDefault(Duration.decode(defaultRetry.maxDelay))),
  attemptTimeout: Config.duration("RELAY_ATTEMPT_TIMEOUT").pipe(
    Config.withDefault(Duration.decode(defaultRetry.attemptTimeout))
  ),
  failureLogInterval: unlessUnset(Config.duration("RELAY_FAILURE_LOG_INTERVAL")),
  // Secrets (SMTP_URL holds the password): only their hosts leave this config, in the relay's settings.
  emailProvider: Config.option(Config.redacted("SMTP_URL")),
  smsProvider: Config.option(Config.redacted("SMS_GATEWAY_URL"))
}).pipe(Config.map((values): OutboxRelay.Options => ({
  relayId: values.relayId,
  concurrency: values.concurrency,
  lease: values.lease,
  pollInterval: values.pollInterval,
  ambiguousEmail: values.ambiguousEmail,
  retry: {
    baseDelay: values.baseDelay,
    maxDelay: values.maxDelay,
    maxAttempts: values.maxAttempts,
    attemptTimeout: values.attemptTimeout
  },
  failureLogInterval: values.failureLogInterval,
  providerHosts: {
    email: Option.getOrUndefined(Option.map(values.emailProvider, Redacted.value)),
    sms: Option.getOrUndefined(Option.map(values.smsProvider, Redacted.value))
  }
})))

/**
 * Every variable the stack reads, checked together: one `ConfigError` names every bad or missing one.
 *
 * @since 0.2.0
 * @category models
 */
export interface Settings {
  readonly postgres: Option.Option<Postgres.Options>
  readonly redis: Option.Option<RedisSettings.TieredOptions & { readonly tiers: 1 | 2 }>
  readonly smtp: Option.Option<MailerSmtp.Options>
  readonly sms: Option.Option<SmsGatewayHttp.Options>
  readonly relay: Option.Option<OutboxRelay.Options>
}

/**
 * What {@link layerConfig} builds beyond the environment's say.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Run an `OutboxRelay` for the lifetime of the layer, with the `RELAY_*` settings (default false). */
  readonly relay?: boolean | undefined
  /**
   * Let a relay on PostgreSQL send to the memory senders when `SMTP_URL` or `SMS_GATEWAY_URL` is not set (default
   * false). For a demo or a test on a database of its own only: such a relay marks real messages delivered that
   * no one received.
   */
  readonly allowMemorySenders?: boolean | undefined
}

/**
 * The settings of {@link layerConfig}, read from the environment (the current `ConfigProvider`): with `relay`,
 * the relay's too, and a relay on PostgreSQL refuses memory senders (`SMTP_URL` and `SMS_GATEWAY_URL` are then
 * required): it would take real messages from the shared ledger and keep them in memory, where they would be
 * lost. Every group is read, and every bad or missing variable of every group is in the one `ConfigError`.
 *
 * @since 0.2.0
 * @category config
 */
export const settings = (options: Options = {}): Effect.Effect<Settings, ConfigError.ConfigError> =>
  Effect.all({
    postgres: postgresSettings,
    redis: redisSettings,
    smtp: smtpSettings,
    sms: smsSettings,
    relay: options.relay === true ? Effect.map(relayConfig, Option.some) : Effect.succeedNone
  }, { mode: "either" }).pipe(Effect.flatMap((read): Either.Either<Settings, ConfigError.ConfigError> => {
    const results: ReadonlyArray<Either.Either<unknown, ConfigError.ConfigError>> = Object.values(read)
    const errors = results.flatMap((result) => Either.isLeft(result) ? [result.left] : [])
    const [first, ...more] = errors
    if (first !== undefined) return Either.left(more.reduce(ConfigError.And, first))
    const settings: Settings = {
      postgres: Either.getOrThrow(read.postgres),
      redis: Either.getOrThrow(read.redis),
      smtp: Either.getOrThrow(read.smtp),
      sms: Either.getOrThrow(read.sms),
      relay: Either.getOrThrow(read.relay)
    }
    if (Option.isNone(settings.relay) || Option.isNone(settings.postgres) || options.allowMemorySenders === true) {
      return Either.right(settings)
    }
    const missing = [
      ...(Option.isNone(settings.smtp) ? ["SMTP_URL"] : []),
      ...(Option.isNone(settings.sms) ? ["SMS_GATEWAY_URL"] : [])
    ].map((name) =>
      ConfigError.MissingData(
        [name],
        `a relay on PostgreSQL needs ${name}: without it, its messages would be kept in memory and lost`
      )
    )
    return missing.length === 0 ? Either.right(settings) : Either.left(missing.reduce(ConfigError.And))
  }))

// ---------------------------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------------------------

/**
 * A backend module, loaded when its variable is set: its driver is an optional dependency, which a memory stack
 * does not need installed. Missing, it is a configuration error naming the variable and the package.
 */
/**
 * The ranges of the optional peers a backend may need, as `package.json` states them (a test keeps the two
 * equal): `npm install <package>` alone would install the Effect 4 line, which does not mix with this one.
 *
 * @since 0.2.0
 * @category utils
 */
export const OPTIONAL_PEERS = {
  "ioredis": "^5.11.1",
  "nodemailer": "^10.6.1",
  "@effect/platform-node": "^0.108.2"
} as const

const load = <A>(
  variable: string,
  packageName: keyof typeof OPTIONAL_PEERS | "@effect/sql-pg" | "@effect/platform",
  module: () => Promise<A>
): Effect.Effect<A, ConfigError.ConfigError> =>
  Effect.tryPromise({
    try: module,
    catch: (cause) => {
      const reason = cause instanceof Error ? cause.message.split("\n")[0] : String(cause)
      const range = packageName in OPTIONAL_PEERS
        ? `@${OPTIONAL_PEERS[packageName as keyof typeof OPTIONAL_PEERS]}`
        : ""
      return ConfigError.InvalidData(
        [variable],
        `is set, but ${packageName} cannot be loaded (${reason}): install it (npm install ${packageName}${range})`
      )
    }
  })

const storeOf = (redis: RedisSettings.TieredOptions & { readonly tiers: 1 | 2 }) =>
  Effect.gen(function*() {
    if (redis.tiers === 2) {
      const Tiered = yield* load("REDIS_URL", "ioredis", () => import("./CacheStore/Tiered.js"))
      return Tiered.layer(redis)
    }
    const Redis = yield* load("REDIS_URL", "ioredis", () => import("./CacheStore/Redis.js"))
    return Redis.layer(redis satisfies RedisSettings.Options)
  })

const mailerOf = (smtp: MailerSmtp.Options) =>
  Effect.map(load("SMTP_URL", "nodemailer", () => import("./Mailer/Smtp.js")), (Smtp) => Smtp.layer(smtp))

const smsGatewayOf = (sms: SmsGatewayHttp.Options) =>
  Effect.gen(function*() {
    const Http = yield* load("SMS_GATEWAY_URL", "@effect/platform", () => import("./SmsGateway/Http.js"))
    const Client = yield* load(
      "SMS_GATEWAY_URL",
      "@effect/platform-node",
      () => import("@effect/platform-node/NodeHttpClient")
    )
    return Http.layer(sms).pipe(Layer.provide(Client.layerUndici))
  })

/** The settings of a component whose variable must be set. */
const required = <A>(
  name: string,
  read: Effect.Effect<Option.Option<A>, ConfigError.ConfigError>
): Effect.Effect<A, ConfigError.ConfigError> =>
  Effect.flatMap(read, (settings) =>
    Option.isSome(settings)
      ? Effect.succeed(settings.value)
      : Effect.fail(ConfigError.MissingData([name], `Expected ${name} to be set`)))

/**
 * The PostgreSQL client from `DATABASE_URL` and the other `DATABASE_*` variables (see {@link postgresConfig}),
 * which must be set.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerPostgres: Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient,
  ConfigError.ConfigError | SqlError.SqlError
> = Layer
  .unwrapEffect(
    Effect.gen(function*() {
      const settings = yield* required("DATABASE_URL", postgresSettings)
      const Postgres = yield* load("DATABASE_URL", "@effect/sql-pg", () => import("./Postgres.js"))
      return Postgres.layer(settings)
    })
  )

/**
 * The Redis cache store from `REDIS_URL` and the other `REDIS_*` and `CACHE_*` variables (see
 * {@link redisConfig}), which must be set.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerRedis: Layer.Layer<CacheStore.CacheStore, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.flatMap(required("REDIS_URL", redisSettings), storeOf)
)

/**
 * The SMTP mailer from `SMTP_URL`, `MAIL_FROM` and `SMTP_MAX_CONNECTIONS` (see {@link smtpConfig}), which
 * must be set.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerSmtp: Layer.Layer<Mailer.Mailer, ConfigError.ConfigError | Misconfigured> = Layer.unwrapEffect(
  Effect.flatMap(required("SMTP_URL", smtpSettings), mailerOf)
)

/**
 * The SMS gateway from `SMS_GATEWAY_URL` and the other `SMS_*` variables (see {@link smsConfig}), which must
 * be set; its requests go out through `@effect/platform-node`'s undici client.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerSmsHttp: Layer.Layer<SmsGateway.SmsGateway, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.flatMap(required("SMS_GATEWAY_URL", smsSettings), smsGatewayOf)
)

/**
 * The services of the stack.
 *
 * @since 0.2.0
 * @category models
 */
export type Services =
  | TenantRepository.TenantRepository
  | TenantOutbox
  | DeliveryLedger
  | CacheStore.CacheStore
  | Mailer.Mailer
  | SmsGateway.SmsGateway
  | TenantNotifications.TenantNotifications
  | InfraHealth.InfraHealth

/**
 * The errors building the stack can fail with: a bad or missing variable (`ConfigError`), a database that
 * cannot be reached or migrated, an unusable mail sender (`Misconfigured`).
 *
 * @since 0.2.0
 * @category models
 */
export type BuildError = ConfigError.ConfigError | SqlError.SqlError | Migrator.MigrationError | Misconfigured

const stackOf = (settings: Settings) =>
  Effect.gen(function*() {
    const postgres = Option.getOrUndefined(settings.postgres)
    const redis = Option.getOrUndefined(settings.redis)
    const smtp = Option.getOrUndefined(settings.smtp)
    const smsGateway = Option.getOrUndefined(settings.sms)
    const repository = postgres !== undefined
      ? yield* Effect.gen(function*() {
        const Postgres = yield* load("DATABASE_URL", "@effect/sql-pg", () => import("./Postgres.js"))
        const Pg = yield* load("DATABASE_URL", "@effect/sql-pg", () => import("./TenantRepository/Pg.js"))
        // The client is merged in so that `InfraHealth` finds it and checks the database.
        return Layer.provideMerge(Pg.layer(), Postgres.layer(postgres))
      })
      : TenantRepository.layerMemory
    const store: Layer.Layer<CacheStore.CacheStore> = redis !== undefined
      ? yield* storeOf(redis)
      : CacheStore.layerMemory()
    const mailer: Layer.Layer<Mailer.Mailer, Misconfigured> = smtp !== undefined
      ? yield* mailerOf(smtp)
      : Mailer.layerMemory()
    const sms: Layer.Layer<SmsGateway.SmsGateway> = smsGateway !== undefined
      ? yield* smsGatewayOf(smsGateway)
      : SmsGateway.layerMemory
    // A cache in front of PostgreSQL (its store in memory without Redis, fresh across processes all the same);
    // none in front of the memory repository, which is as fast as a cache.
    const repositories = postgres !== undefined
      ? CachedTenantRepository.layer().pipe(Layer.provideMerge(repository), Layer.provideMerge(store))
      : Layer.merge(repository, store)
    const notifications = TenantNotifications.layer().pipe(Layer.provideMerge(Layer.merge(mailer, sms)))
    const services = Layer.merge(repositories, notifications)
    return Layer.provideMerge(InfraHealth.layer(), services)
  })

/**
 * The stack from the environment (see the module's table and each `...Config` for the variables). With
 * `{ relay: true }` it runs an `OutboxRelay` for the lifetime of the layer as well (see {@link settings} for what
 * it then requires).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig: {
  (options?: Options & { readonly relay?: false | undefined }): Layer.Layer<Services, BuildError>
  (options: Options & { readonly relay: true }): Layer.Layer<Services | OutboxRelay.OutboxRelay, BuildError>
} = (options: Options = {}): Layer.Layer<Services | OutboxRelay.OutboxRelay, BuildError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const read = yield* settings(options)
    const stack = yield* stackOf(read)
    // Without a relay the overloads promise no `OutboxRelay`: the widening below is never seen by a caller.
    return Option.isSome(read.relay)
      ? Layer.provideMerge(OutboxRelay.layer(read.relay.value), stack)
      : stack as Layer.Layer<Services | OutboxRelay.OutboxRelay, BuildError>
  }))
