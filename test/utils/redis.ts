import * as Effect from "effect/Effect"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"

/** The Redis the tests use: `REDIS_URL`, or the local one. */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

/**
 * A key prefix no other suite uses, whose keys are deleted (SCAN, then UNLINK) when the scope closes, so that
 * suites share one Redis without seeing each other's keys.
 */
export const freshPrefix = Effect.acquireRelease(
  Effect.sync(() => `test:${randomUUID().slice(0, 8)}:`),
  (prefix) =>
    Effect.promise(async () => {
      const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
      try {
        await client.connect()
        let cursor = "0"
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500)
          cursor = next
          if (keys.length > 0) await client.unlink(...keys)
        } while (cursor !== "0")
      } finally {
        client.disconnect()
      }
    })
)
