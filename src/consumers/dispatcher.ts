import type { GroupConfig } from '../config/index.js'
import { hitLimit } from '../limits.js'
import type { Log, StoredRecord } from '../log/index.js'
import type { CursorState } from './cursor-state.js'

/** What a consumer receives. `tag` names this delivery; it goes stale when the event is redelivered. */
export interface Delivery {
  readonly tag: string
  readonly record: StoredRecord
  readonly deliveryCount: number
  readonly redelivered: boolean
}

export interface Candidate {
  readonly record: StoredRecord
  /** Deliveries so far. */
  readonly count: number
  /** Shown as redelivered: it was delivered before, maybe before a restart. */
  readonly seen: boolean
  /** The member whose delivery of it timed out; dispatch prefers another one (see pick). */
  readonly avoid?: Member | undefined
}

export interface Inflight {
  readonly member: Member
  readonly record: StoredRecord
  readonly count: number
  /** Matches its ack deadline; a new stamp (extend) makes the old deadline stale. */
  stamp: number
}

export interface Waiter {
  resolve: (d: Delivery[]) => void
  /** The waitMs timer, on the group's clock. */
  timer: unknown
}

export interface Member {
  readonly name: string
  /**
   * Unguessable, in every tag delivered to this member: a tag is bound to its member, so nobody
   * else can settle a delivery by guessing its generation-offset-count.
   */
  readonly token: string
  /** The user it fetches as (set at its first fetch): another user's settlement is not_yours. */
  user: string | undefined
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
  /** AMQP consumer priority (x-priority): in fair dispatch, higher ones are served while they have credit. */
  priority: number
}

/**
 * Who gets what: a group's members and their credit, the events in flight with each, and the
 * queues of events ready to go (redeliveries first, then fresh ones read ahead from the log, only
 * as far as members have credit). It decides and records; the group facade answers the members
 * and makes settlements durable.
 */
export class Dispatcher {
  readonly members = new Map<string, Member>()
  readonly inflight = new Map<number, Inflight>()
  /** Offsets at or after readOffset that a fresh read must pass over (retries and parked after a restart). */
  readonly skip: Set<number>
  #ring: Member[] = []
  #ringPos = 0
  #retryReady: Candidate[] = []
  #fresh: Candidate[] = []
  #readOffset: number
  readonly #config: GroupConfig
  readonly #log: Log
  readonly #state: CursorState
  readonly #now: () => number

  readonly #token: () => string
  readonly #visibleEnd: (() => number) | undefined

  /**
   * `visibleEnd`: how far events may be handed out, when less than the log's end (cluster mode:
   * a replicated stream's high watermark, so no consumer sees an event a failover could take back).
   */
  constructor(config: GroupConfig, log: Log, state: CursorState, now: () => number, skip: Set<number>, token: () => string, visibleEnd?: () => number) {
    this.#visibleEnd = visibleEnd
    this.#token = token
    this.#config = config
    this.#log = log
    this.#state = state
    this.#now = now
    this.skip = skip
    this.#readOffset = state.cursor
  }

  // ---- members ---------------------------------------------------------------------------------

