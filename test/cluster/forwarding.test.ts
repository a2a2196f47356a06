// Any node serves any door: a publish taken by one node is stored in each target stream at that
// stream's home node, once, through HTTP, AMQP (amqplib) and syslog over TCP. Real etcd, three
// Sluice processes, loopback only.

import { createConnection } from 'node:net'
import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView } from '../../src/cluster/index.js'
import { signForwarded } from '../../src/auth/forwarded.js'
import { clusterSecret, nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/programs.js'

const streams = ['s1', 's2', 's3']

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir, { syslogExchange: 'logs' })}exchanges:
  logs: { type: fanout, dedup: id }
  one: { type: direct }
streams:
${streams.map((s) => `  ${s}: {}`).join('\n')}
bindings:
${streams.map((s) => `  - { exchange: logs, stream: ${s} }\n  - { exchange: one, stream: ${s}, key: ${s} }`).join('\n')}
groups:
  g1: { stream: s1, ackTimeout: 30s }
`

interface StoredEvent {
  readonly offset: number
  readonly id?: string
  readonly body: unknown
  readonly routingKey: string
}

describe('forwarding publishes to the home node of each stream', () => {
  let cluster: TestCluster
  let view: ClusterView
  /** Stream → its home node id. */
  const home = new Map<string, string>()

  const publish = (node: string, exchange: string, events: unknown[], key?: string): Promise<Response> =>
    fetch(`${cluster.node(node).url}/v1/exchanges/${exchange}/publish${key === undefined ? '' : `?routingKey=${key}`}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(events),
    })

  const read = async (node: string, stream: string): Promise<StoredEvent[]> => {
    const res = await fetch(`${cluster.node(node).url}/v1/streams/${stream}/events?from=earliest&limit=10000&copy=local`)
    expect(res.status).toBe(200)
    return ((await res.json()) as { events: StoredEvent[] }).events
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ ids: ['n1', 'n2', 'n3'], yaml })
    view = await cluster.settled(streams.length)
    for (const p of view.placement) home.set(p.stream, p.node)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('places one stream on each node', () => {
    expect([...home.keys()].sort()).toEqual(streams)
    expect(new Set(home.values()).size).toBe(3)
  })

  it('HTTP: a fan-out publish to each node lands once in every stream, only at its home', async () => {
    for (const [k, node] of ['n1', 'n2', 'n3'].entries()) {
      const events = Array.from({ length: 100 }, (_, i) => ({ id: `h-${k * 100 + i}`, n: k * 100 + i }))
      const res = await publish(node, 'logs', events)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ accepted: 100, duplicates: 0, unroutable: 0 })
    }
    for (const s of streams) {
      const stored = await read(home.get(s)!, s)
      expect(stored.map((e) => e.id)).toEqual(Array.from({ length: 300 }, (_, i) => `h-${i}`))
      // The other nodes hold nothing of it.
      for (const other of ['n1', 'n2', 'n3'].filter((n) => n !== home.get(s))) expect(await read(other, s)).toEqual([])
    }
    const forwarded = (await cluster.status('n1')).forwarding
    const others = ['n2', 'n3'].filter((n) => n !== 'n1')
    for (const n of others) expect(forwarded[n]?.events).toBe(100)
  })

  it('a retry with the same ids through another node stores nothing again', async () => {
    const events = Array.from({ length: 100 }, (_, i) => ({ id: `h-${i}`, n: i }))
    const res = await publish('n3', 'logs', events)
    expect(await res.json()).toEqual({ accepted: 0, duplicates: 100, unroutable: 0 })
    for (const s of streams) expect(await read(home.get(s)!, s)).toHaveLength(300)
    // Half old, half new: only the new ones are stored.
    const mixed = Array.from({ length: 10 }, (_, i) => ({ id: `h-${295 + i}`, n: 295 + i }))
    expect(await (await publish('n2', 'logs', mixed)).json()).toEqual({ accepted: 5, duplicates: 5, unroutable: 0 })
    for (const s of streams) expect((await read(home.get(s)!, s)).map((e) => e.id).slice(-6)).toEqual(['h-299', 'h-300', 'h-301', 'h-302', 'h-303', 'h-304'])
  })

  it('AMQP: amqplib publishing with confirms to a node that is not the home', async () => {
    const target = 's2'
    const via = ['n1', 'n2', 'n3'].find((n) => n !== home.get(target))!
    const amqpPort = view.nodes.find((n) => n.id === via)!.amqpPort!
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpPort}`)
    try {
      const ch = await conn.createConfirmChannel()
      for (let i = 0; i < 50; i++) ch.publish('one', target, Buffer.from(JSON.stringify({ amqp: i })), { messageId: `a-${i}`, contentType: 'application/json' })
      await ch.waitForConfirms()
    } finally {
      await conn.close()
    }
    const stored = (await read(home.get(target)!, target)).filter((e) => e.id?.startsWith('a-'))
    expect(stored.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => `a-${i}`))
    expect(stored.every((e) => e.routingKey === target)).toBe(true)
    expect(await read(via, target)).toEqual([])
  })

  it('syslog over TCP to one node: each message in all three streams at their homes', async () => {
    const via = 'n1'
    const lines = Array.from({ length: 20 }, (_, i) => `<134>1 2026-12-03T10:00:00.000Z host app - - - syslog message ${i}\n`).join('')
    await new Promise<void>((resolve, reject) => {
      const port = Number(cluster.node(via).listeners.get('syslog')!.split(':').at(-1))
      const sock = createConnection({ host: '127.0.0.1', port }, () => sock.end(lines))
      sock.on('close', () => resolve())
      sock.on('error', reject)
    })
    for (const s of streams) {
      await waitFor(`20 syslog messages in ${s}`, async () => ((await read(home.get(s)!, s)).filter((e) => JSON.stringify(e.body).includes('syslog message')).length === 20 ? true : undefined), 10_000, 100)
    }
  })

  it('the internal port refuses a request without the cluster secret', async () => {
    const n1 = view.nodes.find((n) => n.id === 'n1')!
    const url = `http://127.0.0.1:${n1.internalPort}/internal/v1/streams/s1/publish?exchange=logs&source=http`
    const none = await fetch(url, { method: 'POST', body: Buffer.alloc(4) })
    expect(none.status).toBe(401)
    const wrong = await fetch(url, { method: 'POST', body: Buffer.alloc(4), headers: { authorization: 'Bearer not-the-secret-at-all' } })
    expect(wrong.status).toBe(401)
    // With it, a malformed body is a clear 400, and nothing is stored.
    const bad = await fetch(url, { method: 'POST', body: Buffer.from([0, 0, 0, 1, 1]), headers: { authorization: `Bearer ${clusterSecret}` } })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/malformed: truncated/)
  })

  it('a group is consumed through nodes other than its home: fetch, ack and a consume stream, each event once', async () => {
    const others = ['n1', 'n2', 'n3'].filter((n) => n !== home.get('s1'))
    const stored = (await read(home.get('s1')!, 's1')).map((e) => e.offset)
    const post = async (node: string, path: string, body: unknown): Promise<Response> =>
      fetch(`${cluster.node(node).url}/v1/groups/g1/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const got: number[] = []
    for (let round = 0; round < 20; round++) {
      const res = await post(others[0]!, 'fetch', { consumer: 'c1', max: 100, waitMs: 0 })
      expect(res.status).toBe(200)
      const { events } = (await res.json()) as { events: Array<{ tag: string; offset: number }> }
      if (events.length === 0) break
      got.push(...events.map((e) => e.offset))
      // Settled through the other non-home node.
      const ack = await post(others[1]!, 'ack', { consumer: 'c1', ranges: [[events[0]!.tag, events.at(-1)!.tag]] })
      expect(await ack.json()).toEqual({ settled: events.length, failed: [] })
    }
    expect(got).toEqual(stored)

    // A push consumer on a non-home node gets what is published next, through the same node.
    const ac = new AbortController()
    const stream = await fetch(`${cluster.node(others[0]!).url}/v1/groups/g1/consume?consumer=c2&prefetch=10`, { signal: ac.signal })
    expect(stream.status).toBe(200)
    expect(stream.headers.get('content-type')).toMatch(/application\/x-ndjson/)
    const events = Array.from({ length: 5 }, (_, i) => ({ id: `p-${i}` }))
    expect((await publish(others[1]!, 'logs', events)).status).toBe(200)
    const reader = stream.body!.getReader()
    let text = ''
    const lines = (): Array<{ id: string; tag: string }> => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { id: string; tag: string })
    await waitFor('5 pushed deliveries', async () => {
      const { value } = await reader.read()
      text += new TextDecoder().decode(value)
      return lines().length >= 5 ? true : undefined
    }, 10_000, 0)
    expect(lines().map((d) => d.id)).toEqual(events.map((e) => e.id))
    const ack = await post(others[1]!, 'ack', { consumer: 'c2', upTo: lines().at(-1)!.tag })
    expect(await ack.json()).toEqual({ settled: 5, failed: [] })
    ac.abort()
    // Nothing left: every event went once.
    const rest = await post(others[0]!, 'fetch', { consumer: 'c1', max: 100, waitMs: 0 })
    expect(((await rest.json()) as { events: unknown[] }).events).toEqual([])
  })

  it('a stream is read through any node: events, a long poll, a search and its view come from its home; copy=local reads the node’s own', async () => {
    const s = 's2'
    const h = home.get(s)!
    const [other, third] = ['n1', 'n2', 'n3'].filter((n) => n !== h) as [string, string]
    const url = (node: string, path: string): string => `${cluster.node(node).url}/v1/streams/${s}${path}`
    const atHome = await read(h, s)
    expect(atHome.length).toBeGreaterThanOrEqual(300)
    const through = (await (await fetch(url(other, '/events?from=earliest&limit=10000'))).json()) as { events: StoredEvent[]; endOffset: number }
    expect(through.events.map((e) => [e.offset, e.id])).toEqual(atHome.map((e) => [e.offset, e.id]))
    expect(through.endOffset).toBe(atHome.length)
    // The node's own copy of a stream placed elsewhere is empty; a bad `copy` is refused.
    expect(await read(other, s)).toEqual([])
    const bad = await fetch(url(other, '/events?copy=remote'))
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/copy may only be "local"/)
    const view = (await (await fetch(url(other, ''))).json()) as { events: number; nextOffset: number }
    expect(view).toMatchObject({ events: atHome.length, nextOffset: atHome.length })
    // A long poll through one node is answered by the next event published through another.
    const poll = fetch(url(other, `/events?from=${atHome.length}&waitMs=10000`))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect((await publish(third, 'one', [{ id: 'polled', word: 'needle-7f3' }], s)).status).toBe(200)
    const polled = (await (await poll).json()) as { events: StoredEvent[] }
    // The exchange `one` takes no ids: the id stays in the body.
    expect(polled.events.map((e) => [e.offset, e.body])).toEqual([[atHome.length, { id: 'polled', word: 'needle-7f3' }]])
    const found = (await (await fetch(url(third, '/search?q=needle-7f3'))).json()) as { events: StoredEvent[] }
    expect(found.events.map((e) => e.offset)).toEqual([atHome.length])
  })

  it('the HTTP API trusts a forwarded user only with a fresh signature of that request, on the forwarded routes', async () => {
    const at = home.get('s1')!
    const path = '/v1/groups/g1/fetch'
    const body = JSON.stringify({ consumer: 'signed', max: 1, waitMs: 0 })
    const send = (auth: string, user: string, p = path, method = 'POST'): Promise<Response> =>
      fetch(`${cluster.node(at).url}${p}`, { method, headers: { 'x-sluice-cluster-auth': auth, 'x-sluice-forwarded-user': user, 'content-type': 'application/json' }, ...(method === 'POST' ? { body } : {}) })
    expect((await send(signForwarded(clusterSecret, 'POST', path, 'guest'), 'guest')).status).toBe(200)
    // The secret itself, another secret, another user, another route, a stale stamp: all refused.
    expect((await send(clusterSecret, 'guest')).status).toBe(401)
    expect((await send(signForwarded('another-secret-0123456789', 'POST', path, 'guest'), 'guest')).status).toBe(401)
    expect((await send(signForwarded(clusterSecret, 'POST', path, 'guest'), 'admin')).status).toBe(401)
    expect((await send(signForwarded(clusterSecret, 'GET', '/v1/groups/g1', 'guest'), 'guest', '/v1/groups/g1', 'GET')).status).toBe(401)
    expect((await send(signForwarded(clusterSecret, 'POST', path, 'guest', Date.now() - 60_000), 'guest')).status).toBe(401)
    expect((await send(signForwarded(clusterSecret, 'POST', path, 'nobody'), 'nobody')).status).toBe(401)
    const metrics = await (await fetch(`${cluster.node(at).url}/metrics`)).text()
    expect(metrics).toMatch(/^sluice_auth_failures_total\{door="http",reason="malformed"\} 6$/m)
  })

  it('a home node down: the publish fails retryable, and the retry once it is back stores each event once', async () => {
    const down = home.get('s3')!
    const via = ['n1', 'n2'].find((n) => n !== down)!
    await cluster.node(down).kill('SIGKILL')
    cluster.nodes.delete(down)
    await waitFor(`${down} gone`, async () => ((await cluster.status(via)).nodes.some((n) => n.id === down) ? undefined : true), 10_000, 100)
    const events = Array.from({ length: 10 }, (_, i) => ({ id: `d-${i}` }))
    const refused = await publish(via, 'logs', events)
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).not.toBeNull()
    const err = (await refused.json()) as { error: { code: string; details: { stream: string; node: string } } }
    expect(err.error.code).toBe('stream_unavailable')
    expect(err.error.details).toMatchObject({ stream: 's3', node: down })

    await cluster.start(down)
    await cluster.settled(streams.length)
    const retried = await publish(via, 'logs', events)
    expect(retried.status).toBe(200)
    for (const s of streams) {
      const ids = (await read(home.get(s)!, s)).map((e) => e.id).filter((id) => id?.startsWith('d-'))
      expect(ids).toEqual(events.map((e) => e.id))
    }
  })
})
