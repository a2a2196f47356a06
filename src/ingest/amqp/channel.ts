import { randomBytes } from 'node:crypto'
import type { Operation, Resource, ResourcesOf } from '../../auth/index.js'
import type { ConsumeHandle, ConsumerGroup, Delivery } from '../../consumers/index.js'
import { SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'
import type { PublishEvent, PublishResult } from '../../streams/publisher.js'
import type { Command, ContentCommand } from './commands.js'
import { type BasicProperties, DeliverWriter, encodeContent, encodeDeliver } from './content.js'
import { isDirectReply, replyToQueue } from './direct-reply.js'
import { ReplyCode } from './constants.js'
import { type FieldTable, type FieldValue, fieldNumber, fieldString } from './field-table.js'
import { bindingHeaders, defaultExchangeName, DeliveryPropertiesCache, deliveryProperties, toPublishEvent, wireExchange } from './message.js'
import type { MethodInit, MethodOf } from './methods.js'
import { AmqpReplyError, reply, replyFor } from './reply.js'
import type { AmqpVhost, ConsumerHandle, ExchangeAttributes, Queue } from './vhost.js'

// One AMQP channel: its commands run in arrival order, one at a time, so a publish that follows a
// queue.declare on the wire is routed after the queue exists, as in RabbitMQ. Publishes are
// batched: the consecutive publishes waiting on the channel (those of one socket chunk, or that
// arrived while a declare was running) go to the publisher as one call per run of the same
// exchange. Routing happens inside that call, before it returns, so later commands cannot
// overtake it; the durability wait is not awaited here, only its confirms are ordered.

/** What a channel needs of its connection. */
export interface ChannelHost {
  readonly id: string
  readonly remote: string
  /** Who the connection logged in as (the rate limits' `user`). */
  readonly identity: { readonly username: string } | undefined
  readonly frameMax: number
  readonly vhost: AmqpVhost
  readonly capabilities: { readonly consumerCancelNotify: boolean; readonly basicNack: boolean }
  write(buf: Buffer): void
  sendMethod(channel: number, method: MethodInit): void
  /** Socket backpressure for deliveries with no ack to bound them (no-ack consumers). */
  readonly writableNeedDrain: boolean
  onDrain(fn: () => void): void
  /** Publish bytes taken in and not yet settled; the connection pauses its socket above a bound. */
  publishing(bytes: number): void
  /** Stops reading the socket until `until` settles (alarm, rate limit). */
  hold(until: Promise<unknown>): void
  /** Resolves when no resource alarm blocks publishers (at once when none does). */
  unblocked(): Promise<void>
  hardError(err: AmqpReplyError): void
  /**
   * Asks the one authorizer whether the logged-in user may do the operation; throws 403
   * ACCESS_REFUSED (which closes the channel) when not, after counting and logging the refusal.
   */
  authorize<O extends Operation>(operation: O, resources: ResourcesOf<O>): void
  channelClosed(number: number): void
  countMessage(bytes: number): void
}

// What a check names. An AMQP queue is a stream and a group of the same name (the table's reading),
// so a queue is checked as the stream or the group the operation touches, by the queue's name.
const exchangeRes = (name: string): Resource => ({ kind: 'exchange', name: name === '' ? defaultExchangeName : name })
const streamRes = (name: string): Resource => ({ kind: 'stream', name })
const groupRes = (name: string): Resource => ({ kind: 'group', name })

interface Consumer extends ConsumerHandle {
  readonly tag: string
  readonly queue: Queue
  readonly group: ConsumeHandle
  readonly member: string
  readonly noAck: boolean
  /** The group was made for this consumer (stream queue) and goes with it. */
  readonly ownGroup: boolean
  /** basic.qos prefetch-count when it was made (0: none). */
  prefetch: number
  /** x-priority. */
  readonly priority: number
  /** Waiting its turn on a single-active-consumer queue. */
  standby: boolean
  cancelled: boolean
}

/** A delivery held back by the channel's global prefetch (basic.qos global): sent once acks free room. */
interface Held {
  readonly c: Consumer
  readonly d: Delivery
}

interface Unacked {
  readonly group: ConsumeHandle
  readonly tag: string
  /** The group member it was delivered to (none for basic.get): a multiple ack settles by member. */
  readonly member?: string | undefined
}

/** What one multiple ack names of one member: its deliveries from `first` through `last`. */
interface AckRun {
  readonly group: ConsumeHandle
  readonly first: string
  last: string
  readonly tags: string[]
}

interface Outcome {
  readonly seq: number
  readonly ok: boolean
}

interface TxSettle {
  readonly kind: 'ack' | 'nack'
  readonly deliveryTag: number
  readonly multiple: boolean
  readonly requeue: boolean
}

// open: commands run as they come. draining: the client closed the channel, its connection, or its
// socket; what it sent runs to the end, but nothing more is delivered to it. closing: we sent
// channel.close and wait for close-ok; nothing runs. closed: gone.
type State = 'open' | 'draining' | 'closing' | 'closed'

export class AmqpChannel {
  readonly number: number
  readonly #host: ChannelHost
  #state: State = 'open'
  readonly #inbox: Command[] = []
  #running = false
  /** The current run of the inbox; settles when the inbox is empty or the channel stops. */
  #idle: Promise<void> = Promise.resolve()
  #finished: Promise<void> | undefined
  /** The client's channel.close was read: nothing after it on this channel is taken. */
  #inputClosed = false
  #confirm = false
  #tx = false
  /** Ends admission waits (alarm, rate limit) once the channel is gone. */
  readonly #stopWaiting = new AbortController()
  #txPublishes: ContentCommand[] = []
  #txSettles: TxSettle[] = []
  #publishSeq = 0
  #confirmTail: Promise<void> = Promise.resolve()
  #confirmedUpTo = 0
  #deliveryTag = 0
  readonly #properties = new DeliveryPropertiesCache()
  readonly #unacked = new Map<number, Unacked>()
  /** Acks gathered in this turn of the event loop, settled together (see #coalesceAck). */
  readonly #acks = new Map<ConsumeHandle, string[]>()
  #ackRuns: AckRun[] = []
  #acksScheduled = false
  readonly #consumers = new Map<string, Consumer>()
  /** Members this channel used (consumers, basic.get), released when it closes. */
  readonly #members = new Map<string, ConsumeHandle>()
  #prefetch = 0
  /** basic.qos global: unacked deliveries across the channel at most (0: no limit). */
  #globalPrefetch = 0
  readonly #held: Held[] = []
  /** channel.flow: false while the client asked us to stop delivering. */
  #flowActive = true
  /** The reply consumer of direct reply-to on this channel, and the address requests carry. */
  #replyTo: { readonly tag: string; readonly address: string } | undefined
  #lastQueue = ''
  /** While this channel deletes a queue: its consumers' server cancels, sent after delete-ok. */
  #heldCancels: string[] | undefined

  constructor(number: number, host: ChannelHost) {
    this.number = number
    this.#host = host
  }

  get open(): boolean {
    return this.#state === 'open'
  }

  /** Commands still run: open, or draining what came before the client's close. */
  get #live(): boolean {
    return this.#state === 'open' || this.#state === 'draining'
  }

  /** Queues a command; call `kick` once the socket chunk is parsed. */
  receive(cmd: Command): void {
    if (!this.#live || this.#inputClosed) return
    this.#inbox.push(cmd)
  }

  kick(): void {
    if (!this.#running && this.#inbox.length > 0 && this.#live) this.#idle = this.#run()
  }

  async #run(): Promise<void> {
    this.#running = true
    try {
      while (this.#inbox.length > 0 && this.#live) {
        const head = this.#inbox[0]!
        if (head.method.name === 'basic.publish') {
          let n = 1
          while (n < this.#inbox.length && this.#inbox[n]!.method.name === 'basic.publish') n++
          const batch = this.#inbox.splice(0, n) as ContentCommand[]
          await this.#publishBatch(batch)
          continue
        }
        this.#inbox.shift()
        try {
          await this.#handle(head)
        } catch (err) {
          throw replyFor(err).at(head.method.classId, head.method.methodId)
        }
      }
    } catch (err) {
      this.#fail(replyFor(err))
    } finally {
      this.#running = false
    }
  }

  #send(method: MethodInit): void {
    if (this.#live) this.#host.sendMethod(this.number, method)
  }

  /** A channel exception: soft ones close this channel, hard ones the connection. */
  #fail(err: AmqpReplyError): void {
    if (!this.#live) return
    if (err.hard) {
      this.#host.hardError(err)
      return
    }
    if (this.#state === 'draining') {
      // The client's close crossed the failure: as RabbitMQ, nothing after the failing command
      // runs, and the close is answered with close-ok.
      this.#inbox.length = 0
      return
    }
    this.#host.sendMethod(this.number, { name: 'channel.close', replyCode: err.replyCode, replyText: err.replyText, failingClassId: err.classId, failingMethodId: err.methodId })
    this.#state = 'closing'
    this.teardown()
  }

  /**
   * The client closed the channel, its connection, or its socket. RabbitMQ runs a channel's frames
   * in order, so everything received before the close is routed and stored before close-ok goes
   * out; the same here: the commands already read run to the end and their publishes are stored
   * (whether or not anyone is left to be told), then the channel lets go of what it holds.
   */
  finish(): Promise<void> {
    this.#inputClosed = true
    this.#finished ??= this.settled().then(() => this.teardown())
    return this.#finished
  }

  /**
   * Stops deliveries (the client is closing) and resolves once every command taken in so far has
   * run and its confirms are out. The connection may still hand it commands meanwhile (amqplib
   * writes a channel's last publishes after its connection.close).
   */
  async settled(): Promise<void> {
    if (this.#state === 'open') this.#state = 'draining'
    while (this.#live && (this.#running || this.#inbox.length > 0)) {
      this.kick()
      await this.#idle.catch(() => undefined)
    }
    await this.#confirmTail
  }

  /** True while we wait for the client's close-ok to our channel.close. */
  get closing(): boolean {
    return this.#state === 'closing'
  }

  /** The client's channel.close-ok after ours. */
  closeOk(): void {
    this.#state = 'closed'
  }

  /** Releases everything the channel holds: consumers go, unacked deliveries return to their groups. */
  teardown(): void {
    // Acks still gathered are settled first (group.ack takes them out of flight synchronously),
    // or releasing the members below would hand them out again.
    void this.flushAcks()
    if (this.#live) this.#state = 'closed'
    this.#stopWaiting.abort()
    this.#inbox.length = 0
    this.#txPublishes = []
    this.#txSettles = []
    const vhost = this.#host.vhost
    for (const c of this.#consumers.values()) {
      c.cancelled = true
      vhost.removeConsumer(c.queue.name, c)
      if (c.ownGroup) {
        c.group.unsubscribe(c.member, true)
        void vhost.dropStreamConsumerGroup(c.group.name)
      }
    }
    this.#consumers.clear()
    this.#held.length = 0
    this.#dropReplyConsumer()
    for (const [member, group] of this.#members) group.unsubscribe(member, true)
    this.#members.clear()
    this.#unacked.clear()
  }

  // ---- dispatch ----------------------------------------------------------------------------------

  async #handle(cmd: Command): Promise<void> {
    const m = cmd.method
    switch (m.name) {
      case 'channel.flow':
        this.#flow(m.active)
        this.#send({ name: 'channel.flow-ok', active: m.active })
        return
      case 'channel.flow-ok':
        return
      case 'access.request':
        this.#send({ name: 'access.request-ok', ticket: 1 })
        return
      case 'exchange.declare':
        return this.#exchangeDeclare(m)
      case 'exchange.delete':
        return this.#exchangeDelete(m)
      case 'exchange.bind':
      case 'exchange.unbind':
        return this.#exchangeBind(m)
      case 'queue.declare':
        // Its message count, as the purge, delete and get below, sees this channel's earlier
        // publishes, as RabbitMQ runs a channel's commands in order; publishes wait only for
        // admission, so their writes may still be under way.
        await this.#confirmTail
        return this.#queueDeclare(m)
      case 'queue.bind':
      case 'queue.unbind':
        return this.#queueBind(m)
      case 'queue.purge': {
        await this.#confirmTail
        const name = this.#queueName(m.queue)
        this.#host.authorize('queue.purge', { queue: streamRes(name) })
        const count = await this.#host.vhost.purge(this.#host.id, name)
        if (!m.nowait) this.#send({ name: 'queue.purge-ok', messageCount: count })
        return
      }
      case 'queue.delete': {
        await this.#confirmTail
        const name = this.#queueName(m.queue)
        this.#host.authorize('queue.delete', { queue: streamRes(name) })
        // This channel's own consumers of the queue hear of it after delete-ok, as from RabbitMQ
        // (its queue notifies the channel, which is busy answering): amqplib's test closes the
        // channel on the cancel and drops a delete-ok that comes after its close.
        const cancels: string[] = []
        this.#heldCancels = cancels
        try {
          const count = await this.#host.vhost.deleteQueue(this.#host.id, name, { ifUnused: m.ifUnused, ifEmpty: m.ifEmpty })
          if (!m.nowait) this.#send({ name: 'queue.delete-ok', messageCount: count })
        } finally {
          this.#heldCancels = undefined
          for (const tag of cancels) this.#send({ name: 'basic.cancel', consumerTag: tag, nowait: true })
        }
        return
      }
      case 'basic.qos':
        return this.#qos(m)
      case 'basic.consume':
        return this.#consume(m)
      case 'basic.cancel':
        if (this.#replyTo?.tag === m.consumerTag) this.#dropReplyConsumer()
        else this.#cancel(m.consumerTag)
        if (!m.nowait) this.#send({ name: 'basic.cancel-ok', consumerTag: m.consumerTag })
        return
      case 'basic.get':
        await this.#confirmTail
        return this.#get(m)
      case 'basic.ack':
        return this.#settleOrBuffer({ kind: 'ack', deliveryTag: m.deliveryTag, multiple: m.multiple, requeue: false })
      case 'basic.nack':
        return this.#settleOrBuffer({ kind: 'nack', deliveryTag: m.deliveryTag, multiple: m.multiple, requeue: m.requeue })
      case 'basic.reject':
        return this.#settleOrBuffer({ kind: 'nack', deliveryTag: m.deliveryTag, multiple: false, requeue: m.requeue })
      case 'basic.recover':
      case 'basic.recover-async':
        // Both requeue: what the channel holds goes back to its queue, to any consumer.
        await this.#settle({ kind: 'nack', deliveryTag: 0, multiple: true, requeue: true })
        if (m.name === 'basic.recover') this.#send({ name: 'basic.recover-ok' })
        return
      case 'confirm.select':
        if (this.#tx) throw reply.precondition('cannot switch from tx to confirm mode')
        this.#confirm = true
        if (!m.nowait) this.#send({ name: 'confirm.select-ok' })
        return
      case 'tx.select':
        if (this.#confirm) throw reply.precondition('cannot switch from confirm to tx mode')
        this.#tx = true
        this.#send({ name: 'tx.select-ok' })
        return
      case 'tx.commit':
        return this.#commit()
      case 'tx.rollback':
        if (!this.#tx) throw reply.precondition('channel is not transactional')
        this.#txPublishes = []
        this.#txSettles = []
        this.#send({ name: 'tx.rollback-ok' })
        return
      default:
        throw reply.commandInvalid(`unexpected method ${m.name} on channel ${this.number}`)
    }
  }

  #queueName(q: string): string {
    if (q !== '') return q
    // RabbitMQ's shortcut: '' is the queue last declared on this channel, and 404 when there is none.
    if (this.#lastQueue === '') throw reply.noPreviousQueue()
    return this.#lastQueue
  }

  // ---- exchanges ---------------------------------------------------------------------------------

  async #exchangeDeclare(m: MethodOf<'exchange.declare'>): Promise<void> {
    const { catalog } = this.#host.vhost.deps
    const name = m.exchange
    if (name === '') throw reply.defaultExchange()
    const existing = catalog.exchange(name)
    if (m.passive) {
      // As RabbitMQ: a passive declare only asks whether the exchange exists, and needs no permission.
      if (existing === undefined || name === defaultExchangeName) throw reply.noExchange(name)
      if (!m.nowait) this.#send({ name: 'exchange.declare-ok' })
      return
    }
    this.#host.authorize('exchange.declare', { exchange: exchangeRes(name) })
    const type = m.type
    if (type !== 'direct' && type !== 'fanout' && type !== 'topic' && type !== 'headers') throw reply.unknownExchangeType(type)
    const altArg = m.arguments['alternate-exchange']
    const alternate = altArg === undefined ? null : (fieldString(altArg) ?? null)
    if (existing !== undefined) {
      const cur = existing.config
      const attrs = existing.attributes as unknown as ExchangeAttributes | undefined
      const curDurable = attrs?.durable ?? true
      const curAutoDelete = attrs?.autoDelete ?? false
      const curInternal = attrs?.internal ?? false
      if (cur.type !== type) throw reply.inequivalent('type', 'exchange', name, `'${type}'`, `'${cur.type}'`)
      if (curDurable !== m.durable) throw reply.inequivalent('durable', 'exchange', name, `'${m.durable}'`, `'${curDurable}'`)
      if (curAutoDelete !== m.autoDelete) throw reply.inequivalent('auto_delete', 'exchange', name, `'${m.autoDelete}'`, `'${curAutoDelete}'`)
      if (curInternal !== m.internal) throw reply.inequivalent('internal', 'exchange', name, `'${m.internal}'`, `'${curInternal}'`)
      if (cur.alternate !== alternate) throw reply.inequivalent('alternate-exchange', 'exchange', name, alternate === null ? 'none' : `'${alternate}'`, cur.alternate === null ? 'none' : `'${cur.alternate}'`)
    } else {
      if (name.startsWith('amq.')) throw reply.reservedName('exchange', name)
      // An alternate exchange takes what this one cannot route: as RabbitMQ, read on this exchange
      // and write on the alternate, which is the table's `bind` from one to the other.
      if (alternate !== null) this.#host.authorize('bind', { source: exchangeRes(name), destination: exchangeRes(alternate) })
      const attributes: ExchangeAttributes = { amqp: 'exchange', durable: m.durable, autoDelete: m.autoDelete, internal: m.internal }
      await this.#host.vhost.serial(() => catalog.declareExchange({ name, type, alternate, attributes: attributes as never }))
    }
    if (!m.nowait) this.#send({ name: 'exchange.declare-ok' })
  }

  async #exchangeDelete(m: MethodOf<'exchange.delete'>): Promise<void> {
    const name = m.exchange
    if (name === '' || name === defaultExchangeName) throw reply.defaultExchange()
    const { catalog } = this.#host.vhost.deps
    const ex = catalog.exchange(name)
    if (ex !== undefined && name.startsWith('amq.') && ex.protected) throw reply.reservedName('exchange', name)
    this.#host.authorize('exchange.delete', { exchange: exchangeRes(name) })
    await this.#host.vhost.serial(() => catalog.deleteExchange(name, { ifUnused: m.ifUnused }))
    if (!m.nowait) this.#send({ name: 'exchange.delete-ok' })
  }

  async #exchangeBind(m: MethodOf<'exchange.bind'> | MethodOf<'exchange.unbind'>): Promise<void> {
    if (m.source === '' || m.destination === '' || m.source === defaultExchangeName || m.destination === defaultExchangeName) throw reply.defaultExchange()
    // Checked before either exchange is looked up, as RabbitMQ: a refusal says nothing of what exists.
    this.#host.authorize('bind', { source: exchangeRes(m.source), destination: exchangeRes(m.destination) })
    const { catalog } = this.#host.vhost.deps
    const source = catalog.exchange(m.source)
    if (source === undefined) throw reply.noExchange(m.source)
    if (catalog.exchange(m.destination) === undefined) throw reply.noExchange(m.destination)
    const headers = source.config.type === 'headers' ? bindingHeaders(m.arguments) : undefined
    const def = { exchange: m.source, toExchange: m.destination, key: m.routingKey, ...(headers !== undefined ? { headers } : {}) }
    if (m.name === 'exchange.bind') {
      await this.#host.vhost.serial(() => catalog.bind(def))
      if (!m.nowait) this.#send({ name: 'exchange.bind-ok' })
    } else {
      const vhost = this.#host.vhost
      await vhost.serial(async () => {
        await catalog.unbind(def)
        await vhost.autoDeleteExchanges([m.source])
      })
      if (!m.nowait) this.#send({ name: 'exchange.unbind-ok' })
    }
  }

  // ---- queues ------------------------------------------------------------------------------------

  async #queueDeclare(m: MethodOf<'queue.declare'>): Promise<void> {
    const ok = await this.#host.vhost.declareQueue(this.#host.id, m, {
      declare: (queue) => this.#host.authorize('queue.declare', { queue: streamRes(queue) }),
      deadLetter: (queue, exchange) => {
        // RabbitMQ asks read on the queue too: dead-lettering takes its messages out of it, and a
        // user without read could otherwise drain it to an exchange they read (x-message-ttl: 0).
        this.#host.authorize('consume', { group: groupRes(queue) })
        this.#host.authorize('group.deadLetter', { target: exchangeRes(exchange) })
      },
    })
    this.#lastQueue = ok.queue
    if (!m.nowait) this.#send({ name: 'queue.declare-ok', ...ok })
  }

  async #queueBind(m: MethodOf<'queue.bind'> | MethodOf<'queue.unbind'>): Promise<void> {
    const vhost = this.#host.vhost
    const { catalog } = vhost.deps
    if (m.exchange === '' || m.exchange === defaultExchangeName) throw reply.defaultExchange()
    const name = this.#queueName(m.queue)
    this.#host.authorize('bind', { source: exchangeRes(m.exchange), destination: streamRes(name) })
    const q = vhost.use(name, this.#host.id)
    // A configuration file's group is a queue whose events come from its stream: a binding to it
    // writes that stream, so the stream is checked too.
    if (q.stream !== name) this.#host.authorize('bind', { source: exchangeRes(m.exchange), destination: streamRes(q.stream) })
    const source = catalog.exchange(m.exchange)
    if (source === undefined) throw reply.noExchange(m.exchange)
    const headers = source.config.type === 'headers' ? bindingHeaders(m.arguments) : undefined
    // With both the queue and the key empty, RabbitMQ binds by the last declared queue's name.
    const key = m.queue === '' && m.routingKey === '' ? name : m.routingKey
    const def = { exchange: m.exchange, stream: q.stream, key, ...(headers !== undefined ? { headers } : {}) }
    if (m.name === 'queue.bind') {
      await vhost.serial(() => catalog.bind(def))
      if (!m.nowait) this.#send({ name: 'queue.bind-ok' })
    } else {
      await vhost.serial(async () => {
        await catalog.unbind(def)
        await vhost.autoDeleteExchanges([m.exchange])
      })
      this.#send({ name: 'queue.unbind-ok' })
    }
  }

  // ---- publishing --------------------------------------------------------------------------------

  async #publishBatch(batch: ContentCommand[]): Promise<void> {
    if (this.#tx) {
      for (const cmd of batch) this.#checkPublish(cmd)
      this.#txPublishes.push(...batch)
      return
    }
    let i = 0
    while (i < batch.length && this.#live) {
      const first = batch[i]!.method as MethodOf<'basic.publish'>
      const exchange = first.exchange
      // Runs of one exchange; replies to direct reply-to addresses run apart (they are not stored).
      const direct = isDirectReply(exchange, first.routingKey)
      let j = i
      while (j < batch.length) {
        const mj = batch[j]!.method as MethodOf<'basic.publish'>
        if (mj.exchange !== exchange || isDirectReply(mj.exchange, mj.routingKey) !== direct) break
        j++
      }
      const run = batch.slice(i, j)
      i = j
      try {
        this.#checkPublish(run[0]!)
        for (const cmd of run) this.#rewriteReplyTo(cmd)
      } catch (err) {
        throw replyFor(err).at(60, 40)
      }
      if (direct) {
        this.#chainConfirms(Promise.resolve(this.#directReplies(run)))
        continue
      }
      // Only admission is waited for here; the durability wait runs on while the next commands
      // are read, and confirms are chained in publish order.
      this.#chainConfirms((await this.#publishRun(run)).confirms)
    }
  }

  /** A request asking for a direct reply carries this channel's reply address instead. */
  #rewriteReplyTo(cmd: ContentCommand): void {
    const p = cmd.header.properties
    if (p.replyTo !== replyToQueue) return
    if (this.#replyTo === undefined) throw reply.precondition('fast reply consumer does not exist')
    p.replyTo = this.#replyTo.address
  }

  /**
   * Replies to direct reply-to addresses go straight to the waiting channel, stored nowhere. A
   * reply whose caller is gone is dropped (returned when `mandatory`), as RabbitMQ does; each is
   * confirmed at once.
   */
  #directReplies(run: ContentCommand[]): { ok: boolean; outcomes: Outcome[] } {
    const outcomes: Outcome[] = []
    for (const cmd of run) {
      const m = cmd.method as MethodOf<'basic.publish'>
      this.#host.countMessage(cmd.body.length)
      const delivered = this.#host.vhost.directReplies.deliver(m.routingKey, cmd.header.properties, cmd.body)
      if (!delivered && m.mandatory) {
        this.#host.write(encodeContent(this.number, { name: 'basic.return', replyCode: ReplyCode.NO_ROUTE, replyText: 'NO_ROUTE', exchange: m.exchange, routingKey: m.routingKey }, cmd.header.properties, cmd.body, this.#host.frameMax))
      }
      if (this.#confirm) outcomes.push({ seq: ++this.#publishSeq, ok: true })
    }
    return { ok: true, outcomes }
  }

  #checkPublish(cmd: ContentCommand): void {
    const m = cmd.method as MethodOf<'basic.publish'>
    if (m.immediate) throw new AmqpReplyError(ReplyCode.NOT_IMPLEMENTED, 'immediate=true', { classId: 60, methodId: 40 })
    // Before the exchange is looked up, as RabbitMQ; "" is checked as amq.default.
    this.#host.authorize('publish', { exchange: exchangeRes(m.exchange) })
    const ex = this.#host.vhost.deps.catalog.exchange(m.exchange === '' ? defaultExchangeName : m.exchange)
    if (ex === undefined || (m.exchange !== '' && m.exchange === defaultExchangeName)) throw reply.noExchange(m.exchange).at(60, 40)
    if ((ex.attributes as unknown as ExchangeAttributes | undefined)?.internal === true) throw reply.internalExchange(m.exchange).at(60, 40)
  }

  /**
   * Hands one exchange's run of publishes to the publish path. A refusal that clears by itself (an
   * alarm, a rate limit, a full disk) holds the socket until it clears, as RabbitMQ's flow control
   * does, and is asked again; nothing is nacked for it. Over a rate limit the run is taken in part
   * ('partial', as the TCP doors): what the buckets hold goes now, the rest after the wait, so a
   * pipelined burst is held to the rate too. Resolves once the whole run is admitted, with the
   * promise of its confirms.
   */
  async #publishRun(run: ContentCommand[]): Promise<{ readonly confirms: Promise<{ ok: boolean; outcomes: Outcome[] }> }> {
    const m0 = run[0]!.method as MethodOf<'basic.publish'>
    const exchange = m0.exchange === '' ? defaultExchangeName : m0.exchange
    const events: PublishEvent[] = []
    const seqs: number[] = []
    let bytes = 0
    for (const cmd of run) {
      const m = cmd.method as MethodOf<'basic.publish'>
      seqs.push(this.#confirm ? ++this.#publishSeq : 0)
      events.push(toPublishEvent(m.routingKey, cmd.header.properties, cmd.body))
      bytes += cmd.body.length
      this.#host.countMessage(cmd.body.length)
    }
    this.#host.publishing(bytes)
    // The outcomes of run[start, end), from the publish result of events[start…] (indexes relative to start).
    let failed = false
    const settled = (start: number, end: number, result: PublishResult | undefined): Outcome[] => {
      const outcomes: Outcome[] = []
      if (result === undefined) {
        failed = true
        for (let k = start; k < end; k++) if (seqs[k]! > 0) outcomes.push({ seq: seqs[k]!, ok: false })
        return outcomes
      }
      // Each event is acked, except those the publish path refused (invalid, or unroutable on an
      // exchange that rejects those); an unroutable one goes back to a `mandatory` publisher
      // first, and is then acked, as RabbitMQ does.
      const refused = new Map<number, SluiceError>()
      for (const r of result.refused ?? []) refused.set(start + r.index, r.error)
      const unroutable = new Set((result.unroutableAt ?? []).map((i) => start + i))
      for (let k = start; k < end; k++) {
        const m = run[k]!.method as MethodOf<'basic.publish'>
        const error = refused.get(k)
        const noRoute = unroutable.has(k) || error?.code === 'SLUICE_ERR_UNROUTABLE'
        if (noRoute && m.mandatory && this.#live) {
          this.#host.write(encodeContent(this.number, { name: 'basic.return', replyCode: ReplyCode.NO_ROUTE, replyText: 'NO_ROUTE', exchange: m.exchange, routingKey: m.routingKey }, run[k]!.header.properties, run[k]!.body, this.#host.frameMax))
        }
        if (error !== undefined && !(noRoute && m.mandatory)) this.#host.vhost.deps.logger.debug({ err: error, exchange }, 'AMQP publish refused')
        if (seqs[k]! > 0) outcomes.push({ seq: seqs[k]!, ok: error === undefined || (noRoute && m.mandatory) })
      }
      return outcomes
    }
    const { publisher, blocked, logger } = this.#host.vhost.deps
    const parts: Array<Promise<Outcome[]>> = []
    const finish = (): { readonly confirms: Promise<{ ok: boolean; outcomes: Outcome[] }> } => ({
      confirms: Promise.all(parts).then((lists) => {
        this.#host.publishing(-bytes)
        return { ok: !failed, outcomes: lists.flat() }
      }),
    })
    let start = 0
    while (start < run.length) {
      const a = publisher.admit({ exchange, events: start === 0 ? events : events.slice(start), source: 'amqp', from: { listener: 'amqp', remote: this.#host.remote, user: this.#host.identity?.username }, invalid: 'event', admit: 'partial' })
      let waitMs: number
      if (a.admitted) {
        const from = start
        const end = a.deferred === undefined ? run.length : start + a.deferred.from
        parts.push(
          a.done.then(
            (result) => settled(from, end, result),
            (err: unknown) => {
              if (!(err instanceof SluiceError) || err.status >= 500) logger.warn({ err, exchange, events: end - from }, 'AMQP publish failed')
              return settled(from, end, undefined)
            },
          ),
        )
        if (a.deferred === undefined) break
        start = end
        waitMs = a.deferred.retryAfterMs
      } else {
        if (!a.error.retryable) {
          parts.push(Promise.resolve(settled(start, run.length, undefined)))
          break
        }
        waitMs = typeof a.error.details?.retryAfterMs === 'number' ? a.error.details.retryAfterMs : 1000
      }
      if (!this.#live) {
        parts.push(Promise.resolve(settled(start, run.length, undefined)))
        break
      }
      // An alarm ends when the alarm says so; a rate limit or a disk refusal after its wait.
      const wait = !a.admitted && blocked() ? this.#host.unblocked() : new Promise<void>((r) => setTimeout(r, waitMs))
      const gone = new Promise<void>((r) => this.#stopWaiting.signal.addEventListener('abort', () => r(), { once: true }))
      const held = Promise.race([wait, gone])
      this.#host.hold(held)
      await held
    }
    return finish()
  }

  /** Confirms go out in publish order, whatever order the durability waits end in. */
  #chainConfirms(done: Promise<{ ok: boolean; outcomes: Outcome[] }>): void {
    this.#confirmTail = this.#confirmTail.then(async () => this.#emitConfirms((await done).outcomes))
  }

  /** Contiguous acks become one `multiple` ack; nacks go one by one. */
  #emitConfirms(outcomes: Outcome[]): void {
    if (!this.#confirm || !this.#live) return
    let k = 0
    while (k < outcomes.length) {
      const o = outcomes[k]!
      if (!o.ok) {
        this.#send({ name: 'basic.nack', deliveryTag: o.seq, multiple: false, requeue: false })
        this.#confirmedUpTo = Math.max(this.#confirmedUpTo, o.seq)
        k++
        continue
      }
      let last = k
      while (last + 1 < outcomes.length && outcomes[last + 1]!.ok && outcomes[last + 1]!.seq === outcomes[last]!.seq + 1) last++
      const first = outcomes[k]!.seq
      const upTo = outcomes[last]!.seq
      if (first === this.#confirmedUpTo + 1 && upTo > first) this.#send({ name: 'basic.ack', deliveryTag: upTo, multiple: true })
      else for (let s = k; s <= last; s++) this.#send({ name: 'basic.ack', deliveryTag: outcomes[s]!.seq, multiple: false })
      this.#confirmedUpTo = Math.max(this.#confirmedUpTo, upTo)
      k = last + 1
    }
  }

  /** Resolves once every publish taken in so far has its confirm out (or failed). */
  drained(): Promise<void> {
    return this.#confirmTail
  }

  // ---- transactions ------------------------------------------------------------------------------

  async #commit(): Promise<void> {
    if (!this.#tx) throw reply.precondition('channel is not transactional')
    const publishes = this.#txPublishes
    const settles = this.#txSettles
    this.#txPublishes = []
    this.#txSettles = []
    let i = 0
    while (i < publishes.length) {
      const exchange = (publishes[i]!.method as MethodOf<'basic.publish'>).exchange
      let j = i
      while (j < publishes.length && (publishes[j]!.method as MethodOf<'basic.publish'>).exchange === exchange) j++
      const run = publishes.slice(i, j)
      i = j
      const { ok, outcomes } = await (await this.#publishRun(run)).confirms
      if (!ok || outcomes.some((o) => !o.ok)) {
        throw reply.precondition(`tx.commit failed storing the publishes to exchange '${exchange}'; runs before it are stored, nothing after it is`)
      }
    }
    for (const s of settles) await this.#settle(s)
    this.#send({ name: 'tx.commit-ok' })
  }

  // ---- consuming ---------------------------------------------------------------------------------

  /**
   * As RabbitMQ reads basic.qos: `global` false sets the prefetch of consumers made after it;
   * `global` true one limit for the whole channel, across its consumers (both can hold at once).
   * The channel limit is kept here: each consumer's group credit is capped by it, and deliveries
   * past it (several consumers filled at once) wait in #held until acks make room.
   */
  #qos(m: MethodOf<'basic.qos'>): void {
    if (m.global) {
      this.#globalPrefetch = m.prefetchCount
      for (const c of this.#consumers.values()) c.group.setPrefetch(c.member, this.#credit(c.prefetch))
      this.#release()
    } else {
      this.#prefetch = m.prefetchCount
    }
    this.#send({ name: 'basic.qos-ok' })
  }

  /** A consumer's group credit: its own prefetch, within the channel's global one. */
  #credit(own: number): number {
    const g = this.#globalPrefetch
    if (g === 0) return own
    return own === 0 ? g : Math.min(own, g)
  }

  /** Whether the channel's global prefetch lets one more acked delivery out now. */
  get #roomForDelivery(): boolean {
    return this.#globalPrefetch === 0 || this.#unacked.size < this.#globalPrefetch
  }

  /** Sends held deliveries while there is room (after acks, a higher global prefetch, flow on). */
  #release(): void {
    while (this.#held.length > 0 && this.#roomForDelivery && this.#flowActive && this.#state === 'open') {
      const { c, d } = this.#held.shift()!
      if (!c.cancelled) this.#write(c, d)
    }
  }

  /** channel.flow: false stops deliveries to the channel (what it holds stays its to ack); true resumes them. */
  #flow(active: boolean): void {
    if (active === this.#flowActive) return
    this.#flowActive = active
    for (const c of this.#consumers.values()) {
      if (active) this.#subscribe(c)
      else if (!c.standby) c.group.unsubscribe(c.member, false)
    }
    if (active) this.#release()
  }

  /** Starts pushing to a consumer, unless it waits its turn (single active consumer) or flow is off. */
  #subscribe(c: Consumer): void {
    if (c.cancelled || c.standby || !this.#flowActive) return
    c.group.subscribe(c.member, this.#credit(c.prefetch), (ds) => this.#deliver(c, ds), c.priority, undefined, () => this.#cancelledByServer(c))
  }

  async #consume(m: MethodOf<'basic.consume'>): Promise<void> {
    const vhost = this.#host.vhost
    if (m.queue === replyToQueue) return this.#replyConsumer(m)
    const name = this.#queueName(m.queue)
    // A stream queue is read as a stream (each consumer gets a group of its own); a classic one is a group.
    if (vhost.queue(name)?.kind === 'stream') this.#host.authorize('stream.read', { stream: streamRes(name) })
    else this.#host.authorize('consume', { group: groupRes(name) })
    const q = vhost.use(name, this.#host.id)
    const tag = m.consumerTag === '' ? `amq.ctag-${randomBytes(16).toString('base64url')}` : m.consumerTag
    if (this.#consumers.has(tag)) throw reply.reuseConsumerTag(tag)
    const perChannel = vhost.limits.maxConsumersPerChannel
    if (this.#consumers.size >= perChannel) {
      hitLimit('amqp.maxConsumersPerChannel')
      throw reply.notAllowed(`reached maximum (${perChannel}) of consumers per channel (server.amqp.maxConsumersPerChannel)`)
    }
    const ownGroup = q.kind === 'stream'
    // A stream queue's reader is a group of its own; in a cluster it is declared everywhere, and
    // served, like any group, by the stream's home.
    const group: ConsumeHandle = this.#groupHandle(q.kind === 'group' ? q.group : await vhost.streamConsumerGroup(q, tag, (m.arguments as FieldTable)['x-stream-offset']))
    const member = `${this.#host.id}/${this.number}/${tag}`
    const c: Consumer = {
      tag,
      queue: q,
      group,
      member,
      noAck: m.noAck,
      ownGroup,
      prefetch: this.#prefetch,
      priority: consumerPriority((m.arguments as FieldTable)['x-priority']),
      standby: false,
      cancelled: false,
      connectionId: this.#host.id,
      exclusive: m.exclusive,
      cancelledByServer: () => this.#cancelledByServer(c),
      activate: () => {
        c.standby = false
        this.#subscribe(c)
      },
    }
    try {
      // server.limits.maxConsumers: refused before consume-ok, with nothing set up.
      group.admitMember(member)
      c.standby = !vhost.addConsumer(q.name, c)
    } catch (err) {
      if (ownGroup) await vhost.dropStreamConsumerGroup(group.name)
      throw err
    }
    this.#consumers.set(tag, c)
    this.#members.set(member, group)
    // consume-ok goes before the first delivery.
    if (!m.nowait) this.#send({ name: 'basic.consume-ok', consumerTag: tag })
    this.#subscribe(c)
  }

  /** basic.consume on amq.rabbitmq.reply-to: no-ack only, one per channel, as in RabbitMQ. */
  #replyConsumer(m: MethodOf<'basic.consume'>): void {
    if (!m.noAck) throw reply.precondition('reply consumer cannot acknowledge')
    if (this.#replyTo !== undefined) throw reply.precondition('reply consumer already set')
    const tag = m.consumerTag === '' ? `amq.ctag-${randomBytes(16).toString('base64url')}` : m.consumerTag
    if (this.#consumers.has(tag)) throw reply.reuseConsumerTag(tag)
    const address = this.#host.vhost.directReplies.register({ deliverReply: (key, props, body) => this.#deliverReply(tag, key, props, body) })
    this.#replyTo = { tag, address }
    if (!m.nowait) this.#send({ name: 'basic.consume-ok', consumerTag: tag })
  }

  #dropReplyConsumer(): void {
    if (this.#replyTo === undefined) return
    this.#host.vhost.directReplies.unregister(this.#replyTo.address)
    this.#replyTo = undefined
  }

  #deliverReply(tag: string, routingKey: string, properties: BasicProperties, body: Buffer): void {
    if (this.#state !== 'open') return
    const host = this.#host
    host.write(encodeDeliver(this.number, tag, ++this.#deliveryTag, false, '', routingKey, properties, body, host.frameMax))
  }

  #cancel(tag: string): void {
    const c = this.#consumers.get(tag)
    if (c === undefined) return
    this.#consumers.delete(tag)
    c.cancelled = true
    this.#returnHeld(c)
    // What it holds stays its channel's to ack, as after a RabbitMQ basic.cancel.
    c.group.unsubscribe(c.member, false)
    this.#host.vhost.removeConsumer(c.queue.name, c)
    if (c.ownGroup) {
      this.#members.delete(c.member)
      for (const [k, u] of this.#unacked) if (u.group === c.group) this.#unacked.delete(k)
      void this.#host.vhost.dropStreamConsumerGroup(c.group.name)
    }
  }

  #cancelledByServer(c: Consumer): void {
    if (c.cancelled) return
    c.cancelled = true
    this.#returnHeld(c)
    this.#consumers.delete(c.tag)
    c.group.unsubscribe(c.member, true)
    this.#members.delete(c.member)
    for (const [k, u] of this.#unacked) if (u.group === c.group) this.#unacked.delete(k)
    if (!this.#host.capabilities.consumerCancelNotify) return
    if (this.#heldCancels !== undefined) this.#heldCancels.push(c.tag)
    else this.#send({ name: 'basic.cancel', consumerTag: c.tag, nowait: true })
  }

  /** Deliveries held back for a consumer that went: the client never saw them, so they go back as they were. */
  #returnHeld(c: Consumer): void {
    const back: string[] = []
    for (let i = this.#held.length - 1; i >= 0; i--) {
      if (this.#held[i]!.c !== c) continue
      back.push(this.#held[i]!.d.tag)
      this.#held.splice(i, 1)
    }
    if (back.length > 0) c.group.returnUndelivered(back)
  }

  /** Adds the delivery's frames to `out`, its delivery tag taken. */
  #frames(c: Consumer, d: Delivery, out: DeliverWriter): void {
    const r = d.record
    const tag = this.#deliveryTag + 1
    // add throws for a delivery that cannot be framed: then it takes no tag and is not unacked.
    out.add(tag, d.redelivered, wireExchange(r.exchange), r.key, this.#properties.bytes(r, d.deliveryCount), r.body)
    this.#deliveryTag = tag
    if (!c.noAck) this.#unacked.set(tag, { group: c.group, tag: d.tag, member: c.member })
  }

  #write(c: Consumer, d: Delivery): void {
    const out = new DeliverWriter(this.number, c.tag, this.#host.frameMax)
    this.#frames(c, d, out)
    this.#host.write(out.finish())
  }

  #deliver(c: Consumer, ds: Delivery[]): void {
    if (c.cancelled || this.#state !== 'open') {
      // Dispatched while the consumer went away: straight back to the queue.
      void c.group.nack(ds.map((d) => d.tag), { requeue: true, delayMs: 0 }).catch(() => undefined)
      return
    }
    const autoAck: string[] = []
    // One socket write for the batch: a write per delivery was most of the server's time (a
    // syscall each), and the frames of one dispatch go out together anyway.
    const host = this.#host
    const out = new DeliverWriter(this.number, c.tag, host.frameMax)
    for (const d of ds) {
      // Past the channel's global prefetch (or with flow off), acked deliveries wait here.
      if (!c.noAck && (this.#held.length > 0 || !this.#roomForDelivery || !this.#flowActive)) {
        this.#held.push({ c, d })
        continue
      }
      try {
        this.#frames(c, d, out)
      } catch (err) {
        // What was framed before it still goes out, as it did when each delivery was a write.
        if (out.count > 0) host.write(out.finish())
        throw err
      }
      if (c.noAck) autoAck.push(d.tag)
    }
    if (out.count > 0) host.write(out.finish())
    if (autoAck.length === 0) return
    // No-ack: settled on send. When the socket is backed up, the acks (and so the next deliveries) wait.
    const ack = (): void => void c.group.ack(autoAck).catch(() => undefined)
    if (host.writableNeedDrain) host.onDrain(ack)
    else ack()
  }

  /**
   * Cluster mode: a queue's group is served where its stream lives; on another node, this
   * channel consumes it through that node (docs/cluster.md).
   */
  #groupHandle(group: ConsumerGroup): ConsumeHandle {
    const remote = this.#host.vhost.deps.remoteGroup?.(group)
    if (remote === undefined) return group
    if ('refused' in remote) throw reply.precondition(`queue '${group.name}' in vhost '/' cannot be consumed now: ${remote.refused}`)
    return remote
  }

  async #get(m: MethodOf<'basic.get'>): Promise<void> {
    const name = this.#queueName(m.queue)
    this.#host.authorize('consume', { group: groupRes(name) })
    const q = this.#host.vhost.use(name, this.#host.id)
    this.#host.vhost.renew(name)
    if (q.kind !== 'group') throw reply.precondition(`queue '${q.name}' in vhost '/' is a stream queue; basic.get is not supported on it, use basic.consume`)
    const member = `${this.#host.id}/${this.number}/basic.get`
    const group = this.#groupHandle(q.group)
    this.#members.set(member, group)
    const [d] = await group.fetch(member, 1, 0)
    if (this.#state !== 'open') return
    if (d === undefined) {
      this.#send({ name: 'basic.get-empty' })
      return
    }
    const tag = ++this.#deliveryTag
    if (!m.noAck) this.#unacked.set(tag, { group, tag: d.tag })
    const r = d.record
    const { messageCount } = this.#host.vhost.counts(q)
    this.#host.write(
      encodeContent(
        this.number,
        { name: 'basic.get-ok', deliveryTag: tag, redelivered: d.redelivered, exchange: wireExchange(r.exchange), routingKey: r.key, messageCount },
        deliveryProperties(r, d.deliveryCount),
        r.body,
        this.#host.frameMax,
      ),
    )
    if (m.noAck) await group.ack([d.tag])
  }

  #settleOrBuffer(s: TxSettle): void {
    this.#take(s, false) // unknown tags fail now, not at commit
    if (this.#tx) this.#txSettles.push(s)
    else if (s.kind === 'ack') this.#coalesceAck(s)
    else void this.#settle(s)
  }

  /**
   * Clients such as amqplib ack every message on its own. The acks that arrive in one turn of the
   * event loop are settled as one group.ack, so they share one metadata write instead of paying
   * for one each (in a profile, per-message ack writes were the largest cost of consuming).
   */
  #coalesceAck(s: TxSettle): void {
    const taken = this.#take(s, true)
    // A multiple ack is, for each member, a run of what was delivered to it, in order: the group
    // settles the run in one step instead of looking up each tag (a channel delivers a member's
    // events in the order the member holds them, so the run is exactly what the ack names).
    const runs = s.multiple ? new Map<string, AckRun>() : undefined
    for (const u of taken) {
      if (runs !== undefined && u.member !== undefined) {
        const r = runs.get(u.member)
        if (r === undefined) runs.set(u.member, { group: u.group, first: u.tag, last: u.tag, tags: [u.tag] })
        else if (r.group === u.group) {
          r.last = u.tag
          r.tags.push(u.tag)
        } else this.#ackOne(u)
        continue
      }
      this.#ackOne(u)
    }
    if (runs !== undefined) for (const r of runs.values()) this.#ackRuns.push(r)
    this.#release()
    if (this.#acksScheduled) return
    this.#acksScheduled = true
    setImmediate(() => void this.flushAcks())
  }

  #ackOne(u: Unacked): void {
    let tags = this.#acks.get(u.group)
    if (tags === undefined) this.#acks.set(u.group, (tags = []))
    tags.push(u.tag)
  }

  /** Settles the coalesced acks now (also before the channel releases what it holds). */
  flushAcks(): Promise<void> {
    this.#acksScheduled = false
    if (this.#acks.size === 0 && this.#ackRuns.length === 0) return Promise.resolve()
    const batch = [...this.#acks]
    this.#acks.clear()
    const runs = this.#ackRuns
    this.#ackRuns = []
    const work: Array<Promise<unknown>> = batch.map(([group, tags]) => group.ack(tags))
    for (const r of runs) {
      // An end that no longer names a delivery in flight (redelivered after its ack timeout)
      // settles nothing of the run: then tag by tag, as before, which skips the stale ones.
      work.push(r.group.ackThrough(r.last, r.first).then((done) => (done.settled === r.tags.length ? undefined : r.group.ack(r.tags))))
    }
    return Promise.all(work).then(
      () => undefined,
      (err: unknown) => this.#host.vhost.deps.logger.warn({ err }, 'AMQP ack failed; the deliveries come back after the ack timeout'),
    )
  }

  /** The deliveries an ack/nack names; `remove` takes them off the channel. Throws on an unknown tag. */
  #take(s: TxSettle, remove: boolean): Unacked[] {
    const out: Unacked[] = []
    if (s.multiple) {
      for (const [k, u] of this.#unacked) {
        if (s.deliveryTag !== 0 && k > s.deliveryTag) break
        out.push(u)
        if (remove) this.#unacked.delete(k)
      }
      return out
    }
    const u = this.#unacked.get(s.deliveryTag)
    if (u === undefined) throw reply.unknownDeliveryTag(s.deliveryTag)
    if (remove) this.#unacked.delete(s.deliveryTag)
    return [u]
  }

  #settle(s: TxSettle): Promise<void> {
    let taken: Unacked[]
    try {
      taken = this.#take(s, true)
    } catch (err) {
      // In a transaction, a tag settled twice: RabbitMQ fails the commit the same way.
      return Promise.reject(err)
    }
    this.#release()
    const byGroup = new Map<ConsumeHandle, string[]>()
    for (const u of taken) {
      let tags = byGroup.get(u.group)
      if (tags === undefined) byGroup.set(u.group, (tags = []))
      tags.push(u.tag)
    }
    const work: Promise<unknown>[] = []
    for (const [group, tags] of byGroup) {
      // requeue: back at once, as RabbitMQ requeues; no requeue: dead-lettered, reason rejected.
      work.push(s.kind === 'ack' ? group.ack(tags) : group.nack(tags, s.requeue ? { requeue: true, delayMs: 0 } : { requeue: false }))
    }
    return Promise.all(work).then(
      () => undefined,
      (err: unknown) => this.#host.vhost.deps.logger.warn({ err }, 'AMQP settle failed; the deliveries come back after the ack timeout'),
    )
  }
}

/** x-priority of a basic.consume: an integer, 0 when absent (RabbitMQ's default). */
function consumerPriority(v: FieldValue | undefined): number {
  if (v === undefined) return 0
  const n = fieldNumber(v)
  if (n === undefined || !Number.isInteger(n)) throw reply.precondition(`invalid arg 'x-priority': expected an integer, got ${JSON.stringify(String(v))}`)
  return n
}
