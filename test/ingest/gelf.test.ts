import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { deflateSync, gzipSync } from 'node:zlib'
import gelfPro from 'gelf-pro'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { startTestServer, type TestServer } from '../helpers/server.js'
import { allEvents, waitCount } from '../helpers/syslog.js'

const pipeline = `
exchanges:
  logs: { type: topic }
streams: { gelf: {} }
bindings:
  - { exchange: logs, stream: gelf, key: "#" }
`

const tcpPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'gelf')!.port
const udpPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'gelf-udp')!.port

async function startGelf(options = ''): Promise<TestServer> {
  return startTestServer({ pipeline, server: `  gelf: { port: 0, exchange: logs${options} }` })
}

/** A gelf-pro client of its own (the module is a singleton; Object.create gives a fresh config). */
function gelfClient(adapterName: 'udp' | 'tcp', port: number): typeof gelfPro {
  const client = Object.create(gelfPro) as typeof gelfPro
  client.setConfig({ adapterName, adapterOptions: { host: '127.0.0.1', port, ...(adapterName === 'udp' ? { protocol: 'udp4' } : {}) }, fields: { facility: 'billing', service: 'api' } })
  return client
}

const send = (client: typeof gelfPro, message: string, level: number, extra: object): Promise<void> =>
  new Promise((resolve, reject) => client.message(message, level, extra, (err) => (err === undefined || err === null ? resolve() : reject(err))))

/** Random hex: zlib cannot shrink it below half, so 8 kB of it needs several 1,388-byte chunks. */
const incompressible = (i: number, bytes: number): string => `${i}:${randomBytes(bytes / 2).toString('hex')}`

async function metric(s: TestServer, line: RegExp): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text()
  const m = line.exec(text)
  return m === null ? 0 : Number(m[1])
}

async function udpSend(port: number, datagrams: readonly Buffer[]): Promise<void> {
  const socket = createSocket('udp4')
  for (const d of datagrams) await new Promise<void>((resolve, reject) => socket.send(d, port, '127.0.0.1', (err) => (err === null ? resolve() : reject(err))))
  socket.close()
}

const chunk = (id: Buffer, seq: number, count: number, data: Buffer | string): Buffer => Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([seq, count]), Buffer.from(data)])

interface GelfBody {
  version: string
  host: string
  short_message: string
  full_message?: string
  timestamp: number
  level: number
  _facility: string
  _service: string
  _i: number
  _payload?: string
}

/** Every message i in [0, n) arrived exactly once, its fields as gelf-pro sent them. */
function checkArrived(events: ReadonlyArray<{ body: Record<string, unknown>; routingKey: string }>, n: number, payloadOf: (i: number) => string | undefined, fullOf = (i: number): string => `line one ${i}\nline two`): void {
  const seen = new Map<number, number>()
  for (const { body: raw, routingKey } of events) {
    const body = raw as unknown as GelfBody
    seen.set(body._i, (seen.get(body._i) ?? 0) + 1)
    const i = body._i
    expect(body.version).toBe('1.1')
    expect(body.short_message).toBe(`message ${i} é ✓`)
    expect(body.full_message).toBe(fullOf(i))
    expect(body.level).toBe(i % 8)
    expect(body._facility).toBe('billing')
    expect(body._service).toBe('api')
    expect(typeof body.timestamp).toBe('number')
    expect(Math.abs(body.timestamp * 1000 - Date.now())).toBeLessThan(120_000)
    expect(body._payload).toBe(payloadOf(i))
    expect(routingKey).toBe(`${body.host}.${i % 8}`)
  }
  expect(seen.size).toBe(n)
  expect([...seen.values()].every((c) => c === 1)).toBe(true)
}

