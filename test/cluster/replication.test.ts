// Replicated streams (factor 3, minInSync 2): followers hold byte-for-byte copies of the leader's
// log, a follower that dies leaves the in-sync set and publishes go on, below minInSync the stream
// refuses publishes and stores nothing, and restarted followers catch up and come back in sync.
// Real etcd, three Sluice processes, loopback only.

import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView } from '../../src/cluster/index.js'
import { nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/programs.js'

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir)}exchanges:
  logs: { type: direct, dedup: id }
streams:
  s1: { segmentSize: 64kb }
  single: { replicas: 1 }
bindings:
  - { exchange: logs, stream: s1, key: a }
groups:
  g1: { stream: s1, ackTimeout: 60s }
  g2: { stream: s1, ackTimeout: 60s }
`

type Placement = ClusterView['placement'][number]

describe('replicated streams', () => {
  let cluster: TestCluster
  const ids = ['n1', 'n2', 'n3']
  let leader: string
  let followers: string[]

  const publish = (node: string, events: unknown[], key = 'a'): Promise<Response> =>
    fetch(`${cluster.node(node).url}/v1/exchanges/logs/publish?routingKey=${key}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })
  /** A node's own copy of a stream: ids by offset. */
  const copy = async (node: string, stream = 's1'): Promise<string[]> => {
    const out: string[] = []
    for (let next = 0; ; ) {
      const res = await fetch(`${cluster.node(node).url}/v1/streams/${stream}/events?from=${next}&limit=1000&copy=local`)
      const { events } = (await res.json()) as { events: Array<{ offset: number; id: string }> }
      if (events.length === 0) return out
      for (const e of events) out[e.offset] = e.id
      next = events.at(-1)!.offset + 1
    }
  }
  const placement = async (node: string, stream = 's1'): Promise<Placement> => (await cluster.status(node)).placement.find((p) => p.stream === stream)!
  const batch = (prefix: string, n: number): Array<{ id: string; n: number }> => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, n: i }))

  /**
   * With the followers paused (well under replicaLagMax), the leader stores three events no one
   * else has, then is SIGKILLed. Published once the fetches the followers had under way were
   * answered (empty, after 500 ms): a paused follower must not find the tail in its socket when it
   * resumes.
   */
  const dieWithTail = async (old: string, rest: readonly string[], stream: string, key: string, base: number): Promise<void> => {
    for (const f of rest) cluster.node(f).proc.kill('SIGSTOP')
    let lost: Promise<unknown> = Promise.resolve()
    try {
      await new Promise((resolve) => setTimeout(resolve, 600))
      lost = publish(old, batch('tail', 3), key).catch(() => undefined)
      await waitFor('the tail stored at the leader', async () => ((await copy(old, stream)).length === base + 3 ? true : undefined), 5000, 20)
      await cluster.node(old).kill('SIGKILL')
      cluster.nodes.delete(old)
    } finally {
      for (const f of rest) cluster.node(f).proc.kill('SIGCONT')
    }
    await lost
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ ids, yaml, replication: () => 'factor: 3, minInSync: 2, replicaLagMax: 2s' })
    const view = await cluster.settled(2)
    const p = view.placement.find((x) => x.stream === 's1')!
    leader = p.node
    followers = ids.filter((n) => n !== leader)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('places three replicas, all in sync, and every follower holds the leader’s events at the same offsets', async () => {
    const p = await placement(leader)
    expect(p.replicas[0]).toBe(leader)
    expect([...p.replicas].sort()).toEqual(ids)
    expect([...p.isr].sort()).toEqual(ids)
    for (const via of ids) {
      const res = await publish(via, batch(`first-${via}`, 100))
      expect(await res.json()).toEqual({ accepted: 100, duplicates: 0, unroutable: 0 })
    }
    const want = await copy(leader)
    expect(want).toHaveLength(300)
    // A confirm means every in-sync replica has it: the copies are whole already.
    for (const f of followers) expect(await copy(f)).toEqual(want)
    const status = await cluster.status(leader)
    expect((status.replication.leading as Record<string, { highWatermark: number }>).s1!.highWatermark).toBe(300)
  })

  it('a stream’s own replicas, and AMQP queues: durable ones replicated, transient ones single, quorum ones as big as their group size', async () => {
    expect((await cluster.status(leader)).placement.find((x) => x.stream === 'single')).toMatchObject({ replicas: [expect.any(String)], isr: [expect.any(String)] })
    const port = (await cluster.status(leader)).nodes.find((n) => n.id === followers[0])!.amqpPort!
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`)
    try {
      const ch = await conn.createChannel()
      await ch.assertQueue('q-durable', { durable: true })
      await ch.assertQueue('q-quorum', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 2 } })
      await ch.assertQueue('q-big', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 9 } })
      await ch.assertQueue('q-transient', { durable: false })
      await ch.assertQueue('q-exclusive', { exclusive: true })
      await ch.assertQueue('q-auto', { durable: true, autoDelete: true })
      const want: Record<string, number> = { 'q-durable': 3, 'q-quorum': 2, 'q-big': 3, 'q-transient': 1, 'q-exclusive': 1, 'q-auto': 1 }
      const got = await waitFor('the queues placed', async () => {
        const placed = (await cluster.status(leader)).placement.filter((x) => x.stream in want)
        return placed.length === Object.keys(want).length && placed.every((x) => x.isr.length === x.replicas.length) ? placed : undefined
      }, 10_000, 50)
      expect(Object.fromEntries(got.map((x) => [x.stream, x.replicas.length]))).toEqual(want)
      // A single-copy queue needs no follower to confirm, whatever minInSync says.
      const confirm = await conn.createConfirmChannel()
      confirm.sendToQueue('q-transient', Buffer.from('one'), { messageId: 't-1' })
      confirm.sendToQueue('q-quorum', Buffer.from('two'), { messageId: 'q-1' })
      await confirm.waitForConfirms()
      // Gone again, so the tests after this one count s1's copies alone.
      for (const q of Object.keys(want)) await ch.deleteQueue(q)
      await waitFor('the queues unplaced', async () => ((await cluster.status(leader)).placement.some((x) => x.stream in want) ? undefined : true), 10_000, 50)
    } finally {
      // Bounded: a connection the server closed may never answer a close.
      conn.on('error', () => undefined)
      await Promise.race([conn.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000))])
    }
  })

  it('consumers and reads see only what the in-sync replicas hold: an event waiting for its followers is not delivered or read until they have it', async () => {
    const g2 = async (path: string, body: unknown): Promise<Response> =>
      fetch(`${cluster.node(leader).url}/v1/groups/g2/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    // Everything so far is confirmed, so visible: drained first.
    for (let round = 0; round < 10; round++) {
      const { events } = (await (await g2('fetch', { consumer: 'w', max: 500, waitMs: 0 })).json()) as { events: Array<{ tag: string }> }
      if (events.length === 0) break
      await g2('ack', { consumer: 'w', ranges: [[events[0]!.tag, events.at(-1)!.tag]] })
    }
    // Both followers paused (well under replicaLagMax): the leader stores the event but cannot confirm it.
    const end = (await copy(leader)).length
    const read = async (query: string): Promise<{ events: Array<{ offset: number; id: string }>; endOffset: number }> =>
      (await (await fetch(`${cluster.node(leader).url}/v1/streams/s1/events?${query}`)).json()) as { events: Array<{ offset: number; id: string }>; endOffset: number }
    for (const f of followers) cluster.node(f).proc.kill('SIGSTOP')
    const pending = publish(leader, [{ id: 'held-back' }])
    let polled: Promise<{ events: Array<{ offset: number; id: string }> }> | undefined
    let pollAnswered = false
    try {
      await new Promise((resolve) => setTimeout(resolve, 300))
      const during = (await (await g2('fetch', { consumer: 'w', max: 10, waitMs: 0 })).json()) as { events: unknown[] }
      expect(during.events).toEqual([])
      // Reads are held below the watermark too; the leader's own copy has the event.
      expect(await read(`from=${end - 1}&limit=10`)).toMatchObject({ events: [{ offset: end - 1 }], endOffset: end })
      expect((await read(`from=${end}&limit=10&copy=local`)).events.map((e) => e.id)).toEqual(['held-back'])
      polled = read(`from=${end}&waitMs=10000`)
      void polled.then(() => (pollAnswered = true))
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(pollAnswered).toBe(false)
    } finally {
      for (const f of followers) cluster.node(f).proc.kill('SIGCONT')
    }
    expect(await (await pending).json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    expect((await polled!).events.map((e) => [e.offset, e.id])).toEqual([[end, 'held-back']])
    const after = (await (await g2('fetch', { consumer: 'w', max: 10, waitMs: 2000 })).json()) as { events: Array<{ id: string }> }
    expect(after.events.map((e) => e.id)).toEqual(['held-back'])
  })

  it('a dead follower leaves the in-sync set and publishes go on; with two dead they are refused and nothing is stored', async () => {
    await cluster.node(followers[0]!).kill('SIGKILL')
    cluster.nodes.delete(followers[0]!)
    const res = await publish(leader, batch('one-down', 50))
    expect(await res.json()).toEqual({ accepted: 50, duplicates: 0, unroutable: 0 })
    const p = await waitFor('the in-sync set without the dead follower', async () => {
      const q = await placement(leader)
      return q.isr.length === 2 ? q : undefined
    }, 10_000, 50)
    expect(p.isr).toEqual([leader, followers[1]])
    expect(await copy(followers[1]!)).toEqual(await copy(leader))
    const metrics = await (await fetch(`${cluster.node(leader).url}/metrics`)).text()
    expect(metrics).toMatch(/^sluice_cluster_under_replicated_streams 1$/m)
    expect(metrics).toMatch(/^sluice_cluster_isr_changes_total\{change="shrink"\} 1$/m)

    await cluster.node(followers[1]!).kill('SIGKILL')
    cluster.nodes.delete(followers[1]!)
    await waitFor('the in-sync set down to the leader', async () => ((await placement(leader)).isr.length === 1 ? true : undefined), 10_000, 50)
    const before = (await copy(leader)).length
    const refused = await publish(leader, batch('two-down', 10))
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).not.toBeNull()
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('not_enough_replicas')
    expect((await copy(leader)).length).toBe(before)
  }, 60_000)

  it('restarted followers catch up, come back in sync, and the stream takes publishes again', async () => {
    await Promise.all(followers.map((f) => cluster.start(f)))
    await waitFor('all three in sync again', async () => ((await placement(leader)).isr.length === 3 ? true : undefined), 20_000, 100)
    const res = await publish(followers[0]!, batch('back', 20))
    expect(await res.json()).toEqual({ accepted: 20, duplicates: 0, unroutable: 0 })
    const want = await copy(leader)
    expect(want).toHaveLength(371)
    for (const f of followers) expect(await copy(f)).toEqual(want)
    const metrics = await (await fetch(`${cluster.node(leader).url}/metrics`)).text()
    expect(metrics).toMatch(/^sluice_cluster_under_replicated_streams 0$/m)
  }, 60_000)

  it('SIGKILL of the leader under load: a follower leads within leaseTtl + 1 s, every confirmed event is there once, and the old leader catches up', async () => {
    const placement = async (node: string, stream = 's1'): Promise<Placement> => (await cluster.status(node)).placement.find((p) => p.stream === stream)!
    const first = await placement(ids[0]!)
    const leader = first.node
    const others = ids.filter((n) => n !== leader)
    const confirmed: string[] = []
    let stop = false
    let failedAnswers = 0
    // Publishers on the two nodes that live, each request retried with the same ids until confirmed.
    const load = async (via: string): Promise<void> => {
      for (let k = 0; !stop && k < 2000; k++) {
        const events = Array.from({ length: 10 }, (_, i) => ({ id: `${via}-${k}-${i}` }))
        for (let attempt = 0; attempt < 200; attempt++) {
          const res = await fetch(`${cluster.node(via).url}/v1/exchanges/logs/publish?routingKey=a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) }).catch(() => undefined)
          if (res?.status === 200) {
            await res.json()
            confirmed.push(...events.map((e) => e.id))
            break
          }
          failedAnswers++
          await res?.text()
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    }
    const loads = others.map(load)
    await waitFor('some load', async () => (confirmed.length >= 300 ? true : undefined), 20_000, 20)
    // Consumers through a surviving node: 100 acked (answered), 20 held unacked.
    const group = async (path: string, body: unknown): Promise<Response> =>
      fetch(`${cluster.node(others[0]!).url}/v1/groups/g1/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const firstFetch = (await (await group('fetch', { consumer: 'c1', max: 100, waitMs: 0 })).json()) as { events: Array<{ id: string; tag: string }> }
    expect(firstFetch.events).toHaveLength(100)
    const acked = await group('ack', { consumer: 'c1', ranges: [[firstFetch.events[0]!.tag, firstFetch.events.at(-1)!.tag]] })
    expect(await acked.json()).toEqual({ settled: 100, failed: [] })
    const ackedIds = new Set(firstFetch.events.map((e) => e.id))
    const heldFetch = (await (await group('fetch', { consumer: 'c2', max: 20, waitMs: 0 })).json()) as { events: Array<{ id: string }> }
    expect(heldFetch.events).toHaveLength(20)
    const heldIds = new Set(heldFetch.events.map((e) => e.id))
    const killedAt = Date.now()
    await cluster.node(leader).kill('SIGKILL')
    cluster.nodes.delete(leader)
    const next = await waitFor('a new leader', async () => {
      const p = await placement(others[0]!)
      return p.node !== leader ? p : undefined
    }, 10_000, 20)
    const failoverMs = Date.now() - killedAt
    expect(failoverMs).toBeLessThan(2000 + 1000 + 1500) // leaseTtl + 1 s, and slack for a busy machine
    expect(next.epoch).toBe(first.epoch + 1)
    expect(others).toContain(next.node)
    expect(next.isr).not.toContain(leader)
    const atFailover = confirmed.length
    await waitFor('load confirmed by the new leader', async () => (confirmed.length >= atFailover + 300 ? true : undefined), 20_000, 20)
    stop = true
    await Promise.all(loads)
    expect(failedAnswers).toBeGreaterThan(0) // the failover was felt, and retried through

    const copy = async (node: string): Promise<string[]> => {
      const out: string[] = []
      for (let from = 0; ; ) {
        const { events } = (await (await fetch(`${cluster.node(node).url}/v1/streams/s1/events?from=${from}&limit=1000&copy=local`)).json()) as { events: Array<{ offset: number; id: string }> }
        if (events.length === 0) return out
        for (const e of events) out.push(e.id)
        from = events.at(-1)!.offset + 1
      }
    }
    const stored = await copy(next.node)
    // Every confirmed id once; nothing twice (unconfirmed ids may be there or not).
    expect(new Set(stored).size).toBe(stored.length)
    const have = new Set(stored)
    expect(confirmed.filter((id) => !have.has(id))).toEqual([])
    // The group on the new leader: nothing acked comes again; the held ones come again, redelivered.
    const delivered: Array<{ id: string; redelivered: boolean }> = []
    for (let round = 0; round < 100; round++) {
      const res = await group('fetch', { consumer: 'c3', max: 500, waitMs: 0 })
      expect(res.status).toBe(200)
      const { events } = (await res.json()) as { events: Array<{ id: string; tag: string; redelivered: boolean }> }
      if (events.length === 0) break
      delivered.push(...events)
      await group('ack', { consumer: 'c3', ranges: [[events[0]!.tag, events.at(-1)!.tag]] })
    }
    expect(delivered.filter((d) => ackedIds.has(d.id))).toEqual([])
    const again = delivered.filter((d) => heldIds.has(d.id))
    expect(again).toHaveLength(20)
    expect(again.every((d) => d.redelivered)).toBe(true)
    expect(delivered.length).toBe(stored.length - 100)
    // The old leader comes back as a follower and ends up with the same copy.
    await cluster.start(leader)
    await waitFor('the old leader back in sync', async () => ((await placement(next.node)).isr.length === 3 ? true : undefined), 20_000, 100)
    const all = await copy(next.node)
    for (const n of ids) expect(await copy(n)).toEqual(all)
  }, 90_000)

  it('a leader that dies holding events its followers never had cuts just that tail when it comes back (KIP-101)', async () => {
    const before = await placement(ids[0]!)
    const old = before.node
    const rest = ids.filter((n) => n !== old)
    const base = (await copy(old)).length
    await dieWithTail(old, rest, 's1', 'a', base)
    const next = await waitFor('a new leader', async () => {
      const p = await placement(rest[0]!)
      return p.node !== old && p.epoch > before.epoch ? p : undefined
    }, 15_000, 50)
    // Publishes on the new leader take the offsets the lost tail had.
    await waitFor('a publish confirmed by the new leader', async () => ((await publish(next.node, batch('after', 5))).status === 200 ? true : undefined), 10_000, 100)
    const led = await copy(next.node)
    expect(led.slice(base)).toEqual(batch('after', 5).map((e) => e.id))
    await cluster.start(old)
    await waitFor('the old leader back in sync', async () => ((await placement(next.node)).isr.length === 3 ? true : undefined), 20_000, 100)
    expect(await copy(old)).toEqual(led)
    // Cut, not fetched again from the start: the copy fetched about the five new events, not the whole log.
    const metrics = await (await fetch(`${cluster.node(old).url}/metrics`)).text()
    const fetched = Number(/^sluice_cluster_replication_bytes_total (\d+)/m.exec(metrics)?.[1])
    expect(fetched).toBeGreaterThan(0)
    expect(fetched).toBeLessThan(5000)
  }, 60_000)

  it('a stream deleted and declared again starts a leader-epoch history of its own: a divergent tail after its first failover is cut', async () => {
    const running = [...cluster.nodes.keys()]
    const port = (await cluster.status(running[0]!)).nodes.find((n) => n.id === running[0])!.amqpPort!
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`)
    conn.on('error', () => undefined)
    const declare = async (): Promise<Placement> => {
      const ch = await conn.createChannel()
      await ch.assertQueue('ns', { durable: true })
      await ch.bindQueue('ns', 'logs', 'ns')
      await ch.close()
      return waitFor('ns placed and in sync', async () => {
        const p = await placement(running[0]!, 'ns')
        return p !== undefined && p.isr.length === 3 ? p : undefined
      }, 10_000, 50)
    }
    // A binding declared on one node reaches the others through etcd: an unroutable publish stores nothing, so it is sent again.
    const routed = (node: string, events: Array<{ id: string }>): Promise<true> =>
      waitFor('a routed publish to ns', async () => {
        const res = await publish(node, events, 'ns')
        return res.status === 200 && ((await res.json()) as { accepted: number }).accepted === events.length ? true : undefined
      }, 5000, 50)
    try {
      // The first life of ns reaches epoch 2 (a move to a follower): every copy's history says so.
      const first = await declare()
      expect(first.epoch).toBe(1)
      await routed(first.node, batch('old', 5))
      const to = first.replicas.find((n) => n !== first.node)!
      const moved = await fetch(`${cluster.node(to).url}/v1/cluster/streams/ns/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: to }) })
      expect(moved.status).toBe(200)
      await waitFor('ns led at epoch 2 and in sync', async () => {
        const p = await placement(to, 'ns')
        return p.epoch === 2 && p.node === to && p.isr.length === 3 ? true : undefined
      }, 10_000, 50)
      expect((await publish(to, batch('old-2', 5), 'ns')).status).toBe(200)
      const ch = await conn.createChannel()
      await ch.deleteQueue('ns')
      await ch.close()
      await waitFor('ns unplaced', async () => ((await cluster.status(to)).placement.some((x) => x.stream === 'ns') ? undefined : true), 10_000, 50)

      // Its second life, at epoch 1 again: the leader stores a tail its paused followers never get, and dies.
      const second = await declare()
      expect(second.epoch).toBe(1)
      const old = second.node
      const rest = running.filter((n) => n !== old)
      await routed(old, batch('new', 20))
      await dieWithTail(old, rest, 'ns', 'ns', 20)
      const next = await waitFor('a new leader of ns', async () => {
        const p = await placement(rest[0]!, 'ns')
        return p.node !== old && p.epoch === 2 ? p : undefined
      }, 15_000, 50)
      await waitFor('a publish confirmed by the new leader', async () => ((await publish(next.node, batch('after', 5), 'ns')).status === 200 ? true : undefined), 10_000, 100)
      const led = await copy(next.node, 'ns')
      expect(led).toEqual([...batch('new', 20), ...batch('after', 5)].map((e) => e.id))
      // The old leader's history of the deleted ns (epoch 2 from offset 5) must not pass for this one's.
      await cluster.start(old)
      await waitFor('the old leader of ns back in sync', async () => ((await placement(next.node, 'ns')).isr.length === 3 ? true : undefined), 20_000, 100)
      for (const n of running) expect(await copy(n, 'ns')).toEqual(led)
    } finally {
      await Promise.race([conn.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000))])
    }
  }, 60_000)
})
