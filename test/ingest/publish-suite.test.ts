import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { allEvents, tcpPort, udpPort } from '../helpers/syslog.js'
import { postNdjson, startTestServer, type TestServer } from '../helpers/server.js'

// Every door publishes through the one path, so its event rules hold on each: here
// server.limits.maxEventSize, which the stream doors once let through unchecked.
const pipeline = `
exchanges:
  logs: { type: topic, dedup: id }
streams: { all: {} }
bindings:
  - { exchange: logs, stream: all, key: "#" }
`
const limits = '  limits: { maxEventSize: 2kb }'
const big = 'x'.repeat(4000)

type Door = 'http' | 'ndjson' | 'syslog-tcp' | 'syslog-udp'

/** Sends three messages through a door: small, too big, small. */
async function sendThree(s: TestServer, door: Door): Promise<number | undefined> {
  const bodies = [
    { service: 'a', level: 'info', n: 1, id: `${door}-1` },
    { service: 'a', level: 'info', n: 2, pad: big, id: `${door}-2` },
    { service: 'a', level: 'info', n: 3, id: `${door}-3` },
  ]
  if (door === 'http') return (await postNdjson(s.url, 'logs', bodies)).status
  if (door === 'ndjson') {
    const port = s.server.listeners.find((l) => l.options.name === 'ndjson')!.port
    const socket = connect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve) => socket.end(bodies.map((b) => JSON.stringify(b)).join('\n') + '\n', () => resolve()))
    return undefined
  }
  const lines = bodies.map((b) => `<14>1 2026-12-02T10:00:00Z host app - - - ${JSON.stringify(b)}`)
  if (door === 'syslog-tcp') {
    const socket = connect({ host: '127.0.0.1', port: tcpPort(s) })
    await new Promise<void>((resolve) => socket.end(lines.join('\n') + '\n', () => resolve()))
    return undefined
  }
  const udp = createSocket('udp4')
  for (const l of lines) await new Promise<void>((resolve, reject) => udp.send(l, udpPort(s), '127.0.0.1', (err) => (err ? reject(err) : resolve())))
  udp.close()
  return undefined
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined || Date.now() > deadline) return v
    await sleep(25)
  }
}

describe('one publish suite, every door', () => {
  it.each<Door>(['http', 'ndjson', 'syslog-tcp', 'syslog-udp'])('%s: an event over maxEventSize is refused, its neighbours are not', async (door) => {
    const s = await startTestServer({
      pipeline,
      server: limits,
      ndjson: '{ port: 0, exchange: logs }',
      syslog: '{ port: 0, udp: true, exchange: logs, routingKey: "syslog.{severity}" }',
    })
    const status = await sendThree(s, door)
    if (door === 'http') {
      // HTTP requests are all-or-nothing: the whole request is refused, nothing is stored.
      expect(status).toBe(413)
      await sleep(100)
      expect(await allEvents(s.url, 'all')).toEqual([])
      return
    }
    const stored = await until(async () => {
      const events = await allEvents(s.url, 'all')
      return events.length >= 2 ? events : undefined
    })
    const ns = stored!.map((e) => (door === 'ndjson' ? e.body : JSON.parse(String(e.body.message)))).map((b: { n: number }) => b.n)
    expect(ns).toEqual([1, 3])
    const refused = await until(async () => {
      const events = await allEvents(s.url, 'ingest-errors')
      return events.length >= 1 ? events : undefined
    })
    expect(refused!.map((e) => String(e.body.reason).split(':')[0])).toEqual(['event_too_large'])
  })
})
