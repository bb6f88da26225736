import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { AddressInfo, Server, Socket } from "node:net"
import { connect, createServer, isIP } from "node:net"
import { performance } from "node:perf_hooks"

/**
 * What the proxy does to the bytes of every connection, open or new, from the moment it is set:
 * - `pass`: forwards them both ways;
 * - `latency`: delivers each chunk `millis` after it arrived, in each direction, in order;
 * - `reset`: resets (RST) every open connection when the mode is entered, and each new one as soon as it is
 *   accepted;
 * - `hold`: keeps every byte, both ways, and delivers nothing; the held bytes go out in order once a delivering
 *   mode is set again (a stalled network or a stopped peer);
 * - `drop`: discards every byte, both ways, without closing anything (a dead NAT entry, a cloud failover): the
 *   peers see an open connection that never answers. Dropped bytes are lost for good, and bytes the proxy was
 *   still holding or delaying when the mode was entered are dropped too. Closes (FIN, RST) are not dropped but
 *   held, as the peer's kernel would answer the first packet after the path comes back with one;
 * - `refuse`: the listener is closed, so a new connection gets ECONNREFUSED at once (as from a server that is
 *   down); open connections keep passing bytes. The port is listened on again when another mode is set.
 */
export type FaultMode =
  | "pass"
  | "reset"
  | "hold"
  | "drop"
  | "refuse"
  | { readonly _tag: "latency"; readonly millis: number }

export interface FaultProxyOptions {
  /** A loopback address: the proxy never forwards to another host. */
  readonly targetHost?: string
  readonly targetPort: number
}

export interface FaultProxy {
  /** The loopback port the proxy listens on (127.0.0.1). */
  readonly port: number
  /** `base` (a `postgres://` or `redis://` URL of the target) with its host and port replaced by the proxy's. */
  readonly url: (base: string) => string
  readonly mode: () => FaultMode
  /** Completes once the mode is in force: after `refuse`, new connections are refused; after it, accepted. */
  readonly setMode: (mode: FaultMode) => Effect.Effect<void>
  /** Resets every open connection once, staying in the current mode. */
  readonly resetAll: Effect.Effect<void>
  /** Connections open now (until both of their sockets have closed). */
  readonly connections: () => number
  /** Connections ever accepted, those reset at once included. */
  readonly accepted: () => number
  /** Bytes the proxy keeps and has not delivered yet (held, or delayed by latency). */
  readonly buffered: () => number
  /** Bytes discarded in `drop`. */
  readonly dropped: () => number
}

/** One item on its way in one direction: bytes, or the source's end (FIN) or reset. */
type Item =
  | { readonly _tag: "Data"; readonly chunk: Buffer; readonly due: number }
  | { readonly _tag: "End"; readonly due: number }
  | { readonly _tag: "Reset"; readonly due: number }

interface Direction {
  readonly source: Socket
  readonly target: Socket
  readonly queue: Array<Item>
  timer: ReturnType<typeof setTimeout> | undefined
  waitingForDrain: boolean
}

interface Connection {
  readonly client: Socket
  readonly upstream: Socket
  readonly toUpstream: Direction
  readonly toClient: Direction
}

const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."))

/** An RST rather than a FIN: the peer sees ECONNRESET, as when a connection is torn down by the network. */
const reset = (socket: Socket): void => {
  if (socket.destroyed) return
  // resetAndDestroy on a socket still connecting waits for the connection first; a plain destroy aborts it.
  if (socket.connecting || typeof socket.resetAndDestroy !== "function") socket.destroy()
  else socket.resetAndDestroy()
}

// Peers reset and vanish under every mode; their errors are the point of the exercise, never the test's failure.
const ignoreError = () => {}

/**
 * A TCP proxy on a free loopback port in front of `targetHost:targetPort`, whose faults the test switches at run
 * time with `setMode`. Closing the scope closes the listener, destroys every connection and clears every timer,
 * so nothing of it keeps the process alive.
 *
 * @example
 * const proxy = yield* makeFaultProxy({ targetPort: 5432 })
 * const client = new pg.Client({ host: "127.0.0.1", port: proxy.port, user: "postgres", database: "test" })
 * yield* proxy.setMode("drop")
 */
