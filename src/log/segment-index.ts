import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'

// Sparse indexes of one segment, kept in memory and written to their files when the segment is
// sealed (a roll) or its log closes, never on the append path: after a crash the active
// segment's indexes are rebuilt from the log itself, which is the only thing recovery trusts.
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

/** How much of one index file matches the entries in memory. */
interface FileState {
  /** Leading entries the file holds that equal the first ones in memory. */
  entries: number
  /** The file may hold bytes past those entries (stale or unknown): cut before appending. */
  dirty: boolean
}

export class SegmentIndex {
  readonly #relOffsets = new U32Column()
  readonly #positions = new U32Column()
  readonly #timeValues = new F64Column()
  readonly #timeOffsets = new U32Column()
  readonly #offsetFile: FileState = { entries: 0, dirty: false }
  readonly #timeFile: FileState = { entries: 0, dirty: false }

  get entries(): number {
    return this.#relOffsets.length
  }

  get timeEntries(): number {
    return this.#timeOffsets.length
  }

  /** Whether the files lag the entries in memory (or hold stale ones). */
  get unwritten(): boolean {
    const o = this.#offsetFile
    const t = this.#timeFile
    return o.dirty || t.dirty || o.entries < this.entries || t.entries < this.timeEntries
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

  /** Records a batch start, in memory; writeTo() puts it in the file. */
  addOffset(relativeOffset: number, position: number): void {
    this.#relOffsets.push(relativeOffset)
    this.#positions.push(position)
  }

  addTime(timestamp: number, relativeOffset: number): void {
    this.#timeValues.push(timestamp)
    this.#timeOffsets.push(relativeOffset)
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

  /**
   * Brings both files level with memory: cuts what they hold past the matching entries, then
   * appends the missing ones. Each file is opened for the write and closed after it, so an index
   * costs no descriptor between writes. A failed write leaves the file state as it was, and the
   * next call writes the same entries again.
   */
  async writeTo(offsetPath: string, timePath: string, sync: boolean): Promise<void> {
    await writeFileState(offsetPath, this.#offsetFile, this.entries, offsetEntryBytes, (buf, i, at) => {
      buf.writeUInt32BE(this.#relOffsets.at(i), at)
      buf.writeUInt32BE(this.#positions.at(i), at + 4)
    }, sync)
    await writeFileState(timePath, this.#timeFile, this.timeEntries, timeEntryBytes, (buf, i, at) => {
      const ts = this.#timeValues.at(i)
      buf.writeUInt32BE(Math.floor(ts / 0x1_0000_0000), at)
      buf.writeUInt32BE(ts >>> 0, at + 4)
      buf.writeUInt32BE(this.#timeOffsets.at(i), at + 8)
    }, sync)
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
      this.addOffset(rel, pos)
      prevRel = rel
      prevPos = pos
    }
    let prevTs = -1
    prevRel = -1
    for (let p = 0; p < times.length; p += timeEntryBytes) {
      const ts = times.readUInt32BE(p) * 0x1_0000_0000 + times.readUInt32BE(p + 4)
      const rel = times.readUInt32BE(p + 8)
      if (ts <= prevTs || rel <= prevRel) return false
      this.addTime(ts, rel)
      prevTs = ts
      prevRel = rel
    }
    this.#offsetFile.entries = this.entries
    this.#offsetFile.dirty = false
    this.#timeFile.entries = this.timeEntries
    this.#timeFile.dirty = false
    return true
  }

  /** Keeps the first entries only (a rolled-back write); the files are cut at their next write. */
  truncateTo(entries: number, timeEntries: number): void {
    if (entries < this.#relOffsets.length) {
      this.#relOffsets.truncate(entries)
      this.#positions.truncate(entries)
    }
    if (timeEntries < this.#timeOffsets.length) {
      this.#timeValues.truncate(timeEntries)
      this.#timeOffsets.truncate(timeEntries)
    }
    cut(this.#offsetFile, entries)
    cut(this.#timeFile, timeEntries)
  }

  /** Drops every entry; the files are rewritten from scratch at their next write. */
  reset(): void {
    this.#relOffsets.truncate(0)
    this.#positions.truncate(0)
    this.#timeValues.truncate(0)
    this.#timeOffsets.truncate(0)
    this.#offsetFile.entries = 0
    this.#offsetFile.dirty = true
    this.#timeFile.entries = 0
    this.#timeFile.dirty = true
  }
}

function cut(state: FileState, entries: number): void {
  if (state.entries > entries) {
    state.entries = entries
    state.dirty = true
  }
}

async function writeFileState(
  path: string,
  state: FileState,
  entries: number,
  entryBytes: number,
  encode: (buf: Buffer, i: number, at: number) => void,
  sync: boolean,
): Promise<void> {
  if (!state.dirty && state.entries >= entries && !sync) return
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT)
  try {
    if (state.dirty) {
      await fh.truncate(state.entries * entryBytes)
      state.dirty = false
    }
    if (state.entries < entries) {
      // A write that fails half way leaves a torn tail: cut it at the next attempt.
      state.dirty = true
      const buf = Buffer.allocUnsafe((entries - state.entries) * entryBytes)
      for (let i = state.entries; i < entries; i++) encode(buf, i, (i - state.entries) * entryBytes)
      let written = 0
      while (written < buf.length) {
        const { bytesWritten } = await fh.write(buf, written, buf.length - written, state.entries * entryBytes + written)
        if (bytesWritten === 0) throw new Error(`short write to ${path}`)
        written += bytesWritten
      }
      state.entries = entries
      state.dirty = false
    }
    if (sync) await fh.datasync()
  } finally {
    await fh.close()
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
