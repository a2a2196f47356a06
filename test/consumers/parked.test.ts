import { describe, expect, it } from 'vitest'
import { ack, call, fetchEvents, nack } from '../helpers/consume.js'
import { groupStats, publish } from '../helpers/groups.js'
import { readStream, startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  # No dead-letter target: poison events are parked in the group.
  g: { stream: app-logs, maxDeliveries: 2, retryBackoff: { initial: 50ms, jitter: 0 } }
`

interface WireParked {
  offset: number
  reason: string
  deliveryCount: number
  time: string
  error?: string
}

async function parked(url: string): Promise<WireParked[]> {
  const r = await call<{ parked: WireParked[] }>(url, 'GET', '/v1/groups/g/parked')
  expect(r.status).toBe(200)
  return r.body.parked
}

const ev = (i: number): Record<string, unknown> => ({ service: 'api', level: 'info', i })

describe('parked events (no dead-letter target)', () => {
  it('are listed, count in the backlog, and can be redriven (count reset) or purged', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [0, 1, 2, 3].map(ev))
    const got = await fetchEvents(url, 'g', 'c1', 2)
    expect(got.map((d) => d.offset)).toEqual([0, 1])
    expect(await ack(url, 'g', [got[0]!.tag])).toEqual({ settled: 1, failed: [] })
    const before = Date.now()
    expect(await nack(url, 'g', [got[1]!.tag], { requeue: false, reason: 'cannot parse' })).toEqual({ settled: 1, failed: [] })

    const p = await parked(url)
    expect(p).toEqual([{ offset: 1, reason: 'rejected', deliveryCount: 1, time: expect.any(String), error: 'cannot parse' }])
    expect(Date.parse(p[0]!.time)).toBeGreaterThanOrEqual(before - 5)
    // Parked holds the cursor: 1 parked + 2 never fetched.
    let stats = await groupStats(url, 'g')
    expect(stats).toMatchObject({ parked: 1, backlog: 3, cursor: 1, inFlight: 0, deadLettered: { rejected: 1 } })
    // Not delivered while parked: only the two unfetched events come.
    const rest = await fetchEvents(url, 'g', 'c1', 10, 300)
    expect(rest.map((d) => d.offset)).toEqual([2, 3])
    await ack(url, 'g', rest.map((d) => d.tag))
    expect(await fetchEvents(url, 'g', 'c1', 10, 200)).toEqual([])
    expect(await groupStats(url, 'g')).toMatchObject({ parked: 1, backlog: 1, cursor: 1 })

    // Redrive: deliverable again, its delivery count starting over.
    expect((await call(url, 'POST', '/v1/groups/g/parked/redrive', {})).body).toEqual({ redriven: 1 })
    expect(await parked(url)).toEqual([])
    expect((await groupStats(url, 'g')).parked).toBe(0)
    const again = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(again.map((d) => [d.offset, d.deliveryCount, d.redelivered, d.body])).toEqual([[1, 1, true, ev(1)]])

    // Park it again via the delivery limit (2 deliveries), then purge.
    await nack(url, 'g', [again[0]!.tag], { requeue: true })
    const third = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(third.map((d) => [d.offset, d.deliveryCount])).toEqual([[1, 2]])
    await nack(url, 'g', [third[0]!.tag], { requeue: true })
    expect(await parked(url)).toEqual([{ offset: 1, reason: 'delivery_limit', deliveryCount: 2, time: expect.any(String) }])
    stats = await groupStats(url, 'g')
    expect(stats).toMatchObject({ parked: 1, backlog: 1, deadLettered: { rejected: 1, delivery_limit: 1 } })

    expect((await call(url, 'DELETE', '/v1/groups/g/parked')).body).toEqual({ purged: 1 })
    expect(await parked(url)).toEqual([])
    stats = await groupStats(url, 'g')
    expect(stats).toMatchObject({ parked: 0, backlog: 0, cursor: 4 })
    expect(await fetchEvents(url, 'g', 'c1', 10, 200)).toEqual([])
    // Purging settles, it does not delete from the stream.
    expect((await readStream(url, 'app-logs')).events).toHaveLength(4)
  })

  it('parked events survive a restart and are still not delivered', async () => {
    const first = await startTestServer({ pipeline })
    await publish(first.url, 'logs', [0, 1].map(ev))
    const got = await fetchEvents(first.url, 'g', 'c1', 10)
    await nack(first.url, 'g', [got[0]!.tag], { requeue: false, reason: 'poison' })
    await ack(first.url, 'g', [got[1]!.tag])
    await first.stop()

    const { url } = await startTestServer({ pipeline, dataDir: first.dataDir })
    expect(await parked(url)).toEqual([{ offset: 0, reason: 'rejected', deliveryCount: 1, time: expect.any(String), error: 'poison' }])
    expect(await groupStats(url, 'g')).toMatchObject({ parked: 1, backlog: 1 })
    expect(await fetchEvents(url, 'g', 'c1', 10, 300)).toEqual([])
    expect((await call(url, 'POST', '/v1/groups/g/parked/redrive', {})).body).toEqual({ redriven: 1 })
    const back = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(back.map((d) => [d.offset, d.deliveryCount, d.body])).toEqual([[0, 1, ev(0)]])
  })
})