export const makeFaultProxy = (options: FaultProxyOptions): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const targetHost = options.targetHost ?? "127.0.0.1"
    if (!isLoopback(targetHost)) {
      return yield* Effect.dieMessage(`FaultProxy forwards to loopback only, not ${targetHost}`)
    }

    let mode: FaultMode = "pass"
    let accepted = 0
    let dropped = 0
    let closed = false
    const open = new Set<Connection>()

    const delay = (): number => typeof mode === "object" ? mode.millis : 0
    const delivers = (): boolean => mode !== "hold" && mode !== "drop"

    const deliver = (direction: Direction, item: Item): void => {
      const { source, target } = direction
      if (target.destroyed) return
      switch (item._tag) {
        case "Data": {
          if (!target.write(item.chunk) && !direction.waitingForDrain) {
            // Backpressure: read no more from the source than the target takes.
            direction.waitingForDrain = true
            source.pause()
            target.once("drain", () => {
              direction.waitingForDrain = false
              source.resume()
            })
          }
          return
        }
        case "End":
          return void target.end()
        case "Reset":
          return reset(target)
      }
    }

    const flush = (direction: Direction): void => {
      if (direction.timer !== undefined) {
        clearTimeout(direction.timer)
        direction.timer = undefined
      }
      while (delivers() && !closed) {
        const head = direction.queue[0]
        if (head === undefined) return
        const wait = head.due - performance.now()
        // The event loop's clock lags behind, so a timer can fire early: check again rather than deliver early.
        if (wait > 0) {
          direction.timer = setTimeout(() => {
            direction.timer = undefined
            flush(direction)
          }, Math.ceil(wait))
          return
        }
        direction.queue.shift()
        deliver(direction, head)
      }
    }

    const enqueue = (direction: Direction, item: Item): void => {
      direction.queue.push(item)
      // A pending timer means the head is not due yet, so neither is this item, which is behind it.
      if (direction.timer === undefined) flush(direction)
    }

    const pipe = (source: Socket, target: Socket): Direction => {
      const direction: Direction = { source, target, queue: [], timer: undefined, waitingForDrain: false }
      let ended = false
      source.on("data", (chunk: Buffer) => {
        if (mode === "drop") {
          dropped += chunk.length
          return
        }
        enqueue(direction, { _tag: "Data", chunk, due: performance.now() + delay() })
      })
      source.on("end", () => {
        ended = true
        enqueue(direction, { _tag: "End", due: performance.now() + delay() })
      })
      source.on("close", () => {
        // Closed without an end of its own: reset, destroyed, or never connected (the target is down).
        if (!ended) enqueue(direction, { _tag: "Reset", due: performance.now() + delay() })
      })
      return direction
    }

    const forget = (connection: Connection): void => {
      for (const direction of [connection.toUpstream, connection.toClient]) {
        if (direction.timer !== undefined) clearTimeout(direction.timer)
        direction.timer = undefined
        direction.queue.length = 0
      }
      open.delete(connection)
    }

    const onConnection = (client: Socket): void => {
      accepted++
      client.on("error", ignoreError)
      if (mode === "reset" || closed) return reset(client)
      const upstream = connect({ host: targetHost, port: options.targetPort, allowHalfOpen: true })
      upstream.on("error", ignoreError)
      const connection: Connection = {
        client,
        upstream,
        toUpstream: pipe(client, upstream),
        toClient: pipe(upstream, client)
      }
      open.add(connection)
      let closedSockets = 0
      const onClose = () => {
        if (++closedSockets === 2) forget(connection)
      }
      client.on("close", onClose)
      upstream.on("close", onClose)
    }

    let server: Server | undefined
    let port = 0

    const listen = Effect.async<void, Error>((resume) => {
      const next = createServer({ allowHalfOpen: true }, onConnection)
      next.on("error", (error) => resume(Effect.fail(error)))
      next.listen(port, "127.0.0.1", () => {
        next.removeAllListeners("error")
        next.on("error", ignoreError)
        server = next
        port = (next.address() as AddressInfo).port
        resume(Effect.void)
      })
    }).pipe(
      // Another process may take the port while it is closed for `refuse`: the test cannot go on then.
      Effect.orDieWith((error) => new Error(`FaultProxy could not listen on 127.0.0.1:${port}: ${error.message}`))
    )

    // Closing the listening socket is synchronous: connections attempted after this are refused.
    const stopListening = Effect.sync(() => {
      server?.close()
      server = undefined
    })

    const resetAll = Effect.sync(() => {
      for (const connection of open) {
        reset(connection.client)
        reset(connection.upstream)
      }
    })

    const setMode = (next: FaultMode) =>
      Effect.gen(function*() {
        const previous = mode
        mode = next
        if (next === "refuse" && previous !== "refuse") yield* stopListening
        if (next !== "refuse" && previous === "refuse") yield* listen
        if (next === "reset") yield* resetAll
        for (const connection of open) {
          for (const direction of [connection.toUpstream, connection.toClient]) {
            if (next === "drop") {
              for (const item of direction.queue) if (item._tag === "Data") dropped += item.chunk.length
              direction.queue.splice(
                0,
                direction.queue.length,
                ...direction.queue.filter((item) => item._tag !== "Data")
              )
            }
            flush(direction)
          }
        }
      })

    yield* Effect.acquireRelease(listen, () =>
      Effect.async<void>((resume) => {
        closed = true
        for (const connection of open) {
          forget(connection)
          connection.client.destroy()
          connection.upstream.destroy()
        }
        if (server === undefined) return resume(Effect.void)
        server.close(() => resume(Effect.void))
      }))

    const proxy: FaultProxy = {
      port,
      url: (base) => {
        const url = new URL(base)
        url.hostname = "127.0.0.1"
        url.port = String(port)
        return url.toString()
      },
      mode: () => mode,
      setMode,
      resetAll,
      connections: () => open.size,
      accepted: () => accepted,
      buffered: () => {
        let bytes = 0
        for (const connection of open) {
          for (const item of [...connection.toUpstream.queue, ...connection.toClient.queue]) {
            if (item._tag === "Data") bytes += item.chunk.length
          }
        }
        return bytes
      },
      dropped: () => dropped
    }
    return proxy
  })
