import { describe, expect, it } from 'vitest'
import { ack, call, fetchEvents, sleep } from '../helpers/consume.js'
import { groupStats, publish, type WireGroupStats } from '../helpers/groups.js'
import { startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {}, errors: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: logs, stream: errors, key: "*.error" }
groups:
  manual: { stream: app-logs, prefetch: 10, ackTimeout: 30s }
  auto: { stream: app-logs, ackMode: auto, prefetch: 10, ackTimeout: 200ms, retryBackoff: { initial: 50ms, jitter: 0 } }
  err: { stream: errors }
`

const ev = (i: number, level = 'info'): Record<string, unknown> => ({ service: 'api', level, i })

describe('ackMode auto', () => {
  it('settles on delivery: backlog 0 right after the fetch, nothing redelivered after ackTimeout', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [0, 1, 2].map((i) => ev(i)))
    expect((await groupStats(url, 'auto')).backlog).toBe(3)
    const got = await fetchEvents(url, 'auto', 'c1', 10)
    expect(got.map((d) => [d.offset, d.deliveryCount, d.redelivered])).toEqual([[0, 1, false], [1, 1, false], [2, 1, false]])
    expect(await groupStats(url, 'auto')).toMatchObject({ backlog: 0, inFlight: 0, delivered: 3, acked: 3, cursor: 3 })
    // Well past ackTimeout + backoff: nothing comes back, to this member or another.
    await sleep(450)
    expect(await fetchEvents(url, 'auto', 'c2', 10, 200)).toEqual([])
    expect(await fetchEvents(url, 'auto', 'c1', 10, 0)).toEqual([])
    expect(await groupStats(url, 'auto')).toMatchObject({ backlog: 0, delivered: 3, redelivered: 0, ackTimeouts: 0 })
    // An ack of an auto delivery has nothing to do.
    expect((await ack(url, 'auto', [got[0]!.tag])).failed.map((f) => f.code)).toEqual(['already_settled'])
    // The manual group on the same stream is unaffected.
    expect((await groupStats(url, 'manual')).backlog).toBe(3)
  })

  it('the auto settle is durable: after a restart nothing is delivered again', async () => {
    const first = await startTestServer({ pipeline })
    await publish(first.url, 'logs', [0, 1].map((i) => ev(i)))
    expect(await fetchEvents(first.url, 'auto', 'c1', 10)).toHaveLength(2)
    await first.stop()
    const { url } = await startTestServer({ pipeline, dataDir: first.dataDir })
    expect(await groupStats(url, 'auto')).toMatchObject({ backlog: 0, cursor: 2 })
    expect(await fetchEvents(url, 'auto', 'c1', 10, 200)).toEqual([])
  })
})

describe('group stats', () => {
  it('GET /v1/groups and /v1/groups/{g}: backlog, lag, in flight, counters, members with credit', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [ev(0), ev(1), ev(2, 'error')])
    await sleep(300)
    const got = await fetchEvents(url, 'manual', 'm1', 2)
    expect(got.map((d) => d.offset)).toEqual([0, 1])
    expect(await ack(url, 'manual', [got[0]!.tag])).toEqual({ settled: 1, failed: [] })
    const m2got = await fetchEvents(url, 'manual', 'm2', 1, 0)
    expect(m2got.map((d) => d.offset)).toEqual([2])

    const s = await groupStats(url, 'manual')
    expect(s).toMatchObject({ name: 'manual', stream: 'app-logs', cursor: 1, backlog: 2, inFlight: 2, delivered: 3, acked: 1, nacked: 0, redelivered: 0, ackTimeouts: 0, parked: 0 })
    // Offset 1, stored ≥ 300 ms ago, is still unsettled.
    expect(s.lagSeconds).toBeGreaterThanOrEqual(0.28)
    expect(s.lagSeconds).toBeLessThan(10)
    const members = [...s.members].sort((a, b) => a.name.localeCompare(b.name))
    expect(members.map((m) => [m.name, m.inFlight, m.assigned, m.credit])).toEqual([
      ['m1', 1, 0, 9],
      ['m2', 1, 0, 9],
    ])
    for (const m of members) expect(Date.now() - Date.parse(m.lastSeen)).toBeLessThan(5000)
    expect(s.config).toMatchObject({ name: 'manual', stream: 'app-logs', prefetch: 10 })

    const all = await call<{ groups: WireGroupStats[] }>(url, 'GET', '/v1/groups')
    expect(all.status).toBe(200)
    const byName = Object.fromEntries(all.body.groups.map((g) => [g.name, g]))
    expect(Object.keys(byName).sort()).toEqual(['auto', 'err', 'manual'])
    expect(byName.manual).toMatchObject({ backlog: 2, inFlight: 2, delivered: 3, acked: 1 })
    expect(byName.manual!.lagSeconds).toBeGreaterThanOrEqual(0.28)
    // Groups on the same stream are independent; one on another stream counts its own events.
    expect(byName.auto).toMatchObject({ stream: 'app-logs', backlog: 3, inFlight: 0, delivered: 0, members: [] })
    expect(byName.err).toMatchObject({ stream: 'errors', backlog: 1, delivered: 0 })
    expect(byName.err!.lagSeconds).toBeGreaterThanOrEqual(0.28)

    // Settling moves the cursor; once all is settled there is no backlog and no lag.
    await ack(url, 'manual', [got[1]!.tag])
    expect(await groupStats(url, 'manual')).toMatchObject({ cursor: 2, backlog: 1, inFlight: 1, acked: 2 })
    expect(await ack(url, 'manual', [m2got[0]!.tag])).toEqual({ settled: 1, failed: [] })
    const done = await groupStats(url, 'manual')
    expect(done).toMatchObject({ cursor: 3, backlog: 0, lagSeconds: 0, inFlight: 0, acked: 3 })
    expect(done.members.map((m) => m.credit)).toEqual([10, 10])
    expect((await call(url, 'GET', '/v1/groups/nope')).status).toBe(404)
  })

  it('an empty group reports zero lag and full credit', async () => {
    const { url } = await startTestServer({ pipeline })
    expect(await fetchEvents(url, 'manual', 'm1', 10, 0)).toEqual([])
    const s = await groupStats(url, 'manual')
    expect(s).toMatchObject({ backlog: 0, lagSeconds: 0, inFlight: 0, delivered: 0, members: [expect.objectContaining({ name: 'm1', inFlight: 0, credit: 10 })] })
  })
})