describe('GELF door: gelf-pro', () => {
  it('UDP: 300 messages, a third large enough to be chunked, each stored once with its fields', async () => {
    const s = await startGelf()
    const client = gelfClient('udp', udpPort(s))
    const payloads = new Map<number, string>()
    const n = 300
    for (let i = 0; i < n; i++) {
      // gelf-pro adds the `_` to extras itself (and flattens nested objects with `_`).
      const extra: Record<string, unknown> = { i, full_message: `line one ${i}\nline two` }
      // About 8 kB of hex compresses to 4 kB or more: three chunks and over.
      if (i % 3 === 0) payloads.set(i, (extra.payload = incompressible(i, 8192)) as string)
      await send(client, `message ${i} é ✓`, i % 8, extra)
    }
    expect(await waitCount(s.url, 'gelf', n)).toBe(n)
    checkArrived(await allEvents(s.url, 'gelf'), n, (i) => payloads.get(i))
    expect(await metric(s, /sluice_ingest_events_total\{listener="gelf",exchange="logs"\} (\d+)/)).toBe(n)
    expect(await metric(s, /sluice_ingest_dropped_total\{listener="gelf-udp"\} (\d+)/)).toBe(0)
    expect(await waitCount(s.url, 'ingest-errors', 0)).toBe(0)
  })

  it('TCP: 200 messages, one connection each as gelf-pro sends them, some of 200 kB, each stored once', async () => {
    const s = await startGelf()
    const client = gelfClient('tcp', tcpPort(s))
    const full = new Map<number, string>()
    const n = 200
    for (let i = 0; i < n; i++) {
      // gelf-pro cuts `_` fields at 32 kB but sends full_message whole: the large frames carry it.
      full.set(i, i % 10 === 0 ? incompressible(i, 200_000) : `line one ${i}\nline two`)
      await send(client, `message ${i} é ✓`, i % 8, { i, full_message: full.get(i) })
    }
    expect(await waitCount(s.url, 'gelf', n)).toBe(n)
    checkArrived(await allEvents(s.url, 'gelf'), n, () => undefined, (i) => full.get(i)!)
  })
})

