import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { connect, startAmqpServer } from '../helpers/amqp.js'

// RabbitMQ's tutorials 6 (RPC) and 7 (publisher confirms), as their amqplib versions are written.

const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2))

/** Tutorial 6's server: answers each request on its reply-to, with its correlation id, then acks. */
async function rpcServer(conn: amqp.ChannelModel): Promise<void> {
  const ch = await conn.createChannel()
  await ch.assertQueue('rpc_queue', { durable: false })
  await ch.prefetch(1)
  await ch.consume('rpc_queue', (msg) => {
    if (msg === null) return
    const n = Number(msg.content.toString())
    ch.sendToQueue(msg.properties.replyTo as string, Buffer.from(String(fib(n))), { correlationId: msg.properties.correlationId as string })
    ch.ack(msg)
  })
}

/** Calls fib(n) for each n, all in flight at once; replies are matched by correlation id. */
async function callAll(ch: amqp.Channel, replyTo: string, ns: readonly number[]): Promise<number[]> {
  const pending = new Map<string, (v: number) => void>()
  await ch.consume(
    replyTo,
    (msg) => {
      if (msg === null) return
      pending.get(msg.properties.correlationId as string)?.(Number(msg.content.toString()))
      pending.delete(msg.properties.correlationId as string)
    },
    { noAck: true },
  )
  return Promise.all(
    ns.map(
      (n, i) =>
        new Promise<number>((resolve) => {
          const correlationId = `corr-${i}-${n}`
          pending.set(correlationId, resolve)
          ch.sendToQueue('rpc_queue', Buffer.from(String(n)), { correlationId, replyTo })
        }),
    ),
  )
}

const ns = Array.from({ length: 30 }, (_, i) => i % 20)

describe('RabbitMQ tutorial 6: RPC', () => {
  it('with an exclusive callback queue and correlation ids', async () => {
    const s = await startAmqpServer()
    await rpcServer(await connect(s.amqpUrl))
    const ch = await (await connect(s.amqpUrl)).createChannel()
    const { queue } = await ch.assertQueue('', { exclusive: true })
    expect(await callAll(ch, queue, ns)).toEqual(ns.map(fib))
  })

  it('with direct reply-to', async () => {
    const s = await startAmqpServer()
    await rpcServer(await connect(s.amqpUrl))
    const ch = await (await connect(s.amqpUrl)).createChannel()
    expect(await callAll(ch, 'amq.rabbitmq.reply-to', ns)).toEqual(ns.map(fib))
    // Replies are not stored: no stream was made for them.
    const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
    expect(streams.streams.map((x) => x.name).filter((n) => n.startsWith('amq.rabbitmq'))).toEqual([])
  })
})

describe('RabbitMQ tutorial 7: publisher confirms', () => {
  const total = 500

  async function setup(): Promise<{ ch: amqp.ConfirmChannel; queue: string; count: () => Promise<number> }> {
    const s = await startAmqpServer()
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    const { queue } = await ch.assertQueue('', { exclusive: true })
    return { ch, queue, count: async () => (await ch.checkQueue(queue)).messageCount }
  }

  const publish = (ch: amqp.ConfirmChannel, queue: string, i: number): Promise<void> =>
    new Promise((resolve, reject) => ch.sendToQueue(queue, Buffer.from(`m${i}`), {}, (err) => (err === null || err === undefined ? resolve() : reject(err as Error))))

  it('strategy 1: publishing messages individually, waiting for each confirm', async () => {
    const { ch, queue, count } = await setup()
    for (let i = 0; i < 100; i++) await publish(ch, queue, i)
    expect(await count()).toBe(100)
  })

  it('strategy 2: publishing in batches, waiting for each batch', async () => {
    const { ch, queue, count } = await setup()
    const batch = 100
    for (let i = 0; i < total; i += batch) {
      for (let j = i; j < i + batch; j++) ch.sendToQueue(queue, Buffer.from(`m${j}`))
      await ch.waitForConfirms()
    }
    expect(await count()).toBe(total)
  })

  it('strategy 3: handling confirms asynchronously', async () => {
    const { ch, queue, count } = await setup()
    const outstanding = new Set<number>()
    let acked = 0
    await new Promise<void>((resolve, reject) => {
      for (let i = 0; i < total; i++) {
        outstanding.add(i)
        ch.sendToQueue(queue, Buffer.from(`m${i}`), {}, (err) => {
          if (err !== null && err !== undefined) return reject(err as Error)
          outstanding.delete(i)
          if (++acked === total) resolve()
        })
      }
    })
    expect(outstanding.size).toBe(0)
    expect(await count()).toBe(total)
  })
})
