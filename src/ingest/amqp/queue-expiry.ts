/**
 * RabbitMQ's `x-expires`: a queue unused for that long is deleted. Unused means no consumer, and
 * no declare or basic.get within the interval; so a consumer stops the clock and its leaving, a
 * declare or a get start it again. The deadlines live in memory, as the consumers do: a restart
 * starts every clock again, which RabbitMQ does too (the queue's lease begins when it is loaded).
 */
export class QueueExpiry {
  readonly #timers = new Map<string, { readonly ms: number; timer: NodeJS.Timeout | undefined }>()
  readonly #expire: (queue: string) => void

  /** `expire` deletes the queue, after checking it is still unused. */
  constructor(expire: (queue: string) => void) {
    this.#expire = expire
  }

  /** The queue has x-expires: its clock starts now (consumers stop it with `hold`). */
  track(queue: string, ms: number): void {
    if (!this.#timers.has(queue)) this.#timers.set(queue, { ms, timer: undefined })
    this.touch(queue, false)
  }

  /** The queue was used (declared, read with basic.get, or its last consumer left): the clock restarts. */
  touch(queue: string, inUse: boolean): void {
    const t = this.#timers.get(queue)
    if (t === undefined) return
    clearTimeout(t.timer)
    t.timer = undefined
    if (inUse) return
    t.timer = setTimeout(() => {
      t.timer = undefined
      this.#expire(queue)
    }, t.ms)
    // A pending expiry must not keep a stopping process alive.
    t.timer.unref()
  }

  forget(queue: string): void {
    clearTimeout(this.#timers.get(queue)?.timer)
    this.#timers.delete(queue)
  }

  close(): void {
    for (const t of this.#timers.values()) clearTimeout(t.timer)
    this.#timers.clear()
  }
}
