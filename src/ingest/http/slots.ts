import type { Server, Socket } from 'node:net'
import { errors, type SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'

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
}

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
 */
export class ConnectionGuard {
  readonly #open = new Set<Socket>()
  readonly #used = new WeakSet<Socket>()
  readonly #byAddress = new Map<string, number>()
  #answering = 0

  constructor(
    server: Server,
    readonly opts: { readonly limit: number; readonly limitPerAddress: number; readonly firstRequestMs: number; readonly budget?: { take(): boolean; give(): void } | undefined },
    readonly counters: ConnectionCounters,
  ) {
    // Node's own listener (the HTTP parser) runs only for connections let in.
    const inner = server.listeners('connection') as Array<(socket: Socket) => void>
    server.removeAllListeners('connection')
    server.on('connection', (socket: Socket) => {
      const address = clientAddress(socket)
      let refused: SluiceError | undefined
      if (counters.connections >= opts.limit) refused = errors.tooManyConnections('http.maxConnections', opts.limit)
      else if ((this.#byAddress.get(address) ?? 0) >= opts.limitPerAddress) refused = errors.tooManyConnections('http.maxConnectionsPerAddress', opts.limitPerAddress)
      else if (opts.budget !== undefined && !opts.budget.take()) refused = errors.tooManyConnections('limits.maxConnections', undefined)
      if (refused !== undefined) {
        counters.connectionsRefused++
        this.#refuse(socket, refused)
        return
      }
      counters.connections++
      counters.connectionsTotal++
      take(this.#byAddress, address)
      this.#open.add(socket)
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
        counters.connections--
        opts.budget?.give()
        give(this.#byAddress, address)
      })
      for (const l of inner) l.call(server, socket)
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
  }
}
