/**
 * The PostgreSQL schema of the package, as `@effect/sql` migrations shipped inside it. `TenantRepository/Pg`
 * runs them on start; `run` runs them alone (for a deploy step or the CLI). They are tracked in their own table,
 * `tenant_infra_migrations`, so they never mix with the host application's migrations.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * The table that records which of this package's migrations ran.
 *
 * @since 0.1.0
 * @category models
 */
export const TABLE = "tenant_infra_migrations"

const createTenants = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE tenants (
      id uuid PRIMARY KEY,
      code text NOT NULL,
      name text NOT NULL,
      name_key text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'deleted')),
      email text NOT NULL,
      phone text,
      locale text NOT NULL,
      domain text,
      settings jsonb NOT NULL DEFAULT '{}'::jsonb,
      version integer NOT NULL CHECK (version >= 1),
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      deleted_at timestamptz,
      status_changed_by text,
      status_change_reason text,
      status_changed_at timestamptz,
      CONSTRAINT tenants_deleted_when_deleted_at CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
    )`
  // Uniqueness holds among live tenants only, so a deleted tenant's code and domain can be reused.
  yield* sql`CREATE UNIQUE INDEX tenants_code_live_key ON tenants (code) WHERE deleted_at IS NULL`
  yield* sql`CREATE UNIQUE INDEX tenants_domain_live_key ON tenants (domain) WHERE deleted_at IS NULL`
  // One index per sort order (the id breaks ties), one for status filters and counts.
  yield* sql`CREATE INDEX tenants_created_at_idx ON tenants (created_at, id)`
  yield* sql`CREATE INDEX tenants_updated_at_idx ON tenants (updated_at, id)`
  yield* sql`CREATE INDEX tenants_name_key_idx ON tenants (name_key COLLATE "C", id)`
  yield* sql`CREATE INDEX tenants_code_idx ON tenants (code COLLATE "C", id)`
  yield* sql`CREATE INDEX tenants_status_created_at_idx ON tenants (status, created_at, id)`
})

const createOutbox = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE tenant_outbox (
      position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      event_id uuid NOT NULL UNIQUE,
      tenant_id uuid NOT NULL,
      tenant_version integer NOT NULL,
      event_type text NOT NULL,
      payload jsonb NOT NULL,
      occurred_at timestamptz NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT tenant_outbox_tenant_version_key UNIQUE (tenant_id, tenant_version)
    )`
})

/**
 * Search is a substring match (`LIKE '%text%'`), which only a trigram index serves. `pg_trgm` ships with
 * PostgreSQL and is a trusted extension, but a database may still refuse it: then search works unindexed and
 * the migration says so in the log rather than failing the deploy.
 */
const indexSearch = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const installed = yield* sql.withTransaction(sql`CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public`).pipe(
    Effect.as(true),
    Effect.catchAll((error) =>
      Effect.as(Effect.logWarning("pg_trgm is not available: tenant search will not be indexed", error), false)
    )
  )
  if (!installed) return
  const rows = yield* sql<{ schema: string }>`
    SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm'`
  const schema = rows[0]?.schema ?? "public"
  yield* sql`CREATE INDEX tenants_name_key_trgm_idx ON tenants USING gin (name_key ${sql(schema)}.gin_trgm_ops)`
  yield* sql`CREATE INDEX tenants_code_trgm_idx ON tenants USING gin (code ${sql(schema)}.gin_trgm_ops)`
})

/**
 * The delivery ledger (see `DeliveryLedger`): one row per message an outbox event calls for, one row per attempt
 * at it, and on the outbox a mark for the events already turned into messages. Events stored before this
 * migration are marked as expanded: a relay installed on an existing database starts with the events recorded
 * after it, rather than sending every past event's notifications at once.
 *
 * The trigger wakes relays (`LISTEN tenant_outbox`) when an event commits; the payload is the schema's name.
 */
