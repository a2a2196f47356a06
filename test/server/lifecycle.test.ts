import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import { Writable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createLogger } from '../../src/logger.js'
import { startServer, type SluiceServer } from '../../src/server.js'
import { call, fetchEvents, type WireDelivery } from '../helpers/consume.js'
import { groupStats, publish, waitFor } from '../helpers/groups.js'
import { readStream, testConfig, type ListenerYaml } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs, ackTimeout: 5m }
`

const ev = (i: number): Record<string, unknown> => ({ service: 'api', level: 'info', i })

/** Log lines as objects, from a debug-level logger, to read the parts' open and close order. */
function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: createLogger('debug', sink), lines }
}

const partsSaying = (lines: ReadonlyArray<Record<string, unknown>>, msg: string): string[] => lines.filter((l) => l.msg === msg).map((l) => String(l.part))

/** Starts a server; one that started is stopped when the test ends. */
async function start(dataDir: string, server: string, doors: ListenerYaml = {}, logger = createLogger('silent')): Promise<SluiceServer> {
  const s = await startServer(testConfig(dataDir, pipeline, server, doors), logger)
  onTestFinished(() => s.stop())
  return s
}

function closeTcp(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}

/** A TCP port held by someone else until the test ends. */
async function takenTcpPort(): Promise<number> {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => closeTcp(blocker))
  return (blocker.address() as { port: number }).port
}

/** A TCP port free right now (nobody else on this machine is asked to take it). */
async function freeTcpPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await closeTcp(probe)
  return port
}

/** A UDP port held by someone else until the test ends, whose TCP twin is free. */
async function takenUdpPort(): Promise<number> {
  for (;;) {
    const socket: UdpSocket = createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    const { port } = socket.address()
    const tcp = createServer()
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false))
      tcp.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (free) {
      await closeTcp(tcp)
      onTestFinished(() => new Promise<void>((resolve) => socket.close(() => resolve())))
      return port
    }
    socket.close()
  }
}

describe('server lifecycle', () => {
  it.each([
    ['AMQP', 'amqp'],
    ['syslog UDP', 'syslog'],
  ] as const)('a start that fails on a taken %s port says where, lets go of everything, and the next start on the same data dir works', async (door, key) => {
    const dataDir = await tempDir()
    const before = await start(dataDir, '')
    await publish(before.httpUrl, 'logs', [ev(0), ev(1)])
    await before.stop()

    const port = door === 'AMQP' ? await takenTcpPort() : await takenUdpPort()
    const httpPort = await freeTcpPort()
    const doors: ListenerYaml = door === 'AMQP' ? { amqp: `{ port: ${port} }` } : { syslog: `{ port: ${port}, exchange: logs }`, ndjson: '{ port: 0, exchange: logs }' }
    const { logger, lines } = capture()
    const failed = await start(dataDir, `  http: { port: ${httpPort} }`, doors, logger).then(
      () => undefined,
      (err: unknown) => err as Error,
    )
    expect(failed?.message).toMatch(new RegExp(`^cannot start: ${door} listener on 127\\.0\\.0\\.1:${port}: (listen|bind) EADDRINUSE`))
    // Whatever had opened closed, newest first, and every close went through.
    const opened = partsSaying(lines, 'part open')
    expect(opened[0]).toBe('http listener')
    expect(opened).toContain('meta store')
    expect(opened).not.toContain(door)
    if (key === 'syslog') expect(opened.slice(-2)).toEqual(['NDJSON', 'syslog TCP'])
    expect(partsSaying(lines, 'part closed')).toEqual([...opened].reverse())
    expect(partsSaying(lines, 'part failed to close')).toEqual([])

    // The same HTTP port, the same data dir (its store's lock), the other door's port: all free again.
    const after = await start(dataDir, `  http: { port: ${httpPort} }`, key === 'syslog' ? { ndjson: '{ port: 0, exchange: logs }' } : {})
    expect(after.httpUrl).toBe(`http://127.0.0.1:${httpPort}`)
    expect((await readStream(after.httpUrl, 'app-logs')).events.map((e) => e.body)).toEqual([ev(0), ev(1)])
    await publish(after.httpUrl, 'logs', [ev(2)])
    expect((await readStream(after.httpUrl, 'app-logs')).events.map((e) => e.body)).toEqual([ev(0), ev(1), ev(2)])
  })

  it('stop answers the long polls in flight, promptly, and what was delivered comes back after a restart', async () => {
    const dataDir = await tempDir()
    const first = await start(dataDir, '')
    const url = first.httpUrl
    await publish(url, 'logs', [ev(0), ev(1), ev(2)])
    const held = await fetchEvents(url, 'g', 'c1', 10)
    expect(held.map((d) => d.offset)).toEqual([0, 1, 2])

    // Nothing is left for c2 or for a reader past the end: both wait, up to 30 s.
    const read = fetch(`${url}/v1/streams/app-logs/events?from=latest&waitMs=30000`).then(async (r) => ({ status: r.status, body: (await r.json()) as { events: unknown[] } }))
    const poll = call<{ events: WireDelivery[] }>(url, 'POST', '/v1/groups/g/fetch', { consumer: 'c2', max: 10, waitMs: 30000 })
    // c2 is a member once its fetch has reached the group and waits there.
    await waitFor('c2 waiting in the group', async () => ((await groupStats(url, 'g')).members.some((m) => m.name === 'c2') ? true : undefined))

    const t0 = Date.now()
    await first.stop()
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(await poll).toEqual({ status: 200, body: { events: [] } })
    expect(await read).toMatchObject({ status: 200, body: { events: [] } })

    // The three c1 held, never acked, are delivered again after the restart; none is lost.
    const second = await start(dataDir, '')
    const again = await fetchEvents(second.httpUrl, 'g', 'c1', 10, 5000)
    expect(again.map((d) => [d.offset, d.redelivered, d.body])).toEqual([
      [0, true, ev(0)],
      [1, true, ev(1)],
      [2, true, ev(2)],
    ])
  })

  it('a stop closes the parts in the reverse of their opening order, the data routes first', async () => {
    const dataDir = await tempDir()
    const { logger, lines } = capture()
    const s = await start(dataDir, '', { ndjson: '{ port: 0, exchange: logs }', syslog: '{ port: 0, exchange: logs }', amqp: '{ port: 0 }' }, logger)
    await s.stop()
    const opened = partsSaying(lines, 'part open')
    expect(opened).toEqual(['http listener', 'meta store', 'streams', 'catalog', 'groups', 'background', 'alarms', 'ingest errors', 'NDJSON', 'syslog TCP', 'syslog UDP', 'AMQP virtual host', 'AMQP', 'metrics', 'http routes'])
    expect(partsSaying(lines, 'part closed')).toEqual([...opened].reverse())
    expect(lines.at(-1)?.msg).toBe('stopped')
    // A stop after a stop is the same stop.
    await s.stop()
  })
})
