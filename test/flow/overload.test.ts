import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { startTestServer } from '../helpers/server.js'

describe('HTTP overload guards', () => {
  it('cuts off a client that sends headers slower than headersTimeout (slow-loris)', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, headersTimeout: 1s, requestTimeout: 2s }' })
    const { port } = new URL(s.url)
    const socket = connect({ host: '127.0.0.1', port: Number(port) })
    await new Promise<void>((r) => socket.once('connect', () => r()))
    socket.write('POST /v1/exchanges/logs/publish HTTP/1.1\r\nHost: x\r\n')
    const started = Date.now()
    const reply = await new Promise<string>((resolve) => {
      let data = ''
      socket.on('data', (d: Buffer) => (data += d.toString()))
      socket.on('close', () => resolve(data))
      const t = setInterval(() => socket.write('X-Slow: 1\r\n'), 200) // never finishes the headers
      socket.on('close', () => clearInterval(t))
    })
    expect(Date.now() - started).toBeLessThan(5000)
    expect(reply).toMatch(/^HTTP\/1\.1 408/)
  })

  it('refuses requests past maxInFlightRequests with 503 overloaded', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, maxInFlightRequests: 2 }' })
    // Two long polls hold both places.
    const polls = [0, 1].map(() => fetch(`${s.url}/v1/streams/app-logs/events?from=0&waitMs=1500`))
    await new Promise((r) => setTimeout(r, 200))
    const third = await fetch(`${s.url}/v1/streams/app-logs/events?from=0`)
    expect(third.status).toBe(503)
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('overloaded')
    expect(third.headers.get('retry-after')).toBe('1')
    await Promise.all(polls)
    expect((await fetch(`${s.url}/v1/streams/app-logs/events?from=0`)).status).toBe(200)
    // Health checks are not counted against the limit.
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
  })
})
