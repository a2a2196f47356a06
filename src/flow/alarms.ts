import { statfs } from 'node:fs/promises'
import { totalmem } from 'node:os'
import { noteBackgroundError, type FaultReporter } from '../background.js'
import { hitLimit } from '../limits.js'

/** `cluster`: this node fenced itself, cut off from etcd (docs/cluster.md); not a resource. */
export type AlarmName = 'memory' | 'disk' | 'cluster'
export const alarmNames: readonly AlarmName[] = ['memory', 'disk', 'cluster']

/**
 * The memory this process may use: the machine's, or less under a container's memory limit
 * (cgroup), which totalmem() does not see. A watermark of the machine's memory in a container
 * limited below it would never fire before the kernel's OOM killer does.
 */
export function availableMemory(): number {
  const total = totalmem()
  // Node reports no limit as undefined (older releases), 0, or a number past any machine's memory.
  const limit = process.constrainedMemory?.() ?? 0
  return limit > 0 && limit < total ? limit : total
}

export interface AlarmState {
  readonly name: AlarmName
  readonly since: number
  readonly value: number
  readonly limit: number
}

export interface AlarmOptions {
  /** Fraction of the memory available (0..1] the process may hold before publishers are blocked. */
  readonly memoryHighWatermark: number
  /** Absolute resident-size limit in bytes; overrides the fraction when set. */
  readonly memoryLimitBytes?: number | null | undefined
  readonly diskFreeLimitBytes: number
  readonly dataDir: string
  readonly checkEveryMs?: number
  /** Test hooks: what the probes read. */
  readonly readRss?: () => number
  /** The memory available to the process; default: the machine's, or its container's limit (cgroup) when lower. */
  readonly readMemoryTotal?: () => number
  readonly readDiskFree?: (dir: string) => Promise<number>
  readonly onChange?: (raised: boolean, state: AlarmState) => void
  /** Told of a probe that failed (the check itself carries on with what it last knew). */
  readonly onError?: FaultReporter
}

/** Why a publish of some size was refused although no alarm is up. */
export interface DiskRefusal {
  readonly requestBytes: number
  readonly freeBytes: number
  readonly limitBytes: number
}

/** An alarm clears only once the value is this far back on the safe side of the limit. */
const memoryClearFraction = 0.95
const diskClearFactor = 1.1

/** Errors of a write that mean the disk (or the quota) is full. */
const diskFullCodes = new Set(['ENOSPC', 'EDQUOT'])

