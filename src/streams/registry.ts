import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { shielded } from '../background.js'
import type { DurabilityConfig, StreamConfig } from '../config/index.js'
import { openLog, type AppendRecord, type AppendResult, type Log, type LogLogger, type LogObserver } from '../log/index.js'
import { appendToLog } from './append.js'

export interface Stream {
  readonly name: string
  readonly config: StreamConfig
  /** For reads, tails and stats. Writes go through `append`, never `log.append`. */
  readonly log: Log
  /** The one write path: chunked to the segment size, resolved once durable (see append.ts). */
  append(records: readonly AppendRecord[]): Promise<AppendResult>
}

async function openStream(dataDir: string, config: StreamConfig, durability: DurabilityConfig, logger?: LogLogger, observer?: (stream: string) => LogObserver): Promise<Stream> {
  const log = await openLog(streamDir(dataDir, config.name), {
    fsync: config.fsync,
    intervalMs: durability.intervalMs,
    maxBatchBytes: durability.maxBatchBytes,
    segmentBytes: config.segmentBytes,
    segmentAgeMs: config.segmentAgeMs,
    retention: { maxAgeMs: config.retention.maxAgeMs ?? undefined, maxBytes: config.retention.maxBytes ?? undefined },
    logger,
    observer: observer?.(config.name),
  })
  return { name: config.name, config, log, append: (records) => appendToLog(log, records, config.segmentBytes) }
}

export const streamDir = (dataDir: string, name: string): string => join(dataDir, 'streams', name)

/**
 * The open streams of a data dir: one log each, opened (and recovered) in parallel at start and
 * closed together at stop. Retention runs on a timer so no append ever waits for a delete.
 */
export class StreamRegistry {
  readonly #streams = new Map<string, Stream>()
  #retentionTimer: NodeJS.Timeout | undefined

  private constructor(readonly dataDir: string) {}

  static async open(
    dataDir: string,
    configs: Readonly<Record<string, StreamConfig>>,
    durability: DurabilityConfig,
    logger?: LogLogger,
    observer?: (stream: string) => LogObserver,
  ): Promise<StreamRegistry> {
    const reg = new StreamRegistry(dataDir)
    await mkdir(join(dataDir, 'streams'), { recursive: true })
    const opened = await Promise.allSettled(
      Object.values(configs).map(async (config) => {
        reg.#streams.set(config.name, await openStream(dataDir, config, durability, logger, observer))
      }),
    )
    const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) {
      await reg.close()
      throw failed.reason
    }
    return reg
  }

  /** Opens a stream declared at run time (AMQP queue.declare). */
  async add(config: StreamConfig, durability: DurabilityConfig, logger?: LogLogger, observer?: (stream: string) => LogObserver): Promise<Stream> {
    const existing = this.#streams.get(config.name)
    if (existing !== undefined) return existing
    const stream = await openStream(this.dataDir, config, durability, logger, observer)
    this.#streams.set(config.name, stream)
    return stream
  }

  /** Closes a stream and deletes its files (AMQP queue.delete). */
  async remove(name: string): Promise<boolean> {
    const s = this.#streams.get(name)
    if (s === undefined) return false
    this.#streams.delete(name)
    await s.log.close()
    await rm(streamDir(this.dataDir, name), { recursive: true, force: true })
    return true
  }

  get(name: string): Stream | undefined {
    return this.#streams.get(name)
  }

  all(): Stream[] {
    return [...this.#streams.values()]
  }

  /**
   * Runs retention every `intervalMs`. For a stream with `retention.policy: interest`,
   * `interestFloor` gives the lowest cursor of the groups on it (undefined: no group, keep all).
   */
  startRetention(intervalMs: number, onError: (err: unknown, stream: string) => void, interestFloor?: (stream: string) => number | undefined): void {
    this.#retentionTimer = setInterval(() => {
      for (const s of this.#streams.values()) {
        // One stream's failure (its floor, its disk, the reporter itself) is counted and
        // reported; it neither stops the others nor escapes the timer.
        const report = (err: unknown): void => onError(err, s.name)
        shielded('retention', () => {
          const floor = s.config.retention.policy === 'interest' ? interestFloor?.(s.name) : undefined
          return s.log.enforceRetention(floor)
        }, report)()
      }
    }, intervalMs)
    this.#retentionTimer.unref()
  }

  async close(): Promise<void> {
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer)
    await Promise.all([...this.#streams.values()].map((s) => s.log.close()))
  }
}
