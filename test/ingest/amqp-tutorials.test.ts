import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { collect, connect, sleep, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

// The RabbitMQ tutorials 1-5 (https://www.rabbitmq.com/tutorials), written as amqplib programs
// against a real Sluice on an ephemeral port.

const text = (msgs: amqp.ConsumeMessage[]): string[] => msgs.map((m) => m.content.toString())

describe('AMQP: the RabbitMQ tutorials', () => {
  it('1. hello world: a queue, the default exchange, one consumer', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    expect(await ch.assertQueue('hello', { durable: false })).toEqual({ queue: 'hello', messageCount: 0, consumerCount: 0 })
    for (let i = 0; i < 5; i++) ch.sendToQueue('hello', Buffer.from(`Hello World ${i}!`))
    const msgs = await collect(ch, 'hello', 5, { noAck: true })
    expect(text(msgs)).toEqual([0, 1, 2, 3, 4].map((i) => `Hello World ${i}!`))
    expect(msgs[0]!.fields).toMatchObject({ exchange: '', routingKey: 'hello', redelivered: false, deliveryTag: 1 })
    expect(msgs.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3, 4, 5])
  })

  it('2. work queues: prefetch(1) dispatches fairly between a slow and a fast worker', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const producer = await (await connect(s.amqpUrl)).createChannel()
    await producer.assertQueue('task_queue', { durable: true })
    const done: Record<string, string[]> = { slow: [], fast: [] }
    const worker = async (name: 'slow' | 'fast', ms: number): Promise<void> => {
      const ch = await (await connect(s.amqpUrl)).createChannel()
      await ch.assertQueue('task_queue', { durable: true })
      await ch.prefetch(1)
      await ch.consume('task_queue', (msg) => {
        if (msg === null) return
        setTimeout(() => {
          done[name]!.push(msg.content.toString())
          ch.ack(msg)
        }, ms)
      })
    }
    await worker('slow', 300)
    await worker('fast', 5)
    const tasks = Array.from({ length: 20 }, (_, i) => `task ${i}`)
    for (const t of tasks) producer.sendToQueue('task_queue', Buffer.from(t), { persistent: true })
    await until(() => done.slow!.length + done.fast!.length === 20, 10_000, 'all tasks done')
    // Every task done once; the fast worker, never holding more than one, takes nearly all.
    expect([...done.slow!, ...done.fast!].sort()).toEqual([...tasks].sort())
    expect(done.slow!.length).toBeLessThanOrEqual(3)
    expect(done.fast!.length).toBeGreaterThanOrEqual(17)
    await until(async () => (await producer.checkQueue('task_queue')).messageCount === 0, 5000, 'queue drained')
  })

  it('3. publish/subscribe: a fanout to exclusive server-named queues, gone with their connection', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const subscribe = async (): Promise<{ conn: amqp.ChannelModel; queue: string; got: Promise<amqp.ConsumeMessage[]> }> => {
      const conn = await connect(s.amqpUrl)
      const ch = await conn.createChannel()
      await ch.assertExchange('logs', 'fanout', { durable: false })
      const q = await ch.assertQueue('', { exclusive: true })
      expect(q.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/)
      await ch.bindQueue(q.queue, 'logs', '')
      return { conn, queue: q.queue, got: collect(ch, q.queue, 3, { noAck: true }) }
    }
    const a = await subscribe()
    const b = await subscribe()
    expect(a.queue).not.toBe(b.queue)
    const pub = await (await connect(s.amqpUrl)).createChannel()
    await pub.assertExchange('logs', 'fanout', { durable: false })
    for (const line of ['info: one', 'warning: two', 'error: three']) pub.publish('logs', '', Buffer.from(line))
    expect(text(await a.got)).toEqual(['info: one', 'warning: two', 'error: three'])
    expect(text(await b.got)).toEqual(['info: one', 'warning: two', 'error: three'])
    // Exclusive queues go with their connection: stream, group and binding.
    await a.conn.close()
    await until(async () => {
      const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
      return !streams.streams.some((x) => x.name === a.queue)
    }, 5000, 'exclusive queue deleted')
    // b's queue stays; another connection may not even look at it (405, as RabbitMQ answers).
    const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
    expect(streams.streams.map((x) => x.name)).toContain(b.queue)
    const closedPub = new Promise((r) => pub.once('error', r))
    await expect(pub.checkQueue(b.queue)).rejects.toThrow(/405 \(RESOURCE-LOCKED\)/)
    await closedPub
    const other = await (await connect(s.amqpUrl)).createChannel()
    const closed = new Promise((r) => other.once('error', r))
    await expect(other.checkQueue(a.queue)).rejects.toThrow(/404 \(NOT-FOUND\).*no queue 'amq\.gen-/)
    await closed
  })

  it('4. routing: a direct exchange sends each severity to the queues bound for it', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertExchange('direct_logs', 'direct', { durable: false })
    const errors = (await ch.assertQueue('', { exclusive: true })).queue
    const all = (await ch.assertQueue('', { exclusive: true })).queue
    await ch.bindQueue(errors, 'direct_logs', 'error')
    for (const sev of ['info', 'warning', 'error']) await ch.bindQueue(all, 'direct_logs', sev)
    const gotErrors = collect(ch, errors, 2)
    const gotAll = collect(ch, all, 5)
    const sent: Array<[string, string]> = [
      ['info', 'i1'],
      ['error', 'e1'],
      ['warning', 'w1'],
      ['debug', 'dropped'],
      ['error', 'e2'],
      ['info', 'i2'],
    ]
    for (const [sev, body] of sent) ch.publish('direct_logs', sev, Buffer.from(body))
    expect(text(await gotErrors)).toEqual(['e1', 'e2'])
    const msgs = await gotAll
    expect(text(msgs)).toEqual(['i1', 'e1', 'w1', 'e2', 'i2'])
    expect(msgs.map((m) => m.fields.routingKey)).toEqual(['info', 'error', 'warning', 'error', 'info'])
    expect(msgs.every((m) => m.fields.exchange === 'direct_logs')).toBe(true)
  })

  it('5. topics: * matches one word, # zero or more', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertExchange('topic_logs', 'topic', { durable: false })
    const critical = (await ch.assertQueue('', { exclusive: true })).queue
    const kern = (await ch.assertQueue('', { exclusive: true })).queue
    const everything = (await ch.assertQueue('', { exclusive: true })).queue
    await ch.bindQueue(critical, 'topic_logs', '*.critical')
    await ch.bindQueue(kern, 'topic_logs', 'kern.*')
    await ch.bindQueue(everything, 'topic_logs', '#')
    const gotCritical = collect(ch, critical, 2)
    const gotKern = collect(ch, kern, 2)
    const gotAll = collect(ch, everything, 5)
    for (const key of ['kern.critical', 'kern.info', 'cron.critical', 'cron.info', 'a.b.critical']) ch.publish('topic_logs', key, Buffer.from(key))
    expect(text(await gotCritical)).toEqual(['kern.critical', 'cron.critical'])
    expect(text(await gotKern)).toEqual(['kern.critical', 'kern.info'])
    expect(text(await gotAll)).toEqual(['kern.critical', 'kern.info', 'cron.critical', 'cron.info', 'a.b.critical'])
    await sleep(50)
  })
})
