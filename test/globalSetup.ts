import pg from "pg"

/**
 * Runs once before every test file. It makes sure PostgreSQL answers (a clear failure rather than a hundred
 * connection errors) and installs pg_trgm once, in `public`, so that suites migrating in parallel do not race
 * to create it.
 */
export default async function setup(): Promise<void> {
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${new URL(url).host} (DATABASE_URL): ${String(error)}`)
  }
  try {
    await client.query("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
  } finally {
    await client.end()
  }
}
