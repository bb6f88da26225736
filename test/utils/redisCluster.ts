/**
 * A Redis Cluster of the test's own: three masters (`redis-server --cluster-enabled yes`) on free loopback ports,
 * joined with `redis-cli --cluster create`, each with a directory of its own for `nodes.conf`, nothing persisted.
 * Every step is bounded in time, and everything (processes, directories) is removed when the scope closes.
 *
 * A missing `redis-server` or `redis-cli` fails the suite, in CI and out of it (as `ownRedis` does): these tests
 * never skip.
 *
 * Waits are timed with the host's timers, not Effect's Clock: the cluster is built inside `it.layer`, whose
 * TestClock never moves by itself.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Cluster, Redis } from "ioredis"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { freePort } from "./redisServer.js"

const MASTERS = 3
const HOST = "127.0.0.1"
const SERVER_START_MILLIS = 10_000
const CLUSTER_CREATE_MILLIS = 30_000
const CLUSTER_OK_MILLIS = 20_000
const STOP_MILLIS = 3_000

export interface ClusterNode {
  readonly host: string
  readonly port: number
}

export interface OwnRedisCluster {
  /** The masters, each owning a third of the hash slots: the startup nodes of a client. */
  readonly nodes: ReadonlyArray<ClusterNode>
}

/** The cluster a suite runs against, for `it.layer`. */
export class RedisClusterUnderTest extends Context.Tag("test/RedisClusterUnderTest")<
  RedisClusterUnderTest,
  OwnRedisCluster
>() {}

/** Rejects with `message` when `promise` has not settled within `millis`. */
const within = <A>(millis: number, message: string, promise: Promise<A>): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), millis)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** `count` distinct free loopback ports. */
const freePorts = (count: number) =>
  Effect.gen(function*() {
    const ports = new Set<number>()
    while (ports.size < count) ports.add(yield* freePort)
    return [...ports]
  })

const notInstalled = (program: string, error: Error) =>
  new Error(
    `${program} could not be started (${error.message}): the Redis Cluster tests start their own servers; ` +
      "install Redis 7 (redis-server and redis-cli on PATH)"
  )

/** Resolves once the server says it accepts connections; rejects if it cannot start or exits first. */
const serverReady = (child: ChildProcess, port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let output = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      // Only the beginning matters: the line that says it is ready, or why it stopped.
      if (output.length < 20_000) output += chunk.toString()
      if (output.includes("Ready to accept connections")) resolve()
    })
    child.on("error", (error) => reject(notInstalled("redis-server", error)))
    child.once("exit", (code, signal) =>
      reject(new Error(`redis-server on port ${port} exited (${code ?? signal}) before it was ready:\n${output}`)))
  })

/** SIGTERM, then SIGKILL if the server has not exited within the bound; resolves once it has exited. */
const stopServer = async (child: ChildProcess): Promise<void> => {
  const exited = () => child.exitCode !== null || child.signalCode !== null
  // Never started (no such program): nothing to stop.
  if (child.pid === undefined || exited()) return
  const exit = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  const stopped = await within(STOP_MILLIS, "", exit).then(() => true, () => false)
  if (!stopped && !exited()) {
    child.kill("SIGKILL")
    await within(STOP_MILLIS, "", exit).catch(() => undefined)
  }
}

