/**
 * A PostgreSQL client (`@effect/sql-pg`) with settings fit for this package: the server from `DATABASE_URL`
 * (a secret: the URL holds the password), a connection timeout so that an unreachable or exhausted database
 * fails instead of hanging, a watchdog that destroys a connection whose server stopped answering (so that a
 * silent network drop cannot keep the pool's connections for good), and the pool size from `DATABASE_POOL_MAX`.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { PgWatchdog, watchedSocket } from "./internal/pgSocket.js"

/**
 * The client's settings: those of `PgClient.PgClientConfig` (its `stream` is this module's to set), and how long
 * the server may stay silent while a query waits for its answer.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends Omit<PgClient.PgClientConfig, "stream"> {
  /**
   * How long the server may stay silent while a query waits for an answer; then the connection is destroyed, the
   * query fails with a `SqlError` and the pool opens a new connection when it needs one. Default 5 seconds. A
   * statement that legitimately runs longer without sending anything (a large index build in a migration) needs
   * a longer one.
   */
  readonly queryTimeout?: Duration.DurationInput | undefined
}

/** The defaults `layer` reads over; `layerWith` applies the same ones to what it is not given. */
const defaults = {
  connectTimeout: Duration.seconds(5),
  idleTimeout: Duration.seconds(30),
  queryTimeout: Duration.seconds(5),
  applicationName: "tenant-infra"
} as const

const queryTimeoutOf = (options: Options) => Duration.decode(options.queryTimeout ?? defaults.queryTimeout)

const clientConfig = (options: Options): PgClient.PgClientConfig => {
  const { queryTimeout: _, ...client } = options
  return {
    connectTimeout: defaults.connectTimeout,
    idleTimeout: defaults.idleTimeout,
    applicationName: defaults.applicationName,
    ...client,
    stream: watchedSocket({
      silenceMillis: Duration.toMillis(queryTimeoutOf(options)),
      keepAliveMillis: 10_000
    })
  }
}

/**
 * A client with these settings.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWith = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError> =>
  usesTls(options) ? PgClient.layer(clientConfig(options)) : Layer.merge(
    PgClient.layer(clientConfig(options)),
    Layer.succeed(PgWatchdog, {
      statementBoundMillis: Duration.toMillis(Duration.decode(options.connectTimeout ?? defaults.connectTimeout)) +
        Duration.toMillis(queryTimeoutOf(options))
    })
  )

/**
 * Over TLS the driver hands the socket to Node's TLS layer, which reads and writes past the watchdog: the
 * repository then keeps its own deadline around every statement.
 */
const usesTls = (options: Options): boolean =>
  (options.ssl !== undefined && options.ssl !== false) ||
  (options.url !== undefined && /[?&](ssl|sslmode)=(?!disable|false|0)/i.test(Redacted.value(options.url)))

/**
 * The client configured from the environment:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `DATABASE_URL` | (required) | `postgres://user:password@host:port/database`; anything else fails at start as a `ConfigError` |
 * | `DATABASE_POOL_MAX` | `10` | most pooled connections |
 * | `DATABASE_CONNECT_TIMEOUT` | `5 seconds` | how long to wait for a connection |
 * | `DATABASE_QUERY_TIMEOUT` | `5 seconds` | how long the server may stay silent while a query waits |
 *
 * An application that names its settings differently builds its own with `layerWith`.
 *
 * @since 0.1.0
 * @category layers
 */
// Checked at start, so that a mistyped URL is a configuration error naming the variable (the CLI's exit 3), not a
// failed connection to a host the driver made up from it. The message never holds the value: it is a secret.
const databaseUrl = Config.mapOrFail(Config.redacted("DATABASE_URL"), (url) => {
  let parsed: URL | undefined
  try {
    parsed = new URL(Redacted.value(url))
  } catch {
    parsed = undefined
  }
  return parsed !== undefined && (parsed.protocol === "postgres:" || parsed.protocol === "postgresql:") &&
      (parsed.hostname !== "" || parsed.searchParams.has("host"))
    ? Either.right(url)
    : Either.left(
      ConfigError.InvalidData(["DATABASE_URL"], "must be a URL such as postgres://user:password@host:5432/database")
    )
})

export const layer: Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient,
  ConfigError.ConfigError | SqlError.SqlError
> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      url: databaseUrl,
      maxConnections: Config.integer("DATABASE_POOL_MAX").pipe(Config.withDefault(10)),
      connectTimeout: Config.duration("DATABASE_CONNECT_TIMEOUT").pipe(Config.withDefault(defaults.connectTimeout)),
      queryTimeout: Config.duration("DATABASE_QUERY_TIMEOUT").pipe(Config.withDefault(defaults.queryTimeout))
    }),
    layerWith
  )
)
