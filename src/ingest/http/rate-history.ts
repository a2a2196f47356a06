// The last minutes of ingest and delivery, one sample a second, for the management UI's charts.
// Prometheus keeps history for those who run one; a person who opens the UI on a fresh install
// has none, and RabbitMQ's sampled rates are a complaint its users make. The ring holds running
// totals, not rates: a late tick then spreads over the seconds it missed instead of showing a spike.

export interface RateSeries {
  /** Sample times, ms since the epoch, oldest first; each rate is over the second before it. */
  readonly times: number[]
  /** Events accepted per second (every door, after dedup). */
  readonly ingest: number[]
  /** Deliveries to consumers per second, redeliveries included, every group. */
  readonly delivered: number[]
}

export class RateHistory {
  readonly #time: Float64Array
  readonly #ingest: Float64Array
  readonly #delivered: Float64Array
  /** Index of the next write. */
  #head = 0
  #size = 0

  /** `capacity` samples are kept: with one a second, that many seconds. */
  constructor(readonly capacity: number) {
    this.#time = new Float64Array(capacity)
    this.#ingest = new Float64Array(capacity)
    this.#delivered = new Float64Array(capacity)
  }

  push(timeMs: number, ingestTotal: number, deliveredTotal: number): void {
    this.#time[this.#head] = timeMs
    this.#ingest[this.#head] = ingestTotal
    this.#delivered[this.#head] = deliveredTotal
    this.#head = (this.#head + 1) % this.capacity
    this.#size = Math.min(this.#size + 1, this.capacity)
  }

  /** Rates between consecutive samples; one fewer than the samples kept. */
  series(): RateSeries {
    const out: RateSeries = { times: [], ingest: [], delivered: [] }
    const start = (this.#head - this.#size + this.capacity) % this.capacity
    for (let i = 1; i < this.#size; i++) {
      const a = (start + i - 1) % this.capacity
      const b = (start + i) % this.capacity
      const seconds = (this.#time[b]! - this.#time[a]!) / 1000
      if (seconds <= 0) continue
      out.times.push(this.#time[b]!)
      // A counter that went down (a group deleted) is not a negative rate.
      out.ingest.push(round(Math.max(0, this.#ingest[b]! - this.#ingest[a]!) / seconds))
      out.delivered.push(round(Math.max(0, this.#delivered[b]! - this.#delivered[a]!) / seconds))
    }
    return out
  }
}

const round = (n: number): number => Math.round(n * 10) / 10
