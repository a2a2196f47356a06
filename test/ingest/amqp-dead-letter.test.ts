import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { collect, connect, sleep, startAmqpServer } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

// Each dead-letter reason, set up with RabbitMQ's queue arguments; the dead-lettered copy carries
// an x-death header in RabbitMQ's shape (queue, reason, count, exchange, routing-keys, time).

async function setup(url: string, queue: string, args: Record<string, unknown>): Promise<amqp.Channel> {
  const ch = await (await connect(url)).createChannel()
  await ch.assertExchange('dlx', 'fanout')
  await ch.assertQueue('dead')
  await ch.bindQueue('dead', 'dlx', '')
  await ch.assertQueue(queue, { arguments: { 'x-dead-letter-exchange': 'dlx', ...args } })
  return ch
}

interface Death {
  reason: string
  queue: string
  count: number
  exchange: string
  'routing-keys': string[]
  time: { '!': string; value: number }
}

const deaths = (m: amqp.Message): Death[] => (m.properties.headers?.['x-death'] ?? []) as Death[]

describe('AMQP dead letters', () => {
  it('rejected: nack with requeue false', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await setup(s.amqpUrl, 'work', {})
    ch.sendToQueue('work', Buffer.from('poison'), { messageId: 'p1' })
    const [m] = await collect(ch, 'work', 1, { ack: false })
    ch.nack(m!, false, false)
    const [d] = await collect(ch, 'dead', 1)
    expect(d!.content.toString()).toBe('poison')
    expect(d!.properties.messageId).toBe('p1')
    expect(deaths(d!)).toHaveLength(1)
    expect(deaths(d!)[0]).toMatchObject({ reason: 'rejected', queue: 'work', count: 1, exchange: '', 'routing-keys': ['work'] })
    // time is an AMQP timestamp ('T'), as RabbitMQ sends it; amqplib decodes it as {'!': 'timestamp', value}.
    expect(deaths(d!)[0]!.time['!']).toBe('timestamp')
    expect(Math.abs(deaths(d!)[0]!.time.value - Date.now() / 1000)).toBeLessThan(60)
    expect(d!.properties.headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-first-death-queue': 'work', 'x-first-death-exchange': '' })
    // basic.reject with requeue false is the same.
    ch.sendToQueue('work', Buffer.from('again'))
    const [m2] = await collect(ch, 'work', 1, { ack: false })
    ch.reject(m2!, false)
    const got = await collect(ch, 'dead', 1)
    expect(got[0]!.content.toString()).toBe('again')
  })

  it('expired: x-message-ttl, dead-lettered instead of delivered', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await setup(s.amqpUrl, 'short-lived', { 'x-message-ttl': 100, 'x-dead-letter-routing-key': 'timed-out' })
    ch.sendToQueue('short-lived', Buffer.from('stale'))
    await sleep(250)
    expect(await ch.get('short-lived')).toBe(false)
    const [d] = await collect(ch, 'dead', 1)
    expect(d!.content.toString()).toBe('stale')
    expect(d!.fields.routingKey).toBe('timed-out')
    expect(deaths(d!)[0]).toMatchObject({ reason: 'expired', queue: 'short-lived', count: 1, 'routing-keys': ['short-lived'] })
  })

  it('maxlen: x-max-length drops the oldest (drop-head) to the dead-letter exchange', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await setup(s.amqpUrl, 'bounded', { 'x-max-length': 2 })
    for (let i = 0; i < 5; i++) ch.sendToQueue('bounded', Buffer.from(`m${i}`))
    const dead = await collect(ch, 'dead', 3)
    expect(dead.map((d) => d.content.toString())).toEqual(['m0', 'm1', 'm2'])
    expect(dead.every((d) => deaths(d)[0]?.reason === 'maxlen' && deaths(d)[0]?.queue === 'bounded')).toBe(true)
    const kept = await collect(ch, 'bounded', 2)
    expect(kept.map((m) => m.content.toString())).toEqual(['m3', 'm4'])
  })

  it('reject-publish: x-overflow refuses publishes over x-max-length with a nack', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('full', { arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } })
    const outcome: string[] = []
    for (let i = 0; i < 3; i++) {
      ch.sendToQueue('full', Buffer.from(`m${i}`), {}, (err) => outcome.push(err === null || err === undefined ? 'ack' : 'nack'))
      await new Promise((r) => setTimeout(r, 30))
    }
    await ch.waitForConfirms().catch(() => undefined)
    expect(outcome).toEqual(['ack', 'ack', 'nack'])
    expect((await ch.checkQueue('full')).messageCount).toBe(2)
  })

  it('delivery_limit: x-delivery-limit counts redeliveries, shown in x-delivery-count', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await setup(s.amqpUrl, 'flaky', { 'x-delivery-limit': 1 })
    ch.sendToQueue('flaky', Buffer.from('boom'))
    const seen: Array<{ redelivered: boolean; count: unknown }> = []
    await new Promise<void>((resolve) => {
      void ch.consume('flaky', (m) => {
        if (m === null) return
        seen.push({ redelivered: m.fields.redelivered, count: m.properties.headers?.['x-delivery-count'] })
        ch.nack(m, false, true)
        if (seen.length === 2) resolve()
      })
    })
    expect(seen).toEqual([
      { redelivered: false, count: 0 },
      { redelivered: true, count: 1 },
    ])
    const [d] = await collect(ch, 'dead', 1)
    expect(d!.content.toString()).toBe('boom')
    expect(deaths(d!)[0]).toMatchObject({ reason: 'delivery_limit', queue: 'flaky', count: 1 })
  })
})
