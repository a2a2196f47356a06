import { createHash } from 'node:crypto'
import { noteBackgroundError } from '../background.js'
import { defaultExchangeConfig, type Config, type ExchangeConfig } from '../config/index.js'
import { errors, SluiceError } from '../errors.js'
import type { PublishSource, RateLimiter } from '../flow/rate-limiter.js'
import type { AppendRecord, AppendResult } from '../log/index.js'
import type { MetaOp, MetaStore } from '../meta/index.js'
import { compileTemplate, mayMiss, type RouteResult, type Router, type RoutingKeyTemplate } from '../router/index.js'
import { expiresAtHeader } from './ttl.js'
import { requestKeyPrefix, type DedupWindow, type ScopeIds } from './dedup-window.js'
import { invalidEvent, type EventLimits } from './validate.js'
import type { StreamRegistry } from './registry.js'
import type { ForwardRequest, RemoteStream, ReplicationGate, StreamPlacement } from './placement.js'

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
  /** Per-event TTL in ms, counted from when it is stored (AMQP `expiration`). */
  readonly ttlMs?: number | undefined
  /** Headers already encoded as the log stores them (a forwarded event): stored unchanged; `headers` and `ttlMs` are then unset. */
  readonly encodedHeaders?: Uint8Array | undefined
}

export interface PublishRequest {
  readonly exchange: string
  readonly events: readonly PublishEvent[]
  readonly idempotencyKey?: string | undefined
  /**
   * Sluice republishing its own events (dead-lettering, redrive): no dedup, since the same id
   * legitimately comes back, and no backlog admission, since refusing would lose the event.
   */
  readonly internal?: boolean | undefined
  /** The door it came through, for per-listener metrics. */
  readonly source?: PublishSourceName | undefined
  /**
   * What an invalid event does. `request` (default, HTTP's all-or-nothing): the request fails
   * with the first one's error and nothing is stored. `event` (stream doors, where each event
   * is a message of its own): the others are stored and the invalid ones are named in `refused`.
   */
  readonly invalid?: 'request' | 'event' | undefined
  /** Who is publishing, for the rate limits; internal writers leave it out and are not limited. */
  readonly from?: Omit<PublishSource, 'exchange'> | undefined
  /**
   * How the rate limits admit it: `all` (default; HTTP, AMQP) or a 429 with Retry-After;
   * `partial` (stream doors): what the buckets hold now is stored, the rest is `deferred`.
   */
  readonly admit?: 'all' | 'partial' | undefined
  /**
   * Store in this stream only, without routing: a group dead-lettering to its stream, or cluster
   * mode's forwarded append, routed by the node that took the publish. The exchange need not
   * exist any more (a dead-lettered event keeps the one it came through).
   */
  readonly stream?: string | undefined
  /** Cluster mode: sent by another node, which routed it here; stored here or refused, never forwarded again. */
  readonly forwarded?: boolean | undefined
}

/** `cluster`: stored here for another node, which took the publish and counted it under its door. */
export type PublishSourceName = 'http' | 'ndjson' | 'syslog' | 'gelf' | 'forward' | 'amqp' | 'otlp' | 'loki' | 'elasticsearch' | 'internal' | 'cluster'

export interface PublishResult {
  readonly accepted: number
  readonly duplicates: number
  readonly unroutable: number
  /** With `invalid: 'event'` only: the events not stored, by index in the request, and why. */
  readonly refused?: ReadonlyArray<{ readonly index: number; readonly error: SluiceError }>
  /** With `admit: 'partial'` only: events from index `from` on were not stored; send them again after the wait. */
  readonly deferred?: { readonly from: number; readonly retryAfterMs: number }
  /** The events that matched no binding and were dropped (the exchange's `unroutable: drop`), by index in the request. */
  readonly unroutableAt?: readonly number[]
  /** The events every target stream already held (by id), by index in the request; the whole request when its idempotency key was seen. */
  readonly duplicateAt?: readonly number[]
}

/**
 * The admission decision, taken before anything is stored. Admitted: `done` settles once the
 * events are durable (or the append failed). Refused: nothing was stored; `error` says why, and
 * its `retryable` and `details.retryAfterMs` say whether and when to try again.
 */
