// The doors on the HTTP listener for other ecosystems' agents: OpenTelemetry's OTLP/HTTP logs,
// Grafana Loki's push, Elasticsearch's bulk. Each maps its protocol's records to events (src/ingest/
// otlp, loki, elasticsearch), publishes them through the one publish path, and answers the way its
// clients expect, errors included: an onSend hook per door rewrites the one error shape into the
// protocol's own (a google.rpc.Status for OTLP, Elasticsearch's error object), so a refusal from
// anywhere (login, body limits, admission) reads right to the client.
//
// Each door is in its own fastify scope: its bodies are read raw whatever their content type, and
// the route checks the type itself, in the protocol's terms.

import { hostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config/index.js'
import { errors, SluiceError } from '../../errors.js'
import { compileTemplate, type RoutingKeyTemplate } from '../../router/index.js'
import type { PublishEvent, PublishRequest, PublishResult, PublishSourceName } from '../../streams/publisher.js'
import { bulkAnswer, parseBulk, type Outcome } from '../elasticsearch/bulk.js'
import { clusterHealth, esError, handshake, license, productHeader, templateMissing, xpack } from '../elasticsearch/probes.js'
import { decodeLokiPush, lokiEvents, type LokiEncoding } from '../loki/push.js'
import { publishOtlp } from '../otlp/export.js'
import { decodeOtlpLogs, encodeOtlpResponse, encodeOtlpStatus, otlpEvents, type OtlpEncoding } from '../otlp/logs.js'
import { requestIdentity } from './access.js'
import { httpListenerView, type HttpListenerName } from './app.js'
import { readBody } from './body.js'
import type { BrokerView, RouteLimits } from './routes.js'
import type { ListenerCounters } from '../tcp/server.js'

export type DoorName = 'otlp' | 'loki' | 'elasticsearch'

/** The routes each door registers, as access.ts's table names them (method and fastify pattern). */
export const doorRoutes: Readonly<Record<DoorName, readonly string[]>> = {
  otlp: ['POST /v1/logs'],
  loki: ['POST /loki/api/v1/push'],
  elasticsearch: [
    'GET /',
    'GET /_license',
    'GET /_xpack',
    'GET /_cluster/health',
    'GET /_index_template/:name',
    'PUT /_index_template/:name',
    'GET /_template/:name',
    'PUT /_template/:name',
    'HEAD /:index',
    'POST /_bulk',
    'POST /:index/_bulk',
  ],
}

const doorRouteKeys = new Set(Object.values(doorRoutes).flat())

/** Whether the request is for one of the doors' routes (they take request places as /v1 routes do). */
export function isDoorRoute(req: FastifyRequest): boolean {
  const url = req.routeOptions.url
  return url !== undefined && doorRouteKeys.has(`${req.method} ${url}`)
}

type DoorConfig<D extends DoorName> = Config['server'][D]

interface Door<D extends DoorName> {
  readonly broker: BrokerView
  readonly exchange: string
  readonly config: DoorConfig<D>
}

/** The door's settings, or why it cannot serve: 503 while recovering, 404 when it is off. */
function open<D extends DoorName>(getBroker: () => BrokerView | undefined, name: D, req: FastifyRequest, reply: FastifyReply): Door<D> {
  const broker = getBroker()
  if (broker === undefined) {
    void reply.header('retry-after', '1')
    throw errors.notReady()
  }
  const config = broker.config.server[name] as DoorConfig<D>
  if (!config.enabled || config.exchange === null) throw errors.notFound(req.method, req.url.split('?', 1)[0] ?? '')
  return { broker, exchange: config.exchange, config }
}

/** The request's media type, lowercased, without parameters. */
function mediaType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase()
}

/** Who publishes, for the rate limits: the HTTP listener, the address, the login. */
function publisherOf(req: FastifyRequest, listener: HttpListenerName): PublishRequest['from'] {
  const who = requestIdentity(req)
  return { listener, remote: req.ip, apiKey: who?.apiKey, user: who?.username }
}

const templates = new Map<string, RoutingKeyTemplate>()

function templateOf(text: string | null): RoutingKeyTemplate | undefined {
  if (text === null) return undefined
  let t = templates.get(text)
  if (t === undefined) templates.set(text, (t = compileTemplate(text)))
  return t
}

/** What a body could not be read as: refused with 400, its bytes kept in ingest-errors, counted as the listener's parse error. */
function unreadable(door: Door<DoorName>, source: PublishSourceName, req: FastifyRequest, err: unknown, raw: Buffer, counters: ListenerCounters): unknown {
  if (err instanceof SluiceError && err.status === 400) {
    door.broker.ingestErrors.record({ listener: source, remote: req.ip, reason: `${err.wireCode}: ${err.message}`, raw })
    counters.parseErrors++
  }
  return err
}