describe('GELF door: the wire', () => {
  it('UDP: zlib (graypy), gzip and plain datagrams, no chunk header; timestamp filled in when absent', async () => {
    const s = await startGelf(', routingKey: "{_app}"')
    const msg = (i: number, extra: object = {}): string => JSON.stringify({ version: '1.1', host: 'h', short_message: `m${i}`, timestamp: 1_700_000_000.25 + i, _app: `app${i}`, ...extra })
    const before = Date.now()
    await udpSend(udpPort(s), [deflateSync(msg(0)), gzipSync(msg(1)), Buffer.from(msg(2)), Buffer.from(JSON.stringify({ host: 'h', short_message: 'no time', _app: 'app3' }))])
    expect(await waitCount(s.url, 'gelf', 4)).toBe(4)
    const events = await allEvents(s.url, 'gelf')
    expect(events.map((e) => e.routingKey).sort()).toEqual(['app0', 'app1', 'app2', 'app3'])
    for (const e of events.filter((x) => x.routingKey !== 'app3')) expect(e.body).toEqual(JSON.parse(msg(Number(e.routingKey.slice(3)))))
    const noTime = events.find((e) => e.routingKey === 'app3')!.body as { timestamp: number }
    expect(noTime.timestamp * 1000).toBeGreaterThanOrEqual(before - 1)
    expect(noTime.timestamp * 1000).toBeLessThanOrEqual(Date.now() + 1)
  })

  it('TCP: frames split anywhere, even byte by byte, give the same events', async () => {
    const s = await startGelf()
    const frames = [0, 1, 2].map((i) => JSON.stringify({ version: '1.1', host: 'web', short_message: `m${i}`, timestamp: 1_700_000_000 + i / 1000, level: 6, _i: i }))
    const stream = Buffer.from(`${frames.join('\0')}\0`)
    const socket = connect({ host: '127.0.0.1', port: tcpPort(s) })
    await new Promise<void>((r) => socket.once('connect', () => r()))
    for (let i = 0; i < stream.length; i++) {
      socket.write(stream.subarray(i, i + 1))
      if (i % 16 === 0) await sleep(0)
    }
    socket.end()
    expect(await waitCount(s.url, 'gelf', 3)).toBe(3)
    expect((await allEvents(s.url, 'gelf')).map((e) => e.body)).toEqual(frames.map((f) => JSON.parse(f)))
  })

  it('TCP: garbage, non-GELF and oversized frames go to ingest-errors; the frames around them are stored', async () => {
    const s = await startGelf(', maxMessageSize: 1kb')
    const good = (i: number): string => JSON.stringify({ version: '1.1', host: 'web', short_message: `ok ${i}`, _i: i })
    const bad = ['not json', '[1,2]', JSON.stringify({ host: 'web' }), JSON.stringify({ short_message: 'x' }), JSON.stringify({ host: 'h', short_message: 'x', timestamp: 'soon' }), JSON.stringify({ host: 'h', short_message: 'x'.repeat(2000) })]
    const socket = connect({ host: '127.0.0.1', port: tcpPort(s) })
    await new Promise<void>((r) => socket.once('connect', () => r()))
    socket.end(`${good(0)}\0${bad.join(`\0${good(1)}\0`)}\0\n\0${good(2)}\0`)
    expect(await waitCount(s.url, 'ingest-errors', bad.length)).toBe(bad.length)
    expect(await waitCount(s.url, 'gelf', 7)).toBe(7)
    const stored = (await allEvents(s.url, 'gelf')).map((e) => (e.body as { _i: number })._i)
    expect(stored).toEqual([0, 1, 1, 1, 1, 1, 2])
    const errors = (await allEvents(s.url, 'ingest-errors')).map((e) => e.body as { listener: string; reason: string })
    expect(errors.every((e) => e.listener === 'gelf')).toBe(true)
    expect(errors.map((e) => e.reason)).toEqual([
      expect.stringContaining('invalid JSON'),
      expect.stringContaining('must be a JSON object'),
      expect.stringContaining('short_message must be a string'),
      expect.stringContaining('host must be a string'),
      expect.stringContaining('timestamp must be a number'),
      expect.stringContaining('server.gelf.maxMessageSize'),
    ])
  })

  it('UDP hostile chunks: bad counts, too many chunks, a timeout, a memory flood, a zip bomb and garbage lose nothing else', async () => {
    const s = await startGelf(', chunkTimeout: 100ms, maxReassemblySize: 64kb, maxChunks: 16, maxMessageSize: 64kb')
    const port = udpPort(s)
    const good = (i: number): Buffer => deflateSync(JSON.stringify({ version: '1.1', host: 'h', short_message: `ok ${i}`, _i: i }))
    const id = (): Buffer => randomBytes(8)
    const timedOut = id()
    // A valid two-chunk message around the garbage proves reassembly goes on.
    const twoId = id()
    const two = good(1)
    await udpSend(port, [
      good(0),
      chunk(twoId, 0, 2, two.subarray(0, 5)),
      Buffer.from('garbage that is not GELF'),
      chunk(id(), 0, 0, 'x'), // a count of 0
      chunk(id(), 0, 17, 'x'), // over maxChunks
      chunk(id(), 5, 3, 'x'), // numbered past its count
      chunk(timedOut, 0, 2, 'never finished'),
      deflateSync(Buffer.alloc(1024 * 1024, 0x20)), // 1 MB of spaces from 1 kB: over maxMessageSize
      chunk(twoId, 1, 2, two.subarray(5)),
    ])
    // Over the memory bound: 70 kB of the first chunks of 16-chunk messages.
    const flood = Array.from({ length: 70 }, () => chunk(id(), 0, 16, randomBytes(1000)))
    await udpSend(port, flood)
    await udpSend(port, [good(2)])
    expect(await waitCount(s.url, 'gelf', 3)).toBe(3)
    expect((await allEvents(s.url, 'gelf')).map((e) => (e.body as { _i: number })._i)).toEqual([0, 1, 2])
    expect(await waitCount(s.url, 'ingest-errors', 5)).toBe(5)
    const reasons = (await allEvents(s.url, 'ingest-errors')).map((e) => (e.body as { reason: string; listener: string }).reason)
    expect(reasons).toEqual([
      expect.stringContaining('invalid JSON'),
      expect.stringContaining('count of 0'),
      expect.stringContaining('server.gelf.maxChunks'),
      expect.stringContaining('numbered 5 of a message of 3'),
      expect.stringContaining('server.gelf.maxMessageSize'),
    ])
    // The incomplete ones (the timed-out one and the flood) are dropped and counted.
    const dropped = (): Promise<number> => metric(s, /sluice_ingest_dropped_total\{listener="gelf-udp"\} (\d+)/)
    const deadline = Date.now() + 5000
    while ((await dropped()) < 71 && Date.now() < deadline) await sleep(50)
    const overMemory = await metric(s, /sluice_limit_hits_total\{limit="gelf.maxReassemblySize"\} (\d+)/)
    const timeouts = await metric(s, /sluice_limit_hits_total\{limit="gelf.chunkTimeout"\} (\d+)/)
    expect(overMemory).toBeGreaterThan(0)
    expect(overMemory + timeouts).toBe(71)
    expect(await dropped()).toBe(71)
    expect(await metric(s, /sluice_ingest_parse_errors_total\{listener="gelf-udp"\} (\d+)/)).toBe(5)
  })
})
