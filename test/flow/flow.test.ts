import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { ack, call, fetchEvents, sleep } from '../helpers/consume.js'
import { postNdjson, startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  workers: { stream: app-logs, prefetch: 1000 }
`

async function streamEvents(url: string): Promise<number> {
  return ((await (await fetch(`${url}/v1/streams/app-logs`)).json()) as { events: number }).events
}

describe('flow control', () => {
  it('HTTP over a rate limit gets 429 with a Retry-After from the bucket; following it, every event is stored once', async () => {
    const s = await startTestServer({ pipeline: `${pipeline}\nrateLimits:\n  - { match: { listener: http }, events: 200/s, burst: 100 }\n` })
    let seq = 0
    let refusals = 0
    const retryAfters: number[] = []
    const started = Date.now()
    for (let r = 0; r < 10; r++) {
      const batch = Array.from({ length: 50 }, () => ({ service: 'a', level: 'info', n: seq++ }))
      for (;;) {
        const res = await postNdjson(s.url, 'logs', batch)
        if (res.status === 200) {
          expect(await res.json()).toEqual({ accepted: 50, duplicates: 0, unroutable: 0 })
          break
        }
        expect(res.status).toBe(429)
        const body = (await res.json()) as { error: { code: string; details: { rule: string; retryAfterMs: number } } }
        expect(body.error.code).toBe('rate_limited')
        expect(body.error.details.rule).toBe('rateLimits[0]')
        const header = Number(res.headers.get('retry-after'))
        expect(header).toBe(Math.ceil(body.error.details.retryAfterMs / 1000))
        retryAfters.push(body.error.details.retryAfterMs)
        refusals++
        await sleep(body.error.details.retryAfterMs)
      }
    }
    const elapsed = Date.now() - started
    expect(refusals).toBeGreaterThan(0)
    // 500 events at 200/s after a burst of 100: at least 2 s.
    expect(elapsed).toBeGreaterThan(1800)
    // Computed from the bucket, not a constant: 50 events at 200/s is at most 250 ms away.
    for (const ms of retryAfters) expect(ms).toBeLessThanOrEqual(250)
    expect(await streamEvents(s.url)).toBe(500)
  })

  it('a TCP sender over its limit is slowed by backpressure and every line arrives', async () => {
    const s = await startTestServer({ pipeline: `${pipeline}\nrateLimits:\n  - { match: { listener: ndjson }, events: 2000/s, burst: 500 }\n`, ndjson: '{ port: 0, exchange: logs }' })
    const port = s.server.listeners.find((l) => l.options.name === 'ndjson')!.port
    const socket = connect({ host: '127.0.0.1', port })
    await new Promise<void>((r) => socket.once('connect', () => r()))
    const total = 6000
    const line = (i: number) => `${JSON.stringify({ service: 'a', level: 'info', i, pad: 'p'.repeat(100) })}\n`
    const started = Date.now()
    let payload = ''
    for (let i = 0; i < total; i++) payload += line(i)
    socket.end(payload)
    let n = 0
    const deadline = Date.now() + 15_000
    while (n < total && Date.now() < deadline) {
      await sleep(100)
      n = await streamEvents(s.url)
    }
    const elapsed = Date.now() - started
    expect(n).toBe(total)
    // (6000 − 500 burst) at 2000/s ≈ 2.75 s: held back, not dropped.
    expect(elapsed).toBeGreaterThan(2300)
    const order: number[] = []
    for (let from = 0; order.length < total; ) {
      const page = (await (await fetch(`${s.url}/v1/streams/app-logs/events?from=${from}&limit=10000`)).json()) as { events: Array<{ body: { i: number } }>; nextOffset: number }
      if (page.events.length === 0) break
      order.push(...page.events.map((e) => e.body.i))
      from = page.nextOffset
    }
    expect(order).toEqual(Array.from({ length: total }, (_, i) => i))
  })

  it('a disk alarm blocks publishing with 503 and clears when the limit is lowered; consumers keep working', async () => {
    const s = await startTestServer({ pipeline })
    await postNdjson(s.url, 'logs', [{ service: 'a', level: 'info', n: 1 }])
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 }) // 4 PiB: more than any disk here
    const blocked = await postNdjson(s.url, 'logs', [{ service: 'a', level: 'info', n: 2 }])
    expect(blocked.status).toBe(503)
    expect(blocked.headers.get('retry-after')).toBe('5')
    expect(((await blocked.json()) as { error: { code: string; details: { alarms: string[] } } }).error).toMatchObject({ code: 'alarm', details: { alarms: ['disk'] } })
    const ready = await call<{ error: { code: string } }>(s.url, 'GET', '/readyz')
    expect(ready.status).toBe(503)
    expect(ready.body.error.code).toBe('alarm')
    const overview = await call<{ alarms: Array<{ name: string }> }>(s.url, 'GET', '/v1/overview')
    expect(overview.body.alarms.map((a) => a.name)).toEqual(['disk'])
    // Consumers drain while publishers wait.
    const got = await fetchEvents(s.url, 'workers', 'c', 10)
    expect(got.map((d) => d.body)).toEqual([{ service: 'a', level: 'info', n: 1 }])
    expect((await ack(s.url, 'workers', got.map((d) => d.tag))).settled).toBe(1)
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    const again = await postNdjson(s.url, 'logs', [{ service: 'a', level: 'info', n: 2 }])
    expect(again.status).toBe(200)
    expect((await call(s.url, 'GET', '/readyz')).status).toBe(200)
    expect(await streamEvents(s.url)).toBe(2)
  })

  it('a TCP sender held back by an alarm longer than idleTimeout keeps its connection and loses nothing', async () => {
    const s = await startTestServer({ pipeline, ndjson: '{ port: 0, exchange: logs, idleTimeout: 1s }' })
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 })
    const port = s.server.listeners.find((l) => l.options.name === 'ndjson')!.port
    const socket = connect({ host: '127.0.0.1', port })
    await new Promise<void>((r) => socket.once('connect', () => r()))
    let closed = false
    socket.once('close', () => (closed = true))
    for (let i = 0; i < 100; i++) {
      socket.write(`${JSON.stringify({ service: 'a', level: 'info', i, pad: 'p'.repeat(4000) })}\n`)
      await sleep(25) // 2.5 s of writing into a paused connection, 2.5x idleTimeout
    }
    expect(closed).toBe(false)
    expect(await streamEvents(s.url)).toBe(0)
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    socket.end()
    const deadline = Date.now() + 10_000
    let n = 0
    while (n < 100 && Date.now() < deadline) {
      await sleep(50)
      n = await streamEvents(s.url)
    }
    expect(n).toBe(100)
  })

  it('a burst at 10x a group deliveryRate is stored in full, then drained at the set rate', async () => {
    const rate = 400
    const s = await startTestServer({ pipeline: pipeline.replace('prefetch: 1000 }', `prefetch: 1000, deliveryRate: ${rate}/s }`) })
    // One second at 10x the delivery rate, stored at ingest speed.
    const total = rate * 10
    for (let k = 0; k < 10; k++) {
      const res = await postNdjson(s.url, 'logs', Array.from({ length: rate }, (_, i) => ({ service: 'a', level: 'info', n: k * rate + i })))
      expect(res.status).toBe(200)
    }
    expect(await streamEvents(s.url)).toBe(total)
    const times: number[] = []
    let received = 0
    const started = Date.now()
    while (received < total && Date.now() - started < 20_000) {
      const got = await fetchEvents(s.url, 'workers', 'c', 1000, 1000)
      const now = Date.now()
      for (let i = 0; i < got.length; i++) times.push(now)
      received += got.length
      if (got.length > 0) await ack(s.url, 'workers', got.map((d) => d.tag))
    }
    expect(received).toBe(total)
    // Measured after the first second, so the initial bucket does not count.
    const from = times.findIndex((t) => t - started >= 1000)
    const measured = ((times.length - from) * 1000) / (times[times.length - 1]! - times[from]!)
    expect(measured).toBeGreaterThan(rate * 0.9)
    expect(measured).toBeLessThan(rate * 1.1)
    const stats = await call<{ backlog: number; acked: number }>(s.url, 'GET', '/v1/groups/workers')
    expect(stats.body).toMatchObject({ backlog: 0, acked: total })
  })
})