/** Events the publish path refused one by one (too large, too deep, unroutable under `reject`) go to ingest-errors. */
function setAside(door: Door<DoorName>, source: PublishSourceName, req: FastifyRequest, events: readonly PublishEvent[], result: PublishResult): void {
  for (const { index, error } of result.refused ?? []) door.broker.ingestErrors.record({ listener: source, remote: req.ip, reason: `${error.wireCode}: ${error.message}`, raw: events[index]!.body })
}

/** The message of the one error shape (`{"error": {"code", "message"}}`), if the payload is one. */
function sluiceError(payload: unknown): { code: string; message: string } | undefined {
  if (typeof payload !== 'string' || !payload.startsWith('{"error":')) return undefined
  try {
    const e = (JSON.parse(payload) as { error?: { code?: unknown; message?: unknown } }).error
    return typeof e?.code === 'string' && typeof e.message === 'string' ? { code: e.code, message: e.message } : undefined
  } catch {
    return undefined
  }
}

/** What a door's routes know of the listener they are on. */
interface DoorScope {
  readonly getBroker: () => BrokerView | undefined
  readonly limits: RouteLimits
  /** The listener's own counters (the app's, not a scope's): a body no door can read is its parse error. */
  readonly counters: ListenerCounters
  /** The listener, as the rate limits' `match.listener` names it. */
  readonly listener: HttpListenerName
}

const allDoors: readonly DoorName[] = ['otlp', 'loki', 'elasticsearch']

/** Registers the doors on an HTTP listener: all of them on the API's, only `otlp` on OTLP/HTTP's own. */
export function registerDoors(app: FastifyInstance, getBroker: () => BrokerView | undefined, limits: RouteLimits, doors: readonly DoorName[] = allDoors): void {
  const view = httpListenerView(app)
  const on: DoorScope = { getBroker, limits, counters: view.counters, listener: view.options.name }
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', async (req: FastifyRequest) => readBody(req.raw, limits))
    if (doors.includes('otlp')) await scope.register(async (s) => otlp(s, on))
    if (doors.includes('loki')) await scope.register(async (s) => loki(s, on))
    if (doors.includes('elasticsearch')) await scope.register(async (s) => elasticsearch(s, on))
  })
}

function otlp(scope: FastifyInstance, { getBroker, limits, counters, listener }: DoorScope): void {
  const encodingOf = (req: FastifyRequest): OtlpEncoding | undefined => {
    const type = mediaType(req)
    return type === 'application/json' ? 'json' : type === 'application/x-protobuf' ? 'protobuf' : undefined
  }
  // OTLP/HTTP: every 4xx and 5xx carries a google.rpc.Status, in the encoding of the request.
  scope.addHook('onSend', async (req, reply, payload) => {
    const e = reply.statusCode >= 400 ? sluiceError(payload) : undefined
    if (e === undefined) return payload
    const encoding = encodingOf(req) ?? 'json'
    void reply.type(encoding === 'json' ? 'application/json' : 'application/x-protobuf')
    return encodeOtlpStatus(encoding, reply.statusCode, e.message)
  })

  scope.post('/v1/logs', async (req, reply) => {
    const door = open(getBroker, 'otlp', req, reply)
    const encoding = encodingOf(req)
    if (encoding === undefined) throw errors.unsupportedMediaType(mediaType(req), 'application/x-protobuf or application/json, as OTLP/HTTP does')
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
    let mapped: ReturnType<typeof otlpEvents>
    try {
      // An empty body is an empty request, which OTLP answers with success.
      const request = body.length === 0 ? {} : decodeOtlpLogs(body, encoding)
      mapped = otlpEvents(request, { maxRecords: door.config.maxRecordsPerRequest, maxDepth: limits.maxEventDepth, routingKey: templateOf(door.config.routingKey) })
    } catch (err) {
      throw unreadable(door, 'otlp', req, err, body, counters)
    }
    const { rejected, message } = await publishOtlp(mapped, { publisher: door.broker.publisher, ingestErrors: door.broker.ingestErrors, exchange: door.exchange, remote: req.ip, from: publisherOf(req, listener) })
    return reply.type(encoding === 'json' ? 'application/json' : 'application/x-protobuf').send(encodeOtlpResponse(encoding, rejected, message))
  })
}

