import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { batchHeaderBytes, batchLastOffset, checkBatch, type BatchHeader } from './format.js'
import { defaultSegmentFilePool, type SegmentFilePool } from './file-pool.js'
import { SegmentIndex } from './segment-index.js'

export const segmentFileName = (base: number, ext: 'log' | 'index' | 'timeindex'): string => `${String(base).padStart(20, '0')}.${ext}`
export const segmentNamePattern = /^(\d{20})\.(log|index|timeindex)$/

const scanChunkBytes = 1024 * 1024

export interface ScanDamage {
  readonly position: number
  readonly reason: string
  /** A later whole batch exists past the damage: this is not a torn tail but corruption inside. */
  readonly middle: boolean
}

export interface ScanResult {
  readonly validEnd: number
  readonly nextOffset: number
  readonly maxTimestamp: number
  readonly firstTimestamp: number
  readonly damage: ScanDamage | undefined
}

/** What a rolled-back write restores: the segment as it was before the write. */
export interface SegmentMark {
  readonly size: number
  readonly nextOffset: number
  readonly maxTimestamp: number
  readonly firstTimestamp: number
  readonly bytesSinceIndex: number
  readonly indexEntries: number
  readonly timeEntries: number
}

/**
 * One segment: its log file and two sparse indexes. `size` counts bytes written, `durableSize`
 * bytes that readers may see (synced under the log's policy); the two differ only while a
 * write is in flight.
 *
 * Descriptors: the active segment holds one write handle on its log file; the index files are
 * opened only to be written (at a roll or a close). A sealed segment holds nothing: its reads
 * borrow a handle from the process-wide pool.
 */
export class Segment {
  readonly base: number
  readonly logPath: string
  readonly indexPath: string
  readonly timeIndexPath: string
  readonly index = new SegmentIndex()
  size = 0
  durableSize = 0
  nextOffset: number
  maxTimestamp = -1
  firstTimestamp = -1
  createdAtMs: number
  bytesSinceIndex = 0
  readonly #pool: SegmentFilePool
  #fh: FileHandle | undefined
  #opening: Promise<FileHandle> | undefined
  /** Reads in flight on the write handle: it is closed only once they finish. */
  #reads = 0
  #releasing = false
  #deleted = false

  /**
   * Open for writing with O_DSYNC (fsync: always): each write returns once durable, which saves
   * the separate fdatasync round trip through libuv's thread pool on every append.
   */
  readonly dsync: boolean

  constructor(dir: string, base: number, createdAtMs: number, dsync = false, pool: SegmentFilePool = defaultSegmentFilePool) {
    this.dsync = dsync
    this.base = base
    this.nextOffset = base
    this.createdAtMs = createdAtMs
    this.#pool = pool
    this.logPath = join(dir, segmentFileName(base, 'log'))
    this.indexPath = join(dir, segmentFileName(base, 'index'))
    this.timeIndexPath = join(dir, segmentFileName(base, 'timeindex'))
  }

  get isEmpty(): boolean {
    return this.size === 0
  }

  /** Whether the segment holds its write handle now. */
  get holdsHandle(): boolean {
    return this.#fh !== undefined
  }

  /** The write handle (opened on first use): the active segment's, or recovery's while it scans. */
  async file(): Promise<FileHandle> {
    this.#releasing = false
    if (this.#fh !== undefined) return this.#fh
    this.#opening ??= open(this.logPath, constants.O_RDWR | (this.dsync ? constants.O_DSYNC : 0)).then(
      (fh) => {
        this.#fh = fh
        this.#opening = undefined
        this.#pool.noteWriteHandle(1)
        return fh
      },
      (err: unknown) => {
        this.#opening = undefined
        throw err
      },
    )
    return this.#opening
  }

  /** Creates the log file of a new segment; its index files come at its first index write. */
  async create(): Promise<void> {
    const fh = await open(this.logPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | (this.dsync ? constants.O_DSYNC : 0))
    this.#fh = fh
    this.#pool.noteWriteHandle(1)
  }

