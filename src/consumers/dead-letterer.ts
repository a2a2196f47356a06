import { SluiceError } from '../errors.js'
import { storedRecordBytes, type LogLogger, type StoredRecord } from '../log/index.js'
import type { ParkedEvent } from './cursor-state.js'
import { deadLetterRecord, safeParse, type DeadLetterSink, type Death, type DeathReason } from './dead-letter.js'

interface PendingDeath extends Death {
  readonly count: number
  readonly done: (err?: unknown) => void
}

export interface DeadLettererDeps {
  readonly group: string
  readonly stream: string
  /** undefined: poison events are parked in the group, never dropped. */
  readonly sink: DeadLetterSink | undefined
  /** The routing key a dead-letter exchange gets, when the group names one. */
  readonly routingKey: string | undefined
  readonly now: () => number
  readonly logger?: LogLogger | undefined
  /** Settles the dead events once their copies are durable at the target. */
  settle(offsets: readonly number[]): Promise<void>
  /** Parks events in the group, durably. */
  park(events: readonly ParkedEvent[]): Promise<void>
  /** Puts events back for redelivery after a failed dead-letter: nothing may be lost. */
  retryLater(events: ReadonlyArray<{ readonly record: StoredRecord; readonly count: number }>): void
}

/**
 * Sends a group's poison events to its dead-letter target, batched: every death queued while a
 * batch is being written goes out in the next one. The dead-letter copy is durable before the
 * original settles: a crash in between dead-letters it again (a duplicate in the target), never
 * loses it.
 */
export class DeadLetterer {
  readonly #deps: DeadLettererDeps
  #queue: PendingDeath[] = []
  #run: Promise<void> | undefined
  readonly counts: Record<DeathReason, number> = { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0 }

  constructor(deps: DeadLettererDeps) {
    this.#deps = deps
  }

  /** Deaths queued and not yet written. */
  get pending(): number {
    return this.#queue.length
  }

  /** Stored bytes of the deaths queued and not yet written (maxBacklogBytes leaves them out, as maxBacklog does `pending`). */
  get pendingBytes(): number {
    let n = 0
    for (const d of this.#queue) n += storedRecordBytes(d.record)
    return n
  }

  /** Queues a death; resolves once it is durable at the target (or parked). */
  kill(record: StoredRecord, count: number, reason: DeathReason, error?: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ record, reason, error, count, done: (err) => (err === undefined ? resolve() : reject(err)) })
      this.#run ??= this.#flush()
    })
  }

  /** Waits for every queued death to be written or returned. */
  async drained(): Promise<void> {
    while (this.#run !== undefined) await this.#run
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue
        this.#queue = []
        try {
          await this.#bury(batch)
          this.#done(batch)
        } catch (caught) {
          let err = caught
          if (err instanceof SluiceError && !err.retryable && this.#deps.sink !== undefined) {
            // The target can never take them (an event larger than its segments): retrying
            // would loop forever and hold the backlog, so they are parked in the group instead.
            this.#deps.logger?.warn({ group: this.#deps.group, err, events: batch.length }, 'dead-letter target refused the events for good; parked in the group')
            try {
              await this.#deps.park(this.#parked(batch, err.message))
              this.#done(batch)
              continue
            } catch (parkErr) {
              err = parkErr
            }
          }
          this.#deps.logger?.warn({ group: this.#deps.group, err, events: batch.length }, 'dead-lettering failed; the events stay unsettled and come back')
          this.#deps.retryLater(batch)
          for (const d of batch) d.done(err)
        }
      }
    } finally {
      this.#run = undefined
    }
  }

  #done(batch: readonly PendingDeath[]): void {
    for (const d of batch) {
      this.counts[d.reason]++
      d.done()
    }
  }

  #parked(batch: readonly PendingDeath[], targetError?: string): ParkedEvent[] {
    const time = this.#deps.now()
    return batch.map((d) => {
      const error = targetError ?? d.error
      return { offset: d.record.offset, reason: d.reason, deliveryCount: d.count, time, ...(error !== undefined ? { error } : {}) }
    })
  }

  async #bury(batch: readonly PendingDeath[]): Promise<void> {
    const { sink } = this.#deps
    if (sink === undefined) return this.#deps.park(this.#parked(batch))
    const now = this.#deps.now()
    const records = batch.map((d) => deadLetterRecord(d, this.#deps.stream, this.#deps.group, now, this.#deps.routingKey))
    const values = batch.map((d) => (d.record.json ? safeParse(d.record.body) : undefined))
    await sink.deadLetter(records, values)
    await this.#deps.settle(batch.map((d) => d.record.offset))
  }
}
