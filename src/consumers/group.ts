import type { GroupConfig, StartPosition } from '../config/index.js'
import { errors, SluiceError } from '../errors.js'
import type { LogLogger, StoredRecord } from '../log/index.js'
import { deliveryStateCodec, settledRangeCodec, str, u64, type DeliveryState, type Keyspace, type MetaOp, type MetaStore, type SettledRange, type ValueCodec } from '../meta/index.js'
import type { Stream } from '../streams/registry.js'
import { retryDelayMs } from './backoff.js'
import { deadLetterRecord, safeParse, type DeadLetterSink, type Death, type DeathReason } from './dead-letter.js'
import { expiryOf } from './expiry.js'
import { IntervalSet, RangeChange } from './interval-set.js'
import { TokenBucket } from '../flow/token-bucket.js'
import { DeadlineHeap, type Deadline } from './timer-heap.js'

/** What a consumer receives. `tag` names this delivery; it goes stale when the event is redelivered. */
export interface Delivery {
  readonly tag: string
  readonly record: StoredRecord
  readonly deliveryCount: number
  readonly redelivered: boolean
}

export type TagStatus = 'ok' | 'unknown_tag' | 'stale_tag' | 'already_settled'

export interface TagResult {
  readonly tag: string
  readonly status: TagStatus
}

export interface ParkedEvent {
  readonly offset: number
  readonly reason: DeathReason
  readonly deliveryCount: number
  readonly time: number
  readonly error?: string | undefined
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

/** The durable part of a group besides its settled ranges and per-event state. */
interface GroupRecord {
  cursor: number
  generation: number
  /** One past the highest offset ever delivered: unsettled events below it were maybe seen. */
  delivered: number
}

/** The four keyspaces a group's state lives in; groups are their only writers (namespaces.ts). */
export interface GroupKeyspaces {
  readonly record: Keyspace<[string], GroupRecord>
  readonly settled: Keyspace<[string, number], SettledRange>
  readonly deliveries: Keyspace<[string, number], DeliveryState>
  readonly parked: Keyspace<[string, number], ParkedEvent>
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
  readonly now?: () => number
  readonly random?: () => number
}

interface Candidate {
  readonly record: StoredRecord
  /** Deliveries so far. */
  readonly count: number
  /** Shown as redelivered: it was delivered before, maybe before a restart. */
  readonly seen: boolean
  /** The member whose delivery of it timed out; dispatch prefers another one (see #pick). */
  readonly avoid?: Member | undefined
}

interface Inflight {
  readonly member: Member
  readonly record: StoredRecord
  readonly count: number
  stamp: number
}

interface Waiter {
  resolve: (d: Delivery[]) => void
  timer: NodeJS.Timeout | undefined
}

interface Member {
  readonly name: string
  lastSeen: number
  readonly inflight: Set<number>
  assigned: Candidate[]
  /** Events the current fetch still takes; 0 when not fetching. */
  want: number
  waiter: Waiter | undefined
  /** A push consumer (AMQP basic.consume): deliveries are handed to it as they are dispatched. */
  push: ((deliveries: Delivery[]) => void) | undefined
  /** Its own credit (AMQP basic.qos), else the group's prefetch. */
  prefetch: number | undefined
  /** Cancelled push consumer kept only to settle what it holds: it takes nothing new. */
  retired: boolean
}

interface Scheduled {
  readonly count: number
  readonly stamp: number
  readonly avoid?: Member | undefined
}

interface PendingDeath extends Death {
  readonly count: number
  readonly done: (err?: unknown) => void
}

const readAheadBytes = 256 * 1024
const sweepEveryMs = 1000
const overflowBatchMax = 10_000

/**
 * A consumer group: a durable cursor on one stream whose members compete for its events.
 *
 * Memory is O(in flight + settled ranges + parked): the backlog stays in the log and is read
 * ahead only as far as members have credit. Durable state: the cursor and settled ranges above
 * it (written on every ack, synced, group-committed by the metadata store), retry state of
 * nacked events, parked events, and the delivered high-water mark.
 */
export class ConsumerGroup {
  readonly name: string
  readonly config: GroupConfig
  readonly #stream: Stream
  readonly #meta: MetaStore
  readonly #ks: GroupKeyspaces
  readonly #sink: DeadLetterSink | undefined
  readonly #logger: LogLogger | undefined
  readonly #now: () => number
  readonly #random: () => number

  #generation = 0
  #cursor = 0
  readonly #settled = new IntervalSet()
  #readOffset = 0
  #deliveredEnd = 0
  /** Offsets at or after readOffset that a fresh read must pass over (retries and parked after a restart). */
  readonly #skip = new Set<number>()
  /** Persisted delivery counts of events delivered before a restart. */
  readonly #priorCounts = new Map<number, number>()
  /** Offsets with a key in the deliveries keyspace, deleted when they settle. */
  readonly #persistedDelivery = new Set<number>()
  readonly #inflight = new Map<number, Inflight>()
  readonly #scheduled = new Map<number, Scheduled>()
  readonly #parked = new Map<number, ParkedEvent>()
  #retryDue: number[] = []
  #retryReady: Candidate[] = []
  #fresh: Candidate[] = []
  #deaths: PendingDeath[] = []
  #deathRun: Promise<void> | undefined
  readonly #members = new Map<string, Member>()
  #ring: Member[] = []
  #ringPos = 0
  readonly #heap = new DeadlineHeap()
  #timer: NodeJS.Timeout | undefined
  #timerAt = Number.POSITIVE_INFINITY
  #sweep: NodeJS.Timeout | undefined
  #stampSeq = 0
  #pumpRun: Promise<void> | undefined
  #pumpAgain = false
  #closed = false
  /** deliveryRate: a bucket of a tenth of a second, so a stored burst drains at the set pace. */
  readonly #rate: TokenBucket | undefined
  #rateTimer: NodeJS.Timeout | undefined
  #expiryTimer: NodeJS.Timeout | undefined
  #expiryAt = Number.POSITIVE_INFINITY
  #lagCache: { cursor: number; timestamp: number } | undefined

