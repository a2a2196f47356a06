// How a node reaches the others' internal ports: plain HTTP/1.1, or, with
// cluster.replication.tls, mutual TLS, where each node presents its own certificate and checks
// the peer's against the cluster's CA and the host it dialled (advertise.host). Either way the
// shared secret rides on every request as well.

import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { SecureContextOptions } from 'node:tls'

export interface PeerTlsFiles {
  readonly cert: string
  readonly key: string
  readonly ca: string
}

export interface PeerTlsMaterial {
  readonly cert: Buffer
  readonly key: Buffer
  readonly ca: Buffer
}

/** Reads the PEM files named by cluster.replication.tls; a missing one fails the start, naming its key. */
export function readPeerTls(files: PeerTlsFiles | null): PeerTlsMaterial | undefined {
  if (files === null) return undefined
  const read = (key: keyof PeerTlsFiles): Buffer => {
    try {
      return readFileSync(files[key])
    } catch (err) {
      throw new Error(`cluster.replication.tls.${key}: cannot read ${files[key]} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
  }
  return { cert: read('cert'), key: read('key'), ca: read('ca') }
}

/** What a connection to a peer presents and trusts: as read at start, or as a SIGHUP reload gave it. */
type PeerTls = Pick<SecureContextOptions, 'cert' | 'key' | 'ca'>

export class PeerTransport {
  #tls: PeerTls | undefined
  #pool: HttpAgent
  readonly #maxSockets: number

  constructor(tls: PeerTlsMaterial | undefined, maxSockets = 16) {
    this.#tls = tls
    this.#maxSockets = maxSockets
    this.#pool = tls === undefined ? new HttpAgent({ keepAlive: true, maxSockets }) : new HttpsAgent({ keepAlive: true, maxSockets, ...tls })
  }

  /**
   * New connections present the reloaded certificate and trust the reloaded CA. Requests under
   * way finish on the connections they have (a peer checked those at their handshake), which then
   * close; the idle ones close now, so the next request opens a connection with the new certificate.
   */
  setSecureContext(options: SecureContextOptions): void {
    if (this.#tls === undefined) return
    const old = this.#pool
    this.#tls = { cert: options.cert, key: options.key, ca: options.ca }
    this.#pool = new HttpsAgent({ keepAlive: true, maxSockets: this.#maxSockets, ...this.#tls })
    for (const sockets of Object.values(old.freeSockets)) for (const socket of sockets ?? []) socket.destroy()
    // Those under way close once answered, rather than idle in a pool nothing asks any more.
    old.on('free', (socket: Socket) => socket.destroy())
  }

  /**
   * A request to a peer over the pooled keep-alive connections, or with `dedicated` over a
   * connection of its own (a delivery stream that stays open).
   */
  request(opts: RequestOptions & { readonly dedicated?: boolean }, onResponse?: (res: IncomingMessage) => void): ClientRequest {
    const { dedicated, ...rest } = opts
    if (this.#tls === undefined) return httpRequest({ ...rest, agent: dedicated === true ? false : this.#pool }, onResponse)
    return httpsRequest({ ...rest, ...(dedicated === true ? { agent: false, ...this.#tls } : { agent: this.#pool }) }, onResponse)
  }

  destroy(): void {
    this.#pool.destroy()
  }
}
