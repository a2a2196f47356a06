import { describe, expect, it } from 'vitest'
import type amqp from 'amqplib'
import { call } from '../helpers/consume.js'
import { connect, startAmqpServer } from '../helpers/amqp.js'
import { testPipeline } from '../helpers/server.js'

// basic.ack with multiple settles, for each member, the run of what it was delivered, in one
// step. A run whose end went stale (redelivered after its ack timeout) falls back to settling tag
// by tag, so exactly the live deliveries are settled, never one more or one less.

const pipeline = `${testPipeline}
groups:
  work: { stream: app-logs, ackTimeout: 1s, retryBackoff: { initial: 10ms, max: 10ms } }
`

const stats = async (url: string): Promise<{ cursor: number; inFlight: number; acked: number }> => (await call<{ cursor: number; inFlight: number; acked: number }>(url, 'GET', '/v1/groups/work')).body

function consumeInto(ch: amqp.Channel, got: amqp.ConsumeMessage[]): Promise<string> {
  return ch.consume('work', (m) => {
    if (m !== null) got.push(m)
  }).then((ok) => ok.consumerTag)
}

async function until(what: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function publish(url: string, n: number): Promise<void> {
  const r = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: Array.from({ length: n }, (_, i) => JSON.stringify({ service: 'web', level: 'info', n: i })).join('\n') })
  expect(r.status).toBe(200)
}

describe('AMQP basic.ack multiple', () => {
  it('settles the runs of two consumers on one channel, and nothing past the tag', async () => {
    const s = await startAmqpServer({ pipeline })
    await publish(s.url, 40)
    const ch = await (await connect(s.amqpUrl)).createChannel()
    await ch.prefetch(10)
    const a: amqp.ConsumeMessage[] = []
    const b: amqp.ConsumeMessage[] = []
    await consumeInto(ch, a)
    await consumeInto(ch, b)
    await until(() => a.length === 10 && b.length === 10)
    // The channel's tags interleave the two consumers; ack up to the 15th delivery on the channel.
    const all = [...a, ...b].sort((x, y) => x.fields.deliveryTag - y.fields.deliveryTag)
    const upTo = all[14]!
    ch.ack(upTo, true)
    await until(async () => (await stats(s.url)).acked === 15)
    const st = await stats(s.url)
    // 15 settled; the 5 past the tag are still in flight, and 10 new ones came with the credit.
    expect(st.acked).toBe(15)
    await until(() => a.length + b.length === 35)
    expect((await stats(s.url)).inFlight).toBe(20)
    ch.ack(all[19]!, true)
    await until(async () => (await stats(s.url)).acked === 20)
  })

  it('a run whose first delivery went stale settles exactly the live ones', async () => {
    const s = await startAmqpServer({ pipeline })
    await publish(s.url, 3)
    const ch = await (await connect(s.amqpUrl)).createChannel()
    await ch.prefetch(3)
    const got: amqp.ConsumeMessage[] = []
    await consumeInto(ch, got)
    await until(() => got.length === 3)
    // No ack within 1 s: the three come back, redelivered, with new delivery tags 4..6.
    await until(() => got.length === 6, 15_000)
    expect(got.slice(3).every((m) => m.fields.redelivered)).toBe(true)
    // Tags 1..3 are stale; the multiple ack up to 6 settles the three live deliveries only.
    ch.ack(got[5]!, true)
    await until(async () => (await stats(s.url)).acked === 3)
    await new Promise((r) => setTimeout(r, 300))
    const st = await stats(s.url)
    expect(st).toMatchObject({ cursor: 3, inFlight: 0, acked: 3 })
    expect(got).toHaveLength(6)
  })
})
