import { errors } from '../errors.js'
import type { StoredRecord } from '../log/index.js'
import { str, u64, type Keyspace, type MetaOp, type MetaStore, type ValueCodec } from '../meta/index.js'
import type { Publisher, PublishEvent } from '../streams/publisher.js'
import type { Stream } from '../streams/registry.js'
import { parseHeaders, safeParse, type DeathEntry } from './dead-letter.js'
import { IntervalSet, RangeChange } from './interval-set.js'

export interface RedriveFilter {
  readonly reason?: string | undefined
  readonly group?: string | undefined
  readonly exchange?: string | undefined
}

export interface RedriveResult {
  readonly redriven: number
  /** Dead-lettered events that matched but name no exchange to go back to. */
  readonly skipped: number
  /** Offsets left for a later call (limit reached). */
  readonly remaining: boolean
  /** With `offsets`: those that hold no dead letter to send (out of the stream, redriven already, not a dead letter, or not matching the filter). */
  readonly notFound?: number
}

const endCodec: ValueCodec<number> = {
  name: 'u64end',
  encode: (n) => {
    const b = Buffer.allocUnsafe(8)
    b.writeBigUInt64BE(BigInt(n))
    return b
  },
  decode: (b) => Number(b.readBigUInt64BE(0)),
}

const scanBytes = 256 * 1024
const redriveCountHeader = 'x-redrive-count'
/**
 * The death a redriven copy was sent back for. The copy keeps its x-death history, so a redrive
 * of the stream it lands in must not take it for a dead letter (each run would republish it
 * again); once it dies again its latest x-death entry changes and no longer matches this.
 */
export const redrivenDeathHeader = 'x-redriven-death'

/** One death's identity: its entry, its count and its time change whenever the event dies again. */
const deathMark = (d: DeathEntry): string => `${String(d.stream)}/${String(d.group)}/${String(d.reason)}/${String(d.count)}/${String(d.time)}`

export interface RedriveOptions {
  /** A group dead-letters into this stream: an empty one is a dead-letter stream with nothing in it yet. */
  readonly deadLetterTarget?: boolean
  /**
   * Only these offsets (a person's hand-picked selection), each read on its own rather than the
   * stream scanned; the caller bounds how many (server.http.maxRedriveOffsets).
   */
  readonly offsets?: readonly number[] | undefined
}

/** Sorted, each once: a selection sent twice or out of order redrives each event once, in stream order. */
const uniqueSorted = (offsets: readonly number[]): number[] => [...new Set(offsets)].sort((a, b) => a - b)

/** The records at `offsets` still in the stream and not redriven before, in offset order. */
async function* recordsAt(stream: Stream, offsets: readonly number[], done: IntervalSet): AsyncGenerator<StoredRecord> {
  const log = stream.log
  for (const o of uniqueSorted(offsets)) {
    if (o < log.startOffset || o >= log.endOffset || done.has(o)) continue
    const { records } = await log.read(o, { maxRecords: 1 })
    const r = records[0]
    if (r !== undefined && r.offset === o) yield r
  }
}

/** A record's latest death when it is a dead letter still to be redriven (not a redriven copy). */
function pendingDeath(r: StoredRecord): { headers: Record<string, unknown>; death: DeathEntry } | undefined {
  const headers = parseHeaders(r)
  const deaths = headers['x-death']
  const death = Array.isArray(deaths) ? (deaths[0] as DeathEntry | undefined) : undefined
  if (death === undefined || typeof death !== 'object' || death === null) return undefined
  if (headers[redrivenDeathHeader] === deathMark(death)) return undefined
  return { headers, death }
}

function matches(death: DeathEntry, filter: RedriveFilter): boolean {
  if (filter.reason !== undefined && death.reason !== filter.reason) return false
  if (filter.group !== undefined && death.group !== filter.group) return false
  if (filter.exchange !== undefined && death.exchange !== filter.exchange) return false
  return true
}

/** Where dead letters came from: the group that let them go, and the exchange a redrive sends them back to. */
export interface DeadLetterOrigin {
  readonly group: string
  readonly stream: string
  readonly exchange: string | null
  count: number
}

/** What a redrive with a filter would send now; nothing is sent. */
export interface RedrivePreview {
  /** Dead letters the filter matches that a redrive would send back. */
  readonly matching: number
  /** Dead letters the filter matches that name no exchange to go back to (a redrive skips them). */
  readonly noExchange: number
  /** Every dead letter still to be redriven, by the reason of its latest death (filter or not). */
  readonly byReason: Readonly<Record<string, number>>
  /** The same, by origin; at most `originsMax` origins, the rest counted in `otherOrigins`. */
  readonly byOrigin: readonly DeadLetterOrigin[]
  readonly otherOrigins: number
  /** Events read; when `complete` is false, the scan stopped at `nextOffset` (maxScan). */
  readonly scanned: number
  readonly nextOffset: number
  readonly complete: boolean
}

