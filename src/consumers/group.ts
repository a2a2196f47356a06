import { randomBytes } from 'node:crypto'
import type { GroupConfig, StartPosition } from '../config/index.js'
import { errors } from '../errors.js'
import { storedRecordBytes, type LogLogger, type StoredRecord } from '../log/index.js'
import { deliveryStateCodec, settledRangeCodec, str, u64, type MetaOp, type MetaStore, type ValueCodec } from '../meta/index.js'
import type { Stream } from '../streams/registry.js'
import { TokenBucket } from '../flow/token-bucket.js'
import { retryDelayMs } from './backoff.js'
import { CursorState, toRanges, type GroupKeyspaces, type GroupRecord, type ParkedEvent } from './cursor-state.js'
import type { DeadLetterSink, DeathReason } from './dead-letter.js'
import { DeadLetterer } from './dead-letterer.js'
import { clockWithNow, Deadlines, systemClock, type GroupClock } from './deadlines.js'
import { Dispatcher, type Delivery, type Inflight, type Member } from './dispatcher.js'
import { expiryOf } from './expiry.js'
import { RecordSizes } from './record-sizes.js'
import type { Deadline } from './timer-heap.js'

export type { Delivery } from './dispatcher.js'
export type { GroupKeyspaces, ParkedEvent } from './cursor-state.js'

export type TagStatus = 'ok' | 'unknown_tag' | 'stale_tag' | 'already_settled' | 'not_yours'

/**
 * Who settles: the consumer (when the request names one) and the user. A delivery is settled only
 * by the member it went to and its user; an administrator may settle for anyone, and that is logged.
 */
export interface SettleAs {
  readonly consumer?: string | undefined
  readonly user?: string | undefined
  readonly admin?: boolean | undefined
}

export interface TagResult {
  readonly tag: string
  readonly status: TagStatus
}

export interface MemberStats {
  readonly name: string
  readonly inFlight: number
  readonly assigned: number
  readonly credit: number
  readonly lastSeen: string
}

export interface GroupStats {
  readonly name: string
  readonly stream: string
  readonly cursor: number
  readonly backlog: number
  readonly lagSeconds: number
  readonly inFlight: number
  readonly delivered: number
  readonly acked: number
  readonly nacked: number
  readonly redelivered: number
  readonly ackTimeouts: number
  readonly deadLettered: Readonly<Record<DeathReason, number>>
  readonly parked: number
  readonly members: readonly MemberStats[]
}

// Small, rare records: JSON keeps them readable in a dump of the store.
const json = <T>(name: string): ValueCodec<T> => ({
  name,
  encode: (v) => Buffer.from(JSON.stringify(v), 'utf8'),
  decode: (b) => JSON.parse(b.toString('utf8')) as T,
})

export function groupKeyspaces(meta: MetaStore): GroupKeyspaces {
  return {
    record: meta.keyspace('groupRecord', [str()] as const, json<GroupRecord>('groupRecord')),
    settled: meta.keyspace('settled', [str(), u64()] as const, settledRangeCodec),
    deliveries: meta.keyspace('deliveries', [str(), u64()] as const, deliveryStateCodec),
    parked: meta.keyspace('groupParked', [str(), u64()] as const, json<ParkedEvent>('parkedEvent')),
  }
}

export interface GroupDeps {
  readonly stream: Stream
  readonly meta: MetaStore
  readonly keyspaces: GroupKeyspaces
  /** undefined: poison events are parked in the group, never dropped. */
  readonly deadLetter: DeadLetterSink | undefined
  readonly logger?: LogLogger | undefined
  /** The clock and timers (tests inject their own); `now` alone keeps the system timers. */
  readonly clock?: GroupClock | undefined
  readonly now?: () => number
  readonly random?: () => number
  /** Makes the per-member secret in delivery tags (tests inject a repeatable one); default 48 random bits. */
  readonly token?: (() => string) | undefined
  /** server.limits.maxConsumers, shared by every group of a registry; none: no limit. */
  readonly members?: MemberBudget | undefined
  /** How far events may be handed out, when less than the log's end (a replicated stream's high watermark). */
  readonly visibleEnd?: (() => number) | undefined
}

/**
 * server.limits.maxConsumers: one count of members across the groups that share it, so many
 * consumer names (an HTTP client making up a new one per fetch) cannot grow memory without end.
 * A member counts from its first subscribe or fetch until it is removed or its group closes.
 */
export class MemberBudget {
  #count = 0

  constructor(readonly max: number) {}

  get count(): number {
    return this.#count
  }

  /** Throws SLUICE_ERR_TOO_MANY_CONSUMERS when one more member would not fit. */
  check(group: string): void {
    if (this.#count >= this.max) throw errors.tooManyConsumers(group, this.max)
  }

  take(group: string): void {
    this.check(group)
    this.#count++
  }

  give(n = 1): void {
    this.#count = Math.max(0, this.#count - n)
  }
}

interface Scheduled {
  readonly count: number
  readonly stamp: number
  readonly avoid?: Member | undefined
}

/**
 * A delivery tag, `generation-offset-count[-token]`, read without a regular expression: every ack
 * names one per event, and the regex was the largest part of settling. Undefined when malformed.
 */
export function parseDeliveryTag(tag: string): { generation: number; offset: number; count: number; token: string | undefined } | undefined {
  const n = tag.length
  const nums = [0, 0, 0]
  let i = 0
  for (let field = 0; field < 3; field++) {
    const start = i
    let v = 0
    for (; i < n; i++) {
      const c = tag.charCodeAt(i) - 48
      if (c < 0 || c > 9) break
      v = v * 10 + c
    }
    // Digits only, at most 15 of them: every value stays an exact integer.
    if (i === start || i - start > 15) return undefined
    nums[field] = v
    if (field < 2) {
      if (tag.charCodeAt(i) !== 45) return undefined
      i++
    }
  }
  let token: string | undefined
  if (i < n) {
    if (tag.charCodeAt(i) !== 45 || n - i - 1 < 1 || n - i - 1 > 64) return undefined
    for (let j = i + 1; j < n; j++) {
      const c = tag.charCodeAt(j)
      // [A-Za-z0-9_-]
      if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45)) return undefined
    }
    token = tag.slice(i + 1)
  }
  return { generation: nums[0]!, offset: nums[1]!, count: nums[2]!, token }
}

