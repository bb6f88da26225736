import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Cluster } from "ioredis"
import { Redis } from "ioredis"
import { createHash } from "node:crypto"
import { CacheError } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"

/**
 * Key layout: a value lives at `<prefix>{<key>}` and its version at `<prefix>{<key>}:v`. The braces make the
 * whole key a hash tag, so a key and its version always sit in one Redis Cluster slot and every script below
 * touches a single slot. Multi-key reads and deletes are sent as one command per key for the same reason.
 */
export interface RedisStoreOptions {
  readonly prefix: string
  readonly commandTimeout: Duration.DurationInput
  /** How long a version outlives its last invalidation; a fill slower than this could write stale data. */
  readonly versionTtl: Duration.DurationInput
}

interface Script {
  readonly source: string
  readonly sha: string
}

const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") })

// Value and version in one step: a fill must know the version its read belongs to.
const GET_VERSIONED = script(
  `return { redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) or '0', redis.call('PTTL', KEYS[1]) }`
)

// Store only while the version is the one the fill read.
const SET_IF_VERSION = script(`
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`)

// Delete the value and move to a new version, so that every fill that read the old one is refused.
const INVALIDATE = script(`
redis.call('DEL', KEYS[1])
local version = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return version`)

// Move the mark from the one read (none: '') to a new one, unless it moved meanwhile; 1 when it covers the new one.
const ADVANCE_MARK = script(`
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
local stored = current and tonumber(current)
if stored and stored >= tonumber(ARGV[2]) then return 1 end
return 0`)

const reasonOf = (error: unknown): CacheError["reason"] => {
  const message = error instanceof Error ? `${error.name} ${error.message}` : String(error)
  if (/timed? ?out/i.test(message)) return "Timeout"
  if (/ReplyError|ERR |WRONGTYPE|NOSCRIPT|BUSY|READONLY|MOVED|ASK /.test(message)) return "Response"
  return "Unreachable"
}

const failureOf = (operation: string) => (cause: unknown): CacheError =>
  new CacheError({
    reason: reasonOf(cause),
    operation,
    detail: cause instanceof Error ? cause.message : "",
    cause
  })

/** Where the client connects, for messages: host and port (never the password), a socket path, or a Cluster. */
const addressOf = (client: Redis | Cluster): string => {
  if (client.isCluster) return "the Redis Cluster"
  const { host, path, port } = (client as Redis).options
  return path !== undefined && path !== "" ? path : `${host}:${port}`
}

