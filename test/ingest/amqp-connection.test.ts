import { connect as netConnect } from 'node:net'
import type amqp from 'amqplib'
import amqplib from 'amqplib'
import { describe, expect, it } from 'vitest'
import { channelError, collect, connect, sleep, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

describe('AMQP connection and channel errors', () => {
  it('passive declares answer 404 for what is missing; 404/406 close the channel, the connection survives', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    expect(await channelError(conn, (ch) => ch.checkQueue('nope'))).toMatchObject({ code: 404, message: expect.stringContaining("NOT_FOUND - no queue 'nope' in vhost '/'") })
    expect(await channelError(conn, (ch) => ch.checkExchange('nope'))).toMatchObject({ code: 404, message: expect.stringContaining("NOT_FOUND - no exchange 'nope' in vhost '/'") })
    const ch = await conn.createChannel()
    await ch.assertQueue('durable-q', { durable: true })
    await ch.assertExchange('ex', 'direct')
    expect(await channelError(conn, (c) => c.assertQueue('durable-q', { durable: false }))).toMatchObject({
      code: 406,
      message: expect.stringContaining("PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'durable-q' in vhost '/': received 'false' but current is 'true'"),
    })
    expect(await channelError(conn, (c) => c.assertQueue('durable-q', { durable: true, arguments: { 'x-message-ttl': 1000 } }))).toMatchObject({
      code: 406,
      message: expect.stringContaining("inequivalent arg 'x-message-ttl' for queue 'durable-q' in vhost '/': received '1000' but current is none"),
    })
    expect(await channelError(conn, (c) => c.assertExchange('ex', 'fanout'))).toMatchObject({
      code: 406,
      message: expect.stringContaining("inequivalent arg 'type' for exchange 'ex' in vhost '/': received 'fanout' but current is 'direct'"),
    })
    expect(await channelError(conn, (c) => c.bindQueue('durable-q', 'missing-ex', 'k'))).toMatchObject({ code: 404, message: expect.stringContaining("no exchange 'missing-ex'") })
    expect(await channelError(conn, (c) => c.assertQueue('amq.mine'))).toMatchObject({ code: 403, message: expect.stringContaining("queue name 'amq.mine' contains reserved prefix 'amq.*'") })
    expect(await channelError(conn, (c) => c.deleteExchange('amq.direct'))).toMatchObject({ code: 403 })
    expect(await channelError(conn, (c) => c.assertQueue('q', { arguments: { 'x-max-length-bytes': 0 } }))).toMatchObject({ code: 406, message: expect.stringContaining("invalid arg 'x-max-length-bytes'") })
    // Acking a tag never delivered: 406 on that channel.
    expect(
      await channelError(conn, async (c) => {
        c.ack({ fields: { deliveryTag: 42 } } as amqp.Message)
        await c.checkQueue('durable-q')
      }),
    ).toMatchObject({ code: 406, message: expect.stringContaining('PRECONDITION_FAILED - unknown delivery tag 42') })
    // The first channel and the connection are still fine; the right declare succeeds.
    expect(await ch.assertQueue('durable-q', { durable: true })).toMatchObject({ queue: 'durable-q' })
    expect(await ch.checkExchange('ex')).toBeDefined()
  })

  it('the wrong protocol header gets ours back and the socket closes', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const got = await new Promise<Buffer>((resolve, reject) => {
      const sock = netConnect(s.amqpPort, '127.0.0.1', () => sock.write('GET / HTTP/1.1\r\n\r\n'))
      const chunks: Buffer[] = []
      sock.on('data', (c: Buffer) => chunks.push(c))
      sock.on('close', () => resolve(Buffer.concat(chunks)))
      sock.on('error', reject)
    })
    expect([...got]).toEqual([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])
  })

  it('refuses bad credentials (403) and unknown vhosts (530)', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    await expect(amqplib.connect(`amqp://guest:wrong@127.0.0.1:${s.amqpPort}`)).rejects.toThrow(/ACCESS_REFUSED|403/)
    await expect(amqplib.connect(`amqp://guest:guest@127.0.0.1:${s.amqpPort}/other`)).rejects.toThrow(/ConnectionClose|NOT_ALLOWED/)
  })

  it('checks auth.users when configured', async () => {
    const s = await startAmqpServer({ pipeline: `${amqpPipeline}\nauth:\n  users:\n    - { username: app, password: s3cret, permissions: { configure: "^ok$" } }\n` })
    await expect(amqplib.connect(`amqp://guest:guest@127.0.0.1:${s.amqpPort}`)).rejects.toThrow(/ACCESS_REFUSED|403/)
    const conn = await connect(`amqp://app:s3cret@127.0.0.1:${s.amqpPort}`)
    await (await conn.createChannel()).assertQueue('ok')
    // Logged in is not allowed everywhere: a queue outside the user's configure pattern is refused.
    const refused = await channelError(conn, (ch) => ch.assertQueue('not-ok'))
    expect(refused).toMatchObject({ code: 403 })
    expect(refused.message).toContain("ACCESS_REFUSED - configure access to queue 'not-ok' in vhost '/' refused for user 'app'")
  })

  it('heartbeats: a connection with a 1 s heartbeat stays up through 3 s of idle', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(`${s.amqpUrl}?heartbeat=1`)
    let closed = false
    conn.on('close', () => (closed = true))
    const ch = await conn.createChannel()
    await sleep(3000)
    expect(closed).toBe(false)
    expect(await ch.assertQueue('still-here')).toMatchObject({ queue: 'still-here' })
  })

  it('a peer that stops sending is dropped after two missed heartbeats', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(`${s.amqpUrl}?heartbeat=1`)
    const closed = new Promise((r) => conn.on('close', r))
    // Silence the client: its heartbeats (and everything else) stop reaching the server.
    const socket = (conn.connection as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
    socket.write = () => true
    const started = Date.now()
    await closed
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500)
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('connection loss returns unacked messages, redelivered: true', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const a = await connect(s.amqpUrl)
    const cha = await a.createChannel()
    await cha.assertQueue('jobs')
    for (let i = 0; i < 3; i++) cha.sendToQueue('jobs', Buffer.from(`job ${i}`))
    await cha.prefetch(10)
    const held = await collect(cha, 'jobs', 3, { ack: false })
    expect(held.map((m) => m.fields.redelivered)).toEqual([false, false, false])
    // Drop the socket without a close handshake.
    ;(a.connection as unknown as { stream: { destroy(): void } }).stream.destroy()
    const chb = await (await connect(s.amqpUrl)).createChannel()
    const back = await collect(chb, 'jobs', 3)
    expect(back.map((m) => m.content.toString()).sort()).toEqual(['job 0', 'job 1', 'job 2'])
    expect(back.every((m) => m.fields.redelivered)).toBe(true)
    expect(back.map((m) => m.properties.headers?.['x-delivery-count'])).toEqual([1, 1, 1])
  })

  it('basic.get, recover, purge, and a server-sent basic.cancel when the queue is deleted', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertQueue('g')
    for (let i = 0; i < 3; i++) ch.sendToQueue('g', Buffer.from(`g${i}`))
    await until(async () => (await ch.checkQueue('g')).messageCount === 3, 3000, 'published')
    const first = await ch.get('g')
    expect(first && first.content.toString()).toBe('g0')
    expect(first && first.fields.messageCount).toBe(2)
    await ch.recover()
    const again = await ch.get('g', { noAck: true })
    expect(again && again.content.toString()).toBe('g0')
    expect(again && again.fields.redelivered).toBe(true)
    expect(await ch.purgeQueue('g')).toEqual({ messageCount: 2 })
    expect(await ch.get('g')).toBe(false)

    const cancelled = new Promise<null>((resolve) => void ch.consume('g', (m) => m === null && resolve(m)))
    await sleep(50)
    const other = await (await connect(s.amqpUrl)).createChannel()
    expect(await other.deleteQueue('g')).toEqual({ messageCount: 0 })
    expect(await cancelled).toBeNull()
    const closed = new Promise((r) => other.once('error', r))
    await expect(other.checkQueue('g')).rejects.toThrow(/404/)
    await closed
  })

  it('auto-delete queues go with their last consumer', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createChannel()
    await ch.assertQueue('temp', { autoDelete: true })
    const { consumerTag } = await ch.consume('temp', () => undefined)
    expect((await ch.checkQueue('temp')).consumerCount).toBe(1)
    await ch.cancel(consumerTag)
    const check = await (await connect(s.amqpUrl)).createChannel()
    await until(async () => {
      const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
      return !streams.streams.some((x) => x.name === 'temp')
    }, 3000, 'auto-delete')
    const closed = new Promise((r) => check.once('error', r))
    await expect(check.checkQueue('temp')).rejects.toThrow(/404/)
    await closed
  })

  it('stream queues: each consumer reads from its x-stream-offset', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('events', { durable: true, arguments: { 'x-queue-type': 'stream' } })
    for (let i = 0; i < 5; i++) ch.sendToQueue('events', Buffer.from(`e${i}`))
    await ch.waitForConfirms()
    await ch.prefetch(100)
    const text = (ms: amqp.ConsumeMessage[]): string[] => ms.map((m) => m.content.toString())
    expect(text(await collect(ch, 'events', 5, { arguments: { 'x-stream-offset': 'first' } }))).toEqual(['e0', 'e1', 'e2', 'e3', 'e4'])
    // Reading does not consume: another consumer from the start sees the same events.
    expect(text(await collect(ch, 'events', 2, { arguments: { 'x-stream-offset': 'first' } }))).toEqual(['e0', 'e1'])
    const fromOffset = collect(ch, 'events', 4, { arguments: { 'x-stream-offset': 2 } })
    const fromNext = collect(ch, 'events', 1, { arguments: { 'x-stream-offset': 'next' } })
    const byDefault = collect(ch, 'events', 1)
    // `next` means the end when the consumer starts: publish only once all three are reading
    // (a fixed sleep lost that race on a busy machine and the test hung).
    await until(async () => {
      const groups = (await (await fetch(`${s.url}/v1/groups`)).json()) as { groups: Array<{ name: string }> }
      return groups.groups.filter((g) => g.name.startsWith('events.')).length === 3
    }, 5000, 'three stream consumers')
    ch.sendToQueue('events', Buffer.from('e5'))
    await ch.waitForConfirms()
    expect(text(await fromOffset)).toEqual(['e2', 'e3', 'e4', 'e5'])
    expect(text(await fromNext)).toEqual(['e5'])
    expect(text(await byDefault)).toEqual(['e5'])
    // The per-consumer groups went with their consumers.
    await until(async () => {
      const groups = (await (await fetch(`${s.url}/v1/groups`)).json()) as { groups: Array<{ name: string }> }
      return !groups.groups.some((g) => g.name.startsWith('events.'))
    }, 3000, 'consumer groups deleted')
  })

  it('a resource alarm sends connection.blocked, holds publishes, and unblocked lets them through', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const events: string[] = []
    conn.on('blocked', () => events.push('blocked'))
    conn.on('unblocked', () => events.push('unblocked'))
    const ch = await conn.createConfirmChannel()
    await ch.assertQueue('held')
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 }) // more than any disk here
    await until(() => events.includes('blocked'), 3000, 'connection.blocked')
    let confirmed = false
    ch.sendToQueue('held', Buffer.from('waits'), {}, () => (confirmed = true))
    await sleep(300)
    expect(confirmed).toBe(false)
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    await ch.waitForConfirms()
    expect(confirmed).toBe(true)
    expect(events).toEqual(['blocked', 'unblocked'])
    expect((await ch.checkQueue('held')).messageCount).toBe(1)
  })
})
