import { connect, type Socket } from 'node:net'
import { gzipSync } from 'node:zlib'
import { FluentClient, EventTime as OrgEventTime } from '@fluent-org/logger'
import { decodeMulti, encode, ExtData } from '@msgpack/msgpack'
import fluentLogger from 'fluent-logger'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { startTestServer, type TestServer } from '../helpers/server.js'
import { allEvents, waitCount } from '../helpers/syslog.js'

const pipeline = `
exchanges:
  logs: { type: topic }
streams: { forward: {} }
bindings:
  - { exchange: logs, stream: forward, key: "#" }
`

const forwardPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'forward')!.port

async function startForward(options = '', server = ''): Promise<TestServer> {
  return startTestServer({ pipeline, server: `  forward: { port: 0, exchange: logs${options} }\n${server}` })
}

interface ForwardBody {
  tag: string
  time: number
  record: { i: number; msg: string; nested?: { ok: boolean; list: number[] } }
}

/** Records 0..n-1 each stored exactly once under `tag`, their fields intact. */
function checkArrived(events: ReadonlyArray<{ body: Record<string, unknown>; routingKey: string }>, n: number, tag: string): ForwardBody[] {
  const bodies = events.map((e) => e.body as unknown as ForwardBody)
  const seen = new Map<number, number>()
  for (const [k, b] of bodies.entries()) {
    seen.set(b.record.i, (seen.get(b.record.i) ?? 0) + 1)
    expect(events[k]!.routingKey).toBe(tag)
    expect(b.tag).toBe(tag)
    expect(b.record).toEqual(record(b.record.i))
    expect(typeof b.time).toBe('number')
  }
  expect(seen.size).toBe(n)
  expect([...seen.values()].every((c) => c === 1)).toBe(true)
  return bodies
}

const record = (i: number): ForwardBody['record'] => ({ i, msg: `record ${i} é ✓`, ...(i % 3 === 0 ? { nested: { ok: true, list: [i, i + 1] } } : {}) })

/** A raw Forward client: one socket, msgpack out, acks in. */
class RawClient {
  readonly socket: Socket
  readonly received: unknown[] = []
  readonly closed: Promise<void>
  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port })
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()))
    // Answers are small: each arrives whole, alone or with others, in these tests.
    this.socket.on('data', (d: Buffer) => {
      for (const m of decodeMulti(d)) this.received.push(m)
    })
  }

  async opened(): Promise<this> {
    await new Promise<void>((r) => this.socket.once('connect', () => r()))
    return this
  }

  send(message: unknown): void {
    this.socket.write(encode(message))
  }

  async waitFor(n: number, ms = 5000): Promise<unknown[]> {
    const deadline = Date.now() + ms
    while (this.received.length < n && Date.now() < deadline) await sleep(10)
    return this.received
  }
}

const eventTime = (sec: number, nsec: number): ExtData => {
  const data = Buffer.alloc(8)
  data.writeUInt32BE(sec, 0)
  data.writeUInt32BE(nsec, 4)
  return new ExtData(0, data)
}

