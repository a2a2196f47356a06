import { describe, expect, it } from 'vitest'
import { ack, fetchEvents, nack, type WireDelivery } from '../helpers/consume.js'
import { cutLogAt } from '../helpers/cut-log.js'
import { groupStats, publish } from '../helpers/groups.js'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'
import { streamDir } from '../../src/streams/registry.js'

// No dead-letter target: `requeue: false` parks events in the group, so parked state has offsets too.
const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}", dedup: id }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs, ackTimeout: 1h, retryBackoff: { initial: 1h, max: 1h, jitter: 0 } }
`

const ev = (i: number, id = `e${i}`): Record<string, unknown> => ({ service: 'api', level: 'info', i, id })
const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k)

/** Fetches until the group has nothing ready, acking each batch; returns every delivery. */
async function drain(url: string): Promise<WireDelivery[]> {
  const all: WireDelivery[] = []
  for (;;) {
    const got = await fetchEvents(url, 'g', 'c', 1000, 100)
    if (got.length === 0) return all
    all.push(...got)
    await ack(
      url,
      'g',
      got.map((d) => d.tag),
    )
  }
}

/**
 * Before the cut, state of every kind sits at known offsets of 100 one-event batches:
 * in flight 0-59, acked 60-89, retry due in an hour 90-94, parked 95-99, dedup ids e0-e99, and
 * the idempotency key of the request that stored offset 99.
 */
async function stateThenCut(cut: number): Promise<{ dataDir: string; end: number }> {
  const first = await startTestServer({ pipeline })
  for (let i = 0; i < 99; i++) await publish(first.url, 'logs', [ev(i)])
  const keyed = await postNdjson(first.url, 'logs', [ev(99)], { 'idempotency-key': 'k99' })
  expect(keyed.status).toBe(200)
  const got = await fetchEvents(first.url, 'g', 'c', 100)
  expect(got.map((d) => d.offset)).toEqual(range(0, 100))
  const tags = (a: number, b: number): string[] => got.slice(a, b).map((d) => d.tag)
  expect((await ack(first.url, 'g', tags(60, 90))).settled).toBe(30)
  expect((await nack(first.url, 'g', tags(90, 95), { requeue: true, delayMs: 3_600_000 })).settled).toBe(5)
  expect((await nack(first.url, 'g', tags(95, 100), { requeue: false })).settled).toBe(5)
  expect(await groupStats(first.url, 'g')).toMatchObject({ cursor: 0, parked: 5 })
  await first.stop()
  const end = cut >= 100 ? 100 : await cutLogAt(streamDir(first.dataDir, 'app-logs'), cut)
  return { dataDir: first.dataDir, end }
}

describe('state past the log end is clamped at open', () => {
  it.each([40, 70, 92, 97, 100])('tail cut at offset %i: every event the log holds is delivered, settled ones are not', async (cut) => {
    const { dataDir, end } = await stateThenCut(cut)
    expect(end).toBe(cut)
    const { url } = await startTestServer({ pipeline, dataDir })
    expect((await readStream(url, 'app-logs')).nextOffset).toBe(end)

    // Ids and the idempotency key whose events were cut away are forgotten: a retry stores again.
    const keyed = await postNdjson(url, 'logs', [ev(99)], { 'idempotency-key': 'k99' })
    expect(await keyed.json()).toEqual(end === 100 ? { accepted: 0, duplicates: 1, unroutable: 0 } : { accepted: 1, duplicates: 0, unroutable: 0 })
    const retried = await publish(url, 'logs', range(0, 99).map((i) => ev(i)))
    expect(retried).toEqual({ accepted: Math.max(0, 99 - end), duplicates: Math.min(99, end), unroutable: 0 })
    // New events take the offsets the cut freed.
    await publish(url, 'logs', range(0, 100).map((i) => ev(i, `n${i}`)))
    const newEnd = (await readStream(url, 'app-logs')).nextOffset
    expect(newEnd).toBe(end + 100 + (100 - end))

    const below = (xs: number[]): number[] => xs.filter((o) => o < end)
    const settled = new Set(below(range(60, 90)))
    const waiting = new Set(below(range(90, 95)))
    const parked = new Set(below(range(95, 100)))
    const expected = range(0, newEnd).filter((o) => !settled.has(o) && !waiting.has(o) && !parked.has(o))
    const delivered = await drain(url)
    expect(delivered.map((d) => d.offset).sort((a, b) => a - b)).toEqual(expected)
    // Only events that existed and were handed out before the restart count as redelivered.
    for (const d of delivered) {
      const before = d.offset < Math.min(end, 60)
      expect([d.offset, d.redelivered, d.deliveryCount]).toEqual([d.offset, before, before ? 2 : 1])
    }
    expect(await groupStats(url, 'g')).toMatchObject({ backlog: waiting.size + parked.size, parked: parked.size, inFlight: 0 })
  })
})
