import { connect as netConnect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { limitHits } from '../../src/limits.js'
import { nestedDeeperThan } from '../../src/streams/validate.js'
import { connect, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'
import { readStream, startTestServer, type TestServer } from '../helpers/server.js'

// server.limits.maxEventDepth is one rule in the publish path (streams/validate.ts), so every
// door refuses the same events: HTTP with 400 bad_event (tested in http/limits.test.ts), the
// stream doors by setting the event aside in ingest-errors, AMQP with basic.nack.

/** `levels` nested arrays around 1: `[[1]]` is 2 levels. */
const nested = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`

async function waitForEvents(url: string, stream: string, n: number): Promise<Awaited<ReturnType<typeof readStream>>['events']> {
  let events: Awaited<ReturnType<typeof readStream>>['events'] = []
  await until(async () => (events = (await readStream(url, stream)).events).length >= n, 5000, `${n} events in ${stream}`)
  return events
}

function sendLines(s: TestServer, lines: readonly string[]): Promise<void> {
  const port = s.server.listeners.find((l) => l.options.name === 'ndjson')!.port
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.end(`${lines.join('\n')}\n`))
    socket.on('error', reject)
    socket.on('close', () => resolve())
  })
}

describe('nestedDeeperThan', () => {
  it('counts a scalar as 0 levels and {} as 1, and stops walking at the limit', () => {
    expect(nestedDeeperThan(1, 0)).toBe(false)
    expect(nestedDeeperThan({}, 0)).toBe(true)
    expect(nestedDeeperThan({}, 1)).toBe(false)
    expect(nestedDeeperThan({ a: [1, { b: 2 }] }, 3)).toBe(false)
    expect(nestedDeeperThan({ a: [1, { b: 2 }] }, 2)).toBe(true)
    // A million levels: the walk goes no deeper than the limit, so the stack is safe.
    expect(nestedDeeperThan(JSON.parse(nested(1_000_000)), 64)).toBe(true)
  })
})

describe('server.limits.maxEventDepth on the stream doors', () => {
  it('NDJSON: a line nested deeper goes to ingest-errors naming the limit; the lines around it are stored', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }', server: '  limits: { maxEventDepth: 4 }' })
    const before = limitHits.get('limits.maxEventDepth') ?? 0
    const ok = { service: 'api', level: 'info', a: [[[1]]] } // 4 levels
    const deep = { service: 'api', level: 'info', a: [[[[1]]]] } // 5 levels
    await sendLines(s, [JSON.stringify({ ...ok, n: 1 }), JSON.stringify(deep), `{"service":"api","level":"info","a":${nested(100_000)}}`, JSON.stringify({ ...ok, n: 2 })])
    const errors = await waitForEvents(s.url, 'ingest-errors', 2)
    expect(errors.map((e) => e.body)).toEqual([
      expect.objectContaining({ listener: 'ndjson', reason: expect.stringMatching(/^bad_event: event \d+: nested more than 4 levels deep, over server\.limits\.maxEventDepth/) }),
      expect.objectContaining({ listener: 'ndjson', reason: expect.stringContaining('over server.limits.maxEventDepth') }),
    ])
    expect((errors[0]!.body as { raw: string }).raw).toBe(JSON.stringify(deep))
    const stored = await waitForEvents(s.url, 'app-logs', 2)
    expect(stored.map((e) => e.body)).toEqual([
      { ...ok, n: 1 },
      { ...ok, n: 2 },
    ])
    expect((limitHits.get('limits.maxEventDepth') ?? 0) - before).toBe(2)
  })
})

describe('server.limits.maxEventDepth on the AMQP door', () => {
  it('a JSON body or a header nested deeper is nacked and not stored; an opaque body is bytes, not nesting', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, server: '  limits: { maxEventDepth: 4 }' })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('deep')
    const outcome = (body: string, options: Record<string, unknown>): Promise<string> =>
      new Promise((resolve) => void ch.sendToQueue('deep', Buffer.from(body), options, (err: unknown) => resolve(err === null || err === undefined ? 'ack' : 'nack')))
    const json = { contentType: 'application/json' }
    expect(await outcome(`{"a":${nested(3)}}`, json)).toBe('ack')
    expect(await outcome(`{"a":${nested(4)}}`, json)).toBe('nack')
    expect(await outcome(nested(50_000), json)).toBe('nack')
    // Not declared JSON: stored as the bytes it is, whatever they look like.
    expect(await outcome(`{"a":${nested(4)}}`, {})).toBe('ack')
    // Header values nest as deep as a body may; the headers table itself is not a level.
    expect(await outcome('h-ok', { headers: { h: { a: { b: { c: { d: 1 } } } } } })).toBe('ack')
    expect(await outcome('h-deep', { headers: { h: { a: { b: { c: { d: { e: 1 } } } } } } })).toBe('nack')
    expect(await outcome('h-array', { headers: { h: [[[[[1]]]]] } })).toBe('nack')
    const stored = (await readStream(s.url, 'deep')).events
    expect(stored.map((e) => e.body)).toEqual([{ a: [[[1]]] }, `{"a":${nested(4)}}`, 'h-ok'])
  })
})
