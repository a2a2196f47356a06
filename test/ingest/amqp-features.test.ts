import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { channelError, collect, connect, sleep, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

// The RabbitMQ features that Celery, kombu, the Java and Go clients and RPC programs rely on, each
// as amqplib uses it against RabbitMQ.

async function channel(): Promise<{ conn: amqp.ChannelModel; ch: amqp.Channel; url: string }> {
  const s = await startAmqpServer({ pipeline: amqpPipeline })
  const conn = await connect(s.amqpUrl)
  return { conn, ch: await conn.createChannel(), url: s.amqpUrl }
}

/** Whether a queue exists, asked on a channel of its own (a 404 closes the channel it is asked on). */
async function queueExists(conn: amqp.ChannelModel, q: string): Promise<boolean> {
  const ch = await conn.createChannel()
  ch.on('error', () => undefined)
  return ch.checkQueue(q).then(
    async () => {
      await ch.close()
      return true
    },
    () => false,
  )
}

async function exchangeExists(conn: amqp.ChannelModel, x: string): Promise<boolean> {
  const ch = await conn.createChannel()
  ch.on('error', () => undefined)
  return ch.checkExchange(x).then(
    async () => {
      await ch.close()
      return true
    },
    () => false,
  )
}

const bodies = (ms: readonly amqp.Message[]): string[] => ms.map((m) => m.content.toString())

describe('AMQP: RabbitMQ features', () => {
  it('x-expires: an unused queue goes after the interval; a consumer keeps it', async () => {
    const { conn, ch } = await channel()
    await ch.assertQueue('idle', { arguments: { 'x-expires': 300 } })
    await ch.assertQueue('watched', { arguments: { 'x-expires': 300 } })
    const { consumerTag } = await ch.consume('watched', () => undefined, { noAck: true })
    await until(async () => !(await queueExists(conn, 'idle')), 5000, 'idle queue to expire')
    expect(await queueExists(conn, 'watched')).toBe(true)
    // Unused again once its consumer goes: it expires in turn.
    await ch.cancel(consumerTag)
    await until(async () => !(await queueExists(conn, 'watched')), 5000, 'watched queue to expire')
  })

  it('auto-delete exchanges go when their last binding goes', async () => {
    const { conn, ch } = await channel()
    await ch.assertExchange('ad-x', 'fanout', { autoDelete: true })
    await ch.assertQueue('ad-q1')
    await ch.assertQueue('ad-q2')
    await ch.bindQueue('ad-q1', 'ad-x', '')
    await ch.bindQueue('ad-q2', 'ad-x', '')
    await ch.unbindQueue('ad-q1', 'ad-x', '')
    expect(await exchangeExists(conn, 'ad-x')).toBe(true)
    // The last binding goes with its queue.
    await ch.deleteQueue('ad-q2')
    await until(async () => !(await exchangeExists(conn, 'ad-x')), 2000, 'auto-delete exchange to go')
    // Never bound: it stays, as in RabbitMQ.
    await ch.assertExchange('ad-never', 'direct', { autoDelete: true })
    expect(await exchangeExists(conn, 'ad-never')).toBe(true)
  })

  it('exchange.unbind and queue.unbind stop the routing', async () => {
    const { ch } = await channel()
    const c = ch as amqp.ConfirmChannel
    await ch.assertExchange('src', 'topic')
    await ch.assertExchange('dst', 'fanout')
    await ch.assertQueue('ub-q')
    await ch.bindExchange('dst', 'src', 'a.#')
    await ch.bindQueue('ub-q', 'dst', '')
    await ch.bindQueue('ub-q', 'src', 'direct.*')
    ch.publish('src', 'a.1', Buffer.from('via-e2e'))
    ch.publish('src', 'direct.1', Buffer.from('via-q'))
    expect(bodies(await collect(ch, 'ub-q', 2))).toEqual(['via-e2e', 'via-q'])
    await c.unbindExchange('dst', 'src', 'a.#')
    await ch.unbindQueue('ub-q', 'src', 'direct.*')
    ch.publish('src', 'a.2', Buffer.from('lost-1'))
    ch.publish('src', 'direct.2', Buffer.from('lost-2'))
    ch.publish('dst', '', Buffer.from('still'))
    expect(bodies(await collect(ch, 'ub-q', 1))).toEqual(['still'])
    expect((await ch.checkQueue('ub-q')).messageCount).toBe(0)
  })

  it('queue.purge leaves unacked deliveries and counts what it took', async () => {
    const { ch } = await channel()
    await ch.assertQueue('pq')
    for (let i = 0; i < 5; i++) ch.sendToQueue('pq', Buffer.from(`m${i}`))
    await until(async () => (await ch.checkQueue('pq')).messageCount === 5)
    const held = await ch.get('pq')
    expect(held !== false && held.content.toString()).toBe('m0')
    expect(await ch.purgeQueue('pq')).toEqual({ messageCount: 4 })
    expect(await ch.get('pq')).toBe(false)
    ch.nack(held as amqp.GetMessage, false, true)
    const back = await ch.get('pq', { noAck: true })
    expect(back !== false && back.content.toString()).toBe('m0')
  })

  it('queue.delete if-unused and if-empty refuse with 406, and delete otherwise', async () => {
    const { conn, ch } = await channel()
    await ch.assertQueue('dq')
    await ch.consume('dq', () => undefined)
    expect(await channelError(conn, (c) => c.deleteQueue('dq', { ifUnused: true }))).toMatchObject({ code: 406, message: expect.stringContaining("queue 'dq' in vhost '/' in use") })
    await ch.assertQueue('dq2')
    ch.sendToQueue('dq2', Buffer.from('x'))
    await until(async () => (await ch.checkQueue('dq2')).messageCount === 1)
    expect(await channelError(conn, (c) => c.deleteQueue('dq2', { ifEmpty: true }))).toMatchObject({ code: 406, message: expect.stringContaining("queue 'dq2' in vhost '/' not empty") })
    expect(await ch.deleteQueue('dq2', { ifUnused: true })).toEqual({ messageCount: 1 })
    expect(await queueExists(conn, 'dq2')).toBe(false)
  })

  it('x-single-active-consumer: one consumer gets everything; the next takes over when it goes', async () => {
    const { conn, ch } = await channel()
    await ch.assertQueue('sac', { arguments: { 'x-single-active-consumer': true } })
    const first = await conn.createChannel()
    const second = await conn.createChannel()
    await first.prefetch(1)
    const got: Record<string, string[]> = { first: [], second: [] }
    await first.consume('sac', (m) => m !== null && got.first!.push(m.content.toString()))
    await second.consume('sac', (m) => m !== null && got.second!.push(m.content.toString()), { noAck: true })
    for (let i = 0; i < 3; i++) ch.sendToQueue('sac', Buffer.from(`a${i}`))
    await until(async () => (await ch.checkQueue('sac')).messageCount === 2)
    // The active consumer is full (prefetch 1, nothing acked): the other one still gets nothing.
    await sleep(100)
    expect(got).toEqual({ first: ['a0'], second: [] })
    // It goes (its unacked message back to the queue): the next in line takes over.
    await first.close()
    await until(() => got.second!.length === 3)
    expect(got.second!.slice().sort()).toEqual(['a0', 'a1', 'a2'])
  })

  it('consumer priorities: x-priority consumers get messages while they have credit', async () => {
    const { conn, ch } = await channel()
    await ch.assertQueue('prio')
    const low = await conn.createChannel()
    const high = await conn.createChannel()
    await high.prefetch(2)
    const got: Record<string, string[]> = { low: [], high: [] }
    const highHeld: amqp.Message[] = []
    await low.consume('prio', (m) => m !== null && got.low!.push(m.content.toString()), { noAck: true, arguments: { 'x-priority': 1 } })
    await high.consume(
      'prio',
      (m) => {
        if (m === null) return
        got.high!.push(m.content.toString())
        highHeld.push(m)
      },
      { arguments: { 'x-priority': 10 } },
    )
    for (let i = 0; i < 2; i++) ch.sendToQueue('prio', Buffer.from(`p${i}`))
    await until(() => got.high!.length === 2)
    expect(got.low).toEqual([])
    // The high-priority consumer is full (prefetch 2): the next ones go to the low one.
    for (let i = 2; i < 4; i++) ch.sendToQueue('prio', Buffer.from(`p${i}`))
    await until(() => got.low!.length === 2)
    expect(got).toEqual({ high: ['p0', 'p1'], low: ['p2', 'p3'] })
  })

  it('basic.reject, and basic.nack with multiple, requeue or dead-letter', async () => {
    const { ch } = await channel()
    await ch.assertExchange('rn-dlx', 'fanout')
    await ch.assertQueue('rn-dead')
    await ch.bindQueue('rn-dead', 'rn-dlx', '')
    await ch.assertQueue('rn', { arguments: { 'x-dead-letter-exchange': 'rn-dlx' } })
    for (let i = 0; i < 4; i++) ch.sendToQueue('rn', Buffer.from(`m${i}`))
    const ms = await collect(ch, 'rn', 4, { ack: false })
    ch.reject(ms[0]!, false) // dead-lettered
    ch.nack(ms[2]!, true, true) // m1 and m2 requeued
    ch.nack(ms[3]!, false, false) // dead-lettered
    const again = await collect(ch, 'rn', 2)
    expect(bodies(again).sort()).toEqual(['m1', 'm2'])
    expect(again.every((m) => m.fields.redelivered)).toBe(true)
    expect(bodies(await collect(ch, 'rn-dead', 2))).toEqual(['m0', 'm3'])
  })

  it('per-message TTL: an expired message is never delivered', async () => {
    const { ch } = await channel()
    const c = ch
    await c.assertQueue('ttl-q')
    c.sendToQueue('ttl-q', Buffer.from('gone'), { expiration: '50' })
    c.sendToQueue('ttl-q', Buffer.from('kept'))
    await sleep(150)
    expect(bodies(await collect(c, 'ttl-q', 1))).toEqual(['kept'])
    await until(async () => (await c.checkQueue('ttl-q')).messageCount === 0, 2000, 'the queue to be empty')
  })

  it('x-queue-type quorum is accepted and redeclared alike', async () => {
    const { ch } = await channel()
    const args = { 'x-queue-type': 'quorum' }
    expect(await ch.assertQueue('qq', { durable: true, arguments: args })).toMatchObject({ queue: 'qq' })
    expect(await ch.assertQueue('qq', { durable: true, arguments: args })).toMatchObject({ queue: 'qq' })
    ch.sendToQueue('qq', Buffer.from('q'))
    expect(bodies(await collect(ch, 'qq', 1))).toEqual(['q'])
  })

  it('direct reply-to: amq.rabbitmq.reply-to answers without a queue', async () => {
    const { conn, ch } = await channel()
    const server = await conn.createChannel()
    await server.assertQueue('rpc')
    await server.consume('rpc', (m) => {
      if (m === null) return
      server.sendToQueue(m.properties.replyTo as string, Buffer.from(`re:${m.content.toString()}`), { correlationId: m.properties.correlationId as string })
      server.ack(m)
    })
    const replies: amqp.ConsumeMessage[] = []
    await ch.consume('amq.rabbitmq.reply-to', (m) => m !== null && replies.push(m), { noAck: true })
    for (let i = 0; i < 3; i++) ch.sendToQueue('rpc', Buffer.from(`q${i}`), { replyTo: 'amq.rabbitmq.reply-to', correlationId: `c${i}` })
    await until(() => replies.length === 3)
    expect(replies.map((m) => [m.content.toString(), m.properties.correlationId])).toEqual([
      ['re:q0', 'c0'],
      ['re:q1', 'c1'],
      ['re:q2', 'c2'],
    ])
    // Publishing with reply-to set needs the reply consumer on that channel, as in RabbitMQ.
    const err = await channelError(conn, async (c) => {
      c.sendToQueue('rpc', Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' })
      await c.checkQueue('rpc')
    })
    expect(err).toMatchObject({ code: 406, message: expect.stringContaining('fast reply consumer does not exist') })
    // The reply consumer must be no-ack.
    expect(await channelError(conn, (c) => c.consume('amq.rabbitmq.reply-to', () => undefined))).toMatchObject({ code: 406 })
  })

  it('basic.qos global: one limit across the channel', async () => {
    const { ch } = await channel()
    await ch.assertQueue('g1')
    await ch.assertQueue('g2')
    await ch.prefetch(3, true)
    const held: amqp.Message[] = []
    await ch.consume('g1', (m) => m !== null && held.push(m))
    await ch.consume('g2', (m) => m !== null && held.push(m))
    for (let i = 0; i < 5; i++) {
      ch.sendToQueue('g1', Buffer.from(`a${i}`))
      ch.sendToQueue('g2', Buffer.from(`b${i}`))
    }
    await until(() => held.length === 3)
    await sleep(200)
    expect(held).toHaveLength(3)
    ch.ack(held[0]!)
    await until(() => held.length === 4)
    await sleep(100)
    expect(held).toHaveLength(4)
  })

  it('basic.recover requeues what the channel holds', async () => {
    const { ch } = await channel()
    await ch.assertQueue('rec')
    for (let i = 0; i < 3; i++) ch.sendToQueue('rec', Buffer.from(`r${i}`))
    const seen: amqp.Message[] = []
    await ch.consume('rec', (m) => m !== null && seen.push(m))
    await until(() => seen.length === 3)
    await ch.recover()
    await until(() => seen.length === 6)
    expect(seen.slice(3).every((m) => m.fields.redelivered)).toBe(true)
    expect(bodies(seen.slice(3)).sort()).toEqual(['r0', 'r1', 'r2'])
  })

  it('channel.flow: active=false stops deliveries to the channel, active=true resumes them', async () => {
    const { ch } = await channel()
    // amqplib has no call for channel.flow; its rpc takes the method id (class 20 << 16 | method).
    const ChannelFlow = (20 << 16) | 20
    const ChannelFlowOk = (20 << 16) | 21
    const rpc = (active: boolean): Promise<{ active: boolean }> => (ch as unknown as { rpc(m: number, f: object, e: number): Promise<{ active: boolean }> }).rpc(ChannelFlow, { active }, ChannelFlowOk)
    await ch.assertQueue('flow')
    const got: string[] = []
    await ch.consume('flow', (m) => m !== null && got.push(m.content.toString()), { noAck: true })
    ch.sendToQueue('flow', Buffer.from('f0'))
    await until(() => got.length === 1)
    expect(await rpc(false)).toMatchObject({ active: false })
    ch.sendToQueue('flow', Buffer.from('f1'))
    await until(async () => (await ch.checkQueue('flow')).messageCount === 1)
    await sleep(100)
    expect(got).toEqual(['f0'])
    expect(await rpc(true)).toMatchObject({ active: true })
    await until(() => got.length === 2)
    expect(got).toEqual(['f0', 'f1'])
  })
})
