import { afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../src/logger.js'
import { startServer, type SluiceServer } from '../../src/server.js'
import { call, sleep } from '../helpers/consume.js'
import { testConfig } from '../helpers/server.js'
import { publish } from '../helpers/groups.js'

/**
 * The pipeline the UI tests look at: the test pipeline's log exchanges, a stream of 10,000 events,
 * a group with lag, and dead letters of every reason in one dead-letter stream.
 */
export const uiPipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}", alternate: unrouted, dedup: id }
  unrouted: { type: fanout }
  bulk: { type: direct }
streams:
  app-logs: {}
  errors: {}
  unrouted: {}
  big: {}
  short: {}
  dlq: {}
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: logs, stream: errors, key: "*.error" }
  - { exchange: unrouted, stream: unrouted }
  - { exchange: bulk, stream: big, key: big }
  - { exchange: bulk, stream: short, key: short }
groups:
  indexer: { stream: app-logs, prefetch: 10, maxDeliveries: 2, deadLetter: { stream: dlq }, start: earliest }
  alerts: { stream: errors, maxBacklog: 3, overflow: dead-letter, deadLetter: { stream: dlq }, start: earliest }
  expiring: { stream: short, messageTtl: 1ms, deadLetter: { stream: dlq }, start: earliest }
`

export interface Seeded {
  readonly url: string
  readonly server: SluiceServer
  /** When the seeding was done and settled (ms since the epoch): samples before it saw it under way. */
  readonly settledAt: number
}

/** One server for a whole test file (the browser tests share it), stopped and removed after; `extra` is YAML added to the pipeline (an auth section). */
export async function seededServer(extra = ''): Promise<Seeded> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-ui-'))
  const server = await startServer(testConfig(dataDir, uiPipeline + extra), createLogger('silent'))
  afterAll(async () => {
    await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  })
  const url = server.httpUrl
  // 30 log records, 5 of them errors: app-logs 30, errors 5 (alerts keeps 3, 2 go as maxlen).
  const records = Array.from({ length: 30 }, (_, i) => ({ service: i % 2 === 0 ? 'api' : 'web', level: i % 6 === 5 ? 'error' : 'info', message: `record ${i}`, n: i }))
  await publish(url, 'logs', records)
  // 10,000 events in one stream, for the paged browser.
  for (let k = 0; k < 2; k++) await publish(url, 'bulk', Array.from({ length: 5000 }, (_, i) => ({ n: k * 5000 + i, message: `bulk event ${k * 5000 + i}` })), 'big')
  await publish(url, 'bulk', [{ message: 'short-lived 1' }, { message: 'short-lived 2' }], 'short')

  // rejected: two events nacked without requeue.
  const first = await call<{ events: Array<{ tag: string }> }>(url, 'POST', '/v1/groups/indexer/fetch', { consumer: 'seed', max: 3 })
  await call(url, 'POST', '/v1/groups/indexer/nack', { consumer: 'seed', tags: first.body.events.slice(0, 2).map((e) => e.tag), requeue: false })
  // delivery_limit: the third, nacked with requeue until maxDeliveries.
  let tag = first.body.events[2]!.tag
  for (let i = 0; i < 2; i++) {
    await call(url, 'POST', '/v1/groups/indexer/nack', { consumer: 'seed', tags: [tag], requeue: true, delayMs: 0 })
    if (i === 1) break
    const again = await call<{ events: Array<{ tag: string }> }>(url, 'POST', '/v1/groups/indexer/fetch', { consumer: 'seed', max: 1, waitMs: 2000 })
    tag = again.body.events[0]!.tag
  }
  // expired: a fetch finds both short-lived events past their 1 ms TTL.
  await sleep(20)
  await call(url, 'POST', '/v1/groups/expiring/fetch', { consumer: 'seed', max: 10, waitMs: 200 })
  // Dead-lettering is asynchronous: wait until all four reasons are in.
  for (let i = 0; i < 100; i++) {
    const read = await call<{ endOffset: number }>(url, 'GET', '/v1/streams/dlq/events?limit=1')
    if (read.body.endOffset >= 7) break
    await sleep(50)
  }
  // And the group settles what it dead-lettered after the dead letter is stored: 30 less 3.
  for (let i = 0; i < 100; i++) {
    if ((await call<{ backlog: number }>(url, 'GET', '/v1/groups/indexer')).body.backlog === 27) break
    await sleep(50)
  }
  return { url, server, settledAt: Date.now() }
}
