import { createSocket } from 'node:dgram'
import { connect as tcpConnect } from 'node:net'
import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { connect as amqpConnect, until } from '../helpers/amqp.js'
import { sleep } from '../helpers/consume.js'
import { tcpPort, udpPort } from '../helpers/syslog.js'
import { postNdjson, readStream, startTestServer, type TestServer } from '../helpers/server.js'

// One publish suite, run against every door. Every door publishes through the one path
// (BrokerPublisher), so its rules must hold on each: event size, confirms after durability, dedup
// by id, timestamps, and admission under a rate limit and under an alarm. Each door translates the
// path's decision its own way (HTTP status codes, a paused TCP socket, AMQP confirms and a held
// connection); what is stored must be the same.
const pipeline = `
exchanges:
  logs: { type: topic, dedup: id }
streams: { all: {} }
bindings:
  - { exchange: logs, stream: all, key: "#" }
`
const limits = '  limits: { maxEventSize: 2kb }'
const big = 'x'.repeat(4000)
/** The rate limit's events/s and burst: small, so 2N over the burst take about 2 s. */
const N = 5

type Door = 'http' | 'ndjson' | 'syslog-tcp' | 'syslog-udp' | 'amqp'
const doors: Door[] = ['http', 'ndjson', 'syslog-tcp', 'syslog-udp', 'amqp']
/** The name a door's publishes carry for `rateLimits[].match.listener`. */
const listenerOf: Record<Door, string> = { http: 'http', ndjson: 'ndjson', 'syslog-tcp': 'syslog', 'syslog-udp': 'syslog', amqp: 'amqp' }

/** One log record to send: `id` feeds the exchange's dedup, `ts` (ms) the event timestamp where the door carries one. */
interface Msg {
  readonly n: number
  readonly id?: string
  readonly pad?: string
  readonly ts?: number
}

/** A record as the stream holds it, whatever the door. */
interface Stored {
  readonly n: number
  readonly id: string | null
  readonly timestamp: string
}

interface Suite {
  readonly s: TestServer
  readonly amqpUrl: string
  /** A confirm channel on a connection of its own, opened on first use. */
  channel(): Promise<amqp.ConfirmChannel>
  /** The connection behind `channel()`. */
  connection(): Promise<amqp.ChannelModel>
}

async function start(opts: { rateLimitFor?: Door; dataDir?: string } = {}): Promise<Suite> {
  const rate = opts.rateLimitFor === undefined ? '' : `rateLimits:\n  - { match: { listener: ${listenerOf[opts.rateLimitFor]} }, events: ${N}/s, burst: ${N} }\n`
  const s = await startTestServer({
    pipeline: pipeline + rate,
    server: limits,
    ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
    ndjson: '{ port: 0, exchange: logs }',
    syslog: '{ port: 0, udp: true, exchange: logs, routingKey: "syslog.{severity}" }',
    amqp: '{ port: 0 }',
  })
  const amqpUrl = `amqp://guest:guest@127.0.0.1:${s.server.listeners.find((l) => l.options.name === 'amqp')!.port}`
  let conn: Promise<amqp.ChannelModel> | undefined
  let ch: Promise<amqp.ConfirmChannel> | undefined
  const connection = (): Promise<amqp.ChannelModel> => (conn ??= amqpConnect(amqpUrl))
  const channel = (): Promise<amqp.ConfirmChannel> =>
    (ch ??= connection().then(async (c) => {
      const x = await c.createConfirmChannel()
      // A server stopped under it closes the channel; that is expected in the restart tests.
      x.on('error', () => undefined)
      return x
    }))
  return { s, amqpUrl, channel, connection }
}

/**
 * The record's JSON. The id is a body field for the doors that dedup on one (the exchange's
 * `dedup: id`); AMQP carries it in message-id instead, so its body has none and the dedup can only
 * come from the property.
 */
const record = (door: Door, m: Msg): Record<string, unknown> => ({
  service: 'a',
  level: 'info',
  n: m.n,
  ...(m.id !== undefined && door !== 'amqp' ? { id: m.id } : {}),
  ...(m.pad !== undefined ? { pad: m.pad } : {}),
})

const syslogLine = (body: Record<string, unknown>): string => `<14>1 2026-12-02T10:00:00Z host app - - - ${JSON.stringify(body)}`

interface Sent {
  /** HTTP: the answer. */
  readonly res?: Response
  /** AMQP: each message's publisher confirm, in publish order. */
  readonly confirms?: Array<'ack' | 'nack'>
}