const sweepEveryMs = 1000
const overflowBatchMax = 10_000
/** Events read at a time while overflow by bytes looks for the oldest to drop. */
const overflowReadAhead = 256

/**
 * A consumer group: a durable cursor on one stream whose members compete for its events.
 *
 * A facade over four parts, each the one owner of its state:
 * - CursorState (cursor-state.ts): cursor, settled ranges, delivered mark, delivery counts and
 *   parked events; pure, it returns the metadata ops of every change.
 * - Dispatcher (dispatcher.ts): members, credit, what is in flight, the ready queues, read-ahead.
 * - Deadlines (deadlines.ts): ack deadlines and retry due times on one timer and an injected clock.
 * - DeadLetterer (dead-letterer.ts): poison events to the dead-letter target, or parked.
 * The facade runs the dispatch loop, head expiry and overflow, and writes each change durably
 * before it answers. Memory is O(in flight + settled ranges + parked), plus 8 bytes a backlog event
 * with maxBacklogBytes (record-sizes.ts): the backlog stays in the
 * log and is read ahead only as far as members have credit.
 */
export class ConsumerGroup {
  readonly name: string
  readonly config: GroupConfig
  readonly #stream: Stream
  readonly #meta: MetaStore
  readonly #ks: GroupKeyspaces
  readonly #logger: LogLogger | undefined
  readonly #clock: GroupClock
  readonly #random: () => number
  readonly #token: () => string
  readonly #members: MemberBudget | undefined

  #state!: CursorState
  #dispatch!: Dispatcher
  readonly #deadlines: Deadlines
  readonly #dead: DeadLetterer
  readonly #scheduled = new Map<number, Scheduled>()
  #retryDue: number[] = []
  #sweep: unknown
  #pumpRun: Promise<void> | undefined
  #pumpAgain = false
  #closed = false
  readonly #visibleEnd: (() => number) | undefined
  /** Push consumers' "you lost this group" callbacks (AMQP basic.cancel), told at a handover. */
  readonly #lost = new Map<string, () => void>()
  /** Give-backs whose metadata write is in flight: a handover waits for them. */
  readonly #givingBack = new Set<Promise<void>>()
  /** deliveryRate: a bucket of a tenth of a second, so a stored burst drains at the set pace. */
  readonly #rate: TokenBucket | undefined
  #rateTimer: unknown
  #expiryTimer: unknown
  #expiryAt = Number.POSITIVE_INFINITY
  #lagCache: { cursor: number; timestamp: number } | undefined
  /** Only with maxBacklogBytes: the stored size of each event from the cursor on. */
  #sizes: RecordSizes | undefined

  readonly counters = { delivered: 0, acked: 0, nacked: 0, redelivered: 0, ackTimeouts: 0 }

