import { describe, expect, it } from 'vitest'
import { ack, fetchEvents, sleep } from '../helpers/consume.js'
import { groupStats, publish } from '../helpers/groups.js'
import { startTestServer } from '../helpers/server.js'

const N = 60

function pipeline(dispatch: string, prefetch: number): string {
  return `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs, dispatch: ${dispatch}, prefetch: ${prefetch}, ackTimeout: 30s }
`
}

/**
 * Two members long-poll in loops (max 10 a fetch) until all N events are acked: `slow` sleeps
 * 50 ms per event before acking it, `fast` acks at once. Returns the offsets each received.
 */
async function race(dispatch: 'fair' | 'round-robin', prefetch: number): Promise<{ fast: number[]; slow: number[]; acked: Set<number> }> {
  const { url } = await startTestServer({ pipeline: pipeline(dispatch, prefetch) })
  // Both members join before anything is published: round-robin deals events to the members it
  // knows, in turn, so a member that joins late would find the first events already dealt.
  expect(await fetchEvents(url, 'g', 'fast', 10, 0)).toEqual([])
  expect(await fetchEvents(url, 'g', 'slow', 10, 0)).toEqual([])
  expect((await groupStats(url, 'g')).members.map((m) => m.name).sort()).toEqual(['fast', 'slow'])

  const acked = new Set<number>()
  const got = { fast: [] as number[], slow: [] as number[] }
  const deadline = Date.now() + 15_000
  const loop = async (name: 'fast' | 'slow', perEventMs: number): Promise<void> => {
    while (acked.size < N && Date.now() < deadline) {
      const events = await fetchEvents(url, 'g', name, 10, 300)
      for (const e of events) {
        got[name].push(e.offset)
        if (perEventMs > 0) await sleep(perEventMs)
        const r = await ack(url, 'g', [e.tag])
        expect(r).toEqual({ settled: 1, failed: [] })
        acked.add(e.offset)
      }
    }
  }
  const loops = Promise.all([loop('fast', 0), loop('slow', 50)])
  await sleep(100) // both long polls are waiting
  await publish(
    url,
    'logs',
    Array.from({ length: N }, (_, i) => ({ service: 'api', level: 'info', i })),
  )
  await loops
  const stats = await groupStats(url, 'g')
  expect(stats).toMatchObject({ backlog: 0, inFlight: 0, acked: N, delivered: N, redelivered: 0 })
  return { ...got, acked }
}

describe('dispatch', () => {
  it('fair: the member with free credit gets the events, so the fast member takes most', async () => {
    const { fast, slow, acked } = await race('fair', 10)
    // Every event once, to exactly one member.
    expect(acked.size).toBe(N)
    expect([...fast, ...slow].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
    expect(fast.length + slow.length).toBe(N)
    // The slow member holds its first batch for ~0.5 s while the fast one drains the rest: most
    // of it (an even split would be N/2), with room for a busy machine slowing the fast loop too.
    expect(fast.length).toBeGreaterThanOrEqual(0.6 * N)
    expect(slow.length).toBeGreaterThan(0)
    // Each member sees its own events in stream order.
    expect(fast).toEqual([...fast].sort((a, b) => a - b))
    expect(slow).toEqual([...slow].sort((a, b) => a - b))
  })

  it('round-robin: members in turn, ignoring load, so the split is even', async () => {
    // Prefetch above N/2: credit never binds, so the turn alone decides (with prefetch 10 the
    // slow member's full credit would hand its turns to the fast one, as RabbitMQ does too).
    const { fast, slow, acked } = await race('round-robin', 40)
    expect(acked.size).toBe(N)
    expect([...fast, ...slow].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
    expect(Math.abs(fast.length - N / 2)).toBeLessThanOrEqual(N * 0.1)
    expect(Math.abs(slow.length - N / 2)).toBeLessThanOrEqual(N * 0.1)
    // In turn: the events alternate between the members.
    const fastSet = new Set(fast)
    const owners = Array.from({ length: N }, (_, i) => (fastSet.has(i) ? 'f' : 's'))
    let alternations = 0
    for (let i = 1; i < N; i++) if (owners[i] !== owners[i - 1]) alternations++
    expect(alternations).toBeGreaterThanOrEqual(N - 5)
  })

  it('round-robin: events dealt to a member that never fetches again go to the others after its session times out', async () => {
    const { url } = await startTestServer({
      pipeline: pipeline('round-robin', 100).replace('ackTimeout: 30s', 'ackTimeout: 30s, sessionTimeout: 1s'),
    })
    expect(await fetchEvents(url, 'g', 'quitter', 10, 0)).toEqual([])
    expect(await fetchEvents(url, 'g', 'worker', 10, 0)).toEqual([])
    await publish(url, 'logs', Array.from({ length: 10 }, (_, i) => ({ service: 'api', level: 'info', i })))
    const t0 = Date.now()
    const mine = await fetchEvents(url, 'g', 'worker', 100, 1000)
    expect(mine).toHaveLength(5)
    await ack(url, 'g', mine.map((d) => d.tag))
    // The quitter's half waits in its queue: dealt, not delivered.
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 5, inFlight: 0 })
    const rest = await fetchEvents(url, 'g', 'worker', 100, 5000)
    const elapsed = Date.now() - t0
    expect(rest).toHaveLength(5)
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect([...mine, ...rest].map((d) => d.offset).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i))
    // Never delivered before: first deliveries, not redeliveries.
    expect(rest.map((d) => [d.deliveryCount, d.redelivered])).toEqual(Array.from({ length: 5 }, () => [1, false]))
    await ack(url, 'g', rest.map((d) => d.tag))
    const stats = await groupStats(url, 'g')
    expect(stats).toMatchObject({ backlog: 0, redelivered: 0 })
    expect(stats.members.map((m) => m.name)).toEqual(['worker'])
  })
})