/**
 * Origins are named by headers inside the events, which anyone who can write to the stream
 * chooses: a bounded table, so a stream of forged x-death entries cannot grow it without end.
 */
const originsMax = 100

/**
 * Redrive: republish dead-lettered events to the exchange and routing key of their latest death.
 * Which offsets of a dead-letter stream were redriven is kept as ranges in the metadata store, so
 * a redrive never sends an event twice and a filtered redrive leaves the rest for later.
 */
export class Redriver {
  readonly #ks: Keyspace<[string, number], number>
  readonly #done = new Map<string, IntervalSet>()
  readonly #meta: MetaStore
  readonly #publisher: Publisher
  #running = Promise.resolve()

  constructor(meta: MetaStore, publisher: Publisher) {
    this.#meta = meta
    this.#publisher = publisher
    this.#ks = meta.keyspace('redriven', [str(), u64()] as const, endCodec)
  }

  /**
   * Loads every stream's redriven ranges; runs at start-up, before anything can dead-letter.
   * Ranges at or past a log's end name events a cut tail lost: those offsets will hold new dead
   * letters, which must not count as redriven. A stream without a log (deleted) loses its ranges.
   */
  async load(endOf: (stream: string) => number | undefined): Promise<number> {
    const clamp: MetaOp[] = []
    for await (const { key, value } of this.#ks.iterate({})) {
      const [name, start] = key
      const end = endOf(name)
      if (end === undefined || start >= end) {
        clamp.push(this.#ks.delOp(key))
        continue
      }
      if (value > end) clamp.push(this.#ks.putOp(key, end))
      let set = this.#done.get(name)
      if (set === undefined) this.#done.set(name, (set = new IntervalSet()))
      set.add(start, Math.min(value, end))
    }
    if (clamp.length > 0) await this.#meta.write(clamp, { sync: true })
    return clamp.length
  }

  #set(stream: string): IntervalSet {
    let s = this.#done.get(stream)
    if (s === undefined) this.#done.set(stream, (s = new IntervalSet()))
    return s
  }

  /**
   * One redrive at a time, so two calls cannot send the same events. A stream that holds no
   * dead-lettered event (none with x-death but redriven copies, none redriven before) and that no
   * group dead-letters into is refused: it is not a dead-letter stream.
   */
  redrive(stream: Stream, limit: number, filter: RedriveFilter = {}, opts: RedriveOptions = {}): Promise<RedriveResult> {
    const run = this.#running.then(() => this.#redrive(stream, limit, filter, opts))
    this.#running = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  /**
   * Counts what a redrive would send, by the very rules #redrive uses, reading at most `maxScan`
   * events from `from` (the stream's start by default). A person sees the count before confirming.
   */
  async preview(stream: Stream, filter: RedriveFilter, maxScan: number, from?: number, offsets?: readonly number[]): Promise<RedrivePreview> {
    const done = this.#set(stream.name)
    if (offsets !== undefined) return this.#previewAt(stream, filter, offsets, done)
    const log = stream.log
    const tally = new PreviewTally(filter, originsMax)
    let scanned = 0
    let next = done.skip(Math.max(from ?? log.startOffset, log.startOffset))
    while (next < log.endOffset && scanned < maxScan) {
      const { records, nextOffset } = await log.read(next, { maxBytes: scanBytes, maxRecords: maxScan - scanned })
      if (records.length === 0) break
      for (const r of records) {
        scanned++
        if (!done.has(r.offset)) tally.add(r)
      }
      next = done.skip(nextOffset)
    }
    return { ...tally.counts(), scanned, nextOffset: next, complete: next >= log.endOffset }
  }

  /** preview() of a selection: the same counts over the picked offsets only. */
  async #previewAt(stream: Stream, filter: RedriveFilter, offsets: readonly number[], done: IntervalSet): Promise<RedrivePreview> {
    // A selection is bounded by its caller: every origin in it is listed.
    const tally = new PreviewTally(filter, Infinity)
    for await (const r of recordsAt(stream, offsets, done)) tally.add(r)
    return { ...tally.counts(), scanned: uniqueSorted(offsets).length, nextOffset: stream.log.endOffset, complete: true }
  }

  async #redrive(stream: Stream, limit: number, filter: RedriveFilter, opts: RedriveOptions): Promise<RedriveResult> {
    const done = this.#set(stream.name)
    const log = stream.log
    const chosen: Array<{ record: StoredRecord; death: DeathEntry; headers: Record<string, unknown> }> = []
    let skipped = 0
    let deadLetters = done.count > 0
    let next = done.skip(log.startOffset)
    let remaining = false
    let notFound: number | undefined
    if (opts.offsets !== undefined) {
      const picked = uniqueSorted(opts.offsets)
      const found = new Set<number>()
      let stopAt: number | undefined
      for await (const r of recordsAt(stream, picked, done)) {
        const pending = pendingDeath(r)
        if (pending === undefined) continue
        deadLetters = true
        if (!matches(pending.death, filter)) continue
        if (chosen.length >= limit) {
          remaining = true
          stopAt = r.offset
          break
        }
        found.add(r.offset)
        if (typeof pending.death.exchange !== 'string' || pending.death.exchange === '') {
          skipped++
          continue
        }
        chosen.push({ record: r, death: pending.death, headers: pending.headers })
      }
      notFound = picked.filter((o) => !found.has(o) && (stopAt === undefined || o < stopAt)).length
      // The selection replaces the scan below.
      next = log.endOffset
    }
    while (next < log.endOffset) {
      const { records, nextOffset } = await log.read(next, { maxBytes: scanBytes })
      if (records.length === 0) break
      for (const r of records) {
        if (done.has(r.offset)) continue
        const pending = pendingDeath(r)
        if (pending === undefined) continue
        const { headers, death } = pending
        deadLetters = true
        if (!matches(death, filter)) continue
        if (chosen.length >= limit) {
          remaining = true
          break
        }
        if (typeof death.exchange !== 'string' || death.exchange === '') {
          skipped++
          continue
        }
        chosen.push({ record: r, death, headers })
      }
      if (remaining) break
      next = done.skip(nextOffset)
    }
    if (!deadLetters && opts.deadLetterTarget !== true) throw errors.notDeadLetters(stream.name)
    // Republish in order, one request per run of the same exchange.
    let k = 0
    while (k < chosen.length) {
      const exchange = chosen[k]!.death.exchange!
      let j = k
      const events: PublishEvent[] = []
      while (j < chosen.length && chosen[j]!.death.exchange === exchange) {
        const c = chosen[j]!
        const count = typeof c.headers[redriveCountHeader] === 'number' ? (c.headers[redriveCountHeader] as number) : 0
        events.push({
          body: Buffer.from(c.record.body),
          value: c.record.json ? safeParse(c.record.body) : undefined,
          json: c.record.json,
          routingKey: c.death.routingKey,
          headers: { ...c.headers, [redriveCountHeader]: count + 1, [redrivenDeathHeader]: deathMark(c.death) },
          id: c.record.id,
          timestamp: c.record.timestamp,
        })
        j++
      }
      try {
        await this.#publisher.publish({ exchange, events, internal: true })
      } catch (err) {
        throw errors.badRequest(`redrive to exchange "${exchange}" failed: ${(err as Error).message}`, { exchange })
      }
      const change = new RangeChange()
      for (let i = k; i < j; i++) done.add(chosen[i]!.record.offset, chosen[i]!.record.offset + 1, change)
      const ops: MetaOp[] = []
      for (const start of change.removed) ops.push(this.#ks.delOp([stream.name, start]))
      for (const [start, end] of change.upserts) ops.push(this.#ks.putOp([stream.name, start], end))
      await this.#meta.write(ops, { sync: true })
      k = j
    }
    return { redriven: chosen.length, skipped, remaining, ...(notFound !== undefined ? { notFound } : {}) }
  }
}

/** What preview() counts, one dead letter at a time: by reason, by origin, and what the filter picks. */
class PreviewTally {
  readonly #filter: RedriveFilter
  readonly #originsMax: number
  readonly #byReason: Record<string, number> = {}
  readonly #origins = new Map<string, DeadLetterOrigin>()
  #matching = 0
  #noExchange = 0
  #otherOrigins = 0

  constructor(filter: RedriveFilter, originsMax: number) {
    this.#filter = filter
    this.#originsMax = originsMax
  }

  /** A record not redriven yet; one that is no pending dead letter counts nowhere. */
  add(r: StoredRecord): void {
    const pending = pendingDeath(r)
    if (pending === undefined) return
    const { death } = pending
    const reason = String(death.reason)
    this.#byReason[reason] = (this.#byReason[reason] ?? 0) + 1
    const exchange = typeof death.exchange === 'string' && death.exchange !== '' ? death.exchange : null
    const key = `${String(death.group)}\u0000${String(death.stream)}\u0000${exchange ?? ''}`
    const origin = this.#origins.get(key)
    if (origin !== undefined) origin.count++
    else if (this.#origins.size < this.#originsMax) this.#origins.set(key, { group: String(death.group), stream: String(death.stream), exchange, count: 1 })
    else this.#otherOrigins++
    if (!matches(death, this.#filter)) return
    if (exchange === null) this.#noExchange++
    else this.#matching++
  }

  counts(): Pick<RedrivePreview, 'matching' | 'noExchange' | 'byReason' | 'byOrigin' | 'otherOrigins'> {
    return { matching: this.#matching, noExchange: this.#noExchange, byReason: this.#byReason, byOrigin: [...this.#origins.values()], otherOrigins: this.#otherOrigins }
  }
}