  private constructor(config: GroupConfig, deps: GroupDeps) {
    this.name = config.name
    this.config = config
    this.#stream = deps.stream
    this.#meta = deps.meta
    this.#ks = deps.keyspaces
    this.#logger = deps.logger
    this.#clock = deps.clock ?? (deps.now !== undefined ? clockWithNow(deps.now) : systemClock)
    this.#random = deps.random ?? Math.random
    this.#token = deps.token ?? ((): string => randomBytes(6).toString('base64url'))
    this.#members = deps.members
    this.#visibleEnd = deps.visibleEnd
    const r = config.deliveryRatePerSec
    this.#rate = r === null ? undefined : new TokenBucket(r, Math.max(1, Math.ceil(r / 10)), this.#now())
    this.#deadlines = new Deadlines(
      this.#clock,
      (d) => this.#live(d),
      (due) => this.#onDue(due),
    )
    const dl = config.deadLetter
    this.#dead = new DeadLetterer({
      group: this.name,
      stream: this.#stream.name,
      sink: deps.deadLetter,
      routingKey: dl?.kind === 'exchange' ? (dl.routingKey ?? undefined) : undefined,
      now: () => this.#now(),
      logger: deps.logger,
      settle: (offsets) => this.#settle(offsets),
      park: (events) => this.#meta.write(this.#state.park(events), { sync: true }),
      // Back to redelivery so nothing is lost.
      retryLater: (events) => {
        for (const d of events) this.#schedule(d.record.offset, d.count, this.#now() + this.config.retryBackoff.initialMs)
      },
    })
  }

  static async open(config: GroupConfig, deps: GroupDeps): Promise<ConsumerGroup> {
    const g = new ConsumerGroup(config, deps)
    await g.#load()
    if (config.maxBacklogBytes !== null) g.#sizes = await RecordSizes.open(deps.stream, g.#state.cursor)
    g.#sweep = g.#clock.setTimeout(function tick() {
      g.#sweepMembers()
      if (!g.#closed) g.#sweep = g.#clock.setTimeout(tick, sweepEveryMs)
    }, sweepEveryMs)
    void g.#watch()
    return g
  }

  get stream(): string {
    return this.#stream.name
  }

  /** More may be handed out (a replicated stream's watermark moved): dispatch again. */
  wake(): void {
    if (!this.#closed) void this.#pump()
  }

  /** Closed (stopped, deleted, or handed over): it serves nothing until the registry opens it again. */
  get closed(): boolean {
    return this.#closed
  }

  get #log() {
    return this.#stream.log
  }

  #now(): number {
    return this.#clock.now()
  }

  // ---- state -----------------------------------------------------------------------------------

  async #load(): Promise<void> {
    const log = this.#log
    const saved = await this.#ks.record.get([this.name])
    if (saved === undefined) {
      const { state, ops } = CursorState.fresh(this.name, this.#ks, await this.#startOffset(this.config.start))
      this.#state = state
      this.#dispatch = new Dispatcher(this.config, log, state, () => this.#now(), new Set(), this.#token, this.#visibleEnd)
      await this.#meta.write(ops, { sync: true })
      return
    }
    const { state, clamp, dropped, retries, skip } = await CursorState.restore(this.name, this.#ks, saved, { start: log.startOffset, end: log.endOffset })
    this.#state = state
    this.#dispatch = new Dispatcher(this.config, log, state, () => this.#now(), skip, this.#token, this.#visibleEnd)
    for (const r of retries) this.#schedule(r.offset, r.count, r.dueAtMs)
    if (dropped > 0) this.#logger?.warn({ group: this.name, stream: this.stream, logEnd: log.endOffset, cursor: saved.cursor, delivered: saved.delivered, dropped }, 'group state past the end of its log dropped')
    await this.#meta.write(clamp, { sync: true })
  }

  async #startOffset(start: StartPosition): Promise<number> {
    const log = this.#log
    switch (start.kind) {
      case 'earliest':
        return log.startOffset
      case 'latest':
        return log.endOffset
      case 'last':
        return Math.max(log.startOffset, log.endOffset - 1)
      case 'offset':
        return Math.min(Math.max(start.offset, log.startOffset), log.endOffset)
      case 'time':
        return log.offsetForTime(start.timeMs)
    }
  }

  /** Lowest unsettled offset. */
  get cursor(): number {
    return this.#state.cursor
  }

  /**
   * The backlog counting appends still on their way to disk: what publish admission must use, or
   * publishes racing each other's fsync could all pass a full group.
   */
  get backlogWithPending(): number {
    return this.#state.backlog(this.#log.nextOffset)
  }

  /** Unsettled events: the backlog, in flight and parked included. */
  get backlog(): number {
    return this.#state.backlog(this.#log.endOffset)
  }

  /** Stored bytes of the backlog, appends on their way to disk included (publish admission); 0 without maxBacklogBytes. */
  get backlogBytesWithPending(): number {
    return this.#backlogBytes(this.#log.nextOffset)
  }

  /** Stored bytes of the unsettled events; 0 without maxBacklogBytes. */
  get backlogBytes(): number {
    return this.#backlogBytes(this.#log.endOffset)
  }

  #backlogBytes(end: number): number {
    const sizes = this.#sizes
    if (sizes === undefined) return 0
    sizes.trimBelow(this.#state.cursor)
    return this.#state.backlogBytes(end, (a, b) => sizes.bytes(a, b))
  }

  // ---- consuming -------------------------------------------------------------------------------

  /**
   * A push consumer: events are handed to `deliver` as they are dispatched, up to `prefetch` in
   * flight (0 = the group's prefetch). The same member name may not also fetch. In fair dispatch
   * a member of higher `priority` is served first while it has credit (AMQP's x-priority).
   */
  subscribe(consumer: string, prefetch: number, deliver: (deliveries: Delivery[]) => void, priority = 0, user?: string, lost?: () => void): void {
    if (this.#closed) throw errors.groupClosed(this.name)
    const known = this.#dispatch.members.get(consumer)
    // A member is one user's (see fetch).
    if (known?.user !== undefined && user !== undefined && known.user !== user) throw errors.consumerNotYours(this.name, consumer)
    const m = this.#member(consumer)
    m.user ??= user
    m.push = deliver
    m.retired = false
    m.priority = priority
    m.prefetch = prefetch > 0 ? prefetch : undefined
    if (lost !== undefined) this.#lost.set(consumer, lost)
    void this.#pump()
  }

  /** Whether a member of that name is receiving now: a push consumer, or a fetch waiting. */
  receiving(consumer: string): boolean {
    const m = this.#dispatch.members.get(consumer)
    return m !== undefined && (m.push !== undefined || m.waiter !== undefined)
  }

  /** Changes a push consumer's credit (AMQP basic.qos after consume). */
  setPrefetch(consumer: string, prefetch: number): void {
    const m = this.#dispatch.members.get(consumer)
    if (m === undefined) return
    m.prefetch = prefetch > 0 ? prefetch : undefined
    void this.#pump()
  }

  /**
   * Stops pushing to a consumer. With `release`, what it holds goes back to the group at once
   * (its channel closed); without, its in-flight events stay its to ack (AMQP basic.cancel).
   */
  unsubscribe(consumer: string, release: boolean): void {
    const m = this.#dispatch.members.get(consumer)
    if (m === undefined) return
    m.push = undefined
    m.retired = true
    this.#lost.delete(consumer)
    this.#dispatch.returnAssigned(m)
    if (release) this.#giveBack(this.#removeMember(m))
    void this.#pump()
  }

  /** The member of that name, made (and counted against server.limits.maxConsumers) on first sight. */
  #member(name: string): Member {
    if (!this.#dispatch.members.has(name)) this.#members?.take(this.name)
    return this.#dispatch.member(name)
  }

  #removeMember(m: Member): Inflight[] {
    // A closed group gave back all its members at once.
    if (!this.#closed && this.#dispatch.members.has(m.name)) this.#members?.give()
    return this.#dispatch.remove(m)
  }

  /**
   * Throws SLUICE_ERR_TOO_MANY_CONSUMERS when `consumer` is new and server.limits.maxConsumers is
   * reached, so a door can refuse before it sets anything up (AMQP answers basic.consume-ok
   * before the first delivery).
   */
  admitMember(consumer: string): void {
    if (!this.#dispatch.members.has(consumer)) this.#members?.check(this.name)
  }

  /** Deliveries a gone member held go back to the group at once, counted as delivered. */
  #giveBack(held: readonly Inflight[]): void {
    if (held.length === 0) return
    const giving = this.#retry(
      held.map((e) => ({ offset: e.record.offset, count: e.count, record: e.record })),
      0,
    ).then(() => this.#pump())
    this.#givingBack.add(giving)
    void giving.finally(() => this.#givingBack.delete(giving))
  }

  /**
   * Up to `max` deliveries for `consumer`, waiting up to `waitMs` for the first. A member has one
   * fetch at a time; a new one answers the previous one empty.
   */
  async fetch(consumer: string, max: number, waitMs: number, signal?: AbortSignal, user?: string): Promise<Delivery[]> {
    if (this.#closed) throw errors.groupClosed(this.name)
    if (signal?.aborted === true) return []
    // A member is one user's: another user fetching under its name would get its tags' secret.
    const known = this.#dispatch.members.get(consumer)
    if (known?.user !== undefined && user !== undefined && known.user !== user) throw errors.consumerNotYours(this.name, consumer)
    const m = this.#member(consumer)
    m.user ??= user
    if (m.waiter !== undefined) this.#answer(m, [])
    m.want = max
    const done = new Promise<Delivery[]>((resolve) => {
      m.waiter = { resolve, timer: undefined }
    })
    if (signal !== undefined) {
      // The client went away mid-poll: nothing more may be handed to this fetch, or it would sit
      // in flight with nobody holding it until ackTimeout.
      const w = m.waiter!
      const onAbort = (): void => {
        if (m.waiter === w) this.#answer(m, [])
      }
      signal.addEventListener('abort', onAbort, { once: true })
      void done.then(() => signal.removeEventListener('abort', onAbort))
    }
    // A dispatch can take long (a burst of timed-out deliveries read back one by one): the poll
    // is answered by deliveries, at waitMs or when its client goes away, whichever comes first,
    // so its timer starts now and a long poll does not wait for the dispatch to end.
    const w = m.waiter!
    if (waitMs > 0) {
      w.timer = this.#clock.setTimeout(() => {
        if (m.waiter === w) this.#answer(m, [])
      }, waitMs)
    }
    if (m.assigned.length > 0) await this.#complete(m)
    else if (waitMs > 0) void this.#pump() // never rejects: it logs what fails
    else await this.#pump()
    if (waitMs <= 0 && m.waiter === w) this.#answer(m, [])
    return done
  }

  #answer(m: Member, deliveries: Delivery[]): void {
    const w = m.waiter
    if (w === undefined) return
    m.waiter = undefined
    m.want = 0
    if (w.timer !== undefined) this.#clock.clearTimeout(w.timer)
    m.lastSeen = this.#now()
    w.resolve(deliveries)
  }

  /** Hands a member what was assigned to it, up to what its fetch asked for. */
  async #complete(m: Member): Promise<void> {
    const w = m.waiter ?? (m.push !== undefined ? { resolve: m.push, timer: undefined } : undefined)
    if (w === undefined || m.assigned.length === 0) return
    let take = m.assigned.splice(0, m.push !== undefined && m.waiter === undefined ? m.assigned.length : Math.max(1, m.want))
    // An event can wait in a member's queue (round-robin) past its expiry: it dies, never delivered.
    const ttl = this.config.messageTtlMs
    const handOver = this.#now()
    if (take.some((c) => expiryOf(c.record, ttl) <= handOver)) {
      for (const c of take) if (expiryOf(c.record, ttl) <= handOver) void this.#dead.kill(c.record, c.count, 'expired').catch(() => undefined)
      take = take.filter((c) => expiryOf(c.record, ttl) > handOver)
      // The fetch still waits: the next dispatch gives it what comes after.
      if (take.length === 0) return void this.#pump()
    }
    // Delivered `limit` times already, the last time before a crash (or a member that went away
    // with it): one more delivery would pass maxDeliveries, so it goes where a nack would send it.
    const limit = this.config.maxDeliveries
    if (limit > 0 && take.some((c) => c.count >= limit)) {
      for (const c of take) if (c.count >= limit) void this.#dead.kill(c.record, c.count, 'delivery_limit').catch(() => undefined)
      take = take.filter((c) => c.count < limit)
      if (take.length === 0) return void this.#pump()
    }
    // This fetch is answered below, after a metadata write. Detach its waiter now, so its waitMs
    // timer (or a newer fetch of the member) cannot answer it empty during the write and leave
    // these deliveries in flight with nobody holding them (auto mode: settled and lost).
    m.waiter = undefined
    m.want = 0
    if (w.timer !== undefined) this.#clock.clearTimeout(w.timer)
    const now = this.#now()
    const generation = this.#state.generation
    let markMoved = false
    const counts: MetaOp[] = []
    const out: Delivery[] = []
    const auto = this.config.ackMode === 'auto'
    for (const c of take) {
      const count = c.count + 1
      const offset = c.record.offset
      if (this.#state.noteDelivered(offset)) markMoved = true
      this.counters.delivered++
      if (c.seen) this.counters.redelivered++
      out.push({ tag: `${generation}-${offset}-${count}-${m.token}`, record: c.record, deliveryCount: count, redelivered: c.seen })
      if (!auto) {
        const op = this.#state.redeliveryOp(offset, count)
        if (op !== undefined) counts.push(op)
        const stamp = this.#deadlines.stamp()
        this.#dispatch.hold(m, c.record, count, stamp)
        this.#deadlines.add('ack', offset, now + this.config.ackTimeoutMs, stamp)
      }
    }
    if (auto) {
      // At most once: settled before the consumer sees them, so a crash cannot deliver them twice.
      try {
        await this.#settle(take.map((c) => c.record.offset))
      } catch (err) {
        w.resolve([])
        throw err
      }
      this.counters.acked += take.length
    } else if (markMoved || counts.length > 0) {
      // The delivered mark is in the metadata store before the consumer sees the events, so events
      // delivered after the group's last ack come back after a restart as redelivered. Not synced
      // and not awaited: the write is queued in order before any later ack's, and waiting for it
      // put an ack batch's fsync in front of every fetch answer. A crash before it lands can only
      // turn a redelivered flag back to false.
      // Redelivery counts ride along, as unsynced: a crash before they land repeats one count.
      const ops = markMoved ? [this.#state.recordOp(), ...counts] : counts
      this.#meta.write(ops, { sync: false }).catch((err: unknown) => this.#logger?.warn({ group: this.name, err }, 'could not record the delivered mark'))
    }
    m.lastSeen = this.#now()
    w.resolve(out)
  }

  /** Runs the dispatch loop; concurrent callers share the run in progress (it loops again for them). */
  #pump(): Promise<void> {
    if (this.#pumpRun !== undefined) {
      this.#pumpAgain = true
      return this.#pumpRun
    }
    this.#pumpRun = (async () => {
      try {
        do {
          this.#pumpAgain = false
          await this.#loadDueRetries()
          await this.#expireHead()
          await this.#enforceBacklog()
          await this.#dispatch.readAhead()
          await this.#dispatchReady()
        } while (this.#pumpAgain && !this.#closed)
      } catch (err) {
        this.#logger?.warn({ group: this.name, err }, 'dispatch failed')
      } finally {
        this.#pumpRun = undefined
      }
    })()
    return this.#pumpRun
  }

  async #dispatchReady(): Promise<void> {
    const d = this.#dispatch
    const ttl = this.config.messageTtlMs
    const now = this.#now()
    const rate = this.#rate
    let run: Member | undefined
    for (let c = d.next(); c !== undefined; c = d.next()) {
      if (expiryOf(c.record, ttl) <= now) {
        d.take()
        void this.#dead.kill(c.record, c.count, 'expired').catch(() => undefined)
        continue
      }
      // Fair mode gives the chosen member a contiguous run, up to its fetch and credit: interleaved
      // offsets across members would cut every ack into hundreds of settled ranges.
      const m = run !== undefined && run !== c.avoid && d.receptive(run) && d.free(run) > 0 ? run : d.pick(c.avoid)
      if (m === undefined) break
      if (this.config.dispatch === 'fair') run = m
      if (rate !== undefined) {
        const wait = rate.wait(1, now)
        if (wait > 0) {
          // Over deliveryRate: the rest waits in the log; come back when a token is there.
          this.#rateTimer ??= this.#clock.setTimeout(() => {
            this.#rateTimer = undefined
            void this.#pump()
          }, wait)
          break
        }
        rate.take(1, now)
      }
      m.assigned.push(d.take())
    }
    const completions: Promise<void>[] = []
    for (const m of d.members.values()) if ((m.waiter !== undefined || m.push !== undefined) && m.assigned.length > 0) completions.push(this.#complete(m))
    await Promise.all(completions)
  }

  // ---- settling --------------------------------------------------------------------------------

  #parseTag(tag: unknown): { offset: number; count: number; token: string | undefined } | TagStatus {
    if (typeof tag !== 'string') return 'unknown_tag'
    const t = parseDeliveryTag(tag)
    if (t === undefined) return 'unknown_tag'
    const offset = t.offset
    // A tag of an earlier generation (before a reset or a reopen) never settles anything.
    if (t.generation !== this.#state.generation) return this.#state.isSettled(offset) ? 'already_settled' : offset >= this.#log.endOffset ? 'unknown_tag' : 'stale_tag'
    return t
  }

  /** Finds the in-flight delivery a tag names and `as` may settle, or why it is not one. */
  #lookup(tag: unknown, as: SettleAs | undefined): Inflight | TagStatus {
    const t = this.#parseTag(tag)
    if (typeof t === 'string') return t
    const entry = this.#dispatch.inflight.get(t.offset)
    if (entry === undefined || entry.count !== t.count) {
      if (this.#state.isSettled(t.offset)) return 'already_settled'
      return entry === undefined && t.offset >= this.#log.endOffset ? 'unknown_tag' : 'stale_tag'
    }
    const m = entry.member
    // A guessed tag (no token, or another member's) settles nothing, as RabbitMQ refuses a
    // delivery tag from another channel.
    if (t.token !== m.token) return 'not_yours'
    if (as?.consumer !== undefined && as.consumer !== m.name) return 'not_yours'
    if (as?.user !== undefined && m.user !== undefined && as.user !== m.user) {
      if (as.admin !== true) return 'not_yours'
      this.#logger?.info({ group: this.name, offset: t.offset, member: m.name, memberUser: m.user, by: as.user }, 'settled on behalf of another user')
    }
    return entry
  }

  async ack(tags: readonly unknown[], as?: SettleAs): Promise<TagResult[]> {
    const results: TagResult[] = []
    const taken: Inflight[] = []
    for (const tag of tags) {
      const entry = this.#lookup(tag, as)
      if (typeof entry === 'string') {
        results.push({ tag: String(tag), status: entry })
        continue
      }
      // Released at once: the same tag twice in one ack settles once.
      this.#dispatch.release(entry)
      taken.push(entry)
      results.push({ tag: String(tag), status: 'ok' })
    }
    await this.#ackReleased(taken)
    return results
  }

  /** Settles for good deliveries just released from flight: the one path of ack and ackThrough. */
  async #ackReleased(taken: readonly Inflight[]): Promise<void> {
    this.#deadlines.compact(this.#dispatch.inflight.size + this.#scheduled.size)
    if (taken.length === 0) return
    this.counters.acked += taken.length
    // The credit is free now: the next deliveries go out while the settlement syncs, instead of
    // one fsync after it (a consumer acking each message, as Celery does, waited for each).
    void this.#pump()
    await this.#settle(taken.map((e) => e.record.offset))
  }

  /**
   * One ack for a run of deliveries to one member: every delivery it holds from the delivery
   * `from` names (the first it holds when absent) through the one `to` names, in the order they
   * were delivered to it, as AMQP's basic.ack with `multiple` settles. Both tags must name
   * deliveries in flight with the same member; otherwise nothing is settled and the failing tag
   * says why. An HTTP ack of a whole fetch is then two tags instead of a thousand.
   */
  async ackThrough(to: unknown, from: unknown, as?: SettleAs): Promise<{ settled: number; failed: TagResult[] }> {
    const last = this.#lookup(to, as)
    if (typeof last === 'string') return { settled: 0, failed: [{ tag: String(to), status: last }] }
    let first: Inflight | undefined
    if (from !== undefined) {
      const f = this.#lookup(from, as)
      if (typeof f === 'string') return { settled: 0, failed: [{ tag: String(from), status: f }] }
      if (f.member !== last.member) return { settled: 0, failed: [{ tag: String(from), status: 'not_yours' }] }
      first = f
    }
    const m = last.member
    const inflight = this.#dispatch.inflight
    const taken: Inflight[] = []
    // A member's in-flight set keeps delivery order; the run is what lies between the two ends.
    const ends = first === undefined || first === last ? 1 : 2
    let inRun = first === undefined
    let seen = 0
    for (const offset of m.inflight) {
      const entry = inflight.get(offset)
      if (entry === undefined) continue
      if (entry === first || entry === last) {
        inRun = true
        seen++
      }
      if (inRun) taken.push(entry)
      if (seen === ends) break
    }
    for (const entry of taken) this.#dispatch.release(entry)
    await this.#ackReleased(taken)
    return { settled: taken.length, failed: [] }
  }

  async nack(tags: readonly unknown[], opts: { requeue: boolean; delayMs?: number | undefined; reason?: string | undefined }, as?: SettleAs): Promise<TagResult[]> {
    const results: TagResult[] = []
    const work: Promise<void>[] = []
    const retries: Array<{ offset: number; count: number; record: StoredRecord }> = []
    for (const tag of tags) {
      const entry = this.#lookup(tag, as)
      if (typeof entry === 'string') {
        results.push({ tag: String(tag), status: entry })
        continue
      }
      this.#dispatch.release(entry)
      this.counters.nacked++
      results.push({ tag: String(tag), status: 'ok' })
      if (!opts.requeue) work.push(this.#dead.kill(entry.record, entry.count, 'rejected', opts.reason))
      else retries.push({ offset: entry.record.offset, count: entry.count, record: entry.record })
    }
    if (retries.length > 0) work.push(this.#retry(retries, opts.delayMs))
    await Promise.all(work)
    void this.#pump()
    return results
  }

  /**
   * Deliveries that never reached their consumer (its connection closed before the answer was
   * written): back to the group at once, ahead of fresh events, their delivery count unchanged.
   * Tags that are not in flight any more are left alone. Returns how many went back.
   */
  returnUndelivered(tags: readonly unknown[]): number {
    let n = 0
    for (const tag of tags) {
      const entry = this.#lookup(tag, undefined)
      if (typeof entry === 'string') continue
      this.#dispatch.release(entry)
      this.#dispatch.ready({ record: entry.record, count: entry.count - 1, seen: true })
      n++
    }
    if (n > 0) void this.#pump()
    return n
  }

  /** Resets the ack timer of in-flight deliveries, for long work. */
  extend(tags: readonly unknown[], as?: SettleAs): TagResult[] {
    const now = this.#now()
    return tags.map((tag) => {
      const entry = this.#lookup(tag, as)
      if (typeof entry === 'string') return { tag: String(tag), status: entry }
      entry.stamp = this.#deadlines.add('ack', entry.record.offset, now + this.config.ackTimeoutMs)
      entry.member.lastSeen = now
      return { tag: String(tag), status: 'ok' as const }
    })
  }

  /** Marks offsets settled, moves the cursor, and resolves once that is durable. */
  async #settle(offsets: readonly number[], extra: readonly MetaOp[] = []): Promise<void> {
    await this.#meta.write(this.#state.settle(toRanges(offsets), offsets, extra), { sync: true })
  }

  // ---- redelivery --------------------------------------------------------------------------------

  /** Schedules redelivery after the backoff (or `delayMs`), or dead-letters at the delivery limit. */
  async #retry(items: Array<{ offset: number; count: number; record: StoredRecord; avoid?: Member }>, delayMs?: number): Promise<void> {
    const ops: MetaOp[] = []
    const deaths: Promise<void>[] = []
    const now = this.#now()
    for (const it of items) {
      const limit = this.config.maxDeliveries
      if (limit > 0 && it.count >= limit) {
        deaths.push(this.#dead.kill(it.record, it.count, 'delivery_limit'))
        continue
      }
      const due = now + (delayMs ?? retryDelayMs(this.config.retryBackoff, it.count, this.#random))
      // Requeued with no delay (AMQP basic.nack/reject/recover with requeue, a member leaving):
      // ready at once, ahead of fresh events, as RabbitMQ puts it back at the head of the queue,
      // so the next dispatch (a basic.get right after) sees it without waiting for the timer.
      if (due <= now) this.#dispatch.ready({ record: it.record, count: it.count, seen: true, avoid: it.avoid })
      else this.#schedule(it.offset, it.count, due, it.avoid)
      ops.push(this.#state.retryOp(it.offset, it.count, due))
    }
    // Not synced: losing a due time in a crash only brings the event back sooner.
    if (ops.length > 0) deaths.push(this.#meta.write(ops, { sync: false }))
    await Promise.all(deaths)
  }

  #schedule(offset: number, count: number, due: number, avoid?: Member): void {
    const stamp = this.#deadlines.add('retry', offset, due)
    this.#scheduled.set(offset, { count, stamp, avoid })
  }

  async #loadDueRetries(): Promise<void> {
    if (this.#retryDue.length === 0) return
    const due = this.#retryDue
    this.#retryDue = []
    for (const offset of due) {
      const s = this.#scheduled.get(offset)
      if (s === undefined) continue
      this.#scheduled.delete(offset)
      if (offset < this.#log.startOffset) continue // retention took it
      const { records } = await this.#log.read(offset, { maxRecords: 1 })
      const r = records[0]
      if (r === undefined || r.offset !== offset) continue
      this.#dispatch.ready({ record: copyRecord(r), count: s.count, seen: true, avoid: s.avoid })
    }
  }

  #live(d: Deadline): boolean {
    if (d.kind === 'ack') return this.#dispatch.inflight.get(d.offset)?.stamp === d.stamp
    return this.#scheduled.get(d.offset)?.stamp === d.stamp
  }

  #onDue(due: readonly Deadline[]): void {
    const timedOut: Array<{ offset: number; count: number; record: StoredRecord; avoid: Member }> = []
    for (const d of due) {
      if (d.kind === 'ack') {
        const entry = this.#dispatch.inflight.get(d.offset)
        if (entry === undefined) continue
        // The member stays; only this delivery goes back, on the same schedule as a nack.
        this.#dispatch.inflight.delete(d.offset)
        entry.member.inflight.delete(d.offset)
        this.counters.ackTimeouts++
        timedOut.push({ offset: d.offset, count: entry.count, record: entry.record, avoid: entry.member })
      } else this.#retryDue.push(d.offset)
    }
    const next = timedOut.length > 0 ? this.#retry(timedOut) : Promise.resolve()
    next.then(
      () => this.#pump(),
      (err: unknown) => this.#logger?.warn({ group: this.name, err }, 'redelivery scheduling failed'),
    )
  }

  // ---- expiry and overflow -----------------------------------------------------------------------

  /**
   * Dead-letters expired events at the head of the group, consumer or not, as RabbitMQ expires
   * messages at the head of a queue: a delay queue (a TTL, a dead-letter exchange, nobody
   * consuming) depends on it. Stops at the first live event and wakes when that one is due.
   */
  async #expireHead(): Promise<void> {
    const ttl = this.config.messageTtlMs
    const d = this.#dispatch
    const deaths: Promise<void>[] = []
    for (;;) {
      let c = d.next()
      if (c === undefined) {
        await d.readAhead()
        c = d.next()
        if (c === undefined) break
      }
      const at = expiryOf(c.record, ttl)
      if (at > this.#now()) {
        // No TTL at all is Infinity, which setTimeout would take as 1 ms: a pump every millisecond.
        if (Number.isFinite(at)) this.#armExpiry(at)
        break
      }
      if (deaths.length >= overflowBatchMax) {
        this.#pumpAgain = true
        break
      }
      d.take()
      deaths.push(this.#dead.kill(c.record, c.count, 'expired'))
    }
    // A failed dead-letter puts the event back for redelivery (see DeadLetterer).
    await Promise.allSettled(deaths)
  }

  #armExpiry(at: number): void {
    if (this.#closed || (this.#expiryTimer !== undefined && this.#expiryAt <= at)) return
    if (this.#expiryTimer !== undefined) this.#clock.clearTimeout(this.#expiryTimer)
    this.#expiryAt = at
    this.#expiryTimer = this.#clock.setTimeout(
      () => {
        this.#expiryTimer = undefined
        this.#expiryAt = Number.POSITIVE_INFINITY
        void this.#pump()
      },
      Math.max(0, at - this.#now()),
    )
  }

  /**
   * `overflow: dead-letter`: the oldest events never delivered go, until the backlog is within
   * both `maxBacklog` events and `maxBacklogBytes` stored bytes.
   */
  async #enforceBacklog(): Promise<void> {
    if (this.config.overflow !== 'dead-letter') return
    const max = this.config.maxBacklog
    const maxBytes = this.config.maxBacklogBytes
    const sizes = this.#sizes
    // Parked events stay in the backlog (they hold the cursor) but overflow cannot move them
    // again: counted, they would make every dispatch park the rest. Deaths already queued are
    // on their way out.
    let excess = max === null ? 0 : this.backlog - this.#state.parkedCount - this.#dead.pending - max
    let excessBytes = 0
    if (maxBytes !== null && sizes !== undefined) {
      let parkedBytes = 0
      for (const o of this.#state.parkedOffsets()) parkedBytes += sizes.bytes(o, o + 1)
      excessBytes = this.backlogBytes - parkedBytes - this.#dead.pendingBytes - maxBytes
    }
    if (excess <= 0 && excessBytes <= 0) return
    const deaths: Promise<void>[] = []
    while ((excess > 0 || excessBytes > 0) && deaths.length < overflowBatchMax) {
      const c = await this.#dispatch.takeFresh(excess > 0 ? Math.min(excess, overflowBatchMax) : overflowReadAhead)
      if (c === undefined) break
      deaths.push(this.#dead.kill(c.record, c.count, 'maxlen'))
      excess--
      excessBytes -= storedRecordBytes(c.record)
    }
    if ((excess > 0 || excessBytes > 0) && deaths.length >= overflowBatchMax) this.#pumpAgain = true
    await Promise.all(deaths)
  }

  // ---- members' sessions -------------------------------------------------------------------------

  #sweepMembers(): void {
    let returned = false
    for (const m of this.#dispatch.stale(this.config.sessionTimeoutMs)) {
      // Gone: what it held goes back to the group at once.
      const assigned = m.assigned.length
      const held = this.#removeMember(m)
      returned ||= assigned > 0
      this.#logger?.info({ group: this.name, member: m.name, returned: held.length + assigned }, 'member session timed out')
      this.#giveBack(held)
    }
    if (returned || this.#dispatch.hasRetries) void this.#pump()
  }

  /** Wakes the dispatcher when the stream grows, so waiting fetches and overflow see new events. */
  async #watch(): Promise<void> {
    let seen = this.#log.endOffset
    while (!this.#closed) {
      const grew = await this.#log.waitFor(seen, 30_000)
      if (this.#closed) return
      if (grew) {
        seen = this.#log.endOffset
        await this.#pump()
      }
    }
  }

  // ---- administration --------------------------------------------------------------------------

  /** Moves the cursor (replay or skip): everything in flight or scheduled is forgotten. */
  async reset(to: StartPosition): Promise<number> {
    const offset = await this.#startOffset(to)
    const ops = this.#state.reset(offset)
    this.#scheduled.clear()
    this.#deadlines.clear()
    this.#retryDue = []
    this.#dispatch.forgetDeliveries()
    this.#dispatch.restartAt(offset)
    await this.#meta.write(ops, { sync: true })
    if (this.#sizes !== undefined) {
      // The cursor may have gone back past the sizes kept: read them again from there.
      this.#sizes.close()
      this.#sizes = undefined
      this.#sizes = await RecordSizes.open(this.#stream, offset)
    }
    void this.#pump()
    return offset
  }

  /** Removes every key of this group from the metadata store (the group is being deleted). */
  async purgeState(): Promise<void> {
    const ops: MetaOp[] = [this.#ks.record.delOp([this.name])]
    for await (const { key } of this.#ks.settled.iterate({ prefix: [this.name] })) ops.push(this.#ks.settled.delOp(key))
    for await (const { key } of this.#ks.deliveries.iterate({ prefix: [this.name] })) ops.push(this.#ks.deliveries.delOp(key))
    for await (const { key } of this.#ks.parked.iterate({ prefix: [this.name] })) ops.push(this.#ks.parked.delOp(key))
    await this.#meta.write(ops, { sync: true })
  }

  /** Settles everything unsettled now (AMQP queue.purge); returns how many. */
  async purge(): Promise<number> {
    const n = this.backlog - this.#dispatch.inflight.size
    const end = this.#log.endOffset
    const ops = this.#state.purge(end, new Set(this.#dispatch.inflight.keys()))
    this.#scheduled.clear()
    this.#dispatch.restartAt(end)
    await this.#meta.write(ops, { sync: true })
    return Math.max(0, n)
  }

  /** Events parked here (dead-lettered with no dead-letter target): unsettled, never delivered again unless redriven. */
  get parkedCount(): number {
    return this.#state.parkedCount
  }

  get inFlightCount(): number {
    return this.#dispatch.inflight.size
  }

  consumerCount(): number {
    let n = 0
    for (const m of this.#dispatch.members.values()) if (m.push !== undefined) n++
    return n
  }

  parkedEvents(limit: number): ParkedEvent[] {
    return this.#state.parkedEvents(limit)
  }

  /** Puts parked events back up for delivery, with their delivery count reset. */
  async redriveParked(limit: number): Promise<number> {
    const chosen = this.#state.parkedEvents(limit)
    await this.#meta.write(this.#state.unpark(chosen.map((p) => p.offset)), { sync: true })
    for (const p of chosen) this.#schedule(p.offset, 0, this.#now())
    return chosen.length
  }

  /** Settles parked events for good. */
  async purgeParked(limit: number): Promise<number> {
    const chosen = this.#state.parkedEvents(limit)
    await this.#meta.write(this.#state.dropParked(chosen.map((p) => p.offset)), { sync: true })
    return chosen.length
  }

  /** Seconds since the oldest unsettled event was stored (0 when there is none). */
  async lagSeconds(): Promise<number> {
    const log = this.#log
    const cursor = this.#state.cursor
    if (cursor >= log.endOffset || this.backlog === 0) return 0
    if (this.#lagCache?.cursor !== cursor) {
      const { records } = await log.read(Math.max(cursor, log.startOffset), { maxRecords: 1 })
      if (records[0] === undefined) return 0
      this.#lagCache = { cursor, timestamp: records[0].timestamp }
    }
    return Math.max(0, (this.#now() - this.#lagCache.timestamp) / 1000)
  }

  async stats(): Promise<GroupStats> {
    const d = this.#dispatch
    return {
      name: this.name,
      stream: this.#stream.name,
      cursor: this.#state.cursor,
      backlog: this.backlog,
      lagSeconds: Math.round((await this.lagSeconds()) * 1000) / 1000,
      inFlight: d.inflight.size,
      ...this.counters,
      deadLettered: { ...this.#dead.counts },
      parked: this.#state.parkedCount,
      members: [...d.members.values()].map((m) => ({ name: m.name, inFlight: m.inflight.size, assigned: m.assigned.length, credit: Math.max(0, d.free(m)), lastSeen: new Date(m.lastSeen).toISOString() })),
    }
  }

  /** Dead-lettered so far, by reason. */
  get deadLettered(): Readonly<Record<DeathReason, number>> {
    return this.#dead.counts
  }

  /**
   * Closes the group for a handover of its stream to another node: push consumers are told they
   * lost it (AMQP basic.cancel), every member's deliveries go back as delivered (redelivered
   * wherever the group opens next), and the metadata store then holds all of its state.
   */
  async handOff(): Promise<void> {
    const lost = [...this.#lost.values()]
    this.#lost.clear()
    for (const tell of lost) {
      try {
        tell()
      } catch (err) {
        this.#logger?.warn({ group: this.name, err }, 'a consumer could not be told of the handover')
      }
    }
    for (const name of [...this.#dispatch.members.keys()]) this.unsubscribe(name, true)
    await Promise.all([...this.#givingBack])
    await this.close()
    await Promise.all([...this.#givingBack])
  }

  async close(): Promise<void> {
    if (!this.#closed) this.#members?.give(this.#dispatch.members.size)
    this.#closed = true
    this.#deadlines.close()
    if (this.#sweep !== undefined) this.#clock.clearTimeout(this.#sweep)
    if (this.#rateTimer !== undefined) this.#clock.clearTimeout(this.#rateTimer)
    if (this.#expiryTimer !== undefined) this.#clock.clearTimeout(this.#expiryTimer)
    for (const m of this.#dispatch.members.values()) this.#answer(m, [])
    this.#sizes?.close()
    await this.#pumpRun
    await this.#dead.drained()
  }
}

function copyRecord(r: StoredRecord): StoredRecord {
  return { ...r, body: Buffer.from(r.body), headers: r.headers === undefined ? undefined : Buffer.from(r.headers) }
}
