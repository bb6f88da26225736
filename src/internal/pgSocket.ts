/**
 * The socket the PostgreSQL driver talks through, with a watchdog. A connection whose peer stops answering
 * without closing (packets silently dropped, as in a failover or a dead NAT entry) would otherwise hang its
 * query for good, and the pool would keep the connection: after the network comes back, every checked-out
 * connection is still stuck. The watchdog destroys such a socket, so its query fails with an error and the pool
 * discards the connection.
 *
 * "Waiting" means the client wrote something and the server has not yet ended its answer with ReadyForQuery
 * (`Z`, length 5, status): every answer of the PostgreSQL protocol ends with it. While waiting, a silence longer
 * than the timeout destroys the socket; an idle connection is never touched. Over TLS the bytes are encrypted, so
 * any byte received ends the wait: a silence mid-answer is then left to the repository's deadline.
 */
import * as Context from "effect/Context"
import * as net from "node:net"

/** `Z`, then the message length 5 as a 32-bit integer; a status byte follows. */
const READY_FOR_QUERY = [0x5a, 0x00, 0x00, 0x00, 0x05] as const
const TRANSACTION_STATUSES = new Set([0x49, 0x54, 0x45]) // I, T, E

export interface WatchdogOptions {
  /** How long the server may stay silent while the client waits for an answer. */
  readonly silenceMillis: number
  /** TCP keepalive's first probe after this much idle time, so that the OS notices a dead peer too. */
  readonly keepAliveMillis: number
}

class WatchedSocket extends net.Socket {
  private waiting = false
  private heardAt = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private tail: Buffer = Buffer.alloc(0)

  constructor(private readonly options: WatchdogOptions, private readonly encrypted: boolean) {
    super()
    this.on("data", (chunk: Buffer) => this.heard(chunk))
    this.once("connect", () => this.setKeepAlive(true, options.keepAliveMillis))
    this.once("close", () => this.stopTimer())
  }

  override _write(chunk: unknown, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.asked()
    super._write(chunk, encoding, callback)
  }

  override _writev(
    chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void
  ): void {
    this.asked()
    // net.Socket implements `_writev`; the optional type only says that a Writable may not.
    const writev = super._writev
    if (writev !== undefined) writev.call(this, chunks, callback)
    else callback(new Error("this socket cannot write several chunks at once"))
  }

  private asked() {
    if (this.waiting) return
    this.waiting = true
    this.heardAt = Date.now()
    if (this.timer === undefined) this.arm(this.options.silenceMillis)
  }

  private heard(chunk: Buffer) {
    this.heardAt = Date.now()
    if (this.encrypted) {
      this.waiting = false
      return
    }
    const tail = chunk.length >= 6 ? chunk.subarray(chunk.length - 6) : Buffer.concat([this.tail, chunk]).subarray(-6)
    this.tail = Buffer.from(tail)
    if (endsWithReadyForQuery(tail)) this.waiting = false
  }

  private arm(millis: number) {
    this.timer = setTimeout(() => this.check(), millis)
    // A pending check must not keep a process alive that has nothing else to do.
    this.timer.unref()
  }

  private check() {
    this.timer = undefined
    if (!this.waiting || this.destroyed) return
    const silentFor = Date.now() - this.heardAt
    if (silentFor >= this.options.silenceMillis) {
      this.destroy(new Error(`PostgreSQL did not answer within ${this.options.silenceMillis} ms`))
    } else {
      this.arm(this.options.silenceMillis - silentFor)
    }
  }

  private stopTimer() {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

const endsWithReadyForQuery = (tail: Buffer): boolean =>
  tail.length === 6 &&
  READY_FOR_QUERY.every((byte, index) => tail[index] === byte) &&
  TRANSACTION_STATUSES.has(tail[5] ?? 0)

/**
 * A factory for the driver's `stream` option. The driver calls it with its connection settings; with `ssl` set it
 * wraps this socket in TLS itself.
 */
export const watchedSocket = (options: WatchdogOptions) => (settings?: { readonly ssl?: unknown }): net.Socket =>
  new WatchedSocket(options, settings?.ssl !== undefined && settings.ssl !== false)

/**
 * Present where the client's sockets carry the watchdog: how long a single statement can take at most, waiting
 * for a connection (the connect timeout) and then for the server (the silence bound). The repository needs no
 * deadline of its own around a single statement that is already bounded this way.
 */
export class PgWatchdog extends Context.Tag("tenant-infra/PgWatchdog")<PgWatchdog, {
  readonly statementBoundMillis: number
}>() {}
