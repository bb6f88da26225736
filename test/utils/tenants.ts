import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import type { TenantId } from "../../src/Tenant.js"
import * as TenantLifecycle from "../../src/TenantLifecycle.js"

/** A stamp at a chosen time, so tests control every timestamp without a clock. */
export const stampAt = (at: Date, by: { readonly actor?: string; readonly reason?: string } = {}) =>
  new TenantLifecycle.Stamp({
    eventId: randomUUID(),
    at,
    actor: by.actor ?? "tester",
    ...(by.reason === undefined ? {} : { reason: by.reason })
  })

/** A code no other test uses. */
export const uniqueCode = (prefix = "t"): string => `${prefix}${randomUUID().replaceAll("-", "").slice(0, 20)}`

/**
 * A time window no other test's tenants fall into: a random millisecond between 2001 and 2091, so that list
 * queries bounded to it see this test's tenants only, even on a store that other tests share.
 */
export const uniqueWindow = () => {
  const start = Date.UTC(2001, 0, 1) + Math.floor(Math.random() * 90 * 365) * 86_400_000
  return {
    at: (second: number) => new Date(start + second * 1000),
    createdFrom: new Date(start),
    createdBefore: new Date(start + 86_400_000)
  }
}

/** A new tenant with valid defaults; `input` overrides them. */
export const newTenant = (input: Record<string, unknown> = {}, at = new Date()) =>
  Effect.gen(function*() {
    const id: TenantId = yield* TenantLifecycle.newTenantId
    return yield* TenantLifecycle.create(
      id,
      { code: uniqueCode(), name: "Acme Inc.", contact: { email: "admin@acme.test" }, ...input },
      stampAt(at)
    )
  })
