import type { Server, Socket } from 'node:net'
import { Server as TlsServer, type TLSSocket } from 'node:tls'
import type { TlsConfig } from '../../config/index.js'
import { errors, type SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'
import { peerRefusal } from '../tcp/tls.js'

/** A held place: given back once, whichever of answer, abort, error or close comes first. */
export interface Ticket {
  release(): void
}

/** Clients reach us over IPv4 and IPv6 sockets; `::ffff:10.0.0.1` is the same client as `10.0.0.1`. */
export function clientAddress(socket: { readonly remoteAddress?: string | undefined }): string {
  const a = socket.remoteAddress ?? ''
  return a.startsWith('::ffff:') ? a.slice(7) : a
}

function take(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

function give(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1
  if (n > 0) map.set(key, n)
  else map.delete(key)
}

/**
 * Requests being served, in total and per client address. Past either limit a request is refused
 * at once rather than queued. A place is held until the request's response closes (answered, or
 * its connection gone), never until the route's handler returns, since a handler can outlive its
 * client (a long poll whose client left) and a client can outlive the handler.
 */
export class RequestSlots {
  #inFlight = 0
  readonly #byAddress = new Map<string, number>()

  constructor(
    readonly limit: number,
    readonly limitPerAddress: number,
  ) {}

  get inFlight(): number {
    return this.#inFlight
  }

  get full(): boolean {
    return this.#inFlight >= this.limit
  }

  /** A ticket, or the error to answer with. */
  acquire(address: string): Ticket | SluiceError {
    if (this.#inFlight >= this.limit) return errors.overloaded(this.#inFlight, this.limit)
    if ((this.#byAddress.get(address) ?? 0) >= this.limitPerAddress) return errors.addressOverloaded(address, this.limitPerAddress)
    this.#inFlight++
    take(this.#byAddress, address)
    let held = true
    return {
      release: () => {
        if (!held) return
        held = false
        this.#inFlight--
        give(this.#byAddress, address)
      },
    }
  }
}

export interface ConnectionCounters {
  connections: number
  connectionsTotal: number
  connectionsRefused: number
  tlsHandshakeFailures: number
}

/** A TCP connection by its peer, which its TLS socket shares: the one link Node makes public. */
const peerKey = (socket: Socket): string => `${socket.remoteAddress ?? ''}|${socket.remotePort ?? 0}`

/** Refused connections still being answered; past this many, more are closed without a word. */
const refusalsAnsweredMax = 1024
/** How long a refused connection may take to read its answer. */
const refusalLingerMs = 1000

/**
 * Caps open connections in total, per client address and in the budget shared with the other
 * doors (server.limits.maxConnections). A connection past a cap never reaches Node's HTTP parser:
 * it is answered at once with 503 too_many_connections and closed a moment later. Closing it
 * without a word would be cheaper, but Node's fetch then waits for an answer until its own
 * timeout. A connection that sends nothing within `firstRequestMs` is closed too: Node's header
 * deadline starts only with a request's first byte, so a silent connection would otherwise hold
 * its place (and a stop) forever.
 *
 * Over TLS (an HTTPS server) the caps apply at accept too, before a handshake is paid for, but a
 * refused connection is closed without an answer: plain text would mean nothing to a TLS client,
 * which sees the reset at once. The silence deadline starts once the handshake is done (Node's
 * handshake timeout, set to the same value, bounds the handshake).
 */
export class ConnectionGuard {
  readonly #open = new Set<Socket>()
  readonly #used = new WeakSet<Socket>()
  readonly #byAddress = new Map<string, number>()
  /** TLS only: accepted TCP sockets whose handshake is under way, by peer. */
  readonly #handshaking = new Map<string, Socket>()
  /** This server's own open connections (the counters may be shared with other HTTP entries). */
  #count = 0
  #answering = 0

  constructor(
    server: Server,
    readonly opts: {
      readonly limit: number
      readonly limitPerAddress: number
      readonly firstRequestMs: number
      readonly budget?: { take(): boolean; give(): void } | undefined
      /** Set for an HTTPS server: what its clients' certificates are checked against. */
      readonly tls?: TlsConfig | undefined
      /** A listener's `allow` list: false closes the connection at accept, before any byte is read. */
      readonly admit?: ((socket: Socket) => boolean) | undefined
    },
    readonly counters: ConnectionCounters,
  ) {
    const secure = server instanceof TlsServer
    // Node's own listener (the HTTP parser, or the TLS handshake first) runs only for connections let in.
    const inner = server.listeners('connection') as Array<(socket: Socket) => void>
    server.removeAllListeners('connection')
    server.on('connection', (socket: Socket) => {
      const address = clientAddress(socket)
      if (opts.admit !== undefined && !opts.admit(socket)) {
        counters.connectionsRefused++
        socket.on('error', () => undefined)
        socket.destroy()
        return
      }
      let refused: SluiceError | undefined
      if (this.#count >= opts.limit) refused = errors.tooManyConnections('http.maxConnections', opts.limit)
      else if ((this.#byAddress.get(address) ?? 0) >= opts.limitPerAddress) refused = errors.tooManyConnections('http.maxConnectionsPerAddress', opts.limitPerAddress)
      else if (opts.budget !== undefined && !opts.budget.take()) refused = errors.tooManyConnections('limits.maxConnections', undefined)
      if (refused !== undefined) {
        counters.connectionsRefused++
        if (secure) {
          socket.on('error', () => undefined)
          socket.destroy()
        } else this.#refuse(socket, refused)
        return
      }
      this.#count++
      counters.connections++
      counters.connectionsTotal++
      take(this.#byAddress, address)
      socket.once('close', () => {
        this.#count--
        counters.connections--
        opts.budget?.give()
        give(this.#byAddress, address)
      })
      if (secure) {
        const key = peerKey(socket)
        this.#handshaking.set(key, socket)
        socket.once('close', () => {
          if (this.#handshaking.get(key) === socket) this.#handshaking.delete(key)
        })
      } else this.#watch(socket)
      for (const l of inner) l.call(server, socket)
    })
    if (secure) {
      server.on('secureConnection', (socket: TLSSocket) => {
        this.#handshaking.delete(peerKey(socket))
        const refusal = opts.tls === undefined ? undefined : peerRefusal(socket, opts.tls)
        if (refusal !== undefined) {
          counters.tlsHandshakeFailures++
          socket.destroy()
          return
        }
        this.#watch(socket)
      })
      server.on('tlsClientError', (_err: Error, socket: TLSSocket) => {
        counters.tlsHandshakeFailures++
        // With a listener here, Node leaves the socket open (a handshake timeout included).
        socket.destroy()
      })
    }
  }

  /** A connection the HTTP parser reads: it must carry a request within firstRequestMs. */
  #watch(socket: Socket): void {
    this.#open.add(socket)
    const opts = this.opts
    // Over TLS the socket's bytes are the requests' own (the handshake was on the TCP socket).
    const silent = setTimeout(() => {
      // A request under way is Node's to time out (with a 408); this is for silence.
      if (this.#used.has(socket) || socket.bytesRead > 0) return
      hitLimit('http.headersTimeout')
      socket.destroy()
    }, opts.firstRequestMs)
    silent.unref()
    socket.once('close', () => {
      clearTimeout(silent)
      this.#open.delete(socket)
    })
  }

  #refuse(socket: Socket, e: SluiceError): void {
    socket.on('error', () => undefined)
    if (this.#answering >= refusalsAnsweredMax) {
      socket.destroy()
      return
    }
    this.#answering++
    const body = JSON.stringify(e.toJSON())
    socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`)
    // Whatever the client sends meanwhile is read and dropped, so that it reads the answer
    // rather than a reset.
    socket.resume()
    const timer = setTimeout(() => socket.destroy(), refusalLingerMs)
    timer.unref()
    socket.once('close', () => {
      clearTimeout(timer)
      this.#answering--
    })
  }

  /** A request arrived on this connection. */
  used(socket: Socket): void {
    this.#used.add(socket)
  }

  /** On stop: connections that never carried a request have nothing to finish. */
  closeUnused(): void {
    for (const socket of this.#open) if (!this.#used.has(socket)) socket.destroy()
    for (const socket of this.#handshaking.values()) socket.destroy()
  }
}