  /** The member of that name, made on first sight; either way it was seen now. */
  member(name: string): Member {
    let m = this.members.get(name)
    if (m === undefined) {
      m = { name, token: this.#token(), user: undefined, lastSeen: this.#now(), inflight: new Set(), assigned: [], want: 0, waiter: undefined, push: undefined, prefetch: undefined, retired: false, priority: 0 }
      this.members.set(name, m)
      this.#ring.push(m)
    }
    m.lastSeen = this.#now()
    return m
  }

  free(m: Member): number {
    if (m.retired) return 0
    return (m.prefetch ?? this.#config.prefetch) - m.inflight.size - m.assigned.length
  }

  /** Receptive now: a waiting fetch with room left, or a push consumer. */
  receptive(m: Member): boolean {
    return m.push !== undefined || (m.waiter !== undefined && m.assigned.length < m.want)
  }

  /** Events members could take now. */
  demand(): number {
    let d = 0
    for (const m of this.members.values()) {
      const free = this.free(m)
      if (free <= 0) continue
      if (this.#config.dispatch === 'round-robin') d += free
      else if (m.push !== undefined) d += free
      else if (m.waiter !== undefined) d += Math.min(free, m.want - m.assigned.length)
    }
    return d
  }

  /**
   * Removes a member; returns what it held in flight (its entries leave `inflight`) and puts
   * what was assigned to it back at the head of the ready queue.
   */
  remove(m: Member): Inflight[] {
    this.members.delete(m.name)
    this.#ring = this.#ring.filter((x) => x !== m)
    const held: Inflight[] = []
    for (const offset of m.inflight) {
      const entry = this.inflight.get(offset)
      if (entry === undefined) continue
      this.inflight.delete(offset)
      held.push(entry)
    }
    m.inflight.clear()
    this.returnAssigned(m)
    return held
  }

  /**
   * What was assigned to a member but not handed over goes back: redeliveries to the head of the
   * retry queue, never-delivered events into the fresh queue in offset order, so first
   * deliveries stay in log order whichever members' queues they come back from.
   */
  returnAssigned(m: Member): void {
    const retries: Candidate[] = []
    const fresh: Candidate[] = []
    for (const c of m.assigned) (c.seen || c.count > 0 ? retries : fresh).push(c)
    m.assigned = []
    this.#retryReady.unshift(...retries)
    if (fresh.length === 0) return
    fresh.sort((a, b) => a.record.offset - b.record.offset)
    const merged: Candidate[] = []
    let i = 0
    let j = 0
    while (i < fresh.length || j < this.#fresh.length) {
      if (j >= this.#fresh.length || (i < fresh.length && fresh[i]!.record.offset < this.#fresh[j]!.record.offset)) merged.push(fresh[i++]!)
      else merged.push(this.#fresh[j++]!)
    }
    this.#fresh = merged
  }

  /** Fetching members idle past the session timeout: gone. */
  stale(sessionTimeoutMs: number): Member[] {
    const now = this.#now()
    return [...this.members.values()].filter((m) => m.waiter === undefined && m.push === undefined && now - m.lastSeen >= sessionTimeoutMs)
  }

  /**
   * The member for the next event. An event whose ack timed out goes to another member when one
   * can take it now (the contract: "no ack within ackTimeout: redelivered to another member").
   * `avoid` is only a preference: with no other member able to take it, its old member may.
   */
  pick(avoid?: Member): Member | undefined {
    if (this.#config.dispatch === 'round-robin') {
      // Members in turn, fetching or not: an event waits in its member's queue, as RabbitMQ's
      // round-robin pushes to each consumer in turn; credit still caps what a member holds.
      const n = this.#ring.length
      let fallback = -1
      for (let k = 0; k < n; k++) {
        const m = this.#ring[(this.#ringPos + k) % n]!
        if (this.free(m) > 0) {
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
    let best: Member | undefined
    let bestFree = 0
    let avoided = false
    for (const m of this.members.values()) {
      if (!this.receptive(m)) continue
      const free = this.free(m)
      if (m === avoid) {
        avoided = free > 0
        continue
      }
      // The highest priority with credit wins; among equals, the most credit (fair).
      if (free > 0 && (best === undefined || m.priority > best.priority || (m.priority === best.priority && free > bestFree))) {
        best = m
        bestFree = free
      }
    }
    return best ?? (avoided ? avoid : undefined)
  }

  // ---- in flight -------------------------------------------------------------------------------

  hold(m: Member, record: StoredRecord, count: number, stamp: number): void {
    this.inflight.set(record.offset, { member: m, record, count, stamp })
    m.inflight.add(record.offset)
  }

  release(entry: Inflight): void {
    this.inflight.delete(entry.record.offset)
    entry.member.inflight.delete(entry.record.offset)
    entry.member.lastSeen = this.#now()
  }

  // ---- ready queues ----------------------------------------------------------------------------

  next(): Candidate | undefined {
    return this.#retryReady[0] ?? this.#fresh[0]
  }

  take(): Candidate {
    return (this.#retryReady.length > 0 ? this.#retryReady.shift() : this.#fresh.shift())!
  }

  /** Ready again (a requeue with no delay, a retry that came due): ahead of fresh events. */
  ready(c: Candidate): void {
    this.#retryReady.push(c)
  }

  get hasRetries(): boolean {
    return this.#retryReady.length > 0
  }

  /** Reads fresh events ahead of dispatch: at least 64, or what members can take now. */
  async readAhead(): Promise<void> {
    await this.#read(Math.max(64, this.demand()))
  }

  /**
   * The oldest fresh (never delivered) event, reading on as far as `atLeast` if none is read yet;
   * undefined when the log has none past what is settled.
   */
  async takeFresh(atLeast: number): Promise<Candidate | undefined> {
    if (this.#fresh.length === 0) await this.#read(atLeast)
    return this.#fresh.shift()
  }

  /** The end of what may be handed out now. */
  #end(): number {
    const end = this.#log.endOffset
    return this.#visibleEnd === undefined ? end : Math.min(end, this.#visibleEnd())
  }

  async #read(target: number): Promise<void> {
    const log = this.#log
    while (this.#fresh.length < target && this.#readOffset < this.#end()) {
      if (this.#readOffset < log.startOffset) this.#readOffset = log.startOffset
      const limit = this.#end()
      const read = await log.read(this.#readOffset, { maxBytes: this.#config.readAheadBytes })
      const records = read.records
      let nextOffset = read.nextOffset
      if (records.length === 0) break
      for (const r of records) {
        if (r.offset >= limit) {
          nextOffset = limit
          break
        }
        if (r.offset < this.#readOffset) continue
        if (this.#state.isSettled(r.offset)) continue
        if (this.skip.delete(r.offset)) continue
        const seen = this.#state.seen(r.offset)
        // A view into the read buffer, not a copy: the events of one read are delivered together,
        // so the buffer lives about as long as they are in flight (copying each cost GC time).
        this.#fresh.push({ record: r, count: this.#state.priorCount(r.offset) ?? (seen ? 1 : 0), seen })
      }
      this.#readOffset = this.#state.skipSettled(nextOffset)
      // One read did not cover the members' credit (or ended at a segment's end): a larger
      // readAheadSize would take fewer reads.
      if (this.#fresh.length < target && this.#readOffset < this.#end()) hitLimit('groups.readAheadSize')
    }
  }

  /** Forgets every queued event and reads on from `offset` (reset, purge). */
  restartAt(offset: number): void {
    this.#retryReady = []
    this.#fresh = []
    this.skip.clear()
    this.#readOffset = offset
  }

  /** Forgets what is in flight and assigned (reset: a new generation's tags). */
  forgetDeliveries(): void {
    this.inflight.clear()
    for (const m of this.members.values()) {
      m.inflight.clear()
      m.assigned = []
    }
  }
}
