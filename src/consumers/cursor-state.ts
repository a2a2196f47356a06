import type { DeliveryState, Keyspace, MetaOp, SettledRange } from '../meta/index.js'
import type { DeathReason } from './dead-letter.js'
import { IntervalSet, RangeChange } from './interval-set.js'

/** The durable part of a group besides its settled ranges and per-event state. */
export interface GroupRecord {
  cursor: number
  generation: number
  /** One past the highest offset ever delivered: unsettled events below it were maybe seen. */
  delivered: number
}

export interface ParkedEvent {
  readonly offset: number
  readonly reason: DeathReason
  readonly deliveryCount: number
  readonly time: number
  readonly error?: string | undefined
}

/** The four keyspaces a group's state lives in; groups are their only writers (namespaces.ts). */
export interface GroupKeyspaces {
  readonly record: Keyspace<[string], GroupRecord>
  readonly settled: Keyspace<[string, number], SettledRange>
  readonly deliveries: Keyspace<[string, number], DeliveryState>
  readonly parked: Keyspace<[string, number], ParkedEvent>
}

/** A nack's backoff that survived a restart: the owner schedules it again. */
export interface RestoredRetry {
  readonly offset: number
  readonly count: number
  readonly dueAtMs: number
}

/** Where the group's log stands when its state is loaded or reset. */
export interface LogBounds {
  readonly start: number
  readonly end: number
}

/**
 * A group's settlement state: the cursor, settled ranges above it, the delivered mark, delivery
 * counts and parked events. The only owner of those; nothing here does I/O or reads a clock, so
 * every transition is a plain method that changes memory and returns the metadata ops that make
 * it durable. The caller writes the ops (synced) before it answers anyone.
 */
export class CursorState {
  readonly name: string
  readonly #ks: GroupKeyspaces
  #generation = 1
  #cursor = 0
  #deliveredEnd = 0
  readonly #settled = new IntervalSet()
  /** Offsets with a key in the deliveries keyspace, deleted when they settle. */
  readonly #persisted = new Set<number>()
  /** Delivery counts of events delivered before a restart. */
  readonly #priorCounts = new Map<number, number>()
  readonly #parked = new Map<number, ParkedEvent>()

  private constructor(name: string, ks: GroupKeyspaces) {
    this.name = name
    this.#ks = ks
  }

  /** A group seen for the first time: it starts at `start`. */
  static fresh(name: string, ks: GroupKeyspaces, start: number): { state: CursorState; ops: MetaOp[] } {
    const s = new CursorState(name, ks)
    s.#cursor = start
    s.#deliveredEnd = start
    return { state: s, ops: [s.recordOp()] }
  }

