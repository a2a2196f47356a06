import { isUtf8 } from 'node:buffer'
import { statfs } from 'node:fs/promises'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config/index.js'
import type { GroupRegistry, Redriver } from '../../consumers/index.js'
import { errors } from '../../errors.js'
import type { StoredRecord } from '../../log/index.js'
import type { Router } from '../../router/index.js'
import type { BrokerPublisher, PublishRequest } from '../../streams/publisher.js'
import type { StreamRates } from '../../streams/rates.js'
import type { StreamRegistry } from '../../streams/registry.js'
import { eventTtlMsMax, parseTtl } from '../../streams/ttl.js'
import type { Cluster } from '../../cluster/index.js'
import type { Alarms } from '../../flow/alarms.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import type { IngestErrors } from '../ingest-errors.js'
import type { IngestListener } from '../tcp/server.js'
import { requestIdentity } from './access.js'
import { readBody, type BodyLimits } from './body.js'
import { decodeJson, decodeNdjson, type DecodeOptions } from './decode.js'
import { registerDoors } from './doors.js'
import { localCopy } from './cluster-forward.js'
import { jsonBody, registerGroupRoutes, type RequestBound } from './groups.js'
import { registerDefinitionRoutes, registerDefinitionsIo, type QueueAdmin } from './definitions.js'
import { startOffset } from './stream-position.js'
import { serverVersion } from './ui.js'
import { httpListenerView } from './app.js'
import type { Catalog } from '../../streams/catalog.js'
import { openApiDocument } from './openapi.js'
import { sluiceVersion } from '../../version.js'

/** What the HTTP door may use of the broker; undefined until recovery has finished. */
export interface BrokerView {
  readonly config: Config
  readonly publisher: BrokerPublisher
  readonly streams: StreamRegistry
  readonly router: Router
  readonly rates: StreamRates
  readonly groups: GroupRegistry
  readonly redriver: Redriver
  /** Run-time definitions, for the DELETE routes (definitions.ts). */
  readonly catalog: Catalog
  /** The AMQP door's queues when it runs (see definitions.ts). */
  readonly queues?: QueueAdmin | undefined
  readonly listeners: readonly IngestListener[]
  readonly ingestErrors: IngestErrors
  readonly limiter: RateLimiter
  readonly alarms: Alarms
  /** Cluster mode only. */
  readonly cluster?: Cluster | undefined
  readonly startedAt: number
}

const eventHeaderPrefix = 'x-event-'

export function brokerOr503(get: () => BrokerView | undefined, reply: FastifyReply): BrokerView {
  const b = get()
  if (b === undefined) {
    void reply.header('retry-after', '1')
    throw errors.notReady()
  }
  return b
}

export interface RouteLimits extends BodyLimits {
  readonly maxEventBytes: number
  readonly maxEventsPerRequest: number
  readonly maxEventDepth: number
}

const eventTypes = ['application/json', 'application/x-ndjson', 'application/jsonl', 'application/ndjson']

/** Who publishes, for the rate limits: the address, and the user and API key the request logged in as. */
function publisherOf(req: FastifyRequest): PublishRequest['from'] {
  const who = requestIdentity(req)
  return { listener: 'http', remote: req.ip, apiKey: who?.apiKey, user: who?.username }
}

