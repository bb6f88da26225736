/**
 * The repository's changes in the order they committed, for the cache: every write's events name the keys it
 * touched, and a cache that applies them all, in order, and records how far it got (a mark), can tell whether it
 * has missed any. The repository layers provide it; a repository without it (a mock) leaves the cache to its
 * inline invalidations alone.
 *
 * Marks are positions in commit order, as decimal integers: PostgreSQL transaction ids (`xid8`), or the memory
 * outbox's positions, which are assigned as each write commits.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { RepositoryError } from "../TenantRepositoryError.js"

/** What a committed event says of the keys its write touched. */
export interface Change {
  readonly eventId: string
  readonly mark: bigint
  readonly tenantId: string
  readonly code: string
  readonly domain: string | undefined
  /** The code and domain an update replaced. */
  readonly previousCode: string | undefined
  readonly previousDomain: string | undefined
}

export interface Poll {
  /** Above the mark of every change that had committed when the poll began. */
  readonly head: bigint
  /** Where the next poll goes on from: every change from `from` up to it is in `changes`. */
  readonly next: bigint
  readonly changes: ReadonlyArray<Change>
}

export interface Service {
  /**
   * Where to begin when no mark is known: the mark of the oldest change recorded within `window` (the longest a
   * cached value lives: anything older cannot be cached any more), or the head when there is none.
   */
  readonly start: (window: Duration.Duration) => Effect.Effect<bigint, RepositoryError>
  /** The changes from `from` on, at most `limit` (more may follow from `next`). */
  readonly poll: (from: bigint, limit: number) => Effect.Effect<Poll, RepositoryError>
}

export class ChangeFeed extends Context.Tag("tenant-infra/ChangeFeed")<ChangeFeed, Service>() {}
