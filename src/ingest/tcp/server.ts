import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { listenIpv6Loopback, primaryHost } from './loopback.js'
import type { ListenerConfig } from '../../config/index.js'
import type { DoorAccess } from '../door-access.js'
import { loadTlsOptions, peerCertificate, peerRefusal, tlsSetupFor, type PeerCertificate, type TlsReloader, type TlsSetup } from './tls.js'

export interface ListenerCounters {
  connections: number
  connectionsTotal: number
  connectionsRefused: number
  idleClosed: number
  messages: number
  bytes: number
  parseErrors: number
  dropped: number
  /** TLS handshakes that failed (no or a bad client certificate, an old TLS version, not TLS at all). */
  tlsHandshakeFailures: number
}

export const newCounters = (): ListenerCounters => ({ connections: 0, connectionsTotal: 0, connectionsRefused: 0, idleClosed: 0, messages: 0, bytes: 0, parseErrors: 0, dropped: 0, tlsHandshakeFailures: 0 })

/** What the server needs of any door that listens on a socket (TCP or UDP). */
export interface IngestListener {
  readonly options: { readonly name: string }
  readonly counters: ListenerCounters
  readonly port: number
  /** Serves TLS (a listener entry with `tls`). */
  readonly tls?: boolean
  listen(): Promise<unknown>
  close(): Promise<void>
}

/** What the entries of one door share when its listener key holds a list of them. */
export interface DoorShared {
  /** One set of counters per door, so /metrics and the overview show the door once. */
  readonly counters?: ListenerCounters | undefined
  /** Where TLS entries register their certificates for SIGHUP. */
  readonly tlsReloader?: TlsReloader | undefined
}

/**
 * The first listener of each name: the entries of one door share their counters (DoorShared), so
 * one of them speaks for all wherever listeners are counted by name.
 */
export function oneByName<L extends { readonly options: { readonly name: string } }>(listeners: readonly L[]): L[] {
  const seen = new Set<string>()
  return listeners.filter((l) => !seen.has(l.options.name) && seen.add(l.options.name))
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
  /** Whether a client address may connect at all (a stream door's `allow`); false closes it at accept. Counting and logging are the caller's. */
  readonly allow?: ((address: string | undefined) => boolean) | undefined
  /** Serve TLS, and only TLS, on this port; the caps above count a connection from accept, its handshake included. */
  readonly tls?: TlsSetup | undefined
  /** A TLS handshake must be done within this (the door's own first deadline); default 10 s. */
  readonly tlsHandshakeTimeoutMs?: number | undefined
  /** Counters shared with the door's other entries (a listener key holding a list); else its own. */
  readonly counters?: ListenerCounters | undefined
  /**
   * A connection let in (for TLS: once its handshake is done). `peer` is the client certificate
   * when the entry's clientAuth asked for one and it verified.
   */
  readonly onConnection: (socket: Socket, remote: string, peer: PeerCertificate | undefined) => { end(): Promise<void> }
}

/** At most one log line a second about failed handshakes per listener. */
const handshakeLogEveryMs = 1000

/**
 * A TCP door: connection limit, idle timeout, and a clean stop that stops accepting, lets each
 * connection store what it already read, then closes it.
 */
export class TcpListener implements IngestListener {
  readonly counters: ListenerCounters
  readonly #server: Server
  /** The ::1 socket of a loopback listener (see listenIpv6Loopback). */
  #ipv6: Server | undefined
  readonly #open = new Map<Socket, { end(): Promise<void> }>()
  readonly #perAddress = new Map<string, number>()
  /** Accepted TCP sockets, TLS handshakes under way included, so a stop can let go of them all. */
  readonly #accepted = new Set<Socket>()
  #unregisterTls: (() => void) | undefined
  #handshakeLog = { at: 0, suppressed: 0 }

