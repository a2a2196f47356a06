import { describe, expect, it } from 'vitest'
import { storedRecordBytes } from '../../src/log/index.js'
import { call, fetchEvents, nack, type WireDelivery } from '../helpers/consume.js'
import { groupStats, publish, waitFor, type WireDeath } from '../helpers/groups.js'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'

function pipeline(groups: string): string {
  return `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
  dlx: { type: direct }
streams: { app-logs: {}, dlq: {}, dlx-dead: {}, dlx-other: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: dlx, stream: dlx-dead, key: dead }
  - { exchange: dlx, stream: dlx-other, key: api.info }
groups:
${groups}
`
}

type StoredEvent = Awaited<ReturnType<typeof readStream>>['events'][number]

function deaths(e: StoredEvent | WireDelivery): WireDeath[] {
  return e.headers['x-death'] as WireDeath[]
}

/** Waits until `stream` holds `n` events and returns them. */
async function streamHolds(url: string, stream: string, n: number, timeoutMs = 5000): Promise<StoredEvent[]> {
  return waitFor(`${n} events in ${stream}`, async () => {
    const { events } = await readStream(url, stream)
    if (events.length > n) throw new Error(`${stream} holds ${events.length} events, expected ${n}`)
    return events.length === n ? events : undefined
  }, timeoutMs)
}

function expectTimeBetween(iso: string, from: number, to: number): void {
  const t = Date.parse(iso)
  expect(t).toBeGreaterThanOrEqual(from - 5)
  expect(t).toBeLessThanOrEqual(to + 5)
}

const ev = (i: number, level = 'info'): Record<string, unknown> => ({ service: 'api', level, i })

