import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { storedRecordBytes } from '../../src/log/index.js'
import { collect, connect, sleep, startAmqpServer, type AmqpTestServer } from '../helpers/amqp.js'
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

/** Stored sizes of a queue's events, oldest first, read from its stream's log. */
async function storedSizes(s: AmqpTestServer, queue: string): Promise<number[]> {
  const { records } = await s.server.streams.get(queue)!.log.read(0)
  return records.map((r) => storedRecordBytes(r))
}

/**
 * What a message with a body of `n` bytes takes in the log when sent with sendToQueue to a queue
 * whose name is as long as `like`'s: measured on a probe queue, since the key and headers count.
 */
async function storedSizeOf(s: AmqpTestServer, ch: amqp.ConfirmChannel, like: string, n: number): Promise<number> {
  const probe = 'p'.repeat(like.length)
  await ch.assertQueue(probe)
  ch.sendToQueue(probe, Buffer.alloc(n, 'x'))
  await ch.waitForConfirms()
  const [size] = await storedSizes(s, probe)
  return size!
}

const body = (tag: string, n: number): Buffer => Buffer.from(tag.padEnd(n, '.'))

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

  it('maxlen: x-max-length-bytes drops the oldest (drop-head) until the stored bytes fit', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    // The per-message overhead (key, properties, framing) over the body.
    const overhead = (await storedSizeOf(s, ch, 'bytes-head', 10)) - 10
    const lengths = [100, 10, 10, 50, 10]
    // Room for the last four exactly: the 100-byte m0 must go, and nothing else.
    const limit = 4 * overhead + 10 + 10 + 50 + 10
    await ch.assertExchange('dlx', 'fanout')
    await ch.assertQueue('dead')
    await ch.bindQueue('dead', 'dlx', '')
    await ch.assertQueue('bytes-head', { arguments: { 'x-dead-letter-exchange': 'dlx', 'x-max-length-bytes': limit } })
    for (const [i, n] of lengths.entries()) ch.sendToQueue('bytes-head', body(`m${i}`, n))
    await ch.waitForConfirms()
    const [dead] = await collect(ch, 'dead', 1)
    expect(dead!.content.toString()).toBe(body('m0', 100).toString())
    expect(deaths(dead!)[0]).toMatchObject({ reason: 'maxlen', queue: 'bytes-head', count: 1 })
    expect((await storedSizes(s, 'bytes-head')).map((n) => n - overhead)).toEqual(lengths)
    expect((await ch.checkQueue('bytes-head')).messageCount).toBe(4)
    const kept = await collect(ch, 'bytes-head', 4)
    expect(kept.map((m) => m.content.toString())).toEqual(['m1', 'm2', 'm3', 'm4'].map((t, i) => body(t, lengths[i + 1]!).toString()))
    // Nothing more was dropped, and the group counts the one drop.
    expect((await ch.checkQueue('dead')).messageCount).toBe(0)
    expect(s.server.groups.get('bytes-head')!.deadLettered.maxlen).toBe(1)
    // A single message larger than the bound cannot stay either.
    ch.sendToQueue('bytes-head', body('huge', limit))
    await ch.waitForConfirms()
    const [huge] = await collect(ch, 'dead', 1)
    expect(huge!.content.toString()).toBe(body('huge', limit).toString())
    expect((await ch.checkQueue('bytes-head')).messageCount).toBe(0)
  })

  it('reject-publish: x-max-length-bytes nacks a message that would not fit, and takes the next that does', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    const overhead = (await storedSizeOf(s, ch, 'bytes-full', 10)) - 10
    // m0..m2 and one more 10-byte message fit; a 50-byte one does not.
    const limit = 4 * overhead + 100 + 10 + 10 + 10
    await ch.assertQueue('bytes-full', { arguments: { 'x-max-length-bytes': limit, 'x-overflow': 'reject-publish' } })
    const outcome: string[] = []
    const send = (tag: string, n: number): Promise<void> =>
      new Promise<void>((resolve) => ch.sendToQueue('bytes-full', body(tag, n), {}, (err) => (outcome.push(`${tag}:${err === null || err === undefined ? 'ack' : 'nack'}`), resolve())))
    // One at a time: each publish is admitted against what the ones before left.
    for (const [tag, n] of [['m0', 100], ['m1', 10], ['m2', 10], ['m3', 50], ['m4', 10], ['m5', 10]] as const) await send(tag, n)
    expect(outcome).toEqual(['m0:ack', 'm1:ack', 'm2:ack', 'm3:nack', 'm4:ack', 'm5:nack'])
    expect((await storedSizes(s, 'bytes-full')).map((n) => n - overhead)).toEqual([100, 10, 10, 10])
    // Settling m0 frees its bytes: the 50-byte message fits now.
    const got = await ch.get('bytes-full', { noAck: true })
    expect(got !== false && got.content.toString()).toBe(body('m0', 100).toString())
    await send('m6', 50)
    expect(outcome.at(-1)).toBe('m6:ack')
    const kept = await collect(ch, 'bytes-full', 4)
    expect(kept.map((m) => m.content.toString().replace(/\.+$/, ''))).toEqual(['m1', 'm2', 'm4', 'm6'])
    expect((await ch.checkQueue('bytes-full')).messageCount).toBe(0)
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
