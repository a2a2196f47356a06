import { connect as netConnect } from 'node:net'
import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { channelError, collect, connect, startAmqpServer, type AmqpTestServer } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'
import { startTestServer } from '../helpers/server.js'

// amqplib's own broker tests are not in its npm package, so the cases it failed against Sluice
// (and that RabbitMQ passes) are reproduced here, each as amqplib's suite exercises it: basic.get
// and basic.consume on '' with no queue declared on the channel (404, not 406), '' as the queue
// last declared, a connection to amqp://[::1], a consumer cancelled by deleting its queue on its
// own channel ("cancelled consumer"), and a publish seen by the get, purge and count that follow
// it on the channel ("unbind queue", "purge queue"). How to run the whole suite: docs/amqp.md.

interface Case {
  readonly name: string
  readonly run: (s: AmqpTestServer) => Promise<void>
}

const noPreviousQueue = { code: 404, message: expect.stringContaining('NOT_FOUND - no previously declared queue') }

const cases: readonly Case[] = [
  {
    name: "basic.get on '' with no queue declared on the channel",
    run: async (s) => {
      const conn = await connect(s.amqpUrl)
      expect(await channelError(conn, (ch) => ch.get(''))).toMatchObject(noPreviousQueue)
    },
  },
  {
    name: "basic.consume on '' with no queue declared on the channel",
    run: async (s) => {
      const conn = await connect(s.amqpUrl)
      expect(await channelError(conn, (ch) => ch.consume('', () => undefined))).toMatchObject(noPreviousQueue)
    },
  },
  {
    name: "'' is the queue last declared on the channel (get, consume, bind, purge)",
    run: async (s) => {
      const conn = await connect(s.amqpUrl)
      const ch = await conn.createChannel()
      const { queue } = await ch.assertQueue('', { exclusive: true })
      // queue.bind with both the queue and the key empty binds by the queue's name.
      await ch.bindQueue('', 'amq.direct', '')
      ch.publish('amq.direct', queue, Buffer.from('one'))
      await ch.checkQueue(queue)
      const got = await ch.get('', { noAck: true })
      expect(got !== false && got.content.toString()).toBe('one')
      ch.sendToQueue(queue, Buffer.from('two'))
      const [second] = await collect(ch, '', 1)
      expect(second?.content.toString()).toBe('two')
      ch.sendToQueue(queue, Buffer.from('three'))
      await ch.checkQueue(queue)
      expect(await ch.purgeQueue('')).toEqual({ messageCount: 1 })
    },
  },
  {
    // amqplib closes the channel on the server's basic.cancel and drops any reply after its
    // close: delete-ok must come first, as RabbitMQ sends it.
    name: 'queue.delete on the channel of its consumer: delete-ok before the basic.cancel',
    run: async (s) => {
      const conn = await connect(s.amqpUrl)
      const ch = await conn.createChannel()
      await ch.assertQueue('cancelled-consumer')
      const seen: string[] = []
      let deleted: Promise<unknown> | undefined
      await new Promise<void>((resolve, reject) => {
        void ch
          .consume('cancelled-consumer', (m) => {
            seen.push(m === null ? 'cancel' : `message ${m.content.toString()}`)
            if (m === null) resolve()
            else reject(new Error('no message expected'))
          })
          .then(() => {
            deleted = ch.deleteQueue('cancelled-consumer').then((ok) => (seen.push('delete-ok'), ok))
          })
      })
      await ch.close()
      expect(await deleted).toEqual({ messageCount: 0 })
      // amqplib runs the consumer's callback as it reads the frame, the deleteQueue promise a tick later.
      expect(seen).toEqual(['cancel', 'delete-ok'])
    },
  },
  {
    // Publishes wait for admission only; the commands after them on the channel must still see them.
    name: 'a publish is seen by the basic.get, queue.declare and queue.purge after it on the channel',
    run: async (s) => {
      const conn = await connect(s.amqpUrl)
      const ch = await conn.createChannel()
      await ch.assertQueue('own-writes')
      for (let i = 0; i < 20; i++) {
        ch.sendToQueue('own-writes', Buffer.from(`get ${i}`))
        const got = await ch.get('own-writes', { noAck: true })
        expect(got !== false && got.content.toString()).toBe(`get ${i}`)
      }
      for (let i = 0; i < 20; i++) {
        ch.sendToQueue('own-writes', Buffer.from(`count ${i}`))
        expect(await ch.checkQueue('own-writes')).toMatchObject({ messageCount: i + 1 })
      }
      ch.sendToQueue('own-writes', Buffer.from('purged'))
      expect(await ch.purgeQueue('own-writes')).toEqual({ messageCount: 21 })
      expect(await ch.get('own-writes', { noAck: true })).toBe(false)
    },
  },
  {
    name: 'amqp://[::1] reaches a loopback listener',
    run: async (s) => {
      const conn = await connect(`amqp://guest:guest@[::1]:${s.amqpPort}`)
      const ch = await conn.createChannel()
      await ch.assertQueue('over-ipv6')
      ch.sendToQueue('over-ipv6', Buffer.from('v6'))
      const [m] = await collect(ch, 'over-ipv6', 1)
      expect(m?.content.toString()).toBe('v6')
    },
  },
]

describe("amqplib's suite: the cases Sluice failed", () => {
  it(`passes all ${cases.length}`, async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const failed: string[] = []
    for (const c of cases) {
      await c.run(s).catch((err: unknown) => failed.push(`${c.name}: ${(err as Error).message}`))
    }
    expect(failed).toEqual([])
    expect(cases.length - failed.length).toBe(6)
  })

  it('every loopback TCP door and HTTP answer on ::1 too, on the same port', async () => {
    const s = await startTestServer({ amqp: '{ port: 0 }', ndjson: '{ port: 0, exchange: logs }' })
    const port = (name: string): number => s.server.listeners.find((l) => l.options.name === name)!.port
    const httpPort = Number(new URL(s.url).port)
    expect((await fetch(`http://[::1]:${httpPort}/healthz`)).status).toBe(200)
    for (const name of ['amqp', 'ndjson']) {
      await new Promise<void>((resolve, reject) => {
        const sock = netConnect({ host: '::1', port: port(name) }, () => {
          sock.destroy()
          resolve()
        })
        sock.on('error', reject)
      })
    }
  })

  it('a door bound to another address does not add ::1', async () => {
    const s = await startTestServer({ amqp: '{ host: "::1", port: 0 }' })
    const port = s.server.listeners.find((l) => l.options.name === 'amqp')!.port
    const refused = await new Promise<string>((resolve) => {
      const sock = netConnect({ host: '127.0.0.1', port }, () => {
        sock.destroy()
        resolve('connected')
      })
      sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    })
    expect(refused).toBe('ECONNREFUSED')
    const conn: amqp.ChannelModel = await connect(`amqp://guest:guest@[::1]:${port}`)
    expect(await (await conn.createChannel()).assertQueue('only-v6')).toMatchObject({ queue: 'only-v6' })
  })
})