export type Admission =
  | {
      readonly admitted: true
      readonly done: Promise<PublishResult>
      /** With `admit: 'partial'`: events from `from` on were not taken; send them again after the wait. */
      readonly deferred?: { readonly from: number; readonly retryAfterMs: number } | undefined
    }
  | { readonly admitted: false; readonly error: SluiceError }

const refusal = (error: SluiceError): Admission => ({ admitted: false, error })

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

/** Per door and exchange: what came in and what became of it. */
export interface SourceCounters {
  readonly source: PublishSourceName
  readonly exchange: string
  events: number
  bytes: number
  accepted: number
  duplicates: number
  unroutable: number
  rejected: number
}

interface ExchangeRuntime {
  readonly config: ExchangeConfig
  readonly template: RoutingKeyTemplate | undefined
}

const runtimeOf = (config: ExchangeConfig): ExchangeRuntime => ({ config, template: config.routingKey === null ? undefined : compileTemplate(config.routingKey) })

interface StreamBatch {
  readonly records: AppendRecord[]
  /** Ids to remember, each with its record's index in `records` (its offset once appended). */
  readonly ids: Array<{ readonly id: string; readonly index: number }>
  /** The request's index of each record's event. */
  readonly events: number[]
  /** Cluster mode: the stream's home when it is another node. */
  readonly remote: RemoteStream | undefined
}

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
  readonly #limits: EventLimits
  readonly counters: PublishCounters = { requests: 0, events: 0, accepted: 0, duplicates: 0, unroutable: 0, rejected: 0 }
  readonly bySource = new Map<string, SourceCounters>()
  /**
   * Events whose key the exchange's template made with a `_` for a field the body lacked, by
   * exchange (sluice_routing_key_missing_fields_total): a template that does not fit the records.
   */
  readonly templateMisses = new Map<string, number>()
  /** Throws to refuse events bound for a stream (a group's `overflow: reject-publish`). */
  admission: ((stream: string, records: readonly AppendRecord[]) => void) | undefined
  /** Throws to refuse an outside publish: a resource alarm is up, or its body `bytes` would fill the disk. */
  gate: ((bytes: number) => void) | undefined
  /** The ingest rate limits, applied to requests that say who they are from (`from`). */
  limiter: RateLimiter | undefined
  /** Cluster mode: where streams stored on other nodes live. */
  placement: StreamPlacement | undefined
  /** Cluster mode with replicas: when a stream stored here may be confirmed. */
  replication: ReplicationGate | undefined
  /** Streams whose publishes wait for a handover to end (hold/release). */
  readonly #held = new Map<string, { readonly released: Promise<void>; readonly release: () => void }>()
  /** Per stream, local appends past the hold check whose ids are not committed yet. */
  readonly #entered = new Map<string, number>()
  readonly #drained = new Map<string, Array<() => void>>()

  constructor(config: Config, router: Router, streams: StreamRegistry, meta: MetaStore, dedup: DedupWindow, now: () => number = Date.now) {
    for (const ex of Object.values(config.exchanges)) {
      this.#exchanges.set(ex.name, runtimeOf(ex))
    }
    this.#router = router
    this.#streams = streams
    this.#meta = meta
    this.#dedup = dedup
    this.#now = now
    this.#limits = { maxEventBytes: config.server.limits.maxEventBytes, maxEventDepth: config.server.limits.maxEventDepth }
  }

  /**
   * Holds publishes to `stream` before they are stored here (a handover to or from another node),
   * and resolves once every append already past the hold is durable and its ids committed.
   */
  async hold(stream: string): Promise<void> {
    if (!this.#held.has(stream)) {
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      this.#held.set(stream, { released, release })
    }
    if ((this.#entered.get(stream) ?? 0) === 0) return
    await new Promise<void>((resolve) => this.#drained.set(stream, [...(this.#drained.get(stream) ?? []), resolve]))
  }

  /** Lets the publishes held for `stream` go on, each to wherever the stream lives now. */
  release(stream: string): void {
    const h = this.#held.get(stream)
    this.#held.delete(stream)
    h?.release()
  }

  /** Whether publishes to `stream` are held now. */
  holding(stream: string): boolean {
    return this.#held.has(stream)
  }

  /** The ids `stream` remembers, for the node it is handed to (hold it first). */
  exportIds(stream: string): Promise<ScopeIds> {
    return this.#dedup.exportScope(stream, this.#now())
  }

  /** Replaces the ids `stream` remembers with another node's export (or none), then restores its log's tail. */
  replaceIds(stream: string, from: ScopeIds): Promise<void> {
    const s = this.#streams.get(stream)
    if (s === undefined) return Promise.reject(errors.unknownStream(stream))
    const windowMs = Math.max(0, ...this.exchangeConfigs().map((e) => e.dedupWindowMs))
    return this.#dedup.replaceScope(stream, from, s.log, windowMs, this.#now())
  }

  #enter(stream: string): void {
    this.#entered.set(stream, (this.#entered.get(stream) ?? 0) + 1)
  }

  #leave(stream: string): void {
    const n = (this.#entered.get(stream) ?? 1) - 1
    if (n > 0) {
      this.#entered.set(stream, n)
      return
    }
    this.#entered.delete(stream)
    const waiting = this.#drained.get(stream)
    this.#drained.delete(stream)
    for (const w of waiting ?? []) w()
  }

  exchangeConfig(name: string): ExchangeConfig | undefined {
    return this.#exchanges.get(name)?.config
  }

  exchangeConfigs(): ExchangeConfig[] {
    return [...this.#exchanges.values()].map((e) => e.config)
  }

  /** Run-time declarations (AMQP exchange.declare) go through the catalog, which calls these. */
  addExchange(config: ExchangeConfig): void {
    this.#exchanges.set(config.name, runtimeOf(config))
  }

  removeExchange(name: string): void {
    this.#exchanges.delete(name)
  }

  /**
   * The one publish path, whatever the door: validation, admission (alarms, then rate limits,
   * then each target group's backlog), routing, one durable append per target stream, dedup ids,
   * confirm. Doors only translate its errors and result: a refusal is a SluiceError whose status
   * and `retryable` say what to do (HTTP 429/503 with Retry-After, a paused TCP socket, an AMQP
   * nack); a partial grant is `deferred`.
   */
  publish(request: PublishRequest): Promise<PublishResult> {
    const a = this.admit(request)
    return a.admitted ? a.done : Promise.reject(a.error)
  }

  /**
   * Cluster mode: records another node routed to `req.stream`, stored here through this same
   * path: dedup by id against this stream, the alarms and the stream's groups' admission, and
   * durability before the answer. Counted under the source `cluster`.
   */
  publishForwarded(req: ForwardRequest): Promise<PublishResult> {
    return this.publish({
      exchange: req.exchange,
      stream: req.stream,
      forwarded: true,
      internal: req.internal,
      source: 'cluster',
      events: req.records.map(eventOfRecord),
    })
  }

  /**
   * The same path, with its admission decision known at once, before anything is stored. A door
   * that pipelines (AMQP) waits on a refusal here, holding its socket, and goes on reading the
   * next publishes while an admitted one waits for durability in `done`.
   */
  admit(request: PublishRequest): Admission {
    const ex = this.#exchanges.get(request.exchange) ?? (request.stream !== undefined ? runtimeOf(defaultExchangeConfig(request.exchange, 'direct', null)) : undefined)
    if (ex === undefined) return refusal(errors.routerUnknownExchange(request.exchange))
    if (request.internal === true) return { admitted: true, done: this.#publish(request, ex, undefined) }
    let req = request
    // Indexes into `request.events` of what is left after validation, in order.
    let kept: number[] | undefined
    let refused: Array<{ index: number; error: SluiceError }> | undefined
    for (let i = 0; i < req.events.length; i++) {
      const error = invalidEvent(req.events[i]!, i + 1, this.#limits)
      if (error === undefined) continue
      if (req.invalid !== 'event') {
        this.counters.rejected += req.events.length
        return refusal(error)
      }
      ;(refused ??= []).push({ index: i, error })
    }
    if (refused !== undefined) {
      const bad = new Set(refused.map((r) => r.index))
      kept = []
      for (let i = 0; i < request.events.length; i++) if (!bad.has(i)) kept.push(i)
      req = { ...req, events: req.events.filter((_, i) => !bad.has(i)) }
      this.counters.rejected += refused.length
      if (req.events.length === 0) return { admitted: true, done: Promise.resolve({ accepted: 0, duplicates: 0, unroutable: 0, refused }) }
    }

    let bytes = 0
    for (const e of req.events) bytes += e.body.length
    try {
      // Alarms first: a publish refused for a full disk must not also spend rate-limit tokens.
      this.gate?.(bytes)
    } catch (err) {
      this.counters.rejected += req.events.length
      if (err instanceof SluiceError) return refusal(err)
      throw err
    }
    let deferred: PublishResult['deferred']
    if (this.limiter?.active === true && req.from !== undefined) {
      const from = { ...req.from, exchange: req.exchange }
      if (req.admit === 'partial') {
        const g = this.limiter.grant(from, req.events.length, bytes, this.#now())
        if (g.granted < req.events.length) {
          // What the buckets hold goes now; the tail waits. Refusals past the cut are not
          // reported: the tail comes back and is validated again.
          const cut = kept === undefined ? g.granted : kept[g.granted]!
          deferred = { from: cut, retryAfterMs: g.retryAfterMs }
          if (refused !== undefined) refused = refused.filter((r) => r.index < cut)
          if (g.granted === 0) return { admitted: true, deferred, done: Promise.resolve({ accepted: 0, duplicates: 0, unroutable: 0, deferred, ...(refused !== undefined && refused.length > 0 ? { refused } : {}) }) }
          req = { ...req, events: req.events.slice(0, g.granted) }
          if (kept !== undefined) kept = kept.slice(0, g.granted)
        }
      } else {
        const d = this.limiter.check(from, req.events.length, bytes, this.#now())
        if (d.retryAfterMs > 0) {
          this.counters.rejected += req.events.length
          return refusal(errors.rateLimited(d.rule!, d.retryAfterMs))
        }
      }
    }
    const extra = { ...(refused !== undefined && refused.length > 0 ? { refused } : {}), ...(deferred !== undefined ? { deferred } : {}) }
    const done = this.#publish(req, ex, kept).then((result) => {
      // Unroutable events refused by the exchange's policy are named with the invalid ones.
      const all = result.refused === undefined ? refused : [...(refused ?? []), ...result.refused].sort((a, b) => a.index - b.index)
      return { ...result, ...extra, ...(all !== undefined && all.length > 0 ? { refused: all } : {}) }
    })
    return { admitted: true, done, deferred }
  }

  /** `kept`: the index in the original request of each of `req.events`, when some were left out. */
  async #publish(req: PublishRequest, ex: ExchangeRuntime, kept: readonly number[] | undefined): Promise<PublishResult> {
    const source: PublishSourceName = req.internal === true ? 'internal' : (req.source ?? 'http')
    const sourceKey = `${source}\0${req.exchange}`
    let sc = this.bySource.get(sourceKey)
    if (sc === undefined) this.bySource.set(sourceKey, (sc = { source, exchange: req.exchange, events: 0, bytes: 0, accepted: 0, duplicates: 0, unroutable: 0, rejected: 0 }))
    sc.events += req.events.length
    for (const e of req.events) sc.bytes += e.body.length
    this.counters.requests++
    this.counters.events += req.events.length
    const now = this.#now()

    // A retried request is confirmed again and stores nothing; a concurrent twin waits for the first.
    let requestKey: string | undefined
    let fingerprint: string | undefined
    let settleRequest: ((stored: boolean) => void) | undefined
    if (req.idempotencyKey !== undefined) {
      requestKey = requestKeyPrefix + req.idempotencyKey
      for (let seen = this.#dedup.check(req.exchange, requestKey, now); seen !== 'new'; seen = this.#dedup.check(req.exchange, requestKey, this.#now())) {
        if (seen === 'duplicate') {
          const stored = this.#dedup.fingerprint(req.exchange, requestKey)
          // A key reused for another request is a client bug: confirming it would lose the
          // second request without a word (Stripe answers the same way).
          if (stored !== undefined && stored !== (fingerprint ??= requestFingerprint(req))) throw errors.idempotencyKeyReused(req.idempotencyKey)
          this.counters.duplicates += req.events.length
          sc.duplicates += req.events.length
          return { accepted: 0, duplicates: req.events.length, unroutable: 0, duplicateAt: req.events.map((_, i) => (kept === undefined ? i : kept[i]!)) }
        }
        await seen
      }
      this.#dedup.reserve(req.exchange, requestKey, new Promise<boolean>((resolve) => (settleRequest = resolve)))
    }

    // Streams whose local append this request took part in, left once its ids are committed.
    const entered: string[] = []
    try {
      return await this.#store(req, ex, kept, source, sc, now, requestKey, settleRequest, fingerprint, entered)
    } finally {
      for (const name of entered) this.#leave(name)
    }
  }

  async #store(
    req: PublishRequest,
    ex: ExchangeRuntime,
    kept: readonly number[] | undefined,
    source: PublishSourceName,
    sc: SourceCounters,
    now: number,
    requestKey: string | undefined,
    settleRequest: ((stored: boolean) => void) | undefined,
    fingerprint: string | undefined,
    entered: string[],
  ): Promise<PublishResult> {
    let settleIds: ((stored: boolean) => void) | undefined
    const idsOutcome = new Promise<boolean>((resolve) => (settleIds = resolve))
    const reserved: Array<[stream: string, id: string]> = []
    const appended: Array<{ stream: string; ids: StreamBatch['ids']; result: AppendResult }> = []
    /** Stored here but not confirmed by enough replicas in time: their ids are remembered all the same. */
    const appendedUnconfirmed: typeof appended = []
    let failure: unknown
    let result: PublishResult | undefined
    try {
      const plan = await this.#plan(req, ex, now, idsOutcome, reserved)
      const { batches, unroutableAt, refusedAt } = plan
      const unroutable = unroutableAt.length
      const names = [...batches.keys()]
      // A stream stored on another node is admitted there, by its own groups.
      if (this.admission !== undefined && req.internal !== true) for (const [name, b] of batches) if (b.remote === undefined) this.admission(name, b.records)
      const settled = await Promise.allSettled(
        names.map(async (name): Promise<{ local: AppendResult } | { remote: PublishResult }> => {
          const batch = batches.get(name)!
          const forward = (to: RemoteStream): Promise<{ remote: PublishResult }> =>
            to.forward({ stream: name, exchange: req.exchange, records: batch.records, internal: req.internal === true, source }).then((remote) => ({ remote }))
          if (batch.remote !== undefined) return forward(batch.remote)
          // A stream being handed to another node takes no append until the handover ends; then
          // the records go wherever it lives (its new home checks their ids again).
          for (let h = this.#held.get(name); h !== undefined; h = this.#held.get(name)) await h.released
          // Asked again right before the append, with no wait in between: the plan's answer is as
          // old as the waits on other requests' ids, and the stream may have moved since.
          if (this.placement !== undefined) {
            const moved = this.placement.remote(name)
            if (moved !== undefined) return forward(moved)
            if (req.forwarded === true) this.placement.assertHome(name)
          }
          const stream = this.#streams.get(name)
          if (stream === undefined) throw errors.unknownStream(name)
          const ticket = this.replication?.admit(name)
          this.#enter(name)
          entered.push(name)
          const base = stream.log.nextOffset
          if (batch.ids.length > 0) this.#dedup.appending(name, base)
          const local = await stream.append(batch.records).catch((err: unknown) => {
            if (batch.ids.length > 0) this.#dedup.abandon(name, base)
            throw err
          })
          // Stored here; confirmed once enough replicas hold it. Should they not in time, the ids
          // are still remembered below (the events are stored): a retry is a duplicate, answered
          // once the replicas hold them (heldAlready).
          if (this.replication !== undefined && ticket !== undefined) await this.replication.committed(name, local.lastOffset + 1, ticket).catch((err: unknown) => {
            appendedUnconfirmed.push({ stream: name, ids: batch.ids, result: local })
            throw err
          })
          return { local }
        }),
      )
      // An event stored by no target is a duplicate: every stream it routes to already held its id.
      const stored = new Set<number>()
      settled.forEach((s, k) => {
        const name = names[k]!
        const batch = batches.get(name)!
        if (s.status === 'rejected') {
          failure ??= s.reason
          return
        }
        if ('local' in s.value) {
          appended.push({ stream: name, ids: batch.ids, result: s.value.local })
          for (const i of batch.events) stored.add(i)
          return
        }
        const dup = new Set(s.value.remote.duplicateAt)
        batch.events.forEach((i, r) => {
          if (!dup.has(r)) stored.add(i)
        })
      })
      appended.push(...appendedUnconfirmed)
      // A duplicate's answer confirms it as surely as a store's: where the stream has replicas,
      // only once they hold all it stored so far (the event may be one whose first publish was
      // stored here and then timed out waiting for them). After `appended` is whole, so that a
      // refusal here still remembers the ids this request stored.
      const replication = this.replication
      if (replication !== undefined && plan.heldAlready.size > 0) {
        await Promise.all(
          [...plan.heldAlready].map(async (name) => {
            const log = this.#streams.get(name)?.log
            if (log !== undefined) await replication.committed(name, log.endOffset, replication.admit(name))
          }),
        )
      }
      const duplicateAt = plan.duplicateAt
      if (this.placement !== undefined && batches.size > 0) {
        const targeted = new Set<number>()
        for (const b of batches.values()) for (const i of b.events) targeted.add(i)
        for (const i of targeted) if (!stored.has(i)) duplicateAt.push(i)
        duplicateAt.sort((a, b) => a - b)
      }
      const duplicates = duplicateAt.length
      const original = (i: number): number => (kept === undefined ? i : kept[i]!)
      result = {
        accepted: req.events.length - duplicates - unroutable - refusedAt.length,
        duplicates,
        unroutable,
        ...(unroutable > 0 ? { unroutableAt: unroutableAt.map(original) } : {}),
        ...(duplicates > 0 ? { duplicateAt: duplicateAt.map(original) } : {}),
        ...(refusedAt.length > 0 ? { refused: refusedAt.map((r) => ({ index: original(r.index), error: r.error })) } : {}),
      }
    } catch (err) {
      failure = err
    }

    // Ids of every append that is durable are remembered, even when another target failed: the
    // client retries, and those streams must not store the events twice. They reach the metadata
    // store only after the log's fsync: a crash in between forgets nothing, because the stream's
    // checkpoint makes the next start read those records back.
    const ops: MetaOp[] = []
    const stamp = this.#now()
    const windowMs = ex.config.dedupWindowMs
    for (const a of appended) {
      if (a.ids.length === 0) continue
      const base = a.result.baseOffset
      const ids = a.ids.map(({ id, index }) => ({ id, offset: base + index }))
      this.#dedup.commit(a.stream, ids, stamp, windowMs, ops, { baseOffset: base, endOffset: a.result.lastOffset + 1 })
    }
    for (const [stream, id] of reserved) this.#dedup.release(stream, [id])
    if (failure === undefined && requestKey !== undefined) {
      const target = Object.fromEntries(appended.map((a) => [a.stream, a.result.lastOffset]))
      this.#dedup.commit(req.exchange, [{ id: requestKey }], stamp, windowMs, ops, undefined, target, (fingerprint ??= requestFingerprint(req)))
    }
    try {
      if (ops.length > 0) await this.#meta.write(ops, { sync: appended.some((a) => this.#streams.get(a.stream)?.config.fsync !== 'never') })
    } catch (err) {
      // The events are durable all the same: refusing now would make the client retry what is
      // stored (and an answer of 503 must mean nothing was kept). The ids stay known in memory,
      // and each stream's checkpoint stays below these appends, so the next start reads their
      // ids back from the log; only an idempotency key is not kept across a restart.
      for (const a of appended) if (a.ids.length > 0) this.#dedup.notPersisted(a.stream, a.result.baseOffset)
      // Counted in sluice_background_errors_total{task="publish.dedupPersist"}.
      noteBackgroundError('publish.dedupPersist', err)
    }
    settleIds!(failure === undefined)
    settleRequest?.(failure === undefined)
    if (requestKey !== undefined && failure !== undefined) this.#dedup.release(req.exchange, [requestKey])
    if (failure !== undefined || result === undefined) {
      this.counters.rejected += req.events.length
      sc.rejected += req.events.length
      throw failure
    }
    this.counters.accepted += result.accepted
    this.counters.duplicates += result.duplicates
    this.counters.unroutable += result.unroutable
    sc.accepted += result.accepted
    sc.duplicates += result.duplicates
    sc.unroutable += result.unroutable
    const refusedHere = result.refused?.length ?? 0
    this.counters.rejected += refusedHere
    sc.rejected += refusedHere
    return result
  }

  /**
   * Routes every event and drops, per target stream, the ones whose id that stream already holds.
   * An event counts as a duplicate when every stream it routes to already had it.
   */
  async #plan(
    req: PublishRequest,
    ex: ExchangeRuntime,
    now: number,
    outcome: Promise<boolean>,
    reserved: Array<[string, string]>,
  ): Promise<{ batches: Map<string, StreamBatch>; duplicateAt: number[]; unroutableAt: number[]; refusedAt: Array<{ index: number; error: SluiceError }>; heldAlready: Set<string> }> {
    const n = req.events.length
    /** Local streams that already held one of the ids: the answer confirms those events too. */
    const heldAlready = new Set<string>()
    /**
     * Another request is storing this id in this stream now. If it succeeded, the id is held (here,
     * or at the home it was forwarded to). If it failed, the window is asked again rather than
     * taking that for "not stored": the outcome is one answer for all its streams, and this one
     * may have stored the id while another failed the request.
     */
    const after = async (stream: string, id: string, mine: string[], seen: Promise<boolean>): Promise<void> => {
      for (;;) {
        if (await seen) {
          heldAlready.add(stream)
          return
        }
        const again = this.#dedup.check(stream, id, this.#now())
        if (again === 'duplicate') {
          heldAlready.add(stream)
          return
        }
        if (again === 'new') {
          this.#dedup.reserve(stream, id, outcome)
          reserved.push([stream, id])
          mine.push(stream)
          return
        }
        seen = again
      }
    }
    // A request for one stream skips the router; one forwarded by another node must find its
    // stream stored here.
    let direct: RouteResult | undefined
    if (req.stream !== undefined) {
      // A stream held for a handover answers once it ends (see #store).
      if (req.forwarded === true && !this.#held.has(req.stream)) this.placement?.assertHome(req.stream)
      direct = { streams: [req.stream], unroutable: false }
    }
    // Cluster mode: each target stream's home, asked once per request; a stream without a
    // reachable home fails the request here, before anything is stored.
    const homes = new Map<string, RemoteStream | undefined>()
    const remoteOf = (stream: string): RemoteStream | undefined => {
      if (this.placement === undefined || req.forwarded === true) return undefined
      if (!homes.has(stream)) homes.set(stream, this.placement.remote(stream))
      return homes.get(stream)
    }
    const records = new Array<AppendRecord | undefined>(n)
    const targets = new Array<string[]>(n)
    const waits: Promise<void>[] = []
    const inRequest = new Set<string>()
    const unroutableAt: number[] = []
    const refusedAt: Array<{ index: number; error: SluiceError }> = []
    for (let i = 0; i < n; i++) {
      const ev = req.events[i]!
      const id = ev.id ?? (ex.config.dedup === null ? undefined : idFromBody(ev.value, ex.config.dedup, i + 1))
      const dedup = id !== undefined && req.internal !== true
      let routingKey = ev.routingKey
      if (routingKey === undefined) {
        routingKey = ex.template === undefined ? '' : ex.template(ev.value)
        if (ex.template !== undefined && mayMiss(routingKey) && ex.template.misses(ev.value)) this.templateMisses.set(req.exchange, (this.templateMisses.get(req.exchange) ?? 0) + 1)
      }
      const route = direct ?? this.#router.route(req.exchange, routingKey, ev.headers, ev.value)
      if (route.unroutable) {
        if (route.policy === 'reject') {
          const error = errors.unroutable(i + 1, req.exchange, routingKey)
          if (req.invalid !== 'event') throw error
          refusedAt.push({ index: i, error })
        } else unroutableAt.push(i)
        targets[i] = []
        continue
      }
      records[i] = {
        timestamp: ev.timestamp ?? now,
        key: routingKey,
        body: ev.body,
        json: ev.json,
        id,
        exchange: req.exchange,
        headers: ev.encodedHeaders ?? encodeHeaders(ev, now),
      }
      if (!dedup) {
        // The router's own (frozen, shared by every event with this key): read only from here on.
        targets[i] = route.streams as string[]
        continue
      }
      const mine: string[] = []
      targets[i] = mine
      for (const stream of route.streams) {
        // Its home node keeps the stream's ids, and checks them there.
        if (remoteOf(stream) !== undefined) {
          mine.push(stream)
          continue
        }
        const k = `${stream}\0${id}`
        if (inRequest.has(k)) continue
        inRequest.add(k)
        const seen = this.#dedup.check(stream, id, now)
        if (seen === 'new') {
          this.#dedup.reserve(stream, id, outcome)
          reserved.push([stream, id])
          mine.push(stream)
        } else if (seen === 'duplicate') {
          heldAlready.add(stream)
        } else {
          waits.push(after(stream, id, mine, seen))
        }
      }
    }
    if (waits.length > 0) await Promise.all(waits)
    const batches = new Map<string, StreamBatch>()
    const duplicateAt: number[] = []
    for (let i = 0; i < n; i++) {
      const record = records[i]
      if (record === undefined) continue
      const streams = targets[i]!
      if (streams.length === 0) {
        duplicateAt.push(i)
        continue
      }
      for (const name of streams) {
        let b = batches.get(name)
        if (b === undefined) batches.set(name, (b = { records: [], ids: [], events: [], remote: remoteOf(name) }))
        if (record.id !== undefined && req.internal !== true && b.remote === undefined) b.ids.push({ id: record.id, index: b.records.length })
        b.events.push(i)
        b.records.push(record)
      }
    }
    return { batches, duplicateAt, unroutableAt, refusedAt, heldAlready }
  }
}

/** A digest of what a request stores: each event's routing key, id, headers and body. */
function requestFingerprint(req: PublishRequest): string {
  const h = createHash('sha256')
  const len = Buffer.alloc(4)
  const part = (b: Buffer | string | undefined): void => {
    const buf = b === undefined ? Buffer.alloc(0) : Buffer.isBuffer(b) ? b : Buffer.from(b)
    len.writeUInt32BE(b === undefined ? 0xffffffff : buf.length)
    h.update(len)
    h.update(buf)
  }
  for (const e of req.events) {
    part(e.routingKey)
    part(e.id)
    part(e.headers === undefined ? undefined : JSON.stringify(e.headers))
    part(e.body)
  }
  return h.digest('base64url')
}

/**
 * A record as it is stored, as an event to store again unchanged (its key, id, time and encoded
 * headers): a forwarded append, or a dead-lettered event. Routing by value is not possible.
 */
export function eventOfRecord(r: AppendRecord): PublishEvent {
  return { body: Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body), value: undefined, json: r.json === true, routingKey: r.key, id: r.id, timestamp: r.timestamp, encodedHeaders: r.headers }
}

function encodeHeaders(ev: PublishEvent, now: number): Buffer | undefined {
  if (ev.ttlMs === undefined) return ev.headers === undefined ? undefined : Buffer.from(JSON.stringify(ev.headers))
  return Buffer.from(JSON.stringify({ ...ev.headers, [expiresAtHeader]: now + ev.ttlMs }))
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
