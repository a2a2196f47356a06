// The internal port (cluster.replication): how one node stores records in a stream whose home is
// another. Plain HTTP/1.1 with keep-alive between nodes, every request carrying the cluster's
// shared secret; the body is the records as wire.ts encodes them, the answer the home node's
// publish result as JSON. An error keeps its catalogue code, status and retryability across the
// hop, so a client of any node sees the home node's refusal (a full backlog, an alarm) as if it
// had published there.

import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer, Server as HttpsServer } from 'node:https'
import type { SecureContextOptions } from 'node:tls'
import { errors, SluiceError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ForwardRequest } from '../streams/placement.js'
import type { PublishResult, PublishSourceName } from '../streams/publisher.js'
import type { GroupServer } from './remote-group.js'
import { decodeRecords, encodeRecords, WireError } from './wire.js'
import type { MoveRoute } from './move.js'
import { PeerTransport, type PeerTlsMaterial } from './transport.js'

const publishPath = /^\/internal\/v1\/streams\/([^/?]+)\/publish$/
const groupPath = /^\/internal\/v1\/groups\/([^/?]+)\/(subscribe|op)$/
const movePath = /^\/internal\/v1\/(?:(move)|streams\/([^/?]+)\/(handoff|receive|end))$/
const replicatePath = /^\/internal\/v1\/(?:(isr)|streams\/([^/?]+)\/(replicate|epoch-end))$/
/** Records in one forwarded append at most: a request's events, each at most once per stream. */
const maxForwardedRecords = 1_000_000
const sources: ReadonlySet<string> = new Set<PublishSourceName>(['http', 'ndjson', 'syslog', 'gelf', 'forward', 'amqp', 'otlp', 'loki', 'elasticsearch', 'internal', 'cluster'])

const digest = (secret: string): Buffer => createHash('sha256').update(secret).digest()

interface WireError503 {
  readonly error: { readonly code: string; readonly message: string; readonly details?: Record<string, unknown> }
  /** The catalogue code and retryability, which the wire code alone does not carry. */
  readonly sluice?: { readonly code: string; readonly retryable: boolean }
}

export interface InternalServerOptions {
  readonly host: string
  readonly port: number
  readonly secret: string
  readonly maxBodyBytes: number
  readonly timeoutMs: number
  readonly logger: Logger
  /** Stores forwarded records through the publish path (BrokerPublisher.publishForwarded). */
  readonly store: (req: ForwardRequest) => Promise<PublishResult>
  /** Serves this node's groups to consumers on other nodes (remote-group.ts). */
  readonly groups?: GroupServer | undefined
  /** Moves of streams between nodes (move.ts). */
  readonly moves?: { handle(route: MoveRoute, stream: string, query: URLSearchParams, body: Buffer): Promise<unknown> } | undefined
  /** Replicated streams (replication.ts): followers' fetches, and in-sync changes at the controller. */
  readonly replication?: { fetch(stream: string, query: URLSearchParams): Promise<Buffer>; epochEnd(stream: string, query: URLSearchParams): Promise<object>; changeInSync(body: Record<string, unknown>): Promise<object> } | undefined
  /** Mutual TLS (cluster.replication.tls): a peer without a certificate chaining to its CA is refused in the handshake. */
  readonly tls?: PeerTlsMaterial | undefined
}

export interface InternalCounters {
  requests: number
  /** Refused before reading: no or a wrong secret. */
  unauthorized: number
}

export class InternalServer {
  readonly counters: InternalCounters = { requests: 0, unauthorized: 0 }
  readonly #opts: InternalServerOptions
  readonly #secret: Buffer
  readonly #server: Server
  #port = 0

