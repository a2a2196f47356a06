import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { shielded } from '../background.js'
import type { DurabilityConfig, StreamConfig } from '../config/index.js'
import { defaultSegmentFilePool, openLog, type SegmentFilePool, type AppendRecord, type AppendResult, type Log, type LogLogger, type LogObserver } from '../log/index.js'
import { appendToLog } from './append.js'

export interface Stream {
  readonly name: string
  readonly config: StreamConfig
  /** For reads, tails and stats. Writes go through `append`, never `log.append`. */
  readonly log: Log
  /** The one write path: chunked to the segment size, resolved once durable (see append.ts). */
  append(records: readonly AppendRecord[]): Promise<AppendResult>
  /**
   * Calls `listener` with each append's first offset and records, before they are written (a
   * failed write rolls the log back, and the next append names the offsets again). Returns the
   * unsubscribe. Streams that tests wrap may lack it.
   */
  onAppend?(listener: AppendListener): () => void
}

export type AppendListener = (baseOffset: number, records: readonly AppendRecord[]) => void

/** How the logs of a registry reach the disk: one pool of segment read handles, one report of failed writes. */
export interface StreamIo {
  readonly files?: SegmentFilePool | undefined
  /** A write to a stream's log failed (and was rolled back); a full disk raises the disk alarm. */
  readonly onWriteError?: ((err: unknown, stream: string) => void) | undefined
}

/** Logs opened or closed at once: recovery and close each take a few descriptors per log. */
const openConcurrency = 8

async function openStream(dataDir: string, config: StreamConfig, durability: DurabilityConfig, logger?: LogLogger, observer?: (stream: string) => LogObserver, io: StreamIo = {}): Promise<Stream> {
  const onWriteError = io.onWriteError
  const log = await openLog(streamDir(dataDir, config.name), {
    files: io.files,
    onWriteError: onWriteError === undefined ? undefined : (err) => onWriteError(err, config.name),
    fsync: config.fsync,
    intervalMs: durability.intervalMs,
    maxBatchBytes: durability.maxBatchBytes,
    segmentBytes: config.segmentBytes,
    segmentAgeMs: config.segmentAgeMs,
    retention: { maxAgeMs: config.retention.maxAgeMs ?? undefined, maxBytes: config.retention.maxBytes ?? undefined },
    logger,
    observer: observer?.(config.name),
  })
  const listeners = new Set<AppendListener>()
  return {
    name: config.name,
    config,
    log,
    append: (records) => {
      // Offsets are assigned synchronously inside appendToLog, so nextOffset now is the first one.
      if (listeners.size > 0) for (const l of listeners) l(log.nextOffset, records)
      return appendToLog(log, records, config.segmentBytes)
    },
    onAppend: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
  }
}

export const streamDir = (dataDir: string, name: string): string => join(dataDir, 'streams', name)

/**
 * How far clients may read a stream, when that is less than its log (cluster mode: a replicated
 * stream's high watermark at its leader, so no client sees an event a failover could take back).
 */
export interface Visibility {
  /** The first offset of `stream` not yet visible; undefined: all of its log is. */
  end(stream: string): number | undefined
  /** Resolves true once `offset` of `stream` is visible, false after `timeoutMs` or on abort. */
  waitFor(stream: string, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean>
}

/**
 * The open streams of a data dir: one log each, opened (and recovered) in parallel at start and
 * closed together at stop. Retention runs on a timer so no append ever waits for a delete.
 */
export class StreamRegistry {
  readonly #streams = new Map<string, Stream>()
  #retentionTimer: NodeJS.Timeout | undefined
  readonly #io: StreamIo
  readonly #onRemove = new Set<(name: string) => Promise<void>>()
  /** Set by the cluster when its streams have replicas; consumers and reads both go by it. */
  visibility: Visibility | undefined

  private constructor(
    readonly dataDir: string,
    io: StreamIo,
  ) {
    this.#io = io
  }

  /** The pool every log of this registry borrows segment read handles from. */
  get files(): SegmentFilePool {
    return this.#io.files ?? defaultSegmentFilePool
  }

  static async open(
    dataDir: string,
    configs: Readonly<Record<string, StreamConfig>>,
    durability: DurabilityConfig,
    logger?: LogLogger,
    observer?: (stream: string) => LogObserver,
    io: StreamIo = {},
  ): Promise<StreamRegistry> {
    const reg = new StreamRegistry(dataDir, io)
    await mkdir(join(dataDir, 'streams'), { recursive: true })
    // A few at a time: each recovery holds some descriptors while it runs, and a data dir with
    // thousands of streams must open under a modest fd limit.
    const opened = await eachLimited(Object.values(configs), openConcurrency, async (config) => {
      reg.#streams.set(config.name, await openStream(dataDir, config, durability, logger, observer, io))
    })
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
    const stream = await openStream(this.dataDir, config, durability, logger, observer, this.#io)
    this.#streams.set(config.name, stream)
    return stream
  }

  /** Closes a stream and deletes its files (AMQP queue.delete). */
  async remove(name: string): Promise<boolean> {
    const s = this.#streams.get(name)
    if (s === undefined) return false
    this.#streams.delete(name)
    await s.log.close()
    // What others keep about the stream goes first: a stream declared again under this name must
    // not inherit it.
    try {
      for (const forget of this.#onRemove) await forget(name)
    } finally {
      await rm(streamDir(this.dataDir, name), { recursive: true, force: true })
    }
    return true
  }

  /** Calls `forget` with each stream removed, before its files go; the function given back unregisters it. */
  onRemove(forget: (name: string) => Promise<void>): () => void {
    this.#onRemove.add(forget)
    return () => void this.#onRemove.delete(forget)
  }

  get(name: string): Stream | undefined {
    return this.#streams.get(name)
  }

  /** The first offset of `stream` clients may not read yet: its log's end, or less (`visibility`). */
  readEnd(stream: Stream): number {
    const end = this.visibility?.end(stream.name)
    return end === undefined ? stream.log.endOffset : Math.min(end, stream.log.endOffset)
  }

  /** Resolves true once clients may read `offset` of `stream`; false after `timeoutMs` or on abort. */
  waitReadable(stream: Stream, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.visibility?.waitFor(stream.name, offset, timeoutMs, signal) ?? stream.log.waitFor(offset, timeoutMs, signal)
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

  stopRetention(): void {
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer)
    this.#retentionTimer = undefined
  }

  async close(): Promise<void> {
    this.stopRetention()
    const closed = await eachLimited([...this.#streams.values()], openConcurrency, (s) => s.log.close())
    const failed = closed.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }
}

/** Runs `fn` over `items`, at most `limit` at a time; settles every one, like Promise.allSettled. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<PromiseSettledResult<unknown>[]> {
  const results = new Array<PromiseSettledResult<unknown>>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!) }
      } catch (reason) {
        results[i] = { status: 'rejected', reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
