import { storedRecordBytes, type AppendRecord, type Log } from '../log/index.js'
import type { Stream } from '../streams/registry.js'

/** How long loading waits for an append already under way to become readable (a failed one never does). */
const pendingWaitMs = 5_000
/** Dropped prefix entries kept before the array is compacted: trimming stays O(1) amortised. */
const compactAfter = 4096

/**
 * The stored size of each event of a stream from some offset on, as running sums, so the bytes
 * of any span are one subtraction. Only a group with `maxBacklogBytes` keeps one: the sizes of
 * its backlog are the price of the bound (8 bytes an event), where other groups hold nothing
 * per backlog event. New appends are noted as they are made, not read back, so publish admission
 * sees appends still on their way to disk, as the event count does.
 */
export class RecordSizes {
  /** Offset of sums[head]; sums[head + i] = bytes of [base, base + i). */
  #base: number
  #head = 0
  #sums: number[] = [0]
  readonly #unsubscribe: () => void

  private constructor(base: number, stream: Stream) {
    this.#base = base
    this.#unsubscribe = stream.onAppend!((offset, records) => this.#note(offset, records))
  }

  /**
   * Sizes from `from` on: appends from now are noted as they come, what the log holds before them
   * is read once. Undefined for a stream without append notes (a test's wrapper).
   */
  static async open(stream: Stream, from: number): Promise<RecordSizes | undefined> {
    if (stream.onAppend === undefined) return undefined
    const log = stream.log
    const start = Math.max(from, log.startOffset)
    const upTo = log.nextOffset
    const sizes = new RecordSizes(upTo, stream)
    const before = await readSizes(log, start, upTo)
    sizes.#prepend(start, before)
    return sizes
  }

  /** One past the last offset known. */
  get end(): number {
    return this.#base + this.#sums.length - 1 - this.#head
  }

  /** Bytes of the events in [from, to), clipped to what is known. */
  bytes(from: number, to: number): number {
    const a = Math.max(from, this.#base)
    const b = Math.min(to, this.end)
    if (b <= a) return 0
    return this.#sums[this.#head + b - this.#base]! - this.#sums[this.#head + a - this.#base]!
  }

  /** Forgets sizes below `offset` (the group's cursor has passed them). */
  trimBelow(offset: number): void {
    const n = Math.min(offset, this.end) - this.#base
    if (n <= 0) return
    this.#head += n
    this.#base += n
    if (this.#head >= compactAfter && this.#head * 2 >= this.#sums.length) {
      this.#sums = this.#sums.slice(this.#head)
      this.#head = 0
    }
  }

  close(): void {
    this.#unsubscribe()
  }

  #note(offset: number, records: readonly AppendRecord[]): void {
    const end = this.end
    // A failed write rolled the log back: its offsets are being used again.
    if (offset < end) this.#sums.length = this.#head + Math.max(0, offset - this.#base) + 1
    // Cannot happen (every append is noted from open on); a gap is counted as empty.
    for (let o = this.end; o < offset; o++) this.#sums.push(this.#sums[this.#sums.length - 1]!)
    let total = this.#sums[this.#sums.length - 1]!
    for (const r of records) {
      total += storedRecordBytes(r)
      this.#sums.push(total)
    }
  }

  /** Puts the sizes of [start, base) in front of what was noted meanwhile. */
  #prepend(start: number, sizes: readonly number[]): void {
    if (sizes.length === 0) return
    const lead = new Array<number>(sizes.length + 1)
    lead[0] = 0
    for (let i = 0; i < sizes.length; i++) lead[i + 1] = lead[i]! + sizes[i]!
    const shift = lead[sizes.length]!
    const rest = this.#sums.slice(this.#head + 1).map((v) => v + shift)
    this.#sums = [...lead, ...rest]
    this.#head = 0
    this.#base = start
  }
}

/** Stored sizes of [from, to), read from the log; appends not yet durable are waited for. */
async function readSizes(log: Log, from: number, to: number): Promise<number[]> {
  const out: number[] = []
  let at = from
  while (at < to) {
    if (at >= log.endOffset && !(await log.waitFor(at, pendingWaitMs))) break
    const { records, nextOffset } = await log.read(at)
    for (const r of records) if (r.offset >= at && r.offset < to) out.push(storedRecordBytes(r))
    if (nextOffset <= at) break
    at = nextOffset
  }
  // A pending append that failed left fewer events than expected; counted as empty so the sums
  // stay aligned with offsets, and the next append, which reuses them, replaces them.
  while (out.length < to - from) out.push(0)
  return out
}