describe('Forward door: fluent-logger', () => {
  it('Message mode with requireAckResponse: 10,000 records from 10 senders, each acked once durable, each stored once', async () => {
    const s = await startForward()
    // fluent-logger waits for each ack before it sends the next record: ten senders, as ten
    // application instances would be, keep the group commit busy.
    const senders = Array.from({ length: 10 }, () => fluentLogger.createFluentSender<ForwardBody['record']>('app', { host: '127.0.0.1', port: forwardPort(s), requireAckResponse: true, ackResponseTimeout: 10_000 }))
    const n = 10_000
    let acked = 0
    const stored = async (): Promise<number> => ((await (await fetch(`${s.url}/v1/streams/forward`)).json()) as { events: number }).events
    // Every ack means a stored record: the stream holds at least as many records as were acked.
    const checks: Array<Promise<void>> = []
    await new Promise<void>((resolve, reject) => {
      for (let i = 0; i < n; i++) {
        senders[i % senders.length]!.emit('web', record(i), (err) => {
          if (err !== undefined && err !== null) return reject(err)
          acked++
          if (acked % 500 === 0) {
            const atLeast = acked
            checks.push(stored().then((c) => expect(c).toBeGreaterThanOrEqual(atLeast)))
          }
          if (acked === n) resolve()
        })
      }
    })
    await Promise.all(checks)
    for (const sender of senders) sender.end('web', record(-1), () => undefined)
    expect(acked).toBe(n)
    const events = (await allEvents(s.url, 'forward')).filter((e) => (e.body as unknown as ForwardBody).record.i >= 0)
    checkArrived(events, n, 'app.web')
  }, 60_000)

  it('CompressedPackedForward with acks and EventTime: 2,000 records, each stored once, times to the microsecond', async () => {
    const s = await startForward()
    const sender = fluentLogger.createFluentSender<ForwardBody['record']>('app', { host: '127.0.0.1', port: forwardPort(s), eventMode: 'CompressedPackedForward', requireAckResponse: true, milliseconds: 1, flushInterval: 5 })
    const n = 2000
    const at = fluentLogger.EventTime as unknown as { fromTimestamp(ms: number): unknown }
    await Promise.all(
      Array.from({ length: n }, (_, i) => new Promise<void>((resolve, reject) => sender.emit('jobs', record(i), at.fromTimestamp(1_700_000_000_123 + i) as never, (err) => (err === undefined || err === null ? resolve() : reject(err))))),
    )
    const bodies = checkArrived(await allEvents(s.url, 'forward'), n, 'app.jobs')
    for (const b of bodies) expect(b.time).toBeCloseTo((1_700_000_000_123 + b.record.i) / 1000, 6)
  }, 60_000)

  it("the shared-key handshake: the right key stores, a wrong one is refused before any event", async () => {
    const s = await startForward(', sharedKey: s3cret, selfHostname: sluice.test')
    const good = fluentLogger.createFluentSender<ForwardBody['record']>('sec', { host: '127.0.0.1', port: forwardPort(s), requireAckResponse: true, security: { clientHostname: 'client.test', sharedKey: 's3cret' }, internalLogger: { info: () => undefined, error: () => undefined } })
    await Promise.all([0, 1, 2].map((i) => new Promise<void>((resolve, reject) => good.emit('ok', record(i), (err) => (err === undefined || err === null ? resolve() : reject(err))))))
    checkArrived(await allEvents(s.url, 'forward'), 3, 'sec.ok')

    const raw = await new RawClient(forwardPort(s)).opened()
    const [helo] = (await raw.waitFor(1)) as [[string, { nonce: Uint8Array; auth: string; keepalive: boolean }]]
    expect(helo[0]).toBe('HELO')
    expect(helo[1].nonce).toHaveLength(16)
    raw.send(['PING', 'client.test', 'salt', 'f'.repeat(128), '', ''])
    const [, pong] = (await raw.waitFor(2)) as [unknown, unknown[]]
    expect(pong).toEqual(['PONG', false, 'shared_key mismatch', '', ''])
    await raw.closed
    // And events sent without a handshake close the connection unread.
    const bold = await new RawClient(forwardPort(s)).opened()
    bold.send(['sec.bad', 1_700_000_000, { i: 99 }, { chunk: 'c1' }])
    await bold.closed
    expect(await waitCount(s.url, 'forward', 3)).toBe(3)
  })
})

describe('Forward door: @fluent-org/logger', () => {
  for (const eventMode of ['Message', 'Forward', 'PackedForward', 'CompressedPackedForward'] as const) {
    it(`${eventMode} with acks: 1,000 records, each stored once`, async () => {
      const s = await startForward()
      const client = new FluentClient('org', { socket: { host: '127.0.0.1', port: forwardPort(s) }, eventMode, ack: { ackTimeout: 10_000 }, milliseconds: true })
      const n = 1000
      await Promise.all(Array.from({ length: n }, (_, i) => client.emit('svc', record(i), OrgEventTime.fromTimestamp(1_700_000_000_000 + i))))
      await client.disconnect()
      const bodies = checkArrived(await allEvents(s.url, 'forward'), n, 'org.svc')
      for (const b of bodies) expect(b.time).toBeCloseTo((1_700_000_000_000 + b.record.i) / 1000, 6)
    })
  }

  it('the shared-key handshake', async () => {
    const s = await startForward(', sharedKey: s3cret, selfHostname: sluice.test')
    const client = new FluentClient('org', { socket: { host: '127.0.0.1', port: forwardPort(s) }, security: { clientHostname: 'client.test', sharedKey: 's3cret' }, ack: {} })
    await Promise.all([0, 1].map((i) => client.emit('sec', record(i))))
    await client.disconnect()
    checkArrived(await allEvents(s.url, 'forward'), 2, 'org.sec')
  })
})

