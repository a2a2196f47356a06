// The /v1 routes the management UI needs beyond the ones scripts already had; they are public API
// (docs/http-api.md), so a script can do all the UI does. None of them consumes anything: the
// search and the tail read a stream as GET /v1/streams/{stream}/events does, and the dead-letter
// summary counts what a redrive would send without sending it.

import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { errors } from '../../errors.js'
import { hitLimit } from '../../limits.js'
import type { StoredRecord } from '../../log/index.js'
import { compileTemplate } from '../../router/index.js'
import { identityOf } from '../../auth/identity.js'
import { requestIdentity } from './access.js'
import { LagHistory } from './lag-history.js'
import { RateHistory } from './rate-history.js'
import { jsonBody, offsetsField } from './groups.js'
import { brokerOr503, wireEventJson, type BrokerView } from './routes.js'
import { startOffset } from './stream-position.js'

const sampleEveryMs = 1000
/** A comment line keeps idle feeds open through proxies and tells the server a client left. */
const heartbeatMs = 15_000
/** One search page at most, whatever `limit` asks (the browser shows one page at a time). */
const searchPageMax = 1000
const scanChunkBytes = 256 * 1024

/**
 * A topic pattern as bindings use it (`*` one word, `#` zero or more), matched against one key.
 * The router's trie answers "which bindings match this key"; here one pattern meets many keys.
 */
export function topicMatcher(pattern: string): (key: string) => boolean {
  const want = pattern.split('.')
  return (key) => {
    const words = key.split('.')
    const match = (p: number, w: number): boolean => {
      if (p === want.length) return w === words.length
      const part = want[p]!
      if (part === '#') {
        for (let k = w; k <= words.length; k++) if (match(p + 1, k)) return true
        return false
      }
      return w < words.length && (part === '*' || part === words[w]) && match(p + 1, w + 1)
    }
    return match(0, 0)
  }
}

function streamOf(broker: BrokerView, name: string): NonNullable<ReturnType<BrokerView['streams']['get']>> {
  const s = broker.streams.get(name)
  if (s === undefined) throw errors.unknownStream(name)
  return s
}

function limitParam(raw: string | undefined, dflt: number, max: number): number {
  if (raw === undefined || raw === '') return dflt
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw errors.badRequest(`limit must be a whole number from 1 to ${max}`, { limit: raw })
  return Number(raw)
}

function stringOrUndefined(v: unknown, name: string): string | undefined {
  if (v === undefined || v === '') return undefined
  if (typeof v !== 'string') throw errors.badRequest(`${name} must be a string`)
  return v
}

/**
 * The counters the rate history samples: events accepted from clients (not Sluice's own
 * republishing, nor what another node of a cluster took and stored here), and deliveries over
 * every group.
 */
function totals(broker: BrokerView): { ingest: number; delivered: number } {
  let delivered = 0
  for (const g of broker.groups.all()) delivered += g.counters.delivered
  let ingest = 0
  for (const s of broker.publisher.bySource.values()) if (s.source !== 'internal' && s.source !== 'cluster') ingest += s.accepted
  return { ingest, delivered }
}