  /**
   * Loads a group's saved state, clamped to its log. State at or past the log's end names events
   * that are gone: a tail cut by recovery (fsync: never and a power cut, or fsck --repair). Those
   * offsets will be reused by new events, so every piece of it is dropped before it can settle,
   * skip or count an event it never saw. Returns the ops that make the clamp and the new generation
   * durable, how many pieces of state were dropped, the retries to schedule again and the
   * offsets a fresh read skips.
   */
  static async restore(
    name: string,
    ks: GroupKeyspaces,
    saved: GroupRecord,
    log: LogBounds,
  ): Promise<{ state: CursorState; clamp: MetaOp[]; dropped: number; retries: RestoredRetry[]; skip: Set<number> }> {
    const s = new CursorState(name, ks)
    const { end } = log
    const clamp: MetaOp[] = []
    const retries: RestoredRetry[] = []
    const skip = new Set<number>()
    s.#generation = saved.generation
    s.#cursor = Math.min(saved.cursor, end)
    s.#deliveredEnd = Math.min(saved.delivered, end)
    for await (const { key, value } of ks.settled.iterate({ prefix: [name] })) {
      const start = key[1]
      if (start >= end) clamp.push(ks.settled.delOp(key))
      else if (value.end > end) clamp.push(ks.settled.putOp(key, { end }))
      if (start < end) s.#settled.add(start, Math.min(value.end, end))
    }
    for await (const { key, value } of ks.deliveries.iterate({ prefix: [name] })) {
      const offset = key[1]
      if (offset >= end) {
        clamp.push(ks.deliveries.delOp(key))
        continue
      }
      s.#persisted.add(offset)
      s.#priorCounts.set(offset, value.count)
      if (value.dueAtMs !== null && !value.parked) {
        // A nack's backoff survives the restart.
        skip.add(offset)
        retries.push({ offset, count: value.count, dueAtMs: value.dueAtMs })
      }
    }
    for await (const { key, value } of ks.parked.iterate({ prefix: [name] })) {
      if (key[1] >= end) {
        clamp.push(ks.parked.delOp(key))
        continue
      }
      s.#parked.set(key[1], value)
      skip.add(key[1])
    }
    // A parked event is not retried, whatever due time an earlier nack left behind.
    const live = retries.filter((r) => !s.#parked.has(r.offset))
    // Retention may have dropped events this group never settled; the log has moved on.
    if (s.#cursor < log.start) s.#cursor = log.start
    s.#settled.dropBelow(s.#cursor)
    for (let r = s.#settled.takeAt(s.#cursor); r !== undefined; r = s.#settled.takeAt(s.#cursor)) s.#cursor = r[1]
    // A new generation at every open: a tag issued before (a crash, or a tail cut that let a new
    // event take the same offset and count) can never settle a delivery made after.
    const dropped = clamp.length + (saved.cursor > end || saved.delivered > end ? 1 : 0)
    s.#generation++
    clamp.push(s.recordOp())
    return { state: s, clamp, dropped, retries: live, skip }
  }

  get generation(): number {
    return this.#generation
  }

  /** Lowest unsettled offset. */
  get cursor(): number {
    return this.#cursor
  }

  get deliveredEnd(): number {
    return this.#deliveredEnd
  }

  get settledCount(): number {
    return this.#settled.count
  }

  get parkedCount(): number {
    return this.#parked.size
  }

  /** Unsettled events below `end`: in flight, waiting and parked included. */
  backlog(end: number): number {
    return Math.max(0, end - this.#cursor - this.#settled.count)
  }

  /**
   * Bytes of the unsettled events below `end`, from `bytes(from, to)` of a span: the span from the
   * cursor less the settled ranges above it. Parked events are included, as in `backlog`.
   */
  backlogBytes(end: number, bytes: (from: number, to: number) => number): number {
    if (end <= this.#cursor) return 0
    let total = bytes(this.#cursor, end)
    for (const [a, b] of this.#settled.entries()) {
      if (a >= end) break
      total -= bytes(a, Math.min(b, end))
    }
    return Math.max(0, total)
  }

  /** Offsets of the parked events, in no order. */
  parkedOffsets(): IterableIterator<number> {
    return this.#parked.keys()
  }

  isSettled(offset: number): boolean {
    return offset < this.#cursor || this.#settled.has(offset)
  }

  /** `offset`, or the end of the settled range holding it: where a read goes on from. */
  skipSettled(offset: number): number {
    return this.#settled.skip(offset)
  }

  /** Delivered before (maybe before a restart): shown as redelivered. */
  seen(offset: number): boolean {
    return offset < this.#deliveredEnd
  }

  priorCount(offset: number): number | undefined {
    return this.#priorCounts.get(offset)
  }

  /** Raises the delivered mark past `offset`; true when it moved (the record needs writing). */
  noteDelivered(offset: number): boolean {
    if (offset + 1 <= this.#deliveredEnd) return false
    this.#deliveredEnd = offset + 1
    return true
  }

  recordOp(): MetaOp {
    return this.#ks.record.putOp([this.name], { cursor: this.#cursor, generation: this.#generation, delivered: this.#deliveredEnd })
  }

  /**
   * Settles `ranges` ([start, end) pairs) and moves the cursor over every settled range it
   * reaches. `offsets` lose their persisted delivery state. Returns the ops, `extra` first.
   */
  settle(ranges: ReadonlyArray<readonly [number, number]>, offsets: readonly number[] = [], extra: readonly MetaOp[] = []): MetaOp[] {
    const change = new RangeChange()
    for (const [a, b] of ranges) this.#settled.add(a, b, change)
    for (let r = this.#settled.takeAt(this.#cursor, change); r !== undefined; r = this.#settled.takeAt(this.#cursor, change)) this.#cursor = r[1]
    const ops: MetaOp[] = [...extra, this.recordOp()]
    for (const start of change.removed) ops.push(this.#ks.settled.delOp([this.name, start]))
    for (const [start, end] of change.upserts) ops.push(this.#ks.settled.putOp([this.name, start], { end }))
    for (const o of offsets) {
      if (this.#persisted.delete(o)) ops.push(this.#ks.deliveries.delOp([this.name, o]))
      this.#priorCounts.delete(o)
    }
    return ops
  }

  /**
   * The op that keeps a redelivery's count across a restart: otherwise the restart would hand
   * the event out with the count of its last failure (or 1) again, and crashes could add
   * deliveries past maxDeliveries. A first delivery needs none: the delivered mark makes it 1.
   */
  redeliveryOp(offset: number, count: number): MetaOp | undefined {
    if (count <= 1 && !this.#persisted.has(offset)) return undefined
    this.#persisted.add(offset)
    return this.#ks.deliveries.putOp([this.name, offset], { count, dueAtMs: null, parked: false })
  }

  /** The op that remembers a delivery count and its retry due time across a restart. */
  retryOp(offset: number, count: number, dueAtMs: number): MetaOp {
    this.#persisted.add(offset)
    return this.#ks.deliveries.putOp([this.name, offset], { count, dueAtMs, parked: false })
  }

  /** Sets events aside in the group: they hold the cursor until redriven or purged. */
  park(events: readonly ParkedEvent[]): MetaOp[] {
    const ops: MetaOp[] = []
    for (const p of events) {
      this.#parked.set(p.offset, p)
      ops.push(this.#ks.parked.putOp([this.name, p.offset], p))
      // Its retry record would bring it back after a restart.
      if (this.#persisted.delete(p.offset)) ops.push(this.#ks.deliveries.delOp([this.name, p.offset]))
      this.#priorCounts.delete(p.offset)
    }
    return ops
  }

  parkedEvents(limit: number): ParkedEvent[] {
    return [...this.#parked.values()].sort((a, b) => a.offset - b.offset).slice(0, limit)
  }

  /** Takes parked events back (redrive): their delivery counts start again. */
  unpark(offsets: readonly number[]): MetaOp[] {
    const ops: MetaOp[] = []
    for (const o of offsets) {
      this.#parked.delete(o)
      ops.push(this.#ks.parked.delOp([this.name, o]))
      if (this.#persisted.delete(o)) ops.push(this.#ks.deliveries.delOp([this.name, o]))
    }
    return ops
  }

  /** Settles parked events for good. */
  dropParked(offsets: readonly number[]): MetaOp[] {
    for (const o of offsets) this.#parked.delete(o)
    return this.settle(
      toRanges(offsets),
      offsets,
      offsets.map((o) => this.#ks.parked.delOp([this.name, o])),
    )
  }

  /**
   * Settles everything from the cursor to `end` but `held` (in flight: its holders may still ack
   * it, as AMQP's queue.purge leaves unacked messages alone). Parked events go too.
   */
  purge(end: number, held: ReadonlySet<number>): MetaOp[] {
    const sorted = [...held].sort((a, b) => a - b)
    const ranges: Array<[number, number]> = []
    let from = this.#cursor
    for (const o of sorted) {
      if (o > from) ranges.push([from, o])
      from = o + 1
    }
    if (end > from) ranges.push([from, end])
    const extra = [...this.#parked.keys()].map((o) => this.#ks.parked.delOp([this.name, o]))
    const persisted = [...this.#persisted].filter((o) => !held.has(o))
    this.#parked.clear()
    return this.settle(ranges, persisted, extra)
  }

  /** Moves the cursor to `offset` (replay or skip), forgetting every settlement; a new generation. */
  reset(offset: number): MetaOp[] {
    const ops: MetaOp[] = []
    for (const [start] of this.#settled.entries()) ops.push(this.#ks.settled.delOp([this.name, start]))
    for (const o of this.#persisted) ops.push(this.#ks.deliveries.delOp([this.name, o]))
    for (const o of this.#parked.keys()) ops.push(this.#ks.parked.delOp([this.name, o]))
    this.#settled.clear()
    this.#persisted.clear()
    this.#priorCounts.clear()
    this.#parked.clear()
    this.#generation++
    this.#cursor = offset
    this.#deliveredEnd = offset
    ops.push(this.recordOp())
    return ops
  }
}

/** Sorted offsets as [start, end) runs. */
export function toRanges(offsets: readonly number[]): Array<[number, number]> {
  const sorted = [...offsets].sort((a, b) => a - b)
  const ranges: Array<[number, number]> = []
  let i = 0
  while (i < sorted.length) {
    let j = i + 1
    while (j < sorted.length && sorted[j] === sorted[j - 1]! + 1) j++
    ranges.push([sorted[i]!, sorted[j - 1]! + 1])
    i = j
  }
  return ranges
}
