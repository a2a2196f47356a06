import { connect as tcpConnect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { defaultStreamConfig } from '../../src/config/index.js'
import { limitHits } from '../../src/limits.js'
import { connect, startAmqpServer, until } from '../helpers/amqp.js'
import { call, fetchEvents } from '../helpers/consume.js'
import { publish } from '../helpers/groups.js'
import { readStream, startTestServer, testPipeline, type TestServer } from '../helpers/server.js'

// Limits that were constants once, now keys of the table: a configured value takes effect.

const hits = (limit: string): number => limitHits.get(limit) ?? 0
const ndjsonPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'ndjson')!.port
const ev = (i: number, pad = '') => ({ service: 'api', level: 'info', i, pad })

async function open(port: number): Promise<Socket> {
  const socket = tcpConnect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return socket
}

/** Writes `text` on a new NDJSON connection and waits for `n` events in app-logs. */
async function sendNdjson(s: TestServer, text: string, n: number): Promise<number> {
  const socket = await open(ndjsonPort(s))
  socket.end(text)
  let stored = 0
  await until(async () => (stored = (await readStream(s.url, 'app-logs', 0, 10_000)).events.length) >= n, 10_000, `${n} events stored`)
  return stored
}

describe('server.ndjson.maxPendingSize', () => {
  const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify(ev(i, 'x'.repeat(40)))).join('\n') + '\n'

  it('pauses the socket once that much is read and not yet stored; nothing is lost', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs, maxPendingSize: 1kb }' })
    const before = hits('ndjson.maxPendingSize')
    expect(await sendNdjson(s, lines, 2000)).toBe(2000)
    expect(hits('ndjson.maxPendingSize')).toBeGreaterThan(before)
  })

  it('at its default (4mb) the same 170 KB never pauses', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }' })
    const before = hits('ndjson.maxPendingSize')
    expect(await sendNdjson(s, lines, 2000)).toBe(2000)
    expect(hits('ndjson.maxPendingSize')).toBe(before)
  })
})

describe('server.http request bounds', () => {
  const pipeline = `${testPipeline}groups:\n  g: { stream: app-logs }\n`
  const http = '  http: { port: 0, maxFetchEvents: 50, maxFetchWait: 1s, maxTagsPerRequest: 3, maxReadEvents: 20, maxReadWait: 2s }'

  it('a fetch, ack or read over its bound is answered 400 naming the key and the configured value', async () => {
    const s = await startTestServer({ pipeline, server: http })
    await publish(s.url, 'logs', [ev(1), ev(2)])
    const cases: Array<[string, string, unknown, string, number]> = [
      ['POST', '/v1/groups/g/fetch', { consumer: 'c', max: 51 }, 'maxFetchEvents', 50],
      ['POST', '/v1/groups/g/fetch', { consumer: 'c', waitMs: 1001 }, 'maxFetchWait', 1000],
      ['POST', '/v1/groups/g/ack', { tags: ['a', 'b', 'c', 'd'] }, 'maxTagsPerRequest', 3],
      ['POST', '/v1/groups/g/nack', { tags: ['a', 'b', 'c', 'd'] }, 'maxTagsPerRequest', 3],
      ['GET', '/v1/streams/app-logs/events?limit=21', undefined, 'maxReadEvents', 20],
      ['GET', '/v1/streams/app-logs/events?waitMs=2001', undefined, 'maxReadWait', 2000],
    ]
    for (const [method, path, body, key, max] of cases) {
      const before = hits(`http.${key}`)
      const res = await call<{ error: { code: string; message: string; details: Record<string, unknown> } }>(s.url, method, path, body)
      expect(res.status, path).toBe(400)
      expect(res.body.error.code).toBe('bad_request')
      expect(res.body.error.message).toContain(`server.http.${key} (${max})`)
      expect(res.body.error.details).toMatchObject({ limit: key, limitValue: max })
      expect(hits(`http.${key}`)).toBe(before + 1)
    }
    // At the bound is allowed.
    expect(await fetchEvents(s.url, 'g', 'c', 50)).toHaveLength(2)
    expect((await call(s.url, 'GET', '/v1/streams/app-logs/events?limit=20')).status).toBe(200)
  })

  it('a configured maximum under 100 is also the default a request gets', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, maxReadEvents: 3 }' })
    await publish(s.url, 'logs', [ev(1), ev(2), ev(3), ev(4), ev(5)])
    const res = await call<{ events: unknown[] }>(s.url, 'GET', '/v1/streams/app-logs/events')
    expect(res.body.events).toHaveLength(3)
  })
})

