// Each group's lag, in events and in seconds, one sample a second over the last minutes, for the
// group page's charts: the table shows lag now, and "since when?" needs what came before the page
// was opened. Bounded: at most `maxGroups` groups are kept (server.http.maxLagHistoryGroups), the
// first ones met; a group past it is not charted, and each group turned away is counted once.

import { hitLimit } from '../../limits.js'

export interface LagSeries {
  /** Sample times, ms since the epoch, oldest first. */
  readonly times: number[]
  /** Unsettled events (the backlog) at each sample. */
  readonly backlog: number[]
  /** Age in seconds of the oldest unsettled event at each sample. */
  readonly lagSeconds: number[]
}

class Ring {
  readonly #time: Float64Array
  readonly #backlog: Float64Array
  readonly #lag: Float64Array
  #head = 0
  #size = 0

  constructor(readonly capacity: number) {
    this.#time = new Float64Array(capacity)
    this.#backlog = new Float64Array(capacity)
    this.#lag = new Float64Array(capacity)
  }

  push(timeMs: number, backlog: number, lagSeconds: number): void {
    this.#time[this.#head] = timeMs
    this.#backlog[this.#head] = backlog
    this.#lag[this.#head] = lagSeconds
    this.#head = (this.#head + 1) % this.capacity
    this.#size = Math.min(this.#size + 1, this.capacity)
  }

  series(): LagSeries {
    const out: LagSeries = { times: [], backlog: [], lagSeconds: [] }
    const start = (this.#head - this.#size + this.capacity) % this.capacity
    for (let i = 0; i < this.#size; i++) {
      const k = (start + i) % this.capacity
      out.times.push(this.#time[k]!)
      out.backlog.push(this.#backlog[k]!)
      out.lagSeconds.push(Math.round(this.#lag[k]! * 1000) / 1000)
    }
    return out
  }
}

/** What a sample reads of a group: the registry's groups fit it. */
export interface LagSource {
  readonly name: string
  readonly backlog: number
  lagSeconds(): Promise<number>
}

export class LagHistory {
  readonly #rings = new Map<string, Ring>()
  readonly #refused = new Set<string>()
  #sampling = false

  constructor(
    readonly capacity: number,
    readonly maxGroups: number,
  ) {}

  /** One sample of every group kept; groups gone are forgotten. A tick still sampling is skipped, not doubled. */
  async sample(groups: readonly LagSource[], now: number): Promise<void> {
    if (this.#sampling) return
    this.#sampling = true
    try {
      const live = new Set(groups.map((g) => g.name))
      for (const name of this.#rings.keys()) if (!live.has(name)) this.#rings.delete(name)
      for (const name of this.#refused) if (!live.has(name)) this.#refused.delete(name)
      for (const g of groups) {
        let ring = this.#rings.get(g.name)
        if (ring === undefined) {
          if (this.#rings.size >= this.maxGroups) {
            if (!this.#refused.has(g.name)) {
              this.#refused.add(g.name)
              hitLimit('http.maxLagHistoryGroups')
            }
            continue
          }
          this.#rings.set(g.name, (ring = new Ring(this.capacity)))
        }
        ring.push(now, g.backlog, await g.lagSeconds())
      }
    } finally {
      this.#sampling = false
    }
  }

  /** undefined: the group is not charted (past maxGroups, or not sampled yet). */
  series(group: string): LagSeries | undefined {
    return this.#rings.get(group)?.series()
  }
}