describe('dead-letter reasons, end to end', () => {
  it('rejected: nack requeue:false dead-letters with the error text', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, deadLetter: { stream: dlq } }`) })
    await publish(url, 'logs', [ev(0), ev(1, 'warn')])
    const got = await fetchEvents(url, 'g', 'c1', 10)
    expect(got.map((d) => d.offset)).toEqual([0, 1])
    const before = Date.now()
    expect(await nack(url, 'g', [got[1]!.tag], { requeue: false, reason: 'bad payload: no user' })).toEqual({ settled: 1, failed: [] })
    const after = Date.now()
    // The nack answers once the dead-letter copy is durable.
    const [dead] = await streamHolds(url, 'dlq', 1, 0)
    expect(dead).toMatchObject({ offset: 0, routingKey: 'api.warn', body: ev(1, 'warn') })
    expect(deaths(dead!)).toEqual([{ reason: 'rejected', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: 'api.warn', count: 1, time: expect.any(String), error: 'bad payload: no user' }])
    expectTimeBetween(deaths(dead!)[0]!.time, before, after)
    expect(dead!.headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-first-death-stream': 'app-logs', 'x-first-death-group': 'g', 'x-first-death-exchange': 'logs', 'x-last-death-reason': 'rejected' })
    const stats = await groupStats(url, 'g')
    expect(stats).toMatchObject({ backlog: 1, inFlight: 1, nacked: 1, deadLettered: { rejected: 1, expired: 0, maxlen: 0, delivery_limit: 0 } })
    // Never delivered again in this group.
    expect(await fetchEvents(url, 'g', 'c2', 10, 300)).toEqual([])
  })

  it('expired: an event older than messageTtl is dead-lettered, never delivered', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, messageTtl: 300ms, deadLetter: { stream: dlq } }`) })
    const t0 = Date.now()
    await publish(url, 'logs', [ev(0), ev(1, 'error')])
    await new Promise((r) => setTimeout(r, 450))
    // Due now, but too old: the fetch gets nothing, the dead-letter stream gets both.
    expect(await fetchEvents(url, 'g', 'c1', 10, 300)).toEqual([])
    const dead = await streamHolds(url, 'dlq', 2)
    expect(dead.map((e) => e.body)).toEqual([ev(0), ev(1, 'error')])
    expect(dead.map((e) => e.routingKey)).toEqual(['api.info', 'api.error'])
    for (const e of dead) {
      expect(deaths(e)).toEqual([{ reason: 'expired', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: e.routingKey, count: 1, time: expect.any(String) }])
      expectTimeBetween(deaths(e)[0]!.time, t0 + 300, Date.now())
      expect(e.headers['x-first-death-reason']).toBe('expired')
    }
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, delivered: 0, inFlight: 0, deadLettered: { expired: 2 } })
    // A young event still gets through.
    await publish(url, 'logs', [ev(2)])
    const fresh = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(fresh.map((d) => d.body)).toEqual([ev(2)])
  })

  it('expired when due: a requeued event that outlives messageTtl during its delay is dead-lettered, not redelivered', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, messageTtl: 400ms, deadLetter: { stream: dlq } }`) })
    await publish(url, 'logs', [ev(0)])
    const [d] = await fetchEvents(url, 'g', 'c1', 10)
    expect(d!.deliveryCount).toBe(1)
    await nack(url, 'g', [d!.tag], { requeue: true, delayMs: 600 })
    expect(await fetchEvents(url, 'g', 'c1', 10, 1000)).toEqual([])
    const [dead] = await streamHolds(url, 'dlq', 1)
    expect(dead!.body).toEqual(ev(0))
    expect(deaths(dead!)).toEqual([{ reason: 'expired', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: 'api.info', count: 1, time: expect.any(String) }])
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, delivered: 1, deadLettered: { expired: 1 } })
  })

  it('maxlen: over maxBacklog with overflow dead-letter, the oldest pending events go', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, maxBacklog: 3, overflow: dead-letter, deadLetter: { stream: dlq } }`) })
    const t0 = Date.now()
    await publish(url, 'logs', [0, 1, 2, 3, 4].map((i) => ev(i)))
    const dead = await streamHolds(url, 'dlq', 2)
    expect(dead.map((e) => e.body)).toEqual([ev(0), ev(1)])
    for (const e of dead) {
      expect(deaths(e)).toEqual([{ reason: 'maxlen', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: 'api.info', count: 1, time: expect.any(String) }])
      expectTimeBetween(deaths(e)[0]!.time, t0, Date.now())
      expect(e.headers['x-first-death-reason']).toBe('maxlen')
    }
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 3, deadLettered: { maxlen: 2 } })
    const got = await fetchEvents(url, 'g', 'c1', 10)
    expect(got.map((d) => d.offset)).toEqual([2, 3, 4])
    expect(got.map((d) => d.body)).toEqual([ev(2), ev(3), ev(4)])
  })

  it('delivery_limit: with maxDeliveries 2, the second requeue dead-letters', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, maxDeliveries: 2, retryBackoff: { initial: 50ms, jitter: 0 }, deadLetter: { stream: dlq } }`) })
    await publish(url, 'logs', [ev(0)])
    const first = await fetchEvents(url, 'g', 'c1', 10)
    expect(first.map((d) => [d.offset, d.deliveryCount, d.redelivered])).toEqual([[0, 1, false]])
    expect(await nack(url, 'g', [first[0]!.tag], { requeue: true })).toEqual({ settled: 1, failed: [] })
    expect((await readStream(url, 'dlq')).events).toEqual([])
    const second = await fetchEvents(url, 'g', 'c1', 10, 2000)
    expect(second.map((d) => [d.offset, d.deliveryCount, d.redelivered])).toEqual([[0, 2, true]])
    const before = Date.now()
    expect(await nack(url, 'g', [second[0]!.tag], { requeue: true })).toEqual({ settled: 1, failed: [] })
    const [dead] = await streamHolds(url, 'dlq', 1, 0)
    expect(dead!.body).toEqual(ev(0))
    expect(deaths(dead!)).toEqual([{ reason: 'delivery_limit', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: 'api.info', count: 1, time: expect.any(String) }])
    expectTimeBetween(deaths(dead!)[0]!.time, before, Date.now())
    expect(dead!.headers['x-first-death-reason']).toBe('delivery_limit')
    expect(await fetchEvents(url, 'g', 'c1', 10, 300)).toEqual([])
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, nacked: 2, deadLettered: { delivery_limit: 1 } })
  })

  it('delivery_limit by ack timeouts: never acked, dead-lettered after maxDeliveries deliveries', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, ackTimeout: 200ms, maxDeliveries: 2, retryBackoff: { initial: 50ms, jitter: 0 }, deadLetter: { stream: dlq } }`) })
    await publish(url, 'logs', [ev(0)])
    expect((await fetchEvents(url, 'g', 'c1', 10)).map((d) => d.deliveryCount)).toEqual([1])
    expect((await fetchEvents(url, 'g', 'c1', 10, 2000)).map((d) => d.deliveryCount)).toEqual([2])
    const [dead] = await streamHolds(url, 'dlq', 1)
    expect(deaths(dead!)).toEqual([{ reason: 'delivery_limit', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: 'api.info', count: 1, time: expect.any(String) }])
    expect(await fetchEvents(url, 'g', 'c1', 10, 400)).toEqual([])
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, ackTimeouts: 2, nacked: 0, deadLettered: { delivery_limit: 1 } })
  })

  it('overflow reject-publish: a publish past maxBacklog gets 429 backlog_full and stores nothing', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, maxBacklog: 2, overflow: reject-publish, deadLetter: { stream: dlq } }`) })
    await publish(url, 'logs', [ev(0), ev(1)])
    const refused = await postNdjson(url, 'logs', [ev(2)])
    expect(refused.status).toBe(429)
    const err = (await refused.json()) as { error: { code: string; message: string; details: Record<string, unknown> } }
    expect(err.error.code).toBe('backlog_full')
    expect(err.error.details).toMatchObject({ stream: 'app-logs', group: 'g', backlog: 2, limitEvents: 2 })
    expect((await readStream(url, 'app-logs')).events.map((e) => e.body)).toEqual([ev(0), ev(1)])
    // Nothing was dead-lettered: the publisher was refused instead.
    expect((await readStream(url, 'dlq')).events).toEqual([])
    // Settling makes room; a request that would overshoot is still refused whole.
    const got = await fetchEvents(url, 'g', 'c1', 10)
    await call(url, 'POST', '/v1/groups/g/ack', { tags: got.map((d) => d.tag) })
    expect((await groupStats(url, 'g')).backlog).toBe(0)
    expect((await postNdjson(url, 'logs', [ev(3), ev(4), ev(5)])).status).toBe(429)
    expect((await readStream(url, 'app-logs')).events).toHaveLength(2)
    await publish(url, 'logs', [ev(6), ev(7)])
    expect((await readStream(url, 'app-logs')).events.map((e) => e.body)).toEqual([ev(0), ev(1), ev(6), ev(7)])
    expect((await groupStats(url, 'g')).deadLettered).toEqual({ rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0 })
  })

  it('overflow reject-publish by maxBacklogBytes: counted in stored bytes, across a restart', async () => {
    const groups = (limit: string): string => pipeline(`  g: { stream: app-logs, maxBacklogBytes: ${limit}, overflow: reject-publish, deadLetter: { stream: dlq } }`)
    const first = await startTestServer({ pipeline: groups('1mb') })
    await publish(first.url, 'logs', [ev(0), ev(1)])
    const { records } = await first.server.streams.get('app-logs')!.log.read(0)
    const sizes = records.map((r) => storedRecordBytes(r))
    expect(sizes).toHaveLength(2)
    await first.stop()
    // Room for the two stored and one more of their size: the sizes are read back from the log.
    const limit = sizes[0]! + sizes[1]! + sizes[1]!
    const { url } = await startTestServer({ dataDir: first.dataDir, pipeline: groups(`${limit}b`) })
    await publish(url, 'logs', [ev(2)])
    const refused = await postNdjson(url, 'logs', [ev(3)])
    expect(refused.status).toBe(429)
    const err = (await refused.json()) as { error: { code: string; details: Record<string, unknown> } }
    expect(err.error.code).toBe('backlog_full')
    expect(err.error.details).toMatchObject({ stream: 'app-logs', group: 'g', backlogBytes: limit, limit: 'maxBacklogBytes', limitBytes: limit })
    // Settling the first frees its bytes, and only enough for one more.
    const got = await fetchEvents(url, 'g', 'c1', 1)
    await call(url, 'POST', '/v1/groups/g/ack', { tags: got.map((d) => d.tag) })
    expect((await postNdjson(url, 'logs', [ev(4), ev(5)])).status).toBe(429)
    await publish(url, 'logs', [ev(6)])
    expect((await readStream(url, 'app-logs')).events.map((e) => e.body)).toEqual([ev(0), ev(1), ev(2), ev(6)])
    expect((await groupStats(url, 'g')).backlog).toBe(3)
  })

  it('an exchange target: the event goes through the exchange, with the configured routing key or its own', async () => {
    const groups = [
      `  keyed: { stream: app-logs, deadLetter: { exchange: dlx, routingKey: dead } }`,
      `  ownkey: { stream: app-logs, deadLetter: { exchange: dlx } }`,
    ].join('\n')
    const { url } = await startTestServer({ pipeline: pipeline(groups) })
    await publish(url, 'logs', [ev(0)])
    const a = await fetchEvents(url, 'keyed', 'c1', 10)
    expect(await nack(url, 'keyed', [a[0]!.tag], { requeue: false, reason: 'nope' })).toEqual({ settled: 1, failed: [] })
    const [viaKey] = await streamHolds(url, 'dlx-dead', 1)
    expect(viaKey).toMatchObject({ routingKey: 'dead', body: ev(0) })
    expect(deaths(viaKey!)).toEqual([{ reason: 'rejected', stream: 'app-logs', group: 'keyed', exchange: 'logs', routingKey: 'api.info', count: 1, time: expect.any(String), error: 'nope' }])
    // The original key would have matched dlx-other; the configured key wins.
    expect((await readStream(url, 'dlx-other')).events).toEqual([])

    const b = await fetchEvents(url, 'ownkey', 'c1', 10)
    expect(await nack(url, 'ownkey', [b[0]!.tag], { requeue: false })).toEqual({ settled: 1, failed: [] })
    const [viaOwn] = await streamHolds(url, 'dlx-other', 1)
    expect(viaOwn).toMatchObject({ routingKey: 'api.info', body: ev(0) })
    expect(deaths(viaOwn!)).toEqual([{ reason: 'rejected', stream: 'app-logs', group: 'ownkey', exchange: 'logs', routingKey: 'api.info', count: 1, time: expect.any(String) }])
    expect((await readStream(url, 'dlx-dead')).events).toHaveLength(1)
    expect((await readStream(url, 'dlq')).events).toEqual([])
  })

  it('an event dead-lettered twice in the same group for the same reason has one x-death entry with count 2', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`  g: { stream: app-logs, deadLetter: { stream: dlq } }`) })
    await publish(url, 'logs', [ev(0)])
    const first = await fetchEvents(url, 'g', 'c1', 10)
    await nack(url, 'g', [first[0]!.tag], { requeue: false, reason: 'first' })
    const [dead1] = await streamHolds(url, 'dlq', 1)
    expect((await call(url, 'POST', '/v1/streams/dlq/redrive', {})).body).toEqual({ redriven: 1, skipped: 0, remaining: false })

    const again = await fetchEvents(url, 'g', 'c1', 10, 2000)
    expect(again).toHaveLength(1)
    expect(again[0]).toMatchObject({ offset: 1, routingKey: 'api.info', body: ev(0) })
    expect(again[0]!.headers['x-redrive-count']).toBe(1)
    expect(deaths(again[0]!)).toEqual(deaths(dead1!))
    await nack(url, 'g', [again[0]!.tag], { requeue: false, reason: 'second' })

    const dead = await streamHolds(url, 'dlq', 2)
    const d2 = deaths(dead[1]!)
    expect(d2).toEqual([{ reason: 'rejected', stream: 'app-logs', group: 'g', exchange: 'logs', routingKey: 'api.info', count: 2, time: expect.any(String), error: 'second' }])
    expect(Date.parse(d2[0]!.time)).toBeGreaterThanOrEqual(Date.parse(deaths(dead1!)[0]!.time))
    expect(dead[1]!.headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-last-death-reason': 'rejected', 'x-redrive-count': 1 })
    expect(dead[1]!.body).toEqual(ev(0))
    expect((await groupStats(url, 'g')).deadLettered.rejected).toBe(2)
  })
})
