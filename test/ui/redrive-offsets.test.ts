// Redriving one dead letter or a hand-picked selection by offset (POST /v1/streams/{stream}/redrive
// with `offsets`), and counting a selection first (GET .../dead-letters?offsets=), over real sockets.

import { beforeAll, describe, expect, it } from 'vitest'
import { limitHits } from '../../src/limits.js'
import { call } from '../helpers/consume.js'
import { startTestServer } from '../helpers/server.js'
import { seededServer, type Seeded } from './seed.js'

let seeded: Seeded

beforeAll(async () => {
  seeded = await seededServer()
})

interface Death {
  reason: string
  group: string
  exchange: string
}
type DlqEvent = { offset: number; headers: { 'x-death': Death[] } }

describe('redrive by offset', () => {
  it('counts a selection, redrives exactly it (each once, in order), and leaves the rest', async () => {
    const dlq = (await call<{ events: DlqEvent[] }>(seeded.url, 'GET', '/v1/streams/dlq/events?limit=100')).body.events
    expect(dlq).toHaveLength(7)
    const pick = dlq.filter((e) => e.headers['x-death'][0]!.group === 'indexer').map((e) => e.offset)
    expect(pick).toHaveLength(3)
    const [a, b] = pick
    const counted = await call<{ matching: number; byReason: Record<string, number>; scanned: number }>(seeded.url, 'GET', `/v1/streams/dlq/dead-letters?offsets=${b},${a},${b}`)
    expect(counted.body.matching).toBe(2)
    expect(counted.body.scanned).toBe(2)
    const reasons: Record<string, number> = {}
    for (const e of dlq.filter((x) => x.offset === a || x.offset === b)) reasons[e.headers['x-death'][0]!.reason] = (reasons[e.headers['x-death'][0]!.reason] ?? 0) + 1
    expect(counted.body.byReason).toEqual(reasons)

    const appLogs = (await call<{ events: number }>(seeded.url, 'GET', '/v1/streams/app-logs')).body.events
    const r = await call(seeded.url, 'POST', '/v1/streams/dlq/redrive', { offsets: [b, a, b, 999_999] })
    expect(r).toEqual({ status: 200, body: { redriven: 2, skipped: 0, remaining: false, notFound: 1 } })
    // Back at their origin (indexer's stream, through exchange logs), and only those two.
    const back = await call<{ events: Array<{ offset: number; headers: Record<string, unknown> }> }>(seeded.url, 'GET', `/v1/streams/app-logs/events?from=${appLogs}`)
    expect(back.body.events.map((e) => e.headers['x-redrive-count'])).toEqual([1, 1])
    const after = await call<{ matching: number }>(seeded.url, 'GET', '/v1/streams/dlq/dead-letters')
    expect(after.body.matching).toBe(5)
    // Once: a second redrive of the same offset finds nothing to send.
    expect((await call(seeded.url, 'POST', '/v1/streams/dlq/redrive', { offsets: [a] })).body).toEqual({ redriven: 0, skipped: 0, remaining: false, notFound: 1 })
    // A selection and a filter: only what both pick.
    const third = pick[2]!
    expect((await call(seeded.url, 'POST', '/v1/streams/dlq/redrive', { offsets: [third], filter: { group: 'alerts' } })).body).toMatchObject({ redriven: 0, notFound: 1 })
    expect((await call(seeded.url, 'POST', '/v1/streams/dlq/redrive', { offsets: [third], filter: { group: 'indexer' } })).body).toMatchObject({ redriven: 1, notFound: 0 })
  })

  it('refuses offsets that are not offsets, and more than server.http.maxRedriveOffsets', async () => {
    for (const offsets of [[], [-1], ['3'], 5]) expect((await call(seeded.url, 'POST', '/v1/streams/dlq/redrive', { offsets })).status).toBe(400)
    expect((await call(seeded.url, 'GET', '/v1/streams/dlq/dead-letters?offsets=1,x')).status).toBe(400)
    const s = await startTestServer({ server: '  http: { port: 0, maxRedriveOffsets: 2 }' })
    const before = limitHits.get('http.maxRedriveOffsets') ?? 0
    const r = await call<{ error: { code: string; message: string } }>(s.url, 'POST', '/v1/streams/errors/redrive', { offsets: [0, 1, 2] })
    expect(r.status).toBe(400)
    expect(r.body.error.message).toBe('offsets 3 is over server.http.maxRedriveOffsets (2)')
    expect((await call(s.url, 'GET', '/v1/streams/errors/dead-letters?offsets=0,1,2')).status).toBe(400)
    expect(limitHits.get('http.maxRedriveOffsets')).toBe(before + 2)
  })
})