  readonly counters = { delivered: 0, acked: 0, nacked: 0, redelivered: 0, ackTimeouts: 0, deadLettered: { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0 } }

  private constructor(config: GroupConfig, deps: GroupDeps) {
    this.name = config.name
    this.config = config
    this.#stream = deps.stream
    this.#meta = deps.meta
    this.#ks = deps.keyspaces
    this.#sink = deps.deadLetter
    this.#logger = deps.logger
    this.#now = deps.now ?? Date.now
    this.#random = deps.random ?? Math.random
    const r = config.deliveryRatePerSec
    this.#rate = r === null ? undefined : new TokenBucket(r, Math.max(1, Math.ceil(r / 10)), this.#now())
  }

  static async open(config: GroupConfig, deps: GroupDeps): Promise<ConsumerGroup> {
    const g = new ConsumerGroup(config, deps)
    await g.#load()
    g.#sweep = setInterval(() => g.#sweepMembers(), sweepEveryMs)
    g.#sweep.unref()
    void g.#watch()
    return g
  }

  get stream(): string {
    return this.#stream.name
  }

  get #log() {
    return this.#stream.log
  }

  // ---- state -----------------------------------------------------------------------------------

  async #load(): Promise<void> {
    const log = this.#log
    const saved = await this.#ks.record.get([this.name])
    if (saved === undefined) {
      this.#cursor = await this.#startOffset(this.config.start)
      this.#generation = 1
      this.#deliveredEnd = this.#cursor
      await this.#meta.write([this.#recordOp()], { sync: true })
      return
    }
    // State at or past the log's end names events that are gone: a tail cut by recovery (fsync:
    // never and a power cut, or fsck --repair). Those offsets will be reused by new events, so
    // every piece of it is dropped here, before it can settle, skip or count an event it never saw.
    const end = log.endOffset
    const clamp: MetaOp[] = []
    this.#generation = saved.generation
    this.#cursor = Math.min(saved.cursor, end)
    this.#deliveredEnd = Math.min(saved.delivered, end)
    for await (const { key, value } of this.#ks.settled.iterate({ prefix: [this.name] })) {
      const start = key[1]
      if (start >= end) clamp.push(this.#ks.settled.delOp(key))
      else if (value.end > end) clamp.push(this.#ks.settled.putOp(key, { end }))
      if (start < end) this.#settled.add(start, Math.min(value.end, end))
    }
    for await (const { key, value } of this.#ks.deliveries.iterate({ prefix: [this.name] })) {
      const offset = key[1]
      if (offset >= end) {
        clamp.push(this.#ks.deliveries.delOp(key))
        continue
      }
      this.#persistedDelivery.add(offset)
      this.#priorCounts.set(offset, value.count)
      if (value.dueAtMs !== null && !value.parked) {
        // A nack's backoff survives the restart.
        this.#skip.add(offset)
        this.#schedule(offset, value.count, value.dueAtMs)
      }
    }
    for await (const { key, value } of this.#ks.parked.iterate({ prefix: [this.name] })) {
      if (key[1] >= end) {
        clamp.push(this.#ks.parked.delOp(key))
        continue
      }
      this.#parked.set(key[1], value)
      this.#skip.add(key[1])
    }
    // Retention may have dropped events this group never settled; the log has moved on.
    if (this.#cursor < log.startOffset) this.#cursor = log.startOffset
    this.#settled.dropBelow(this.#cursor)
    for (let r = this.#settled.takeAt(this.#cursor); r !== undefined; r = this.#settled.takeAt(this.#cursor)) this.#cursor = r[1]
    this.#readOffset = this.#cursor
    if (clamp.length > 0 || saved.cursor > end || saved.delivered > end) {
      this.#logger?.warn({ group: this.name, stream: this.stream, logEnd: end, cursor: saved.cursor, delivered: saved.delivered, dropped: clamp.length }, 'group state past the end of its log dropped')
      await this.#meta.write([...clamp, this.#recordOp()], { sync: true })
    }
  }

  async #startOffset(start: StartPosition): Promise<number> {
    const log = this.#log
    switch (start.kind) {
      case 'earliest':
        return log.startOffset
      case 'latest':
        return log.endOffset
      case 'offset':
        return Math.min(Math.max(start.offset, log.startOffset), log.endOffset)
      case 'time':
        return log.offsetForTime(start.timeMs)
    }
  }

  #recordOp(): MetaOp {
    return this.#ks.record.putOp([this.name], { cursor: this.#cursor, generation: this.#generation, delivered: this.#deliveredEnd })
  }

  /** Lowest unsettled offset. */
  get cursor(): number {
    return this.#cursor
  }

  /**
   * The backlog counting appends still on their way to disk: what publish admission must use, or
   * publishes racing each other's fsync could all pass a full group.
   */
  get backlogWithPending(): number {
    return Math.max(0, this.#log.nextOffset - this.#cursor - this.#settled.count)
  }

  /** Unsettled events: the backlog, in flight and parked included. */
  get backlog(): number {
    return Math.max(0, this.#log.endOffset - this.#cursor - this.#settled.count)
  }

  // ---- consuming -------------------------------------------------------------------------------

  #member(name: string): Member {
    let m = this.#members.get(name)
    if (m === undefined) {
      m = { name, lastSeen: this.#now(), inflight: new Set(), assigned: [], want: 0, waiter: undefined, push: undefined, prefetch: undefined, retired: false }
      this.#members.set(name, m)
      this.#ring.push(m)
    }
    m.lastSeen = this.#now()
    return m
  }

  #free(m: Member): number {
    if (m.retired) return 0
    return (m.prefetch ?? this.config.prefetch) - m.inflight.size - m.assigned.length
  }

  /** Receptive now: a waiting fetch with room left, or a push consumer. */
  #receptive(m: Member): boolean {
    return m.push !== undefined || (m.waiter !== undefined && m.assigned.length < m.want)
  }

  /**
   * A push consumer: events are handed to `deliver` as they are dispatched, up to `prefetch` in
   * flight (0 = the group's prefetch). The same member name may not also fetch.
   */
  subscribe(consumer: string, prefetch: number, deliver: (deliveries: Delivery[]) => void): void {
    if (this.#closed) throw errors.groupClosed(this.name)
    const m = this.#member(consumer)
    m.push = deliver
    m.retired = false
    m.prefetch = prefetch > 0 ? prefetch : undefined
    void this.#pump()
  }

  /** Changes a push consumer's credit (AMQP basic.qos after consume). */
  setPrefetch(consumer: string, prefetch: number): void {
    const m = this.#members.get(consumer)
    if (m === undefined) return
    m.prefetch = prefetch > 0 ? prefetch : undefined
    void this.#pump()
  }

  /**
   * Stops pushing to a consumer. With `release`, what it holds goes back to the group at once
   * (its channel closed); without, its in-flight events stay its to ack (AMQP basic.cancel).
   */
  unsubscribe(consumer: string, release: boolean): void {
    const m = this.#members.get(consumer)
    if (m === undefined) return
    m.push = undefined
    m.retired = true
    this.#retryReady.unshift(...m.assigned)
    m.assigned = []
    if (release) this.#dropMember(m)
    void this.#pump()
  }

  #dropMember(m: Member): void {
    this.#members.delete(m.name)
    this.#ring = this.#ring.filter((x) => x !== m)
    const back: Array<{ offset: number; count: number; record: StoredRecord }> = []
    for (const offset of m.inflight) {
      const entry = this.#inflight.get(offset)
      if (entry === undefined) continue
      this.#inflight.delete(offset)
      back.push({ offset, count: entry.count, record: entry.record })
    }
    m.inflight.clear()
    this.#retryReady.unshift(...m.assigned)
    m.assigned = []
    if (back.length > 0) void this.#retry(back, 0).then(() => this.#pump())
  }

  /**
   * Up to `max` deliveries for `consumer`, waiting up to `waitMs` for the first. A member has one
   * fetch at a time; a new one answers the previous one empty.
   */
  async fetch(consumer: string, max: number, waitMs: number): Promise<Delivery[]> {
    if (this.#closed) throw errors.groupClosed(this.name)
    const m = this.#member(consumer)
    if (m.waiter !== undefined) this.#answer(m, [])
    m.want = max
    const done = new Promise<Delivery[]>((resolve) => {
      m.waiter = { resolve, timer: undefined }
    })
    if (m.assigned.length > 0) await this.#complete(m)
    else await this.#pump()
    if (m.waiter !== undefined) {
      if (waitMs <= 0) this.#answer(m, [])
      else {
        const w = m.waiter
        w.timer = setTimeout(() => {
          if (m.waiter === w) this.#answer(m, [])
        }, waitMs)
      }
    }
    return done
  }

  #answer(m: Member, deliveries: Delivery[]): void {
    const w = m.waiter
    if (w === undefined) return
    m.waiter = undefined
    m.want = 0
    if (w.timer !== undefined) clearTimeout(w.timer)
    m.lastSeen = this.#now()
    w.resolve(deliveries)
  }

  /** Hands a member what was assigned to it, up to what its fetch asked for. */
  async #complete(m: Member): Promise<void> {
    const w = m.waiter ?? (m.push !== undefined ? { resolve: m.push, timer: undefined } : undefined)
    if (w === undefined || m.assigned.length === 0) return
    const take = m.assigned.splice(0, m.push !== undefined && m.waiter === undefined ? m.assigned.length : Math.max(1, m.want))
    // Fix: this fetch is answered below, after a metadata write. Detach its waiter now, so its
    // waitMs timer (or a newer fetch of the member) cannot answer it empty during the write and
    // leave these deliveries in flight with nobody holding them (auto mode: settled and lost).
    m.waiter = undefined
    m.want = 0
    if (w.timer !== undefined) clearTimeout(w.timer)
    const now = this.#now()
    const deliveredBefore = this.#deliveredEnd
    const out: Delivery[] = []
    const auto = this.config.ackMode === 'auto'
    for (const c of take) {
      const count = c.count + 1
      const offset = c.record.offset
      if (offset + 1 > this.#deliveredEnd) this.#deliveredEnd = offset + 1
      this.counters.delivered++
      if (c.seen) this.counters.redelivered++
      out.push({ tag: `${this.#generation}-${offset}-${count}`, record: c.record, deliveryCount: count, redelivered: c.seen })
      if (!auto) {
        const stamp = ++this.#stampSeq
        this.#inflight.set(offset, { member: m, record: c.record, count, stamp })
        m.inflight.add(offset)
        this.#heap.push({ at: now + this.config.ackTimeoutMs, offset, kind: 'ack', stamp })
      }
    }
    if (auto) {
      // At most once: settled, durably, before the consumer sees it.
      try {
        await this.#settle(take.map((c) => c.record.offset))
      } catch (err) {
        w.resolve([])
        throw err
      }
      this.counters.acked += take.length
    } else {
      this.#arm()
      // Fix: the delivered high-water mark used to be written only with a settle (ack, dead
      // letter, reset), so events delivered after the group's last ack came back after a restart
      // as `redelivered: false, deliveryCount: 1`. It is now in the metadata store before the
      // consumer sees the events. Not synced, like a nack's due time: it survives a process
      // crash; a power cut can only turn a redelivered flag back to false, never lose an event.
      // Not awaited: the write is queued in order before any later ack's, and waiting for it put
      // an ack batch's fsync in front of every fetch answer (p99 publish-to-delivery). A crash
      // before it lands can only turn a redelivered flag back to false.
      if (this.#deliveredEnd > deliveredBefore) {
        this.#meta.write([this.#recordOp()], { sync: false }).catch((err: unknown) => this.#logger?.warn({ group: this.name, err }, 'could not record the delivered mark'))
      }
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
          await this.#readAhead()
          await this.#dispatch()
        } while (this.#pumpAgain && !this.#closed)
      } catch (err) {
        this.#logger?.warn({ group: this.name, err }, 'dispatch failed')
      } finally {
        this.#pumpRun = undefined
      }
    })()
    return this.#pumpRun
  }

  #demand(): number {
    let d = 0
    for (const m of this.#members.values()) {
      const free = this.#free(m)
      if (free <= 0) continue
      if (this.config.dispatch === 'round-robin') d += free
      else if (m.push !== undefined) d += free
      else if (m.waiter !== undefined) d += Math.min(free, m.want - m.assigned.length)
    }
    return d
  }

