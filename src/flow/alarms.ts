import { statfs } from 'node:fs/promises'
import { totalmem } from 'node:os'

export type AlarmName = 'memory' | 'disk'

export interface AlarmState {
  readonly name: AlarmName
  readonly since: number
  readonly value: number
  readonly limit: number
}

export interface AlarmOptions {
  /** Fraction of the machine's memory (0..1] the process may hold before publishers are blocked. */
  readonly memoryHighWatermark: number
  /** Absolute resident-size limit in bytes; overrides the fraction when set. */
  readonly memoryLimitBytes?: number | null | undefined
  readonly diskFreeLimitBytes: number
  readonly dataDir: string
  readonly checkEveryMs?: number
  /** Test hooks: what the probes read. */
  readonly readRss?: () => number
  readonly readDiskFree?: (dir: string) => Promise<number>
  readonly onChange?: (raised: boolean, state: AlarmState) => void
}

/** An alarm clears only once the value is this far back on the safe side of the limit. */
const memoryClearFraction = 0.95
const diskClearFactor = 1.1

async function diskFree(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/**
 * Resource alarms as RabbitMQ has them: above the memory high watermark, or below the free-disk
 * limit of the data dir, publishers are blocked until the alarm clears. Consumers keep draining,
 * which is what lets memory and disk recover. Clearing has hysteresis so a value hovering at the
 * limit does not flap.
 */
export class Alarms {
  readonly #raised = new Map<AlarmName, AlarmState>()
  #opts: AlarmOptions
  #timer: NodeJS.Timeout | undefined
  raisedTotal = 0

  constructor(opts: AlarmOptions) {
    this.#opts = opts
  }

  /** Changes the limits at run time (an operator lowering a watermark); applies at the next check. */
  setLimits(limits: Partial<Pick<AlarmOptions, 'memoryHighWatermark' | 'memoryLimitBytes' | 'diskFreeLimitBytes'>>): Promise<void> {
    this.#opts = { ...this.#opts, ...limits }
    return this.check()
  }

  get memoryLimitBytes(): number {
    return this.#opts.memoryLimitBytes ?? Math.floor(totalmem() * this.#opts.memoryHighWatermark)
  }

  active(): AlarmState[] {
    return [...this.#raised.values()]
  }

  get blocked(): boolean {
    return this.#raised.size > 0
  }

  start(): void {
    void this.check()
    this.#timer = setInterval(() => void this.check(), this.#opts.checkEveryMs ?? 1000)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
  }

  async check(now = Date.now()): Promise<void> {
    const rss = (this.#opts.readRss ?? (() => process.memoryUsage.rss()))()
    const memLimit = this.memoryLimitBytes
    this.#set('memory', rss > memLimit, rss < memLimit * memoryClearFraction, rss, memLimit, now)
    let free: number
    try {
      free = await (this.#opts.readDiskFree ?? diskFree)(this.#opts.dataDir)
    } catch {
      return
    }
    const diskLimit = this.#opts.diskFreeLimitBytes
    this.#set('disk', free < diskLimit, free >= diskLimit * diskClearFactor, free, diskLimit, now)
  }

  #set(name: AlarmName, over: boolean, clear: boolean, value: number, limit: number, now: number): void {
    const up = this.#raised.get(name)
    if (up === undefined && over) {
      const state = { name, since: now, value, limit }
      this.#raised.set(name, state)
      this.raisedTotal++
      this.#opts.onChange?.(true, state)
    } else if (up !== undefined && clear) {
      this.#raised.delete(name)
      this.#opts.onChange?.(false, { ...up, value })
    } else if (up !== undefined) {
      this.#raised.set(name, { ...up, value })
    }
  }
}
