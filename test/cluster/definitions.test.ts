// Run-time definitions across a cluster: what one node declares (AMQP through amqplib, HTTP) every
// node routes by within a second, a conflicting redeclare anywhere is refused, and a deletion goes
// everywhere. Real etcd, three Sluice processes, loopback only.

import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView } from '../../src/cluster/index.js'
import { channelError } from '../helpers/amqp.js'
import { nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/programs.js'

const ids = ['n1', 'n2', 'n3']

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir)}streams:
  base: {}
`

interface ExchangeView {
  readonly name: string
  readonly type: string
  readonly bindings: ReadonlyArray<{ readonly stream?: string; readonly key: string }>
}

describe('run-time definitions through etcd', () => {
  let cluster: TestCluster
  let view: ClusterView

  const amqpUrl = (id: string): string => `amqp://guest:guest@127.0.0.1:${view.nodes.find((n) => n.id === id)!.amqpPort!}`
  const exchanges = async (id: string): Promise<ExchangeView[]> => ((await (await fetch(`${cluster.node(id).url}/v1/exchanges`)).json()) as { exchanges: ExchangeView[] }).exchanges
  const streamStatus = async (id: string, stream: string): Promise<number> => (await fetch(`${cluster.node(id).url}/v1/streams/${stream}`)).status

  beforeAll(async () => {
    cluster = await startTestCluster({ ids, yaml })
    view = await cluster.settled(1)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('an exchange, a queue and a binding declared over AMQP on n1 are on n2 and n3 within a second', async () => {
    const conn = await amqp.connect(amqpUrl('n1'))
    try {
      const ch = await conn.createChannel()
      await ch.assertExchange('rt', 'topic', { durable: true })
      await ch.assertQueue('q1', { durable: true })
      await ch.bindQueue('q1', 'rt', 'a.*')
    } finally {
      await conn.close()
    }
    const t0 = performance.now()
    for (const id of ['n2', 'n3']) {
      await waitFor(
        `rt and q1 on ${id}`,
        async () => {
          const rt = (await exchanges(id)).find((e) => e.name === 'rt')
          return rt?.type === 'topic' && rt.bindings.some((b) => b.stream === 'q1' && b.key === 'a.*') && (await streamStatus(id, 'q1')) === 200 ? true : undefined
        },
        1000,
        20,
      )
    }
    expect(performance.now() - t0).toBeLessThan(1000)
    // The queue's stream is placed like any other.
    const placed = await waitFor('q1 placed', async () => (await cluster.status('n2')).placement.find((p) => p.stream === 'q1'), 5000, 50)
    expect(ids).toContain(placed.node)
  })

  it('a publish to the run-time exchange on n3 reaches the queue, consumed at its home over AMQP', async () => {
    const res = await fetch(`${cluster.node('n3').url}/v1/exchanges/rt/publish?routingKey=a.b`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ n: 1 }, { n: 2 }]) })
    expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, unroutable: 0 })
    const home = (await cluster.status('n3')).placement.find((p) => p.stream === 'q1')!.node
    const conn = await amqp.connect(amqpUrl(home))
    try {
      const ch = await conn.createChannel()
      const got: string[] = []
      for (let i = 0; i < 2; i++) {
        const m = await waitFor('a message', async () => (await ch.get('q1', { noAck: true })) || undefined, 5000, 50)
        got.push(m.content.toString())
      }
      expect(got).toEqual(['{"n":1}', '{"n":2}'])
    } finally {
      await conn.close()
    }
  })

  it('redeclaring the exchange another way on another node is refused, as on one node', async () => {
    const conn = await amqp.connect(amqpUrl('n2'))
    try {
      const err = await channelError(conn, (ch) => ch.assertExchange('rt', 'direct', { durable: true }))
      expect(err.code).toBe(406)
      // The same declaration again is fine anywhere.
      const ch = await conn.createChannel()
      await ch.assertExchange('rt', 'topic', { durable: true })
    } finally {
      await conn.close()
    }
    // A race between two nodes is settled by etcd: one type wins everywhere.
    const [a, b] = await Promise.allSettled(
      ['n2', 'n3'].map(async (id, k) => {
        const c = await amqp.connect(amqpUrl(id))
        try {
          const ch = await c.createChannel()
          // The loser's channel is closed by the server: its error is the promise's, not the process's.
          ch.on('error', () => undefined)
          await ch.assertExchange('race', k === 0 ? 'fanout' : 'direct', { durable: true })
        } finally {
          await c.close().catch(() => undefined)
        }
      }),
    )
    expect([a!.status, b!.status].sort()).toEqual(['fulfilled', 'rejected'])
    const winner = a!.status === 'fulfilled' ? 'fanout' : 'direct'
    for (const id of ids) await waitFor(`race on ${id}`, async () => ((await exchanges(id)).find((e) => e.name === 'race')?.type === winner ? true : undefined), 2000, 20)
  })

  it('a binding removed over AMQP on n2 is gone from every node, and publishes there no longer reach the queue', async () => {
    const conn = await amqp.connect(amqpUrl('n2'))
    try {
      const ch = await conn.createChannel()
      await ch.unbindQueue('q1', 'rt', 'a.*')
    } finally {
      await conn.close()
    }
    for (const id of ids) {
      await waitFor(`the binding gone from ${id}`, async () => ((await exchanges(id)).find((e) => e.name === 'rt')?.bindings.some((b) => b.stream === 'q1') === false ? true : undefined), 1000, 20)
    }
    for (const id of ids) {
      const res = await fetch(`${cluster.node(id).url}/v1/exchanges/rt/publish?routingKey=a.b`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ m: id }]) })
      expect(await res.json()).toMatchObject({ accepted: 0, unroutable: 1 })
    }
  })

  it('a group declared over HTTP on n2 exists on n1; deleting the queue on n3 removes it everywhere', async () => {
    const put = await fetch(`${cluster.node('n2').url}/v1/groups/g2`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: 'q1', prefetch: 10 }) })
    expect(put.status).toBe(201)
    await waitFor('g2 on n1', async () => ((await fetch(`${cluster.node('n1').url}/v1/groups/g2`)).status === 200 ? true : undefined), 1000, 20)
    const del = await fetch(`${cluster.node('n2').url}/v1/groups/g2`, { method: 'DELETE' })
    expect(del.status).toBe(204)
    await waitFor('g2 gone from n1', async () => ((await fetch(`${cluster.node('n1').url}/v1/groups/g2`)).status === 404 ? true : undefined), 1000, 20)

    const conn = await amqp.connect(amqpUrl('n3'))
    try {
      const ch = await conn.createChannel()
      await ch.deleteQueue('q1')
    } finally {
      await conn.close()
    }
    for (const id of ids) await waitFor(`q1 gone from ${id}`, async () => ((await streamStatus(id, 'q1')) === 404 ? true : undefined), 1000, 20)
    const s = await cluster.status('n1')
    expect(s.placement.map((p) => p.stream)).not.toContain('q1')
    expect(s.definitions.failed).toBe(0)
  })

  it('a node that was away while definitions were deleted, and a queue declared again, removes them at its rejoin and drops the old copy', async () => {
    const conn = await amqp.connect(amqpUrl('n1'))
    try {
      const ch = await conn.createChannel()
      await ch.assertExchange('away-x', 'fanout', { durable: true })
      await ch.assertQueue('away-q', { durable: true })
      await ch.bindQueue('away-q', 'away-x', '')
      await ch.assertQueue('again-q', { durable: true })
    } finally {
      await conn.close()
    }
    const put = await fetch(`${cluster.node('n1').url}/v1/groups/away-g`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: 'base' }) })
    expect(put.status).toBe(201)
    // again-q lives on n3, with three events of its first life there.
    await waitFor('again-q placed', async () => ((await cluster.status('n1')).placement.some((p) => p.stream === 'again-q') ? true : undefined), 5000, 20)
    if ((await cluster.status('n1')).placement.find((p) => p.stream === 'again-q')!.node !== 'n3') {
      const moved = await fetch(`${cluster.node('n1').url}/v1/cluster/streams/again-q/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: 'n3' }) })
      expect(moved.status).toBe(200)
    }
    const sendTo = async (via: string, ids: string[]): Promise<void> => {
      const c = await amqp.connect(amqpUrl(via))
      try {
        const ch = await c.createConfirmChannel()
        for (const id of ids) ch.sendToQueue('again-q', Buffer.from(id), { messageId: id })
        await ch.waitForConfirms()
      } finally {
        await c.close()
      }
    }
    await sendTo('n1', ['first-0', 'first-1', 'first-2'])
    const localIds = async (node: string): Promise<string[]> =>
      ((await (await fetch(`${cluster.node(node).url}/v1/streams/again-q/events?from=0&limit=100&copy=local`)).json()) as { events: Array<{ id: string }> }).events.map((e) => e.id)
    expect(await localIds('n3')).toEqual(['first-0', 'first-1', 'first-2'])
    await waitFor('the definitions on n3', async () => ((await exchanges('n3')).some((e) => e.name === 'away-x' && e.bindings.length === 1) && (await fetch(`${cluster.node('n3').url}/v1/groups/away-g`)).status === 200 ? true : undefined), 1000, 20)

    await cluster.node('n3').kill('SIGKILL')
    cluster.nodes.delete('n3')
    expect((await fetch(`${cluster.node('n1').url}/v1/groups/away-g`, { method: 'DELETE' })).status).toBe(204)
    const again = await amqp.connect(amqpUrl('n2'))
    try {
      const ch = await again.createChannel()
      await ch.deleteQueue('away-q')
      await ch.deleteExchange('away-x')
      await ch.deleteQueue('again-q')
      await ch.assertQueue('again-q', { durable: true })
    } finally {
      await again.close()
    }
    await waitFor('again-q placed again', async () => ((await cluster.status('n2')).placement.some((p) => p.stream === 'again-q') ? true : undefined), 5000, 20)
    await sendTo('n2', ['second-0', 'second-1'])

    await cluster.start('n3')
    const url = cluster.node('n3').url
    await waitFor('n3 rejoined and reconciled', async () => ((await fetch(`${url}/v1/streams/away-q`)).status === 404 ? true : undefined), 15_000, 50)
    // The group, the queue (its stream, group and binding) and the exchange are gone.
    expect((await fetch(`${url}/v1/groups/away-g`)).status).toBe(404)
    expect((await exchanges('n3')).map((e) => e.name)).not.toContain('away-x')
    // again-q is another stream now: n3's copy of the first one is dropped, and reads through n3 see the second.
    expect(await localIds('n3')).toEqual([])
    const through = (await (await fetch(`${url}/v1/streams/again-q/events?from=0&limit=100`)).json()) as { events: Array<{ id: string }> }
    expect(through.events.map((e) => e.id)).toEqual(['second-0', 'second-1'])
    const status = await cluster.status('n3')
    expect(status.definitions.removedAtJoin).toBeGreaterThanOrEqual(5)
    expect(status.definitions.failed).toBe(0)
    // Definitions the cluster still has are untouched.
    expect((await exchanges('n3')).map((e) => e.name)).toContain('rt')
    expect((await fetch(`${url}/v1/streams/base`)).status).toBe(200)
  }, 60_000)

  it('a queue deleted and declared again at once keeps what was published to its new life, on every node that saw both', async () => {
    // n3, restarted above, is a member again as every node sees it (streams are placed only then).
    await cluster.settled((await cluster.status('n1')).placement.length)
    for (const via of ids) {
      // Asked again: n3 was restarted above, on new ports.
      const port = (await cluster.status(via)).nodes.find((n) => n.id === via)!.amqpPort!
      const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`)
      try {
        const ch = await conn.createConfirmChannel()
        for (let i = 0; i < 8; i++) {
          await ch.deleteQueue('flip-q')
          await ch.assertQueue('flip-q', { durable: true })
          ch.sendToQueue('flip-q', Buffer.from('x'), { messageId: `${via}-${i}` })
          await ch.waitForConfirms()
        }
      } finally {
        await conn.close()
      }
      // The watch's events of the earlier lives reach every node after the last declaration: none of them takes it back.
      await new Promise((resolve) => setTimeout(resolve, 300))
      for (const id of ids) {
        const res = await fetch(`${cluster.node(id).url}/v1/streams/flip-q/events?from=0&limit=10`)
        expect(((await res.json()) as { events: Array<{ id: string }> }).events.map((e) => e.id), `read through ${id}`).toEqual([`${via}-7`])
      }
    }
  }, 60_000)
})
