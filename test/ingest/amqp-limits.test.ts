import { connect as netConnect, type Socket } from 'node:net'
import amqplib from 'amqplib'
import { describe, expect, it } from 'vitest'
import { PROTOCOL_HEADER } from '../../src/ingest/amqp/constants.js'
import { encodeMethodFrame } from '../../src/ingest/amqp/methods.js'
import { channelError, connect, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

// The AMQP door's limits: the handshake deadline, connection caps in total and per client
// address, and the queues one connection may hold. Each refuses with an AMQP error naming the
// limit and counts in sluice_limit_hits_total{limit}.

async function limitHits(url: string, limit: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`sluice_limit_hits_total{limit="${limit}"}`))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

/** A raw socket to the AMQP port, open; `sent` is written once connected. */
async function rawSocket(port: number, sent?: Buffer, localAddress = '127.0.0.1'): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = netConnect({ port, host: '127.0.0.1', localAddress })
  socket.on('error', () => undefined)
  socket.resume()
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  if (sent !== undefined) socket.write(sent)
  return { socket, closed }
}

const startOk = encodeMethodFrame(0, { name: 'connection.start-ok', clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' })
const tuneOk = encodeMethodFrame(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: 131072, heartbeat: 0 })

describe('AMQP handshake timeout', () => {
  it('closes sockets that do not reach connection.open in time, at every step, and counts them', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, handshakeTimeout: 300ms }' })
    const before = await limitHits(s.url, 'amqp.handshakeTimeout')
    const t0 = Date.now()
    const stuck = await Promise.all([
      rawSocket(s.amqpPort), // nothing at all
      rawSocket(s.amqpPort, PROTOCOL_HEADER), // stops after connection.start
      rawSocket(s.amqpPort, Buffer.concat([PROTOCOL_HEADER, startOk])), // after connection.tune
      rawSocket(s.amqpPort, Buffer.concat([PROTOCOL_HEADER, startOk, tuneOk])), // never sends connection.open
    ])
    const closedAt = await Promise.all(stuck.map((x) => x.closed))
    for (const at of closedAt) {
      expect(at - t0).toBeGreaterThanOrEqual(250)
      expect(at - t0).toBeLessThan(3000)
    }
    expect((await limitHits(s.url, 'amqp.handshakeTimeout')) - before).toBe(4)
    // A client that finishes its handshake in time is not touched by the deadline later.
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    await ch.assertQueue('after-deadline')
    await new Promise((r) => setTimeout(r, 600))
    ch.sendToQueue('after-deadline', Buffer.from('still here'))
    await ch.waitForConfirms()
    expect((await ch.checkQueue('after-deadline')).messageCount).toBe(1)
    expect((await limitHits(s.url, 'amqp.handshakeTimeout')) - before).toBe(4)
  })

  it('a real client connects and publishes while 200 silent sockets are held; then the 200 are closed', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, handshakeTimeout: 2s }' })
    const before = await limitHits(s.url, 'amqp.handshakeTimeout')
    const silent = await Promise.all(Array.from({ length: 200 }, () => rawSocket(s.amqpPort)))
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    await ch.assertQueue('beside-silent')
    for (let i = 0; i < 100; i++) ch.sendToQueue('beside-silent', Buffer.from(`m${i}`))
    await ch.waitForConfirms()
    expect((await ch.checkQueue('beside-silent')).messageCount).toBe(100)
    expect(silent.every((x) => !x.socket.destroyed)).toBe(true)
    await Promise.all(silent.map((x) => x.closed))
    expect((await limitHits(s.url, 'amqp.handshakeTimeout')) - before).toBe(200)
    // The client that completed its handshake stays.
    ch.sendToQueue('beside-silent', Buffer.from('after'))
    await ch.waitForConfirms()
    expect((await ch.checkQueue('beside-silent')).messageCount).toBe(101)
  })

  it('refuses a handshake timeout under 100ms in the configuration', async () => {
    await expect(startAmqpServer({ amqp: '{ port: 0, handshakeTimeout: 10ms }' })).rejects.toThrow(/handshakeTimeout/)
  })
})