  constructor(opts: InternalServerOptions) {
    this.#opts = opts
    this.#secret = digest(opts.secret)
    const options = { requestTimeout: opts.timeoutMs + 5000, headersTimeout: 10_000, keepAliveTimeout: 60_000 }
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      // Nothing a peer sends may end the process: a handler's failure closes that request only.
      this.#handle(req, res).catch((err: unknown) => {
        opts.logger.error({ err }, 'internal port: request failed')
        res.destroy()
      })
    }
    this.#server =
      opts.tls === undefined
        ? createServer(options, handler)
        : createTlsServer({ ...options, ...opts.tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', handshakeTimeout: 10_000 }, handler)
  }

  get port(): number {
    return this.#port
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    const a = this.#server.address()
    this.#port = typeof a === 'object' && a !== null ? a.port : this.#opts.port
  }

  /** A SIGHUP's reloaded certificate and CA, for handshakes from now on (TLS only). */
  setSecureContext(options: SecureContextOptions): void {
    if (this.#server instanceof HttpsServer) this.#server.setSecureContext(options)
  }

  close(): Promise<void> {
    this.#server.closeIdleConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }

  #authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization
    if (h === undefined || !h.startsWith('Bearer ')) return false
    return timingSafeEqual(digest(h.slice(7)), this.#secret)
  }

  async #group(encoded: string, what: 'subscribe' | 'op', url: URL, req: IncomingMessage, res: ServerResponse, fail: (err: SluiceError) => void): Promise<void> {
    const groups = this.#opts.groups!
    try {
      const name = decodeURIComponent(encoded)
      if (what === 'subscribe') {
        req.resume()
        await groups.subscribe(name, url, res, req)
        return
      }
      const body = await readBody(req, this.#opts.maxBodyBytes)
      await groups.op(name, JSON.parse(body.toString('utf8')) as Parameters<GroupServer['op']>[1], res)
    } catch (err) {
      if (res.headersSent) {
        res.destroy()
        return
      }
      fail(err instanceof SluiceError ? err : errors.badRequest(`group request refused: ${(err as Error).message}`))
    }
  }

  async #replicate(m: RegExpExecArray, url: URL, req: IncomingMessage, res: ServerResponse, fail: (err: SluiceError) => void): Promise<void> {
    const r = this.#opts.replication!
    try {
      const body = await readBody(req, this.#opts.maxBodyBytes).catch((err: unknown) => {
        throw errors.forwardTooLarge((err as Error).message)
      })
      if (m[1] === 'isr') {
        let b: unknown
        try {
          b = JSON.parse(body.toString('utf8'))
        } catch {
          b = undefined
        }
        if (typeof b !== 'object' || b === null) return fail(errors.badRequest('the body is not a JSON object'))
        const answer = await r.changeInSync(b as Record<string, unknown>)
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(answer))
        return
      }
      let stream: string
      try {
        stream = decodeURIComponent(m[2]!)
      } catch {
        return fail(errors.badRequest('the stream name in the path is not valid percent-encoding'))
      }
      if (m[3] === 'epoch-end') {
        const answer = await r.epochEnd(stream, url.searchParams)
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(answer))
        return
      }
      const answer = await r.fetch(stream, url.searchParams)
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end(answer)
    } catch (err) {
      if (err instanceof SluiceError) return fail(err)
      this.#opts.logger.error({ err, path: url.pathname }, 'internal error in replication')
      fail(errors.internal(err))
    }
  }

  async #move(m: RegExpExecArray, url: URL, req: IncomingMessage, res: ServerResponse, fail: (err: SluiceError) => void): Promise<void> {
    try {
      const route = (m[1] ?? m[3]) as MoveRoute
      let stream = ''
      try {
        if (m[2] !== undefined) stream = decodeURIComponent(m[2])
      } catch {
        return fail(errors.badRequest('the stream name in the path is not valid percent-encoding'))
      }
      const body = await readBody(req, this.#opts.maxBodyBytes).catch((err: unknown) => {
        throw errors.forwardTooLarge((err as Error).message)
      })
      const answer = await this.#opts.moves!.handle(route, stream, url.searchParams, body)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(answer))
    } catch (err) {
      if (err instanceof SluiceError) return fail(err)
      this.#opts.logger.error({ err, path: url.pathname }, 'internal error in a stream move')
      fail(errors.internal(err))
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.requests++
    const fail = (err: SluiceError): void => {
      const body: WireError503 = { ...err.toJSON(), sluice: { code: err.code, retryable: err.retryable } }
      res.writeHead(err.status, { 'content-type': 'application/json', connection: err.status === 401 || err.status === 413 ? 'close' : 'keep-alive' })
      res.end(JSON.stringify(body))
    }
    if (!this.#authorized(req)) {
      this.counters.unauthorized++
      req.resume()
      return fail(errors.unauthenticated('the internal port needs the cluster secret (cluster.secret)'))
    }
    const url = new URL(req.url ?? '/', 'http://internal')
    const gm = groupPath.exec(url.pathname)
    if (req.method === 'POST' && gm !== null && this.#opts.groups !== undefined) return this.#group(gm[1]!, gm[2] as 'subscribe' | 'op', url, req, res, fail)
    const rp = replicatePath.exec(url.pathname)
    if (req.method === 'POST' && rp !== null && this.#opts.replication !== undefined) return this.#replicate(rp, url, req, res, fail)
    const mv = movePath.exec(url.pathname)
    if (req.method === 'POST' && mv !== null && this.#opts.moves !== undefined) return this.#move(mv, url, req, res, fail)
    const m = publishPath.exec(url.pathname)
    if (req.method !== 'POST' || m === null) {
      req.resume()
      return fail(errors.notFound(req.method ?? '', url.pathname))
    }
    let stream: string
    try {
      stream = decodeURIComponent(m[1]!)
    } catch {
      req.resume()
      return fail(errors.badRequest('the stream name in the path is not valid percent-encoding'))
    }
    const exchange = url.searchParams.get('exchange') ?? ''
    const source = url.searchParams.get('source') ?? 'internal'
    if (exchange === '' || !sources.has(source)) {
      req.resume()
      return fail(errors.badRequest('a forwarded publish names its exchange and a known source'))
    }
    const body = await readBody(req, this.#opts.maxBodyBytes).catch((err: unknown) => err as Error)
    if (body instanceof Error) {
      return fail(errors.forwardTooLarge(body.message))
    }
    let records
    try {
      records = decodeRecords(body, exchange, maxForwardedRecords)
    } catch (err) {
      if (err instanceof WireError) return fail(errors.badRequest(`forwarded records are malformed: ${err.message}`))
      throw err
    }
    try {
      const result = await this.#opts.store({ stream, exchange, records, internal: url.searchParams.get('internal') === '1', source: source as PublishSourceName })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ accepted: result.accepted, duplicates: result.duplicates, unroutable: result.unroutable, duplicateAt: result.duplicateAt ?? [] }))
    } catch (err) {
      if (err instanceof SluiceError) return fail(err)
      this.#opts.logger.error({ err, stream }, 'internal error storing a forwarded append')
      fail(errors.internal(err))
    }
  }
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > max) {
      req.resume()
      reject(new Error(`forwarded batch of ${declared} bytes is over cluster.replication.maxBodySize (${max} bytes)`))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > max) {
        req.destroy()
        reject(new Error(`forwarded batch is over cluster.replication.maxBodySize (${max} bytes)`))
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks, size)))
    req.on('error', reject)
  })
}

