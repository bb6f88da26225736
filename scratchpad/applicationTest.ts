/**
 * `npx tsx scratchpad/applicationTest.ts`: how an application tests its own code against the repository port,
 * with a `Layer.succeed` mock in place of a store (in a vitest suite, the same with `it.effect` from
 * `@effect/vitest`).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as assert from "node:assert/strict"
import type { Tenant } from "../src/index.js"
import { TenantRepository } from "../src/index.js"

// The application's code: the name shown for a code, or a placeholder.
const displayName = (code: string) =>
  Effect.map(
    Effect.flatMap(TenantRepository.TenantRepository, (repository) => repository.findByCode(code)),
    Option.match({ onNone: () => "(unknown tenant)", onSome: (tenant) => tenant.name })
  )

const unused = Effect.dieMessage("not used by this test")

// Every method written out: what the code under test must not call dies, so a test notices it.
const NoTenants = Layer.succeed(
  TenantRepository.TenantRepository,
  TenantRepository.TenantRepository.of({
    insert: () => unused,
    save: () => unused,
    findById: () => unused,
    findByCode: () => Effect.succeed(Option.none<Tenant.Tenant>()),
    findByDomain: () => unused,
    list: () => unused,
    countByStatus: unused
  })
)

const name = await Effect.runPromise(displayName("acme").pipe(Effect.provide(NoTenants)))
assert.equal(name, "(unknown tenant)")
console.log(`displayName("acme") with no tenants: ${name}`)
