import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config, StartPosition } from '../../config/index.js'
import type { ConsumerGroup, Delivery, GroupRegistry, Redriver, SettleAs, TagResult } from '../../consumers/index.js'
import { errors, type SluiceError } from '../../errors.js'
import type { StreamRegistry } from '../../streams/registry.js'
import { bodyJson, toWireEvent } from './routes.js'
import { requestIdentity } from './access.js'
import { forwardedRoutes, forwardToHome, isForwardedRoute, localCopy } from './cluster-forward.js'
import type { Cluster } from '../../cluster/index.js'

export interface ConsumeView {
  readonly groups: GroupRegistry
  readonly streams: StreamRegistry
  readonly redriver: Redriver
  /** server.http bounds what one fetch, ack, nack or extend may ask for. */
  readonly config: Config
  /** Cluster mode: a group whose stream lives on another node is served there. */
  readonly cluster?: Cluster | undefined
}


/** A request field's ceiling from the key table: the server.http key and its value. */
export interface RequestBound {
  readonly key: string
  readonly max: number
}

const consumerPattern = /^[A-Za-z0-9._:@/-]{1,200}$/
/** How often an idle consume stream sends a heartbeat. */
const consumeHeartbeatMs = 15_000

/** A JSON route's body as an object: {} when empty, 400 when not JSON or not an object. */
export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const raw = req.body
  if (raw === undefined || raw === null || (Buffer.isBuffer(raw) && raw.length === 0)) return {}
  let value: unknown
  try {
    value = Buffer.isBuffer(raw) ? JSON.parse(raw.toString('utf8')) : raw
  } catch (err) {
    throw errors.badRequest(`the body is not valid JSON (${(err as Error).message})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.badRequest('the body must be a JSON object')
  return value as Record<string, unknown>
}

function intField(b: Record<string, unknown>, name: string, dflt: number, min: number, max: number | RequestBound): number {
  const v = b[name]
  if (v === undefined) return dflt
  const limit = typeof max === 'number' ? max : max.max
  const out = (): SluiceError => errors.badRequest(`${name} must be a whole number from ${min} to ${limit}`, { [name]: v })
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw out()
  if (v > limit) throw typeof max === 'number' ? out() : errors.overRequestLimit(name, v, max.key, limit)
  return v
}

/** A redrive's hand-picked offsets: a list of whole numbers, at most server.http.maxRedriveOffsets. */
export function offsetsField(v: unknown, max: number): number[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length === 0 || !v.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) throw errors.badRequest('offsets must be a list of offsets (whole numbers from 0)', { offsets: Array.isArray(v) ? v.length : v })
  if (v.length > max) throw errors.overRequestLimit('offsets', v.length, 'maxRedriveOffsets', max)
  return v as number[]
}

function tagsField(b: Record<string, unknown>, maxTags: number): string[] {
  const tags = b.tags
  if (Array.isArray(tags) && tags.length > maxTags) throw errors.overRequestLimit('tags', tags.length, 'maxTagsPerRequest', maxTags)
  if (!Array.isArray(tags) || tags.length === 0) throw errors.badRequest(`tags must be a list of 1 to ${maxTags} delivery tags`)
  return tags.map((t) => (typeof t === 'string' ? t : String(t)))
}

function startPosition(to: unknown): StartPosition {
  if (to === 'earliest' || to === 'latest') return { kind: to }
  if (typeof to === 'number' && Number.isSafeInteger(to) && to >= 0) return { kind: 'offset', offset: to }
  if (typeof to === 'string' && /^\d+$/.test(to)) return { kind: 'offset', offset: Number(to) }
  if (typeof to === 'string') {
    const t = Date.parse(to)
    if (!Number.isNaN(t)) return { kind: 'time', timeMs: t }
  }
  throw errors.badRequest('to must be "earliest", "latest", an offset or an ISO 8601 time', { to })
}

/** A delivery as JSON text, bodies and headers passed through as stored (see bodyJson). */
export function wireDeliveryJson(stream: string, d: Delivery): string {
  return deliveriesJson(stream, [d]).toString('utf8').slice('{"events":['.length, -2)
}

/** How deliveries are put together: a fetch answer's array, NDJSON lines, server-sent events. */
export interface DeliveryFraming {
  readonly open: string
  /** before each delivery's JSON, and after it */
  readonly before: string
  readonly after: string
  /** between two deliveries */
  readonly between: string
  readonly close: string
}

export const fetchFraming: DeliveryFraming = { open: '{"events":[', before: '', after: '', between: ',', close: ']}' }
export const ndjsonFraming: DeliveryFraming = { open: '', before: '', after: '\n', between: '', close: '' }
export const sseFraming: DeliveryFraming = { open: '', before: 'event: delivery\ndata: ', after: '\n\n', between: '', close: '' }

/**
 * Deliveries as JSON, written as bytes: stored JSON bodies and headers are copied in as they are,
 * not decoded to strings and encoded again, and what consecutive deliveries share (stream,
 * routing key, the timestamp's text) is turned to JSON once. Building a string per delivery was
 * the largest cost of a fetch. The framing's strings are ASCII.
 */
export function deliveriesJson(stream: string, deliveries: readonly Delivery[], framing: DeliveryFraming = fetchFraming): Buffer {
  const streamJson = JSON.stringify(stream)
  const idPrefix = JSON.stringify(`${stream}:`).slice(0, -1)
  let lastKey: string | undefined
  let keyJson = ''
  let lastMs = Number.NaN
  let iso = ''
  const heads = new Array<string>(deliveries.length)
  const bodies = new Array<Buffer | string>(deliveries.length)
  const { open, before, after, between, close } = framing
  let size = open.length + close.length + Math.max(0, deliveries.length - 1) * between.length
  for (let i = 0; i < deliveries.length; i++) {
    const d = deliveries[i]!
    const r = d.record
    if (r.key !== lastKey) {
      lastKey = r.key
      keyJson = JSON.stringify(r.key)
    }
    if (r.timestamp !== lastMs) {
      lastMs = r.timestamp
      iso = new Date(r.timestamp).toISOString()
    }
    const id = r.id === undefined ? `${idPrefix}${r.offset}"` : JSON.stringify(r.id)
    const head = `${before}{"tag":"${d.tag}","id":${id},"stream":${streamJson},"offset":${r.offset},"deliveryCount":${d.deliveryCount},"redelivered":${d.redelivered},"routingKey":${keyJson},"timestamp":"${iso}","headers":`
    heads[i] = head
    // JSON bodies go through as stored bytes; others become a JSON string (text or base64).
    const body = r.json ? r.body : bodyJson(r)
    bodies[i] = body
    size += Buffer.byteLength(head) + (r.headers === undefined ? 2 : r.headers.length) + 8 + (typeof body === 'string' ? Buffer.byteLength(body) : body.length) + 1 + after.length
  }
  const out = Buffer.allocUnsafe(size)
  let p = out.write(open, 0, 'latin1')
  for (let i = 0; i < deliveries.length; i++) {
    const r = deliveries[i]!.record
    if (i > 0 && between.length > 0) p += out.write(between, p, 'latin1')
    p += out.write(heads[i]!, p, 'utf8')
    if (r.headers === undefined) p += out.write('{}', p, 'latin1')
    else p += r.headers.copy(out, p)
    p += out.write(',"body":', p, 'latin1')
    const body = bodies[i]!
    p += typeof body === 'string' ? out.write(body, p, 'utf8') : body.copy(out, p)
    out[p++] = 0x7d // }
    if (after.length > 0) p += out.write(after, p, 'latin1')
  }
  if (close.length > 0) p += out.write(close, p, 'latin1')
  return p === size ? out : out.subarray(0, p)
}

