/**
 * The whole stack from the environment: what each variable turns on, and every bad or missing variable reported
 * at once, by name, never by a secret's value.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CacheStore from "../src/CacheStore.js"
import * as InfraHealth from "../src/InfraHealth.js"
import * as Mailer from "../src/Mailer.js"
import * as OutboxRelay from "../src/OutboxRelay.js"
import * as TenantInfra from "../src/TenantInfra.js"
import * as TenantLifecycle from "../src/TenantLifecycle.js"
import * as TenantRepository from "../src/TenantRepository.js"
import { DATABASE_URL } from "./utils/postgres.js"
import { REDIS_URL } from "./utils/redis.js"

const environment = (variables: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables))))

/** Every problem of a `ConfigError`, as `VARIABLE: message`. */
const problems = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...problems(error.left), ...problems(error.right)]
    default:
      return [`${error.path.join("_")}: ${error.message}`]
  }
}

const configErrorOf = (error: unknown): ConfigError.ConfigError => {
  assert.isTrue(ConfigError.isConfigError(error), String(error))
  return error as ConfigError.ConfigError
}

const SECRET = "s3cr3t-p4ss"

const onboard = Effect.gen(function*() {
  const repository = yield* TenantRepository.TenantRepository
  const { event, tenant } = yield* TenantLifecycle.create(
    yield* TenantLifecycle.newTenantId,
    { code: `infra-${Date.now().toString(36)}`, name: "Infra Test", contact: { email: "admin@infra.test" } },
    yield* TenantLifecycle.stamp({ actor: "test" })
  )
  yield* repository.insert(tenant, event)
  return tenant
})

describe("TenantInfra.layerConfig", () => {
  it.live("with nothing set: the memory stack, whose relay sends to memory", () =>
    Effect.gen(function*() {
      const tenant = yield* onboard
      const repository = yield* TenantRepository.TenantRepository
      assert.isTrue(Option.isSome(yield* repository.findById(tenant.id)))
      const store = yield* CacheStore.CacheStore
      assert.isUndefined(store.ping, "the memory store")
      const report = yield* (yield* InfraHealth.InfraHealth).check
      assert.deepStrictEqual(report.checks, [], "nothing to check: every service is in memory")
      yield* OutboxRelay.OutboxRelay
      const mailer = yield* Mailer.Mailer
      assert.isUndefined(mailer.ping)
    }).pipe(Effect.provide(TenantInfra.layerConfig({ relay: true }).pipe(Layer.provide(environment({}))))))

  it.live(
    "with DATABASE_URL and REDIS_URL: PostgreSQL behind a Redis cache, both checked by InfraHealth",
    () =>
      Effect.gen(function*() {
        const tenant = yield* onboard
        const repository = yield* TenantRepository.TenantRepository
        const found = yield* repository.findById(tenant.id)
        assert.strictEqual(Option.getOrUndefined(found)?.code, tenant.code)
        const report = yield* (yield* InfraHealth.InfraHealth).check
        assert.deepStrictEqual(report.checks.map((check) => [check.name, check.status]), [
          ["postgresql", "up"],
          ["redis", "up"]
        ])
      }).pipe(
        Effect.provide(TenantInfra.layerConfig().pipe(Layer.provide(environment({ DATABASE_URL, REDIS_URL }))))
      ),
    30_000
  )

  it.live("CACHE_TIERS=2 puts a memory tier in front of Redis", () =>
    Effect.gen(function*() {
      const settings = yield* TenantInfra.settings()
      assert.strictEqual(Option.getOrUndefined(settings.redis)?.tiers, 2)
      const store = yield* CacheStore.CacheStore
      assert.isDefined(store.marks?.heard, "only the two-tier store hears marks on its channel")
    }).pipe(
      Effect.provide(
        TenantInfra.layerConfig().pipe(Layer.provide(environment({ REDIS_URL, CACHE_TIERS: "2" })))
      ),
      Effect.provide(environment({ REDIS_URL, CACHE_TIERS: "2" }))
    ), 30_000)

  it.live("every bad or missing variable of every group in one ConfigError, no secret in it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(TenantInfra.layerConfig({ relay: true }))).pipe(
        Effect.scoped,
        Effect.provide(environment({
          DATABASE_URL: `mysql://root:${SECRET}@127.0.0.1/test`,
          DATABASE_POOL_MAX: "0",
          REDIS_URL: `${SECRET}@127.0.0.1:6379`,
          CACHE_TIERS: "3",
          SMTP_URL: `smtp://user:${SECRET}@127.0.0.1:2525`,
          SMS_GATEWAY_URL: `ftp://127.0.0.1/${SECRET}`,
          SMS_API_KEY: SECRET,
          RELAY_CONCURRENCY: "0",
          RELAY_LEASE: "soon"
        }))
      )
      const found = problems(configErrorOf(error))
      const variables = found.map((problem) => problem.slice(0, problem.indexOf(":")))
      assert.deepStrictEqual([...new Set(variables)].sort(), [
        "CACHE_TIERS",
        "DATABASE_POOL_MAX",
        "DATABASE_URL",
        "MAIL_FROM",
        "REDIS_URL",
        "RELAY_CONCURRENCY",
        "RELAY_LEASE",
        "SMS_GATEWAY_URL"
      ])
      assert.notInclude(JSON.stringify(found), SECRET)
      assert.notInclude(String(error), SECRET)
    }))

  it.live("a relay on PostgreSQL refuses memory senders, unless allowed (a demo)", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(TenantInfra.settings({ relay: true })).pipe(
        Effect.provide(environment({ DATABASE_URL }))
      )
      assert.deepStrictEqual(problems(refused).map((problem) => problem.split(":")[0]), ["SMTP_URL", "SMS_GATEWAY_URL"])
      assert.include(problems(refused)[0], "would be kept in memory and lost")
      const allowed = yield* TenantInfra.settings({ relay: true, allowMemorySenders: true }).pipe(
        Effect.provide(environment({ DATABASE_URL }))
      )
      assert.isTrue(Option.isSome(allowed.relay))
      // Without a relay, or on memory, nothing is at stake.
      yield* TenantInfra.settings().pipe(Effect.provide(environment({ DATABASE_URL })))
      yield* TenantInfra.settings({ relay: true }).pipe(Effect.provide(environment({})))
    }))

  it.live("an empty variable counts as not set; a set one is checked whatever its group", () =>
    Effect.gen(function*() {
      const settings = yield* TenantInfra.settings().pipe(
        Effect.provide(environment({ DATABASE_URL: "", REDIS_URL: " ", SMTP_URL: "" }))
      )
      assert.isTrue(Option.isNone(settings.postgres) && Option.isNone(settings.redis) && Option.isNone(settings.smtp))
      const error = yield* Effect.flip(TenantInfra.settings()).pipe(
        Effect.provide(environment({ SMS_GATEWAY_URL: "https://sms.test/send" }))
      )
      assert.deepStrictEqual(problems(error).map((problem) => problem.split(":")[0]), ["SMS_API_KEY"])
    }))
})