describe('AMQP connection caps', () => {
  it('server.amqp.maxConnections: one more is refused with 530 naming the limit; a freed slot lets the next in', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, maxConnections: 2 }' })
    const before = await limitHits(s.url, 'amqp.maxConnections')
    const a = await connect(s.amqpUrl)
    await connect(s.amqpUrl)
    const err = (await amqplib.connect(s.amqpUrl).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error | undefined
    expect(err?.message).toMatch(/530/)
    expect(err?.message).toContain('connection limit (2) is reached (server.amqp.maxConnections)')
    expect((await limitHits(s.url, 'amqp.maxConnections')) - before).toBe(1)
    await a.close()
    await until(async () => {
      try {
        await connect(s.amqpUrl)
        return true
      } catch {
        return false
      }
    }, 3000, 'a connection after one closed')
  })

  it('server.amqp.maxConnectionsPerAddress: the third from one address is refused, another address still gets in', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, maxConnectionsPerAddress: 2 }' })
    const before = await limitHits(s.url, 'amqp.maxConnectionsPerAddress')
    await connect(s.amqpUrl, { localAddress: '127.0.0.1' })
    await connect(s.amqpUrl, { localAddress: '127.0.0.1' })
    // amqplib hands its socket options to net.connect; its types do not list localAddress.
    const from = { localAddress: '127.0.0.1' } as unknown as Parameters<typeof amqplib.connect>[1]
    const err = (await amqplib.connect(s.amqpUrl, from).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error | undefined
    expect(err?.message).toMatch(/530/)
    expect(err?.message).toContain('connection limit per client address (2) is reached for 127.0.0.1 (server.amqp.maxConnectionsPerAddress)')
    expect((await limitHits(s.url, 'amqp.maxConnectionsPerAddress')) - before).toBe(1)
    const other = await connect(s.amqpUrl, { localAddress: '127.0.0.2' })
    const ch = await other.createChannel()
    expect(await ch.assertQueue('from-another-address')).toMatchObject({ queue: 'from-another-address' })
  })

  it('silent sockets count toward the cap, and one refused for being over it is closed within a second', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, maxConnectionsPerAddress: 3 }' })
    const held = await Promise.all([rawSocket(s.amqpPort), rawSocket(s.amqpPort), rawSocket(s.amqpPort)])
    const t0 = Date.now()
    const over = await rawSocket(s.amqpPort)
    const closedAt = await over.closed
    expect(closedAt - t0).toBeLessThan(3000)
    expect(held.every((x) => !x.socket.destroyed)).toBe(true)
    // Once the silent ones go, a real client gets in.
    for (const x of held) x.socket.destroy()
    await Promise.all(held.map((x) => x.closed))
    await until(async () => {
      try {
        await connect(s.amqpUrl)
        return true
      } catch {
        return false
      }
    }, 3000, 'a connection after the silent sockets closed')
  })
})

describe('AMQP queues per connection', () => {
  it('server.amqp.maxQueuesPerConnection bounds server-named and exclusive queues; 406 names the limit; closing frees them', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, maxQueuesPerConnection: 3 }' })
    const before = await limitHits(s.url, 'amqp.maxQueuesPerConnection')
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    const named: string[] = []
    named.push((await ch.assertQueue('', { exclusive: true })).queue)
    named.push((await ch.assertQueue('', { durable: true })).queue)
    named.push((await ch.assertQueue('mine', { exclusive: true })).queue)
    // A named, non-exclusive queue outlives its connection: it is not counted.
    await ch.assertQueue('shared-work', { durable: true })
    expect(await channelError(conn, (c) => c.assertQueue('', { exclusive: true }))).toMatchObject({
      code: 406,
      message: expect.stringContaining("PRECONDITION_FAILED - cannot declare a server-named queue in vhost '/': queue limit per connection (3) is reached (server.amqp.maxQueuesPerConnection)"),
    })
    expect(await channelError(conn, (c) => c.assertQueue('mine-too', { exclusive: true }))).toMatchObject({
      code: 406,
      message: expect.stringContaining("cannot declare exclusive queue 'mine-too' in vhost '/': queue limit per connection (3) is reached"),
    })
    expect((await limitHits(s.url, 'amqp.maxQueuesPerConnection')) - before).toBe(2)
    // Another connection has its own allowance.
    const other = await (await connect(s.amqpUrl)).createChannel()
    expect((await other.assertQueue('', { exclusive: true })).queue).toMatch(/^amq\.gen-/)
    // Deleting one frees its place on the connection.
    await ch.deleteQueue(named[0]!)
    expect((await ch.assertQueue('', { exclusive: true })).queue).toMatch(/^amq\.gen-/)
    // Closing the connection takes its three with it; the shared queue stays.
    await conn.close()
    await until(async () => {
      const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
      const names = streams.streams.map((x) => x.name)
      return !names.some((n) => named.includes(n)) && names.includes('shared-work')
    }, 5000, 'the connection-owned queues gone')
  })
})

