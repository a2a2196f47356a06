import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { readStream, startTestServer, type TestServer } from '../helpers/server.js'

const ndjsonPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'ndjson')!.port

async function open(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return socket
}

async function waitForEvents(url: string, stream: string, n: number, timeoutMs = 5000): Promise<Awaited<ReturnType<typeof readStream>>['events']> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { events } = await readStream(url, stream)
    if (events.length >= n || Date.now() > deadline) return events
    await sleep(20)
  }
}

describe('NDJSON over TCP', () => {
  it('stores each line as an event, in order, routed by the exchange template; bad lines go to ingest-errors', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }' })
    const socket = await open(ndjsonPort(s))
    const lines = [
      JSON.stringify({ service: 'api', level: 'info', n: 1 }),
      '{"service": "api", "level": oops}',
      '',
      JSON.stringify({ service: 'db', level: 'error', n: 2 }),
    ]
    // Split mid-line across writes: the splitter must join them.
    const text = `${lines.join('\r\n')}\n${JSON.stringify({ service: 'api', level: 'info', n: 3 })}`
    socket.write(text.slice(0, 30))
    await sleep(20)
    socket.write(text.slice(30))
    socket.end() // the last line has no LF: it still counts
    const events = await waitForEvents(s.url, 'app-logs', 3)
    expect(events.map((e) => e.body)).toEqual([
      { service: 'api', level: 'info', n: 1 },
      { service: 'db', level: 'error', n: 2 },
      { service: 'api', level: 'info', n: 3 },
    ])
    expect(events.map((e) => e.routingKey)).toEqual(['api.info', 'db.error', 'api.info'])
    const errors = await waitForEvents(s.url, 'ingest-errors', 1)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.body).toMatchObject({ listener: 'ndjson', line: 2, raw: '{"service": "api", "level": oops}', reason: expect.stringContaining('invalid JSON') })
  })

  it('a line over maxLineSize is set aside and the connection goes on', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs, maxLineSize: 64kb }' })
    const socket = await open(ndjsonPort(s))
    socket.write(`${JSON.stringify({ service: 'a', level: 'info', n: 1 })}\n`)
    const big = `{"pad":"${'x'.repeat(10 * 1024 * 1024)}"}\n`
    socket.write(big)
    socket.write(`${JSON.stringify({ service: 'a', level: 'info', n: 2 })}\n`)
    const events = await waitForEvents(s.url, 'app-logs', 2, 10_000)
    expect(events.map((e) => (e.body as { n: number }).n)).toEqual([1, 2])
    const errors = await waitForEvents(s.url, 'ingest-errors', 1)
    expect(errors[0]!.body).toMatchObject({ line: 2, bytes: big.length - 1, truncated: true, reason: expect.stringContaining('maxLineSize') })
    socket.destroy()
  })

  it('binary garbage is set aside line by line and later lines still arrive', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }' })
    const socket = await open(ndjsonPort(s))
    socket.write(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x0a, 0xc3, 0x28, 0x0a]))
    socket.end(`${JSON.stringify({ service: 'a', level: 'info', ok: true })}\n`)
    const events = await waitForEvents(s.url, 'app-logs', 1)
    expect(events.map((e) => e.body)).toEqual([{ service: 'a', level: 'info', ok: true }])
    const errors = await waitForEvents(s.url, 'ingest-errors', 2)
    expect(errors.map((e) => (e.body as { line: number; rawEncoding?: string }).line)).toEqual([1, 2])
    expect((errors[0]!.body as { rawEncoding?: string }).rawEncoding).toBe('base64')
  })

  it('refuses connections past maxConnections and closes idle ones', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs, maxConnections: 2, idleTimeout: 1s }' })
    const port = ndjsonPort(s)
    const a = await open(port)
    const b = await open(port)
    const c = await open(port)
    const closed = (x: Socket) => new Promise<void>((resolve) => x.once('close', () => resolve()))
    await closed(c) // the third is dropped at accept
    const listener = s.server.listeners.find((l) => l.options.name === 'ndjson')!
    expect(listener.counters.connectionsRefused).toBe(1)
    const started = Date.now()
    await Promise.all([closed(a), closed(b)])
    expect(Date.now() - started).toBeGreaterThan(800)
    expect(listener.counters.idleClosed).toBe(2)
  })

  it('a slow disk holds the sender back instead of buffering without bound', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }', server: '  durability: { fsync: always }' })
    const socket = await open(ndjsonPort(s))
    const line = `${JSON.stringify({ service: 'a', level: 'info', pad: 'p'.repeat(200) })}\n`
    const chunk = line.repeat(1000)
    let total = 0
    for (let k = 0; k < 100; k++) {
      socket.write(chunk)
      total += 1000
    }
    await new Promise<void>((resolve) => socket.end(() => resolve()))
    const deadline = Date.now() + 20_000
    let n = 0
    while (Date.now() < deadline) {
      const r = await fetch(`${s.url}/v1/streams/app-logs`)
      n = ((await r.json()) as { events: number }).events
      if (n >= total) break
      await sleep(50)
    }
    expect(n).toBe(total)
  })
})

describe('large batches', () => {
  it('a TCP burst larger than a segment is stored whole, in order, across segments', async () => {
    const s = await startTestServer({
      ndjson: '{ port: 0, exchange: logs }',
      pipeline: `
exchanges: { logs: { type: topic, routingKey: "{service}.{level}" } }
streams: { app-logs: { segmentSize: 64kb } }
bindings: [ { exchange: logs, stream: app-logs, key: "#" } ]
`,
    })
    const socket = await open(ndjsonPort(s))
    const total = 5000
    socket.end(Array.from({ length: total }, (_, i) => `${JSON.stringify({ service: 'a', level: 'info', i, pad: 'p'.repeat(180) })}\n`).join(''))
    const deadline = Date.now() + 15_000
    let n = 0
    while (n < total && Date.now() < deadline) {
      await sleep(50)
      n = ((await (await fetch(`${s.url}/v1/streams/app-logs`)).json()) as { events: number }).events
    }
    expect(n).toBe(total)
    const stats = (await (await fetch(`${s.url}/v1/streams/app-logs`)).json()) as { segments: number }
    expect(stats.segments).toBeGreaterThan(10)
    expect(((await (await fetch(`${s.url}/v1/streams/ingest-errors`)).json()) as { events: number }).events).toBe(0)
  })
})
