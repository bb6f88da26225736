/**
 * A PostgreSQL client (`@effect/sql-pg`) with settings fit for this package: the server from `DATABASE_URL`
 * (a secret: the URL holds the password), a connection timeout so that an unreachable or exhausted database
 * fails instead of hanging, and the pool size from `DATABASE_POOL_MAX`.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"

/**
 * The client configured from the environment:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `DATABASE_URL` | (required) | `postgres://user:password@host:port/database` |
 * | `DATABASE_POOL_MAX` | `10` | most pooled connections |
 * | `DATABASE_CONNECT_TIMEOUT` | `5 seconds` | how long to wait for a connection |
 *
 * An application that names its settings differently builds its own with `PgClient.layerConfig`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = PgClient.layerConfig({
  url: Config.redacted("DATABASE_URL"),
  maxConnections: Config.integer("DATABASE_POOL_MAX").pipe(Config.withDefault(10)),
  connectTimeout: Config.duration("DATABASE_CONNECT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(5))),
  idleTimeout: Config.succeed(Duration.seconds(30)),
  applicationName: Config.succeed("tenant-infra")
})
