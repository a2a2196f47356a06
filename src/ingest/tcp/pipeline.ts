import type { Socket } from 'node:net'
import { SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import type { Logger } from '../../logger.js'
import type { Publisher, PublishEvent, PublishRequest, PublishSourceName } from '../../streams/publisher.js'
import type { IngestErrors } from '../ingest-errors.js'

/**
 * Events parsed from one TCP connection, published in order. One publish is in flight at a time;
 * what arrives meanwhile accumulates into the next batch, so a fast sender is batched by the
 * durability wait itself. Past `maxPendingBytes` the socket is paused: the sender's kernel buffer
 * fills and TCP slows it down. Nothing read is dropped: a publish refused for a passing reason
 * (alarm, rate limit, backlog full, a failing disk) is retried, with the socket paused, until it
 * goes through; one refused for good goes to `onRejected` (the ingest-errors stream).
 * `afterStored` lets a door answer once what it read so far is settled (Forward's `ack`).
 */
export class ConnectionPipeline {
  #pending: PublishEvent[] = []
  /** Called once every event added before them is stored or set aside; they travel with the batch. */
  #waiters: Array<() => void> = []
  #pendingBytes = 0
  #inFlight = false
  #paused = false
  #ended = false
  #retryMs = 50
  #retryAt = 0
  #idle: (() => void) | undefined
  published = 0

  constructor(
    private readonly socket: Socket,
    private readonly publisher: Publisher,
    private readonly exchange: string,
    private readonly maxPendingBytes: number,
    private readonly onRejected: (events: PublishEvent[], err: SluiceError) => void,
    private readonly onFailure: (err: unknown) => void,
    /** Who publishes, for the rate limits (the publish path applies them). */
    private readonly from: PublishRequest['from'],
    private readonly source: PublishSourceName = 'ndjson',
    /** The `limit` label counted when the socket pauses at maxPendingBytes. */
    private readonly pendingLimit = `${source}.maxPendingSize`,
  ) {}

  get pendingBytes(): number {
    return this.#pendingBytes
  }

  add(event: PublishEvent): void {
    this.#pending.push(event)
    this.#pendingBytes += event.body.length
    if (this.#pendingBytes >= this.maxPendingBytes && !this.#paused) {
      this.#paused = true
      hitLimit(this.pendingLimit)
      this.socket.pause()
    }
  }

  /**
   * Calls `fn` once every event added so far is stored durably or set aside in ingest-errors (a
   * refusal for good); never before. One waiter per client request, not per event.
   */
  afterStored(fn: () => void): void {
    if (!this.#inFlight && this.#pending.length === 0) fn()
    else this.#waiters.push(fn)
  }

  /** Called after each chunk is parsed: starts a publish if none is running. */
  flush(): void {
    if (this.#inFlight) return
    if (this.#pending.length > 0) this.#send(...this.#take())
    else this.#settle(this.#take()[1])
  }

  /** Resolves once everything read so far is stored (or set aside). */
  end(): Promise<void> {
    this.#ended = true
    this.flush()
    if (!this.#inFlight) return Promise.resolve()
    return new Promise((resolve) => (this.#idle = resolve))
  }

  #take(): [PublishEvent[], Array<() => void>] {
    const batch = this.#pending
    const waiters = this.#waiters
    this.#pending = []
    this.#waiters = []
    this.#pendingBytes = 0
    return [batch, waiters]
  }

  #settle(waiters: ReadonlyArray<() => void>): void {
    for (const w of waiters) w()
  }

  #send(batch: PublishEvent[], waiters: Array<() => void>): void {
    this.#inFlight = true
    const request = { exchange: this.exchange, events: batch, source: this.source, invalid: 'event', admit: 'partial', from: this.from } as const
    this.publisher.publish(request).then(
      (result) => {
        // Each line is a message of its own: an invalid one is set aside, its neighbours stored.
        for (const r of result.refused ?? []) this.onRejected([batch[r.index]!], r.error)
        let done = batch.length
        if (result.deferred !== undefined) {
          // Over a rate limit: stop reading; the rest goes after the refill. TCP tells the
          // sender to slow down; nothing is dropped.
          done = result.deferred.from
          const rest = batch.slice(done)
          this.#pending = rest.concat(this.#pending)
          // Their waiters wait for the rest too.
          this.#waiters = waiters.concat(this.#waiters)
          waiters = []
          for (const e of rest) this.#pendingBytes += e.body.length
          this.#retryAt = Date.now() + result.deferred.retryAfterMs
          this.#pause()
        }
        this.published += done - (result.refused?.length ?? 0)
        this.#retryMs = 50
        this.#settle(waiters)
        this.#next()
      },
      (err: unknown) => {
        if (err instanceof SluiceError && !err.retryable) {
          this.onRejected(batch, err)
          this.#settle(waiters)
          this.#next()
          return
        }
        // Passing trouble: hold the socket and try the same batch again, keeping the order.
        this.#pause()
        this.onFailure(err)
        const delay = this.#retryMs
        this.#retryMs = Math.min(this.#retryMs * 2, 2000)
        setTimeout(() => this.#send(batch, waiters), delay).unref()
      },
    )
  }

  #pause(): void {
    if (!this.#paused) {
      this.#paused = true
      this.socket.pause()
    }
  }

  #next(): void {
    this.#inFlight = false
    const hold = this.#retryAt - Date.now()
    if (hold > 0) {
      // Part of the last batch is waiting for rate-limit tokens.
      this.#inFlight = true
      setTimeout(() => this.#next(), hold).unref()
      this.#retryAt = 0
      return
    }
    if (this.#paused && this.#pendingBytes < this.maxPendingBytes && !this.socket.destroyed) {
      this.#paused = false
      this.socket.resume()
    }
    if (this.#pending.length > 0) return this.#send(...this.#take())
    this.#settle(this.#take()[1])
    if (this.#ended && this.#idle !== undefined) this.#idle()
  }
}

export interface DoorContext {
  readonly listener: 'ndjson' | 'syslog' | 'gelf' | 'forward'
  readonly exchange: string
  /** The user the connection publishes as (the rate limits' `user`). */
  readonly user?: string | undefined
  readonly publisher: Publisher
  readonly errors: IngestErrors
  readonly limiter: RateLimiter
  readonly logger: Logger
  /** server.<listener>.maxPendingSize: read and not yet stored, per connection, before the socket pauses. */
  readonly maxPendingBytes: number
}

/**
 * The pipeline of one connection of a TCP door: refused events go to ingest-errors, passing
 * failures are logged and retried, and the rate limits see the door, the address and the user.
 */
export function doorPipeline(socket: Socket, remote: string, door: DoorContext): ConnectionPipeline {
  const { listener, exchange } = door
  return new ConnectionPipeline(
    socket,
    door.publisher,
    exchange,
    door.maxPendingBytes,
    (events, err) => {
      for (const e of events) door.errors.record({ listener, remote, reason: `${err.wireCode}: ${err.message}`, raw: e.body })
    },
    (err) => door.logger.warn({ listener, remote, err }, 'publish failed; retrying with the connection paused'),
    { listener, remote: socket.remoteAddress, user: door.user },
    listener,
  )
}
