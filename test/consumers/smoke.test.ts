import { describe, expect, it } from 'vitest'
import { ack, call, fetchEvents, nack } from '../helpers/consume.js'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {}, dlq: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  workers: { stream: app-logs, prefetch: 10, deadLetter: { stream: dlq }, retryBackoff: { initial: 50ms, max: 1s } }
`

describe('consume smoke', () => {
  it('publish, fetch, ack, nack to the dead-letter stream, redrive', async () => {
    const { url } = await startTestServer({ pipeline })
    await postNdjson(url, 'logs', [1, 2, 3].map((i) => ({ service: 'api', level: 'info', i })))
    const got = await fetchEvents(url, 'workers', 'w1', 10)
    expect(got.map((d) => d.offset)).toEqual([0, 1, 2])
    expect(got[0]).toMatchObject({ stream: 'app-logs', deliveryCount: 1, redelivered: false, routingKey: 'api.info', body: { service: 'api', level: 'info', i: 1 }, id: 'app-logs:0' })
    expect(await ack(url, 'workers', [got[0]!.tag, got[1]!.tag])).toEqual({ settled: 2, failed: [] })
    expect(await ack(url, 'workers', [got[0]!.tag, 'nonsense'])).toEqual({ settled: 0, failed: [expect.objectContaining({ code: 'already_settled' }), expect.objectContaining({ code: 'unknown_tag' })] })
    expect(await nack(url, 'workers', [got[2]!.tag], { requeue: false, reason: 'bad payload' })).toEqual({ settled: 1, failed: [] })
    const dlq = await readStream(url, 'dlq')
    expect(dlq.events).toHaveLength(1)
    expect(dlq.events[0]!.headers['x-death']).toEqual([expect.objectContaining({ reason: 'rejected', stream: 'app-logs', group: 'workers', exchange: 'logs', routingKey: 'api.info', count: 1, error: 'bad payload' })])
    expect(dlq.events[0]!.headers['x-first-death-reason']).toBe('rejected')
    const stats = await call<{ backlog: number; acked: number; deadLettered: Record<string, number> }>(url, 'GET', '/v1/groups/workers')
    expect(stats.body).toMatchObject({ backlog: 0, acked: 2, deadLettered: { rejected: 1 } })
    const r = await call(url, 'POST', '/v1/streams/dlq/redrive', {})
    expect(r.body).toEqual({ redriven: 1, skipped: 0, remaining: false })
    const again = await fetchEvents(url, 'workers', 'w1', 10, 2000)
    expect(again.map((d) => d.body)).toEqual([{ service: 'api', level: 'info', i: 3 }])
    expect(again[0]!.headers['x-redrive-count']).toBe(1)
    expect((await call(url, 'POST', '/v1/streams/dlq/redrive', {})).body).toEqual({ redriven: 0, skipped: 0, remaining: false })
  })
})
