import type { StreamRegistry } from './registry.js'

/** Append rates per stream from the end offset sampled every few seconds; no per-event work. */
export class StreamRates {
  readonly #last = new Map<string, { end: number; at: number }>()
  readonly #rates = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined

  constructor(readonly streams: StreamRegistry, readonly intervalMs = 5000) {}

  start(): void {
    this.sample()
    this.#timer = setInterval(() => this.sample(), this.intervalMs)
    this.#timer.unref()
  }

  sample(now = performance.now()): void {
    for (const s of this.streams.all()) {
      const end = s.log.endOffset
      const prev = this.#last.get(s.name)
      if (prev !== undefined && now > prev.at) this.#rates.set(s.name, ((end - prev.end) * 1000) / (now - prev.at))
      this.#last.set(s.name, { end, at: now })
    }
  }

  rate(stream: string): number {
    return this.#rates.get(stream) ?? 0
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
  }
}
