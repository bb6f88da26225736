/**
 * `npx tsx scratchpad/liveStack.ts`: the whole stack from the environment (`TenantInfra.layerConfig`), checked by
 * `InfraHealth`. Set DATABASE_URL, REDIS_URL, SMTP_URL + MAIL_FROM, SMS_GATEWAY_URL + SMS_API_KEY for the real
 * backends; with nothing set it runs in memory. A bad variable fails at once, every one named.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { InfraHealth, TenantInfra, TenantRepository } from "../src/index.js"

const main = Effect.gen(function*() {
  const report = yield* (yield* InfraHealth.InfraHealth).check
  for (const check of report.checks) {
    yield* Console.log(`${check.name.padEnd(12)}${check.status}  ${check.latencyMillis} ms  ${check.error ?? ""}`)
  }
  if (report.checks.length === 0) yield* Console.log("everything in memory: nothing to check")
  const counts = yield* (yield* TenantRepository.TenantRepository).countByStatus
  yield* Console.log(`tenants by status: ${JSON.stringify(counts)}`)
})

main.pipe(Effect.provide(TenantInfra.layerConfig()), NodeRuntime.runMain({ disablePrettyLogger: true }))
