import { hitLimit } from '../limits.js'

// Per-address slowdown of password guessing.
//
// Every login from an address whose credentials are not already known good from that address
// waits its turn: one check at a time per address, and after a failure the next one waits
// 100 ms, doubling with each further failure up to maxFailureDelay. Successes are held too, so an
// attacker cannot abort a slow answer and take the missing fast success for a failure. Turns beyond
// maxPendingLoginsPerAddress are refused unchecked, so the answer says nothing about the guess.
//
// A client whose credentials were verified from its address before skips the queue: a good agent
// next to a misconfigured one on the same host keeps its speed. The cost: an attacker sharing that
// address with a client of the same user could test that user's credentials fast.

export interface ThrottleOptions {
  /** 0 turns the slowdown off (checks are still one at a time per address). */
  readonly maxDelayMs: number
  readonly maxPendingPerAddress: number
  readonly maxTrackedAddresses: number
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
}

/** After this long without a failure an address starts afresh. */
export const failureMemoryMs = 5 * 60_000
const firstDelayMs = 100
/** Credentials remembered as verified per address; a host rarely runs more clients than this. */
const verifiedPerAddressMax = 16

interface AddressState {
  failures: number
  lastFailureAt: number
  pending: number
  /** Resolves when the turn before the last one queued has finished. */
  tail: Promise<void>
  readonly verified: string[]
}

export type Turn = { readonly refused: false; done(ok: boolean, fingerprint?: string): void } | { readonly refused: true; readonly retryAfterMs: number }

const realSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    // A waiting login must not keep a stopping process alive.
    setTimeout(resolve, ms).unref()
  })

export class LoginThrottle {
  readonly #opts: ThrottleOptions
  readonly #now: () => number
  readonly #sleep: (ms: number) => Promise<void>
  // Insertion order is recency order: touched entries are moved to the end, the oldest evicted.
  readonly #addresses = new Map<string, AddressState>()

  constructor(opts: ThrottleOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.#sleep = opts.sleep ?? realSleep
  }

  get trackedAddresses(): number {
    return this.#addresses.size
  }

  /** Whether these credentials (their fingerprint) were verified from this address already. */
  verified(address: string, fingerprint: string): boolean {
    const state = this.#addresses.get(address)
    if (state === undefined || !state.verified.includes(fingerprint)) return false
    // A client in use is recently seen: it must not be the first forgotten.
    this.#addresses.delete(address)
    this.#addresses.set(address, state)
    return true
  }

  /** The delay a failed login from this address now adds before its next turn. */
  delayMs(address: string): number {
    const state = this.#addresses.get(address)
    return state === undefined ? 0 : this.#delayFor(state)
  }

  /** Waits for the address's turn; `done` must be called once the check is over. */
  async turn(address: string): Promise<Turn> {
    const state = this.#touch(address)
    if (state.pending >= this.#opts.maxPendingPerAddress) {
      hitLimit('auth.maxPendingLoginsPerAddress')
      return { refused: true, retryAfterMs: Math.max(1000, this.#delayFor(state)) }
    }
    state.pending++
    const before = state.tail
    let finish!: () => void
    state.tail = new Promise((resolve) => (finish = resolve))
    await before
    const waitMs = state.failures === 0 ? 0 : state.lastFailureAt + this.#delayFor(state) - this.#now()
    if (waitMs > 0) await this.#sleep(waitMs)
    let finished = false
    return {
      refused: false,
      done: (ok, fingerprint) => {
        if (finished) return
        finished = true
        state.pending--
        if (ok && fingerprint !== undefined && !state.verified.includes(fingerprint)) {
          state.verified.push(fingerprint)
          if (state.verified.length > verifiedPerAddressMax) state.verified.shift()
        } else if (!ok) {
          state.failures++
          state.lastFailureAt = this.#now()
        }
        finish()
      },
    }
  }

  #delayFor(state: AddressState): number {
    if (state.failures === 0 || this.#opts.maxDelayMs === 0) return 0
    return Math.min(this.#opts.maxDelayMs, firstDelayMs * 2 ** Math.min(30, state.failures - 1))
  }

  #touch(address: string): AddressState {
    const now = this.#now()
    let state = this.#addresses.get(address)
    if (state !== undefined) {
      this.#addresses.delete(address)
      if (state.failures > 0 && now - state.lastFailureAt > failureMemoryMs) state.failures = 0
    } else {
      state = { failures: 0, lastFailureAt: 0, pending: 0, tail: Promise.resolve(), verified: [] }
    }
    this.#addresses.set(address, state)
    while (this.#addresses.size > this.#opts.maxTrackedAddresses) {
      const oldest = this.#addresses.keys().next().value as string
      this.#addresses.delete(oldest)
      hitLimit('auth.maxTrackedAddresses')
    }
    return state
  }
}
