import { describe, expect, it } from 'vitest'
import { groupStats, publish, waitFor, type WireDeath } from '../helpers/groups.js'
import { readStream, startTestServer } from '../helpers/server.js'

// The delay-queue pattern: events wait in `wait` for its TTL, nobody consumes it, and the
// dead-letter exchange sends them on to `work`.
const delayPipeline = (messageTtl?: string): string => `
exchanges:
  delay: { type: fanout }
  work: { type: fanout }
streams: { wait: {}, work: {} }
bindings:
  - { exchange: delay, stream: wait }
  - { exchange: work, stream: work }
groups:
  wait: { stream: wait, ${messageTtl === undefined ? '' : `messageTtl: ${messageTtl}, `}deadLetter: { exchange: work } }
`
const pipeline = delayPipeline('300ms')

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
    const { url, server } = await startTestServer({ pipeline: delayPipeline() })
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

describe('per-event TTL over HTTP', () => {
  const pipeline = delayPipeline()
  const post = (url: string, body: string, headers: Record<string, string>, query = ''): Promise<Response> =>
    fetch(`${url}/v1/exchanges/delay/publish${query}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...headers }, body })

  it('x-event-ttl gives every event of the request a TTL; an envelope ttl wins; neither is stored as a header "ttl"', async () => {
    const { url } = await startTestServer({ pipeline })
    const a = await post(url, '{"i":0}\n{"i":1}\n', { 'x-event-ttl': '150', 'x-event-team': 'web' })
    expect(a.status).toBe(200)
    const b = await post(url, '{"body":{"i":2},"ttl":"100"}\n{"body":{"i":3},"ttl":60000}\n{"body":{"i":4}}\n', {}, '?envelope=true')
    expect(b.status).toBe(200)
    const moved = await waitFor('3 events in work', async () => {
      const { events } = await readStream(url, 'work')
      return events.length === 3 ? events : undefined
    })
    expect(moved.map((e) => (e.body as { i: number }).i).sort()).toEqual([0, 1, 2])
    const first = moved.find((e) => (e.body as { i: number }).i === 0)!
    expect(first.headers.team).toBe('web')
    expect(first.headers.ttl).toBeUndefined()
    expect(first.headers['x-death']).toBeDefined()
    // 3 has a minute to live and 4 none at all: both wait for a consumer.
    expect(await groupStats(url, 'wait')).toMatchObject({ backlog: 2, deadLettered: { expired: 3 } })
  })

  it('a TTL that is not whole milliseconds in range is a 400 naming it, and nothing is stored', async () => {
    const { url } = await startTestServer({ pipeline })
    for (const bad of ['1.5', '-1', 'soon', String(2 ** 32)]) {
      const r = await post(url, '{"i":0}\n', { 'x-event-ttl': bad })
      expect(r.status).toBe(400)
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain('x-event-ttl')
    }
    const e = await post(url, '{"body":{"i":0}}\n{"body":{"i":1},"ttl":-5}\n', {}, '?envelope=true')
    expect(e.status).toBe(400)
    expect(((await e.json()) as { error: { message: string } }).error.message).toMatch(/line 2.*"ttl"|"ttl".*line 2/s)
    expect((await readStream(url, 'wait')).events).toEqual([])
  })
})
