// How a node reaches the others' internal ports: plain HTTP/1.1, or, with
// cluster.replication.tls, mutual TLS, where each node presents its own certificate and checks
// the peer's against the cluster's CA and the host it dialled (advertise.host). Either way the
// shared secret rides on every request as well.

import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

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

export class PeerTransport {
  readonly #tls: PeerTlsMaterial | undefined
  readonly #pool: HttpAgent

  constructor(tls: PeerTlsMaterial | undefined, maxSockets = 16) {
    this.#tls = tls
    this.#pool = tls === undefined ? new HttpAgent({ keepAlive: true, maxSockets }) : new HttpsAgent({ keepAlive: true, maxSockets, ...tls })
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