export interface PeerAddress {
  readonly node: string
  readonly host: string
  readonly port: number
}

/** One request to a peer's internal port. */
export interface PeerCall {
  readonly peer: PeerAddress
  readonly path: string
  readonly body: Buffer
  readonly contentType: string
  /** `Bearer <cluster.secret>`. */
  readonly auth: string
  readonly transport: PeerTransport
  /** No answer within this is a failure (undefined: none). */
  readonly timeoutMs?: number | undefined
  /** The error for a peer that could not be reached, or answered nothing Sluice would. */
  readonly unreachable: (why: string) => SluiceError
}

/**
 * One request to a peer's internal port, for every client of it (forwarded appends, remote
 * groups). Resolves with a 200 answer's body; rejects with the peer's own refusal as it made it
 * (a full backlog stays a 429, an alarm a 503), or with `unreachable`.
 */
export function callPeer(c: PeerCall): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const r = c.transport.request(
      { host: c.peer.host, port: c.peer.port, method: 'POST', path: c.path, headers: { authorization: c.auth, 'content-type': c.contentType, 'content-length': c.body.length }, timeout: c.timeoutMs },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (b: Buffer) => chunks.push(b))
        res.on('error', (err) => reject(c.unreachable(err.message)))
        res.on('end', () => {
          const out = Buffer.concat(chunks)
          if (res.statusCode === 200) return resolve(out)
          let e: Partial<WireError503> | undefined
          try {
            e = JSON.parse(out.toString('utf8')) as Partial<WireError503>
          } catch {
            e = undefined
          }
          if (e?.sluice !== undefined && e.error !== undefined) reject(new SluiceError(e.sluice.code, e.error.message, res.statusCode ?? 500, e.sluice.retryable, e.error.details))
          else reject(c.unreachable(`answer ${res.statusCode ?? 0}`))
        })
      },
    )
    if (c.timeoutMs !== undefined) r.on('timeout', () => r.destroy(new Error(`no answer within ${c.timeoutMs} ms`)))
    r.on('error', (err) => reject(c.unreachable(err.message)))
    r.end(c.body)
  })
}

/** Forwards appends to other nodes' internal ports, one keep-alive agent for all of them. */
export class PeerClient {
  readonly #transport: PeerTransport
  readonly #auth: string
  readonly #timeoutMs: number

  constructor(secret: string, timeoutMs: number, tls: PeerTlsMaterial | undefined) {
    this.#transport = new PeerTransport(tls)
    this.#auth = `Bearer ${secret}`
    this.#timeoutMs = timeoutMs
  }

  setSecureContext(options: SecureContextOptions): void {
    this.#transport.setSecureContext(options)
  }

  async forward(peer: PeerAddress, req: ForwardRequest): Promise<PublishResult> {
    const q = new URLSearchParams({ exchange: req.exchange, source: req.source, ...(req.internal ? { internal: '1' } : {}) })
    const unreachable = (why: string): SluiceError => errors.streamUnavailable(req.stream, `forwarding to its home node ${peer.node} failed (${why})`, peer.node)
    // A forward not confirmed within cluster.replication.forwardTimeout may still be stored there:
    // the error says to retry with the same ids, which the home node deduplicates.
    const answer = await callPeer({
      peer,
      path: `/internal/v1/streams/${encodeURIComponent(req.stream)}/publish?${q.toString()}`,
      body: encodeRecords(req.records),
      contentType: 'application/octet-stream',
      auth: this.#auth,
      transport: this.#transport,
      timeoutMs: this.#timeoutMs,
      unreachable,
    })
    try {
      return JSON.parse(answer.toString('utf8')) as PublishResult
    } catch {
      throw unreachable('answer 200 is not JSON')
    }
  }

  close(): void {
    this.#transport.destroy()
  }
}