  /** Writes the index entries the files lack (and syncs them with `sync`). */
  writeIndexes(sync: boolean): Promise<void> {
    return this.index.writeTo(this.indexPath, this.timeIndexPath, sync)
  }

  /**
   * Seals the segment at a roll: indexes written and synced, data synced whatever the policy,
   * and the write handle given up; later reads go through the pool.
   */
  async seal(): Promise<void> {
    await this.writeIndexes(true)
    await (await this.file()).datasync()
    await this.release()
  }

  /** Registers a batch just appended at `position` in the in-memory indexes. */
  noteBatch(header: BatchHeader, position: number, indexIntervalBytes: number): void {
    const rel = header.baseOffset - this.base
    if (header.maxTimestamp > this.maxTimestamp) this.maxTimestamp = header.maxTimestamp
    if (this.index.entries === 0 || this.bytesSinceIndex >= indexIntervalBytes) {
      this.index.addOffset(rel, position)
      // The time entry holds the running maximum, so every record before it is known older.
      if (this.maxTimestamp > this.index.lastTimestamp()) this.index.addTime(this.maxTimestamp, rel)
      this.bytesSinceIndex = 0
    }
    this.bytesSinceIndex += header.length
    if (this.firstTimestamp < 0) this.firstTimestamp = header.firstTimestamp
    this.nextOffset = batchLastOffset(header) + 1
  }

  /** The segment as it is now, for rollBack() should the next write fail. */
  mark(): SegmentMark {
    return {
      size: this.durableSize,
      nextOffset: this.nextOffset,
      maxTimestamp: this.maxTimestamp,
      firstTimestamp: this.firstTimestamp,
      bytesSinceIndex: this.bytesSinceIndex,
      indexEntries: this.index.entries,
      timeEntries: this.index.timeEntries,
    }
  }

  /**
   * Undoes everything written after `mark`: the log file is cut back and synced, the indexes in
   * memory trimmed, and their files cut too when they were already written past the mark.
   */
  async rollBack(mark: SegmentMark): Promise<void> {
    this.nextOffset = mark.nextOffset
    this.maxTimestamp = mark.maxTimestamp
    this.firstTimestamp = mark.firstTimestamp
    this.bytesSinceIndex = mark.bytesSinceIndex
    this.index.truncateTo(mark.indexEntries, mark.timeEntries)
    await this.truncate(mark.size)
    if (this.index.unwritten) await this.writeIndexes(false)
  }

