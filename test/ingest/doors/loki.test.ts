import { gzipSync } from 'node:zlib'
import { pino } from 'pino'
import { pinoLoki } from 'pino-loki'
import snappy from 'snappyjs'
import { describe, expect, it } from 'vitest'
import winston from 'winston'
import LokiTransport from 'winston-loki'
import { lokiTypes } from '../../../src/ingest/protos.js'
import { parseLabels } from '../../../src/ingest/loki/push.js'
import { startTestServer, testPipeline } from '../../helpers/server.js'
import { readAll, startDoors, waitForEvents } from './helpers.js'

interface LokiEvent {
  labels: Record<string, string>
  timestamp: string
  line: string
  structuredMetadata?: Record<string, string>
}

const entries = 500

describe('Loki door: the logging libraries', () => {
  it('winston-loki (snappy protobuf, its default): every record once, labels intact', async () => {
    const s = await startDoors()
    const started = Date.now()
    const transport = new LokiTransport({
      host: s.url,
      labels: { service_name: 'checkout', env: 'test' },
      interval: 0.05,
      replaceTimestamp: false,
      timeout: 5000,
      onConnectionError: (err: unknown) => {
        throw err
      },
    })
    const logger = winston.createLogger({ level: 'debug', format: winston.format.combine(winston.format.timestamp(), winston.format.json()), transports: [transport] })
    for (let i = 0; i < entries; i++) logger.log(i % 5 === 0 ? 'error' : 'info', `order ${i} é ✓`, { order: i })
    await transport.flush()
    const events = await waitForEvents<LokiEvent>(s.url, 'app-logs', entries)
    expect(events).toHaveLength(entries)
    const seen = new Set<number>()
    for (const e of events) {
      const m = /^order (\d+) é ✓ /.exec(e.body.line)
      expect(m).not.toBeNull()
      const i = Number(m![1])
      expect(seen.has(i)).toBe(false)
      seen.add(i)
      const level = i % 5 === 0 ? 'error' : 'info'
      expect(e.body.labels).toEqual({ level, service_name: 'checkout', env: 'test' })
      expect(e.routingKey).toBe(`checkout.${level}`)
      expect(JSON.parse(e.body.line.slice(m![0].length))).toMatchObject({ order: i })
      // winston's own timestamp, in milliseconds, as nanoseconds.
      expect(e.body.timestamp).toMatch(/^\d{13}000000$/)
      expect(Number(e.body.timestamp.slice(0, -6))).toBeGreaterThanOrEqual(started)
    }
    expect(seen.size).toBe(entries)
    // The default routing key puts errors where the pipeline's `*.error` binding wants them.
    expect(await readAll(s.url, 'errors')).toHaveLength(entries / 5)
    await transport.close()
  })

  it('pino-loki (JSON): every record once, labels and structured metadata intact', async () => {
    const s = await startDoors()
    const stream = await pinoLoki({ host: s.url, labels: { service_name: 'payments', env: 'test' }, batching: { interval: 0.05, maxBufferSize: 10_000 }, silenceErrors: false })
    const log = pino({ base: { hostname: 'box1' } }, stream)
    for (let i = 0; i < entries; i++) {
      const meta = { traceId: `t${i}`, user: `u${i % 7}` }
      if (i % 5 === 0) log.error({ meta, n: i }, `failed ${i}`)
      else log.info({ meta, n: i }, `paid ${i}`)
    }
    const events = await waitForEvents<LokiEvent>(s.url, 'app-logs', entries)
    stream.end()
    expect(events).toHaveLength(entries)
    const seen = new Set<number>()
    for (const e of events) {
      const line = JSON.parse(e.body.line) as { n: number; msg: string; time: number }
      const i = line.n
      expect(seen.has(i)).toBe(false)
      seen.add(i)
      const level = i % 5 === 0 ? 'error' : 'info'
      expect(line.msg).toBe(i % 5 === 0 ? `failed ${i}` : `paid ${i}`)
      expect(e.body.labels).toEqual({ level, hostname: 'box1', service_name: 'payments', env: 'test' })
      expect(e.body.structuredMetadata).toEqual({ traceId: `t${i}`, user: `u${i % 7}` })
      expect(e.body.timestamp).toBe(String(BigInt(line.time) * 1_000_000n))
      expect(e.routingKey).toBe(`payments.${level}`)
    }
    expect(seen.size).toBe(entries)
  })
})

