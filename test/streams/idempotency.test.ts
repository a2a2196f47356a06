import { describe, expect, it } from 'vitest'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'

const ev = (n: number): Record<string, unknown> => ({ service: 'api', level: 'info', n })

describe('idempotency keys', () => {
  it('a retry is a duplicate; the same key on another request is 409, across a restart too', async () => {
    const first = await startTestServer()
    const key = { 'idempotency-key': 'order-7' }
    const a = await postNdjson(first.url, 'logs', [ev(1), ev(2)], key)
    expect([a.status, await a.json()]).toEqual([200, { accepted: 2, duplicates: 0, unroutable: 0 }])
    const retry = await postNdjson(first.url, 'logs', [ev(1), ev(2)], key)
    expect([retry.status, await retry.json()]).toEqual([200, { accepted: 0, duplicates: 2, unroutable: 0 }])
    const other = await postNdjson(first.url, 'logs', [ev(3)], key)
    expect(other.status).toBe(409)
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('idempotency_key_reused')
    await first.stop()

    const again = await startTestServer({ dataDir: first.dataDir })
    expect((await postNdjson(again.url, 'logs', [ev(3)], key)).status).toBe(409)
    expect((await postNdjson(again.url, 'logs', [ev(1), ev(2)], key)).status).toBe(200)
    expect((await readStream(again.url, 'app-logs')).events.map((e) => (e.body as { n: number }).n)).toEqual([1, 2])
  })
})

describe('a large publish refused for its last event', () => {
  it('stores none of its parts', async () => {
    const { url } = await startTestServer({ pipeline: 'exchanges:\n  logs: { type: fanout }\nstreams: { s: { segmentSize: 1mb } }\nbindings:\n  - { exchange: logs, stream: s }' })
    // About 2 MB in 1 kB events, so several batches; the last event's routing key is longer than
    // a record can hold. Validation refuses the request before any batch is appended (and the
    // batches of one request are appended all or nothing besides).
    const pad = 'p'.repeat(1000)
    const events = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i, pad }))
    const res = await fetch(`${url}/v1/exchanges/logs/publish?envelope=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: [...events.map((e) => `{"body":${e}}`), `{"body":1,"routingKey":"${'k'.repeat(70_000)}"}`].join('\n'),
    })
    expect(res.status).toBe(400)
    expect((await readStream(url, 's')).events).toEqual([])
  })
})