export function registerUiRoutes(app: FastifyInstance, getBroker: () => BrokerView | undefined, closing: AbortSignal): void {
  const get = (reply: FastifyReply): BrokerView => brokerOr503(getBroker, reply)
  // One history per listener, sampled while the broker is up; the timer ends with the app.
  let history: RateHistory | undefined
  let lags: LagHistory | undefined
  const timer = setInterval(() => {
    const broker = getBroker()
    if (broker === undefined) return
    const http = broker.config.server.http
    history ??= new RateHistory(Math.ceil(http.rateHistoryMs / sampleEveryMs) + 1)
    lags ??= new LagHistory(Math.ceil(http.rateHistoryMs / sampleEveryMs), http.maxLagHistoryGroups)
    const t = totals(broker)
    const now = Date.now()
    history.push(now, t.ingest, t.delivered)
    // A group closing mid-sample (deleted, or the server stopping) fails its read: the next tick samples again.
    void lags.sample(broker.groups.all(), now).catch(() => undefined)
  }, sampleEveryMs)
  timer.unref()
  app.addHook('onClose', async () => clearInterval(timer))
  let liveFeeds = 0

  app.get('/v1/whoami', async (req) => {
    const who = requestIdentity(req)
    if (who === undefined) throw errors.internal(new Error('whoami without an identity'))
    const source = (p: RegExp | null): string | null => (p === null ? null : p.source)
    return {
      username: who.username,
      tags: [...who.tags],
      method: who.method,
      patterns: { configure: source(who.patterns.configure), write: source(who.patterns.write), read: source(who.patterns.read) },
    }
  })

  // Users live in the configuration file: this lists them, never a password, hash or key.
  app.get('/v1/users', async (_req, reply) => {
    const auth = get(reply).config.auth
    return {
      anonymous: auth.anonymous,
      users: auth.users.map((u) => {
        const id = identityOf(u, 'password')
        const source = (p: RegExp | null): string | null => (p === null ? null : p.source)
        return {
          username: u.username,
          tags: [...u.tags],
          loopbackOnly: u.loopbackOnly,
          permissions: { ...u.permissions },
          patterns: { configure: source(id.patterns.configure), write: source(id.patterns.write), read: source(id.patterns.read) },
          apiKeys: auth.apiKeys.filter((k) => k.user === u.username).map((k) => k.name),
        }
      }),
    }
  })

  app.get('/v1/overview/rates', async (_req, reply) => {
    const broker = get(reply)
    const t = totals(broker)
    return { intervalMs: sampleEveryMs, historyMs: broker.config.server.http.rateHistoryMs, totals: t, ...(history?.series() ?? { times: [], ingest: [], delivered: [] }) }
  })

  app.get<{ Params: { group: string } }>('/v1/groups/:group/lag', async (req, reply) => {
    const broker = get(reply)
    const g = broker.groups.get(req.params.group)
    if (g === undefined) throw errors.unknownGroup(req.params.group)
    const series = lags?.series(g.name)
    return { group: g.name, intervalMs: sampleEveryMs, historyMs: broker.config.server.http.rateHistoryMs, tracked: series !== undefined, now: { backlog: g.backlog, lagSeconds: Math.round((await g.lagSeconds()) * 1000) / 1000 }, ...(series ?? { times: [], backlog: [], lagSeconds: [] }) }
  })

  app.post<{ Params: { exchange: string } }>('/v1/exchanges/:exchange/route', async (req, reply) => {
    const broker = get(reply)
    const exchange = req.params.exchange
    const config = broker.publisher.exchangeConfig(exchange)
    if (config === undefined) throw errors.routerUnknownExchange(exchange)
    const b = jsonBody(req)
    for (const k of Object.keys(b)) if (!['routingKey', 'headers', 'body'].includes(k)) throw errors.badRequest(`unknown field "${k}": the body is {routingKey?, headers?, body?}`)
    const given = stringOrUndefined(b.routingKey, 'routingKey')
    const headers = b.headers
    if (headers !== undefined && (typeof headers !== 'object' || headers === null || Array.isArray(headers))) throw errors.badRequest('headers must be an object')
    // As a publish does: the key given, else the exchange's template over the body.
    const routingKey = given ?? (config.routingKey === null ? '' : compileTemplate(config.routingKey)(b.body))
    const route = broker.router.route(exchange, routingKey, headers as Record<string, unknown> | undefined, b.body)
    return { exchange, routingKey, streams: route.streams, unroutable: route.unroutable, ...(route.unroutable ? { policy: route.policy ?? 'drop' } : {}) }
  })

  app.get<{ Params: { stream: string }; Querystring: { from?: string; key?: string; q?: string; limit?: string } }>('/v1/streams/:stream/search', async (req, reply) => {
    const broker = get(reply)
    const stream = streamOf(broker, req.params.stream)
    const log = stream.log
    const limit = limitParam(req.query.limit, 50, searchPageMax)
    const key = req.query.key === undefined || req.query.key === '' ? undefined : topicMatcher(req.query.key)
    const q = req.query.q === undefined || req.query.q === '' ? undefined : req.query.q.toLowerCase()
    const maxScan = broker.config.server.http.maxScanEvents
    const found: StoredRecord[] = []
    const end = broker.streams.readEnd(stream)
    let next = await startOffset(log, req.query.from, end)
    let scanned = 0
    // Reads chunk by chunk and stops at the page's end, the stream's end or maxScanEvents: a
    // filter that matches little cannot make one request read a whole stream.
    scan: while (next < end && scanned < maxScan) {
      const { records } = await log.read(next, { maxBytes: scanChunkBytes, maxRecords: maxScan - scanned, end })
      if (records.length === 0) break
      for (const r of records) {
        scanned++
        next = r.offset + 1
        if (key !== undefined && !key(r.key)) continue
        if (q !== undefined && !r.body.toString(r.json ? 'utf8' : 'latin1').toLowerCase().includes(q)) continue
        found.push(r)
        if (found.length >= limit) break scan
      }
    }
    const complete = next >= end
    if (!complete && scanned >= maxScan && found.length < limit) hitLimit('http.maxScanEvents')
    return reply
      .type('application/json; charset=utf-8')
      .send(`{"stream":${JSON.stringify(stream.name)},"events":[${found.map(wireEventJson).join(',')}],"nextOffset":${next},"scanned":${scanned},"complete":${complete},"startOffset":${log.startOffset},"endOffset":${end}}`)
  })

  app.get<{ Params: { stream: string }; Querystring: { from?: string } }>('/v1/streams/:stream/tail', async (req, reply) => {
    const broker = get(reply)
    const stream = streamOf(broker, req.params.stream)
    const log = stream.log
    const max = broker.config.server.http.maxLiveFeeds
    if (liveFeeds >= max) {
      void reply.header('retry-after', '5')
      throw errors.tooManyConnections('http.maxLiveFeeds', max)
    }
    let next = await startOffset(log, req.query.from ?? 'latest', broker.streams.readEnd(stream))
    liveFeeds++
    const done = new AbortController()
    const res = reply.raw
    res.once('close', () => done.abort())
    const signal = AbortSignal.any([done.signal, closing])
    // fastify steps aside: the answer is written as the events come, until either side leaves.
    reply.hijack()
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', connection: 'keep-alive' })
    res.write(`retry: 2000\n: tailing ${stream.name} from ${next}\n\n`)
    try {
      while (!signal.aborted) {
        if (!(await broker.streams.waitReadable(stream, next, heartbeatMs, signal))) {
          if (!signal.aborted && !res.write(': ping\n\n')) await drained(res, signal)
          continue
        }
        const end = broker.streams.readEnd(stream)
        const { records, nextOffset } = await log.read(next, { maxRecords: 500, end })
        if (records.length === 0) {
          // Readable a moment ago, not now: a leadership went, and the new one's watermark is behind.
          if (next >= end) continue
          // Retention dropped what was there: go on from the stream's start.
          next = Math.max(next, log.startOffset)
          continue
        }
        next = nextOffset
        const chunk = records.map((r) => `id: ${r.offset}\nevent: event\ndata: ${wireEventJson(r)}\n\n`).join('')
        // Backpressure: a slow browser holds the tail here instead of growing the socket's buffer.
        if (!res.write(chunk)) await drained(res, signal)
      }
    } finally {
      liveFeeds--
      res.end()
    }
  })

  app.get<{ Params: { stream: string }; Querystring: { reason?: string; group?: string; exchange?: string; from?: string; offsets?: string } }>('/v1/streams/:stream/dead-letters', async (req, reply) => {
    const broker = get(reply)
    const stream = streamOf(broker, req.params.stream)
    const from = req.query.from === undefined || req.query.from === '' ? undefined : await startOffset(stream.log, req.query.from)
    const filter = { reason: stringOrUndefined(req.query.reason, 'reason'), group: stringOrUndefined(req.query.group, 'group'), exchange: stringOrUndefined(req.query.exchange, 'exchange') }
    const rawOffsets = req.query.offsets
    if (rawOffsets !== undefined && !/^\d+(,\d+)*$/.test(rawOffsets)) throw errors.badRequest('offsets must be offsets separated by commas, e.g. 3,17,42', { offsets: rawOffsets })
    const offsets = rawOffsets === undefined ? undefined : offsetsField(rawOffsets.split(',').map(Number), broker.config.server.http.maxRedriveOffsets)
    const preview = await broker.redriver.preview(stream, filter, broker.config.server.http.maxScanEvents, from, offsets)
    if (!preview.complete) hitLimit('http.maxScanEvents')
    return { stream: stream.name, filter, ...preview }
  })
}

function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      res.off('drain', finish)
      signal.removeEventListener('abort', finish)
      resolve()
    }
    res.once('drain', finish)
    signal.addEventListener('abort', finish, { once: true })
  })
}
