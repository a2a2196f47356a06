import { createServer, type Server, type Socket } from 'node:net'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'

export interface ListenerCounters {
  connections: number
  connectionsTotal: number
  connectionsRefused: number
  idleClosed: number
  messages: number
  bytes: number
  parseErrors: number
  dropped: number
}

export const newCounters = (): ListenerCounters => ({ connections: 0, connectionsTotal: 0, connectionsRefused: 0, idleClosed: 0, messages: 0, bytes: 0, parseErrors: 0, dropped: 0 })

/** What the server needs of any door that listens on a socket (TCP or UDP). */
export interface IngestListener {
  readonly options: { readonly name: string }
  readonly counters: ListenerCounters
  readonly port: number
  listen(): Promise<unknown>
  close(): Promise<void>
}

/**
 * server.limits.maxConnections: one count of open connections shared by every TCP door, so the
 * doors together cannot take more descriptors than that, whatever each one's own cap.
 */
export class ConnectionBudget {
  open = 0
  constructor(readonly max: number) {}

  take(): boolean {
    if (this.open >= this.max) return false
    this.open++
    return true
  }

  give(): void {
    this.open--
  }
}

export interface TcpListenerOptions {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly maxConnections: number
  /** Connections from one address at most; more are closed at accept. */
  readonly maxConnectionsPerAddress?: number | undefined
  /** The count shared with the other TCP doors (server.limits.maxConnections). */
  readonly budget?: ConnectionBudget | undefined
  readonly idleTimeoutMs: number
  readonly logger: Logger
  readonly onConnection: (socket: Socket, remote: string) => { end(): Promise<void> }
}

/**
 * A TCP door: connection limit, idle timeout, and a clean stop that stops accepting, lets each
 * connection store what it already read, then closes it.
 */
export class TcpListener implements IngestListener {
  readonly counters = newCounters()
  readonly #server: Server
  readonly #open = new Map<Socket, { end(): Promise<void> }>()
  readonly #perAddress = new Map<string, number>()

  constructor(readonly options: TcpListenerOptions) {
    this.#server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.#accept(socket))
    this.#server.maxConnections = options.maxConnections
    this.#server.on('drop', () => {
      this.counters.connectionsRefused++
      hitLimit(`${options.name}.maxConnections`)
    })
  }

  #accept(socket: Socket): void {
    const c = this.counters
    const address = socket.remoteAddress ?? '?'
    const perAddressMax = this.options.maxConnectionsPerAddress
    const refuse = (limit: string): void => {
      c.connectionsRefused++
      hitLimit(limit)
      socket.on('error', () => undefined)
      socket.destroy()
    }
    if (perAddressMax !== undefined && (this.#perAddress.get(address) ?? 0) >= perAddressMax) return refuse(`${this.options.name}.maxConnectionsPerAddress`)
    const budget = this.options.budget
    if (budget !== undefined && !budget.take()) return refuse('limits.maxConnections')
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1)
    c.connections++
    c.connectionsTotal++
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`
    socket.setTimeout(this.options.idleTimeoutMs, () => {
      // A socket we paused (backpressure, an alarm, a rate limit) is quiet because of us, not the
      // sender: closing it would lose what the sender still has. Activity re-arms the timer.
      if (socket.isPaused()) return
      c.idleClosed++
      hitLimit(`${this.options.name}.idleTimeout`)
      socket.destroy()
    })
    socket.on('error', () => undefined) // a reset peer is routine; 'close' follows
    const handler = this.options.onConnection(socket, remote)
    this.#open.set(socket, handler)
    socket.once('close', () => {
      c.connections--
      budget?.give()
      const n = (this.#perAddress.get(address) ?? 1) - 1
      if (n === 0) this.#perAddress.delete(address)
      else this.#perAddress.set(address, n)
      this.#open.delete(socket)
    })
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen({ host: this.options.host, port: this.options.port }, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    const a = this.#server.address()
    const address = typeof a === 'object' && a !== null ? `${a.address}:${a.port}` : String(a)
    this.options.logger.info({ listener: this.options.name, address }, 'listener up')
    return address
  }

  get port(): number {
    const a = this.#server.address()
    return typeof a === 'object' && a !== null ? a.port : 0
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    await Promise.all(
      [...this.#open].map(async ([socket, h]) => {
        socket.pause()
        await h.end()
        socket.end()
      }),
    )
    for (const socket of this.#open.keys()) socket.destroy()
    await closed
  }
}