/** `closing` aborts when the server stops: long polls then answer with what they have. */
export function registerRoutes(app: FastifyInstance, getBroker: () => BrokerView | undefined, limits: RouteLimits, closing: AbortSignal): void {
  // Bodies stay raw buffers: NDJSON lines are stored as they came, without a parse/stringify trip.
  // The door reads them itself (readBody) for its limits: decoded size, gzip, the body deadline.
  // Fastify runs the content-type parsers before its not-found handler too: a path with no route
  // answers 404 whatever its content type, and its body is drained (body.ts), never read.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(eventTypes, async (req: FastifyRequest) => (req.is404 ? undefined : readBody(req.raw, limits)))
  // No content type at all is taken as NDJSON (pino-http-send and similar pipe tools send none);
  // any other type is refused by name.
  app.addContentTypeParser('*', async (req: FastifyRequest) => {
    if (req.is404) return undefined
    const type = String(req.headers['content-type'] ?? '').trim()
    if (type !== '') throw errors.unsupportedMediaType(type)
    return readBody(req.raw, limits)
  })

  registerGroupRoutes(app, (reply) => brokerOr503(getBroker, reply), closing)
  registerDefinitionRoutes(app, (reply) => brokerOr503(getBroker, reply))
  registerDefinitionsIo(app, (reply) => brokerOr503(getBroker, reply), limits)
  // OTLP, Loki and Elasticsearch bulk, each in a scope of its own (they read their own content types).
  registerDoors(app, getBroker, limits)

  app.post<{ Params: { exchange: string }; Querystring: { routingKey?: string; envelope?: string } }>('/v1/exchanges/:exchange/publish', async (req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    const exchange = req.params.exchange
    if (broker.publisher.exchangeConfig(exchange) === undefined) throw errors.routerUnknownExchange(exchange)
    const body = req.body
    if (!Buffer.isBuffer(body) || body.length === 0) throw errors.badRequest('the body is empty; send events as application/json or application/x-ndjson')
    const opts = decodeOptions(req, limits)
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    const events = type === 'application/json' ? await decodeJson(body, opts) : await decodeNdjson(body, opts)
    const idem = req.headers['idempotency-key']
    const idempotencyKey = typeof idem === 'string' && idem.length > 0 ? idem : undefined
    if (idempotencyKey !== undefined && !idempotencyKey.isWellFormed()) throw errors.badRequest('idempotency-key holds invalid Unicode')
    const { accepted, duplicates, unroutable } = await broker.publisher.publish({ exchange, events, idempotencyKey, source: 'http', from: publisherOf(req) })
    // The contract's answer: counts only (an HTTP request is all or nothing, so nothing is refused one by one).
    return { accepted, duplicates, unroutable }
  })

  app.get<{ Params: { stream: string }; Querystring: { from?: string; limit?: string; waitMs?: string; copy?: string } }>('/v1/streams/:stream/events', async (req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    const stream = broker.streams.get(req.params.stream)
    if (stream === undefined) throw errors.unknownStream(req.params.stream)
    const log = stream.log
    const http = broker.config.server.http
    const limit = intParam(req.query.limit, 'limit', Math.min(100, http.maxReadEvents), 1, { key: 'maxReadEvents', max: http.maxReadEvents })
    const waitMs = intParam(req.query.waitMs, 'waitMs', 0, 0, { key: 'maxReadWait', max: http.maxReadWaitMs })
    // Cluster mode with replicas: only what the in-sync copies hold (below the high watermark) is
    // read, so no reader sees an event a failover could take back; `copy=local` reads it all.
    const local = localCopy(req.query)
    const readEnd = (): number => (local ? log.endOffset : broker.streams.readEnd(stream))
    const from = await startOffset(log, req.query.from, readEnd())
    if (from >= readEnd() && waitMs > 0) await (local ? log.waitFor(from, waitMs, closing) : broker.streams.waitReadable(stream, from, waitMs, closing))
    const end = readEnd()
    const { records, nextOffset } = await log.read(from, { maxRecords: limit, end })
    const events = records.map(wireEventJson).join(',')
    return reply
      .type('application/json; charset=utf-8')
      .send(`{"stream":${JSON.stringify(stream.name)},"events":[${events}],"nextOffset":${nextOffset},"startOffset":${log.startOffset},"endOffset":${end}}`)
  })

  // The same document for every request: built once, at the first.
  let apiDocument: string | undefined
  app.get('/v1/openapi.json', async (_req, reply) => {
    apiDocument ??= JSON.stringify(openApiDocument(sluiceVersion()))
    return reply.header('content-type', 'application/json; charset=utf-8').send(apiDocument)
  })

  app.get('/v1/streams', async (_req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    return { streams: broker.streams.all().map((s) => streamView(broker, s.name)) }
  })

  app.get<{ Params: { stream: string }; Querystring: { copy?: string } }>('/v1/streams/:stream', async (req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    if (broker.streams.get(req.params.stream) === undefined) throw errors.unknownStream(req.params.stream)
    localCopy(req.query) // the view is of this node's copy either way; only a bad value is refused
    return streamView(broker, req.params.stream)
  })

  app.get('/v1/exchanges', async (_req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    const bindings = broker.router.bindings()
    return {
      // The YAML's exchanges and those declared at run time (AMQP), with every binding.
      exchanges: broker.publisher.exchangeConfigs().map((ex) => ({
        name: ex.name,
        type: ex.type,
        routingKey: ex.routingKey,
        alternate: ex.alternate,
        unroutable: ex.unroutable,
        dedup: ex.dedup,
        dedupWindowMs: ex.dedupWindowMs,
        bindings: bindings
          .filter((b) => b.exchange === ex.name)
          .map((b) => ({ ...(b.stream !== undefined ? { stream: b.stream } : { toExchange: b.toExchange }), key: b.key ?? '', ...(b.headers !== undefined ? { match: b.match ?? 'all', headers: b.headers } : {}) })),
      })),
    }
  })

  // Any node answers with its own view of the cluster: what etcd last told it. A single node says
  // so rather than 404, so a dashboard can ask every server the same question.
  app.get('/v1/cluster', async (_req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    return broker.cluster?.status() ?? { enabled: false }
  })

  // Any node takes a move; the controller runs it. The answer comes once the stream lives on its
  // new node (or the move was called off, with nothing changed).
  app.post<{ Params: { stream: string }; Body: unknown }>('/v1/cluster/streams/:stream/move', async (req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    const node = jsonBody(req).node
    if (typeof node !== 'string' || node === '') throw errors.badRequest('the body names the node to move the stream to: {"node": "<nodeId>"}')
    if (broker.cluster === undefined) throw errors.moveRefused(req.params.stream, 'this server is a single node (no cluster section)')
    return broker.cluster.move(req.params.stream, node)
  })

  app.get('/v1/overview', async (_req, reply) => {
    const broker = brokerOr503(getBroker, reply)
    const streams = broker.streams.all()
    let events = 0
    let bytes = 0
    for (const s of streams) {
      const st = s.log.stats()
      events += st.endOffset - st.startOffset
      bytes += st.bytes
    }
    return {
      ready: true,
      version: serverVersion,
      dataDir: broker.config.server.dataDir,
      uptimeSeconds: Math.round((Date.now() - broker.startedAt) / 1000),
      exchanges: broker.publisher.exchangeConfigs().length,
      streams: streams.length,
      events,
      bytes,
      publish: broker.publisher.counters,
      groups: broker.groups.all().length,
      // The HTTP listener's own connections first (the management UI shows them beside the doors').
      listeners: Object.fromEntries([['http', httpListenerView(app).counters], ...broker.listeners.map((l) => [l.options.name, l.counters])]),
      ingestErrors: { recorded: broker.ingestErrors.recorded, dropped: broker.ingestErrors.dropped },
      alarms: broker.alarms.active(),
      rateLimited: Object.fromEntries(broker.limiter.refusedByRule),
      disk: await diskOf(broker.config),
    }
  })
}