async function diskFree(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/**
 * Resource alarms as RabbitMQ has them: above the memory high watermark, or below the free-disk
 * limit of the data dir, publishers are blocked until the alarm clears. Consumers keep draining,
 * which is what lets memory and disk recover. Clearing has hysteresis so a value hovering at the
 * limit does not flap.
 *
 * A check never throws: the probes read the system (an RSS read opens /proc and fails with
 * EMFILE when descriptors run out), and a throw from the timer would end the process. A failed
 * probe is counted and reported, and the alarm keeps its last state until a probe succeeds.
 */
export class Alarms {
  readonly #raised = new Map<AlarmName, AlarmState>()
  #opts: AlarmOptions
  #timer: NodeJS.Timeout | undefined
  #checking: Promise<void> | undefined
  /** Free bytes at the last successful disk probe (undefined before the first). */
  #free: number | undefined
  /** Bytes admitted since that probe: the free space the next probe will find already taken. */
  #admittedBytes = 0
  raisedTotal = 0
  readonly probeErrors = { memory: 0, disk: 0 }
  /** Appends that failed because the disk was full. */
  diskWriteErrors = 0

  constructor(opts: AlarmOptions) {
    this.#opts = opts
  }

  /** Changes the limits at run time (an operator lowering a watermark); applies at the next check. */
  setLimits(limits: Partial<Pick<AlarmOptions, 'memoryHighWatermark' | 'memoryLimitBytes' | 'diskFreeLimitBytes'>>): Promise<void> {
    this.#opts = { ...this.#opts, ...limits }
    return this.check()
  }

  get memoryLimitBytes(): number {
    return this.#opts.memoryLimitBytes ?? Math.floor((this.#opts.readMemoryTotal ?? availableMemory)() * this.#opts.memoryHighWatermark)
  }

  active(): AlarmState[] {
    return [...this.#raised.values()]
  }

  get blocked(): boolean {
    return this.#raised.size > 0
  }

  start(): void {
    this.stop()
    void this.check()
    this.#timer = setInterval(() => void this.check(), this.#opts.checkEveryMs ?? 1000)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Probes memory and disk once. Never rejects; a check already running is joined, not doubled. */
  check(now = Date.now()): Promise<void> {
    // A stalled statfs (a hung network mount) must not pile up one pending probe per tick.
    this.#checking ??= this.#check(now).finally(() => (this.#checking = undefined))
    return this.#checking
  }

  async #check(now: number): Promise<void> {
    try {
      const rss = (this.#opts.readRss ?? (() => process.memoryUsage.rss()))()
      const memLimit = this.memoryLimitBytes
      this.#set('memory', rss > memLimit, rss < memLimit * memoryClearFraction, rss, memLimit, now)
    } catch (err) {
      this.probeErrors.memory++
      noteBackgroundError('alarms.memory', err, this.#opts.onError)
    }
    try {
      const admittedBefore = this.#admittedBytes
      const free = await (this.#opts.readDiskFree ?? diskFree)(this.#opts.dataDir)
      // What was admitted while the probe ran may or may not be in its figure: keep counting it.
      this.#admittedBytes -= admittedBefore
      this.#free = free
      const diskLimit = this.#opts.diskFreeLimitBytes
      this.#set('disk', free < diskLimit, free >= diskLimit * diskClearFactor, free, diskLimit, now)
    } catch (err) {
      this.probeErrors.disk++
      noteBackgroundError('alarms.disk', err, this.#opts.onError)
    }
  }

  /**
   * Admission of a publish of `bytes` against the free disk space: refused (with the figures)
   * when storing it would take the free space below `diskFreeLimit`. The free space is the last
   * probe's, less what was admitted since, so a burst between probes is counted too. It is an
   * estimate (replicas, indexes and metadata take a little more); a write that still finds the
   * disk full is rolled back by the log, which then raises the disk alarm.
   */
  admitDisk(bytes: number): DiskRefusal | undefined {
    if (this.#free === undefined || bytes <= 0) return undefined
    const free = this.#free - this.#admittedBytes
    const limit = this.#opts.diskFreeLimitBytes
    if (free - bytes < limit) {
      hitLimit('server.alarms.diskFreeLimit')
      return { requestBytes: bytes, freeBytes: Math.max(0, free), limitBytes: limit }
    }
    this.#admittedBytes += bytes
    return undefined
  }

  /**
   * A write to the data dir failed. When the disk (or a quota) is full, the disk alarm goes up at
   * once rather than at the next probe; it comes down like any disk alarm, once a probe finds
   * the free space back above the limit (with hysteresis).
   */
  noteWriteError(err: unknown, now = Date.now()): void {
    const code = (err as { code?: unknown } | undefined)?.code
    if (typeof code !== 'string' || !diskFullCodes.has(code)) return
    this.diskWriteErrors++
    const limit = this.#opts.diskFreeLimitBytes
    this.#free = 0
    this.#admittedBytes = 0
    this.#set('disk', true, false, 0, limit, now)
  }

  /**
   * Raises or clears the cluster alarm: a fenced node blocks publishers, as a resource alarm does,
   * until it is a member again. Its value is 1 while raised.
   */
  fence(fenced: boolean, now = Date.now()): void {
    this.#set('cluster', fenced, !fenced, fenced ? 1 : 0, 1, now)
  }

  #set(name: AlarmName, over: boolean, clear: boolean, value: number, limit: number, now: number): void {
    const up = this.#raised.get(name)
    if (up === undefined && over) {
      const state = { name, since: now, value, limit }
      this.#raised.set(name, state)
      this.raisedTotal++
      this.#notify(true, state)
    } else if (up !== undefined && clear) {
      this.#raised.delete(name)
      this.#notify(false, { ...up, value })
    } else if (up !== undefined) {
      this.#raised.set(name, { ...up, value })
    }
  }

  #notify(raised: boolean, state: AlarmState): void {
    try {
      this.#opts.onChange?.(raised, state)
    } catch (err) {
      // A listener's failure is its own; the alarm state has already changed.
      noteBackgroundError('alarms.onChange', err, this.#opts.onError)
    }
  }
}
