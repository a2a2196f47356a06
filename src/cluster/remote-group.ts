// AMQP consumers on any node (docs/cluster.md): a group is served where its stream lives, and a
// channel on another node consumes it through that node's internal port. The home keeps one
// delivery stream open per remote member (subscribe) and answers settles, fetches and credit
// changes (op); the channel's node holds a RemoteGroup that speaks ConsumeHandle over them, so
// the AMQP channel cannot tell it from a group of its own.
//
//   POST /internal/v1/groups/<g>/subscribe?member=&prefetch=&priority=   frames of deliveries
//   POST /internal/v1/groups/<g>/op    {op, member, ...}                JSON, or deliveries (fetch)
//
// A frame is u32 length then encodeDeliveries' bytes; a zero-length frame every 15 s keeps an idle
// stream known alive. The stream ending releases what the member holds at the home (its node or
// its channel went), as a closed AMQP channel does on one node.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsumeHandle, ConsumerGroup, Delivery, GroupRegistry, SettleAs, TagResult } from '../consumers/index.js'
import { errors, type SluiceError } from '../errors.js'
import type { Logger } from '../logger.js'
import { callPeer, type PeerAddress } from './internal.js'
import type { PeerTransport } from './transport.js'
import { decodeDeliveries, encodeDeliveries } from './wire.js'

const heartbeatMs = 15_000
/** How long the home waits for a group declared on the consumer's node to reach it. */
const declareWaitMs = 3000

function frame(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(payload.length, 0)
  return Buffer.concat([head, payload])
}

interface OpBody {
  readonly op: 'subscribe' | 'unsubscribe' | 'prefetch' | 'return' | 'ack' | 'ackThrough' | 'nack' | 'fetch'
  readonly member?: string
  readonly prefetch?: number
  readonly priority?: number
  readonly release?: boolean
  readonly tags?: readonly string[]
  readonly to?: string
  readonly from?: string
  readonly requeue?: boolean
  readonly delayMs?: number
  readonly reason?: string
  readonly max?: number
  readonly waitMs?: number
}

/** The home's side: one open delivery stream per remote member. */
export class GroupServer {
  readonly #groups: () => GroupRegistry
  readonly #streams = new Map<string, { readonly deliver: (ds: Delivery[]) => void; readonly lost: () => void }>()

  constructor(groups: () => GroupRegistry) {
    this.#groups = groups
  }

  #group(name: string): ConsumerGroup {
    const g = this.#groups().get(name)
    if (g === undefined) throw errors.unknownGroup(name)
    return g
  }

  /**
   * The group, waiting up to `declareWaitMs` for one declared on another node a moment ago (an
   * AMQP stream queue's reader): it reaches this node through etcd's watch.
   */
  async #groupSoon(name: string): Promise<ConsumerGroup> {
    for (let waited = 0; ; waited += 20) {
      const g = this.#groups().get(name)
      if (g !== undefined || waited >= declareWaitMs) return g ?? this.#group(name)
      await sleep(20)
    }
  }

  async subscribe(name: string, url: URL, res: ServerResponse, req: IncomingMessage): Promise<void> {
    const g = await this.#groupSoon(name)
    const member = url.searchParams.get('member') ?? ''
    if (member === '') throw errors.badRequest('a remote subscribe names its member')
    const key = `${name}\0${member}`
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    res.flushHeaders()
    const deliver = (ds: Delivery[]): void => void res.write(frame(encodeDeliveries(ds)))
    const lost = (): void => void res.end()
    const entry = { deliver, lost }
    this.#streams.set(key, entry)
    // The group handed to another node (cluster move): the stream ends, and the consuming node
    // cancels its consumer, which subscribes again wherever the group lives now.
    g.subscribe(member, Number(url.searchParams.get('prefetch') ?? 0), deliver, Number(url.searchParams.get('priority') ?? 0), undefined, lost)
    const beat = setInterval(() => res.write(frame(Buffer.alloc(0))), heartbeatMs)
    const end = (): void => {
      clearInterval(beat)
      if (this.#streams.get(key) !== entry) return
      this.#streams.delete(key)
      // The consuming node or its channel is gone: what the member holds goes back at once.
      this.#groups().get(name)?.unsubscribe(member, true)
    }
    res.on('close', end)
    req.on('error', end)
  }

  async op(name: string, body: OpBody, res: ServerResponse): Promise<void> {
    const g = this.#group(name)
    const member = body.member ?? ''
    const json = (v: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(v))
    }
    switch (body.op) {
      case 'subscribe': {
        const stream = this.#streams.get(`${name}\0${member}`)
        if (stream === undefined) throw errors.badRequest(`member ${member} has no delivery stream here`)
        g.subscribe(member, body.prefetch ?? 0, stream.deliver, body.priority ?? 0, undefined, stream.lost)
        return json({})
      }
      case 'unsubscribe':
        g.unsubscribe(member, body.release === true)
        return json({})
      case 'prefetch':
        g.setPrefetch(member, body.prefetch ?? 0)
        return json({})
      case 'return':
        return json({ returned: g.returnUndelivered(body.tags ?? []) })
      case 'ack':
        return json(await g.ack(body.tags ?? []))
      case 'ackThrough':
        return json(await g.ackThrough(body.to, body.from))
      case 'nack':
        return json(await g.nack(body.tags ?? [], { requeue: body.requeue === true, delayMs: body.delayMs, reason: body.reason }))
      case 'fetch': {
        const ds = await g.fetch(member, body.max ?? 1, body.waitMs ?? 0)
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        res.end(encodeDeliveries(ds))
        return
      }
    }
  }
}

