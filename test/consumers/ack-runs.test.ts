import { describe, expect, it } from 'vitest'
import { call, fetchEvents, type WireDelivery } from '../helpers/consume.js'
import { postNdjson, startTestServer, testPipeline } from '../helpers/server.js'

// Acks by run: `upTo` settles what a consumer holds up to a tag, in delivery order (AMQP's
// multiple); `ranges` settles the deliveries between two tags of one consumer. What lies outside
// the run, and what another consumer holds, stays in flight and comes back on its timeout.

const pipeline = `${testPipeline}
groups:
  work: { stream: app-logs, ackTimeout: 1s, prefetch: 100 }
`

interface Settled {
  settled: number
  failed: Array<{ tag: string; code: string }>
}

const ack = (url: string, body: unknown): Promise<{ status: number; body: Settled }> => call<Settled>(url, 'POST', '/v1/groups/work/ack', body)
const stats = async (url: string): Promise<{ cursor: number; inFlight: number; acked: number }> => (await call<{ cursor: number; inFlight: number; acked: number }>(url, 'GET', '/v1/groups/work')).body
const ns = (ds: WireDelivery[]): number[] => ds.map((d) => (d.body as { n: number }).n)

describe('acks by run', () => {
  it('upTo and ranges settle exactly the run, in delivery order, and nothing of another consumer', async () => {
    const s = await startTestServer({ pipeline })
    expect((await postNdjson(s.url, 'logs', Array.from({ length: 30 }, (_, n) => ({ service: 'web', level: 'info', n })))).status).toBe(200)
    const a1 = await fetchEvents(s.url, 'work', 'alice', 10)
    const b1 = await fetchEvents(s.url, 'work', 'bob', 10)
    const a2 = await fetchEvents(s.url, 'work', 'alice', 10)
    expect([ns(a1), ns(b1), ns(a2)]).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]])

    // alice's second fetch, from its 3rd to its 8th delivery: six settled, the rest still hers.
    expect((await ack(s.url, { ranges: [[a2[2]!.tag, a2[7]!.tag]] })).body).toEqual({ settled: 6, failed: [] })
    // Ends given the other way round name the same run; settled ones are already gone.
    expect((await ack(s.url, { ranges: [[a2[9]!.tag, a2[8]!.tag]] })).body).toEqual({ settled: 2, failed: [] })
    // upTo alice's 5th delivery: her first five, not bob's, whose offsets lie between.
    expect((await ack(s.url, { upTo: a1[4]!.tag })).body).toEqual({ settled: 5, failed: [] })
    expect((await stats(s.url)).inFlight).toBe(30 - 13)
    // A run whose ends are two consumers' settles nothing and says which end is not its run's.
    const mixed = await ack(s.url, { ranges: [[a1[5]!.tag, b1[3]!.tag]] })
    expect(mixed.body).toEqual({ settled: 0, failed: [{ tag: a1[5]!.tag, code: 'not_yours', message: expect.any(String) }] })
    // An end already settled: nothing of that run, the tag says why.
    const done = await ack(s.url, { upTo: a1[0]!.tag })
    expect(done.body.settled).toBe(0)
    expect(done.body.failed.map((f) => f.code)).toEqual(['already_settled'])
    // upTo alice's last delivery settles all she holds: a1[5..9] and a2[0..1].
    expect((await ack(s.url, { upTo: a2[1]!.tag })).body).toEqual({ settled: 7, failed: [] })
    expect((await ack(s.url, { upTo: b1[9]!.tag, consumer: 'bob' })).body).toEqual({ settled: 10, failed: [] })
    const st = await stats(s.url)
    expect(st).toMatchObject({ cursor: 30, inFlight: 0, acked: 30 })
  })

  it('refuses a body naming its deliveries two ways, and malformed runs', async () => {
    const s = await startTestServer({ pipeline })
    expect((await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info', n: 0 }])).status).toBe(200)
    const [d] = await fetchEvents(s.url, 'work', 'alice', 1)
    const both = await ack(s.url, { tags: [d!.tag], upTo: d!.tag })
    expect(both.status).toBe(400)
    for (const ranges of [[], [[d!.tag]], [[d!.tag, 5]], 'x']) expect((await ack(s.url, { ranges })).status).toBe(400)
    expect((await ack(s.url, { upTo: 7 })).status).toBe(400)
    // Nothing was settled by the refusals.
    expect((await stats(s.url)).inFlight).toBe(1)
    expect((await ack(s.url, { ranges: [[d!.tag, d!.tag]] })).body).toEqual({ settled: 1, failed: [] })
    // The same tag twice in one ack settles once; the second is named.
    expect((await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info', n: 1 }])).status).toBe(200)
    const [e] = await fetchEvents(s.url, 'work', 'alice', 1)
    const twice = await ack(s.url, { tags: [e!.tag, e!.tag] })
    expect(twice.body.settled).toBe(1)
    expect(twice.body.failed.map((f) => f.tag)).toEqual([e!.tag])
    expect((await stats(s.url)).acked).toBe(2)
  })
})