/** The data dir's file system, read now; null when it cannot be read (the overview still answers). */
async function diskOf(config: Config): Promise<{ freeBytes: number; totalBytes: number; limitBytes: number } | null> {
  try {
    const s = await statfs(config.server.dataDir)
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize, limitBytes: config.server.alarms.diskFreeLimitBytes }
  } catch {
    return null
  }
}

function streamView(broker: BrokerView, name: string): Record<string, unknown> {
  const s = broker.streams.get(name)!
  const st = s.log.stats()
  return {
    name,
    events: st.endOffset - st.startOffset,
    bytes: st.bytes,
    segments: st.segments,
    firstOffset: st.startOffset,
    lastOffset: st.endOffset - 1,
    nextOffset: st.endOffset,
    oldestTimestamp: st.oldestTimestamp < 0 ? null : new Date(st.oldestTimestamp).toISOString(),
    newestTimestamp: st.newestTimestamp < 0 ? null : new Date(st.newestTimestamp).toISOString(),
    appendRatePerSec: Math.round(broker.rates.rate(name) * 10) / 10,
    fsync: s.config.fsync,
    retention: s.config.retention,
  }
}

/**
 * The JSON text of a body or headers as stored: JSON bodies were validated when published, so
 * their bytes go out as they are, without a parse and a re-serialisation per event (on the
 * consume path that pair was a large share of the CPU in a profile). Other bodies (an AMQP
 * message's text or bytes) go as a string with `bodyEncoding`: `text` when they are valid UTF-8,
 * so a person reads them as sent, else `base64`.
 */
