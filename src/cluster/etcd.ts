// The one etcd client of a node, and the counts of its round trips. Every request carries a
// deadline, so a node cut off from etcd learns it in `requestTimeout` rather than hanging on a
// call while its lease runs out; watches and the lease's keepalive stream carry none.

import { handleWhen, noop, retry } from 'cockatiel'
import { Etcd3, isRecoverableError } from 'etcd3'

export type EtcdOp = 'get' | 'txn' | 'put' | 'delete' | 'grant' | 'revoke'

export interface EtcdRoundTrips {
  readonly ok: number
  readonly error: number
  /** Sum of the round trips' durations, for the average. */
  readonly seconds: number
}

export interface EtcdOptions {
  readonly endpoints: readonly string[]
  readonly requestTimeoutMs: number
}

export class EtcdSession {
  readonly client: Etcd3
  readonly #stats = new Map<EtcdOp, { ok: number; error: number; seconds: number }>()

  constructor(opts: EtcdOptions) {
    this.client = new Etcd3({
      hosts: [...opts.endpoints],
      dialTimeout: opts.requestTimeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.requestTimeoutMs }),
      faultHandling: {
        // A failed call is tried once more on another member when there is one. The default
        // circuit breaker would hold a node off etcd for 5 s after three failures, longer than a
        // short lease: a node rejoining after a cut must reach etcd on its first try.
        host: () => noop,
        global: retry(handleWhen(isRecoverableError), { maxAttempts: opts.endpoints.length > 1 ? 1 : 0 }),
      },
    })
  }

  /** Runs one request and counts it under `op`. */
  async timed<T>(op: EtcdOp, run: () => Promise<T>): Promise<T> {
    const t0 = performance.now()
    let s = this.#stats.get(op)
    if (s === undefined) this.#stats.set(op, (s = { ok: 0, error: 0, seconds: 0 }))
    try {
      const out = await run()
      s.ok++
      return out
    } catch (err) {
      s.error++
      throw err
    } finally {
      s.seconds += (performance.now() - t0) / 1000
    }
  }

  roundTrips(): ReadonlyMap<EtcdOp, EtcdRoundTrips> {
    return this.#stats
  }

  close(): void {
    this.client.close()
  }
}