const push = (url: string, body: string | Buffer | Uint8Array, type = 'application/json', headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${url}/loki/api/v1/push`, { method: 'POST', headers: { 'content-type': type, ...headers }, body })

describe('Loki door: the wire', () => {
  it('maps JSON and protobuf entries the same way, answers 204, takes gzip JSON', async () => {
    const s = await startDoors()
    const json = { streams: [{ stream: { service_name: 'api', level: 'warn', 'k8s.pod': 'p-1' }, values: [['1700000000123456789', 'slow request', { trace_id: 'abc' }], ['1700000000123456790', 'second']] }] }
    const res = await push(s.url, JSON.stringify(json))
    expect(res.status).toBe(204)
    expect(await res.text()).toBe('')
    const t = lokiTypes().pushRequest
    const proto = t.encode(
      t.fromObject({
        streams: [
          {
            labels: '{service_name="api", level="warn", "k8s.pod"="p-1"}',
            entries: [
              { timestamp: { seconds: 1700000000, nanos: 123456789 }, line: 'slow request', structuredMetadata: [{ name: 'trace_id', value: 'abc' }] },
              { timestamp: { seconds: 1700000000, nanos: 123456790 }, line: 'second' },
            ],
          },
        ],
      }),
    ).finish()
    expect((await push(s.url, snappy.compress(proto), 'application/x-protobuf')).status).toBe(204)
    expect((await push(s.url, gzipSync(JSON.stringify(json)), 'application/json', { 'content-encoding': 'gzip' })).status).toBe(204)
    const stored = await readAll<LokiEvent>(s.url, 'app-logs')
    const first = { labels: { service_name: 'api', level: 'warn', 'k8s.pod': 'p-1' }, timestamp: '1700000000123456789', line: 'slow request', structuredMetadata: { trace_id: 'abc' } }
    const second = { labels: { service_name: 'api', level: 'warn', 'k8s.pod': 'p-1' }, timestamp: '1700000000123456790', line: 'second' }
    expect(stored.map((e) => [e.routingKey, e.body])).toEqual([0, 1, 2].flatMap(() => [
      ['api.warn', first],
      ['api.warn', second],
    ]))
  })

  it('bad data is a 400 and goes to ingest-errors; an entry the publish path refuses is named in a 400 while the others are stored', async () => {
    const s = await startDoors({ server: '  limits: { maxEventSize: 1kb }' })
    for (const [body, type] of [
      ['{"streams": [', 'application/json'],
      [JSON.stringify({ streams: [{ stream: { a: 1 }, values: [] }] }), 'application/json'],
      [JSON.stringify({ streams: [{ stream: {}, values: [[1, 2]] }] }), 'application/json'],
      ['not snappy at all', 'application/x-protobuf'],
    ] as const) {
      const res = await push(s.url, body, type)
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_request')
    }
    expect((await waitForEvents<{ listener: string }>(s.url, 'ingest-errors', 4)).map((e) => e.body.listener)).toEqual(['loki', 'loki', 'loki', 'loki'])

    const res = await push(s.url, JSON.stringify({ streams: [{ stream: { service_name: 'x', level: 'info' }, values: [['1', 'small'], ['2', 'y'.repeat(2048)], ['3', 'small too']] }] }))
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: { message: string; details: Record<string, unknown> } }
    expect(body.error.message).toMatch(/^1 of 3 entries were not stored/)
    expect(body.error.details).toEqual({ refused: 1, stored: 2 })
    expect((await readAll<LokiEvent>(s.url, 'app-logs')).map((e) => e.body.line)).toEqual(['small', 'small too'])
    expect(await waitForEvents(s.url, 'ingest-errors', 5)).toHaveLength(5)
  })

  it('a rate limit is 429 with Retry-After, as Loki answers; a door that is off is 404', async () => {
    const s = await startDoors({ pipeline: `${testPipeline}\nrateLimits:\n  - { match: { listener: http }, events: 1/s, burst: 1 }\n` })
    const one = JSON.stringify({ streams: [{ stream: { service_name: 'x' }, values: [['1', 'a'], ['2', 'b']] }] })
    expect((await push(s.url, one)).status).toBe(204)
    const refused = await push(s.url, one)
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    const off = await startTestServer()
    expect((await push(off.url, one)).status).toBe(404)
  })

  it('reads label sets as the protobuf writes them', () => {
    expect(parseLabels('{}')).toEqual({})
    expect(parseLabels('{level="info",job="api"}')).toEqual({ level: 'info', job: 'api' })
    expect(parseLabels(' { a = "x\\"y\\\\z\\n" , "dotted.name"="v", __proto__="p" } ')).toEqual(Object.fromEntries([['a', 'x"y\\z\n'], ['dotted.name', 'v'], ['__proto__', 'p']]))
    expect(() => parseLabels('level="info"')).toThrow(/a label set must be written/)
    expect(() => parseLabels('{level=info}')).toThrow(/a quoted value was expected/)
    expect(() => parseLabels('{level="info}')).toThrow(/unterminated/)
  })
})