describe('streams declared at run time and the built-in ingest-errors', () => {
  it('take a YAML stream\'s defaults from the key table; ingest-errors its size cap from server.ingestErrors.maxBytes', async () => {
    const s = await startAmqpServer({ server: '  ingestErrors: { maxBytes: 2mb }' })
    const ch = await (await connect(s.amqpUrl)).createChannel()
    await ch.assertQueue('work')
    const d = defaultStreamConfig('work', 'batch')
    const work = s.server.streams.get('work')!.config
    expect(work.segmentBytes).toBe(d.segmentBytes)
    expect(work.segmentAgeMs).toBe(d.segmentAgeMs)
    expect(d).toMatchObject({ segmentBytes: 64 * 1024 ** 2, segmentAgeMs: 7 * 86_400_000 })
    // A queue keeps what nobody consumed: interest retention, no age or size limit.
    expect(work.retention).toEqual({ maxAgeMs: null, maxBytes: null, policy: 'interest' })
    expect(s.server.streams.get('ingest-errors')!.config).toEqual({
      ...defaultStreamConfig('ingest-errors', 'batch'),
      retention: { maxAgeMs: 7 * 86_400_000, maxBytes: 2 * 1024 ** 2, policy: 'limits' },
    })
  })
})

describe('server.amqp.maxPendingPublishSize', () => {
  it('pauses a publishing connection at a small bound; every message is stored', async () => {
    const s = await startAmqpServer({ amqp: '{ port: 0, maxPendingPublishSize: 1kb }' })
    const before = hits('amqp.maxPendingPublishSize')
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    const body = Buffer.from(JSON.stringify(ev(0, 'y'.repeat(500))))
    for (let i = 0; i < 200; i++) ch.publish('logs', 'api.info', body)
    await ch.waitForConfirms()
    expect((await readStream(s.url, 'app-logs')).events).toHaveLength(200)
    expect(hits('amqp.maxPendingPublishSize')).toBeGreaterThan(before)
  })
})

describe('server.limits.maxDedupIds', () => {
  it('past it the oldest ids are forgotten early, so their copies are stored again', async () => {
    const s = await startTestServer({ server: '  limits: { maxDedupIds: 10 }' })
    const before = hits('limits.maxDedupIds')
    const bodies = Array.from({ length: 20 }, (_, i) => ({ ...ev(i), id: `e${i}` }))
    expect((await publish(s.url, 'logs', bodies)).accepted).toBe(20)
    expect(hits('limits.maxDedupIds')).toBeGreaterThan(before)
    // e19 is still remembered, e0 is not.
    expect(await publish(s.url, 'logs', [bodies[19], bodies[0]])).toMatchObject({ accepted: 1, duplicates: 1 })
  })
})

describe('server.ingestErrors.maxRawSize', () => {
  it('an unparseable line keeps that many bytes and says it was cut', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }', server: '  ingestErrors: { maxRawSize: 100b }' })
    const before = hits('ingestErrors.maxRawSize')
    const socket = await open(ndjsonPort(s))
    socket.end(`{"bad": ${'z'.repeat(500)}\n`)
    let errors: Awaited<ReturnType<typeof readStream>>['events'] = []
    await until(async () => (errors = (await readStream(s.url, 'ingest-errors')).events).length === 1, 5000, 'the ingest error')
    expect(errors[0]!.body).toMatchObject({ bytes: 508, truncated: true, raw: `{"bad": ${'z'.repeat(92)}` })
    expect(hits('ingestErrors.maxRawSize')).toBe(before + 1)
  })
})

describe('groups.<name>.readAheadSize', () => {
  it('a group reads the stream in reads of that size, and delivers all it was asked for', async () => {
    const pipeline = `${testPipeline}groups:\n  small: { stream: app-logs, readAheadSize: 1kb }\n`
    const s = await startTestServer({ pipeline })
    expect(s.server.groups.get('small')!.config.readAheadBytes).toBe(1024)
    for (let i = 0; i < 10; i++) await publish(s.url, 'logs', Array.from({ length: 10 }, (_, j) => ev(i * 10 + j, 'p'.repeat(100))))
    const before = hits('groups.readAheadSize')
    const got = await fetchEvents(s.url, 'small', 'c', 100)
    expect(got.map((d) => d.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(hits('groups.readAheadSize')).toBeGreaterThan(before)
  })
})
