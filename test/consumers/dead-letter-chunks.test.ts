import { describe, expect, it } from 'vitest'
import { fetchEvents, nack } from '../helpers/consume.js'
import { groupStats, publish } from '../helpers/groups.js'
import { readStream, startTestServer } from '../helpers/server.js'

// The dead-letter stream's segments are far smaller than one nack's worth of events.
const pipeline = `
exchanges:
  logs: { type: topic }
streams:
  work: {}
  dlq: { segmentSize: 1mb }
bindings:
  - { exchange: logs, stream: work, key: "#" }
groups:
  g: { stream: work, prefetch: 1000, deadLetter: { stream: dlq } }
`

describe('dead-lettering goes through the one append path', () => {
  it('a nack of 2 MB of events lands whole in a dead-letter stream with 1 MiB segments', async () => {
    const { url } = await startTestServer({ pipeline })
    const pad = 'x'.repeat(10_000)
    const bodies = Array.from({ length: 200 }, (_, i) => ({ i, pad }))
    await publish(url, 'logs', bodies, 'k')
    const got = await fetchEvents(url, 'g', 'c', 1000)
    expect(got).toHaveLength(200)
    const res = await nack(
      url,
      'g',
      got.map((d) => d.tag),
      { requeue: false },
    )
    expect(res).toEqual({ settled: 200, failed: [] })
    const dead: Awaited<ReturnType<typeof readStream>> = { events: [], nextOffset: 0 }
    for (let page = await readStream(url, 'dlq', 0, 1000); page.events.length > 0; page = await readStream(url, 'dlq', page.nextOffset, 1000)) dead.events.push(...page.events)
    expect(dead.events.map((e) => (e.body as { i: number }).i)).toEqual(bodies.map((b) => b.i))
    expect(dead.events.every((e) => (e.headers['x-death'] as Array<{ reason: string }>)[0]!.reason === 'rejected')).toBe(true)
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: 0, inFlight: 0, deadLettered: { rejected: 200 } })
  })
})
describe('a dead-letter target that can never take an event', () => {
  it('parks it in the group instead of retrying forever', async () => {
    const { url } = await startTestServer({
      pipeline: `
exchanges:
  logs: { type: topic }
streams:
  work: {}
  tiny-dlq: { segmentSize: 4kb }
bindings:
  - { exchange: logs, stream: work, key: "#" }
groups:
  g: { stream: work, deadLetter: { stream: tiny-dlq } }
`,
    })
    // 10 kB: fits the work stream, never a 4 kB segment.
    await publish(url, 'logs', [{ big: 'y'.repeat(10_000) }, { small: 1 }], 'k')
    const got = await fetchEvents(url, 'g', 'c', 10)
    expect(got).toHaveLength(2)
    expect(
      await nack(
        url,
        'g',
        got.map((d) => d.tag),
        { requeue: false },
      ),
    ).toEqual({ settled: 2, failed: [] })
    const stats = await groupStats(url, 'g')
    expect(stats).toMatchObject({ parked: 1, inFlight: 0, backlog: 1 })
    expect((await readStream(url, 'tiny-dlq')).events.map((e) => e.body)).toEqual([{ small: 1 }])
  })
})