const createDeliveryLedger = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // A default that is not volatile marks the existing rows without rewriting the table (PostgreSQL 11+);
  // dropping it then leaves new events unexpanded.
  yield* sql`ALTER TABLE tenant_outbox ADD COLUMN expanded_at timestamptz DEFAULT now(), ADD COLUMN expand_error text`
  yield* sql`ALTER TABLE tenant_outbox ALTER COLUMN expanded_at DROP DEFAULT`
  yield* sql`CREATE INDEX tenant_outbox_unexpanded_idx ON tenant_outbox (position) WHERE expanded_at IS NULL`
  yield* sql`CREATE INDEX tenant_outbox_undecodable_idx ON tenant_outbox (position) WHERE expand_error IS NOT NULL`
  yield* sql`
    CREATE TABLE tenant_deliveries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      message_key text NOT NULL UNIQUE,
      event_id uuid NOT NULL REFERENCES tenant_outbox (event_id),
      tenant_id uuid NOT NULL,
      tenant_version integer NOT NULL,
      channel text NOT NULL CHECK (channel IN ('email', 'sms')),
      recipient text NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
      attempts integer NOT NULL DEFAULT 0,
      failures integer NOT NULL DEFAULT 0,
      ambiguous_attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      lease_owner text,
      lease_until timestamptz,
      lease_epoch bigint NOT NULL DEFAULT 0,
      provider_id text,
      last_error text,
      event_recorded_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    )`
  yield* sql`CREATE INDEX tenant_deliveries_due_idx ON tenant_deliveries (next_attempt_at, id) WHERE status = 'pending'`
  yield* sql`
    CREATE INDEX tenant_deliveries_tenant_pending_idx ON tenant_deliveries (tenant_id, tenant_version)
    WHERE status = 'pending'`
  yield* sql`
    CREATE INDEX tenant_deliveries_lease_owner_idx ON tenant_deliveries (lease_owner)
    WHERE status = 'pending' AND lease_owner IS NOT NULL`
  yield* sql`
    CREATE INDEX tenant_deliveries_dead_idx ON tenant_deliveries (message_key COLLATE "C") WHERE status = 'dead'`
  yield* sql`
    CREATE TABLE tenant_delivery_attempts (
      delivery_id bigint NOT NULL REFERENCES tenant_deliveries (id) ON DELETE CASCADE,
      attempt integer NOT NULL,
      lease_epoch bigint NOT NULL,
      relay text NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz,
      outcome text NOT NULL DEFAULT 'sending' CHECK (outcome IN (
        'sending', 'sent', 'Transient', 'RateLimited', 'Permanent', 'Misconfigured', 'Ambiguous', 'Cancelled'
      )),
      detail text,
      PRIMARY KEY (delivery_id, attempt)
    )`
  yield* sql`
    CREATE INDEX tenant_delivery_attempts_open_idx ON tenant_delivery_attempts (delivery_id)
    WHERE finished_at IS NULL`
  yield* sql.unsafe(`
    CREATE FUNCTION tenant_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('tenant_outbox', TG_TABLE_SCHEMA);
      RETURN NULL;
    END
    $$`)
  yield* sql`
    CREATE TRIGGER tenant_outbox_notify AFTER INSERT ON tenant_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_outbox_notify()`
})

// DeliveryLedger.prune finds delivered messages by when they were delivered. Building it blocks writes to the
// ledger while it runs; on a large ledger an operator can build it first, without blocking, with
// CREATE INDEX CONCURRENTLY under this name (migrations run in a transaction, where CONCURRENTLY cannot).
const indexDeliveredMessages = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE INDEX IF NOT EXISTS tenant_deliveries_delivered_idx ON tenant_deliveries (finished_at)
    WHERE status = 'delivered'`
})

/**
 * Each outbox event records the transaction that wrote it, so that a reader can take events in the order their
 * transactions committed: every transaction below `pg_snapshot_xmin` of a snapshot has ended, so no event can
 * appear below it later (see the cache's change feed). Adding the column with no default rewrites nothing;
 * events written before it have none and count as long applied.
 */
const recordOutboxTransactions = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE tenant_outbox ADD COLUMN xid xid8`
  yield* sql`ALTER TABLE tenant_outbox ALTER COLUMN xid SET DEFAULT pg_current_xact_id()`
  yield* sql`CREATE INDEX tenant_outbox_xid_idx ON tenant_outbox (xid)`
})

/**
 * Every migration of the package, by id. Ids only grow; a released migration is never edited.
 *
 * @since 0.1.0
 * @category models
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "1_create_tenants": createTenants,
  "2_create_tenant_outbox": createOutbox,
  "3_index_tenant_search": indexSearch,
  "4_create_delivery_ledger": createDeliveryLedger,
  "5_index_delivered_messages": indexDeliveredMessages,
  "6_record_outbox_transactions": recordOutboxTransactions
}

/**
 * Runs the migrations that have not run yet, in one transaction, and returns those it ran. Safe to run from
 * several processes at once: they take turns on a lock and the later ones find nothing to do.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  // Processes starting together take turns on a transaction-scoped advisory lock: even CREATE TABLE IF NOT
  // EXISTS races in PostgreSQL, and the Migrator creates its table before it locks it.
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext(${TABLE}))`
    yield* sql`
      CREATE TABLE IF NOT EXISTS ${sql(TABLE)} (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
    return yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: TABLE })
  })).pipe(Effect.provideService(SqlClient.SqlClient, sql))
}).pipe(Effect.withSpan("Migrations.run", { captureStackTrace: false }))

/**
 * A layer that runs the migrations when it is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> = Layer
  .effectDiscard(run)