/** A group served by another node, as the AMQP channel here consumes it. */
export class RemoteGroup implements ConsumeHandle {
  readonly name: string
  readonly stream: string
  readonly #peer: PeerAddress
  readonly #auth: string
  readonly #transport: PeerTransport
  readonly #log: Logger
  /** Open delivery streams by member. */
  readonly #subs = new Map<string, { close: () => void }>()
  /** Acks and nacks on their way to the home: a release waits for them (below). */
  readonly #settling = new Set<Promise<unknown>>()

  constructor(group: { readonly name: string; readonly stream: string }, peer: PeerAddress, secret: string, transport: PeerTransport, logger: Logger) {
    this.name = group.name
    this.stream = group.stream
    this.#peer = peer
    this.#auth = `Bearer ${secret}`
    this.#transport = transport
    this.#log = logger
  }

  #path(what: 'subscribe' | 'op', query = ''): string {
    return `/internal/v1/groups/${encodeURIComponent(this.name)}/${what}${query}`
  }

  #unreachable(why: string): SluiceError {
    return errors.streamUnavailable(this.stream, `the group's home node ${this.#peer.node} could not be reached (${why})`, this.#peer.node)
  }

  /** One op; resolves with the raw answer body. */
  #op(body: OpBody): Promise<Buffer> {
    return callPeer({ peer: this.#peer, path: this.#path('op'), body: Buffer.from(JSON.stringify(body)), contentType: 'application/json', auth: this.#auth, transport: this.#transport, unreachable: (why) => this.#unreachable(why) })
  }

  /** A settlement op, tracked until answered. */
  #settle(body: OpBody): Promise<Buffer> {
    const p = this.#op(body)
    const tracked = p.catch(() => undefined).finally(() => this.#settling.delete(tracked))
    this.#settling.add(tracked)
    return p
  }

  /** Resolves once no settlement is on its way (one answered may have started another). */
  async #settled(): Promise<void> {
    while (this.#settling.size > 0) await Promise.all([...this.#settling])
  }

  /** Fire-and-forget ops of the synchronous methods: a failure is logged, and a lost home cancels the consumer. */
  #send(body: OpBody): void {
    this.#op(body).catch((err: unknown) => this.#log.warn({ err, group: this.name, op: body.op }, 'remote group operation failed'))
  }

  subscribe(consumer: string, prefetch: number, deliver: (deliveries: Delivery[]) => void, priority = 0, _user?: string, lost?: () => void): void {
    if (this.#subs.has(consumer)) {
      this.#send({ op: 'subscribe', member: consumer, prefetch, priority })
      return
    }
    let closing = false
    const q = new URLSearchParams({ member: consumer, prefetch: String(prefetch), priority: String(priority) })
    const r = this.#transport.request({ host: this.#peer.host, port: this.#peer.port, method: 'POST', path: this.#path('subscribe', `?${q.toString()}`), dedicated: true, headers: { authorization: this.#auth, 'content-length': 0 } })
    const gone = (why: string): void => {
      if (closing) return
      closing = true
      this.#subs.delete(consumer)
      this.#log.warn({ group: this.name, node: this.#peer.node, why }, 'remote group delivery stream ended; consumer cancelled')
      lost?.()
    }
    r.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        return gone(`answer ${res.statusCode ?? 0}`)
      }
      let buf: Buffer = Buffer.alloc(0)
      res.on('data', (c: Buffer) => {
        buf = buf.length === 0 ? c : Buffer.concat([buf, c])
        while (buf.length >= 4) {
          const n = buf.readUInt32BE(0)
          if (buf.length < 4 + n) break
          const payload = buf.subarray(4, 4 + n)
          buf = buf.subarray(4 + n)
          if (n === 0) continue // heartbeat
          try {
            deliver(decodeDeliveries(payload))
          } catch (err) {
            r.destroy()
            return gone(`bad frame: ${(err as Error).message}`)
          }
        }
      })
      res.on('close', () => gone('the stream closed'))
    })
    // The home writes at least a heartbeat every 15 s: three missed mean a cut, not quiet.
    r.setTimeout(heartbeatMs * 3, () => r.destroy(new Error(`nothing from the home for ${(heartbeatMs * 3) / 1000} s`)))
    r.on('error', (err) => gone(err.message))
    r.end()
    this.#subs.set(consumer, {
      close: () => {
        closing = true
        r.destroy()
      },
    })
  }

  unsubscribe(consumer: string, release: boolean): void {
    const sub = this.#subs.get(consumer)
    if (release) {
      // Closing the stream releases at the home; the op says it at once as well. Acks the client
      // sent before closing travel on other connections: they reach the home first, or what they
      // settle would be released and delivered again.
      this.#subs.delete(consumer)
      void this.#settled().then(() => {
        this.#send({ op: 'unsubscribe', member: consumer, release: true })
        sub?.close()
      })
      return
    }
    this.#send({ op: 'unsubscribe', member: consumer, release: false })
  }

  setPrefetch(consumer: string, prefetch: number): void {
    this.#send({ op: 'prefetch', member: consumer, prefetch })
  }

  /** The home counts its members against its own server.limits.maxConsumers when they subscribe. */
  admitMember(): void {}

  returnUndelivered(tags: readonly unknown[]): number {
    this.#send({ op: 'return', tags: tags.map(String) })
    return tags.length
  }

  async fetch(consumer: string, max: number, waitMs: number): Promise<Delivery[]> {
    return decodeDeliveries(await this.#op({ op: 'fetch', member: consumer, max, waitMs }))
  }

  async ack(tags: readonly unknown[], _as?: SettleAs): Promise<TagResult[]> {
    return JSON.parse((await this.#settle({ op: 'ack', tags: tags.map(String) })).toString('utf8')) as TagResult[]
  }

  async ackThrough(to: unknown, from: unknown, _as?: SettleAs): Promise<{ settled: number; failed: TagResult[] }> {
    return JSON.parse((await this.#settle({ op: 'ackThrough', to: String(to), from: String(from) })).toString('utf8')) as { settled: number; failed: TagResult[] }
  }

  async nack(tags: readonly unknown[], opts: { requeue: boolean; delayMs?: number | undefined; reason?: string | undefined }, _as?: SettleAs): Promise<TagResult[]> {
    return JSON.parse((await this.#settle({ op: 'nack', tags: tags.map(String), requeue: opts.requeue, delayMs: opts.delayMs, reason: opts.reason })).toString('utf8')) as TagResult[]
  }
}