export function toWireDelivery(stream: string, d: Delivery): Record<string, unknown> {
  const e = toWireEvent(d.record)
  return {
    tag: d.tag,
    id: d.record.id ?? `${stream}:${d.record.offset}`,
    stream,
    offset: d.record.offset,
    deliveryCount: d.deliveryCount,
    redelivered: d.redelivered,
    routingKey: e.routingKey,
    timestamp: e.timestamp,
    headers: e.headers,
    body: e.body,
    ...(e.bodyEncoding !== undefined ? { bodyEncoding: e.bodyEncoding } : {}),
  }
}

/** Per-tag answers: every tag gets one; failures say why instead of failing the request. */
/** Who settles: the request's user and, when the body names one, its consumer (see SettleAs). */
function settleAs(req: FastifyRequest, b: Record<string, unknown>): SettleAs {
  const consumer = b.consumer
  if (consumer !== undefined && (typeof consumer !== 'string' || !consumerPattern.test(consumer))) throw errors.badRequest('consumer must name the member: 1-200 letters, digits or ._:@/-')
  const who = requestIdentity(req)
  return { consumer, user: who?.username, admin: who?.tags.has('administrator') === true }
}

const tagMessages: Record<string, string> = {
  unknown_tag: 'no delivery has this tag',
  stale_tag: 'this delivery was redelivered, reset or settled since; its tag no longer applies',
  already_settled: 'the event is already settled',
  not_yours: 'this delivery went to another consumer or user; only they (or an administrator) may settle it',
}

