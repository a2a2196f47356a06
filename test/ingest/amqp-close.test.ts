import { spawn } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { encodeContent } from '../../src/ingest/amqp/content.js'
import { PROTOCOL_HEADER } from '../../src/ingest/amqp/constants.js'
import { encodeMethodFrame } from '../../src/ingest/amqp/methods.js'
import { connect, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'
import { requireProgram } from '../helpers/programs.js'

// What a client sent before it closed is handled in order before the close is answered, as in
// RabbitMQ: every whole publish read before channel.close, connection.close or the end of the
// socket is stored, whether or not anyone waits for it.

const n = 1000
const bodies = (count: number): string[] => Array.from({ length: count }, (_, i) => `m-${i}`)

/** The bodies stored in `stream`, as text (raw bodies come back base64 over HTTP). */
async function storedText(url: string, stream: string): Promise<string[]> {
  const out: string[] = []
  for (let from = 0; ; ) {
    const res = await fetch(`${url}/v1/streams/${stream}/events?from=${from}&limit=10000`)
    if (res.status !== 200) throw new Error(`read ${stream}: ${res.status} ${await res.text()}`)
    const page = (await res.json()) as { events: Array<{ body: unknown; bodyEncoding?: string }>; nextOffset: number }
    if (page.events.length === 0) return out
    for (const e of page.events) out.push(typeof e.body === 'string' && e.bodyEncoding === 'base64' ? Buffer.from(e.body, 'base64').toString() : String(e.body))
    from = page.nextOffset
  }
}

describe('AMQP: publishes read before a close are stored', () => {
  it('amqplib: 1,000 publishes without confirms, then channel.close at once: all 1,000 stored, in order', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const setup = await conn.createChannel()
    await setup.assertQueue('after-channel-close')
    const ch = await conn.createChannel()
    for (const b of bodies(n)) ch.sendToQueue('after-channel-close', Buffer.from(b))
    await ch.close()
    // close-ok came back: everything before it is already stored.
    expect(await storedText(s.url, 'after-channel-close')).toEqual(bodies(n))
  })

  it('amqplib: 1,000 publishes without confirms, then connection.close at once: all 1,000 stored, in order', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const setup = await connect(s.amqpUrl)
    await (await setup.createChannel()).assertQueue('after-connection-close')
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    for (const b of bodies(n)) ch.sendToQueue('after-connection-close', Buffer.from(b))
    await conn.close()
    expect(await storedText(s.url, 'after-connection-close')).toEqual(bodies(n))
  })

  it('a raw socket that sends whole publishes and then FIN: all stored, in order', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    // The whole conversation in one write, never reading a reply: handshake, channel, a queue
    // declare (the publishes wait behind it), publishes, FIN.
    const frames: Buffer[] = [
      PROTOCOL_HEADER,
      encodeMethodFrame(0, { name: 'connection.start-ok', clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' }),
      encodeMethodFrame(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: 131072, heartbeat: 0 }),
      encodeMethodFrame(0, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false }),
      encodeMethodFrame(1, { name: 'channel.open', outOfBand: '' }),
      encodeMethodFrame(1, { name: 'queue.declare', ticket: 0, queue: 'after-fin', passive: false, durable: true, exclusive: false, autoDelete: false, nowait: false, arguments: {} }),
    ]
    for (const b of bodies(n)) frames.push(encodeContent(1, { name: 'basic.publish', ticket: 0, exchange: '', routingKey: 'after-fin', mandatory: false, immediate: false }, {}, Buffer.from(b), 131072))
    // A publish cut in the middle is not a whole publish: it is not stored.
    const cut = encodeContent(1, { name: 'basic.publish', ticket: 0, exchange: '', routingKey: 'after-fin', mandatory: false, immediate: false }, {}, Buffer.from('cut'), 131072)
    frames.push(cut.subarray(0, cut.length - 3))
    await new Promise<void>((resolve, reject) => {
      const sock = netConnect(s.amqpPort, '127.0.0.1', () => sock.end(Buffer.concat(frames)))
      sock.on('error', reject)
      sock.on('close', () => resolve())
      sock.resume()
    })
    // Nobody is left to be told, so nothing says when: wait for the count.
    const count = (): Promise<number> => storedText(s.url, 'after-fin').then((b) => b.length, () => 0)
    await until(async () => (await count()) >= n, 10_000, `${n} events in after-fin`)
    expect(await storedText(s.url, 'after-fin')).toEqual(bodies(n))
  })

  it("Debian's amqp-publish: 1,000 lines on one connection, all 1,000 stored, in order", async () => {
    const bin = requireProgram('amqp-publish', 'amqp-tools')
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    await (await (await connect(s.amqpUrl)).createChannel()).assertQueue('from-amqp-publish')
    const code = await new Promise<number | null>((resolve, reject) => {
      const p = spawn(bin, ['--url', s.amqpUrl, '-r', 'from-amqp-publish', '-l'], { stdio: ['pipe', 'ignore', 'inherit'] })
      p.on('error', reject)
      p.on('exit', resolve)
      p.stdin.end(bodies(n).join('\n') + '\n')
    })
    expect(code).toBe(0)
    // -l keeps each line's newline in its body.
    expect(await storedText(s.url, 'from-amqp-publish')).toEqual(bodies(n).map((b) => `${b}\n`))
  })

  it("Debian's amqp-publish: one call per message, 200 calls, all 200 stored, in order", async () => {
    const bin = requireProgram('amqp-publish', 'amqp-tools')
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    await (await (await connect(s.amqpUrl)).createChannel()).assertQueue('one-per-call')
    for (const b of bodies(200)) {
      const code = await new Promise<number | null>((resolve, reject) => {
        const p = spawn(bin, ['--url', s.amqpUrl, '-r', 'one-per-call', '-b', b], { stdio: ['ignore', 'ignore', 'inherit'] })
        p.on('error', reject)
        p.on('exit', resolve)
      })
      expect(code).toBe(0)
    }
    expect(await storedText(s.url, 'one-per-call')).toEqual(bodies(200))
  })
})
