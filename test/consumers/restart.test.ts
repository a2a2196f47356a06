import { describe, expect, it } from 'vitest'
import { ack, call, fetchEvents, nack } from '../helpers/consume.js'
import { groupStats, publish, type WireGroupStats } from '../helpers/groups.js'
import { startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {}, other: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs, ackTimeout: 30s, retryBackoff: { initial: 100ms, jitter: 0 } }
`

const ev = (i: number): Record<string, unknown> => ({ service: 'api', level: 'info', i })

describe('restart', () => {
  it('acked events are never delivered again; unacked ones are, marked redelivered', async () => {
    const first = await startTestServer({ pipeline })
    await publish(first.url, 'logs', [0, 1, 2, 3, 4].map(ev))
    const got = await fetchEvents(first.url, 'g', 'c1', 10)
    expect(got.map((d) => d.offset)).toEqual([0, 1, 2, 3, 4])
    // Settled out of order: a range above the cursor must survive too.
    expect(await ack(first.url, 'g', [got[0]!.tag, got[2]!.tag, got[4]!.tag])).toEqual({ settled: 3, failed: [] })
    // Delivered after the last ack: still seen, still owed.
    await publish(first.url, 'logs', [5, 6].map(ev))
    const later = await fetchEvents(first.url, 'g', 'c1', 10, 1000)
    expect(later.map((d) => d.offset)).toEqual([5, 6])
    // One more event nobody fetched.
    await publish(first.url, 'logs', [ev(7)])
    expect(await groupStats(first.url, 'g')).toMatchObject({ backlog: 5, inFlight: 4 })
    await first.stop()

    const { url } = await startTestServer({ pipeline, dataDir: first.dataDir })
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 5, cursor: 1, inFlight: 0 })
    const again = await fetchEvents(url, 'g', 'c1', 100, 1000)
    expect(again.map((d) => [d.offset, d.redelivered, d.body])).toEqual([
      [1, true, ev(1)],
      [3, true, ev(3)],
      [5, true, ev(5)],
      [6, true, ev(6)],
      [7, false, ev(7)],
    ])
    expect(again.filter((d) => d.redelivered).every((d) => d.deliveryCount >= 2)).toBe(true)
    expect(again.find((d) => d.offset === 7)!.deliveryCount).toBe(1)
    // Tags from before the restart are refused, not applied.
    const old = await ack(url, 'g', [got[1]!.tag])
    expect(old.settled).toBe(0)
    expect(await ack(url, 'g', again.map((d) => d.tag))).toEqual({ settled: 5, failed: [] })
    expect(await fetchEvents(url, 'g', 'c1', 100, 300)).toEqual([])
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, cursor: 8 })
  })

  it('a nacked event keeps its delivery count and its backoff across a restart', async () => {
    const first = await startTestServer({ pipeline })
    await publish(first.url, 'logs', [ev(0)])
    const [d1] = await fetchEvents(first.url, 'g', 'c1', 10)
    await nack(first.url, 'g', [d1!.tag], { requeue: true })
    const d2 = (await fetchEvents(first.url, 'g', 'c1', 10, 2000))[0]!
    expect(d2.deliveryCount).toBe(2)
    await nack(first.url, 'g', [d2.tag], { requeue: true, delayMs: 60_000 })
    await first.stop()

    const { url } = await startTestServer({ pipeline, dataDir: first.dataDir })
    // Still waiting out its delay: not delivered at once.
    expect(await fetchEvents(url, 'g', 'c1', 10, 300)).toEqual([])
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 1 })
  })
})

describe('groups at run time', () => {
  const body = { stream: 'app-logs', prefetch: 5, ackTimeout: '2s', deadLetter: { stream: 'other' } }

  it('PUT creates (201), repeats (200), conflicts (409), validates (400), and survives a restart', async () => {
    const first = await startTestServer({ pipeline })
    const created = await call<WireGroupStats & { config: Record<string, unknown> }>(first.url, 'PUT', '/v1/groups/rt', body)
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ name: 'rt', stream: 'app-logs', backlog: 0, config: { name: 'rt', stream: 'app-logs', prefetch: 5, ackTimeoutMs: 2000 } })
    const same = await call(first.url, 'PUT', '/v1/groups/rt', body)
    expect(same.status).toBe(200)
    expect(same.body).toMatchObject({ name: 'rt', config: { prefetch: 5 } })
    const other = await call<{ error: { code: string } }>(first.url, 'PUT', '/v1/groups/rt', { ...body, prefetch: 6 })
    expect(other.status).toBe(409)
    expect(other.body.error.code).toBe('group_exists')
    const bad = await call<{ error: { code: string; message: string; details: { problems: string[] } } }>(first.url, 'PUT', '/v1/groups/bad', { stream: 'nope', prefetch: 0, colour: 'red' })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('bad_request')
    const problems = bad.body.error.details.problems
    expect(problems.length).toBeGreaterThanOrEqual(3)
    expect(problems.some((p) => p.includes('nope'))).toBe(true)
    expect(problems.some((p) => p.includes('prefetch'))).toBe(true)
    expect(problems.some((p) => p.includes('colour'))).toBe(true)
    expect((await call(first.url, 'GET', '/v1/groups/bad')).status).toBe(404)
    // The YAML group's name is taken with other settings.
    expect((await call(first.url, 'PUT', '/v1/groups/g', body)).status).toBe(409)

    // The new group works: it reads the stream from the start.
    await publish(first.url, 'logs', [0, 1, 2].map(ev))
    const got = await fetchEvents(first.url, 'rt', 'c1', 2)
    expect(got.map((d) => d.offset)).toEqual([0, 1])
    await ack(first.url, 'rt', [got[0]!.tag])
    await first.stop()

    const { url } = await startTestServer({ pipeline, dataDir: first.dataDir })
    const after = await call<WireGroupStats & { config: Record<string, unknown> }>(url, 'GET', '/v1/groups/rt')
    expect(after.status).toBe(200)
    expect(after.body).toMatchObject({ name: 'rt', backlog: 2, cursor: 1, config: { prefetch: 5, ackTimeoutMs: 2000 } })
    expect((await call<{ groups: Array<{ name: string }> }>(url, 'GET', '/v1/groups')).body.groups.map((g) => g.name).sort()).toEqual(['g', 'rt'])
    expect((await call(url, 'PUT', '/v1/groups/rt', body)).status).toBe(200)
    const rest = await fetchEvents(url, 'rt', 'c1', 10)
    expect(rest.map((d) => [d.offset, d.redelivered])).toEqual([[1, true], [2, false]])
  })

  it('reset to earliest replays; tags from before the reset are stale', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [0, 1, 2].map(ev))
    const got = await fetchEvents(url, 'g', 'c1', 10)
    await ack(url, 'g', [got[0]!.tag, got[1]!.tag])
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 1, cursor: 2, inFlight: 1 })

    const r = await call(url, 'POST', '/v1/groups/g/reset', { to: 'earliest' })
    expect(r).toEqual({ status: 200, body: { cursor: 0 } })
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 3, cursor: 0, inFlight: 0 })
    const replay = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(replay.map((d) => [d.offset, d.body, d.deliveryCount])).toEqual([
      [0, ev(0), 1],
      [1, ev(1), 1],
      [2, ev(2), 1],
    ])
    // Old tags name the same offsets but an earlier generation.
    const stale = await ack(url, 'g', got.map((d) => d.tag))
    expect(stale.settled).toBe(0)
    expect(stale.failed.map((f) => f.code)).toEqual(['stale_tag', 'stale_tag', 'stale_tag'])
    expect(await ack(url, 'g', replay.map((d) => d.tag))).toEqual({ settled: 3, failed: [] })

    // Reset to latest skips what is there.
    await publish(url, 'logs', [3, 4].map(ev))
    expect((await call(url, 'POST', '/v1/groups/g/reset', { to: 'latest' })).body).toEqual({ cursor: 5 })
    expect(await fetchEvents(url, 'g', 'c1', 10, 200)).toEqual([])
    expect((await call(url, 'POST', '/v1/groups/g/reset', { to: 'yesterday-ish' })).status).toBe(400)
  })
})
