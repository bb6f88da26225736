/**
 * The demo behind `npm start`: a few tenants through their life (`src/internal/demo.ts`), on the stack
 * `TenantInfra.layerConfig` builds from the environment: the in-memory repository, or PostgreSQL when
 * DATABASE_URL is set (migrated first). Every step prints what happened. An outbox relay runs beside it and delivers every event's notifications (to memory, or through SMTP_URL / SMS_GATEWAY_URL when they
 * are set); the demo ends by printing each message and what the delivery ledger says of it.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { program } from "../src/internal/demo.js"
import * as TenantInfra from "../src/TenantInfra.js"

// Says what the environment chose, before the stack is built from it.
const announce = Effect.gen(function*() {
  const settings = yield* TenantInfra.settings({ relay: true, allowMemorySenders: true })
  yield* Console.log(
    [
      Option.isSome(settings.postgres)
        ? "Using PostgreSQL from DATABASE_URL (migrations run first)"
        : "Using the in-memory repository (set DATABASE_URL for PostgreSQL)",
      Option.isSome(settings.redis) ? "Cache store: Redis from REDIS_URL" : undefined,
      Option.isSome(settings.smtp) ? "E-mail goes to SMTP_URL" : "E-mail is kept in memory (set SMTP_URL to send)",
      Option.isSome(settings.sms)
        ? "SMS goes to SMS_GATEWAY_URL"
        : "SMS is kept in memory (set SMS_GATEWAY_URL to send)"
    ].filter((line) => line !== undefined).join("\n")
  )
})

// The whole stack from the environment, with a relay that works from the repository's delivery ledger (memory or
// PostgreSQL alike) for as long as the demo runs. Memory senders are allowed for the demo only.
announce.pipe(
  Effect.zipRight(program.pipe(Effect.provide(TenantInfra.layerConfig({ relay: true, allowMemorySenders: true })))),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
