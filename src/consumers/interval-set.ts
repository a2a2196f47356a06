// Settled offsets above a group's cursor, as disjoint half-open ranges [start, end), sorted.
// Acks mostly arrive near the cursor and in order, so the set stays small: its size is bounded by
// the number of unsettled gaps, which is at most the number of events in flight.

/** Keys to delete and ranges to write, accumulated over several changes before one persist. */
export class RangeChange {
  readonly removed = new Set<number>()
  readonly upserts = new Map<number, number>()

  remove(start: number): void {
    this.upserts.delete(start)
    this.removed.add(start)
  }

  upsert(start: number, end: number): void {
    this.removed.delete(start)
    this.upserts.set(start, end)
  }
}

export class IntervalSet {
  #starts: number[] = []
  #ends: number[] = []
  #count = 0

  get ranges(): number {
    return this.#starts.length
  }

  /** Offsets covered by all ranges. */
  get count(): number {
    return this.#count
  }

  *entries(): Generator<[number, number]> {
    for (let i = 0; i < this.#starts.length; i++) yield [this.#starts[i]!, this.#ends[i]!]
  }

  /** Index of the first range whose end >= offset. */
  #firstEndingAtOrAfter(offset: number): number {
    let lo = 0
    let hi = this.#starts.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#ends[mid]! < offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  has(offset: number): boolean {
    const i = this.#firstEndingAtOrAfter(offset + 1)
    return i < this.#starts.length && this.#starts[i]! <= offset
  }

  /** The end of the range holding `offset`, or `offset` itself when it is not settled. */
  skip(offset: number): number {
    const i = this.#firstEndingAtOrAfter(offset + 1)
    return i < this.#starts.length && this.#starts[i]! <= offset ? this.#ends[i]! : offset
  }

  /** Adds [start, end), merging with overlapping or touching ranges. */
  add(start: number, end: number, change: RangeChange = new RangeChange()): RangeChange {
    if (end <= start) return change
    const i = this.#firstEndingAtOrAfter(start)
    let s = start
    let e = end
    let j = i
    let covered = 0
    while (j < this.#starts.length && this.#starts[j]! <= e) {
      s = Math.min(s, this.#starts[j]!)
      e = Math.max(e, this.#ends[j]!)
      covered += this.#ends[j]! - this.#starts[j]!
      change.remove(this.#starts[j]!)
      j++
    }
    this.#starts.splice(i, j - i, s)
    this.#ends.splice(i, j - i, e)
    this.#count += e - s - covered
    change.upsert(s, e)
    return change
  }

  /**
   * Removes and returns the range starting exactly at `cursor` (the cursor can then move to its
   * end), or undefined.
   */
  takeAt(cursor: number, change?: RangeChange): [number, number] | undefined {
    if (this.#starts.length === 0 || this.#starts[0] !== cursor) return undefined
    const s = this.#starts.shift()!
    const e = this.#ends.shift()!
    this.#count -= e - s
    change?.remove(s)
    return [s, e]
  }

  /** Drops everything below `offset` (retention moved the log start past it). */
  dropBelow(offset: number): void {
    while (this.#starts.length > 0 && this.#ends[0]! <= offset) {
      this.#count -= this.#ends[0]! - this.#starts[0]!
      this.#starts.shift()
      this.#ends.shift()
    }
    if (this.#starts.length > 0 && this.#starts[0]! < offset) {
      this.#count -= offset - this.#starts[0]!
      this.#starts[0] = offset
    }
  }

  clear(): void {
    this.#starts = []
    this.#ends = []
    this.#count = 0
  }
}