describe('Forward door: the wire', () => {
  it('every mode by hand, integer and EventTime times, bin values, acks in order after the events are stored', async () => {
    const s = await startForward()
    const c = await new RawClient(forwardPort(s)).opened()
    const entry = (i: number): unknown[] => [i % 2 === 0 ? 1_700_000_000 + i : eventTime(1_700_000_000 + i, 500_000_000), record(i)]
    const packed = Buffer.concat([2, 3].map((i) => encode(entry(i))))
    c.send(['m.message', ...entry(0), { chunk: 'a' }])
    c.send(['m.forward', [entry(1)], { chunk: 'b' }])
    c.send(['m.packed', packed, { chunk: 'c', size: 2 }])
    c.send(['m.gzip', gzipSync(Buffer.concat([4, 5].map((i) => encode(entry(i))))), { chunk: 'd', compressed: 'gzip' }])
    c.send(['m.nochunk', 1_700_000_006, { ...record(6), raw: new Uint8Array([0x68, 0x69]), bytes: new Uint8Array([0xff, 0x00]) }])
    expect(await c.waitFor(4)).toEqual([{ ack: 'a' }, { ack: 'b' }, { ack: 'c' }, { ack: 'd' }])
    const events = await allEvents(s.url, 'forward')
    expect(events.map((e) => e.routingKey)).toEqual(['m.message', 'm.forward', 'm.packed', 'm.packed', 'm.gzip', 'm.gzip', 'm.nochunk'])
    expect(events.map((e) => (e.body as unknown as ForwardBody).time)).toEqual([1_700_000_000, 1_700_000_001.5, 1_700_000_002, 1_700_000_003.5, 1_700_000_004, 1_700_000_005.5, 1_700_000_006])
    expect(events[6]!.body).toEqual({ tag: 'm.nochunk', time: 1_700_000_006, record: { ...record(6), raw: 'hi', bytes: '/wA=' } })
  })

  it('frames split anywhere, even byte by byte, give the same events', async () => {
    const s = await startForward()
    const c = await new RawClient(forwardPort(s)).opened()
    const bytes = Buffer.concat([0, 1, 2].map((i) => Buffer.from(encode(['split', 1_700_000_000, record(i), { chunk: `k${i}` }]))))
    for (let i = 0; i < bytes.length; i++) {
      c.socket.write(bytes.subarray(i, i + 1))
      if (i % 8 === 0) await sleep(0)
    }
    expect(await c.waitFor(3)).toEqual([{ ack: 'k0' }, { ack: 'k1' }, { ack: 'k2' }])
    expect((await allEvents(s.url, 'forward')).map((e) => (e.body as unknown as ForwardBody).record)).toEqual([0, 1, 2].map(record))
  })

  it('bad messages go to ingest-errors and are acked; the messages around them are stored', async () => {
    const s = await startForward(', maxEntriesPerFrame: 2')
    const c = await new RawClient(forwardPort(s)).opened()
    c.send(['ok', 1, record(0), { chunk: '1' }])
    c.send({ not: 'an array' })
    c.send(['ok', 'not a time', record(99), { chunk: '2' }])
    c.send(['ok', [[1, record(97)], [1, record(98)], [1, record(99)]], { chunk: '3' }]) // over maxEntriesPerFrame
    c.send(['ok', 1, 'not a map', { chunk: '4' }])
    c.send(['ok', new Uint8Array([0xc1]), { chunk: '5' }]) // a packed stream that is not msgpack
    c.send(['ok', 2, record(1), { chunk: '6' }])
    expect(await c.waitFor(6)).toEqual(['1', '2', '3', '4', '5', '6'].map((ack) => ({ ack })))
    expect((await allEvents(s.url, 'forward')).map((e) => (e.body as unknown as ForwardBody).record.i)).toEqual([0, 1])
    expect(await waitCount(s.url, 'ingest-errors', 5)).toBe(5)
    const reasons = (await allEvents(s.url, 'ingest-errors')).map((e) => (e.body as { reason: string }).reason)
    expect(reasons).toEqual([
      expect.stringContaining('expected an array'),
      expect.stringContaining('neither a number nor an EventTime'),
      expect.stringContaining('server.forward.maxEntriesPerFrame'),
      expect.stringContaining('record is not a map'),
      expect.stringContaining('not msgpack entries'),
    ])
  })

  it('a message over maxFrameSize, or bytes that are not msgpack, close the connection after what came before is stored', async () => {
    const s = await startForward(', maxFrameSize: 1kb')
    const c = await new RawClient(forwardPort(s)).opened()
    c.send(['ok', 1, record(0), { chunk: '1' }])
    // Declares 100 kB: refused from its header, before the bytes are buffered.
    c.socket.write(Buffer.concat([Buffer.from([0x93, 0xa2, 0x6f, 0x6b, 0xc6, 0x00, 0x01, 0x86, 0xa0])]))
    await c.closed
    expect(c.received).toEqual([{ ack: '1' }])
    const d = await new RawClient(forwardPort(s)).opened()
    d.send(['ok', 2, record(1)])
    d.socket.write(Buffer.from([0xc1, 0x00]))
    await d.closed
    expect((await allEvents(s.url, 'forward')).map((e) => (e.body as unknown as ForwardBody).record.i)).toEqual([0, 1])
    expect(await waitCount(s.url, 'ingest-errors', 2)).toBe(2)
    const reasons = (await allEvents(s.url, 'ingest-errors')).map((e) => (e.body as { reason: string }).reason)
    expect(reasons).toEqual([expect.stringContaining('server.forward.maxFrameSize'), expect.stringContaining('byte 0xc1 is not msgpack')])
  })
})
