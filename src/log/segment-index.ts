import { open, type FileHandle } from 'node:fs/promises'

// Sparse indexes of one segment, kept in memory and appended to their files as batches are
// written. Neither file is fsynced on the append path: after a crash the active segment's
// indexes are rebuilt from the log itself, which is the only thing recovery trusts.
//
// <base>.index      entries of 8 bytes:  u32 relativeOffset | u32 position
// <base>.timeindex  entries of 12 bytes: u64 maxTimestampSoFar | u32 relativeOffset
// Both are big-endian and strictly increasing in every field.

export const offsetEntryBytes = 8
export const timeEntryBytes = 12

/** A growable column of uint32 values without a JS number array per entry. */
class U32Column {
  #data = new Uint32Array(64)
  length = 0
  push(value: number): void {
    if (this.length === this.#data.length) {
      const next = new Uint32Array(this.#data.length * 2)
      next.set(this.#data)
      this.#data = next
    }
    this.#data[this.length++] = value
  }
  at(i: number): number {
    return this.#data[i]!
  }
  truncate(length: number): void {
    this.length = Math.min(this.length, length)
  }
}

class F64Column {
  #data = new Float64Array(64)
  length = 0
  push(value: number): void {
    if (this.length === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2)
      next.set(this.#data)
      this.#data = next
    }
    this.#data[this.length++] = value
  }
  at(i: number): number {
    return this.#data[i]!
  }
  truncate(length: number): void {
    this.length = Math.min(this.length, length)
  }
}

export class SegmentIndex {
  readonly #relOffsets = new U32Column()
  readonly #positions = new U32Column()
  readonly #timeValues = new F64Column()
  readonly #timeOffsets = new U32Column()
  #pendingOffsets: Buffer[] = []
  #pendingTimes: Buffer[] = []
  #offsetFileBytes = 0
  #timeFileBytes = 0

  get entries(): number {
    return this.#relOffsets.length
  }

  get timeEntries(): number {
    return this.#timeOffsets.length
  }

  lastPosition(): number {
    return this.#relOffsets.length === 0 ? 0 : this.#positions.at(this.#relOffsets.length - 1)
  }

  lastRelativeOffset(): number {
    return this.#relOffsets.length === 0 ? -1 : this.#relOffsets.at(this.#relOffsets.length - 1)
  }

  lastTimestamp(): number {
    return this.#timeOffsets.length === 0 ? -1 : this.#timeValues.at(this.#timeOffsets.length - 1)
  }

  /** Records a batch start; `toFile` false when loading from the file itself. */
  addOffset(relativeOffset: number, position: number, toFile = true): void {
    this.#relOffsets.push(relativeOffset)
    this.#positions.push(position)
    if (toFile) {
      const e = Buffer.allocUnsafe(offsetEntryBytes)
      e.writeUInt32BE(relativeOffset, 0)
      e.writeUInt32BE(position, 4)
      this.#pendingOffsets.push(e)
    }
  }

  addTime(timestamp: number, relativeOffset: number, toFile = true): void {
    this.#timeValues.push(timestamp)
    this.#timeOffsets.push(relativeOffset)
    if (toFile) {
      const e = Buffer.allocUnsafe(timeEntryBytes)
      e.writeUInt32BE(Math.floor(timestamp / 0x1_0000_0000), 0)
      e.writeUInt32BE(timestamp >>> 0, 4)
      e.writeUInt32BE(relativeOffset, 8)
      this.#pendingTimes.push(e)
    }
  }

  /** Position of the last indexed batch starting at or before `relativeOffset`. */
  floorPosition(relativeOffset: number): number {
    let lo = 0
    let hi = this.#relOffsets.length - 1
    let found = 0
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.#relOffsets.at(mid) <= relativeOffset) {
        found = this.#positions.at(mid)
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found
  }

  /**
   * Relative offset from which a scan finds the first record with timestamp >= ts: the entry
   * just before the first one whose max-so-far reaches ts (or the segment start).
   */
  floorOffsetForTime(ts: number): number {
    let lo = 0
    let hi = this.#timeOffsets.length - 1
    let firstReaching = this.#timeOffsets.length
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.#timeValues.at(mid) >= ts) {
        firstReaching = mid
        hi = mid - 1
      } else {
        lo = mid + 1
      }
    }
    return firstReaching === 0 ? 0 : this.#timeOffsets.at(firstReaching - 1)
  }

  /** Pending file bytes for both files, to be written after the segment data they point into. */
  takePending(): { offsets: Buffer[]; times: Buffer[] } {
    const out = { offsets: this.#pendingOffsets, times: this.#pendingTimes }
    this.#pendingOffsets = []
    this.#pendingTimes = []
    return out
  }

  async flushTo(offsetFile: FileHandle, timeFile: FileHandle): Promise<void> {
    const { offsets, times } = this.takePending()
    if (offsets.length > 0) {
      const data = Buffer.concat(offsets)
      await offsetFile.write(data, 0, data.length, this.#offsetFileBytes)
      this.#offsetFileBytes += data.length
    }
    if (times.length > 0) {
      const data = Buffer.concat(times)
      await timeFile.write(data, 0, data.length, this.#timeFileBytes)
      this.#timeFileBytes += data.length
    }
  }

  /**
   * Loads both index files. Returns false when either looks wrong (size not a multiple of the
   * entry, entries not increasing, positions past the segment), so the caller rebuilds.
   */
  async load(offsetPath: string, timePath: string, segmentBytes: number): Promise<boolean> {
    const offsets = await readWhole(offsetPath)
    const times = await readWhole(timePath)
    if (offsets === undefined || times === undefined) return false
    if (offsets.length % offsetEntryBytes !== 0 || times.length % timeEntryBytes !== 0) return false
    let prevRel = -1
    let prevPos = -1
    for (let p = 0; p < offsets.length; p += offsetEntryBytes) {
      const rel = offsets.readUInt32BE(p)
      const pos = offsets.readUInt32BE(p + 4)
      if (rel <= prevRel || pos <= prevPos || pos >= segmentBytes) return false
      this.addOffset(rel, pos, false)
      prevRel = rel
      prevPos = pos
    }
    let prevTs = -1
    prevRel = -1
    for (let p = 0; p < times.length; p += timeEntryBytes) {
      const ts = times.readUInt32BE(p) * 0x1_0000_0000 + times.readUInt32BE(p + 4)
      const rel = times.readUInt32BE(p + 8)
      if (ts <= prevTs || rel <= prevRel) return false
      this.addTime(ts, rel, false)
      prevTs = ts
      prevRel = rel
    }
    this.#offsetFileBytes = offsets.length
    this.#timeFileBytes = times.length
    return true
  }

  reset(): void {
    this.#relOffsets.truncate(0)
    this.#positions.truncate(0)
    this.#timeValues.truncate(0)
    this.#timeOffsets.truncate(0)
    this.#pendingOffsets = []
    this.#pendingTimes = []
    this.#offsetFileBytes = 0
    this.#timeFileBytes = 0
  }
}

async function readWhole(path: string): Promise<Buffer | undefined> {
  let fh: FileHandle | undefined
  try {
    fh = await open(path, 'r')
    return await fh.readFile()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  } finally {
    await fh?.close()
  }
}
