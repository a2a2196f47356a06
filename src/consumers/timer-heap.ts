/**
 * Deadlines of one group in a binary min-heap, served by a single timer set to the earliest one:
 * a group with thousands of deliveries in flight arms one setTimeout, not thousands. Entries are
 * cancelled lazily: the owner checks that an entry still matches its state when it fires.
 */
export interface Deadline {
  readonly at: number
  readonly offset: number
  readonly kind: 'ack' | 'retry'
  /** Which delivery it belongs to; a stale entry (redelivered since, or extended) is ignored. */
  readonly stamp: number
}

export class DeadlineHeap {
  readonly #items: Deadline[] = []

  get size(): number {
    return this.#items.length
  }

  peek(): Deadline | undefined {
    return this.#items[0]
  }

  push(d: Deadline): void {
    const a = this.#items
    a.push(d)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (a[parent]!.at <= a[i]!.at) break
      ;[a[parent], a[i]] = [a[i]!, a[parent]!]
      i = parent
    }
  }

  pop(): Deadline | undefined {
    const a = this.#items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && a[l]!.at < a[m]!.at) m = l
        if (r < a.length && a[r]!.at < a[m]!.at) m = r
        if (m === i) break
        ;[a[m], a[i]] = [a[i]!, a[m]!]
        i = m
      }
    }
    return top
  }

  clear(): void {
    this.#items.length = 0
  }

  /** Keeps only the entries `keep` accepts, and restores the heap order (O(n)). */
  retain(keep: (d: Deadline) => boolean): void {
    const kept = this.#items.filter(keep)
    this.#items.length = 0
    for (const d of kept.sort((a, b) => a.at - b.at)) this.#items.push(d)
  }
}
