/**
 * A PostgreSQL client (`@effect/sql-pg`) with settings fit for this package: a connection timeout so that an
 * unreachable or exhausted database fails instead of hanging, and a watchdog that destroys a connection whose
 * server stopped answering (so that a silent network drop cannot keep the pool's connections for good).
 * `TenantInfra.layerPostgres` builds it from `DATABASE_URL`.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Pg from "pg"
import { PgPool } from "./internal/pgPool.js"
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

/** What `layer` is not given. */
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
 * A client with these settings; `connectTimeout`, `idleTimeout` and `queryTimeout` default to 5, 30 and 5
 * seconds, `applicationName` to `tenant-infra`.
 *
 * The layer makes the `pg` pool itself and builds the `PgClient` over it, as `PgClient.layer` would: the
 * repository sends its lookups by key straight to that pool (see `TenantRepository/Pg`), the rest through the
 * client.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  Layer.scopedContext(Effect.gen(function*() {
    const config = clientConfig(options)
    const pool = yield* acquirePool(config)
    const clientContext = yield* Layer.build(PgClient.layerFromPool({
      acquire: Effect.succeed(pool),
      applicationName: config.applicationName,
      spanAttributes: config.spanAttributes,
      transformResultNames: config.transformResultNames,
      transformQueryNames: config.transformQueryNames,
      transformJson: config.transformJson,
      types: config.types
    }))
    const context = Context.add(clientContext, PgPool, {
      pool,
      client: Context.get(clientContext, SqlClient.SqlClient)
    })
    return usesTls(options) ? context : Context.add(context, PgWatchdog, {
      statementBoundMillis: Duration.toMillis(Duration.decode(options.connectTimeout ?? defaults.connectTimeout)) +
        Duration.toMillis(queryTimeoutOf(options))
    })
  }))

/**
 * The pool `PgClient.make` would make from `config`, with its check that the database answers within the connect
 * timeout, ended (within a second) when the layer's scope closes.
 */
const acquirePool = (config: PgClient.PgClientConfig) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new Pg.Pool({
        connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
        user: config.username,
        host: config.host,
        database: config.database,
        password: config.password === undefined ? undefined : Redacted.value(config.password),
        ssl: config.ssl,
        port: config.port,
        ...(config.stream === undefined ? {} : { stream: config.stream }),
        connectionTimeoutMillis: config.connectTimeout === undefined ? undefined : toMillis(config.connectTimeout),
        idleTimeoutMillis: config.idleTimeout === undefined ? undefined : toMillis(config.idleTimeout),
        max: config.maxConnections,
        min: config.minConnections,
        maxLifetimeSeconds: config.connectionTTL === undefined
          ? undefined
          : Duration.toSeconds(Duration.decode(config.connectionTTL)),
        application_name: config.applicationName,
        types: config.types
      })
      // A connection that fails while idle is the pool's to drop; unhandled, the event would end the process.
      pool.on("error", () => {})
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1_000))
  ).pipe(
    Effect.tap((pool) =>
      Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(Effect.timeoutFail({
        duration: config.connectTimeout ?? defaults.connectTimeout,
        onTimeout: () =>
          new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
      }))
    )
  )

const toMillis = (duration: Duration.DurationInput) => Duration.toMillis(Duration.decode(duration))

/**
 * Over TLS the driver hands the socket to Node's TLS layer, which reads and writes past the watchdog: the
 * repository then keeps its own deadline around every statement.
 */
const usesTls = (options: Options): boolean =>
  (options.ssl !== undefined && options.ssl !== false) ||
  (options.url !== undefined && /[?&](ssl|sslmode)=(?!disable|false|0)/i.test(Redacted.value(options.url)))

/**
 * {@link layer} with its options read from `Config`. `TenantInfra.layerPostgres` reads them from `DATABASE_URL`
 * and the other `DATABASE_*` variables.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, ConfigError.ConfigError | SqlError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