/**
 * Sends `msgs` through a door: one HTTP request (envelopes when a timestamp is given), one TCP
 * connection written at once and closed, one datagram each, or one burst of AMQP publishes whose
 * confirms are awaited (each also pushed to `confirmsSoFar` as it comes). The stream doors have
 * no answer: the caller waits on the stream.
 */
async function send(x: Suite, door: Door, msgs: readonly Msg[], confirmsSoFar: Array<'ack' | 'nack'> = []): Promise<Sent> {
  const bodies = msgs.map((m) => record(door, m))
  switch (door) {
    case 'http': {
      if (msgs.every((m) => m.ts === undefined)) return { res: await postNdjson(x.s.url, 'logs', bodies) }
      const lines = msgs.map((m, i) => JSON.stringify({ body: bodies[i], ...(m.ts !== undefined ? { timestamp: new Date(m.ts).toISOString() } : {}) }))
      return { res: await fetch(`${x.s.url}/v1/exchanges/logs/publish?envelope=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') }) }
    }
    case 'ndjson':
    case 'syslog-tcp': {
      const port = door === 'ndjson' ? x.s.server.listeners.find((l) => l.options.name === 'ndjson')!.port : tcpPort(x.s)
      const text = bodies.map((b) => (door === 'ndjson' ? JSON.stringify(b) : syslogLine(b))).join('\n') + '\n'
      const socket = tcpConnect({ host: '127.0.0.1', port })
      await new Promise<void>((resolve) => socket.end(text, () => resolve()))
      return {}
    }
    case 'syslog-udp': {
      const udp = createSocket('udp4')
      for (const b of bodies) await new Promise<void>((resolve, reject) => udp.send(syslogLine(b), udpPort(x.s), '127.0.0.1', (err) => (err ? reject(err) : resolve())))
      udp.close()
      return {}
    }
    case 'amqp': {
      const ch = await x.channel()
      const confirms = msgs.map(
        (m, i) =>
          new Promise<'ack' | 'nack'>((resolve) => {
            const props = {
              contentType: 'application/json',
              ...(m.id !== undefined ? { messageId: m.id } : {}),
              // AMQP timestamps are whole seconds.
              ...(m.ts !== undefined ? { timestamp: m.ts / 1000 } : {}),
            }
            ch.publish('logs', 'a.info', Buffer.from(JSON.stringify(bodies[i])), props, (err: unknown) => {
              const outcome = err === null || err === undefined ? 'ack' : 'nack'
              confirmsSoFar.push(outcome)
              resolve(outcome)
            })
          }),
      )
      return { confirms: await Promise.all(confirms) }
    }
  }
}

/** What the stream `all` holds, in offset order, as the records that were sent. */
async function stored(x: Suite, door: Door): Promise<Stored[]> {
  const { events } = await readStream(x.s.url, 'all')
  return events.map((e) => {
    // Syslog keeps the sent text as the message of its own JSON event.
    const body = (door.startsWith('syslog') ? JSON.parse(String((e.body as { message: string }).message)) : e.body) as { n: number }
    return { n: body.n, id: e.id, timestamp: (e as unknown as { timestamp: string }).timestamp }
  })
}

const ns = async (x: Suite, door: Door): Promise<number[]> => (await stored(x, door)).map((r) => r.n)

/** Waits until the stream holds at least `count` events; then returns all of their numbers. */
async function waitStored(x: Suite, door: Door, count: number, ms = 5000): Promise<number[]> {
  await until(async () => (await readStream(x.s.url, 'all')).events.length >= count, ms, `${count} events stored`)
  return ns(x, door)
}

async function ingestErrors(x: Suite): Promise<string[]> {
  return (await readStream(x.s.url, 'ingest-errors')).events.map((e) => String((e.body as { reason: string }).reason).split(':')[0]!)
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const msgs = (from: number, to: number): Msg[] => range(from, to).map((n) => ({ n }))

/** maxEventSize: the big event is refused the door's way, the small ones around it are stored. */
async function oversized(door: Door): Promise<void> {
  const x = await start()
  const sent = await send(x, door, [{ n: 1 }, { n: 2, pad: big }, { n: 3 }])
  if (door === 'http') {
    // HTTP requests are all-or-nothing: the whole request is refused, nothing is stored.
    expect(sent.res!.status).toBe(413)
    expect(((await sent.res!.json()) as { error: { code: string } }).error.code).toBe('event_too_large')
    await sleep(100)
    expect(await ns(x, door)).toEqual([])
    return
  }
  if (door === 'amqp') {
    // Each message is confirmed on its own: the big one is nacked by the publish path (it is
    // well under the frame limits), its neighbours are acked and stored.
    expect(sent.confirms).toEqual(['ack', 'nack', 'ack'])
    expect(await ns(x, door)).toEqual([1, 3])
    expect(await ingestErrors(x)).toEqual([])
    return
  }
  expect(await waitStored(x, door, 2)).toEqual([1, 3])
  await until(async () => (await ingestErrors(x)).length >= 1, 5000, 'the refusal in ingest-errors')
  expect(await ingestErrors(x)).toEqual(['event_too_large'])
}

/** A rate limit of N/s, burst N, on the door, and 3N events: all stored once, in order, after at least the refill time. */
async function rateLimited(door: Door): Promise<void> {
  const x = await start({ rateLimitFor: door })
  if (door === 'amqp') await x.channel()
  const t0 = Date.now()
  if (door === 'http') {
    // One event a request, each sent again after its Retry-After until it is taken.
    let refusals = 0
    for (const m of msgs(1, 3 * N)) {
      for (;;) {
        const res = (await send(x, door, [m])).res!
        if (res.status === 200) break
        expect(res.status).toBe(429)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limited')
        const retryAfter = Number(res.headers.get('retry-after'))
        expect(retryAfter).toBeGreaterThanOrEqual(1)
        refusals++
        await sleep(retryAfter * 1000)
      }
    }
    expect(refusals).toBeGreaterThanOrEqual(1)
  } else if (door === 'amqp') {
    // Held, not refused: every message is acked, after the wait.
    expect((await send(x, door, msgs(1, 3 * N))).confirms).toEqual(Array(3 * N).fill('ack'))
  } else {
    // TCP doors stop reading until the buckets refill; UDP, with no way to slow the sender,
    // queues the datagrams (up to udpQueueSize) and publishes them as the buckets allow.
    await send(x, door, msgs(1, 3 * N))
    await waitStored(x, door, 3 * N, 10_000)
  }
  const elapsed = Date.now() - t0
  // 2N over a burst of N at N/s take 2 s; loosely at least one.
  expect(elapsed).toBeGreaterThanOrEqual(1000)
  expect(await ns(x, door)).toEqual(range(1, 3 * N))
  expect(await ingestErrors(x)).toEqual([])
}

describe('one publish suite, every door', () => {
  it.each<Door>(doors)('%s: an event over maxEventSize is refused, its neighbours are not', oversized)

  // Only HTTP (200) and AMQP (confirm mode) confirm anything; the stream doors have no answer.
  it.each<Door>(['http', 'amqp'])('%s: a confirmed event is readable when its confirm arrives, and after a restart', async (door) => {
    const x = await start()
    const total = 20
    if (door === 'http') {
      for (let k = 0; k < total / 4; k++) {
        const res = (await send(x, door, msgs(4 * k + 1, 4 * k + 4))).res!
        expect(res.status).toBe(200)
        expect(await res.json()).toEqual({ accepted: 4, duplicates: 0, unroutable: 0 })
        expect(await ns(x, door)).toEqual(range(1, 4 * k + 4))
      }
    } else {
      const ch = await x.channel()
      const confirmed: number[] = []
      const checks: Array<Promise<{ n: number; present: boolean }>> = []
      for (const n of range(1, total)) {
        ch.publish('logs', 'a.info', Buffer.from(JSON.stringify(record(door, { n }))), { contentType: 'application/json' }, (err: unknown) => {
          if (err !== null && err !== undefined) return
          confirmed.push(n)
          // Read from the moment the ack is handled: the event must already be there.
          checks.push(ns(x, door).then((have) => ({ n, present: have.includes(n) })))
        })
      }
      await ch.waitForConfirms()
      expect(confirmed).toEqual(range(1, total))
      const seen = await Promise.all(checks)
      expect(seen.filter((c) => !c.present)).toEqual([])
    }
    await x.s.stop()
    const again = await start({ dataDir: x.s.dataDir })
    expect(await ns(again, door)).toEqual(range(1, total))
  })

  // Syslog events carry no id: the door builds the event from the syslog header and message, and
  // no field of it names one, so there is nothing to dedup on.
  it.each<Door>(['http', 'ndjson', 'amqp'])('%s: the same ids sent twice are stored once, in first-seen order', async (door) => {
    const x = await start()
    const first: Msg[] = [
      { n: 1, id: 'a' },
      { n: 2, id: 'b' },
      { n: 3, id: 'c' },
    ]
    // Repeats, a new id, repeats again, and a last new one that marks the end of the connection.
    const second: Msg[] = [
      { n: 4, id: 'b' },
      { n: 5, id: 'd' },
      { n: 6, id: 'a' },
      { n: 7, id: 'c' },
      { n: 8, id: 'e' },
    ]
    const one = await send(x, door, first)
    if (door === 'ndjson') await waitStored(x, door, 3)
    const two = await send(x, door, second)
    if (door === 'http') {
      expect(await one.res!.json()).toEqual({ accepted: 3, duplicates: 0, unroutable: 0 })
      expect(await two.res!.json()).toEqual({ accepted: 2, duplicates: 3, unroutable: 0 })
    }
    // A duplicate is confirmed like any stored event: the publisher has nothing to resend.
    if (door === 'amqp') expect([...one.confirms!, ...two.confirms!]).toEqual(Array(8).fill('ack'))
    if (door === 'ndjson') {
      // One connection is stored in order: once its last line is in, every line before it was handled.
      await until(async () => (await ns(x, door)).includes(8), 5000, 'the last line stored')
    }
    const got = await stored(x, door)
    expect(got.map((r) => r.n)).toEqual([1, 2, 3, 5, 8])
    expect(got.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  // Only HTTP (an envelope's `timestamp`) and AMQP (the `timestamp` property) let a publisher set
  // the event's timestamp. NDJSON stores the line as the body with no envelope, and syslog keeps its
  // header time as a field of the body: both events are stamped when they arrive.
  it.each<Door>(['http', 'amqp'])('%s: a timestamp past what the log holds is refused; one in range is kept as given', async (door) => {
    const x = await start()
    const far = Date.UTC(7000, 0, 1)
    const kept = Date.UTC(2020, 4, 6, 7, 8, 9)
    if (door === 'http') {
      const res = (await send(x, door, [{ n: 1, ts: far }])).res!
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_event')
      const ok = (await send(x, door, [{ n: 2, ts: kept }])).res!
      expect(ok.status).toBe(200)
    } else {
      const { confirms } = await send(x, door, [
        { n: 1, ts: far },
        { n: 2, ts: kept },
      ])
      expect(confirms).toEqual(['nack', 'ack'])
    }
    expect(await stored(x, door)).toEqual([{ n: 2, id: null, timestamp: new Date(kept).toISOString() }])
  })

  it.each<Door>(doors)(`%s: ${3 * N} events at ${N}/s: all stored once, in order, slowed down to the rate`, rateLimited)

  it.each<Door>(doors)('%s: under a disk alarm nothing is stored or lost; once it clears, everything is stored once, in order', async (door) => {
    const x = await start()
    const blocked: string[] = []
    if (door === 'amqp') {
      const conn = await x.connection()
      conn.on('blocked', () => blocked.push('blocked'))
      conn.on('unblocked', () => blocked.push('unblocked'))
      await x.channel()
    }
    const refusedBefore = x.s.server.publisher.counters.rejected
    await x.s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 }) // 4 PiB: more than any disk here
    const batch = msgs(1, 3)
    if (door === 'http') {
      // HTTP refuses each request at once, with the time to wait; nothing of it is stored.
      for (const m of batch) {
        const res = (await send(x, door, [m])).res!
        expect(res.status).toBe(503)
        expect(res.headers.get('retry-after')).toBe('5')
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('alarm')
      }
      expect(await ns(x, door)).toEqual([])
      await x.s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
      for (const m of batch) expect((await send(x, door, [m])).res!.status).toBe(200)
      expect(await ns(x, door)).toEqual([1, 2, 3])
      return
    }
    // The other doors hold what they read: a paused socket, a queue, a held AMQP connection.
    const confirmsSoFar: Array<'ack' | 'nack'> = []
    const sending = send(x, door, batch, confirmsSoFar)
    await until(() => x.s.server.publisher.counters.rejected > refusedBefore, 5000, 'the door to meet the alarm')
    if (door === 'amqp') {
      await until(() => blocked.length > 0, 5000, 'connection.blocked')
      // Held: neither acked nor nacked while the alarm lasts.
      expect(confirmsSoFar).toEqual([])
    }
    expect(await ns(x, door)).toEqual([])
    await x.s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    const sent = await sending
    if (door === 'amqp') {
      expect(sent.confirms).toEqual(['ack', 'ack', 'ack'])
      expect(blocked).toEqual(['blocked', 'unblocked'])
      expect(await ns(x, door)).toEqual([1, 2, 3])
    } else {
      expect(await waitStored(x, door, 3)).toEqual([1, 2, 3])
    }
    expect(await ingestErrors(x)).toEqual([])
  })
})
