import { describe, expect, it } from 'vitest'
import { ack, call, fetchEvents, nack, sleep, type WireDelivery } from '../helpers/consume.js'
import { groupStats, publish } from '../helpers/groups.js'
import { startTestServer } from '../helpers/server.js'

function pipeline(group: string): string {
  return `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs, ${group} }
`
}

const backoff = 'retryBackoff: { initial: 100ms, multiplier: 2, jitter: 0, max: 1s }, maxDeliveries: 0'

/** Timer slack: never early by more than 10 %, at most 150 ms late (HTTP round trips, timers). */
function expectAbout(actualMs: number, expectedMs: number): void {
  expect(actualMs, `gap ${actualMs} ms, expected about ${expectedMs} ms`).toBeGreaterThanOrEqual(expectedMs * 0.9)
  expect(actualMs, `gap ${actualMs} ms, expected about ${expectedMs} ms`).toBeLessThanOrEqual(expectedMs + 150)
}

async function settle(url: string, action: 'ack' | 'extend', tags: string[]): Promise<{ settled: number; failed: Array<{ tag: string; code: string }> }> {
  const r = await call<{ settled: number; failed: Array<{ tag: string; code: string }> }>(url, 'POST', `/v1/groups/g/${action}`, { tags })
  expect(r.status).toBe(200)
  return r.body
}

/** One long-poll fetch that must bring exactly one delivery; returns it with its arrival time. */
async function one(url: string, consumer: string, waitMs = 3000): Promise<{ d: WireDelivery; at: number }> {
  const got = await fetchEvents(url, 'g', consumer, 10, waitMs)
  const at = Date.now()
  expect(got).toHaveLength(1)
  return { d: got[0]!, at }
}