function loki(scope: FastifyInstance, { getBroker, limits, counters, listener }: DoorScope): void {
  scope.post('/loki/api/v1/push', async (req, reply) => {
    const door = open(getBroker, 'loki', req, reply)
    // As Loki: JSON when it says so, anything else is snappy-compressed protobuf.
    const encoding: LokiEncoding = mediaType(req) === 'application/json' ? 'json' : 'protobuf'
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
    if (body.length === 0) return reply.status(204).send()
    let events: PublishEvent[]
    try {
      events = lokiEvents(decodeLokiPush(body, encoding, limits.maxBodyBytes), encoding, { maxEntries: door.config.maxEntriesPerRequest, routingKey: templateOf(door.config.routingKey) }).events
    } catch (err) {
      throw unreadable(door, 'loki', req, err, body, counters)
    }
    if (events.length > 0) {
      const result = await door.broker.publisher.publish({ exchange: door.exchange, events, source: 'loki', from: publisherOf(req, listener), invalid: 'event' })
      setAside(door, 'loki', req, events, result)
      const refused = result.refused ?? []
      // As Loki does for entries it will not take: the others are stored, the answer is a 400
      // (not retried) naming what was not.
      if (refused.length > 0) {
        throw errors.badRequest(`${refused.length} of ${events.length} entries were not stored (kept in the ingest-errors stream); the others were: ${refused.slice(0, 3).map((r) => `entry ${r.index}: ${r.error.message}`).join('; ')}`, { refused: refused.length, stored: result.accepted })
      }
    }
    return reply.status(204).send()
  })
}

const bulkTypes = new Set(['', 'application/json', 'application/x-ndjson', 'application/vnd.elasticsearch+x-ndjson', 'application/vnd.elasticsearch+json'])

function elasticsearch(scope: FastifyInstance, { getBroker, counters, listener }: DoorScope): void {
  const node = `sluice-${hostname()}`
  // Every answer names the product (the clients check it), and errors have Elasticsearch's shape.
  scope.addHook('onSend', async (_req, reply, payload) => {
    void reply.header(productHeader.name, productHeader.value)
    const e = reply.statusCode >= 400 ? sluiceError(payload) : undefined
    if (e === undefined) return payload
    return JSON.stringify(esError(reply.statusCode, e.code, e.message))
  })
  const probe = (answer: () => unknown) => async (req: FastifyRequest, reply: FastifyReply) => {
    open(getBroker, 'elasticsearch', req, reply)
    return answer()
  }
  scope.get('/', probe(() => handshake(node)))
  scope.get('/_license', probe(() => license(node)))
  scope.get('/_xpack', probe(() => xpack(node)))
  scope.get('/_cluster/health', probe(() => clusterHealth()))
  scope.get<{ Params: { name: string } }>('/_index_template/:name', async (req, reply) => {
    open(getBroker, 'elasticsearch', req, reply)
    return reply.status(404).send(templateMissing(req.params.name))
  })
  scope.get('/_template/:name', async (req, reply) => {
    open(getBroker, 'elasticsearch', req, reply)
    return reply.status(404).send({})
  })
  scope.put('/_index_template/:name', probe(() => ({ acknowledged: true })))
  scope.put('/_template/:name', probe(() => ({ acknowledged: true })))
  // Every index exists: documents go to whichever streams their index routes to.
  scope.head('/:index', async (req, reply) => {
    open(getBroker, 'elasticsearch', req, reply)
    return reply.status(200).send()
  })

  const bulk = async (req: FastifyRequest<{ Params: { index?: string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const started = performance.now()
    const door = open(getBroker, 'elasticsearch', req, reply)
    const type = mediaType(req)
    if (!bulkTypes.has(type)) throw errors.unsupportedMediaType(type, 'application/x-ndjson, application/json or their application/vnd.elasticsearch+ forms')
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
    if (body.length === 0) throw errors.badRequest('request body is required')
    let parsed: ReturnType<typeof parseBulk>
    try {
      parsed = parseBulk(body, { defaultIndex: req.params.index, maxItems: door.config.maxDocumentsPerRequest })
    } catch (err) {
      throw unreadable(door, 'elasticsearch', req, err, body, counters)
    }
    for (const item of parsed.items) {
      if (item.raw !== undefined) door.broker.ingestErrors.record({ listener: 'elasticsearch', remote: req.ip, reason: item.error?.reason ?? 'unparseable document', raw: item.raw, line: item.line + 1 })
    }
    let outcome: Outcome | undefined
    if (parsed.events.length > 0) {
      // Partial admission: what the rate limits hold now is stored, the rest answered 429 item by
      // item, which every bulk client retries.
      const a = door.broker.publisher.admit({ exchange: door.exchange, events: parsed.events, source: 'elasticsearch', from: publisherOf(req, listener), invalid: 'event', admit: 'partial' })
      if (!a.admitted) outcome = { kind: 'error', error: a.error }
      else {
        try {
          const result = await a.done
          setAside(door, 'elasticsearch', req, parsed.events, result)
          outcome = { kind: 'result', result }
        } catch (err) {
          if (!(err instanceof SluiceError)) throw err
          outcome = { kind: 'error', error: err }
        }
      }
    }
    return reply.type('application/json; charset=utf-8').send(bulkAnswer(parsed, outcome, performance.now() - started))
  }
  scope.post('/_bulk', bulk)
  scope.post('/:index/_bulk', bulk)
}
