import { describe, expect, it } from 'vitest'
import { call, fetchEvents, nack } from '../helpers/consume.js'
import { publish, waitFor } from '../helpers/groups.js'
import { readStream, startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
  audit: { type: topic }
streams: { app-logs: {}, audit-copy: {}, dlq: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: audit, stream: app-logs, key: "audit.#" }
  - { exchange: audit, stream: audit-copy, key: "audit.#" }
groups:
  # maxDeliveries 1: a requeue dead-letters at once (delivery_limit), a reject too (rejected).
  g: { stream: app-logs, maxDeliveries: 1, deadLetter: { stream: dlq } }
`

type StoredEvent = Awaited<ReturnType<typeof readStream>>['events'][number] & { exchange: string | null }

async function events(url: string, stream: string): Promise<StoredEvent[]> {
  return (await readStream(url, stream)).events as StoredEvent[]
}

async function redrive(url: string, body: unknown): Promise<unknown> {
  const r = await call(url, 'POST', '/v1/streams/dlq/redrive', body)
  expect(r.status).toBe(200)
  return r.body
}

describe('redrive', () => {
  it('returns dead-lettered events to their original exchange and routing key, once, and filters by reason', async () => {
    const { url } = await startTestServer({ pipeline })
    const A = { service: 'api', level: 'info', n: 'A' }
    const B = { service: 'api', level: 'error', n: 'B' }
    const C = { user: 'bob', n: 'C' }
    await publish(url, 'logs', [A, B])
    await publish(url, 'audit', [C], 'audit.login')
    const got = await fetchEvents(url, 'g', 'c1', 10)
    expect(got.map((d) => [d.offset, d.routingKey])).toEqual([[0, 'api.info'], [1, 'api.error'], [2, 'audit.login']])
    await nack(url, 'g', [got[0]!.tag, got[2]!.tag], { requeue: false, reason: 'bad' }) // A, C: rejected
    await nack(url, 'g', [got[1]!.tag], { requeue: true }) // B: delivery_limit
    const dlq = await waitFor('3 dead letters', async () => {
      const e = await events(url, 'dlq')
      return e.length === 3 ? e : undefined
    })
    expect(dlq.map((e) => [(e.body as { n: string }).n, (e.headers['x-death'] as Array<{ reason: string }>)[0]!.reason])).toEqual([
      ['A', 'rejected'],
      ['C', 'rejected'],
      ['B', 'delivery_limit'],
    ])
    expect(await events(url, 'audit-copy')).toHaveLength(1)

    // Only the delivery_limit one.
    expect(await redrive(url, { filter: { reason: 'delivery_limit' } })).toEqual({ redriven: 1, skipped: 0, remaining: false })
    let app = await events(url, 'app-logs')
    expect(app).toHaveLength(4)
    expect(app[3]).toMatchObject({ offset: 3, exchange: 'logs', routingKey: 'api.error', body: B })
    expect(app[3]!.headers['x-redrive-count']).toBe(1)
    expect(app[3]!.headers['x-death']).toEqual(dlq[2]!.headers['x-death'])
    expect(await redrive(url, { filter: { reason: 'delivery_limit' } })).toEqual({ redriven: 0, skipped: 0, remaining: false })
    expect(await events(url, 'app-logs')).toHaveLength(4)

    // The rejected ones, each back through its own exchange with its own key.
    expect(await redrive(url, { filter: { reason: 'rejected' } })).toEqual({ redriven: 2, skipped: 0, remaining: false })
    app = await events(url, 'app-logs')
    expect(app.slice(4).map((e) => [e.offset, e.exchange, e.routingKey, e.body, e.headers['x-redrive-count']])).toEqual([
      [4, 'logs', 'api.info', A, 1],
      [5, 'audit', 'audit.login', C, 1],
    ])
    // Through the audit exchange, so its other binding got C again as well.
    const audit = await events(url, 'audit-copy')
    expect(audit.map((e) => [e.routingKey, e.body, e.headers['x-redrive-count'] ?? 0])).toEqual([
      ['audit.login', C, 0],
      ['audit.login', C, 1],
    ])

    // A second redrive sends nothing.
    expect(await redrive(url, {})).toEqual({ redriven: 0, skipped: 0, remaining: false })
    expect(await events(url, 'app-logs')).toHaveLength(6)
    expect(await events(url, 'audit-copy')).toHaveLength(2)

    // The group sees the three copies as new events.
    const back = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(back.map((d) => [d.offset, d.routingKey, (d.body as { n: string }).n, d.deliveryCount, d.headers['x-redrive-count']])).toEqual([
      [3, 'api.error', 'B', 1, 1],
      [4, 'api.info', 'A', 1, 1],
      [5, 'audit.login', 'C', 1, 1],
    ])
  })

  it('a limit leaves the rest for the next call, in order', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [0, 1, 2].map((i) => ({ service: 'api', level: 'info', i })))
    const got = await fetchEvents(url, 'g', 'c1', 10)
    await nack(url, 'g', got.map((d) => d.tag), { requeue: false })
    expect(await redrive(url, { limit: 2 })).toEqual({ redriven: 2, skipped: 0, remaining: true })
    expect(await redrive(url, { limit: 2 })).toEqual({ redriven: 1, skipped: 0, remaining: false })
    expect((await events(url, 'app-logs')).slice(3).map((e) => e.body)).toEqual([0, 1, 2].map((i) => ({ service: 'api', level: 'info', i })))
  })

  it('redrive is not swallowed by the exchange\'s dedup window: the copy keeps its id and is stored', async () => {
    const dedupPipeline = pipeline.replace('logs: { type: topic, routingKey: "{service}.{level}" }', 'logs: { type: topic, routingKey: "{service}.{level}", dedup: id }')
    const { url } = await startTestServer({ pipeline: dedupPipeline })
    const e = { id: 'evt-1', service: 'api', level: 'info' }
    expect(await publish(url, 'logs', [e])).toMatchObject({ accepted: 1, duplicates: 0 })
    expect(await publish(url, 'logs', [e])).toMatchObject({ accepted: 0, duplicates: 1 })
    const [d] = await fetchEvents(url, 'g', 'c1', 10)
    expect(d!.id).toBe('evt-1')
    await nack(url, 'g', [d!.tag], { requeue: false })
    expect(await redrive(url, {})).toEqual({ redriven: 1, skipped: 0, remaining: false })
    const app = await events(url, 'app-logs')
    expect(app.map((x) => [x.offset, x.id, x.headers['x-redrive-count'] ?? 0])).toEqual([
      [0, 'evt-1', 0],
      [1, 'evt-1', 1],
    ])
    const [again] = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(again).toMatchObject({ offset: 1, id: 'evt-1', body: e })
  })

  it('a stream with no dead-lettered events is refused; an empty dead-letter stream is not', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [{ service: 'api', level: 'info' }])
    const r = await call<{ error: { code: string; message: string } }>(url, 'POST', '/v1/streams/app-logs/redrive', {})
    expect(r.status).toBe(409)
    expect(r.body.error).toMatchObject({ code: 'not_dead_letters', message: expect.stringContaining('stream "app-logs" holds no dead-lettered events') })
    expect(await events(url, 'app-logs')).toHaveLength(1)
    // dlq is group g's deadLetter.stream: nothing in it yet is nothing to do, not a mistake.
    expect(await redrive(url, {})).toEqual({ redriven: 0, skipped: 0, remaining: false })
  })

  it('a redriven copy is marked: redriving the stream it landed in neither duplicates it nor counts it as a dead letter, until it dies again', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [{ service: 'api', level: 'info', n: 1 }])
    const [d] = await fetchEvents(url, 'g', 'c1', 10)
    await nack(url, 'g', [d!.tag], { requeue: false })
    await waitFor('the dead letter', async () => ((await events(url, 'dlq')).length === 1 ? true : undefined))
    expect(await redrive(url, {})).toEqual({ redriven: 1, skipped: 0, remaining: false })
    const copy = (await events(url, 'app-logs'))[1]!
    expect(copy.headers['x-redriven-death']).toEqual(expect.stringMatching(/^app-logs\/g\/rejected\/1\/\d{4}-/))

    // app-logs holds the copy, with its x-death history: still not a dead-letter stream.
    for (let i = 0; i < 2; i++) {
      const r = await call<{ error: { code: string } }>(url, 'POST', '/v1/streams/app-logs/redrive', {})
      expect([r.status, r.body.error.code]).toEqual([409, 'not_dead_letters'])
    }
    expect(await events(url, 'app-logs')).toHaveLength(2)
    expect(await redrive(url, {})).toEqual({ redriven: 0, skipped: 0, remaining: false })

    // The copy dies again: a new dead letter, redriven once more.
    const [again] = await fetchEvents(url, 'g', 'c1', 10, 1000)
    expect(again!.offset).toBe(1)
    await nack(url, 'g', [again!.tag], { requeue: false })
    const dlq = await waitFor('the second dead letter', async () => {
      const e = await events(url, 'dlq')
      return e.length === 2 ? e : undefined
    })
    expect((dlq[1]!.headers['x-death'] as Array<{ count: number }>)[0]!.count).toBe(2)
    expect(await redrive(url, {})).toEqual({ redriven: 1, skipped: 0, remaining: false })
    const app = await events(url, 'app-logs')
    expect(app.map((e) => [e.offset, e.headers['x-redrive-count'] ?? 0])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ])
  })
})
