import { describe, expect, it } from 'vitest'
import { groupStats, publish, waitFor, type WireDeath } from '../helpers/groups.js'
import { readStream, startTestServer } from '../helpers/server.js'

// The delay-queue pattern: events wait in `wait` for its TTL, nobody consumes it, and the
// dead-letter exchange sends them on to `work`.
const pipeline = `
exchanges:
  delay: { type: fanout }
  work: { type: fanout }
streams: { wait: {}, work: {} }
bindings:
  - { exchange: delay, stream: wait }
  - { exchange: work, stream: work }
groups:
  wait: { stream: wait, messageTtl: 300ms, deadLetter: { exchange: work } }
`

describe('TTL expiry without a consumer', () => {
  it('dead-letters expired events at the head on a timer, with no consumer at all', async () => {
    const { url } = await startTestServer({ pipeline })
    const sent = Date.now()
    await publish(url, 'delay', Array.from({ length: 50 }, (_, i) => ({ i })))
    expect((await readStream(url, 'work')).events).toEqual([])
    const moved = await waitFor('50 events in work', async () => {
      const { events } = await readStream(url, 'work')
      return events.length === 50 ? events : undefined
    })
    // Not before their TTL, and in order.
    expect(Date.now() - sent).toBeGreaterThanOrEqual(290)
    expect(moved.map((e) => (e.body as { i: number }).i)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    const deaths = moved.map((e) => (e.headers['x-death'] as WireDeath[])[0]!)
    expect(deaths.every((d) => d.reason === 'expired' && d.group === 'wait')).toBe(true)
    expect(await groupStats(url, 'wait')).toMatchObject({ backlog: 0, deadLettered: { expired: 50 } })
  })
})

describe('per-event TTL', () => {
  it('an event with its own TTL expires at the head; one without stays; the dead letter keeps no TTL', async () => {
    const { url, server } = await startTestServer({
      pipeline: `
exchanges:
  delay: { type: fanout }
  work: { type: fanout }
streams: { wait: {}, work: {} }
bindings:
  - { exchange: delay, stream: wait }
  - { exchange: work, stream: work }
groups:
  wait: { stream: wait, deadLetter: { exchange: work } }
`,
    })
    const event = (i: number, ttlMs?: number) => ({ body: Buffer.from(JSON.stringify({ i })), value: { i }, json: true, ttlMs })
    await server.publisher.publish({ exchange: 'delay', events: [event(0, 200), event(1, 200), event(2)] })
    const moved = await waitFor('2 events in work', async () => {
      const { events } = await readStream(url, 'work')
      return events.length === 2 ? events : undefined
    })
    expect(moved.map((e) => e.body)).toEqual([{ i: 0 }, { i: 1 }])
    expect(moved[0]!.headers['x-expires-at']).toBeUndefined()
    expect(typeof moved[0]!.headers['x-original-expires-at']).toBe('number')
    expect(await groupStats(url, 'wait')).toMatchObject({ backlog: 1, deadLettered: { expired: 2 } })
  })
})
