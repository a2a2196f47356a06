import type { Config, ExchangeConfig } from '../config/index.js'
import { errors } from '../errors.js'
import type { AppendRecord } from '../log/index.js'
import type { MetaOp, MetaStore } from '../meta/index.js'
import { compileTemplate, type Router, type RoutingKeyTemplate } from '../router/index.js'
import type { DedupWindow } from './dedup-window.js'
import type { StreamRegistry } from './registry.js'

/** One event as a door hands it over: serialised once, parsed once. */
export interface PublishEvent {
  /** The bytes stored as the body: the JSON text of the value, or raw bytes. */
  readonly body: Buffer
  /** The parsed body for routing-key templates and headers exchanges; undefined for raw bytes. */
  readonly value: unknown
  readonly json: boolean
  readonly routingKey?: string | undefined
  readonly headers?: Readonly<Record<string, unknown>> | undefined
  readonly id?: string | undefined
  readonly timestamp?: number | undefined
}

export interface PublishRequest {
  readonly exchange: string
  readonly events: readonly PublishEvent[]
  readonly idempotencyKey?: string | undefined
}

export interface PublishResult {
  readonly accepted: number
  readonly duplicates: number
  readonly unroutable: number
}

/** The narrow interface every ingest door gets (HTTP, NDJSON, syslog, AMQP). */
export interface Publisher {
  publish(req: PublishRequest): Promise<PublishResult>
}

export interface PublishCounters {
  requests: number
  events: number
  accepted: number
  duplicates: number
  unroutable: number
  rejected: number
}

interface ExchangeRuntime {
  readonly config: ExchangeConfig
  readonly template: RoutingKeyTemplate | undefined
}

const idempotencyPrefix = 'idempotency-key:'
const eventIdPrefix = 'id:'

/**
 * The one publish path: validate → route → one append per target stream → wait until durable in
 * every target → remember dedup ids → confirm. Nothing here knows about HTTP or sockets.
 */
export class BrokerPublisher implements Publisher {
  readonly #exchanges = new Map<string, ExchangeRuntime>()
  readonly #router: Router
  readonly #streams: StreamRegistry
  readonly #dedup: DedupWindow
  readonly #meta: MetaStore
  readonly #now: () => number
  readonly counters: PublishCounters = { requests: 0, events: 0, accepted: 0, duplicates: 0, unroutable: 0, rejected: 0 }

  constructor(config: Config, router: Router, streams: StreamRegistry, meta: MetaStore, dedup: DedupWindow, now: () => number = Date.now) {
    for (const ex of Object.values(config.exchanges)) {
      this.#exchanges.set(ex.name, { config: ex, template: ex.routingKey === null ? undefined : compileTemplate(ex.routingKey) })
    }
    this.#router = router
    this.#streams = streams
    this.#meta = meta
    this.#dedup = dedup
    this.#now = now
  }

  exchangeConfig(name: string): ExchangeConfig | undefined {
    return this.#exchanges.get(name)?.config
  }

