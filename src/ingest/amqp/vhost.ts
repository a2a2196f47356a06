import { randomBytes } from 'node:crypto'
import { isValidName } from '../../config/index.js'
import type { ConsumeHandle, ConsumerGroup, GroupRegistry } from '../../consumers/index.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import type { Logger } from '../../logger.js'
import { SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'
import type { JsonValue } from '../../meta/index.js'
import type { ExchangeType, Router } from '../../router/index.js'
import type { Catalog } from '../../streams/catalog.js'
import type { BrokerPublisher } from '../../streams/publisher.js'
import type { StreamRegistry } from '../../streams/registry.js'
import { type FieldTable, type FieldValue, fieldNumber, fieldString } from './field-table.js'
import { DirectReplies } from './direct-reply.js'
import { defaultExchangeName, toJson } from './message.js'
import { QueueExpiry } from './queue-expiry.js'
import { reply, replyFor } from './reply.js'

// The one virtual host, "/": AMQP's queues and exchanges mapped onto Sluice's catalog.
//
//   AMQP                          Sluice
//   exchange X                    exchange X (the catalog's, or the YAML's)
//   default exchange ""           amq.default, a direct exchange bound to every stream by name
//   queue Q (classic, quorum)     stream Q + consumer group Q on it (x-arguments → group settings)
//   queue Q (x-queue-type stream) stream Q alone; each consumer gets its own group Q.<tag>
//   a YAML group G                queue G: consumable, bindable (to G's stream), not deletable
//
// Queue state that has no place in the core (exclusive owner, consumers, auto-delete) lives here,
// in memory: it belongs to live connections, which a restart ends anyway. Exclusive and
// server-named (amq.gen-…) queues belong to the connection that declared them and go with it.

export const builtinExchanges: ReadonlyArray<{ name: string; type: ExchangeType }> = [
  { name: 'amq.direct', type: 'direct' },
  { name: 'amq.fanout', type: 'fanout' },
  { name: 'amq.topic', type: 'topic' },
  { name: 'amq.headers', type: 'headers' },
  { name: 'amq.match', type: 'headers' },
]
export { defaultExchangeName }

/** In flight per consumer when the client sets no prefetch (AMQP's "unlimited"). */
export const queuePrefetchDefault = 1000
/** RabbitMQ's consumer timeout: an unacked delivery goes back after this long. */
const queueAckTimeout = '30m'

export interface QueueAttributes {
  readonly amqp: 'queue'
  readonly type: 'classic' | 'stream'
  readonly durable: boolean
  readonly exclusive: boolean
  readonly autoDelete: boolean
  readonly arguments: Record<string, JsonValue>
}

export interface ExchangeAttributes {
  readonly amqp: 'exchange'
  readonly durable: boolean
  readonly autoDelete: boolean
  readonly internal: boolean
}

/** A queue as a client sees it. */
export type Queue =
  | { readonly kind: 'group'; readonly name: string; readonly group: ConsumerGroup; readonly stream: string; readonly attributes: QueueAttributes | undefined }
  | { readonly kind: 'stream'; readonly name: string; readonly stream: string; readonly attributes: QueueAttributes }

/** What the vhost needs of a consumer to tell it its queue went away. */
export interface ConsumerHandle {
  readonly connectionId: string
  readonly exclusive: boolean
  /** The queue was deleted: send basic.cancel when the client understands it, forget the consumer. */
  cancelledByServer(): void
  /** A single-active-consumer queue's active consumer left and this one, next in line, takes over. */
  activate(): void
}

export interface VhostDeps {
  readonly catalog: Catalog
  readonly groups: GroupRegistry
  readonly publisher: BrokerPublisher
  readonly router: Router
  readonly streams: StreamRegistry
  readonly limiter: RateLimiter
  readonly logger: Logger
  /** True while a resource alarm blocks publishers. */
  readonly blocked: () => boolean
  /**
   * Cluster mode: the group as served by the node its stream lives on, when that is another
   * (undefined: here). Throws an AMQP precondition error when that node cannot be named now.
   */
  readonly remoteGroup?: ((group: ConsumerGroup) => ConsumeHandle | { readonly refused: string } | undefined) | undefined
}

// Arguments a redeclare must repeat, as RabbitMQ checks them.
const queueArgs = [
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-overflow',
  'x-delivery-limit',
  'x-queue-type',
  'x-max-age',
  'x-expires',
  'x-single-active-consumer',
  'x-quorum-initial-group-size',
]

export interface VhostLimits {
  /** Exclusive and server-named queues one connection may hold at once. */
  readonly maxQueuesPerConnection: number
  /** basic.consume consumers one channel may hold at once. */
  readonly maxConsumersPerChannel: number
}

/**
 * The permission checks of a queue.declare, asked by the vhost once the queue's name is known (a
 * server-named queue's too, as RabbitMQ checks `amq.gen-…`). Each throws to refuse.
 */
export interface DeclareChecks {
  /** Every declare but a passive one (which, as in RabbitMQ, needs no permission). */
  readonly declare: (queue: string) => void
  /** A new queue naming a dead-letter exchange (`""` comes as amq.default). */
  readonly deadLetter: (queue: string, exchange: string) => void
}

/** Server-named queues; clients cannot declare `amq.` names, so the prefix alone marks them. */
const serverNamedPrefix = 'amq.gen-'

export class AmqpVhost {
  readonly deps: VhostDeps
  readonly #limits: VhostLimits
  readonly #consumers = new Map<string, Set<ConsumerHandle>>()
  /** Exclusive queues: only this connection may use them. */
  readonly #owners = new Map<string, string>()
  /** Exclusive and server-named queues: the connection whose life they follow. */
  readonly #tiedTo = new Map<string, string>()
  readonly #ownedBy = new Map<string, Set<string>>()
  #lock: Promise<unknown> = Promise.resolve()
  readonly #expiry: QueueExpiry
  /** Reply consumers of direct reply-to, across every connection. */
  readonly directReplies = new DirectReplies()

  constructor(deps: VhostDeps, limits: VhostLimits) {
    this.deps = deps
    this.#limits = limits
    this.#expiry = new QueueExpiry((queue) => {
      void this.serial(async () => {
        if (this.queue(queue) === undefined || (this.#consumers.get(queue)?.size ?? 0) > 0) return
        await this.#delete(queue)
      }).catch((err: unknown) => this.deps.logger.warn({ queue, err }, 'could not delete an expired queue (x-expires)'))
    })
  }

  /** Stops the x-expires clocks; the server is stopping. */
  close(): void {
    this.#expiry.close()
  }

  #track(name: string, attrs: QueueAttributes | undefined): void {
    const ms = attrs?.arguments['x-expires']
    if (typeof ms === 'number') this.#expiry.track(name, ms)
  }

  get limits(): VhostLimits {
    return this.#limits
  }

  /** Exclusive and server-named queues left by connections of an earlier run go now, as their owners did. */
  async start(): Promise<void> {
    for (const s of this.deps.streams.all()) {
      const attrs = this.#queueAttributes(s.name)
      this.#track(s.name, attrs)
      if (attrs === undefined || (!attrs.exclusive && !s.name.startsWith(serverNamedPrefix))) continue
      await this.#delete(s.name).catch((err: unknown) => this.deps.logger.warn({ queue: s.name, err }, 'could not delete a connection-owned queue of an earlier run'))
    }
  }

  /** Serialises definition changes, so two declares of one name cannot interleave. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn)
    this.#lock = run.catch(() => undefined)
    return run
  }

  #queueAttributes(stream: string): QueueAttributes | undefined {
    const a = this.deps.catalog.stream(stream)?.attributes
    return typeof a === 'object' && a !== null && !Array.isArray(a) && (a as Record<string, unknown>).amqp === 'queue' ? (a as unknown as QueueAttributes) : undefined
  }

  queue(name: string): Queue | undefined {
    const group = this.deps.groups.get(name)
    if (group !== undefined) return { kind: 'group', name, group, stream: group.stream, attributes: this.#queueAttributes(group.stream === name ? name : '') }
    const attrs = this.#queueAttributes(name)
    if (attrs?.type === 'stream') return { kind: 'stream', name, stream: name, attributes: attrs }
    return undefined
  }

  /** The queue, or 404; 405 when another connection holds it exclusively. */
  use(name: string, connectionId: string): Queue {
    const q = this.queue(name)
    if (q === undefined) throw reply.noQueue(name)
    const owner = this.#owners.get(name)
    if (owner !== undefined && owner !== connectionId) throw reply.locked(name)
    return q
  }

  /** A declare or basic.get: the queue's x-expires clock starts again (RabbitMQ's lease renewal). */
  renew(name: string): void {
    this.#expiry.touch(name, (this.#consumers.get(name)?.size ?? 0) > 0)
  }

  counts(q: Queue): { messageCount: number; consumerCount: number } {
    const consumerCount = this.#consumers.get(q.name)?.size ?? 0
    // Parked events (rejected or expired with no dead-letter exchange) are not deliverable: RabbitMQ would have dropped them.
    // Appends under way count, as RabbitMQ counts a message once it is routed, before it is on
    // disk: a client that publishes and then polls the count from another connection sees it.
    if (q.kind === 'group') return { messageCount: Math.max(0, q.group.backlogWithPending - q.group.inFlightCount - q.group.parkedCount), consumerCount }
    const log = this.deps.streams.get(q.stream)?.log
    return { messageCount: log === undefined ? 0 : log.nextOffset - log.startOffset, consumerCount }
  }

  // ---- queues ------------------------------------------------------------------------------------

  declareQueue(
    connectionId: string,
    m: { queue: string; passive: boolean; durable: boolean; exclusive: boolean; autoDelete: boolean; arguments: FieldTable },
    checks: DeclareChecks,
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    return this.serial(async () => {
      const name = m.queue === '' ? `amq.gen-${randomBytes(16).toString('base64url')}` : m.queue
      const existing = this.queue(name)
      if (m.passive) {
        const q = this.use(name, connectionId)
        return { queue: name, ...this.counts(q) }
      }
      checks.declare(name)
      if (existing !== undefined) {
        const q = this.use(name, connectionId)
        if (q.attributes !== undefined) checkQueueEquivalent(name, q.attributes, m)
        this.renew(name)
        return { queue: name, ...this.counts(q) }
      }
      if (m.queue.startsWith('amq.')) throw reply.reservedName('queue', name)
      const tied = m.exclusive || m.queue === ''
      const held = this.#ownedBy.get(connectionId)?.size ?? 0
      if (tied && held >= this.#limits.maxQueuesPerConnection) {
        hitLimit('amqp.maxQueuesPerConnection')
        const what = m.queue === '' ? 'a server-named queue' : `exclusive queue '${name}'`
        throw reply.precondition(`cannot declare ${what} in vhost '/': queue limit per connection (${this.#limits.maxQueuesPerConnection}) is reached (server.amqp.maxQueuesPerConnection)`)
      }
      if (!isValidName(name)) throw reply.precondition(`queue name '${name}' is not valid in Sluice: letters, digits, '.', '_', '-' and '@', at most 200 characters`)
      if (this.deps.streams.get(name) !== undefined) throw reply.precondition(`a stream named '${name}' exists without a consumer group of that name; Sluice cannot make it a queue`)
      const spec = queueSpec(name, m.arguments)
      if (spec.deadLetterExchange !== undefined) checks.deadLetter(name, spec.deadLetterExchange)
      const attributes: QueueAttributes = { amqp: 'queue', type: spec.type, durable: m.durable, exclusive: m.exclusive, autoDelete: m.autoDelete, arguments: spec.args }
      if (spec.deadLetterExchange !== undefined && this.deps.catalog.exchange(spec.deadLetterExchange) === undefined) throw reply.noExchange(spec.deadLetterExchange)
      try {
        // Cluster mode: a queue that goes with its connection or its last consumer, or that is not
        // durable, keeps one copy; durable classic, quorum and stream queues have the cluster's
        // factor (or their x-quorum-initial-group-size).
        const transient = m.exclusive || m.autoDelete || !m.durable
        await this.deps.catalog.declareStream({ name, attributes: attributes as unknown as JsonValue, retention: spec.retention, replicas: transient ? 1 : spec.replicas })
        if (spec.group !== undefined) {
          try {
            await this.deps.groups.declare(name, spec.group)
          } catch (err) {
            await this.deps.catalog.deleteStream(name)
            throw err
          }
        }
      } catch (err) {
        throw replyFor(err, { queue: name })
      }
      if (m.exclusive) this.#owners.set(name, connectionId)
      if (tied) this.#tie(name, connectionId)
      this.#track(name, attributes)
      const q = this.queue(name)!
      return { queue: name, ...this.counts(q) }
    })
  }

  #tie(queue: string, connectionId: string): void {
    this.#tiedTo.set(queue, connectionId)
    let set = this.#ownedBy.get(connectionId)
    if (set === undefined) this.#ownedBy.set(connectionId, (set = new Set()))
    set.add(queue)
  }

  deleteQueue(connectionId: string, name: string, opts: { ifUnused: boolean; ifEmpty: boolean }): Promise<number> {
    return this.serial(async () => {
      const q = this.queue(name)
      if (q === undefined) return 0 // RabbitMQ answers delete-ok for a queue that is not there
      this.use(name, connectionId)
      if (q.attributes === undefined || q.stream !== name) throw reply.protectedDefinition('queue', name)
      const { messageCount, consumerCount } = this.counts(q)
      if (opts.ifUnused && consumerCount > 0) throw reply.inUse('queue', name)
      if (opts.ifEmpty && messageCount > 0) throw reply.notEmpty(name)
      await this.#delete(name)
      return messageCount
    })
  }

  async #delete(name: string): Promise<void> {
    const consumers = this.#consumers.get(name)
    this.#consumers.delete(name)
    for (const c of consumers ?? []) c.cancelledByServer()
    this.#owners.delete(name)
    this.#expiry.forget(name)
    const sources = new Set(this.deps.catalog.bindingsTo(name).map((b) => b.exchange))
    const tiedTo = this.#tiedTo.get(name)
    if (tiedTo !== undefined) {
      this.#tiedTo.delete(name)
      this.#ownedBy.get(tiedTo)?.delete(name)
    }
    // A stream queue's per-consumer groups go with it.
    for (const g of this.deps.groups.all()) if (g.stream === name) await this.deps.groups.delete(g.name)
    await this.deps.catalog.deleteStream(name)
    await this.autoDeleteExchanges(sources)
  }

  /**
   * Auto-delete exchanges among `names` that have no binding from them left go, as RabbitMQ
   * deletes one when its last binding is removed (one never bound stays). Call inside `serial`,
   * after the unbinding.
   */
  async autoDeleteExchanges(names: Iterable<string>): Promise<void> {
    const { catalog } = this.deps
    for (const name of names) {
      const attrs = catalog.exchange(name)?.attributes as unknown as ExchangeAttributes | undefined
      if (attrs?.amqp !== 'exchange' || !attrs.autoDelete || catalog.bindingsFrom(name).length > 0) continue
      await catalog.deleteExchange(name)
    }
  }

  purge(connectionId: string, name: string): Promise<number> {
    const q = this.use(name, connectionId)
    if (q.kind !== 'group') throw reply.precondition(`queue '${name}' in vhost '/' is a stream queue; purge is not supported on it`)
    return q.group.purge()
  }

  // ---- consumers ---------------------------------------------------------------------------------

  /**
   * Registers a consumer; false when it must wait its turn: on a queue with
   * x-single-active-consumer only the first consumer gets messages, and `activate` tells the next
   * one when it leaves.
   */
  addConsumer(queue: string, c: ConsumerHandle): boolean {
    const set = this.#consumers.get(queue)
    if (c.exclusive && set !== undefined && set.size > 0) throw reply.exclusiveUse(queue)
    if (set !== undefined) for (const other of set) if (other.exclusive) throw reply.exclusiveUse(queue)
    if (set === undefined) this.#consumers.set(queue, new Set([c]))
    else set.add(c)
    this.#expiry.touch(queue, true)
    return set === undefined || set.size === 1 || !this.#singleActive(queue)
  }

  #singleActive(queue: string): boolean {
    return this.#queueAttributes(queue)?.arguments['x-single-active-consumer'] === true
  }

  /** The consumer is gone (cancel, channel or connection closed); an auto-delete queue goes with its last. */
  removeConsumer(queue: string, c: ConsumerHandle): void {
    const set = this.#consumers.get(queue)
    if (set === undefined) return
    // A Set keeps insertion order: the first is the single active consumer.
    const wasActive = set.values().next().value === c
    if (!set.delete(c)) return
    if (set.size > 0) {
      if (wasActive && this.#singleActive(queue)) set.values().next().value?.activate()
      return
    }
    this.#consumers.delete(queue)
    this.#expiry.touch(queue, false)
    const attrs = this.#queueAttributes(queue)
    if (attrs?.autoDelete === true) {
      void this.serial(async () => {
        if ((this.#consumers.get(queue)?.size ?? 0) > 0 || this.queue(queue) === undefined) return
        await this.#delete(queue)
      }).catch((err: unknown) => this.deps.logger.warn({ queue, err }, 'could not delete an auto-delete queue'))
    }
  }

  /** A connection closed: its exclusive and server-named queues go. */
  async connectionClosed(connectionId: string): Promise<void> {
    const owned = this.#ownedBy.get(connectionId)
    this.#ownedBy.delete(connectionId)
    for (const q of owned ?? []) {
      await this.serial(async () => {
        if (this.#tiedTo.get(q) === connectionId) await this.#delete(q)
      }).catch((err: unknown) => this.deps.logger.warn({ queue: q, err }, 'could not delete a queue of a closed connection'))
    }
  }

  /** A per-consumer group on a stream queue, reading from `x-stream-offset`. */
  async streamConsumerGroup(q: Queue, tag: string, offset: FieldValue | undefined): Promise<ConsumerGroup> {
    const name = `${q.name}.${tag}`
    if (!isValidName(name)) throw reply.precondition(`consumer tag '${tag}' cannot name a Sluice group on stream queue '${q.name}'`)
    const def = { stream: q.stream, prefetch: queuePrefetchDefault, ackTimeout: queueAckTimeout, maxDeliveries: 0, sessionTimeout: '1h', start: streamStart(offset) }
    try {
      const existing = this.deps.groups.get(name)
      if (existing !== undefined) await this.deps.groups.delete(name)
      return (await this.deps.groups.declare(name, def)).group
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'SLUICE_ERR_TOO_MANY_GROUPS') {
        throw reply.precondition(`cannot consume from stream queue '${q.name}' in vhost '/': each consumer needs a group of its own and the group limit (${String(err.details?.limitGroups)}) is reached (server.limits.maxGroups)`)
      }
      throw replyFor(err, { queue: q.name })
    }
  }

  async dropStreamConsumerGroup(name: string): Promise<void> {
    await this.deps.groups.delete(name).catch((err: unknown) => this.deps.logger.warn({ group: name, err }, 'could not delete a stream consumer group'))
  }
}

function streamStart(offset: FieldValue | undefined): string | number {
  if (offset === undefined) return 'latest'
  const s = fieldString(offset)
  if (s === 'first') return 'earliest'
  if (s === 'next') return 'latest'
  // Resolved where the group opens: in a cluster, at the stream's home, whose copy holds it.
  if (s === 'last') return 'last'
  if (s !== undefined) {
    const t = Date.parse(s)
    if (!Number.isNaN(t)) return new Date(t).toISOString()
    throw reply.precondition(`invalid x-stream-offset '${s}': first, last, next, an offset or a timestamp`)
  }
  if (offset !== null && typeof offset === 'object' && 'type' in offset && offset.type === 'T') return new Date(Number(offset.value) * 1000).toISOString()
  const n = fieldNumber(offset)
  if (n === undefined || !Number.isInteger(n) || n < 0) throw reply.precondition('invalid x-stream-offset: first, last, next, an offset or a timestamp')
  return n
}

interface QueueSpec {
  readonly type: 'classic' | 'stream'
  readonly args: Record<string, JsonValue>
  readonly group: Record<string, unknown> | undefined
  readonly retention: { maxAgeMs?: number | null; maxBytes?: number | null; policy?: 'limits' | 'interest' } | undefined
  readonly deadLetterExchange: string | undefined
  /** Cluster mode: x-quorum-initial-group-size, the copies a quorum queue asks for. */
  readonly replicas: number | undefined
}

/** The most copies a stream may have (streams.<name>.replicas); a larger group size asks for these. */
const maxReplicas = 7

/** queue.declare arguments → the group definition (YAML shape) and stream settings. */
function queueSpec(name: string, a: FieldTable): QueueSpec {
  const args: Record<string, JsonValue> = {}
  for (const k of queueArgs) if (a[k] !== undefined) args[k] = toJson(a[k]) as JsonValue
  const num = (k: string, min: number): number | undefined => {
    const v = a[k]
    if (v === undefined) return undefined
    const n = fieldNumber(v)
    if (n === undefined || !Number.isInteger(n)) throw reply.invalidArg(k, 'queue', name, `expected an integer, got ${JSON.stringify(toJson(v))}`)
    if (n < min) throw reply.invalidArg(k, 'queue', name, `must be at least ${min}, got ${n}`)
    return n
  }
  const str = (k: string): string | undefined => {
    const v = a[k]
    if (v === undefined) return undefined
    const s = fieldString(v)
    if (s === undefined) throw reply.invalidArg(k, 'queue', name, 'expected a string')
    return s
  }
  // A positive number of milliseconds, as RabbitMQ checks it (QueueExpiry acts on it).
  num('x-expires', 1)
  const qt = str('x-queue-type') ?? 'classic'
  if (qt !== 'classic' && qt !== 'quorum' && qt !== 'stream') throw reply.invalidArg('x-queue-type', 'queue', name, `unknown queue type '${qt}'; classic, quorum or stream`)
  // As RabbitMQ does, a group larger than can be had gets what can be had; a classic queue ignores it.
  const groupSize = num('x-quorum-initial-group-size', 1)
  const replicas = qt === 'classic' || groupSize === undefined ? undefined : Math.min(groupSize, maxReplicas)
  if (qt === 'stream') {
    const maxBytes = num('x-max-length-bytes', 1024)
    const maxAge = str('x-max-age')
    return {
      type: 'stream',
      args,
      group: undefined,
      retention: { maxBytes: maxBytes ?? null, maxAgeMs: maxAge === undefined ? null : parseMaxAge(name, maxAge), policy: 'limits' },
      deadLetterExchange: undefined,
      replicas,
    }
  }
  const group: Record<string, unknown> = { stream: name, prefetch: queuePrefetchDefault, ackTimeout: queueAckTimeout, maxDeliveries: 0, sessionTimeout: '1h' }
  const ttl = num('x-message-ttl', 0)
  if (ttl !== undefined) group.messageTtl = `${Math.max(1, ttl)}ms`
  const maxLength = num('x-max-length', 1)
  if (maxLength !== undefined) group.maxBacklog = maxLength
  const maxBytes = num('x-max-length-bytes', 1)
  if (maxBytes !== undefined) group.maxBacklogBytes = maxBytes
  const overflow = str('x-overflow')
  if (overflow !== undefined) {
    if (overflow === 'drop-head') group.overflow = 'dead-letter'
    else if (overflow === 'reject-publish' || overflow === 'reject-publish-dlx') group.overflow = 'reject-publish'
    else throw reply.invalidArg('x-overflow', 'queue', name, `unknown overflow '${overflow}'; drop-head, reject-publish or reject-publish-dlx`)
  }
  const limit = num('x-delivery-limit', 0)
  // RabbitMQ counts failed attempts after the first delivery; a group counts deliveries.
  if (limit !== undefined) group.maxDeliveries = limit + 1
  const dlx = str('x-dead-letter-exchange')
  const dlk = str('x-dead-letter-routing-key')
  let deadLetterExchange: string | undefined
  if (dlx !== undefined) {
    deadLetterExchange = dlx === '' ? defaultExchangeName : dlx
    group.deadLetter = { exchange: deadLetterExchange, ...(dlk !== undefined ? { routingKey: dlk } : {}) }
  }
  return { type: 'classic', args, group, retention: undefined, deadLetterExchange, replicas }
}

function parseMaxAge(name: string, s: string): number {
  const m = /^(\d+)(Y|M|D|h|m|s)$/.exec(s)
  if (m === null) throw reply.invalidArg('x-max-age', 'queue', name, `expected a number and a unit (Y, M, D, h, m, s), got '${s}'`)
  if (Number(m[1]) === 0) throw reply.invalidArg('x-max-age', 'queue', name, `must be more than 0, got '${s}'`)
  const unit = { Y: 365 * 86400, M: 30 * 86400, D: 86400, h: 3600, m: 60, s: 1 }[m[2] as 'Y' | 'M' | 'D' | 'h' | 'm' | 's']
  return Number(m[1]) * unit * 1000
}

const show = (v: JsonValue | undefined): string => (v === undefined ? 'none' : `'${typeof v === 'string' ? v : JSON.stringify(v)}'`)

function checkQueueEquivalent(name: string, cur: QueueAttributes, m: { durable: boolean; exclusive: boolean; autoDelete: boolean; arguments: FieldTable }): void {
  if (cur.durable !== m.durable) throw reply.inequivalent('durable', 'queue', name, `'${m.durable}'`, `'${cur.durable}'`)
  if (cur.exclusive !== m.exclusive) throw reply.locked(name)
  if (cur.autoDelete !== m.autoDelete) throw reply.inequivalent('auto_delete', 'queue', name, `'${m.autoDelete}'`, `'${cur.autoDelete}'`)
  for (const k of queueArgs) {
    const got = m.arguments[k] === undefined ? undefined : (toJson(m.arguments[k]) as JsonValue)
    const had = cur.arguments[k]
    // Declaring a classic queue with x-queue-type: classic again is the same queue.
    if (k === 'x-queue-type' && (got ?? 'classic') === (had ?? 'classic')) continue
    if (JSON.stringify(got) !== JSON.stringify(had)) throw reply.inequivalent(k, 'queue', name, show(got), show(had))
  }
}
