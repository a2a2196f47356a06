/**
 * Runs the operations given one key one after another, and those of different keys freely. A
 * definition changed here and the same one arriving from the cluster's watch must not interleave:
 * the second then finds the first's work done, instead of opening a stream or closing a group twice.
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<unknown>>()

  run<T>(key: string, op: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve()
    const mine = before.then(op, op)
    const tail = mine.catch(() => undefined)
    this.#tails.set(key, tail)
    // The last one out forgets the key, so the map holds only keys with work in flight.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return mine
  }
}