describe('AMQP queue arguments and lifetimes', () => {
  it('refuses a negative or invalid x-expires, and a zero x-max-age, with 406 naming the argument', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    expect(await channelError(conn, (c) => c.assertQueue('exp-neg', { arguments: { 'x-expires': -1 } }))).toMatchObject({
      code: 406,
      message: expect.stringContaining("PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'exp-neg' in vhost '/': must be at least 1, got -1"),
    })
    expect(await channelError(conn, (c) => c.assertQueue('exp-zero', { arguments: { 'x-expires': 0 } }))).toMatchObject({ code: 406, message: expect.stringContaining("invalid arg 'x-expires'") })
    expect(await channelError(conn, (c) => c.assertQueue('exp-text', { arguments: { 'x-expires': 'soon' } }))).toMatchObject({ code: 406, message: expect.stringContaining("invalid arg 'x-expires'") })
    expect(await channelError(conn, (c) => c.assertQueue('exp-frac', { arguments: { 'x-expires': 1.5 } }))).toMatchObject({ code: 406, message: expect.stringContaining("invalid arg 'x-expires'") })
    expect(await channelError(conn, (c) => c.assertQueue('ttl-neg', { arguments: { 'x-message-ttl': -5 } }))).toMatchObject({ code: 406, message: expect.stringContaining("invalid arg 'x-message-ttl'") })
    expect(await channelError(conn, (c) => c.assertQueue('limit-neg', { arguments: { 'x-delivery-limit': -1 } }))).toMatchObject({ code: 406, message: expect.stringContaining("invalid arg 'x-delivery-limit'") })
    expect(await channelError(conn, (c) => c.assertQueue('age-zero', { arguments: { 'x-queue-type': 'stream', 'x-max-age': '0s' } }))).toMatchObject({
      code: 406,
      message: expect.stringContaining("invalid arg 'x-max-age' for queue 'age-zero' in vhost '/': must be more than 0"),
    })
    // None of them was created; a valid x-expires is accepted.
    const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
    expect(streams.streams.map((x) => x.name).filter((n) => /^(exp|ttl|limit|age)-/.test(n))).toEqual([])
    const ch = await conn.createChannel()
    expect(await ch.assertQueue('exp-ok', { arguments: { 'x-expires': 60_000 } })).toMatchObject({ queue: 'exp-ok' })
  })

  it('a durable server-named queue goes away with its connection', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    const { queue } = await ch.assertQueue('', { durable: true })
    expect(queue).toMatch(/^amq\.gen-/)
    ch.sendToQueue(queue, Buffer.from('x'))
    await ch.waitForConfirms()
    const watcher = await (await connect(s.amqpUrl)).createChannel()
    expect((await watcher.checkQueue(queue)).messageCount).toBe(1)
    await conn.close()
    await until(async () => {
      const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
      return !streams.streams.some((x) => x.name === queue)
    }, 5000, `${queue} deleted`)
    const gone = await channelError(await connect(s.amqpUrl), (c) => c.checkQueue(queue))
    expect(gone).toMatchObject({ code: 404 })
  })
})