const failedWire = (r: TagResult): Record<string, string> => ({ tag: r.tag, code: r.status, message: tagMessages[r.status] ?? r.status })

function settleAnswer(results: TagResult[]): Record<string, unknown> {
  const failed = results.filter((r) => r.status !== 'ok')
  return { settled: results.length - failed.length, failed: failed.map(failedWire) }
}

/** The answer to acks by run (upTo, ranges): how many each settled in all, and the ends that failed. */
function runAnswer(runs: ReadonlyArray<{ settled: number; failed: TagResult[] }>): Record<string, unknown> {
  return { settled: runs.reduce((a, r) => a + r.settled, 0), failed: runs.flatMap((r) => r.failed.map(failedWire)) }
}

/** ranges: 1 to maxTagsPerRequest pairs [from, to] of delivery tags. */
function rangesField(v: unknown, maxTags: number): Array<[string, string]> {
  if (Array.isArray(v) && v.length > maxTags) throw errors.overRequestLimit('ranges', v.length, 'maxTagsPerRequest', maxTags)
  const ok = Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.length === 2 && typeof r[0] === 'string' && typeof r[1] === 'string')
  if (!ok) throw errors.badRequest(`ranges must be a list of 1 to ${maxTags} pairs [fromTag, toTag]`)
  return v as Array<[string, string]>
}

