import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { limitHits } from '../../../src/limits.js'
import { postNdjson, startTestServer } from '../../helpers/server.js'
import { httpCall, openSocket, postHead, readAll, until, type WireError } from './util.js'

// Loopback answers on all of 127.0.0.0/8, so a test can be several clients at once.
const attacker = '127.0.0.2'
const neighbour = '127.0.0.3'

/** A client that sends its headers, then one byte of its body every 100 ms. */
async function slowSender(url: string, from: string): Promise<{ socket: Socket; reply: Promise<string> }> {
  const socket = await openSocket(url, from)
  const reply = readAll(socket)
  socket.write(postHead('/v1/exchanges/logs/publish', 10_000, 'application/x-ndjson'))
  const drip = setInterval(() => {
    if (socket.writable) socket.write(' ')
  }, 100)
  socket.once('close', () => clearInterval(drip))
  return { socket, reply }
}

const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
const codeOf = (text: string): string => (text.includes('\r\n\r\n') ? (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as WireError).error.code : '')

describe('slow and greedy clients do not shut others out', () => {
  it('slow bodies from one address take at most its share of places, end in 408 after bodyTimeout, and others are served throughout', async () => {
    const { url } = await startTestServer({
      server: '  http: { port: 0, maxInFlightRequests: 16, maxInFlightRequestsPerAddress: 4, bodyTimeout: 1500ms, requestTimeout: 10s }',
    })
    const started = Date.now()
    const slow = await Promise.all(Array.from({ length: 12 }, () => slowSender(url, attacker)))
    // While they drip, an ordinary client publishes again and again, each answered at once.
    const latencies: number[] = []
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now()
      const r = await httpCall(url, { method: 'POST', path: '/v1/exchanges/logs/publish', headers: { 'content-type': 'application/x-ndjson' }, body: `{"service":"api","level":"info","i":${i}}`, localAddress: '127.0.0.1' })
      expect(r.status).toBe(200)
      latencies.push(Date.now() - t0)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(Math.max(...latencies)).toBeLessThan(1000)
    const replies = await Promise.all(slow.map((s) => s.reply))
    const outcome = replies.map((t) => `${statusOf(t)} ${codeOf(t)}`).sort()
    // Four held a place until their body ran out of time; the other eight were refused at once.
    expect(outcome).toEqual([...Array(4).fill('408 request_timeout'), ...Array(8).fill('429 too_many_requests')])
    // Every one of them was let go within the body deadline (plus a sweep), not requestTimeout.
    expect(Date.now() - started).toBeLessThan(6000)
    expect(limitHits.get('http.maxInFlightRequestsPerAddress')).toBeGreaterThanOrEqual(8)
  }, 30_000)

  it('connections per address and in total are capped at accept; a silent connection is closed after headersTimeout', async () => {
    const { url } = await startTestServer({ server: '  http: { port: 0, maxConnections: 12, maxConnectionsPerAddress: 4, headersTimeout: 1s }' })
    // Four idle connections from one address: the fifth is answered 503 at once and closed.
    const held = await Promise.all(Array.from({ length: 4 }, () => openSocket(url, attacker)))
    const fifth = await httpCall(url, { path: '/v1/streams', localAddress: attacker })
    expect(fifth.status).toBe(503)
    expect(fifth.headers['retry-after']).toBe('1')
    expect((JSON.parse(fifth.text) as WireError).error).toMatchObject({ code: 'too_many_connections', details: { limit: 'http.maxConnectionsPerAddress' } })
    // Another address is not affected.
    expect((await httpCall(url, { path: '/v1/streams', localAddress: neighbour })).status).toBe(200)
    // Twelve in total: eight more from elsewhere fill the server; the thirteenth is refused.
    const others = await Promise.all(Array.from({ length: 8 }, (_, i) => openSocket(url, `127.0.1.${i + 1}`)))
    const thirteenth = await httpCall(url, { method: 'POST', path: '/v1/exchanges/logs/publish', headers: { 'content-type': 'application/x-ndjson' }, body: '{"n":1}', localAddress: '127.0.2.1' })
    expect(thirteenth.status).toBe(503)
    expect((JSON.parse(thirteenth.text) as WireError).error.details).toMatchObject({ limit: 'http.maxConnections' })
    // Silent connections are closed once headersTimeout passes; then there is room again.
    const closed = await Promise.all([...held, ...others].map((s) => readAll(s)))
    expect(closed.every((t) => t === '')).toBe(true)
    await until('the cap frees up', async () => (await httpCall(url, { path: '/healthz', localAddress: attacker }).catch(() => ({ status: 0 }))).status === 200)
    expect(limitHits.get('http.maxConnections')).toBeGreaterThanOrEqual(1)
    expect(limitHits.get('http.maxConnectionsPerAddress')).toBeGreaterThanOrEqual(1)
  }, 30_000)

  it('HTTP connections count toward server.limits.maxConnections, the budget every door shares', async () => {
    const { url } = await startTestServer({ server: '  http: { port: 0, maxConnections: 100 }\n  limits: { maxConnections: 3 }' })
    const held = await Promise.all(Array.from({ length: 3 }, (_, i) => openSocket(url, `127.0.3.${i + 1}`)))
    const fourth = await fetch(`${url}/v1/streams`)
    expect(fourth.status).toBe(503)
    expect(((await fourth.json()) as WireError).error).toMatchObject({ code: 'too_many_connections', details: { limit: 'limits.maxConnections' } })
    held[0]!.destroy()
    await until('a place in the shared budget', async () => (await postNdjson(url, 'logs', [{ service: 'a', level: 'b' }])).status === 200)
    for (const h of held) h.destroy()
    let metrics = ''
    await until('/metrics answers', async () => {
      const res = await fetch(`${url}/metrics`)
      metrics = await res.text()
      return res.status === 200
    })
    expect(metrics).toMatch(/^sluice_limit_hits_total\{limit="limits\.maxConnections"\} [1-9]/m)
    expect(metrics).toMatch(/^sluice_connections_total\{listener="http"\} [1-9]/m)
    expect(metrics).toMatch(/^sluice_connections\{listener="http"\} [1-9]/m)
  })
})
