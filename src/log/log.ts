import { mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { noteBackgroundError } from '../background.js'
import type { SluiceError } from '../errors.js'
import { errors } from '../errors.js'
import { batchHeaderBytes, batchLastOffset, checkBatch, decodeRecords, encodeBatch, readBatchHeader, RecordTooLargeError, type AppendRecord, type StoredRecord } from './format.js'
import { defaultSegmentFilePool, type SegmentFilePool } from './file-pool.js'
import { Segment, segmentNamePattern, type SegmentMark } from './segment.js'

export type FsyncPolicy = 'always' | 'batch' | 'never'

/** pino-compatible subset, so the log stays free of a logging dependency. */
export interface LogLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface LogOptions {
  readonly fsync: FsyncPolicy
  /** `batch`: how long the first append of an idle log waits for company before the write. */
  readonly intervalMs: number
  /** `batch`: flush at once when this many bytes are pending. */
  readonly maxBatchBytes: number
  readonly segmentBytes: number
  readonly segmentAgeMs: number
  readonly indexIntervalBytes: number
  readonly retention: { readonly maxAgeMs?: number | undefined; readonly maxBytes?: number | undefined }
  /** Truncate at damage in the middle of a segment instead of refusing to open. */
  readonly repair: boolean
  readonly logger: LogLogger | undefined
  readonly now: () => number
  /** Timings for metrics, called once per flush (never per record). */
  readonly observer?: LogObserver | undefined
  /** Where sealed segments borrow read handles; shared by every log of a server. */
  readonly files?: SegmentFilePool | undefined
  /**
   * Told of a write or sync that failed (after the log rolled itself back), so a full disk can
   * raise the disk alarm at once.
   */
  readonly onWriteError?: ((err: unknown) => void) | undefined
}

export interface LogObserver {
  /** Seconds from each append call to its durable confirmation, for every append in a flush. */
  appended(latenciesSeconds: readonly number[], records: number, bytes: number): void
  /** Seconds one fdatasync (or O_DSYNC write) took. */
  synced(seconds: number): void
}

export const logDefaults: LogOptions = {
  fsync: 'batch',
  intervalMs: 5,
  maxBatchBytes: 1024 * 1024,
  segmentBytes: 64 * 1024 * 1024,
  segmentAgeMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  retention: {},
  repair: false,
  logger: undefined,
  now: Date.now,
}

/** Positions are u32 in the offset index, so a segment must stay below 4 GiB. */
export const segmentBytesMax = 2 ** 31

export interface AppendResult {
  readonly baseOffset: number
  readonly lastOffset: number
}

export interface RecoveryReport {
  readonly clean: boolean
  readonly segments: number
  readonly truncated: readonly { file: string; position: number; bytes: number; fromOffset: number; reason: string }[]
  readonly rebuiltIndexes: readonly string[]
  readonly removedFiles: readonly string[]
  readonly durationMs: number
}

export interface ReadOptions {
  readonly maxBytes?: number
  readonly maxRecords?: number
  /** No record at or past this offset (a replicated stream's high watermark). */
  readonly end?: number
}

export interface ReadResult {
  readonly records: StoredRecord[]
  readonly nextOffset: number
}

export interface BatchReadResult {
  /** Whole, CRC-checked batches; the first may start before `from`. */
  readonly batches: Buffer[]
  readonly nextOffset: number
}

export interface RetentionResult {
  readonly deletedSegments: number
  readonly deletedBytes: number
}

export interface LogStats {
  readonly startOffset: number
  readonly endOffset: number
  readonly segments: number
  readonly bytes: number
  readonly oldestTimestamp: number
  readonly newestTimestamp: number
}

interface Pending {
  readonly startedAt: number
  readonly buf: Buffer
  readonly baseOffset: number
  readonly lastOffset: number
  readonly resolve: (r: AppendResult) => void
  readonly reject: (e: unknown) => void
}

interface Waiter {
  readonly offset: number
  readonly resolve: (ready: boolean) => void
  timer: NodeJS.Timeout | undefined
}

const cleanMarker = '.clean-shutdown'
const defaultReadBytes = 1024 * 1024

type State = 'open' | 'closing' | 'closed' | 'failed'

/**
 * A stream's append-only log: a directory of segments. Appends are encoded at once, queued, and
 * written by one flush loop: one writev and (per policy) one fdatasync per flush, after which
 * every append in it resolves together and tailing readers wake. Readers never see bytes that
 * are not yet durable under the policy.
 */
export class Log {
  readonly dir: string
  readonly options: LogOptions
  #segments: Segment[] = []
  #nextOffset = 0
  #endOffset = 0
  #pending: Pending[] = []
  #pendingBytes = 0
  #flushing = false
  #lastFlushEnd = Number.NEGATIVE_INFINITY
  #lastSyncMs = 0
  #timer: NodeJS.Timeout | undefined
  #exclusive: Promise<void> = Promise.resolve()
  #waiters: Waiter[] = []
  #state: State = 'open'
  #failure: unknown
  #recovery: RecoveryReport | undefined
  #flushDone: Promise<void> = Promise.resolve()
  #appendedBatches = 0
  #syncs = 0
  #writeErrors = 0
  /** A reset is under way: appends are refused until it is done. */
  #resetting = false

  private constructor(dir: string, options: LogOptions) {
    this.dir = dir
    this.options = options
  }

  static async open(dir: string, options: Partial<LogOptions> = {}): Promise<Log> {
    const opts: LogOptions = { ...logDefaults, ...options }
    if (opts.segmentBytes > segmentBytesMax || opts.segmentBytes < batchHeaderBytes * 2) {
      throw new RangeError(`segmentBytes must be between ${batchHeaderBytes * 2} and ${segmentBytesMax}`)
    }
    const log = new Log(dir, opts)
    await log.#recover()
    return log
  }

  get recovery(): RecoveryReport {
    return this.#recovery!
  }

  /** First offset still held. */
  get startOffset(): number {
    return this.#segments[0]?.base ?? this.#endOffset
  }

  /** One past the last durable offset: what readers may read up to. */
  get endOffset(): number {
    return this.#endOffset
  }

  /** The offset the next append will start at (assigned now, durable later). */
  get nextOffset(): number {
    return this.#nextOffset
  }

  get counters(): { appendedBatches: number; syncs: number; writeErrors: number } {
    return { appendedBatches: this.#appendedBatches, syncs: this.#syncs, writeErrors: this.#writeErrors }
  }

  get #files(): SegmentFilePool {
    return this.options.files ?? defaultSegmentFilePool
  }

  stats(): LogStats {
    let bytes = 0
    for (const s of this.#segments) bytes += s.durableSize
    const first = this.#segments.find((s) => s.firstTimestamp >= 0)
    let newest = -1
    for (const s of this.#segments) if (s.maxTimestamp > newest) newest = s.maxTimestamp
    return {
      startOffset: this.startOffset,
      endOffset: this.#endOffset,
      segments: this.#segments.length,
      bytes,
      oldestTimestamp: first?.firstTimestamp ?? -1,
      newestTimestamp: newest,
    }
  }

  // ---- appending -------------------------------------------------------------------------------

  /**
   * Appends records as one batch. Resolves once the batch is durable under the policy, never
   * earlier; offsets are assigned now, so concurrent appends keep their call order.
   */
  append(records: readonly AppendRecord[]): Promise<AppendResult> {
    if (this.#state !== 'open' || this.#resetting) return Promise.reject(this.#refusal())
    let buf: Buffer
    try {
      buf = encodeBatch(records, this.#nextOffset)
    } catch (err) {
      if (err instanceof RecordTooLargeError) return Promise.reject(errors.logRecordTooLarge(err.bytes, err.limit))
      return Promise.reject(err)
    }
    if (buf.length > this.options.segmentBytes) {
      return Promise.reject(errors.logBatchTooLarge(buf.length, this.options.segmentBytes))
    }
    const baseOffset = this.#nextOffset
    const lastOffset = baseOffset + records.length - 1
    this.#nextOffset = lastOffset + 1
    return new Promise<AppendResult>((resolve, reject) => {
      this.#pending.push({ startedAt: this.options.observer === undefined ? 0 : performance.now(), buf, baseOffset, lastOffset, resolve, reject })
      this.#pendingBytes += buf.length
      this.#schedule()
    })
  }

  /**
   * Appends several batches that stand or fall together (a request split to fit segments): all
   * are encoded first, so a bad record queues none of them, then queued at once, so one flush
   * writes them and a failed write rolls back every one. Resolves with the span of offsets.
   */
  appendAll(parts: readonly (readonly AppendRecord[])[]): Promise<AppendResult> {
    if (parts.length === 1) return this.append(parts[0]!)
    if (this.#state !== 'open' || this.#resetting) return Promise.reject(this.#refusal())
    const bufs: Buffer[] = []
    let offset = this.#nextOffset
    for (const records of parts) {
      let buf: Buffer
      try {
        buf = encodeBatch(records, offset)
      } catch (err) {
        if (err instanceof RecordTooLargeError) return Promise.reject(errors.logRecordTooLarge(err.bytes, err.limit))
        return Promise.reject(err)
      }
      if (buf.length > this.options.segmentBytes) return Promise.reject(errors.logBatchTooLarge(buf.length, this.options.segmentBytes))
      bufs.push(buf)
      offset += records.length
    }
    const baseOffset = this.#nextOffset
    const lastOffset = offset - 1
    this.#nextOffset = offset
    return new Promise<AppendResult>((resolve, reject) => {
      let left = bufs.length
      let failed = false
      const startedAt = this.options.observer === undefined ? 0 : performance.now()
      let at = baseOffset
      for (let k = 0; k < bufs.length; k++) {
        const n = parts[k]!.length
        this.#pending.push({
          startedAt,
          buf: bufs[k]!,
          baseOffset: at,
          lastOffset: at + n - 1,
          resolve: () => {
            if (--left === 0 && !failed) resolve({ baseOffset, lastOffset })
          },
          reject: (e) => {
            if (failed) return
            failed = true
            reject(e)
          },
        })
        this.#pendingBytes += bufs[k]!.length
        at += n
      }
      this.#schedule()
    })
  }

  /**
   * Appends batches as another log stored them (a stream handed over from another node): each
   * must pass its CRC and start where this log ends, so offsets, timestamps and bytes stay what
   * they were. Resolves once all are durable under the policy; none is queued if any is refused.
   */
  appendStored(batches: readonly Buffer[]): Promise<AppendResult> {
    if (this.#state !== 'open' || this.#resetting) return Promise.reject(this.#refusal())
    if (batches.length === 0) return Promise.resolve({ baseOffset: this.#nextOffset, lastOffset: this.#nextOffset - 1 })
    let offset = this.#nextOffset
    const items: Array<{ buf: Buffer; base: number; last: number }> = []
    for (const buf of batches) {
      const check = checkBatch(buf, 0, buf.length)
      if (!check.ok || check.header.length !== buf.length) return Promise.reject(errors.logCorrupt(this.dir, offset, check.ok ? `a stored batch of ${check.header.length} bytes came in ${buf.length}` : check.reason))
      if (check.header.baseOffset !== offset) return Promise.reject(errors.logCorrupt(this.dir, offset, `a stored batch starts at offset ${check.header.baseOffset}, not at this log's end ${offset}`))
      if (buf.length > this.options.segmentBytes) return Promise.reject(errors.logBatchTooLarge(buf.length, this.options.segmentBytes))
      const last = batchLastOffset(check.header)
      items.push({ buf, base: offset, last })
      offset = last + 1
    }
    const baseOffset = this.#nextOffset
    this.#nextOffset = offset
    return new Promise<AppendResult>((resolve, reject) => {
      let left = items.length
      let failed = false
      const startedAt = this.options.observer === undefined ? 0 : performance.now()
      for (const it of items) {
        this.#pending.push({
          startedAt,
          buf: it.buf,
          baseOffset: it.base,
          lastOffset: it.last,
          resolve: () => {
            if (--left === 0 && !failed) resolve({ baseOffset, lastOffset: offset - 1 })
          },
          reject: (e) => {
            if (failed) return
            failed = true
            reject(e)
          },
        })
        this.#pendingBytes += it.buf.length
      }
      this.#schedule()
    })
  }

  /**
   * Drops every record and starts the log again, empty, at `base`: a stream's copy on a node that
   * is no longer its home, or about to receive it from the node that was. Waits for appends in
   * flight; readers see an empty log ending at `base`.
   */
  async reset(base: number): Promise<void> {
    if (this.#state !== 'open') throw this.#state === 'failed' ? this.#failedError() : errors.logClosed(this.dir)
    // No append from here until the reset is done; those queued go first.
    this.#resetting = true
    try {
      while (this.#pending.length > 0 || this.#flushing) {
        this.#startFlush()
        await this.#flushDone
      }
      await this.#runExclusive(() => this.#reset(base))
    } finally {
      this.#resetting = false
    }
  }

  async #reset(base: number): Promise<void> {
    {
      const old = this.#segments
      // The new segment first: a crash between the two leaves a gap, which recovery refuses, so
      // the old ones are renamed away (and removed at the next open) before it is made.
      for (const seg of old) {
        seg.markDeleted()
        for (const p of [seg.logPath, seg.indexPath, seg.timeIndexPath]) await rename(p, `${p}.deleted`).catch(ignoreMissing)
      }
      await syncDir(this.dir)
      const seg = new Segment(this.dir, base, this.options.now(), this.options.fsync === 'always', this.#files)
      await seg.create()
      await syncDir(this.dir)
      this.#segments = [seg]
      for (const s of old) {
        await s.closeFiles()
        for (const p of [s.logPath, s.indexPath, s.timeIndexPath]) await unlink(`${p}.deleted`).catch(ignoreMissing)
      }
      this.#nextOffset = base
      this.#advanceEnd(base)
      this.#endOffset = base
    }
  }

  /**
   * Drops every record at or past `offset`, cut at the start of the batch that holds it (a batch
   * is never split), and resolves with the new end: a follower's copy cutting the tail its new
   * leader never had (KIP-101). Waits for appends in flight, as `reset` does; at or below the
   * log's start it is `reset(offset)`. Durable when it resolves.
   */
  async truncate(offset: number): Promise<number> {
    if (this.#state !== 'open') throw this.#state === 'failed' ? this.#failedError() : errors.logClosed(this.dir)
    this.#resetting = true
    try {
      while (this.#pending.length > 0 || this.#flushing) {
        this.#startFlush()
        await this.#flushDone
      }
      return await this.#runExclusive(async () => {
        if (offset >= this.#endOffset) return this.#endOffset
        if (offset <= this.startOffset) {
          await this.#reset(offset)
          return offset
        }
        await this.#truncate(offset)
        return this.#endOffset
      })
    } finally {
      this.#resetting = false
    }
  }

  async #truncate(offset: number): Promise<void> {
    const k = this.#segments.indexOf(this.#segmentFor(offset)!)
    const seg = this.#segments[k]!
    // The batch holding `offset`: from the index's nearest entry below it, header by header.
    let position = seg.index.floorPosition(offset - seg.base)
    for (;;) {
      const header = readBatchHeader(await seg.read(position, batchHeaderBytes))
      if (batchLastOffset(header) >= offset) break
      position += header.length
    }
    const later = this.#segments.slice(k + 1)
    // Later segments go first, renamed away as a reset does: a crash midway leaves whole
    // segments, or the cut one as its index files say, which recovery checks again.
    for (const s of later) {
      s.markDeleted()
      for (const p of [s.logPath, s.indexPath, s.timeIndexPath]) await rename(p, `${p}.deleted`).catch(ignoreMissing)
    }
    // The cut segment's indexes may point past the cut: rebuilt below, from its bytes.
    await seg.closeFiles()
    for (const p of [seg.indexPath, seg.timeIndexPath]) await unlink(p).catch(ignoreMissing)
    await syncDir(this.dir)
    for (const s of later) {
      await s.closeFiles()
      for (const p of [s.logPath, s.indexPath, s.timeIndexPath]) await unlink(`${p}.deleted`).catch(ignoreMissing)
    }
    // A new object for the cut segment: it is the active one now (opened with O_DSYNC under
    // fsync: always), its indexes and timestamps as a scan of what is left finds them.
    const cut = new Segment(this.dir, seg.base, seg.createdAtMs, this.options.fsync === 'always', this.#files)
    const fh = await cut.file()
    await fh.truncate(position)
    await fh.datasync()
    const scanned = await cut.scan(0, position, true, this.options.indexIntervalBytes)
    if (scanned.damage !== undefined) throw errors.logCorrupt(cut.logPath, scanned.damage.position, scanned.damage.reason)
    cut.size = cut.durableSize = position
    await cut.writeIndexes(true)
    this.#segments = [...this.#segments.slice(0, k), cut]
    this.#nextOffset = cut.nextOffset
    this.#endOffset = cut.nextOffset
  }

  /** Syncs what is written, whatever the fsync policy (a copy handed over must be durable). */
  sync(): Promise<void> {
    return this.#runExclusive(async () => {
      if (this.#state !== 'open') return
      await (await this.#active().file()).datasync()
    })
  }

  #schedule(): void {
    if (this.#flushing) return // the running loop picks the new batch up
    if (this.options.fsync === 'batch' && this.#pendingBytes < this.options.maxBatchBytes) {
      // Group commit without a fixed toll on latency: a log idle for a whole interval writes at
      // once; one that flushed within the interval gathers until the interval since that flush
      // has passed. Under load the write in flight is the batching window (see #startFlush).
      // The wait is also capped at what the last sync took: waiting longer than one fsync can
      // save at most that fsync, while a closed-loop client (send, await the confirm, send) pays
      // the whole wait on every round trip.
      const sinceLast = performance.now() - this.#lastFlushEnd
      if (sinceLast < this.options.intervalMs) {
        const wait = Math.min(this.options.intervalMs - sinceLast, this.#lastSyncMs)
        if (wait >= 0.05) {
          this.#timer ??= setTimeout(() => this.#startFlush(), wait)
          return
        }
      }
    }
    this.#startFlush()
  }

  #startFlush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#flushing || this.#pending.length === 0) return
    this.#flushing = true
    this.#flushDone = this.#runExclusive(() => this.#flushLoop())
      .finally(() => {
        this.#flushing = false
        this.#lastFlushEnd = performance.now()
        // Appends that raced the end of the loop arrived while the log was busy: under load the
        // write itself was their batching window, so they go now rather than after another interval.
        if (this.#pending.length > 0 && this.#state !== 'failed') this.#startFlush()
      })
      // Nobody awaits a flush but close(): a throw here would otherwise end the process.
      .catch((err: unknown) => noteBackgroundError('log.flush', err, (e) => this.options.logger?.warn({ dir: this.dir, err: e }, 'log flush failed')))
  }

  /**
   * Drains the queue. Whatever queued while a write or sync was in flight goes in the next round
   * at once: under load the sync itself is the batching window, so `always` and `batch` both
   * group-commit, and every caller still resolves only after the sync that covered its batch.
   */
  async #flushLoop(): Promise<void> {
    while (this.#pending.length > 0 && this.#state !== 'failed') {
      const items = this.#pending
      this.#pending = []
      this.#pendingBytes = 0
      const mark = { segments: this.#segments.length, active: this.#active().mark() }
      try {
        await this.#writeItems(items)
      } catch (err) {
        await this.#writeFailed(err, items, mark)
        return
      }
      for (const it of items) it.resolve({ baseOffset: it.baseOffset, lastOffset: it.lastOffset })
      const observer = this.options.observer
      if (observer !== undefined) {
        const now = performance.now()
        let records = 0
        let bytes = 0
        const latencies = items.map((it) => {
          records += it.lastOffset - it.baseOffset + 1
          bytes += it.buf.length
          return (now - it.startedAt) / 1000
        })
        this.#observe(() => observer.appended(latencies, records, bytes))
      }
    }
  }

  /**
   * Writes the items, rolling into new segments as they fill. Nothing becomes visible until
   * every item is written and synced: readers see the whole flush or none of it, so a failure
   * anywhere can be rolled back without taking away anything that was read or confirmed.
   */
  async #writeItems(items: Pending[]): Promise<void> {
    const touched: Segment[] = []
    let i = 0
    while (i < items.length) {
      let active = this.#active()
      if (!active.isEmpty && this.options.now() - active.createdAtMs >= this.options.segmentAgeMs) active = await this.#roll(items[i]!.baseOffset)
      // Take as many batches as fit in the active segment; roll when the next one does not.
      const group: Buffer[] = []
      let bytes = 0
      const startPosition = active.size
      while (i < items.length) {
        const len = items[i]!.buf.length
        if (active.size + bytes + len > this.options.segmentBytes && (active.size + bytes) > 0) break
        group.push(items[i]!.buf)
        bytes += len
        i++
      }
      if (group.length === 0) {
        await this.#roll(items[i]!.baseOffset)
        continue
      }
      const fh = await active.file()
      let position = startPosition
      for (const b of group) {
        active.noteBatch(readBatchHeader(b), position, this.options.indexIntervalBytes)
        position += b.length
      }
      let written = 0
      while (written < bytes) {
        const rest = written === 0 ? group : [Buffer.concat(group).subarray(written)]
        const { bytesWritten } = await fh.writev(rest, startPosition + written)
        if (bytesWritten === 0) throw new Error(`short write to ${active.logPath}`)
        written += bytesWritten
      }
      if (this.options.fsync !== 'never') {
        // With O_DSYNC the write was the sync; otherwise time the fdatasync alone.
        const t1 = performance.now()
        if (!active.dsync) await fh.datasync()
        this.#lastSyncMs = performance.now() - t1
        const seconds = this.#lastSyncMs / 1000
        this.#observe(() => this.options.observer?.synced(seconds))
        this.#syncs++
      }
      active.size += bytes
      this.#appendedBatches += group.length
      touched.push(active)
      if (i < items.length) await this.#roll(items[i]!.baseOffset)
    }
    for (const seg of touched) seg.durableSize = seg.size
    this.#advanceEnd(this.#active().nextOffset)
  }

  /** Metrics are the observer's business: a throw there must not fail a write that succeeded. */
  #observe(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      noteBackgroundError('log.observer', err, (e) => this.options.logger?.warn({ dir: this.dir, err: e }, 'log observer failed'))
    }
  }

  #active(): Segment {
    return this.#segments[this.#segments.length - 1]!
  }

  /** Seals the active segment (data and indexes synced whatever the policy) and starts a new one. */
  async #roll(base: number): Promise<Segment> {
    const old = this.#active()
    if (old.isEmpty && old.base === base) return old
    await old.seal()
    const seg = new Segment(this.dir, base, this.options.now(), this.options.fsync === 'always', this.#files)
    await seg.create()
    // In the list before the directory sync: should that fail, the rollback finds and removes it.
    this.#segments.push(seg)
    await syncDir(this.dir)
    return seg
  }

  /**
   * A write or sync failed (a full disk, an I/O error). The log goes back to where this flush
   * started, which is the last durable end: segments the flush created are removed, the active
   * one is cut back (file, indexes, counters). Every batch of the flush, and every append queued
   * behind it, fails; nothing of them is kept, served or recovered, and offsets are handed out
   * again from the durable end. The log then takes appends again, so a disk that fills and
   * empties needs no restart. Only when the rollback itself fails does the log stop taking
   * appends until it is reopened.
   */
  async #writeFailed(err: unknown, items: Pending[], mark: { segments: number; active: SegmentMark }): Promise<void> {
    this.#writeErrors++
    let rolledBack = true
    try {
      await this.#rollBack(mark)
    } catch (rollbackErr) {
      rolledBack = false
      this.options.logger?.warn({ dir: this.dir, err: rollbackErr }, 'log rollback after a failed write failed')
    }
    if (!rolledBack) {
      this.#fail(err, items)
    } else {
      this.#nextOffset = this.#endOffset
      const code = (err as NodeJS.ErrnoException).code
      this.options.logger?.warn({ dir: this.dir, err, endOffset: this.#endOffset }, 'log write failed; rolled back to the last durable batch')
      const error = errors.logWriteFailed(this.dir, typeof code === 'string' ? code : 'EIO', err)
      const queued = this.#pending
      this.#pending = []
      this.#pendingBytes = 0
      for (const it of items) it.reject(error)
      for (const it of queued) it.reject(error)
    }
    // Told after the state is settled and before the callers hear: a publisher that retries at
    // once meets the disk alarm, not the same full disk.
    const report = this.options.onWriteError
    if (report !== undefined) {
      try {
        report(err)
      } catch (reportErr) {
        noteBackgroundError('log.onWriteError', reportErr)
      }
    }
  }

  async #rollBack(mark: { segments: number; active: SegmentMark }): Promise<void> {
    let removed = false
    while (this.#segments.length > mark.segments) {
      const seg = this.#segments.pop()!
      await seg.closeFiles()
      for (const p of [seg.logPath, seg.indexPath, seg.timeIndexPath]) await unlink(p).catch(ignoreMissing)
      removed = true
    }
    if (removed) await syncDir(this.dir)
    await this.#active().rollBack(mark.active)
  }

  #fail(err: unknown, items: Pending[]): void {
    // The write failed and so did the rollback: what is on disk past the durable end is unknown,
    // so the log stops taking appends until it is reopened (recovery then cuts a torn tail).
    this.#state = 'failed'
    this.#failure = err
    this.options.logger?.warn({ dir: this.dir, err }, 'log write failed; appends are refused until reopen')
    const error = this.#failedError()
    for (const it of items) it.reject(error)
    for (const it of this.#pending) it.reject(error)
    this.#pending = []
    this.#pendingBytes = 0
  }

  /** Why an append is refused now. */
  #refusal(): SluiceError {
    if (this.#state === 'failed') return this.#failedError()
    if (this.#state === 'open') return errors.logResetting(this.dir)
    return errors.logClosed(this.dir)
  }

  #failedError(): SluiceError {
    return errors.logFailed(this.dir, this.#failure)
  }

  #advanceEnd(end: number): void {
    this.#endOffset = end
    if (this.#waiters.length === 0) return
    const still: Waiter[] = []
    for (const w of this.#waiters) {
      if (w.offset < end) {
        if (w.timer !== undefined) clearTimeout(w.timer)
        w.resolve(true)
      } else {
        still.push(w)
      }
    }
    this.#waiters = still
  }

  /**
   * Resolves true once `offset` is durable and readable, false after `timeoutMs`, on close, or
   * when `signal` aborts (a server stopping answers its long polls rather than waiting them out).
   */
  waitFor(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (offset < this.#endOffset) return Promise.resolve(true)
    if (this.#state !== 'open' || timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve(false)
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(w.timer)
        this.#waiters = this.#waiters.filter((x) => x !== w)
        resolve(false)
      }
      const w: Waiter = {
        offset,
        resolve: (ready) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(ready)
        },
        timer: undefined,
      }
      w.timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w)
        w.resolve(false)
      }, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(w)
    })
  }

  // ---- reading ---------------------------------------------------------------------------------

  #segmentFor(offset: number): Segment | undefined {
    const segs = this.#segments
    let lo = 0
    let hi = segs.length - 1
    let found: Segment | undefined
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (segs[mid]!.base <= offset) {
        found = segs[mid]
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found
  }

  /**
   * Whole batches from `from` on, up to about `maxBytes` (at least one batch), CRC-checked.
   * Memory is bounded by maxBytes or one batch, whichever is larger.
   */
  async readBatches(from: number, maxBytes = defaultReadBytes): Promise<BatchReadResult> {
    if (from < this.startOffset) from = this.startOffset
    if (from >= this.#endOffset) return { batches: [], nextOffset: from }
    let seg = this.#segmentFor(from)
    while (seg !== undefined && seg.nextOffset <= from) seg = this.#segments[this.#segments.indexOf(seg) + 1]
    if (seg === undefined) return { batches: [], nextOffset: from }
    let position = seg.index.floorPosition(from - seg.base)
    const batches: Buffer[] = []
    let nextOffset = from
    let budget = maxBytes
    while (budget > 0 && position < seg.durableSize) {
      let chunk = await seg.read(position, Math.min(budget, seg.durableSize - position))
      if (chunk.length < batchHeaderBytes) chunk = await seg.read(position, batchHeaderBytes)
      let p = 0
      while (p + batchHeaderBytes <= chunk.length) {
        const len = chunk.readUInt32BE(p)
        if (p + len > chunk.length) {
          if (p === 0 && batches.length === 0) {
            // A single batch larger than the budget: read it whole rather than stall.
            chunk = await seg.read(position, len)
            continue
          }
          break
        }
        const check = checkBatch(chunk, p, chunk.length - p)
        if (!check.ok) throw errors.logCorrupt(seg.logPath, position + p, check.reason)
        const last = batchLastOffset(check.header)
        if (last >= from) {
          batches.push(chunk.subarray(p, p + len))
          nextOffset = last + 1
          // Only what is returned counts: batches skipped on the way to `from` (at most an index
          // interval's worth) must not use up a small budget and return nothing.
          budget -= len
        }
        p += len
      }
      if (p === 0) break
      position += p
    }
    return { batches, nextOffset }
  }

  /** Records from `from` on, decoded; bodies are views of one read buffer. */
  async read(from: number, options: ReadOptions = {}): Promise<ReadResult> {
    const start = Math.max(from, this.startOffset)
    const end = options.end ?? Number.MAX_SAFE_INTEGER
    if (start >= end) return { records: [], nextOffset: start }
    // Offsets are dense from `start`: the bound is a count.
    const maxRecords = Math.min(options.maxRecords ?? Number.MAX_SAFE_INTEGER, end - start)
    const { batches } = await this.readBatches(from, options.maxBytes ?? defaultReadBytes)
    const records: StoredRecord[] = []
    for (const b of batches) {
      decodeRecords(b, start, records)
      if (records.length >= maxRecords) break
    }
    if (records.length > maxRecords) records.length = maxRecords
    while (records.length > 0 && records[records.length - 1]!.offset >= end) records.pop()
    const last = records[records.length - 1]
    return { records, nextOffset: last === undefined ? start : last.offset + 1 }
  }

  /** The first offset whose record has a timestamp >= `ts`, or endOffset if none. */
  async offsetForTime(ts: number): Promise<number> {
    for (const seg of this.#segments) {
      if (seg.maxTimestamp < ts) continue
      let from = seg.base + seg.index.floorOffsetForTime(ts)
      while (from < seg.nextOffset) {
        const { records, nextOffset } = await this.read(from, { maxBytes: 256 * 1024 })
        if (records.length === 0) break
        for (const r of records) if (r.timestamp >= ts) return r.offset
        from = nextOffset
      }
    }
    return this.#endOffset
  }

  /** Follows the log from `from`, waking as new records become durable, until `signal` aborts. */
  async *tail(from: number, signal?: AbortSignal): AsyncGenerator<StoredRecord> {
    let next = from
    while (signal?.aborted !== true) {
      const { records, nextOffset } = await this.read(next)
      for (const r of records) yield r
      next = nextOffset
      if (records.length === 0) {
        if (this.#state !== 'open') return
        await this.waitFor(next, 1000)
      }
    }
  }

  // ---- retention -------------------------------------------------------------------------------

  /**
   * Drops whole segments past maxAge or over maxBytes, or (interest retention) wholly below
   * `settledBelow`, oldest first. The active segment is never
   * dropped; when it alone holds only expired records it is rolled first, so an idle stream does
   * not keep old data forever. Each file is renamed to `.deleted` before it is unlinked, so a
   * crash mid-way leaves a log that opens (leftovers are removed at open).
   */
  enforceRetention(settledBelow?: number): Promise<RetentionResult> {
    return this.#runExclusive(async () => {
      const { maxAgeMs, maxBytes } = this.options.retention
      const now = this.options.now()
      let deletedSegments = 0
      let deletedBytes = 0
      if (this.#state !== 'open') return { deletedSegments, deletedBytes }
      const active = this.#active()
      if (maxAgeMs !== undefined && !active.isEmpty && active.maxTimestamp < now - maxAgeMs && this.#pending.length === 0) {
        await this.#roll(this.#nextOffset)
      }
      let total = 0
      for (const s of this.#segments) total += s.size
      while (this.#segments.length > 1) {
        const oldest = this.#segments[0]!
        const expired = maxAgeMs !== undefined && oldest.maxTimestamp < now - maxAgeMs
        const oversize = maxBytes !== undefined && total - oldest.size >= maxBytes
        // Interest: every group settled past the whole segment, so nobody needs it any more.
        const unwanted = settledBelow !== undefined && oldest.nextOffset <= settledBelow
        if (!expired && !oversize && !unwanted) break
        this.#segments.shift()
        await this.#deleteSegment(oldest)
        total -= oldest.size
        deletedSegments++
        deletedBytes += oldest.size
      }
      if (deletedSegments > 0) this.options.logger?.info({ dir: this.dir, deletedSegments, deletedBytes, startOffset: this.startOffset }, 'retention dropped segments')
      return { deletedSegments, deletedBytes }
    })
  }

  async #deleteSegment(seg: Segment): Promise<void> {
    seg.markDeleted()
    const paths = [seg.logPath, seg.indexPath, seg.timeIndexPath]
    for (const p of paths) await rename(p, `${p}.deleted`).catch(ignoreMissing)
    await syncDir(this.dir)
    // A read in flight keeps its handle until it is done; the unlinked file lives until then.
    await seg.closeFiles()
    for (const p of paths) await unlink(`${p}.deleted`).catch(ignoreMissing)
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Flushes pending appends, syncs everything, and writes the clean-shutdown marker. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return
    const wasFailed = this.#state === 'failed'
    this.#state = 'closing'
    if (this.#timer !== undefined) this.#startFlush()
    await this.#flushDone
    await this.#runExclusive(async () => {
      for (const w of this.#waiters) {
        if (w.timer !== undefined) clearTimeout(w.timer)
        w.resolve(false)
      }
      this.#waiters = []
      let synced = false
      if (!wasFailed && this.#segments.length > 0) {
        try {
          const active = this.#active()
          await active.writeIndexes(true)
          await (await active.file()).datasync()
          synced = true
        } catch (err) {
          // A full disk at close: no marker, so the next open scans the last segment instead.
          this.options.logger?.warn({ dir: this.dir, err }, 'log close could not sync its indexes; the next open rebuilds them')
        }
      }
      // Descriptors go back before the marker takes one: a close under a tight fd limit works.
      for (const s of this.#segments) await s.closeFiles()
      if (synced) {
        try {
          await writeFile(join(this.dir, cleanMarker), `${this.#endOffset}\n`)
          await syncDir(this.dir)
        } catch (err) {
          this.options.logger?.warn({ dir: this.dir, err }, 'log close could not write its clean-shutdown marker; the next open scans the last segment')
        }
      }
    })
    this.#state = 'closed'
  }

  #runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#exclusive.then(fn)
    this.#exclusive = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  // ---- recovery --------------------------------------------------------------------------------

  async #recover(): Promise<void> {
    const started = performance.now()
    const logger = this.options.logger
    await mkdir(this.dir, { recursive: true })
    const removedFiles: string[] = []
    const rebuiltIndexes: string[] = []
    const truncated: { file: string; position: number; bytes: number; fromOffset: number; reason: string }[] = []
    const names = await readdir(this.dir)
    let clean = names.includes(cleanMarker)
    const bases = new Set<number>()
    const logs = new Set<number>()
    for (const name of names) {
      if (name.endsWith('.deleted')) {
        await unlink(join(this.dir, name))
        removedFiles.push(name)
        continue
      }
      const m = segmentNamePattern.exec(name)
      if (m === null) continue
      const base = Number(m[1])
      bases.add(base)
      if (m[2] === 'log') logs.add(base)
    }
    // Index files whose segment is gone are leftovers of an interrupted retention.
    for (const base of bases) {
      if (logs.has(base)) continue
      for (const ext of ['index', 'timeindex']) {
        const name = `${String(base).padStart(20, '0')}.${ext}`
        if (names.includes(name)) {
          await unlink(join(this.dir, name))
          removedFiles.push(name)
        }
      }
    }
    const sorted = [...logs].sort((a, b) => a - b)
    const now = this.options.now()
    let current: Segment | undefined
    try {
      for (let k = 0; k < sorted.length; k++) {
        const base = sorted[k]!
        const isLast = k === sorted.length - 1
        const seg = new Segment(this.dir, base, now, this.options.fsync === 'always' && isLast, this.#files)
        current = seg
        const fileBytes = (await stat(seg.logPath)).size
        const indexOk = await seg.index.load(seg.indexPath, seg.timeIndexPath, Math.max(fileBytes, 1))
        if (!indexOk) {
          seg.resetIndex()
          rebuiltIndexes.push(seg.logPath)
        }
        // A clean stop synced every index, so only the bytes after the last index entry need a look;
        // otherwise the last segment, whose indexes are written only at a roll or a close, is walked
        // from its start. Repair walks every segment: damage inside a sealed one is invisible to the
        // tail check.
        const full = this.options.repair || !indexOk || (isLast && !clean)
        let from = 0
        if (!full && seg.index.entries > 0) {
          from = seg.index.lastPosition()
          seg.nextOffset = base + seg.index.lastRelativeOffset()
          seg.maxTimestamp = seg.index.lastTimestamp()
        }
        if (full) seg.resetIndex()
        const result = await seg.scan(from, fileBytes, full, this.options.indexIntervalBytes)
        if (!full) {
          seg.bytesSinceIndex = result.validEnd - from
          seg.nextOffset = result.nextOffset
          seg.maxTimestamp = Math.max(seg.maxTimestamp, result.maxTimestamp)
          if (seg.firstTimestamp < 0) seg.firstTimestamp = await firstTimestampOf(seg)
        }
        if (full && indexOk) rebuiltIndexes.push(seg.logPath)
        if (result.damage !== undefined) {
          const d = result.damage
          const tailDamage = isLast && !d.middle
          if (!tailDamage && !this.options.repair) {
            throw errors.logCorrupt(seg.logPath, d.position, `${d.reason}${d.middle ? ' with whole batches after it' : ' in a sealed segment'}`)
          }
          if (!full) {
            // Damage found after a trusted index: rebuild this segment's index from scratch too.
            seg.resetIndex()
            seg.nextOffset = base
            seg.maxTimestamp = -1
            seg.firstTimestamp = -1
            await seg.scan(0, d.position, true, this.options.indexIntervalBytes)
            rebuiltIndexes.push(seg.logPath)
          }
          await seg.truncate(d.position)
          const entry = { file: seg.logPath, position: d.position, bytes: fileBytes - d.position, fromOffset: result.nextOffset, reason: d.reason }
          truncated.push(entry)
          logger?.warn(entry, 'log recovery truncated damaged bytes')
          clean = false
        }
        seg.size = seg.durableSize = result.damage?.position ?? result.validEnd
        if (seg.firstTimestamp > 0) seg.createdAtMs = seg.firstTimestamp
        if (seg.index.unwritten) {
          try {
            await seg.writeIndexes(false)
          } catch (err) {
            // A full disk must not stop the start: the index is whole in memory, and an index file
            // that is short or torn is rebuilt or extended by a later open.
            logger?.warn({ file: seg.indexPath, err }, 'log recovery could not write a rebuilt index')
          }
        }
        this.#segments.push(seg)
        current = undefined
        // A gap between segments means files were lost; refuse rather than renumber offsets.
        const prev = this.#segments[this.#segments.length - 2]
        if (prev !== undefined && prev.nextOffset !== seg.base && !this.options.repair) {
          throw errors.logCorrupt(seg.logPath, 0, `segment starts at offset ${seg.base} but the previous one ends at ${prev.nextOffset}`)
        }
        // Only the last segment stays open (for appends); a sealed one costs no descriptor until read.
        if (!isLast) await seg.release()
      }
    } catch (err) {
      await current?.closeFiles()
      for (const s of this.#segments) await s.closeFiles()
      throw err
    }
    if (this.#segments.length === 0) {
      clean = true // a new log has nothing to recover
      const seg = new Segment(this.dir, 0, now, this.options.fsync === 'always', this.#files)
      await seg.create()
      await syncDir(this.dir)
      this.#segments.push(seg)
    }
    // Remove the marker durably before any append, or a later crash would look like a clean stop.
    if (names.includes(cleanMarker)) {
      await rm(join(this.dir, cleanMarker), { force: true })
      await syncDir(this.dir)
    }
    this.#nextOffset = this.#active().nextOffset
    this.#endOffset = this.#nextOffset
    this.#recovery = { clean, segments: this.#segments.length, truncated, rebuiltIndexes, removedFiles, durationMs: performance.now() - started }
    logger?.info({ dir: this.dir, ...this.#recovery, startOffset: this.startOffset, endOffset: this.#endOffset }, 'log opened')
  }
}

async function firstTimestampOf(seg: Segment): Promise<number> {
  const head = await (await seg.file()).read(Buffer.alloc(batchHeaderBytes), 0, batchHeaderBytes, 0)
  return head.bytesRead < batchHeaderBytes ? -1 : readBatchHeader(head.buffer).firstTimestamp
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
}

/** fsync a directory so a created, renamed or removed entry survives a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export function openLog(dir: string, options: Partial<LogOptions> = {}): Promise<Log> {
  return Log.open(dir, options)
}