  /**
   * Reads up to `length` bytes at `position`, never past the durable end. The active segment is
   * read through its write handle; a sealed one borrows a handle from the pool. A segment that
   * retention deleted reads as empty: its records are gone, and the reader moves on to the start.
   */
  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.durableSize - position))
    const buf = into !== undefined && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n)
    if (n === 0) return buf
    if (this.#fh === undefined) {
      if (this.#deleted) return buf.subarray(0, 0)
      try {
        return await this.#pool.use(this, this.logPath, (fh) => readFully(fh, buf, position))
      } catch (err) {
        // Deleted between the check and the open: the file is gone, and so are its records.
        if (this.#deleted && (err as NodeJS.ErrnoException).code === 'ENOENT') return buf.subarray(0, 0)
        throw err
      }
    }
    this.#reads++
    try {
      return await readFully(this.#fh, buf, position)
    } finally {
      this.#reads--
      if (this.#reads === 0 && this.#releasing) await this.release()
    }
  }

  /**
   * Walks batches from `from` to the file end, verifying each CRC, and feeds them to the index
   * when `rebuild` is set. Stops at the first bad batch and reports whether anything whole
   * follows it, which tells a torn tail from damage in the middle.
   */
  async scan(from: number, fileBytes: number, rebuild: boolean, indexIntervalBytes: number): Promise<ScanResult> {
    const fh = await this.file()
    let position = from
    let nextOffset = this.nextOffset
    let maxTimestamp = this.maxTimestamp
    let firstTimestamp = this.firstTimestamp
    let buf = Buffer.allocUnsafe(scanChunkBytes)
    let bufStart = 0
    let bufLen = 0
    while (position < fileBytes) {
      if (position + batchHeaderBytes > bufStart + bufLen || position < bufStart) {
        bufStart = position
        bufLen = (await fh.read(buf, 0, Math.min(buf.length, fileBytes - position), position)).bytesRead
      }
      const inBuf = position - bufStart
      let length = bufLen - inBuf >= 4 ? buf.readUInt32BE(inBuf) : 0
      if (length > bufLen - inBuf && length <= fileBytes - position && length > batchHeaderBytes) {
        // The batch is whole on disk but not in the buffer: reload, growing the buffer if needed.
        if (length > buf.length) buf = Buffer.allocUnsafe(length)
        bufStart = position
        bufLen = (await fh.read(buf, 0, Math.min(buf.length, fileBytes - position), position)).bytesRead
        length = buf.readUInt32BE(0)
      }
      const at = position - bufStart
      const check = checkBatch(buf, at, Math.min(bufLen - at, fileBytes - position))
      if (!check.ok) {
        const middle = await this.#anyWholeBatchAfter(position + 1, fileBytes)
        return { validEnd: position, nextOffset, maxTimestamp, firstTimestamp, damage: { position, reason: check.reason, middle } }
      }
      const h = check.header
      if (h.baseOffset !== nextOffset) {
        const middle = await this.#anyWholeBatchAfter(position + 1, fileBytes)
        return {
          validEnd: position,
          nextOffset,
          maxTimestamp,
          firstTimestamp,
          damage: { position, reason: `batch starts at offset ${h.baseOffset}, expected ${nextOffset}`, middle },
        }
      }
      if (rebuild) {
        this.noteBatch(h, position, indexIntervalBytes)
      }
      nextOffset = batchLastOffset(h) + 1
      if (h.maxTimestamp > maxTimestamp) maxTimestamp = h.maxTimestamp
      if (firstTimestamp < 0) firstTimestamp = h.firstTimestamp
      position += h.length
    }
    return { validEnd: position, nextOffset, maxTimestamp, firstTimestamp, damage: undefined }
  }

  async #anyWholeBatchAfter(from: number, fileBytes: number): Promise<boolean> {
    // Bounded by the segment size, which config bounds; this runs only on damage.
    const fh = await this.file()
    const rest = Buffer.allocUnsafe(Math.max(0, fileBytes - from))
    if (rest.length < batchHeaderBytes) return false
    await fh.read(rest, 0, rest.length, from)
    for (let p = 0; p + batchHeaderBytes <= rest.length; p++) {
      if (rest[p + 8] !== 0x53 || rest[p + 9] !== 0x4c) continue
      if (checkBatch(rest, p, rest.length - p).ok) return true
    }
    return false
  }

  async truncate(bytes: number): Promise<void> {
    const fh = await this.file()
    await fh.truncate(bytes)
    await fh.datasync()
    this.size = bytes
    this.durableSize = bytes
  }

  /** Drops the indexes in memory; the files are rewritten from scratch at the next index write. */
  resetIndex(): void {
    this.index.reset()
    this.bytesSinceIndex = 0
  }

  markDeleted(): void {
    this.#deleted = true
  }

  /** Gives up the write handle, once reads in flight on it are done. */
  async release(): Promise<void> {
    if (this.#opening !== undefined) await this.#opening.catch(() => undefined)
    if (this.#reads > 0) {
      this.#releasing = true
      return
    }
    this.#releasing = false
    const fh = this.#fh
    if (fh === undefined) return
    this.#fh = undefined
    this.#pool.noteWriteHandle(-1)
    await fh.close()
  }

  /** Gives up every descriptor the segment has: its write handle and its pooled read handle. */
  async closeFiles(): Promise<void> {
    this.#pool.evict(this)
    await this.release()
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<Buffer> {
  let got = 0
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got === buf.length ? buf : buf.subarray(0, got)
}
