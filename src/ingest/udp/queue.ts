import { SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import type { Publisher, PublishEvent, PublishSourceName } from '../../streams/publisher.js'
import type { IngestErrors } from '../ingest-errors.js'
import type { ListenerCounters } from '../tcp/server.js'

export interface DatagramQueueOptions {
  /** The listener as metrics and ingest-errors name it: syslog-udp, gelf-udp. */
  readonly listener: string
  /** The door as the publish path and the rate limits name it: syslog, gelf. */
  readonly source: PublishSourceName & ('syslog' | 'gelf')
  readonly exchange: string
  /** The user the datagrams are published as (the rate limits' `user`). */
  readonly user: string | undefined
  readonly publisher: Publisher
  readonly errors: IngestErrors
  readonly logger: Logger
  readonly counters: ListenerCounters
  /** Messages waiting at most; the `limit` label counted past it. */
  readonly queueSize: number
  readonly queueLimit: string
}

/**
 * The publishing half of a UDP door. UDP has no backpressure, so messages queue while a publish
 * is in flight, up to `queueSize`; past it they are dropped and counted. One publish at a time:
 * what arrives meanwhile is batched by the durability wait itself. A rate limit defers the rest of
 * a batch to the front of the queue; a passing failure retries it; a refusal for good sets it
 * aside in ingest-errors.
 */
export class DatagramQueue {
  #queue: PublishEvent[] = []
  #inFlight = false
  #idle: (() => void) | undefined

  constructor(private readonly opts: DatagramQueueOptions) {}

  /**
   * Whether one more message fits; when not, its drop is counted. Asked before a datagram is
   * parsed, so a flood past the queue costs no parsing.
   */
  room(): boolean {
    if (this.#queue.length < this.opts.queueSize) return true
    this.opts.counters.dropped++
    hitLimit(this.opts.queueLimit)
    return false
  }

  /** Queues one message; room() said there is room. */
  push(event: PublishEvent): void {
    this.#queue.push(event)
    if (!this.#inFlight) this.#send()
  }

  /** Resolves once nothing is in flight (the socket is closed first, so nothing more arrives). */
  idle(): Promise<void> {
    return this.#inFlight ? new Promise((resolve) => (this.#idle = resolve)) : Promise.resolve()
  }

  #setAside(events: readonly PublishEvent[], err: SluiceError): void {
    for (const e of events) this.opts.errors.record({ listener: this.opts.listener, remote: undefined, reason: `${err.wireCode}: ${err.message}`, raw: e.body })
  }

  #send(): void {
    if (this.#queue.length === 0) {
      this.#inFlight = false
      this.#idle?.()
      return
    }
    this.#inFlight = true
    const batch = this.#queue
    this.#queue = []
    const { exchange, source, user, publisher } = this.opts
    publisher.publish({ exchange, events: batch, source, invalid: 'event', admit: 'partial', from: { listener: source, user } }).then(
      (result) => {
        if (result.deferred !== undefined) {
          // Over a rate limit: the rest waits for the refill, ahead of what came since.
          this.#queue = batch.slice(result.deferred.from).concat(this.#queue)
          setTimeout(() => this.#send(), result.deferred.retryAfterMs).unref()
        }
        // Each datagram is a message of its own: an invalid one is set aside, its neighbours stored.
        for (const r of result.refused ?? []) this.#setAside([batch[r.index]!], r.error)
        if (result.deferred === undefined) this.#send()
      },
      (err: unknown) => {
        if (err instanceof SluiceError && !err.retryable) {
          // Refused for good (e.g. unroutable with `unroutable: reject`): set aside, go on.
          this.#setAside(batch, err)
          this.#send()
          return
        }
        // Keep the batch at the front and try again shortly; the queue limit bounds the memory.
        this.opts.logger.warn({ listener: this.opts.listener, err }, 'publish failed; retrying')
        this.#queue = batch.concat(this.#queue)
        if (this.#queue.length > this.opts.queueSize) {
          const over = this.#queue.length - this.opts.queueSize
          this.#queue.length = this.opts.queueSize
          this.opts.counters.dropped += over
          hitLimit(this.opts.queueLimit, over)
        }
        setTimeout(() => this.#send(), 200).unref()
      },
    )
  }
}