  async publish(req: PublishRequest): Promise<PublishResult> {
    const ex = this.#exchanges.get(req.exchange)
    if (ex === undefined) throw errors.routerUnknownExchange(req.exchange)
    this.counters.requests++
    this.counters.events += req.events.length
    const now = this.#now()
    const windowMs = ex.config.dedupWindowMs

    // A retried request: confirm it again, store nothing. A concurrent twin waits for the first.
    let requestKey: string | undefined
    let settleRequest: ((stored: boolean) => void) | undefined
    if (req.idempotencyKey !== undefined) {
      requestKey = idempotencyPrefix + req.idempotencyKey
      let seen = this.#dedup.check(req.exchange, requestKey, now)
      while (typeof seen !== 'string') {
        await seen
        seen = this.#dedup.check(req.exchange, requestKey, this.#now())
      }
      if (seen === 'duplicate') {
        this.counters.duplicates += req.events.length
        return { accepted: 0, duplicates: req.events.length, unroutable: 0 }
      }
      this.#dedup.reserve(req.exchange, requestKey, new Promise<boolean>((resolve) => (settleRequest = resolve)))
    }

    const perStream = new Map<string, AppendRecord[]>()
    const newIds: string[] = []
    let duplicates = 0
    let unroutable = 0
    let settleIds: ((stored: boolean) => void) | undefined
    const idsOutcome = new Promise<boolean>((resolve) => (settleIds = resolve))
    try {
      // First pass: classify every id. A twin inside the request or one already in the window is a
      // duplicate; one that a concurrent request is storing right now waits for its outcome.
      const ids = new Array<string | undefined>(req.events.length)
      const duplicate = new Uint8Array(req.events.length)
      const inRequest = new Set<string>()
      const waits: Promise<void>[] = []
      for (let i = 0; i < req.events.length; i++) {
        const ev = req.events[i]!
        const id = ev.id ?? (ex.config.dedup === null ? undefined : idFromBody(ev.value, ex.config.dedup, i + 1))
        ids[i] = id
        if (id === undefined) continue
        const key = eventIdPrefix + id
        if (inRequest.has(key)) {
          duplicate[i] = 1
          continue
        }
        inRequest.add(key)
        const seen = this.#dedup.check(req.exchange, key, now)
        if (seen === 'duplicate') duplicate[i] = 1
        else if (seen === 'new') {
          this.#dedup.reserve(req.exchange, key, idsOutcome)
          newIds.push(key)
        } else {
          waits.push(seen.then((stored) => void (duplicate[i] = stored ? 1 : 0)))
        }
      }
      if (waits.length > 0) await Promise.all(waits)

      for (let i = 0; i < req.events.length; i++) {
        const ev = req.events[i]!
        const id = ids[i]
        if (duplicate[i] === 1) {
          duplicates++
          continue
        }
        const routingKey = ev.routingKey ?? (ex.template === undefined ? '' : ex.template(ev.value))
        const route = this.#router.route(req.exchange, routingKey, ev.headers, ev.value)
        if (route.unroutable) {
          if (route.policy === 'reject') throw errors.unroutable(i + 1, req.exchange, routingKey)
          unroutable++
          continue
        }
        const record: AppendRecord = {
          timestamp: ev.timestamp ?? now,
          key: routingKey,
          body: ev.body,
          json: ev.json,
          id,
          headers: ev.headers === undefined ? undefined : Buffer.from(JSON.stringify(ev.headers)),
        }
        for (const name of route.streams) {
          let list = perStream.get(name)
          if (list === undefined) perStream.set(name, (list = []))
          list.push(record)
        }
      }

      const appends: Promise<unknown>[] = []
      for (const [name, records] of perStream) {
        const stream = this.#streams.get(name)
        if (stream === undefined) throw errors.unknownStream(name)
        appends.push(stream.log.append(records))
      }
      // Every target must be durable before the confirm; a failure fails the request (the client
      // retries, and ids keep the streams that did store it from storing it twice).
      await Promise.all(appends)

      const ops: MetaOp[] = []
      const stamp = this.#now()
      this.#dedup.commit(req.exchange, newIds, stamp, windowMs, ops)
      if (requestKey !== undefined) this.#dedup.commit(req.exchange, [requestKey], stamp, windowMs, ops)
      // The ids reach the metadata store after the log's fsync, never before: a crash between
      // the two can at worst forget an id (a later retry stores a duplicate), never lose an event.
      if (ops.length > 0) await this.#meta.write(ops, { sync: this.#syncIds(perStream) })
      settleIds!(true)
      settleRequest?.(true)
    } catch (err) {
      this.#dedup.release(req.exchange, newIds)
      if (requestKey !== undefined) this.#dedup.release(req.exchange, [requestKey])
      settleIds!(false)
      settleRequest?.(false)
      this.counters.rejected += req.events.length
      throw err
    }
    const accepted = req.events.length - duplicates - unroutable
    this.counters.accepted += accepted
    this.counters.duplicates += duplicates
    this.counters.unroutable += unroutable
    return { accepted, duplicates, unroutable }
  }

  #syncIds(perStream: Map<string, AppendRecord[]>): boolean {
    for (const name of perStream.keys()) if (this.#streams.get(name)?.config.fsync !== 'never') return true
    return false
  }
}

function idFromBody(value: unknown, field: string, n: number): string | undefined {
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, field)) return undefined
  const v = (value as Record<string, unknown>)[field]
  if (typeof v === 'string') {
    // Ids become metadata keys, which must be valid Unicode.
    if (!v.isWellFormed()) throw errors.badEvent(n, `the id field "${field}" holds invalid Unicode`)
    return v.length > 0 ? v : undefined
  }
  if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  return undefined
}
