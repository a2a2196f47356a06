// AMQP consumers on any node: a queue's group lives where its stream lives, and a channel on
// another node consumes it through that node, with amqplib as the client. Real etcd, three
// Sluice processes, loopback only.

import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView } from '../../src/cluster/index.js'
import { nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/programs.js'

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir)}exchanges:
  work: { type: direct }
streams:
  tasks: {}
bindings:
  - { exchange: work, stream: tasks, key: tasks }
groups:
  tasks: { stream: tasks, ackTimeout: 30s }
`

describe('AMQP consumers on a node that is not the queue home', () => {
  let cluster: TestCluster
  let view: ClusterView
  let home: string
  let away: string[]

  const url = (id: string): string => `amqp://guest:guest@127.0.0.1:${view.nodes.find((n) => n.id === id)!.amqpPort!}`

  /** Publishes over AMQP through `via`, with confirms; bodies are binary, so only exact bytes compare equal. */
  const publish = async (via: string, bodies: readonly Buffer[]): Promise<void> => {
    const conn = await amqp.connect(url(via))
    try {
      const ch = await conn.createConfirmChannel()
      bodies.forEach((b, i) => ch.publish('work', 'tasks', b, { messageId: `m-${b.toString('hex')}-${i}`, headers: { n: i } }))
      await ch.waitForConfirms()
    } finally {
      await conn.close()
    }
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ ids: ['n1', 'n2', 'n3'], yaml })
    view = await cluster.settled(1)
    home = view.placement[0]!.node
    away = ['n1', 'n2', 'n3'].filter((n) => n !== home)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('consumes every message once, in order, with exact bodies and headers, acking each', async () => {
    const bodies = Array.from({ length: 40 }, (_, i) => Buffer.from([0xff, 0x00, i, 0x80, 0x7b]))
    await publish(away[0]!, bodies)
    const conn = await amqp.connect(url(away[1]!))
    try {
      const ch = await conn.createChannel()
      await ch.prefetch(7)
      const got: amqp.ConsumeMessage[] = []
      await ch.consume('tasks', (m) => {
        if (m === null) return
        got.push(m)
        ch.ack(m)
      })
      await waitFor('40 deliveries', async () => (got.length >= 40 ? true : undefined), 10_000, 20)
      expect(got.map((m) => m.content.toString('hex'))).toEqual(bodies.map((b) => b.toString('hex')))
      expect(got.map((m) => m.properties.headers?.n)).toEqual(bodies.map((_, i) => i))
      expect(got.every((m) => !m.fields.redelivered)).toBe(true)
    } finally {
      await conn.close()
    }
    // Settled at the home: nothing is left there.
    const rest = await fetch(`${cluster.node(home).url}/v1/groups/tasks/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ consumer: 'check', max: 100, waitMs: 0 }) })
    expect(((await rest.json()) as { events: unknown[] }).events).toEqual([])
  })

  it('a nack with requeue comes back redelivered; a multiple ack settles the rest; basic.get works too', async () => {
    await publish(home, [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')])
    const conn = await amqp.connect(url(away[0]!))
    try {
      const ch = await conn.createChannel()
      await ch.prefetch(10)
      const got: amqp.ConsumeMessage[] = []
      await ch.consume('tasks', (m) => m !== null && got.push(m))
      await waitFor('3 deliveries', async () => (got.length >= 3 ? true : undefined), 10_000, 20)
      ch.nack(got[0]!, false, true)
      await waitFor('the redelivery', async () => (got.length >= 4 ? true : undefined), 10_000, 20)
      expect(got[3]!.content.toString()).toBe('a')
      expect(got[3]!.fields.redelivered).toBe(true)
      ch.ack(got[3]!, true) // multiple: everything up to it
      await ch.close()
      const ch2 = await conn.createChannel()
      await publish(away[1]!, [Buffer.from('d')])
      const one = await waitFor('basic.get', async () => (await ch2.get('tasks', { noAck: false })) || undefined, 10_000, 50)
      expect(one.content.toString()).toBe('d')
      ch2.ack(one)
      await ch2.close()
    } finally {
      await conn.close()
    }
    const rest = await fetch(`${cluster.node(home).url}/v1/groups/tasks/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ consumer: 'check', max: 100, waitMs: 0 }) })
    expect(((await rest.json()) as { events: unknown[] }).events).toEqual([])
  })

  it('what a closed connection held unacked goes to the next consumer, on another node, redelivered', async () => {
    await publish(away[0]!, [Buffer.from('x'), Buffer.from('y')])
    const first = await amqp.connect(url(away[0]!))
    const held: amqp.ConsumeMessage[] = []
    const ch = await first.createChannel()
    await ch.consume('tasks', (m) => m !== null && held.push(m))
    await waitFor('2 held', async () => (held.length >= 2 ? true : undefined), 10_000, 20)
    await first.close()
    const second = await amqp.connect(url(away[1]!))
    try {
      const ch2 = await second.createChannel()
      const got: amqp.ConsumeMessage[] = []
      await ch2.consume('tasks', (m) => {
        if (m === null) return
        got.push(m)
        ch2.ack(m)
      })
      await waitFor('2 redelivered', async () => (got.length >= 2 ? true : undefined), 10_000, 20)
      expect(got.map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
        ['x', true],
        ['y', true],
      ])
    } finally {
      await second.close()
    }
  })

  it('a stream queue is read through any node: first, last and an offset, resolved at the home', async () => {
    const conn = await amqp.connect(url(away[0]!))
    try {
      const ch = await conn.createConfirmChannel()
      await ch.assertQueue('sq', { durable: true, arguments: { 'x-queue-type': 'stream' } })
      const placed = await waitFor('sq placed everywhere', async () => {
        const vs = await Promise.all(['n1', 'n2', 'n3'].map((n) => cluster.status(n)))
        const homes = vs.map((v) => v.placement.find((p) => p.stream === 'sq')?.node)
        return homes.every((h) => h !== undefined && h === homes[0]) ? homes[0] : undefined
      }, 10_000, 50)
      for (let i = 0; i < 20; i++) ch.sendToQueue('sq', Buffer.from(`s${i}`), { messageId: `s-${i}` })
      await ch.waitForConfirms()
      // Read from every node that is not the stream's home.
      for (const via of ['n1', 'n2', 'n3'].filter((n) => n !== placed)) {
        const reader = await amqp.connect(url(via))
        try {
          const rc = await reader.createChannel()
          await rc.prefetch(100)
          const read = async (offset: string | number, want: number): Promise<Array<[string, string]>> => {
            const got: Array<[string, string]> = []
            const { consumerTag } = await rc.consume('sq', (m) => {
              if (m === null) return
              got.push([m.content.toString(), String(m.properties.messageId)])
              rc.ack(m)
            }, { arguments: { 'x-stream-offset': offset } })
            await waitFor(`${want} from ${String(offset)} through ${via}`, async () => (got.length >= want ? true : undefined), 10_000, 20)
            await rc.cancel(consumerTag)
            return got
          }
          expect(await read('first', 20)).toEqual(Array.from({ length: 20 }, (_, i) => [`s${i}`, `s-${i}`]))
          expect(await read('last', 1)).toEqual([['s19', 's-19']])
          expect(await read(15, 5)).toEqual(Array.from({ length: 5 }, (_, i) => [`s${15 + i}`, `s-${15 + i}`]))
        } finally {
          await reader.close()
        }
      }
    } finally {
      await conn.close()
    }
  })

  it('the home node dying cancels the consumer (consumer_cancel_notify), so the client can consume again', async () => {
    const conn = await amqp.connect(url(away[0]!))
    try {
      const ch = await conn.createChannel()
      let cancelled = false
      await ch.consume('tasks', (m) => {
        if (m === null) cancelled = true
      })
      await cluster.node(home).kill('SIGKILL')
      cluster.nodes.delete(home)
      await waitFor('the server-side cancel', async () => (cancelled ? true : undefined), 10_000, 20)
      // Once its lease has run out, consuming again names why it cannot be served now.
      await waitFor(`${home} gone`, async () => ((await cluster.status(away[0]!)).nodes.some((n) => n.id === home) ? undefined : true), 10_000, 50)
      const ch2 = await conn.createChannel()
      const refused = new Promise<{ code: number; message: string }>((resolve) => ch2.once('error', resolve))
      await ch2.consume('tasks', () => undefined).catch(() => undefined)
      const err = await refused
      expect(err.code).toBe(406)
      expect(err.message).toContain(`its home node ${home} holds no lease now`)
    } finally {
      await conn.close().catch(() => undefined)
    }
  })
})
