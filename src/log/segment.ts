import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { batchHeaderBytes, batchLastOffset, checkBatch, type BatchHeader } from './format.js'
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

/**
 * One segment: its log file and two sparse indexes. `size` counts bytes written, `durableSize`
 * bytes that readers may see (synced under the log's policy); the two differ only while a
 * write is in flight.
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
  #fh: FileHandle | undefined
  #indexFh: FileHandle | undefined
  #timeFh: FileHandle | undefined
  #reads = 0
  #deleted = false

  /**
   * Open for writing with O_DSYNC (fsync: always): each write returns once durable, which saves
   * the separate fdatasync round trip through libuv's thread pool on every append.
   */
  readonly dsync: boolean

  constructor(dir: string, base: number, createdAtMs: number, dsync = false) {
    this.dsync = dsync
    this.base = base
    this.nextOffset = base
    this.createdAtMs = createdAtMs
    this.logPath = join(dir, segmentFileName(base, 'log'))
    this.indexPath = join(dir, segmentFileName(base, 'index'))
    this.timeIndexPath = join(dir, segmentFileName(base, 'timeindex'))
  }

  get isEmpty(): boolean {
    return this.size === 0
  }

  async file(): Promise<FileHandle> {
    this.#fh ??= await open(this.logPath, constants.O_RDWR | (this.dsync ? constants.O_DSYNC : 0))
    return this.#fh
  }

  async create(): Promise<void> {
    this.#fh = await open(this.logPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | (this.dsync ? constants.O_DSYNC : 0))
    this.#indexFh = await open(this.indexPath, 'w')
    this.#timeFh = await open(this.timeIndexPath, 'w')
  }

  async indexFiles(): Promise<[FileHandle, FileHandle]> {
    this.#indexFh ??= await open(this.indexPath, 'a+')
    this.#timeFh ??= await open(this.timeIndexPath, 'a+')
    return [this.#indexFh, this.#timeFh]
  }

  /** Registers a batch just appended at `position` in the in-memory indexes (and their files later). */
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

  async flushIndexes(): Promise<void> {
    const [ifh, tfh] = await this.indexFiles()
    await this.index.flushTo(ifh, tfh)
  }

  async syncAll(): Promise<void> {
    await this.flushIndexes()
    const [ifh, tfh] = await this.indexFiles()
    await Promise.all([(await this.file()).datasync(), ifh.datasync(), tfh.datasync()])
  }

  /**
   * Reads up to `length` bytes at `position`, never past the durable end. A read pins the file
   * so retention can unlink it underneath without closing the descriptor mid-read.
   */
  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.durableSize - position))
    const buf = into !== undefined && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n)
    if (n === 0) return buf
    this.#reads++
    try {
      const fh = await this.file()
      let got = 0
      while (got < n) {
        const { bytesRead } = await fh.read(buf, got, n - got, position + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
      return got === n ? buf : buf.subarray(0, got)
    } finally {
      this.#reads--
      if (this.#deleted && this.#reads === 0) await this.closeFiles()
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

  async resetIndexFiles(): Promise<void> {
    this.index.reset()
    this.bytesSinceIndex = 0
    const [ifh, tfh] = await this.indexFiles()
    await ifh.truncate(0)
    await tfh.truncate(0)
  }

  get pinned(): boolean {
    return this.#reads > 0
  }

  markDeleted(): void {
    this.#deleted = true
  }

  async closeFiles(): Promise<void> {
    const handles = [this.#fh, this.#indexFh, this.#timeFh]
    this.#fh = this.#indexFh = this.#timeFh = undefined
    await Promise.all(handles.map((h) => h?.close()))
  }
}
