import { open, type FileHandle } from 'node:fs/promises'
import { noteBackgroundError, shielded } from '../background.js'
import { hitLimit } from '../limits.js'

interface Entry {
  readonly owner: object
  fh: FileHandle | undefined
  opening: Promise<FileHandle> | undefined
  users: number
  /** Evicted while in use: closed by its last user instead of going back to the pool. */
  doomed: boolean
  /** When the last user gave it back (performance.now()). */
  idleSince: number
}

export interface SegmentFilePoolStats {
  /** Read handles open now (in use or idle), evicted ones still in use included. */
  readonly readHandles: number
  /** Of those, handles a read is using right now. */
  readonly readHandlesInUse: number
  /** Write handles: one per stream, on its active segment. */
  readonly writeHandles: number
  /** Read handles opened since start: a high rate means the pool is too small for the readers. */
  readonly opens: number
  /** Reads that waited because every handle of the pool was in use. */
  readonly waits: number
  /** Idle handles closed to make room for another file. */
  readonly evictions: number
}

/** Default of `server.limits.maxOpenSegmentFiles`. */
export const segmentFilesDefault = 64

/** A read handle nobody used for this long is closed, so an idle server holds one per stream. */
export const segmentFileIdleMs = 30_000

/**
 * Read handles of sealed segment files, shared by every log of the process and bounded by
 * `max`. A sealed segment that nobody reads holds no descriptor; a read borrows one (opening it
 * if needed), and gives it back to the pool, where the least recently used idle handle is closed
 * when another file needs the room. When every handle is in use, a reader waits for one to come
 * back instead of opening past the limit: a read holds one handle at a time, so this cannot
 * deadlock. The active segment of each stream keeps its own write handle outside the pool (it is
 * counted here, not bounded).
 */
export class SegmentFilePool {
  readonly max: number
  readonly limitName: string
  /** Insertion order is recency: the first idle entry is the least recently used. */
  readonly #entries = new Map<object, Entry>()
  #doomedOpen = 0
  #inUse = 0
  #waiters: Array<() => void> = []
  #writeHandles = 0
  #opens = 0
  #waits = 0
  #evictions = 0
  #sweeper: NodeJS.Timeout | undefined
  readonly #idleMs: number

  constructor(max: number = segmentFilesDefault, options: { limitName?: string; idleMs?: number } = {}) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`a segment file pool needs at least one handle, got ${max}`)
    this.max = max
    this.limitName = options.limitName ?? 'server.limits.maxOpenSegmentFiles'
    this.#idleMs = options.idleMs ?? segmentFileIdleMs
  }

  /**
   * Closes idle handles unused for `olderThanMs` (all idle ones with 0). A timer does this with
   * the idle time while any handle is open; tests call it directly instead of waiting.
   */
  closeIdle(olderThanMs = 0, now = performance.now()): number {
    let closed = 0
    for (const e of [...this.#entries.values()]) {
      if (e.users > 0 || e.fh === undefined || now - e.idleSince < olderThanMs) continue
      this.#entries.delete(e.owner)
      this.#close(e)
      closed++
    }
    if (this.#entries.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
    }
    return closed
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined || this.#idleMs <= 0) return
    this.#sweeper = setInterval(shielded('log.filePool.sweep', () => this.closeIdle(this.#idleMs)), Math.max(1000, this.#idleMs / 3))
    this.#sweeper.unref()
  }

  stats(): SegmentFilePoolStats {
    return {
      readHandles: this.#entries.size + this.#doomedOpen,
      readHandlesInUse: this.#inUse,
      writeHandles: this.#writeHandles,
      opens: this.#opens,
      waits: this.#waits,
      evictions: this.#evictions,
    }
  }

  /** Segments report their write handle here so the pool's figures cover every segment file. */
  noteWriteHandle(delta: 1 | -1): void {
    this.#writeHandles += delta
  }

  /** Runs `fn` with a read handle on `path`, the file of `owner` (a segment). */
  async use<T>(owner: object, path: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    const entry = await this.#acquire(owner, path)
    try {
      return await fn(entry.fh!)
    } finally {
      this.#release(entry)
    }
  }

  async #acquire(owner: object, path: string): Promise<Entry> {
    for (;;) {
      const found = this.#entries.get(owner)
      if (found !== undefined) {
        found.users++
        if (found.users === 1) this.#inUse++
        this.#entries.delete(owner)
        this.#entries.set(owner, found)
        if (found.fh === undefined) {
          try {
            await found.opening
          } catch (err) {
            this.#release(found)
            throw err
          }
        }
        return found
      }
      if (this.#entries.size + this.#doomedOpen >= this.max && !this.#closeIdle()) {
        this.#waits++
        hitLimit(this.limitName)
        await new Promise<void>((resolve) => this.#waiters.push(resolve))
        continue
      }
      const entry: Entry = { owner, fh: undefined, opening: open(path, 'r'), users: 1, doomed: false, idleSince: 0 }
      this.#inUse++
      this.#entries.set(owner, entry)
      this.#opens++
      this.#startSweeper()
      try {
        entry.fh = await entry.opening
      } catch (err) {
        if (this.#entries.get(owner) === entry) this.#entries.delete(owner)
        else if (entry.doomed) this.#doomedOpen--
        entry.doomed = false
        this.#release(entry)
        throw err
      }
      return entry
    }
  }

  #release(entry: Entry): void {
    entry.users--
    if (entry.users > 0) return
    entry.idleSince = performance.now()
    this.#inUse--
    if (entry.doomed) {
      entry.doomed = false
      this.#doomedOpen--
      this.#close(entry)
    }
    // A handle came back (or went): one waiter can now find room.
    this.#waiters.shift()?.()
  }

  /** Closes the least recently used idle handle; false when every handle is in use. */
  #closeIdle(): boolean {
    for (const e of this.#entries.values()) {
      if (e.users > 0 || e.fh === undefined) continue
      this.#entries.delete(e.owner)
      this.#evictions++
      this.#close(e)
      return true
    }
    return false
  }

  #close(entry: Entry): void {
    const fh = entry.fh
    entry.fh = undefined
    fh?.close().catch((err: unknown) => noteBackgroundError('log.filePool.close', err))
  }

  /**
   * Forgets `owner`'s handle: closed now when idle, else by its last reader. Called when a
   * segment is deleted or its log closes, so a handle never outlives its file's name.
   */
  evict(owner: object): void {
    const e = this.#entries.get(owner)
    if (e === undefined) return
    this.#entries.delete(owner)
    if (e.users > 0) {
      e.doomed = true
      this.#doomedOpen++
      return
    }
    this.#close(e)
    this.#waiters.shift()?.()
  }
}

/** The pool of logs opened without one of their own (tools, tests); the server passes its own. */
export const defaultSegmentFilePool = new SegmentFilePool()
