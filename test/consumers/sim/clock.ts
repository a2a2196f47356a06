import type { GroupClock } from '../../../src/consumers/deadlines.js'

export interface Timer {
  readonly seq: number
  readonly due: number
  readonly fn: () => void
  readonly owner: SimClock
}

/**
 * Virtual time for the simulation. Each opening of the group gets its own clock (`incarnation`)
 * on the one time line; a crash kills that clock, so timers of the group that died never fire.
 * Timers fire only when the driver moves time on, one at a time in (due, creation) order, and the
 * driver waits for the group to go idle between them: the run is the same on every machine.
 */
export class VirtualTime {
  #now: number
  #seq = 0
  readonly #timers: Timer[] = []

  constructor(start: number) {
    this.#now = start
  }

  get now(): number {
    return this.#now
  }

  incarnation(): SimClock {
    return new SimClock(this)
  }

  /** Called by SimClock. */
  add(owner: SimClock, fn: () => void, ms: number): Timer {
    const t: Timer = { seq: ++this.#seq, due: this.#now + Math.max(0, ms), fn, owner }
    this.#timers.push(t)
    return t
  }

  remove(t: Timer): void {
    const i = this.#timers.indexOf(t)
    if (i !== -1) this.#timers.splice(i, 1)
  }

  drop(owner: SimClock): void {
    for (let i = this.#timers.length - 1; i >= 0; i--) if (this.#timers[i]!.owner === owner) this.#timers.splice(i, 1)
  }

  /** The earliest timer due at or before `until`, removed from the list, with time moved to it. */
  takeDue(until: number): (() => void) | undefined {
    let best: Timer | undefined
    for (const t of this.#timers) if (t.due <= until && (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq))) best = t
    if (best === undefined) return undefined
    this.remove(best)
    if (best.due > this.#now) this.#now = best.due
    return best.fn
  }

  /** Moves time to `to` (never back); timers due by then are left for takeDue. */
  setNow(to: number): void {
    if (to > this.#now) this.#now = to
  }

  get pendingTimers(): number {
    return this.#timers.length
  }
}

export class SimClock implements GroupClock {
  readonly #time: VirtualTime
  #dead = false

  constructor(time: VirtualTime) {
    this.#time = time
  }

  now(): number {
    return this.#time.now
  }

  setTimeout(fn: () => void, ms: number): unknown {
    // A group that crashed keeps no timers: its process is gone.
    if (this.#dead) return undefined
    return this.#time.add(this, fn, ms)
  }

  clearTimeout(handle: unknown): void {
    if (handle !== undefined) this.#time.remove(handle as Timer)
  }

  kill(): void {
    this.#dead = true
    this.#time.drop(this)
  }
}
