/**
 * LISTEN on a connection of the stream's own, opened when the stream starts and closed when it ends, whatever
 * the moment. Why not `PgClient.listen`:
 *
 * - It shares one connection among its subscribers through an `RcRef`, and `RcRef.get` lets an interruption in
 *   after the connection is opened but before it is counted: a subscriber stopped while the connection is being
 *   opened (a relay stopped within its first milliseconds, or while the database is slow to accept) leaves it
 *   open for good, closed neither by the subscriber nor by the client's scope. The process then never exits.
 * - It ignores that connection's errors: a dropped LISTEN connection goes quiet instead of failing the stream,
 *   so nothing opens a new one.
 *
 * The connection is made with the client's settings, as `PgClient` makes its pool's (its `stream` included).
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Pg from "pg"

/** How long a goodbye to the server may take before the socket is simply destroyed. */
const CLOSE_TIMEOUT = Duration.seconds(1)

const clientConfig = (config: PgClient.PgClientConfig): Pg.ClientConfig => ({
  connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
  host: config.host,
  port: config.port,
  database: config.database,
  user: config.username,
  password: config.password === undefined ? undefined : Redacted.value(config.password),
  ssl: config.ssl,
  ...(config.stream === undefined ? {} : { stream: config.stream }),
  connectionTimeoutMillis: config.connectTimeout === undefined
    ? undefined
    : Duration.toMillis(Duration.decode(config.connectTimeout)),
  application_name: config.applicationName ?? "@effect/sql-pg",
  types: config.types
})

/** Ends the session politely, or destroys the socket when the server does not answer in time. */
const close = (client: Pg.Client): Effect.Effect<void> =>
  Effect.promise(() => client.end()).pipe(
    Effect.interruptible,
    Effect.timeoutOption(CLOSE_TIMEOUT),
    Effect.flatMap(Option.match({
      onNone: () => Effect.sync(() => client.connection.stream.destroy()),
      onSome: () => Effect.void
    }))
  )

/**
 * The payloads notified on `channel`, from a connection opened with `config`. The stream fails with a `SqlError`
 * when the connection cannot be opened or is lost.
 */
export const listen = (config: PgClient.PgClientConfig, channel: string): Stream.Stream<string, SqlError> =>
  Stream.asyncPush<string, SqlError>((emit) =>
    Effect.gen(function*() {
      let closing = false
      // The client exists, and its release is registered, before it starts to connect: an interruption while it
      // connects closes it too.
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Pg.Client(clientConfig(config))),
        (client) =>
          Effect.suspend(() => {
            closing = true
            return close(client)
          })
      )
      const lost = (cause: unknown) => {
        if (!closing) emit.fail(new SqlError({ cause, message: "The LISTEN connection was lost" }))
      }
      // Listened to before connecting: an "error" event without a listener would end the process.
      client.on("error", lost)
      client.on("end", () => lost(new Error("the connection ended")))
      client.on("notification", (notification) => {
        if (notification.channel === channel && notification.payload !== undefined) emit.single(notification.payload)
      })
      yield* Effect.tryPromise({
        try: () => client.connect(),
        catch: (cause) => new SqlError({ cause, message: "Failed to open the LISTEN connection" })
      })
      yield* Effect.tryPromise({
        try: () => client.query(`LISTEN ${Pg.escapeIdentifier(channel)}`),
        catch: (cause) => new SqlError({ cause, message: "Failed to listen" })
      })
    })
  )
