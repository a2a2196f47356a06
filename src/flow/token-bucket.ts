/**
 * A token bucket refilled continuously at `ratePerSec` up to `capacity`. `take` is all or
 * nothing, and tells how long to wait when the tokens are not there, so a 429 can carry a
 * Retry-After computed from the bucket rather than a constant.
 */
export class TokenBucket {
  #tokens: number
  #at: number

  constructor(
    readonly ratePerSec: number,
    readonly capacity: number,
    now: number,
  ) {
    this.#tokens = capacity
    this.#at = now
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.capacity, this.#tokens + ((now - this.#at) * this.ratePerSec) / 1000)
      this.#at = now
    }
  }

  tokens(now: number): number {
    this.#refill(now)
    return this.#tokens
  }

  /**
   * Milliseconds until `n` tokens will be there (0: they are now). A request larger than the
   * bucket can never fit whole; it is let through once the bucket is full, so it is slowed, not
   * refused forever.
   */
  wait(n: number, now: number): number {
    this.#refill(now)
    const need = Math.min(n, this.capacity)
    if (this.#tokens >= need) return 0
    return Math.ceil(((need - this.#tokens) * 1000) / this.ratePerSec)
  }

  /** Takes `n` tokens; the balance may go negative for a request larger than the bucket. */
  take(n: number, now: number): void {
    this.#refill(now)
    this.#tokens -= n
  }
}
