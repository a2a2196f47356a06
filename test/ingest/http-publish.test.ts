import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'

const ev = (i: number, extra: Record<string, unknown> = {}) => ({ service: i % 2 === 0 ? 'api' : 'db', level: i % 5 === 0 ? 'error' : 'info', msg: `event ${i}`, ...extra })

describe('HTTP publish', () => {
  it('publishes NDJSON, routes by template, and answers only once stored', async () => {
    const { url } = await startTestServer()
    const res = await postNdjson(url, 'logs', Array.from({ length: 20 }, (_, i) => ev(i)))
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ accepted: 20, duplicates: 0, unroutable: 0 })
    const app = await readStream(url, 'app-logs')
    expect(app.events.map((e) => (e.body as { msg: string }).msg)).toEqual(Array.from({ length: 20 }, (_, i) => `event ${i}`))
    expect(app.events.map((e) => e.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(app.events[0]!.routingKey).toBe('api.error')
    expect(app.events[1]!.routingKey).toBe('db.info')
    const errors = await readStream(url, 'errors')
    expect(errors.events.map((e) => (e.body as { msg: string }).msg)).toEqual(['event 0', 'event 5', 'event 10', 'event 15'])
  })

  it('takes JSON objects and arrays, gzip, an explicit key and envelope mode', async () => {
    const { url } = await startTestServer()
    const one = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ev(1)) })
    expect(await one.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    const arr = await fetch(`${url}/v1/exchanges/logs/publish?routingKey=x.error`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([ev(2), ev(3)]) })
    expect(await arr.json()).toEqual({ accepted: 2, duplicates: 0, unroutable: 0 })
    const gz = await fetch(`${url}/v1/exchanges/logs/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip', 'x-routing-key': 'gz.info' },
      body: gzipSync(Buffer.from([ev(4), ev(5)].map((e) => JSON.stringify(e)).join('\n'))),
    })
    expect(await gz.json()).toEqual({ accepted: 2, duplicates: 0, unroutable: 0 })
    const env = await fetch(`${url}/v1/exchanges/logs/publish?envelope=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'x-event-region': 'eu' },
      body: JSON.stringify({ body: 'plain string body', routingKey: 'env.error', headers: { tenant: 't1' }, id: 'env-1', timestamp: '2026-01-02T03:04:05.000Z' }),
    })
    expect(await env.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    const { events } = await readStream(url, 'app-logs')
    expect(events.map((e) => e.routingKey)).toEqual(['db.info', 'x.error', 'x.error', 'gz.info', 'gz.info', 'env.error'])
    const last = events[5]!
    expect(last).toMatchObject({ body: 'plain string body', id: 'env-1', headers: { region: 'eu', tenant: 't1' }, timestamp: '2026-01-02T03:04:05.000Z' })
  })

  it('takes a body with no content type as NDJSON (pipe tools send none)', async () => {
    const { url } = await startTestServer()
    const { request } = await import('node:http')
    const u = new URL(`${url}/v1/exchanges/logs/publish`)
    const body = `${JSON.stringify(ev(1))}\n${JSON.stringify(ev(2))}\n`
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const r = request({ host: u.hostname, port: u.port, method: 'POST', path: u.pathname, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => (text += d.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      })
      r.once('error', reject)
      r.end(body)
    })
    expect(answer).toEqual({ status: 200, text: JSON.stringify({ accepted: 2, duplicates: 0, unroutable: 0 }) })
  })

  it('rejects a malformed line 731 of 1,000 naming it, and stores nothing', async () => {
    const { url } = await startTestServer()
    const lines: string[] = Array.from({ length: 1000 }, (_, i) => JSON.stringify(ev(i)))
    lines[730] = '{"service": "api", "level": '
    const res = await postNdjson(url, 'logs', lines)
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: { code: string; message: string; details: { line: number } } }
    expect(body.error.code).toBe('bad_event')
    expect(body.error.details.line).toBe(731)
    expect(body.error.message).toMatch(/^line 731: invalid JSON/)
    expect((await readStream(url, 'app-logs')).events).toEqual([])
  })

  it('answers 413 naming maxBodySize and maxEventSize, 404 for an unknown exchange, 415 for other types', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxBodySize: 64kb, maxEventSize: 1kb }' })
    const big = await postNdjson(url, 'logs', Array.from({ length: 2000 }, (_, i) => ev(i)))
    expect(big.status).toBe(413)
    expect(((await big.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'body_too_large', message: expect.stringContaining('maxBodySize') })
    const fat = await postNdjson(url, 'logs', [ev(1), ev(2, { pad: 'x'.repeat(2000) })])
    expect(fat.status).toBe(413)
    expect(((await fat.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'event_too_large', message: expect.stringMatching(/^line 2: .*maxEventSize/) })
    const missing = await postNdjson(url, 'nope', [ev(1)])
    expect(missing.status).toBe(404)
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('unknown_exchange')
    const text = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })
    expect(text.status).toBe(415)
    expect(((await text.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type')
    expect((await readStream(url, 'app-logs')).events).toEqual([])
  })

  it('sends unmatched events to the alternate exchange, and rejects them where the exchange says so', async () => {
    const { url } = await startTestServer({
      pipeline: `
exchanges:
  logs: { type: topic, alternate: unrouted }
  unrouted: { type: fanout }
  strict: { type: direct, unroutable: reject }
  loose: { type: direct }
streams: { app-logs: {}, unrouted: {}, strict-a: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "app.#" }
  - { exchange: unrouted, stream: unrouted }
  - { exchange: strict, stream: strict-a, key: a }
  - { exchange: loose, stream: strict-a, key: a }
`,
    })
    const r1 = await postNdjson(url, 'logs', [{ n: 1 }], { 'x-routing-key': 'other.thing' })
    expect(await r1.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    expect((await readStream(url, 'unrouted')).events.map((e) => e.body)).toEqual([{ n: 1 }])
    const r2 = await fetch(`${url}/v1/exchanges/strict/publish?envelope=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"body":1,"routingKey":"a"}\n{"body":2,"routingKey":"b"}' })
    expect(r2.status).toBe(400)
    expect(((await r2.json()) as { error: { code: string; details: { line: number } } }).error).toMatchObject({ code: 'unroutable', details: { line: 2 } })
    expect((await readStream(url, 'strict-a')).events).toEqual([])
    const r3 = await fetch(`${url}/v1/exchanges/loose/publish?envelope=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"body":1,"routingKey":"a"}\n{"body":2,"routingKey":"b"}' })
    expect(await r3.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 1 })
  })

  it('stores an event reaching one stream by two paths once, and routes headers exchanges on body fields', async () => {
    const { url } = await startTestServer({
      pipeline: `
exchanges:
  logs: { type: topic }
  attrs: { type: headers }
streams: { all: {}, errors: {} }
bindings:
  - { exchange: logs, stream: all, key: "#" }
  - { exchange: logs, stream: all, key: "*.error" }
  - { exchange: attrs, stream: errors, match: all, headers: { level: error } }
`,
    })
    await postNdjson(url, 'logs', [{ m: 1 }], { 'x-routing-key': 'api.error' })
    expect((await readStream(url, 'all')).events).toHaveLength(1)
    const r = await postNdjson(url, 'attrs', [{ level: 'error', m: 1 }, { level: 'info', m: 2 }, { m: 3 }], { 'x-event-level': 'error' })
    // The request header is an explicit header, and explicit headers win over body fields.
    expect(await r.json()).toEqual({ accepted: 3, duplicates: 0, unroutable: 0 })
    const plain = await postNdjson(url, 'attrs', [{ level: 'error', m: 4 }, { level: 'info', m: 5 }])
    expect(await plain.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 1 })
    expect((await readStream(url, 'errors')).events.map((e) => (e.body as { m: number }).m)).toEqual([1, 2, 3, 4])
  })

  it('deduplicates by event id and idempotency key, also across a restart', async () => {
    const first = await startTestServer()
    const batch = [ev(1, { id: 'a' }), ev(2, { id: 'b' }), ev(3, { id: 'a' })]
    expect(await (await postNdjson(first.url, 'logs', batch)).json()).toEqual({ accepted: 2, duplicates: 1, unroutable: 0 })
    expect(await (await postNdjson(first.url, 'logs', [ev(4, { id: 'b' }), ev(5, { id: 'c' })])).json()).toEqual({ accepted: 1, duplicates: 1, unroutable: 0 })
    expect(await (await postNdjson(first.url, 'logs', [ev(6), ev(7)], { 'idempotency-key': 'req-1' })).json()).toEqual({ accepted: 2, duplicates: 0, unroutable: 0 })
    expect(await (await postNdjson(first.url, 'logs', [ev(6), ev(7)], { 'idempotency-key': 'req-1' })).json()).toEqual({ accepted: 0, duplicates: 2, unroutable: 0 })
    await first.stop()
    const second = await startTestServer({ dataDir: first.dataDir })
    expect(await (await postNdjson(second.url, 'logs', [ev(8, { id: 'a' }), ev(9, { id: 'd' })])).json()).toEqual({ accepted: 1, duplicates: 1, unroutable: 0 })
    expect(await (await postNdjson(second.url, 'logs', [ev(6), ev(7)], { 'idempotency-key': 'req-1' })).json()).toEqual({ accepted: 0, duplicates: 2, unroutable: 0 })
    const ids = (await readStream(second.url, 'app-logs')).events.map((e) => e.id)
    expect(ids).toEqual(['a', 'b', 'c', null, null, 'd'])
  })

  it('concurrent publishes of the same id store it once', async () => {
    const { url } = await startTestServer()
    const results = await Promise.all(Array.from({ length: 10 }, () => postNdjson(url, 'logs', [ev(1, { id: 'same' })]).then((r) => r.json())))
    const accepted = (results as Array<{ accepted: number }>).reduce((a, r) => a + r.accepted, 0)
    expect(accepted).toBe(1)
    expect((await readStream(url, 'app-logs')).events).toHaveLength(1)
  })
})