describe('redelivery', () => {
  it('ack timeouts redeliver on the backoff schedule; stale tags are refused', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`ackTimeout: 200ms, ${backoff}`) })
    await publish(url, 'logs', [{ service: 'api', level: 'info', i: 0 }])
    const seen: Array<{ d: WireDelivery; at: number }> = []
    // One member only: with nobody else asking, its own timed-out delivery comes back to it.
    for (let k = 0; k < 4; k++) seen.push(await one(url, 'c1'))
    expect(seen.map((s) => [s.d.offset, s.d.deliveryCount, s.d.redelivered])).toEqual([
      [0, 1, false],
      [0, 2, true],
      [0, 3, true],
      [0, 4, true],
    ])
    expect(new Set(seen.map((s) => s.d.id)).size).toBe(1)
    // ackTimeout, then the backoff for the n-th failed delivery: 100, 200, 400 ms.
    const gaps = seen.slice(1).map((s, i) => s.at - seen[i]!.at)
    expectAbout(gaps[0]!, 200 + 100)
    expectAbout(gaps[1]!, 200 + 200)
    expectAbout(gaps[2]!, 200 + 400)
    // The tags of the timed-out deliveries are stale; the live one settles.
    const stale = await settle(url, 'ack', seen.slice(0, 3).map((s) => s.d.tag))
    expect(stale.settled).toBe(0)
    expect(stale.failed.map((f) => f.code)).toEqual(['stale_tag', 'stale_tag', 'stale_tag'])
    expect((await settle(url, 'extend', [seen[0]!.d.tag])).failed.map((f) => f.code)).toEqual(['stale_tag'])
    expect(await settle(url, 'ack', [seen[3]!.d.tag])).toEqual({ settled: 1, failed: [] })
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, inFlight: 0, delivered: 4, redelivered: 3, ackTimeouts: 3, acked: 1 })
  })

  it('nack requeue follows the backoff schedule; delayMs overrides it', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`ackTimeout: 30s, ${backoff}`) })
    await publish(url, 'logs', [{ service: 'api', level: 'info', i: 0 }])
    let cur = await one(url, 'c1')
    const counts = [cur.d.deliveryCount]
    const gaps: number[] = []
    for (let k = 0; k < 3; k++) {
      // Timed from the request: the server starts the delay before it answers.
      const nacked = Date.now()
      expect(await nack(url, 'g', [cur.d.tag], { requeue: true })).toEqual({ settled: 1, failed: [] })
      cur = await one(url, 'c1')
      expect(cur.d.redelivered).toBe(true)
      gaps.push(cur.at - nacked)
      counts.push(cur.d.deliveryCount)
    }
    expect(counts).toEqual([1, 2, 3, 4])
    expectAbout(gaps[0]!, 100)
    expectAbout(gaps[1]!, 200)
    expectAbout(gaps[2]!, 400)
    // The schedule would now wait 800 ms; an explicit delay wins.
    const nacked = Date.now()
    await nack(url, 'g', [cur.d.tag], { requeue: true, delayMs: 300 })
    cur = await one(url, 'c1')
    expectAbout(cur.at - nacked, 300)
    expect(cur.d.deliveryCount).toBe(5)
    // And a delay longer than the schedule holds the event back that long.
    await nack(url, 'g', [cur.d.tag], { requeue: true, delayMs: 1200 })
    expect(await fetchEvents(url, 'g', 'c1', 10, 900)).toEqual([])
    cur = await one(url, 'c1')
    expect(cur.d.deliveryCount).toBe(6)
    expect(await ack(url, 'g', [cur.d.tag])).toEqual({ settled: 1, failed: [] })
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, nacked: 5, redelivered: 5, ackTimeouts: 0 })
  })

  for (const dispatch of ['fair', 'round-robin']) {
    it(`${dispatch}: a delivery that timed out goes to another member when one is asking`, async () => {
      const { url } = await startTestServer({ pipeline: pipeline(`dispatch: ${dispatch}, ackTimeout: 200ms, ${backoff}`) })
      await publish(url, 'logs', [{ service: 'api', level: 'info', i: 0 }])
      const { d } = await one(url, 'c1', 0)
      expect(d.deliveryCount).toBe(1)
      // Both long-poll through the timeout; c1 asks first, so it would win any tie.
      const c1 = fetchEvents(url, 'g', 'c1', 1, 1000)
      await sleep(20)
      // c2 acks what it gets at once, so c1 could only receive a new timeout of it.
      const c2 = fetchEvents(url, 'g', 'c2', 1, 1000).then(async (got) => ({ got, acked: got.length > 0 ? await ack(url, 'g', got.map((e) => e.tag)) : undefined }))
      const [got1, { got: got2, acked }] = await Promise.all([c1, c2])
      expect(got1).toEqual([])
      expect(got2.map((e) => [e.offset, e.deliveryCount, e.redelivered])).toEqual([[0, 2, true]])
      expect(acked).toEqual({ settled: 1, failed: [] })
      expect((await ack(url, 'g', [d.tag])).failed.map((f) => f.code)).toEqual(['already_settled'])
      expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, ackTimeouts: 1, redelivered: 1 })
    })
  }

  it('extend before the deadline keeps a delivery from timing out; stopping lets it go to another member', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`ackTimeout: 200ms, ${backoff}`) })
    await publish(url, 'logs', [{ service: 'api', level: 'info', i: 0 }])
    const { d } = await one(url, 'c1')
    // c2 waits for a redelivery for over 2× ackTimeout while c1 extends every half timeout.
    const other = fetchEvents(url, 'g', 'c2', 10, 500)
    for (let k = 0; k < 5; k++) {
      await sleep(100)
      expect(await settle(url, 'extend', [d.tag])).toEqual({ settled: 1, failed: [] })
    }
    expect(await other).toEqual([])
    expect(await groupStats(url, 'g')).toMatchObject({ inFlight: 1, ackTimeouts: 0, redelivered: 0 })
    // Without more extends it times out and goes to the member that is asking.
    const t0 = Date.now()
    const moved = await one(url, 'c2')
    expect(moved.at - t0).toBeLessThanOrEqual(200 + 100 + 150)
    expect([moved.d.deliveryCount, moved.d.redelivered, moved.d.offset]).toEqual([2, true, 0])
    expect((await settle(url, 'ack', [d.tag])).failed.map((f) => f.code)).toEqual(['stale_tag'])
    expect(await settle(url, 'ack', [moved.d.tag])).toEqual({ settled: 1, failed: [] })
  })

  it('sessionTimeout: a member that stops fetching loses its in-flight events to another member', async () => {
    const { url } = await startTestServer({ pipeline: pipeline(`ackTimeout: 30s, sessionTimeout: 1s, ${backoff}`) })
    await publish(url, 'logs', [0, 1, 2].map((i) => ({ service: 'api', level: 'info', i })))
    const held = await fetchEvents(url, 'g', 'quitter', 10)
    const t0 = Date.now()
    expect(held.map((d) => [d.offset, d.deliveryCount])).toEqual([[0, 1], [1, 1], [2, 1]])
    // The quitter goes silent; the survivor long-polls and gets them, redelivered.
    const got = await fetchEvents(url, 'g', 'survivor', 10, 5000)
    const elapsed = Date.now() - t0
    expect(got.map((d) => [d.offset, d.deliveryCount, d.redelivered])).toEqual([[0, 2, true], [1, 2, true], [2, 2, true]])
    // Not before the session timed out, and within a sweep period after.
    expect(elapsed).toBeGreaterThanOrEqual(1000)
    expect(elapsed).toBeLessThan(3000)
    const stats = await groupStats(url, 'g')
    expect(stats.members.map((m) => m.name)).toEqual(['survivor'])
    expect(stats).toMatchObject({ inFlight: 3, ackTimeouts: 0, redelivered: 3 })
    const late = await ack(url, 'g', held.map((d) => d.tag))
    expect(late.failed.map((f) => f.code)).toEqual(['stale_tag', 'stale_tag', 'stale_tag'])
    expect(await ack(url, 'g', got.map((d) => d.tag))).toEqual({ settled: 3, failed: [] })
    expect((await groupStats(url, 'g')).backlog).toBe(0)
  })
})
