import { connect } from "node:net"
import pg from "pg"

/** Answers whether Redis at `url` replies PONG, within `timeoutMs`. */
const redisAnswers = (url: string, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = connect({ host: hostname, port: Number(port || 6379) })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.on("error", () => done(false))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (data) => done(data.toString().startsWith("+PONG")))
  })

/**
 * Runs once before the test files. It makes sure PostgreSQL and Redis answer (a clear failure rather than a
 * hundred connection errors; a server that is down fails the run, it never skips tests) and installs pg_trgm
 * once, in `public`, so that suites migrating in parallel do not race to create it.
 */
export default async function setup(): Promise<void> {
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
  if (!(await redisAnswers(redisUrl, 5000))) {
    throw new Error(`Redis does not answer at ${new URL(redisUrl).host} (REDIS_URL)`)
  }
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