describe('HTTP read API', () => {
  it('reads by offset and by time, and reports streams, exchanges and overview', async () => {
    const { url } = await startTestServer()
    const t0 = Date.UTC(2026, 0, 1)
    const body = Array.from({ length: 10 }, (_, i) => JSON.stringify({ body: ev(i), timestamp: t0 + i * 1000 })).join('\n')
    await fetch(`${url}/v1/exchanges/logs/publish?envelope=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
    const page = await (await fetch(`${url}/v1/streams/app-logs/events?from=3&limit=4`)).json()
    expect(page).toMatchObject({ nextOffset: 7, startOffset: 0, endOffset: 10 })
    expect((page as { events: Array<{ offset: number }> }).events.map((e) => e.offset)).toEqual([3, 4, 5, 6])
    const byTime = (await (await fetch(`${url}/v1/streams/app-logs/events?from=${new Date(t0 + 6500).toISOString()}&limit=2`)).json()) as { events: Array<{ offset: number }> }
    expect(byTime.events.map((e) => e.offset)).toEqual([7, 8])
    const streams = (await (await fetch(`${url}/v1/streams`)).json()) as { streams: Array<{ name: string; events: number; firstOffset: number; lastOffset: number; segments: number }> }
    expect(streams.streams.find((s) => s.name === 'app-logs')).toMatchObject({ events: 10, firstOffset: 0, lastOffset: 9, segments: 1 })
    const exchanges = (await (await fetch(`${url}/v1/exchanges`)).json()) as { exchanges: Array<{ name: string; type: string; bindings: unknown[] }> }
    expect(exchanges.exchanges.find((e) => e.name === 'logs')).toMatchObject({ type: 'topic', bindings: [{ stream: 'app-logs', key: '#' }, { stream: 'errors', key: '*.error' }] })
    const overview = (await (await fetch(`${url}/v1/overview`)).json()) as { ready: boolean; publish: { accepted: number } }
    expect(overview).toMatchObject({ ready: true, publish: { accepted: 10 } })
    const bad = await fetch(`${url}/v1/streams/app-logs/events?from=yesterday`)
    expect(bad.status).toBe(400)
    expect((await fetch(`${url}/v1/streams/nope/events`)).status).toBe(404)
    expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ready' })
  })

  it('long-polls for new events with waitMs', async () => {
    const { url } = await startTestServer()
    const started = Date.now()
    const pending = fetch(`${url}/v1/streams/app-logs/events?from=0&waitMs=5000`).then((r) => r.json() as Promise<{ events: unknown[] }>)
    await new Promise((r) => setTimeout(r, 100))
    await postNdjson(url, 'logs', [ev(1)])
    const got = await pending
    expect(got.events).toHaveLength(1)
    expect(Date.now() - started).toBeLessThan(4000)
  })
})