  async #readAhead(): Promise<void> {
    const log = this.#log
    const target = Math.max(64, this.#demand())
    while (this.#fresh.length < target && this.#readOffset < log.endOffset) {
      if (this.#readOffset < log.startOffset) this.#readOffset = log.startOffset
      const { records, nextOffset } = await log.read(this.#readOffset, { maxBytes: readAheadBytes })
      if (records.length === 0) break
      for (const r of records) {
        if (r.offset < this.#readOffset) continue
        if (this.#settled.has(r.offset)) continue
        if (this.#skip.delete(r.offset)) continue
        const prior = this.#priorCounts.get(r.offset)
        const seen = r.offset < this.#deliveredEnd
        // A view into the read buffer, not a copy: the events of one read are delivered together,
        // so the buffer lives about as long as they are in flight (copying each cost GC time).
        this.#fresh.push({ record: r, count: prior ?? (seen ? 1 : 0), seen })
      }
      this.#readOffset = this.#settled.skip(nextOffset)
    }
  }

  #nextCandidate(): Candidate | undefined {
    return this.#retryReady[0] ?? this.#fresh[0]
  }

  #takeCandidate(): Candidate {
    return (this.#retryReady.length > 0 ? this.#retryReady.shift() : this.#fresh.shift())!
  }

  /**
   * The member for the next event. Fix: an event whose ack timed out goes to another member
   * when one can take it now (the contract: "no ack within ackTimeout: redelivered to another
   * member"); before, the member that let it time out usually got it straight back. `avoid`
   * is only a preference: with no other member able to take it, its old member may.
   */
  #pick(avoid?: Member): Member | undefined {
    if (this.config.dispatch === 'round-robin') {
      // Members in turn, fetching or not: an event waits in its member's queue, as RabbitMQ's
      // round-robin pushes to each consumer in turn; credit still caps what a member holds.
      const n = this.#ring.length
      let fallback = -1
      for (let k = 0; k < n; k++) {
        const m = this.#ring[(this.#ringPos + k) % n]!
        if (this.#free(m) > 0) {
          if (m === avoid) {
            fallback = k
            continue
          }
          this.#ringPos = (this.#ringPos + k + 1) % n
          return m
        }
      }
      if (fallback === -1) return undefined
      this.#ringPos = (this.#ringPos + fallback + 1) % n
      return avoid
    }
    // Fair: the fetching member with the most free credit.
    let best: Member | undefined
    let bestFree = 0
    let avoided = false
    for (const m of this.#members.values()) {
      if (!this.#receptive(m)) continue
      const free = this.#free(m)
      if (m === avoid) {
        avoided = free > 0
        continue
      }
      if (free > bestFree) {
        best = m
        bestFree = free
      }
    }
    return best ?? (avoided ? avoid : undefined)
  }

  async #dispatch(): Promise<void> {
    const ttl = this.config.messageTtlMs
    const now = this.#now()
    const rate = this.#rate
    let run: Member | undefined
    for (let c = this.#nextCandidate(); c !== undefined; c = this.#nextCandidate()) {
      if (expiryOf(c.record, ttl) <= now) {
        this.#takeCandidate()
        void this.#die(c, 'expired').catch(() => undefined)
        continue
      }
      // Fair mode gives the chosen member a contiguous run, up to its fetch and credit: interleaved
      // offsets across members would cut every ack into hundreds of settled ranges.
      const m = run !== undefined && run !== c.avoid && this.#receptive(run) && this.#free(run) > 0 ? run : this.#pick(c.avoid)
      if (m === undefined) break
      if (this.config.dispatch === 'fair') run = m
      if (rate !== undefined) {
        const wait = rate.wait(1, now)
        if (wait > 0) {
          // Over deliveryRate: the rest waits in the log; come back when a token is there.
          this.#rateTimer ??= setTimeout(() => {
            this.#rateTimer = undefined
            void this.#pump()
          }, wait)
          break
        }
        rate.take(1, now)
      }
      m.assigned.push(this.#takeCandidate())
    }
    const completions: Promise<void>[] = []
    for (const m of this.#members.values()) if ((m.waiter !== undefined || m.push !== undefined) && m.assigned.length > 0) completions.push(this.#complete(m))
    await Promise.all(completions)
  }

  // ---- settling --------------------------------------------------------------------------------

  #parseTag(tag: unknown): { offset: number; count: number } | TagStatus {
    if (typeof tag !== 'string') return 'unknown_tag'
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(tag)
    if (m === null) return 'unknown_tag'
    if (Number(m[1]) !== this.#generation) return 'stale_tag'
    return { offset: Number(m[2]), count: Number(m[3]) }
  }

  /** Finds the in-flight delivery a tag names, or why it is not one. */
  #lookup(tag: unknown): Inflight | TagStatus {
    const t = this.#parseTag(tag)
    if (typeof t === 'string') return t
    const entry = this.#inflight.get(t.offset)
    if (entry === undefined || entry.count !== t.count) {
      if (t.offset < this.#cursor || this.#settled.has(t.offset)) return 'already_settled'
      return entry === undefined && t.offset >= this.#log.endOffset ? 'unknown_tag' : 'stale_tag'
    }
    return entry
  }

  #release(entry: Inflight): void {
    this.#inflight.delete(entry.record.offset)
    entry.member.inflight.delete(entry.record.offset)
    entry.member.lastSeen = this.#now()
  }

  async ack(tags: readonly unknown[]): Promise<TagResult[]> {
    const results: TagResult[] = []
    const offsets: number[] = []
    for (const tag of tags) {
      const entry = this.#lookup(tag)
      if (typeof entry === 'string') {
        results.push({ tag: String(tag), status: entry })
        continue
      }
      this.#release(entry)
      offsets.push(entry.record.offset)
      results.push({ tag: String(tag), status: 'ok' })
    }
    // Acked deliveries leave their ack deadlines behind in the heap (cancelled lazily); drop them
    // in one sweep once they outnumber the live ones, or a fast drain holds a deadline per event
    // for a whole ackTimeout.
    if (this.#heap.size > 2 * (this.#inflight.size + this.#scheduled.size) + 1024) this.#heap.retain((d) => this.#live(d))
    if (offsets.length > 0) {
      this.counters.acked += offsets.length
      await this.#settle(offsets)
      void this.#pump()
    }
    return results
  }

  async nack(tags: readonly unknown[], opts: { requeue: boolean; delayMs?: number | undefined; reason?: string | undefined }): Promise<TagResult[]> {
    const results: TagResult[] = []
    const work: Promise<void>[] = []
    const retries: Array<{ offset: number; count: number; record: StoredRecord }> = []
    for (const tag of tags) {
      const entry = this.#lookup(tag)
      if (typeof entry === 'string') {
        results.push({ tag: String(tag), status: entry })
        continue
      }
      this.#release(entry)
      this.counters.nacked++
      results.push({ tag: String(tag), status: 'ok' })
      if (!opts.requeue) work.push(this.#die({ record: entry.record, count: entry.count, seen: true }, 'rejected', opts.reason))
      else retries.push({ offset: entry.record.offset, count: entry.count, record: entry.record })
    }
    if (retries.length > 0) work.push(this.#retry(retries, opts.delayMs))
    await Promise.all(work)
    void this.#pump()
    return results
  }

  /** Resets the ack timer of in-flight deliveries, for long work. */
  extend(tags: readonly unknown[]): TagResult[] {
    const now = this.#now()
    return tags.map((tag) => {
      const entry = this.#lookup(tag)
      if (typeof entry === 'string') return { tag: String(tag), status: entry }
      entry.stamp = ++this.#stampSeq
      entry.member.lastSeen = now
      this.#heap.push({ at: now + this.config.ackTimeoutMs, offset: entry.record.offset, kind: 'ack', stamp: entry.stamp })
      this.#arm()
      return { tag: String(tag), status: 'ok' as const }
    })
  }

  /** Marks offsets settled, moves the cursor, and resolves once that is durable. */
  async #settle(offsets: number[], extra: MetaOp[] = []): Promise<void> {
    offsets.sort((a, b) => a - b)
    const ranges: Array<[number, number]> = []
    let i = 0
    while (i < offsets.length) {
      let j = i + 1
      while (j < offsets.length && offsets[j] === offsets[j - 1]! + 1) j++
      ranges.push([offsets[i]!, offsets[j - 1]! + 1])
      i = j
    }
    await this.#settleRanges(ranges, extra, offsets)
  }

  async #settleRanges(ranges: ReadonlyArray<readonly [number, number]>, extra: MetaOp[] = [], offsets: readonly number[] = []): Promise<void> {
    const change = new RangeChange()
    for (const [a, b] of ranges) this.#settled.add(a, b, change)
    for (let r = this.#settled.takeAt(this.#cursor, change); r !== undefined; r = this.#settled.takeAt(this.#cursor, change)) this.#cursor = r[1]
    const ops: MetaOp[] = [...extra, this.#recordOp()]
    for (const start of change.removed) ops.push(this.#ks.settled.delOp([this.name, start]))
    for (const [start, end] of change.upserts) ops.push(this.#ks.settled.putOp([this.name, start], { end }))
    for (const o of offsets) {
      if (this.#persistedDelivery.delete(o)) ops.push(this.#ks.deliveries.delOp([this.name, o]))
      this.#priorCounts.delete(o)
    }
    await this.#meta.write(ops, { sync: true })
  }

  // ---- redelivery and dead-lettering ------------------------------------------------------------

  /** Schedules redelivery after the backoff (or `delayMs`), or dead-letters at the delivery limit. */
  async #retry(items: Array<{ offset: number; count: number; record: StoredRecord; avoid?: Member }>, delayMs?: number): Promise<void> {
    const ops: MetaOp[] = []
    const deaths: Promise<void>[] = []
    const now = this.#now()
    for (const it of items) {
      const limit = this.config.maxDeliveries
      if (limit > 0 && it.count >= limit) {
        deaths.push(this.#die({ record: it.record, count: it.count, seen: true }, 'delivery_limit'))
        continue
      }
      const due = now + (delayMs ?? retryDelayMs(this.config.retryBackoff, it.count, this.#random))
      // Requeued with no delay (AMQP basic.nack/reject/recover with requeue, a member leaving):
      // ready at once, ahead of fresh events, as RabbitMQ puts it back at the head of the queue,
      // so the next dispatch (a basic.get right after) sees it without waiting for the timer.
      if (due <= now) this.#retryReady.push({ record: it.record, count: it.count, seen: true, avoid: it.avoid })
      else this.#schedule(it.offset, it.count, due, it.avoid)
      this.#persistedDelivery.add(it.offset)
      ops.push(this.#ks.deliveries.putOp([this.name, it.offset], { count: it.count, dueAtMs: due, parked: false }))
    }
    // Not synced: losing a due time in a crash only brings the event back sooner.
    if (ops.length > 0) deaths.push(this.#meta.write(ops, { sync: false }))
    await Promise.all(deaths)
  }

  #schedule(offset: number, count: number, due: number, avoid?: Member): void {
    const stamp = ++this.#stampSeq
    this.#scheduled.set(offset, { count, stamp, avoid })
    this.#heap.push({ at: due, offset, kind: 'retry', stamp })
    this.#arm()
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
      this.#retryReady.push({ record: copyRecord(r), count: s.count, seen: true, avoid: s.avoid })
    }
  }

  /** Queues a poison event for its dead-letter target (or parking); resolves once that is durable. */
  #die(c: Candidate, reason: DeathReason, error?: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#deaths.push({ record: c.record, reason, error, count: c.count, done: (err) => (err === undefined ? resolve() : reject(err)) })
      this.#deathRun ??= this.#flushDeaths()
    })
  }

  async #flushDeaths(): Promise<void> {
    try {
      while (this.#deaths.length > 0) {
        const batch = this.#deaths
        this.#deaths = []
        try {
          await this.#bury(batch)
          for (const d of batch) {
            this.counters.deadLettered[d.reason]++
            d.done()
          }
        } catch (caught) {
          let err = caught
          if (err instanceof SluiceError && !err.retryable && this.#sink !== undefined) {
            // The target can never take them (an event larger than its segments): retrying
            // would loop forever and hold the backlog, so they are parked in the group instead.
            this.#logger?.warn({ group: this.name, err, events: batch.length }, 'dead-letter target refused the events for good; parked in the group')
            try {
              await this.#park(batch, this.#now(), err.message)
              for (const d of batch) {
                this.counters.deadLettered[d.reason]++
                d.done()
              }
              continue
            } catch (parkErr) {
              err = parkErr
            }
          }
          this.#logger?.warn({ group: this.name, err, events: batch.length }, 'dead-lettering failed; the events stay unsettled and come back')
          // They stay unsettled: back to redelivery so nothing is lost, and the callers learn.
          for (const d of batch) this.#schedule(d.record.offset, d.count, this.#now() + this.config.retryBackoff.initialMs)
          for (const d of batch) d.done(err)
        }
      }
    } finally {
      this.#deathRun = undefined
    }
  }

  async #bury(batch: PendingDeath[]): Promise<void> {
    const now = this.#now()
    if (this.#sink === undefined) return this.#park(batch, now)
    const routingKey = this.config.deadLetter?.kind === 'exchange' ? (this.config.deadLetter.routingKey ?? undefined) : undefined
    const records = batch.map((d) => deadLetterRecord(d, this.#stream.name, this.name, now, routingKey))
    const values = batch.map((d) => (d.record.json ? safeParse(d.record.body) : undefined))
    // The dead-letter copy is durable before the original settles: a crash in between
    // dead-letters it again (a duplicate in the target), never loses it.
    await this.#sink.deadLetter(records, values)
    await this.#settle(batch.map((d) => d.record.offset))
  }

  /** Sets events aside in the group, never dropped: they hold the cursor until redriven or purged. */
  async #park(batch: readonly PendingDeath[], now: number, targetError?: string): Promise<void> {
    const ops: MetaOp[] = []
    for (const d of batch) {
      const error = targetError ?? d.error
      const p: ParkedEvent = { offset: d.record.offset, reason: d.reason, deliveryCount: d.count, time: now, ...(error !== undefined ? { error } : {}) }
      this.#parked.set(p.offset, p)
      ops.push(this.#ks.parked.putOp([this.name, p.offset], p))
    }
    await this.#meta.write(ops, { sync: true })
  }

  /**
   * Dead-letters expired events at the head of the group, consumer or not, as RabbitMQ expires
   * messages at the head of a queue: a delay queue (a TTL, a dead-letter exchange, nobody
   * consuming) depends on it. Stops at the first live event and wakes when that one is due.
   */
  async #expireHead(): Promise<void> {
    const ttl = this.config.messageTtlMs
    const deaths: Promise<void>[] = []
    for (;;) {
      let c = this.#nextCandidate()
      if (c === undefined) {
        await this.#readAhead()
        c = this.#nextCandidate()
        if (c === undefined) break
      }
      const at = expiryOf(c.record, ttl)
      if (at > this.#now()) {
        this.#armExpiry(at)
        break
      }
      if (deaths.length >= overflowBatchMax) {
        this.#pumpAgain = true
        break
      }
      this.#takeCandidate()
      deaths.push(this.#die(c, 'expired'))
    }
    // A failed dead-letter puts the event back for redelivery (see #flushDeaths).
    await Promise.allSettled(deaths)
  }

  #armExpiry(at: number): void {
    if (this.#closed || (this.#expiryTimer !== undefined && this.#expiryAt <= at)) return
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer)
    this.#expiryAt = at
    this.#expiryTimer = setTimeout(
      () => {
        this.#expiryTimer = undefined
        this.#expiryAt = Number.POSITIVE_INFINITY
        void this.#pump()
      },
      Math.max(0, at - this.#now()),
    )
    this.#expiryTimer.unref()
  }

  async #enforceBacklog(): Promise<void> {
    const max = this.config.maxBacklog
    if (max === null || this.config.overflow !== 'dead-letter') return
    let excess = this.backlog - this.#deaths.length - max
    if (excess <= 0) return
    const deaths: Promise<void>[] = []
    // The oldest pending events go: those not yet delivered, from the front of the log.
    while (excess > 0 && deaths.length < overflowBatchMax) {
      if (this.#fresh.length === 0) {
        const before = this.#readOffset
        const demandFloor = Math.min(excess, overflowBatchMax)
        while (this.#fresh.length < demandFloor && this.#readOffset < this.#log.endOffset) {
          const { records, nextOffset } = await this.#log.read(this.#readOffset, { maxBytes: readAheadBytes })
          if (records.length === 0) break
          for (const r of records) {
            if (r.offset < this.#readOffset || this.#settled.has(r.offset) || this.#skip.delete(r.offset)) continue
            this.#fresh.push({ record: r, count: this.#priorCounts.get(r.offset) ?? 0, seen: r.offset < this.#deliveredEnd })
          }
          this.#readOffset = this.#settled.skip(nextOffset)
        }
        if (this.#fresh.length === 0 || this.#readOffset === before) break
      }
      deaths.push(this.#die(this.#fresh.shift()!, 'maxlen'))
      excess--
    }
    if (excess > 0 && deaths.length >= overflowBatchMax) this.#pumpAgain = true
    await Promise.all(deaths)
  }

  // ---- timers ----------------------------------------------------------------------------------

  #live(d: Deadline): boolean {
    if (d.kind === 'ack') return this.#inflight.get(d.offset)?.stamp === d.stamp
    return this.#scheduled.get(d.offset)?.stamp === d.stamp
  }

  #arm(): void {
    const top = this.#heap.peek()
    if (top === undefined || this.#closed) return
    if (top.at >= this.#timerAt && this.#timer !== undefined) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timerAt = top.at
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, top.at - this.#now()))
  }

  #onTimer(): void {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = this.#now()
    const timedOut: Array<{ offset: number; count: number; record: StoredRecord; avoid: Member }> = []
    for (let d = this.#heap.peek(); d !== undefined && d.at <= now; d = this.#heap.peek()) {
      this.#heap.pop()
      if (d.kind === 'ack') {
        const entry = this.#inflight.get(d.offset)
        if (entry === undefined || entry.stamp !== d.stamp) continue
        // The member stays; only this delivery goes back, on the same schedule as a nack.
        this.#inflight.delete(d.offset)
        entry.member.inflight.delete(d.offset)
        this.counters.ackTimeouts++
        timedOut.push({ offset: d.offset, count: entry.count, record: entry.record, avoid: entry.member })
      } else {
        const s = this.#scheduled.get(d.offset)
        if (s !== undefined && s.stamp === d.stamp) this.#retryDue.push(d.offset)
      }
    }
    this.#arm()
    const next = timedOut.length > 0 ? this.#retry(timedOut) : Promise.resolve()
    next.then(
      () => this.#pump(),
      (err: unknown) => this.#logger?.warn({ group: this.name, err }, 'redelivery scheduling failed'),
    )
  }

  #sweepMembers(): void {
    const now = this.#now()
    const back: Array<{ offset: number; count: number; record: StoredRecord }> = []
    for (const m of [...this.#members.values()]) {
      if (m.waiter !== undefined || m.push !== undefined || now - m.lastSeen < this.config.sessionTimeoutMs) continue
      // Gone: what it held goes back to the group at once.
      this.#members.delete(m.name)
      this.#ring = this.#ring.filter((x) => x !== m)
      for (const offset of m.inflight) {
        const entry = this.#inflight.get(offset)
        if (entry === undefined) continue
        this.#inflight.delete(offset)
        back.push({ offset, count: entry.count, record: entry.record })
      }
      this.#retryReady.unshift(...m.assigned)
      this.#logger?.info({ group: this.name, member: m.name, returned: m.inflight.size + m.assigned.length }, 'member session timed out')
    }
    if (back.length > 0) void this.#retry(back, 0).then(() => this.#pump())
    else if (this.#retryReady.length > 0) void this.#pump()
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
    const ops: MetaOp[] = []
    for (const [start] of this.#settled.entries()) ops.push(this.#ks.settled.delOp([this.name, start]))
    for (const o of this.#persistedDelivery) ops.push(this.#ks.deliveries.delOp([this.name, o]))
    for (const o of this.#parked.keys()) ops.push(this.#ks.parked.delOp([this.name, o]))
    this.#settled.clear()
    this.#persistedDelivery.clear()
    this.#priorCounts.clear()
    this.#parked.clear()
    this.#skip.clear()
    this.#inflight.clear()
    this.#scheduled.clear()
    this.#heap.clear()
    this.#retryDue = []
    this.#retryReady = []
    this.#fresh = []
    for (const m of this.#members.values()) {
      m.inflight.clear()
      m.assigned = []
    }
    this.#generation++
    this.#cursor = offset
    this.#readOffset = offset
    this.#deliveredEnd = offset
    ops.push(this.#recordOp())
    await this.#meta.write(ops, { sync: true })
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
    const n = this.backlog - this.#inflight.size
    const end = this.#log.endOffset
    // Everything from the cursor to the end, in ranges around what is in flight (its holders may
    // still ack it, as AMQP's queue.purge leaves unacked messages alone).
    const held = [...this.#inflight.keys()].sort((a, b) => a - b)
    const ranges: Array<[number, number]> = []
    let from = this.#cursor
    for (const o of held) {
      if (o > from) ranges.push([from, o])
      from = o + 1
    }
    if (end > from) ranges.push([from, end])
    const extra: MetaOp[] = [...this.#parked.keys()].map((o) => this.#ks.parked.delOp([this.name, o]))
    const persisted = [...this.#persistedDelivery].filter((o) => !this.#inflight.has(o))
    this.#fresh = []
    this.#retryReady = []
    this.#scheduled.clear()
    this.#parked.clear()
    this.#skip.clear()
    this.#readOffset = end
    await this.#settleRanges(ranges, extra, persisted)
    return Math.max(0, n)
  }

  get inFlightCount(): number {
    return this.#inflight.size
  }

  consumerCount(): number {
    let n = 0
    for (const m of this.#members.values()) if (m.push !== undefined) n++
    return n
  }

  parkedEvents(limit: number): ParkedEvent[] {
    return [...this.#parked.values()].sort((a, b) => a.offset - b.offset).slice(0, limit)
  }

  /** Puts parked events back up for delivery, with their delivery count reset. */
  async redriveParked(limit: number): Promise<number> {
    const chosen = this.parkedEvents(limit)
    const ops: MetaOp[] = []
    for (const p of chosen) {
      this.#parked.delete(p.offset)
      ops.push(this.#ks.parked.delOp([this.name, p.offset]))
      if (this.#persistedDelivery.delete(p.offset)) ops.push(this.#ks.deliveries.delOp([this.name, p.offset]))
    }
    await this.#meta.write(ops, { sync: true })
    for (const p of chosen) this.#schedule(p.offset, 0, this.#now())
    return chosen.length
  }

  /** Settles parked events for good. */
  async purgeParked(limit: number): Promise<number> {
    const chosen = this.parkedEvents(limit)
    for (const p of chosen) this.#parked.delete(p.offset)
    await this.#settle(
      chosen.map((p) => p.offset),
      chosen.map((p) => this.#ks.parked.delOp([this.name, p.offset])),
    )
    return chosen.length
  }

  /** Seconds since the oldest unsettled event was stored (0 when there is none). */
  async lagSeconds(): Promise<number> {
    const log = this.#log
    if (this.#cursor >= log.endOffset || this.backlog === 0) return 0
    if (this.#lagCache?.cursor !== this.#cursor) {
      const { records } = await log.read(Math.max(this.#cursor, log.startOffset), { maxRecords: 1 })
      if (records[0] === undefined) return 0
      this.#lagCache = { cursor: this.#cursor, timestamp: records[0].timestamp }
    }
    return Math.max(0, (this.#now() - this.#lagCache.timestamp) / 1000)
  }

  async stats(): Promise<GroupStats> {
    return {
      name: this.name,
      stream: this.#stream.name,
      cursor: this.#cursor,
      backlog: this.backlog,
      lagSeconds: Math.round((await this.lagSeconds()) * 1000) / 1000,
      inFlight: this.#inflight.size,
      delivered: this.counters.delivered,
      acked: this.counters.acked,
      nacked: this.counters.nacked,
      redelivered: this.counters.redelivered,
      ackTimeouts: this.counters.ackTimeouts,
      deadLettered: { ...this.counters.deadLettered },
      parked: this.#parked.size,
      members: [...this.#members.values()].map((m) => ({ name: m.name, inFlight: m.inflight.size, assigned: m.assigned.length, credit: Math.max(0, this.#free(m)), lastSeen: new Date(m.lastSeen).toISOString() })),
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#sweep !== undefined) clearInterval(this.#sweep)
    if (this.#rateTimer !== undefined) clearTimeout(this.#rateTimer)
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer)
    for (const m of this.#members.values()) this.#answer(m, [])
    await this.#pumpRun
    await this.#deathRun
  }
}

function copyRecord(r: StoredRecord): StoredRecord {
  return { ...r, body: Buffer.from(r.body), headers: r.headers === undefined ? undefined : Buffer.from(r.headers) }
}