/** `redis-cli --cluster create`: meets the nodes and spreads the 16384 slots over them, no replicas. */
const createCluster = (nodes: ReadonlyArray<ClusterNode>): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...nodes.map(({ host, port }) => `${host}:${port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes"
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    const collect = (chunk: Buffer) => {
      if (output.length < 20_000) output += chunk.toString()
    }
    child.stdout.on("data", collect)
    child.stderr.on("data", collect)
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`redis-cli --cluster create did not finish within ${CLUSTER_CREATE_MILLIS} ms:\n${output}`))
    }, CLUSTER_CREATE_MILLIS)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(notInstalled("redis-cli", error))
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`redis-cli --cluster create failed (${code}):\n${output}`))
    })
  })

/** Polls `CLUSTER INFO` on every node until each says `cluster_state:ok`: every slot served, as each node sees it. */
const clusterStateOk = async (nodes: ReadonlyArray<ClusterNode>): Promise<void> => {
  const clients = nodes.map(({ host, port }) => new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 }))
  for (const client of clients) client.on("error", () => undefined)
  const deadline = Date.now() + CLUSTER_OK_MILLIS
  let last = ""
  try {
    for (;;) {
      const states = await Promise.all(
        clients.map((client) =>
          client.call("CLUSTER", "INFO").then(
            (info) => /cluster_state:(\w+)/.exec(String(info))?.[1] ?? "unknown",
            (error: unknown) => String(error)
          )
        )
      )
      if (states.every((state) => state === "ok")) return
      last = states.join(", ")
      if (Date.now() > deadline) throw new Error(`the cluster is not ok after ${CLUSTER_OK_MILLIS} ms: ${last}`)
      await sleep(100)
    }
  } finally {
    for (const client of clients) client.disconnect()
  }
}

/** One cluster-enabled master on `port`, its cluster bus on `busPort`, its files in `directory`. */
const startNode = (port: number, busPort: number, directory: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn("redis-server", [
        "--port",
        String(port),
        "--bind",
        HOST,
        // An ephemeral port plus the default 10000 may not be a port at all: the bus gets a free one of its own.
        "--cluster-port",
        String(busPort),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--dir",
        directory,
        "--save",
        "",
        "--appendonly",
        "no"
      ], { stdio: ["ignore", "pipe", "ignore"] })
      // Listening from the start: the "ready" line, or a spawn error, must not come before anyone listens.
      const ready = within(SERVER_START_MILLIS, `redis-server on port ${port} did not start`, serverReady(child, port))
      ready.catch(() => undefined)
      return { child, ready }
    }),
    ({ child }) => Effect.promise(() => stopServer(child))
  ).pipe(Effect.flatMap(({ ready }) => Effect.promise(() => ready)))

/**
 * Three masters on free loopback ports, joined into one cluster whose every node reports `cluster_state:ok`.
 * Stopped (SIGTERM, then SIGKILL) and their directory removed when the scope closes.
 */
export const ownRedisCluster: Effect.Effect<OwnRedisCluster, never, Scope.Scope> = Effect.gen(function*() {
  const directory = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "own-redis-cluster-"))),
    // Released after the servers (scopes close in reverse), so that none writes into a removed directory.
    (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
  )
  const ports = yield* freePorts(MASTERS * 2)
  const nodes = ports.slice(0, MASTERS).map((port) => ({ host: HOST, port }))
  yield* Effect.forEach(
    nodes,
    ({ port }, index) => startNode(port, ports[MASTERS + index] ?? 0, directory),
    { concurrency: "unbounded", discard: true }
  )
  yield* Effect.promise(() => createCluster(nodes))
  yield* Effect.promise(() => clusterStateOk(nodes))
  return { nodes }
})

/** The cluster for a whole suite (`it.layer`): started before its first test, removed after its last. */
export const layerOwnRedisCluster: Layer.Layer<RedisClusterUnderTest> = Layer.scoped(
  RedisClusterUnderTest,
  ownRedisCluster
)

/**
 * An ioredis `Cluster` client of `cluster`, ready (slots known, every master connected) before it is returned,
 * and disconnected with the scope: what an application hands to `layerClient`.
 */
export const clusterClient = (cluster: OwnRedisCluster): Effect.Effect<Cluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Cluster([...cluster.nodes], { redisOptions: { connectTimeout: 2_000 } })
      // Failures are reported per command; without a listener ioredis would print each one.
      client.on("error", () => undefined)
      const ready = new Promise<void>((resolve) => client.once("ready", () => resolve()))
      await within(10_000, "the Cluster client did not become ready", ready).catch((error: unknown) => {
        client.disconnect()
        throw error
      })
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

/** The keys matching `pattern` that each master holds, in the order of `cluster.nodes` (SCAN on each node). */
export const keysOnEachNode = (
  cluster: OwnRedisCluster,
  pattern: string
): Effect.Effect<ReadonlyArray<ReadonlyArray<string>>> =>
  Effect.promise(() =>
    Promise.all(cluster.nodes.map(async ({ host, port }) => {
      const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 })
      client.on("error", () => undefined)
      try {
        const keys: Array<string> = []
        let cursor = "0"
        do {
          const [next, found] = await client.scan(cursor, "MATCH", pattern, "COUNT", 500)
          cursor = next
          keys.push(...found)
        } while (cursor !== "0")
        return keys.sort()
      } finally {
        client.disconnect()
      }
    }))
  )

/** Runs `command` on every master, on a connection of its own (`CLIENT KILL`, `CLIENT LIST`, ...). */
export const onEachNode = (
  cluster: OwnRedisCluster,
  command: string,
  ...args: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<unknown>> =>
  Effect.promise(() =>
    Promise.all(cluster.nodes.map(async ({ host, port }) => {
      const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 })
      client.on("error", () => undefined)
      try {
        return await client.call(command, ...args)
      } finally {
        client.disconnect()
      }
    }))
  )
