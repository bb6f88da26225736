/**
 * The Redis stores' options, apart from the stores themselves: a module that loads nothing and names no ioredis
 * type, so that what describes settings (`TenantInfra`) does not need the driver installed to type-check.
 */
import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"

/**
 * How the store names its keys and how long it waits.
 */
export interface StoreOptions {
  /** Put in front of every key, so that several applications can share one Redis (default `tenant-infra:`). */
  readonly prefix?: string | undefined
  /** How long one command may take before it fails as `Timeout` (default 200 milliseconds). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /**
   * How long a key's version outlives its last invalidation (default 1 day). A fill that takes longer than this
   * between its read and its write could store a stale value: keep it far above any repository load time.
   */
  readonly versionTtl?: Duration.DurationInput | undefined
}

/** */
export interface Options extends StoreOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://...`; a secret. */
  readonly url: Redacted.Redacted
  /** How long to wait for the first connection before serving anyway (default 1 second). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** The two-tier store: Redis, and a memory tier in front of it. */
export interface TieredOptions extends Options {
  /** Most values the memory tier keeps (default 10,000). */
  readonly localMaxEntries?: number | undefined
  /**
   * How long a memory copy may live (default 10 seconds): the bound on staleness should a broadcast be lost
   * in a way the subscriber cannot notice.
   */
  readonly localTtl?: Duration.DurationInput | undefined
}
