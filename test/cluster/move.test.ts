// `sluice cluster move`: a stream and its group move to another node while publishers keep
// publishing through every node. Nothing is lost or stored twice, no publish fails (they wait),
// each publisher's order is kept, acked events stay acked, and what consumers held comes again.
// Real etcd, three Sluice processes, amqplib, the CLI; loopback only.

import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MoveResult } from '../../src/cluster/index.js'
import { runCli } from '../helpers/cli.js'
import { nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/programs.js'

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir)}exchanges:
  logs: { type: direct, dedup: id }
streams:
  moving: { segmentSize: 64kb }
  other: {}
bindings:
  - { exchange: logs, stream: moving, key: m }
  - { exchange: logs, stream: other, key: o }
groups:
  gm: { stream: moving, ackTimeout: 60s }
`

interface Delivered {
  readonly tag: string
  readonly id: string
  readonly offset: number
  readonly redelivered: boolean
}

describe('moving a stream between nodes', () => {
  let cluster: TestCluster
  const ids = ['n1', 'n2', 'n3']
  let from: string
  let to: string
  let third: string

  const publish = (node: string, events: unknown[]): Promise<Response> =>
    fetch(`${cluster.node(node).url}/v1/exchanges/logs/publish?routingKey=m`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })
  const group = (node: string, path: string, body: unknown): Promise<Response> =>
    fetch(`${cluster.node(node).url}/v1/groups/gm/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const read = async (node: string): Promise<Array<{ offset: number; id: string }>> => {
    const out: Array<{ offset: number; id: string }> = []
    for (let next = 0; ; ) {
      const res = await fetch(`${cluster.node(node).url}/v1/streams/moving/events?from=${next}&limit=1000&copy=local`)
      expect(res.status).toBe(200)
      const { events } = (await res.json()) as { events: Array<{ offset: number; id: string }> }
      if (events.length === 0) return out
      out.push(...events)
      next = events.at(-1)!.offset + 1
    }
  }
  const fetchAll = async (node: string, consumer: string): Promise<Delivered[]> => {
    const got: Delivered[] = []
    for (let round = 0; round < 100; round++) {
      const res = await group(node, 'fetch', { consumer, max: 500, waitMs: 0 })
      expect(res.status).toBe(200)
      const { events } = (await res.json()) as { events: Delivered[] }
      if (events.length === 0) return got
      got.push(...events)
      const ack = await group(node, 'ack', { consumer, ranges: [[events[0]!.tag, events.at(-1)!.tag]] })
      expect(await ack.json()).toEqual({ settled: events.length, failed: [] })
    }
    throw new Error('the group never ran dry')
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ ids, yaml })
    const view = await cluster.settled(2)
    from = view.placement.find((p) => p.stream === 'moving')!.node
    ;[to, third] = ids.filter((n) => n !== from) as [string, string]
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('under a publish load through every node: every event once, in order, none refused; acks kept, held events redelivered', async () => {
    // Before: 300 events, 100 of them acked and 20 held unacked by an HTTP consumer, and an AMQP
    // consumer on the third node holding 5 more.
    const pre = Array.from({ length: 300 }, (_, i) => ({ id: `pre-${i}`, n: i }))
    expect((await publish(from, pre)).status).toBe(200)
    const first = (await (await group(third, 'fetch', { consumer: 'c1', max: 100, waitMs: 0 })).json()) as { events: Delivered[] }
    expect(first.events.map((e) => e.id)).toEqual(pre.slice(0, 100).map((e) => e.id))
    expect(await (await group(third, 'ack', { consumer: 'c1', ranges: [[first.events[0]!.tag, first.events.at(-1)!.tag]] })).json()).toEqual({ settled: 100, failed: [] })
    const held = (await (await group(to, 'fetch', { consumer: 'c2', max: 20, waitMs: 0 })).json()) as { events: Delivered[] }
    expect(held.events.map((e) => e.id)).toEqual(pre.slice(100, 120).map((e) => e.id))

    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${(await cluster.status(third)).nodes.find((n) => n.id === third)!.amqpPort}`)
    const ch = await conn.createChannel()
    await ch.prefetch(5)
    const amqpHeld: string[] = []
    let cancelled!: () => void
    const cancel = new Promise<void>((resolve) => (cancelled = resolve))
    await ch.consume('gm', (m) => {
      if (m === null) cancelled()
      else amqpHeld.push(String(m.properties.messageId))
    })
    await waitFor('the AMQP consumer holding 5', async () => (amqpHeld.length === 5 ? true : undefined), 10_000)

    // The load: one publisher per node, 20 events a request, each request awaited.
    let stop = false
    const refused: string[] = []
    const sent = new Map<string, string[]>()
    const load = async (node: string): Promise<void> => {
      const mine: string[] = []
      sent.set(node, mine)
      for (let k = 0; (!stop || k < 5) && k < 2000; k++) {
        const events = Array.from({ length: 20 }, (_, i) => ({ id: `${node}-${k}-${i}` }))
        const res = await publish(node, events)
        if (res.status !== 200) {
          refused.push(`${node}: ${res.status} ${await res.text()}`)
          k--
          continue
        }
        expect(((await res.json()) as { accepted: number }).accepted).toBe(20)
        mine.push(...events.map((e) => e.id))
      }
    }
    const loads = ids.map(load)
    await waitFor('some load before the move', async () => (ids.every((n) => (sent.get(n)?.length ?? 0) >= 200) ? true : undefined), 20_000)

    const moved = await runCli(['cluster', 'move', 'moving', to, '--json', '--url', cluster.node(third).url])
    expect(moved.stderr).toBe('')
    expect(moved.code).toBe(0)
    const result = JSON.parse(moved.stdout) as MoveResult
    expect(result).toMatchObject({ stream: 'moving', from, to, epoch: 2, groups: 1 })
    expect(result.events).toBeGreaterThanOrEqual(300 + 600)
    await cancel // the AMQP consumer was told (basic.cancel)

    const before = ids.map((n) => sent.get(n)!.length)
    await waitFor('more load after the move', async () => (ids.every((n, i) => sent.get(n)!.length >= before[i]! + 200) ? true : undefined), 20_000)
    stop = true
    await Promise.all(loads)
    await conn.close()

    expect(refused).toEqual([])
    for (const n of ids) {
      const v = await cluster.status(n)
      expect(v.placement.find((p) => p.stream === 'moving')).toMatchObject({ node: to, epoch: 2 })
      expect(v.moves.handovers).toEqual([])
    }
    // The new home holds every event once, offsets unbroken, each publisher's events in its order.
    const stored = await read(to)
    const all = [...pre.map((e) => e.id), ...ids.flatMap((n) => sent.get(n)!)]
    expect(stored.map((e) => e.offset)).toEqual(stored.map((_, i) => i))
    expect(stored.map((e) => e.id).sort()).toEqual([...all].sort())
    for (const n of ids) expect(stored.map((e) => e.id).filter((id) => id.startsWith(`${n}-`))).toEqual(sent.get(n))
    // The old home's copy is emptied (reads are of a node's own copy).
    expect(await read(from)).toEqual([])

    // The group, read through the old home: the 100 acked never again; the 25 held come again, redelivered.
    const rest = await fetchAll(from, 'c3')
    const expected = all.filter((id) => !pre.slice(0, 100).some((e) => e.id === id))
    expect(rest.map((e) => e.id).sort()).toEqual([...expected].sort())
    const again = new Set([...held.events.map((e) => e.id), ...amqpHeld])
    expect(again.size).toBe(25)
    for (const d of rest) expect(d.redelivered).toBe(again.has(d.id))
  }, 120_000)

  it('the remembered ids moved with it, and the stream moves back', async () => {
    const retry = await publish(third, Array.from({ length: 10 }, (_, i) => ({ id: `pre-${i}` })))
    expect(await retry.json()).toEqual({ accepted: 0, duplicates: 10, unroutable: 0 })

    const back = await fetch(`${cluster.node(to).url}/v1/cluster/streams/moving/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: from }) })
    expect(back.status).toBe(200)
    expect(await back.json()).toMatchObject({ from: to, to: from, epoch: 3 })
    await waitFor('every node seeing it back', async () => {
      const vs = await Promise.all(ids.map((n) => cluster.status(n)))
      return vs.every((v) => v.placement.find((p) => p.stream === 'moving')?.node === from) ? true : undefined
    }, 10_000)
    expect((await read(to)).length).toBe(0)
    const stored = await read(from)
    expect(new Set(stored.map((e) => e.id)).size).toBe(stored.length)
    expect(stored.length).toBeGreaterThan(900)
    const again = await publish(to, Array.from({ length: 10 }, (_, i) => ({ id: `pre-${i}` })))
    expect(await again.json()).toEqual({ accepted: 0, duplicates: 10, unroutable: 0 })
  }, 60_000)

  it('refuses moves that cannot be: same node, unknown node or stream, no body', async () => {
    const move = (stream: string, body: unknown): Promise<Response> =>
      fetch(`${cluster.node(third).url}/v1/cluster/streams/${stream}/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const same = await move('moving', { node: from })
    expect(same.status).toBe(409)
    expect(((await same.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'move_refused', message: expect.stringContaining(`already lives on node ${from}`) })
    const nobody = await move('moving', { node: 'n9' })
    expect(nobody.status).toBe(409)
    expect(((await nobody.json()) as { error: { message: string } }).error.message).toContain('node n9 holds no lease')
    const nothing = await move('nope', { node: to })
    expect(nothing.status).toBe(409)
    expect(((await nothing.json()) as { error: { message: string } }).error.message).toContain('places no stream of that name')
    expect((await move('moving', {})).status).toBe(400)
    const cli = await runCli(['cluster', 'move', 'moving', '--url', cluster.node(third).url])
    expect(cli.code).not.toBe(0)
    expect(cli.stderr).toContain('usage: sluice cluster move STREAM NODE')
  }, 30_000)
})

describe('a move that cannot finish is called off', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    // Batches bigger than the internal port takes: the copy fails half-way.
    cluster = await startTestCluster({ ids: ['n1', 'n2'], yaml, replication: () => 'maxBodySize: 2kb' })
    await cluster.settled(2)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('leaves the stream, its events and its group where they were, and publishes go on there', async () => {
    const view = await cluster.status('n1')
    const from = view.placement.find((p) => p.stream === 'moving')!.node
    const to = from === 'n1' ? 'n2' : 'n1'
    const url = (n: string): string => cluster.node(n).url
    const publish = async (events: unknown[]): Promise<unknown> =>
      (await fetch(`${url(from)}/v1/exchanges/logs/publish?routingKey=m`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })).json()
    expect(await publish(Array.from({ length: 10 }, (_, i) => ({ id: `small-${i}` })))).toMatchObject({ accepted: 10 })
    expect(await publish(Array.from({ length: 100 }, (_, i) => ({ id: `big-${i}`, pad: 'x'.repeat(20) })))).toMatchObject({ accepted: 100 })

    const res = await fetch(`${url(to)}/v1/cluster/streams/moving/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: to }) })
    const answer = (await res.json()) as { error: { code: string; message: string } }
    expect(res.status).toBe(503)
    expect(answer.error.code).toBe('move_failed')
    expect(answer.error.message).toContain('maxBodySize')

    await waitFor('both ends done with the handover', async () => {
      const vs = await Promise.all(['n1', 'n2'].map((n) => cluster.status(n)))
      return vs.every((v) => v.moves.handovers.length === 0) ? vs : undefined
    }, 10_000)
    for (const n of ['n1', 'n2']) expect((await cluster.status(n)).placement.find((p) => p.stream === 'moving')).toMatchObject({ node: from, epoch: 1 })
    expect((await cluster.status(from)).moves).toMatchObject({ moved: 0 })

    // Publishes go on at the old home, and a retry of stored ids is still a duplicate there.
    expect(await publish([{ id: 'after' }, { id: 'small-3' }])).toMatchObject({ accepted: 1, duplicates: 1 })
    const stored = (await (await fetch(`${url(from)}/v1/streams/moving/events?from=0&limit=1000&copy=local`)).json()) as { events: Array<{ id: string }> }
    expect(stored.events.map((e) => e.id)).toEqual([...Array.from({ length: 10 }, (_, i) => `small-${i}`), ...Array.from({ length: 100 }, (_, i) => `big-${i}`), 'after'])
    // The target dropped what it had received.
    const copy = (await (await fetch(`${url(to)}/v1/streams/moving/events?from=0&limit=1000&copy=local`)).json()) as { events: unknown[] }
    expect(copy.events).toEqual([])
    // The group opened again at the old home and serves every event.
    const post = async (path: string, body: unknown): Promise<Response> => fetch(`${url(to)}/v1/groups/gm/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const got: string[] = []
    for (let round = 0; round < 10; round++) {
      const res = await post('fetch', { consumer: 'x', max: 100, waitMs: 0 })
      expect(res.status).toBe(200)
      const { events } = (await res.json()) as { events: Array<{ id: string; tag: string }> }
      if (events.length === 0) break
      got.push(...events.map((e) => e.id))
      expect((await post('ack', { consumer: 'x', ranges: [[events[0]!.tag, events.at(-1)!.tag]] })).status).toBe(200)
    }
    expect(got).toEqual(stored.events.map((e) => e.id))
    // Nothing of the move is left in etcd: it can be tried again (and refused for a new reason).
    const again = await fetch(`${url(to)}/v1/cluster/streams/moving/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: to }) })
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('move_failed')
  }, 60_000)
})