export function bodyJson(r: StoredRecord): string {
  if (r.json) return r.body.toString('utf8')
  return isUtf8(r.body) ? `${JSON.stringify(r.body.toString('utf8'))},"bodyEncoding":"text"` : `"${r.body.toString('base64')}","bodyEncoding":"base64"`
}

export function headersJson(r: StoredRecord): string {
  return r.headers === undefined ? '{}' : r.headers.toString('utf8')
}

const nullable = (v: string | undefined): string => (v === undefined ? 'null' : JSON.stringify(v))

/** One event as GET /v1/streams/{stream}/events returns it, as JSON text. */
export function wireEventJson(r: StoredRecord): string {
  return `{"offset":${r.offset},"timestamp":"${new Date(r.timestamp).toISOString()}","routingKey":${JSON.stringify(r.key)},"exchange":${nullable(r.exchange)},"id":${nullable(r.id)},"headers":${headersJson(r)},"body":${bodyJson(r)}}`
}

export function toWireEvent(r: StoredRecord): Record<string, unknown> {
  let body: unknown
  let bodyEncoding: 'text' | 'base64' | undefined
  if (r.json) body = JSON.parse(r.body.toString('utf8'))
  else if (isUtf8(r.body)) {
    body = r.body.toString('utf8')
    bodyEncoding = 'text'
  } else {
    body = r.body.toString('base64')
    bodyEncoding = 'base64'
  }
  return {
    offset: r.offset,
    timestamp: new Date(r.timestamp).toISOString(),
    routingKey: r.key,
    exchange: r.exchange ?? null,
    id: r.id ?? null,
    headers: r.headers === undefined ? {} : (JSON.parse(r.headers.toString('utf8')) as unknown),
    body,
    ...(bodyEncoding !== undefined ? { bodyEncoding } : {}),
  }
}

function decodeOptions(req: FastifyRequest<{ Querystring: { routingKey?: string; envelope?: string } }>, limits: RouteLimits): DecodeOptions {
  const headerKey = req.headers['x-routing-key']
  const routingKey = req.query.routingKey ?? (typeof headerKey === 'string' ? headerKey : undefined)
  let headers: Record<string, string> | undefined
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(eventHeaderPrefix) || typeof value !== 'string') continue
    headers ??= {}
    headers[name.slice(eventHeaderPrefix.length)] = value
  }
  // The TTL is the event's, as AMQP's `expiration` property: it is not stored as a header "ttl".
  let ttlMs: number | undefined
  if (headers !== undefined && Object.hasOwn(headers, 'ttl')) {
    ttlMs = parseTtl(headers.ttl)
    if (ttlMs === undefined) throw errors.badRequest(`x-event-ttl must be whole milliseconds from 0 to ${eventTtlMsMax}, not "${headers.ttl}"`)
    delete headers.ttl
    if (Object.keys(headers).length === 0) headers = undefined
  }
  const env = req.query.envelope
  if (env !== undefined && env !== 'true' && env !== 'false') throw errors.badRequest(`envelope must be true or false, not "${env}"`)
  return { envelope: env === 'true', maxEventBytes: limits.maxEventBytes, maxEvents: limits.maxEventsPerRequest, maxDepth: limits.maxEventDepth, routingKey, headers, ttlMs }
}

function intParam(raw: string | undefined, name: string, dflt: number, min: number, bound: RequestBound): number {
  if (raw === undefined || raw === '') return dflt
  if (!/^\d+$/.test(raw)) throw errors.badRequest(`${name} must be a whole number, not "${raw}"`, { [name]: raw })
  const n = Number(raw)
  if (n > bound.max) throw errors.overRequestLimit(name, n, bound.key, bound.max)
  if (n < min) throw errors.badRequest(`${name} must be between ${min} and ${bound.max}`, { [name]: n })
  return n
}