  constructor(readonly options: TcpListenerOptions) {
    this.counters = options.counters ?? newCounters()
    const tls = options.tls
    if (tls === undefined) {
      this.#server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
        if (this.#admit(socket)) this.#serve(socket, undefined)
      })
    } else {
      const server = createTlsServer({ ...loadTlsOptions(tls), noDelay: true, handshakeTimeout: options.tlsHandshakeTimeoutMs ?? 10_000 })
      // The caps apply at accept, before a handshake is paid for: Node's own listener (which
      // wraps the socket in TLS) runs only for sockets let in.
      const wrap = server.listeners('connection') as Array<(socket: Socket) => void>
      server.removeAllListeners('connection')
      server.on('connection', (socket: Socket) => {
        if (this.#admit(socket)) for (const l of wrap) l.call(server, socket)
      })
      server.on('secureConnection', (socket: TLSSocket) => {
        const refused = peerRefusal(socket, tls.config)
        if (refused !== undefined) {
          this.#handshakeFailed(refused, socket.remoteAddress)
          socket.destroy()
          return
        }
        this.#serve(socket, peerCertificate(socket))
      })
      server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
        this.#handshakeFailed(err.code ?? err.message, socket.remoteAddress)
        // With a listener here, Node leaves the socket open (a handshake timeout included).
        socket.destroy()
      })
      this.#unregisterTls = tls.reloader?.add(tls, server)
      this.#server = server
    }
    this.#server.maxConnections = options.maxConnections
    this.#server.on('drop', () => {
      this.counters.connectionsRefused++
      hitLimit(`${options.name}.maxConnections`)
    })
  }

  /** The caps, on the TCP socket as accepted; false: refused and destroyed. */
  #admit(socket: Socket): boolean {
    const c = this.counters
    const address = socket.remoteAddress ?? '?'
    const perAddressMax = this.options.maxConnectionsPerAddress
    const refuse = (limit: string): false => {
      c.connectionsRefused++
      hitLimit(limit)
      socket.on('error', () => undefined)
      socket.destroy()
      return false
    }
    // Before any cap counts it, and before a TLS handshake is paid for.
    if (this.options.allow !== undefined && !this.options.allow(socket.remoteAddress)) {
      c.connectionsRefused++
      socket.on('error', () => undefined)
      socket.destroy()
      return false
    }
    if (perAddressMax !== undefined && (this.#perAddress.get(address) ?? 0) >= perAddressMax) return refuse(`${this.options.name}.maxConnectionsPerAddress`)
    const budget = this.options.budget
    if (budget !== undefined && !budget.take()) return refuse('limits.maxConnections')
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1)
    c.connections++
    c.connectionsTotal++
    this.#accepted.add(socket)
    socket.on('error', () => undefined) // a reset peer is routine; 'close' follows
    socket.once('close', () => {
      c.connections--
      budget?.give()
      const n = (this.#perAddress.get(address) ?? 1) - 1
      if (n === 0) this.#perAddress.delete(address)
      else this.#perAddress.set(address, n)
      this.#accepted.delete(socket)
    })
    return true
  }

  #handshakeFailed(reason: string, address: string | undefined): void {
    this.counters.tlsHandshakeFailures++
    // Scanners and old clients can fail handshakes by the thousand: one line a second says so.
    const now = Date.now()
    const log = this.#handshakeLog
    if (now - log.at < handshakeLogEveryMs) {
      log.suppressed++
      return
    }
    const suppressed = log.suppressed
    this.#handshakeLog = { at: now, suppressed: 0 }
    this.options.logger.warn({ listener: this.options.name, remote: address, reason, ...(suppressed > 0 ? { alsoSinceLastLine: suppressed } : {}) }, 'TLS handshake failed')
  }

  /** A connection let in and, for TLS, secured: the door's handler takes it. */
  #serve(socket: Socket, peer: PeerCertificate | undefined): void {
    const c = this.counters
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`
    socket.setTimeout(this.options.idleTimeoutMs, () => {
      // A socket we paused (backpressure, an alarm, a rate limit) is quiet because of us, not the
      // sender: closing it would lose what the sender still has. Activity re-arms the timer.
      if (socket.isPaused()) return
      c.idleClosed++
      hitLimit(`${this.options.name}.idleTimeout`)
      socket.destroy()
    })
    socket.on('error', () => undefined)
    const handler = this.options.onConnection(socket, remote, peer)
    this.#open.set(socket, handler)
    socket.once('close', () => this.#open.delete(socket))
  }

  get tls(): boolean {
    return this.options.tls !== undefined
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen({ host: primaryHost(this.options.host), port: this.options.port }, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    const a = this.#server.address()
    const address = typeof a === 'object' && a !== null ? `${a.address}:${a.port}` : String(a)
    this.#ipv6 = await listenIpv6Loopback(this.#server, { host: this.options.host, port: this.port, name: this.options.name, logger: this.options.logger })
    this.options.logger.info({ listener: this.options.name, address, ...(this.#ipv6 !== undefined ? { alsoOn: `[::1]:${this.port}` } : {}), ...(this.tls ? { tls: true } : {}) }, 'listener up')
    return address
  }

  get port(): number {
    const a = this.#server.address()
    return typeof a === 'object' && a !== null ? a.port : 0
  }

  async close(): Promise<void> {
    this.#unregisterTls?.()
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    const ipv6 = this.#ipv6
    const ipv6Closed = ipv6 === undefined ? Promise.resolve() : new Promise<void>((resolve) => ipv6.close(() => resolve()))
    await Promise.all(
      [...this.#open].map(async ([socket, h]) => {
        socket.pause()
        await h.end()
        socket.end()
      }),
    )
    for (const socket of this.#open.keys()) socket.destroy()
    // What is left never got to a door: TLS handshakes still under way.
    for (const socket of this.#accepted) socket.destroy()
    await Promise.all([closed, ipv6Closed])
  }
}

/** What a stream door's listener entry says about its TCP side (NDJSON, syslog, GELF, Forward). */
export interface StreamDoorEntry extends ListenerConfig {
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  readonly idleTimeoutMs: number
}

/**
 * The TCP options every stream door sets the same way from its entry: caps, idle timeout, TLS
 * (a silent client is as silent during its handshake, so the idle timeout bounds that too) and
 * the allow list, checked at accept.
 */
export function streamDoorOptions(name: string, entry: StreamDoorEntry, logger: Logger, budget: ConnectionBudget | undefined, shared: DoorShared, access: DoorAccess | undefined): Omit<TcpListenerOptions, 'onConnection'> {
  return {
    name,
    host: entry.host,
    port: entry.port,
    maxConnections: entry.maxConnections,
    maxConnectionsPerAddress: entry.maxConnectionsPerAddress,
    budget,
    idleTimeoutMs: entry.idleTimeoutMs,
    logger,
    tls: tlsSetupFor(name, entry, shared.tlsReloader),
    counters: shared.counters,
    tlsHandshakeTimeoutMs: entry.idleTimeoutMs,
    allow: access === undefined ? undefined : (address) => access.admit(address),
  }
}
