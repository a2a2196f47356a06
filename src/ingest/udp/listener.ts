import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Logger } from '../../logger.js'
import type { DoorAccess } from '../door-access.js'
import { newCounters, type IngestListener, type ListenerCounters } from '../tcp/server.js'

export interface UdpListenerOptions {
  /** The listener as metrics and logs name it: syslog-udp, gelf-udp. */
  readonly name: string
  readonly host: string
  readonly port: number
  /** SO_RCVBUF asked for. */
  readonly receiveBufferBytes: number
  readonly logger: Logger
  /** The allow list and user; unset (a door built alone in a test): every sender. */
  readonly access?: DoorAccess | undefined
  /** Shared with the UDP sockets of the door's other entries (a listener key holding a list). */
  readonly counters?: ListenerCounters | undefined
  /** A datagram from an allowed sender (its bytes already counted). */
  readonly onMessage: (msg: Buffer, rinfo: RemoteInfo) => void
  /** Waits for what the door still has in flight, once the socket is closed. */
  readonly onClose?: (() => Promise<void>) | undefined
}

/**
 * The socket half of a UDP door: binds, drops datagrams from outside the allow list before any
 * work is spent on them, counts bytes, and closes before the door finishes what it holds.
 */
export class UdpListener implements IngestListener {
  readonly options: { readonly name: string }
  readonly counters: ListenerCounters
  readonly #socket: Socket

  constructor(private readonly opts: UdpListenerOptions) {
    this.options = { name: opts.name }
    this.counters = opts.counters ?? newCounters()
    // A large receive buffer absorbs bursts while the event loop is busy; the kernel caps it at
    // net.core.rmem_max. What still overflows is lost, as UDP always allows.
    this.#socket = createSocket({ type: isIPv6(opts.host) ? 'udp6' : 'udp4', reuseAddr: false, recvBufferSize: opts.receiveBufferBytes })
    const access = opts.access
    this.#socket.on('message', (msg, rinfo) => {
      // Counted in sluice_auth_failures_total{door} by the access check.
      if (access !== undefined && (!access.admit(rinfo.address) || access.identity(rinfo.address) === undefined)) return
      this.counters.bytes += msg.length
      opts.onMessage(msg, rinfo)
    })
  }

  get port(): number {
    return this.#socket.address().port
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject)
      this.#socket.bind(this.opts.port, this.opts.host, () => {
        this.#socket.off('error', reject)
        resolve()
      })
    })
    this.opts.logger.info({ listener: this.opts.name, address: `${this.opts.host}:${this.port}` }, 'listener up')
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()))
    await this.opts.onClose?.()
  }
}
