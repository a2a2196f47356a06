import { DeadlineHeap, type Deadline } from './timer-heap.js'

/** The clock and timer a group runs on; tests and the simulation inject their own. */
export interface GroupClock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: GroupClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

/** A clock that takes `now` from the caller and keeps the system timers (GroupDeps.now). */
export function clockWithNow(now: () => number): GroupClock {
  return { ...systemClock, now }
}

/**
 * A group's ack deadlines and retry due times: one heap, one timer set to the earliest entry.
 * Entries carry a stamp and are cancelled lazily: `isLive` tells, when one comes due, whether it
 * still matches its owner's state (acked, extended or redelivered since: stale).
 */
export class Deadlines {
  readonly #heap = new DeadlineHeap()
  readonly #clock: GroupClock
  readonly #isLive: (d: Deadline) => boolean
  readonly #onDue: (due: Deadline[]) => void
  #timer: unknown
  #timerAt = Number.POSITIVE_INFINITY
  #stampSeq = 0
  #closed = false

  constructor(clock: GroupClock, isLive: (d: Deadline) => boolean, onDue: (due: Deadline[]) => void) {
    this.#clock = clock
    this.#isLive = isLive
    this.#onDue = onDue
  }

  get size(): number {
    return this.#heap.size
  }

  /** A fresh stamp, for an entry or for state that a later entry must match. */
  stamp(): number {
    return ++this.#stampSeq
  }

  add(kind: Deadline['kind'], offset: number, at: number, stamp = this.stamp()): number {
    this.#heap.push({ at, offset, kind, stamp })
    this.#arm()
    return stamp
  }

  /** Drops stale entries once they outnumber `live` by far: a fast drain leaves one per ack. */
  compact(live: number): void {
    if (this.#heap.size > 2 * live + 1024) this.#heap.retain((d) => this.#isLive(d))
  }

  clear(): void {
    this.#heap.clear()
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    const top = this.#heap.peek()
    if (top === undefined || this.#closed) return
    if (top.at >= this.#timerAt && this.#timer !== undefined) return
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timerAt = top.at
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, top.at - this.#clock.now()))
  }

  #fire(): void {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = this.#clock.now()
    const due: Deadline[] = []
    for (let d = this.#heap.peek(); d !== undefined && d.at <= now; d = this.#heap.peek()) {
      this.#heap.pop()
      if (this.#isLive(d)) due.push(d)
    }
    this.#arm()
    if (due.length > 0) this.#onDue(due)
  }
}