export const makeRedisStore = (client: Redis | Cluster, options: RedisStoreOptions): CacheStore.Service => {
  const timeout = Duration.decode(options.commandTimeout)
  const versionTtl = String(Math.max(1, Math.round(Duration.toMillis(options.versionTtl))))
  const valueKey = (key: string) => `${options.prefix}{${key}}`
  const versionKey = (key: string) => `${options.prefix}{${key}}:v`

  // A single node that times its commands out itself, as soon as ours would or sooner (the client `layerRedis`
  // makes), needs no second timer: an Effect timeout costs a fiber and a timer per command, a fair part of a
  // hit. A Cluster keeps ours: it queues commands without a timer while it is not ready.
  const clientTimeout = client.isCluster ? undefined : (client as Redis).options.commandTimeout
  const timedByClient = clientTimeout !== undefined && clientTimeout > 0 && clientTimeout <= Duration.toMillis(timeout)

  /** One Redis call under the command timeout, its failure a typed `CacheError`. */
  const call = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, CacheError> => {
    const attempt = Effect.tryPromise({ try: run, catch: failureOf(operation) })
    return timedByClient ? attempt : attempt.pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new CacheError({ reason: "Timeout", operation, detail: `no answer within ${Duration.format(timeout)}` })
      })
    )
  }

  const run = (operation: string, { sha, source }: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) =>
    call(operation, () =>
      client.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) => {
        // The script cache is empty after a restart or on a node that never saw the script.
        if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
          return client.eval(source, keys.length, ...keys, ...args)
        }
        throw error
      }))

  const getFailed = failureOf("get")
  // The read of every hit: with the client's own timer, one asynchronous step and nothing around it.
  const get = (key: string): Effect.Effect<Option.Option<string>, CacheError> =>
    timedByClient
      ? Effect.async((resume) => {
        try {
          client.get(valueKey(key)).then(
            (value) => resume(Effect.succeed(Option.fromNullable(value))),
            (error) => resume(Effect.fail(getFailed(error)))
          )
        } catch (error) {
          resume(Effect.fail(getFailed(error)))
        }
      })
      : Effect.map(call("get", () => client.get(valueKey(key))), Option.fromNullable)

  // The client does not queue commands while it is disconnected, so PING would only say "not writeable"; the
  // connection's state and address say more to whoever reads a health report.
  const ping = Effect.suspend(() =>
    client.status === "ready"
      ? Effect.asVoid(call("ping", () => client.ping()))
      : Effect.fail(
        new CacheError({
          reason: "Unreachable",
          operation: "ping",
          detail: `not connected to ${addressOf(client)} (${client.status})`
        })
      )
  )

  // One key per mark, in a slot of its own: the script that moves it touches nothing else.
  const markKey = (name: string) => `${options.prefix}{tenant-cache:mark:${name}}`
  const marks: CacheStore.Marks = {
    read: (name) => Effect.map(call("marks.read", () => client.get(markKey(name))), Option.fromNullable),
    advance: (name, from, to) =>
      Effect.map(run("marks.advance", ADVANCE_MARK, [markKey(name)], [from ?? "", to]), (reply) => reply === 1)
  }

  return {
    tier: "redis",
    address: addressOf(client),
    ping,
    marks,
    get,
    getMany: (keys) => Effect.forEach(keys, get, { concurrency: "unbounded" }),
    set: (key, value, ttl) =>
      Effect.asVoid(call("set", () => client.set(valueKey(key), value, "PX", Math.max(1, Duration.toMillis(ttl))))),
    deleteMany: (keys) =>
      Effect.asVoid(
        Effect.forEach(keys, (key) => call("deleteMany", () => client.del(valueKey(key))), { concurrency: "unbounded" })
      ),
    getVersioned: (key) =>
      Effect.flatMap(run("getVersioned", GET_VERSIONED, [valueKey(key), versionKey(key)], []), (reply) => {
        if (Array.isArray(reply)) {
          const [value, version, pttl] = reply as ReadonlyArray<unknown>
          return Effect.succeed({
            value: typeof value === "string" ? Option.some(value) : Option.none(),
            version: String(version ?? "0"),
            ...(typeof pttl === "number" && pttl > 0 ? { expiresIn: Duration.millis(pttl) } : {})
          })
        }
        return Effect.fail(
          new CacheError({ reason: "Response", operation: "getVersioned", detail: "unexpected reply to the script" })
        )
      }),
    setIfVersion: (key, value, ttl, version) =>
      Effect.map(
        run("setIfVersion", SET_IF_VERSION, [valueKey(key), versionKey(key)], [
          value,
          version,
          String(Math.max(1, Math.round(Duration.toMillis(ttl))))
        ]),
        (reply) => reply === 1
      ),
    invalidate: (keys) =>
      Effect.asVoid(
        Effect.forEach(
          keys,
          (key) => run("invalidate", INVALIDATE, [valueKey(key), versionKey(key)], [versionTtl]),
          { concurrency: "unbounded" }
        )
      )
  }
}

/** The defaults of `CacheStore/Redis`'s store options, in one place for both Redis stores. */
export const storeSettings = (options: {
  readonly prefix?: string | undefined
  readonly commandTimeout?: Duration.DurationInput | undefined
  readonly versionTtl?: Duration.DurationInput | undefined
}): RedisStoreOptions => ({
  prefix: options.prefix ?? "tenant-infra:",
  commandTimeout: options.commandTimeout ?? Duration.millis(200),
  versionTtl: options.versionTtl ?? Duration.days(1)
})

/** A client the layer owns: connected (or trying to) and closed with the scope; never queues commands. */
export const acquireClient = (options: {
  readonly url: Redacted.Redacted
  readonly commandTimeout?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
}): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timeout = Duration.decode(storeSettings(options).commandTimeout)
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Redis(Redacted.value(options.url), {
          lazyConnect: true,
          // A cache that cannot answer now is a miss now: never queue commands for a later reconnection.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          commandTimeout: Duration.toMillis(timeout),
          connectTimeout: Duration.toMillis(options.connectTimeout ?? Duration.seconds(1))
        })
      ),
      (client) =>
        Effect.promise(() => client.quit().catch(() => client.disconnect())).pipe(
          Effect.timeoutOption(Duration.seconds(1)),
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )
    // Errors are reported per command; without a listener ioredis would print each one.
    client.on("error", () => undefined)
    yield* Effect.promise(() => client.connect().catch(() => undefined)).pipe(
      Effect.timeoutOption(options.connectTimeout ?? Duration.seconds(1))
    )
    return client
  })