export function registerGroupRoutes(app: FastifyInstance, get: (reply: FastifyReply) => ConsumeView, closing: AbortSignal): void {
  // After the access checks (registered first), so only an authorised request is passed on.
  app.addHook('preHandler', async (req, reply) => {
    const route = req.routeOptions.url ?? ''
    if (!isForwardedRoute(req.method, route)) return
    const ofGroup = forwardedRoutes.has(route)
    const view = get(reply)
    const cluster = view.cluster
    if (cluster === undefined) return
    // A replica's own copy, asked for by name: read here (see localCopy).
    if (!ofGroup && localCopy(req.query)) return
    // An unknown group or stream: the route itself answers 404.
    const stream = ofGroup ? view.groups.get((req.params as { group: string }).group)?.stream : view.streams.get((req.params as { stream: string }).stream)?.name
    if (stream === undefined) return
    const home = cluster.httpHome(stream)
    const identity = requestIdentity(req)
    if (home === undefined || identity === undefined) return
    // Forwarded once only: two nodes whose views disagree must not pass a request back and forth.
    if (identity.method === 'cluster') throw errors.streamUnavailable(stream, `another node forwarded this here, but this node sees its home as ${home.node}; their views catch up within moments`, home.node)
    const http = view.config.server.http
    const idleMs = Math.max(60_000, Math.max(http.maxFetchWaitMs, http.maxReadWaitMs) + 15_000)
    forwardToHome(req, reply, home, stream, identity.username, cluster.secret, idleMs, closing)
    return reply
  })

  const group = (req: FastifyRequest<{ Params: { group: string } }>, reply: FastifyReply): ConsumerGroup => {
    const g = get(reply).groups.get(req.params.group)
    if (g === undefined) throw errors.unknownGroup(req.params.group)
    return g
  }

  app.get('/v1/groups', async (_req, reply) => {
    const view = get(reply)
    return { groups: await Promise.all(view.groups.all().map((g) => g.stats())) }
  })

  app.get<{ Params: { group: string } }>('/v1/groups/:group', async (req, reply) => {
    const g = group(req, reply)
    return { ...(await g.stats()), config: g.config }
  })

  app.put<{ Params: { group: string } }>('/v1/groups/:group', async (req, reply) => {
    const { created, group: g } = await get(reply).groups.declare(req.params.group, jsonBody(req))
    return reply.status(created ? 201 : 200).send({ ...(await g.stats()), config: g.config })
  })

  app.post<{ Params: { group: string } }>('/v1/groups/:group/fetch', async (req, reply) => {
    const g = group(req, reply)
    const b = jsonBody(req)
    const consumer = b.consumer
    if (typeof consumer !== 'string' || !consumerPattern.test(consumer)) throw errors.badRequest('consumer must name the member: 1-200 letters, digits or ._:@/-')
    const http = get(reply).config.server.http
    const max = intField(b, 'max', Math.min(100, http.maxFetchEvents), 1, { key: 'maxFetchEvents', max: http.maxFetchEvents })
    const waitMs = intField(b, 'waitMs', 0, 0, { key: 'maxFetchWait', max: http.maxFetchWaitMs })
    // A client that goes away mid-poll must not leave events assigned to a dead request: the
    // poll ends at once, and what was written to a connection that closed first goes back.
    const gone = new AbortController()
    const res = reply.raw
    const onClose = (): void => {
      if (!res.writableFinished) gone.abort()
    }
    res.once('close', onClose)
    // A stopping server ends the poll too, before its groups close: answered, not reset.
    const deliveries = await g.fetch(consumer, max, waitMs, AbortSignal.any([gone.signal, closing]), requestIdentity(req)?.username)
    if (deliveries.length > 0) {
      const tags = deliveries.map((d) => d.tag)
      res.removeListener('close', onClose)
      res.once('close', () => {
        if (!res.writableFinished) g.returnUndelivered(tags)
      })
      if (gone.signal.aborted || res.destroyed) g.returnUndelivered(tags)
    }
    return reply.type('application/json; charset=utf-8').send(deliveriesJson(g.stream, deliveries))
  })

  // A long-lived push consumer over HTTP: deliveries stream as NDJSON lines (or server-sent events)
  // as the group dispatches them, up to `prefetch` unacked, and are settled with the ack, nack and
  // extend routes. Beside fetch, for consumers that want push: no request per batch.
  app.get<{ Params: { group: string }; Querystring: { consumer?: string; prefetch?: string; format?: string } }>('/v1/groups/:group/consume', async (req, reply) => {
    const g = group(req, reply)
    const consumer = req.query.consumer
    if (typeof consumer !== 'string' || !consumerPattern.test(consumer)) throw errors.badRequest('consumer must name the member: 1-200 letters, digits or ._:@/-')
    const http = get(reply).config.server.http
    const rawPrefetch = req.query.prefetch
    if (rawPrefetch !== undefined && !/^\d{1,9}$/.test(rawPrefetch)) throw errors.badRequest(`prefetch must be a whole number from 1 to ${http.maxFetchEvents}`, { prefetch: rawPrefetch })
    const prefetch = intField({ prefetch: rawPrefetch === undefined ? undefined : Number(rawPrefetch) }, 'prefetch', Math.min(g.config.prefetch, http.maxFetchEvents), 1, { key: 'maxFetchEvents', max: http.maxFetchEvents })
    const format = req.query.format ?? (/\btext\/event-stream\b/.test(req.headers.accept ?? '') ? 'sse' : 'ndjson')
    if (format !== 'ndjson' && format !== 'sse') throw errors.badRequest('format must be ndjson or sse', { format })
    if (g.receiving(consumer)) throw errors.consumerBusy(g.name, consumer)
    g.admitMember(consumer)
    const user = requestIdentity(req)?.username
    const framing = format === 'sse' ? sseFraming : ndjsonFraming
    const res = reply.raw
    let open = true
    const deliver = (ds: Delivery[]): void => {
      // Dispatched as the stream closed: back to the group, as they were.
      if (!open) g.returnUndelivered(ds.map((d) => d.tag))
      else res.write(deliveriesJson(g.stream, ds, framing))
    }
    // Subscribed before fastify steps aside, so a refusal (another user's member) is a plain answer.
    g.subscribe(consumer, prefetch, deliver, 0, user)
    reply.hijack()
    res.writeHead(200, { 'content-type': format === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
    // The answer starts now, not with the first delivery or heartbeat: a client waits for its
    // headers before it reads, and may publish only once it is consuming.
    res.flushHeaders()
    // Keeps proxies from closing an idle stream; a blank NDJSON line and an SSE comment carry nothing.
    const heartbeat = setInterval(() => res.write(format === 'sse' ? ': ping\n\n' : '\n'), consumeHeartbeatMs)
    heartbeat.unref()
    const stop = (): void => {
      if (!open) return
      open = false
      clearInterval(heartbeat)
      closing.removeEventListener('abort', stop)
      // What it held and did not ack goes back to the group at once, as when an AMQP channel closes.
      g.unsubscribe(consumer, true)
      res.end()
    }
    res.once('close', stop)
    closing.addEventListener('abort', stop, { once: true })
  })

  const maxTags = (reply: FastifyReply): number => get(reply).config.server.http.maxTagsPerRequest

  app.post<{ Params: { group: string } }>('/v1/groups/:group/ack', async (req, reply) => {
    const b = jsonBody(req)
    const g = group(req, reply)
    const as = settleAs(req, b)
    const given = ['tags', 'upTo', 'ranges'].filter((k) => b[k] !== undefined)
    if (given.length > 1) throw errors.badRequest(`an ack names its deliveries one way: tags, upTo or ranges, not ${given.join(' and ')}`)
    if (b.upTo !== undefined) {
      if (typeof b.upTo !== 'string') throw errors.badRequest('upTo must be a delivery tag')
      return runAnswer([await g.ackThrough(b.upTo, undefined, as)])
    }
    if (b.ranges !== undefined) {
      const ranges = rangesField(b.ranges, maxTags(reply))
      const out: Array<{ settled: number; failed: TagResult[] }> = []
      for (const [from, to] of ranges) out.push(await g.ackThrough(to, from, as))
      return runAnswer(out)
    }
    return settleAnswer(await g.ack(tagsField(b, maxTags(reply)), as))
  })

  app.post<{ Params: { group: string } }>('/v1/groups/:group/nack', async (req, reply) => {
    const g = group(req, reply)
    const b = jsonBody(req)
    const requeue = b.requeue ?? true
    if (typeof requeue !== 'boolean') throw errors.badRequest('requeue must be true or false')
    const delayMs = b.delayMs === undefined ? undefined : intField(b, 'delayMs', 0, 0, 7 * 24 * 3600 * 1000)
    const reason = b.reason
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1000)) throw errors.badRequest('reason must be a string of at most 1000 characters')
    return settleAnswer(await g.nack(tagsField(b, maxTags(reply)), { requeue, delayMs, reason }, settleAs(req, b)))
  })

  app.post<{ Params: { group: string } }>('/v1/groups/:group/extend', async (req, reply) => {
    const b = jsonBody(req)
    return settleAnswer(group(req, reply).extend(tagsField(b, maxTags(reply)), settleAs(req, b)))
  })

  app.post<{ Params: { group: string } }>('/v1/groups/:group/reset', async (req, reply) => {
    const g = group(req, reply)
    const cursor = await g.reset(startPosition(jsonBody(req).to))
    return { cursor }
  })

  app.get<{ Params: { group: string }; Querystring: { limit?: string } }>('/v1/groups/:group/parked', async (req, reply) => {
    const g = group(req, reply)
    const limit = Math.min(Number(req.query.limit ?? 100) || 100, 10_000)
    return { parked: g.parkedEvents(limit).map((p) => ({ ...p, time: new Date(p.time).toISOString() })) }
  })

  app.post<{ Params: { group: string } }>('/v1/groups/:group/parked/redrive', async (req, reply) => {
    const g = group(req, reply)
    return { redriven: await g.redriveParked(intField(jsonBody(req), 'limit', 10_000, 1, 1_000_000)) }
  })

  app.delete<{ Params: { group: string }; Querystring: { limit?: string } }>('/v1/groups/:group/parked', async (req, reply) => {
    const g = group(req, reply)
    const limit = Math.min(Number(req.query.limit ?? 10_000) || 10_000, 1_000_000)
    return { purged: await g.purgeParked(limit) }
  })

  app.post<{ Params: { stream: string } }>('/v1/streams/:stream/redrive', async (req, reply) => {
    const view = get(reply)
    const stream = view.streams.get(req.params.stream)
    if (stream === undefined) throw errors.unknownStream(req.params.stream)
    const b = jsonBody(req)
    const limit = intField(b, 'limit', 10_000, 1, 1_000_000)
    const f = b.filter
    if (f !== undefined && (typeof f !== 'object' || f === null || Array.isArray(f))) throw errors.badRequest('filter must be an object {reason?, group?, exchange?}')
    const filter = (f ?? {}) as Record<string, unknown>
    for (const [k, v] of Object.entries(filter)) {
      if (!['reason', 'group', 'exchange'].includes(k) || typeof v !== 'string') throw errors.badRequest(`filter.${k}: the filter takes reason, group and exchange, as strings`)
    }
    const offsets = offsetsField(b.offsets, view.config.server.http.maxRedriveOffsets)
    const deadLetterTarget = view.groups.all().some((g) => g.config.deadLetter?.kind === 'stream' && g.config.deadLetter.stream === stream.name)
    return view.redriver.redrive(stream, limit, filter as { reason?: string; group?: string; exchange?: string }, { deadLetterTarget, offsets })
  })
}
