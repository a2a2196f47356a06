import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { collect, connect, sleep, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'
import { readStream } from '../helpers/server.js'

// amqplib has no tx API; its channel's rpc sends any method (ids: class << 16 | method).
const TX = { select: 5898250, selectOk: 5898251, commit: 5898260, commitOk: 5898261, rollback: 5898270, rollbackOk: 5898271 }
const rpc = (ch: amqp.Channel, method: number, ok: number): Promise<unknown> => (ch as unknown as { rpc(m: number, f: object, e: number): Promise<unknown> }).rpc(method, {}, ok)

describe('AMQP publishing', () => {
  it('publisher confirms: waitForConfirms resolves once every message is stored, in order', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    await ch.assertQueue('confirmed')
    const acked: number[] = []
    for (let i = 0; i < 500; i++) {
      ch.sendToQueue('confirmed', Buffer.from(JSON.stringify({ n: i })), { contentType: 'application/json' }, (err) => {
        if (err === null || err === undefined) acked.push(i)
      })
    }
    await ch.waitForConfirms()
    expect(acked).toEqual(Array.from({ length: 500 }, (_, i) => i))
    // Confirmed means stored: the stream holds all 500, in publish order, as JSON.
    const { events } = await readStream(s.url, 'confirmed')
    expect(events.map((e) => e.body)).toEqual(Array.from({ length: 500 }, (_, i) => ({ n: i })))
    expect(events[0]!.routingKey).toBe('confirmed')
  })

  it('keeps properties and headers: message-id is the event id, the rest comes back on delivery', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('props')
    const ts = Math.floor(Date.now() / 1000) - 60
    ch.sendToQueue('props', Buffer.from([0, 1, 2, 255]), {
      messageId: 'm-1',
      correlationId: 'c-1',
      replyTo: 'replies',
      contentType: 'application/octet-stream',
      type: 'blob',
      appId: 'tests',
      timestamp: ts,
      persistent: true,
      headers: { tenant: 'acme', attempt: 3, nested: { ok: true } },
    })
    // The same message-id again within the dedup window is confirmed and not stored twice.
    ch.sendToQueue('props', Buffer.from([9]), { messageId: 'm-1' })
    await ch.waitForConfirms()
    const { events } = await readStream(s.url, 'props')
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ id: 'm-1', headers: { tenant: 'acme', attempt: 3, nested: { ok: true } } })
    const [msg] = await collect(ch, 'props', 1)
    expect([...msg!.content]).toEqual([0, 1, 2, 255])
    expect(msg!.properties).toMatchObject({
      messageId: 'm-1',
      correlationId: 'c-1',
      replyTo: 'replies',
      contentType: 'application/octet-stream',
      type: 'blob',
      appId: 'tests',
      timestamp: ts,
      deliveryMode: 2,
    })
    expect(msg!.properties.headers).toMatchObject({ tenant: 'acme', attempt: 3, nested: { ok: true }, 'x-delivery-count': 0 })
  })

  it('a body that is not JSON reads back as text when it is UTF-8 and as base64 when it is bytes, over the read API and fetch', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('mixed')
    ch.sendToQueue('mixed', Buffer.from('plain text, wörld ✓\nsecond line'), { contentType: 'text/plain' })
    ch.sendToQueue('mixed', Buffer.from([0xff, 0xfe, 0x00, 0x41]))
    ch.sendToQueue('mixed', Buffer.from('{"json":true}'), { contentType: 'application/json' })
    await ch.waitForConfirms()
    const read = (await (await fetch(`${s.url}/v1/streams/mixed/events?from=0`)).json()) as { events: Array<{ body: unknown; bodyEncoding?: string }> }
    const expected = [
      { body: 'plain text, wörld ✓\nsecond line', bodyEncoding: 'text' },
      { body: Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('base64'), bodyEncoding: 'base64' },
      { body: { json: true } },
    ]
    expect(read.events.map((e) => ({ body: e.body, ...(e.bodyEncoding === undefined ? {} : { bodyEncoding: e.bodyEncoding }) }))).toEqual(expected)
    const fetched = await fetch(`${s.url}/v1/groups/mixed/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ consumer: 'c', max: 3 }) })
    const { events } = (await fetched.json()) as { events: Array<{ body: unknown; bodyEncoding?: string }> }
    expect(events.map((e) => ({ body: e.body, ...(e.bodyEncoding === undefined ? {} : { bodyEncoding: e.bodyEncoding }) }))).toEqual(expected)
  })

  it('mandatory: an unroutable message comes back with basic.return 312 NO_ROUTE, then its confirm', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertExchange('orders', 'direct')
    await ch.assertQueue('eu-orders')
    await ch.bindQueue('eu-orders', 'orders', 'eu')
    const returned: amqp.Message[] = []
    ch.on('return', (m: amqp.Message) => returned.push(m))
    ch.publish('orders', 'eu', Buffer.from('routed'), { mandatory: true })
    ch.publish('orders', 'us', Buffer.from('lost'), { mandatory: true, messageId: 'r1' })
    ch.publish('orders', 'us', Buffer.from('dropped quietly'))
    await ch.waitForConfirms()
    expect(returned).toHaveLength(1)
    expect(returned[0]!.content.toString()).toBe('lost')
    expect(returned[0]!.fields).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', exchange: 'orders', routingKey: 'us' })
    expect(returned[0]!.properties.messageId).toBe('r1')
    expect((await readStream(s.url, 'eu-orders')).events.map((e) => e.body)).toEqual(['routed'])
  })

  it('each message is confirmed on its own: a bad one in a burst is nacked, the others stored in order', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('q')
    const outcomes: Array<string> = []
    const send = (body: string, expiration?: string): void =>
      void ch.sendToQueue('q', Buffer.from(body), expiration === undefined ? {} : { expiration }, (err: unknown) => outcomes.push(`${body}:${err === null ? 'ack' : 'nack'}`))
    // One burst: the frames arrive together and go to the publish path as one run.
    send('a')
    send('b', 'soon')
    send('c')
    send('d', '2.5')
    send('e')
    await ch.waitForConfirms().catch(() => undefined)
    await until(() => outcomes.length === 5)
    expect(outcomes).toEqual(['a:ack', 'b:nack', 'c:ack', 'd:nack', 'e:ack'])
    expect((await readStream(s.url, 'q')).events.map((e) => String(e.body))).toEqual(['a', 'c', 'e'])
  })

  it('an exchange with unroutable: reject nacks what matches nothing; mandatory returns it and acks it', async () => {
    const s = await startAmqpServer({
      pipeline: `
exchanges:
  strict: { type: direct, unroutable: reject }
streams: { kept: {} }
bindings:
  - { exchange: strict, stream: kept, key: ok }
`,
    })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    const returned: string[] = []
    ch.on('return', (m: amqp.Message) => returned.push(m.content.toString()))
    const outcomes: string[] = []
    const pub = (key: string, body: string, mandatory: boolean): void =>
      void ch.publish('strict', key, Buffer.from(body), { mandatory }, (err: unknown) => outcomes.push(`${body}:${err === null ? 'ack' : 'nack'}`))
    pub('ok', 'one', false)
    pub('nope', 'two', false)
    pub('nope', 'three', true)
    pub('ok', 'four', true)
    await ch.waitForConfirms().catch(() => undefined)
    await until(() => outcomes.length === 4)
    expect(outcomes).toEqual(['one:ack', 'two:nack', 'three:ack', 'four:ack'])
    expect(returned).toEqual(['three'])
    expect((await readStream(s.url, 'kept')).events.map((e) => String(e.body))).toEqual(['one', 'four'])
  })

  it('transactions: nothing is stored before commit, rollback stores nothing, commit stores all', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createChannel()
    await ch.assertQueue('tx-a')
    await ch.assertQueue('tx-b')
    await rpc(ch, TX.select, TX.selectOk)
    ch.sendToQueue('tx-a', Buffer.from('a1'))
    ch.sendToQueue('tx-b', Buffer.from('b1'))
    await sleep(100)
    expect((await readStream(s.url, 'tx-a')).events).toHaveLength(0)
    await rpc(ch, TX.rollback, TX.rollbackOk)
    await rpc(ch, TX.commit, TX.commitOk)
    expect((await readStream(s.url, 'tx-a')).events).toHaveLength(0)
    expect((await readStream(s.url, 'tx-b')).events).toHaveLength(0)

    ch.sendToQueue('tx-a', Buffer.from('a2'))
    ch.sendToQueue('tx-b', Buffer.from('b2'))
    ch.sendToQueue('tx-a', Buffer.from('a3'))
    await sleep(50)
    expect((await readStream(s.url, 'tx-a')).events).toHaveLength(0)
    await rpc(ch, TX.commit, TX.commitOk)
    // commit-ok came after everything was durable.
    expect((await readStream(s.url, 'tx-a')).events.map((e) => String(e.body))).toEqual(['a2', 'a3'])
    expect((await readStream(s.url, 'tx-b')).events.map((e) => String(e.body))).toEqual(['b2'])

    // Acks in a transaction apply at commit; a rollback leaves the delivery unacked.
    const got = await ch.get('tx-a')
    expect(got && got.content.toString()).toBe('a2')
    ch.ack(got as amqp.GetMessage)
    await rpc(ch, TX.rollback, TX.rollbackOk)
    await sleep(50)
    const checker = await (await connect(s.amqpUrl)).createChannel()
    expect((await checker.checkQueue('tx-a')).messageCount).toBe(1) // a3 ready; a2 still unacked
    ch.ack(got as amqp.GetMessage)
    await rpc(ch, TX.commit, TX.commitOk)
    await until(async () => {
      const g = (await (await fetch(`${s.url}/v1/groups/tx-a`)).json()) as { backlog: number }
      return g.backlog === 1
    }, 3000, 'ack applied at commit')
  })

  it('a config-declared exchange and group are usable from AMQP, and protected', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.checkExchange('cfg-events')
    await ch.assertExchange('cfg-events', 'topic', { durable: true })
    ch.publish('cfg-events', 'app.info', Buffer.from(JSON.stringify({ msg: 'hi' })), { contentType: 'application/json' })
    await ch.waitForConfirms()
    expect((await readStream(s.url, 'cfg-stream')).events.map((e) => e.body)).toEqual([{ msg: 'hi' }])
    // The YAML group is a queue: consumable over AMQP.
    expect(await ch.checkQueue('cfg-group')).toMatchObject({ queue: 'cfg-group', messageCount: 1 })
    const [m] = await collect(ch, 'cfg-group', 1)
    expect(JSON.parse(m!.content.toString())).toEqual({ msg: 'hi' })
    expect(m!.fields).toMatchObject({ exchange: 'cfg-events', routingKey: 'app.info' })
    const closed = new Promise<Error>((r) => ch.once('error', r))
    await expect(ch.deleteExchange('cfg-events')).rejects.toThrow(/403 \(ACCESS-REFUSED\)/)
    await closed
  })

  it('definitions declared over AMQP show in /v1/exchanges, /v1/streams and /v1/groups, and survive a restart', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertExchange('audit', 'topic', { durable: true })
    await ch.assertExchange('audit-all', 'fanout', { durable: true, alternateExchange: 'amq.fanout' })
    await ch.bindExchange('audit-all', 'audit', 'audit.#')
    await ch.assertQueue('audit-q', { durable: true, arguments: { 'x-message-ttl': 60000 } })
    await ch.bindQueue('audit-q', 'audit-all', '')
    ch.publish('audit', 'audit.login', Buffer.from('x'))
    await until(async () => (await ch.checkQueue('audit-q')).messageCount === 1, 3000, 'routed through e2e binding')
    await conn.close()

    const view = async (url: string): Promise<void> => {
      const ex = (await (await fetch(`${url}/v1/exchanges`)).json()) as { exchanges: Array<{ name: string; type: string; alternate: string | null; bindings: unknown[] }> }
      expect(ex.exchanges.find((e) => e.name === 'audit')).toEqual(expect.objectContaining({ type: 'topic', bindings: [{ toExchange: 'audit-all', key: 'audit.#' }] }))
      expect(ex.exchanges.find((e) => e.name === 'audit-all')).toEqual(expect.objectContaining({ type: 'fanout', alternate: 'amq.fanout', bindings: [{ stream: 'audit-q', key: '' }] }))
      expect(ex.exchanges.map((e) => e.name)).toEqual(expect.arrayContaining(['cfg-events', 'amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match']))
      const streams = (await (await fetch(`${url}/v1/streams`)).json()) as { streams: Array<{ name: string; events: number }> }
      expect(streams.streams.find((x) => x.name === 'audit-q')).toMatchObject({ events: 1 })
      const groups = (await (await fetch(`${url}/v1/groups`)).json()) as { groups: Array<{ name: string; stream: string; backlog: number }> }
      expect(groups.groups.find((g) => g.name === 'audit-q')).toMatchObject({ stream: 'audit-q', backlog: 1 })
    }
    await view(s.url)
    await s.stop()
    const again = await startAmqpServer({ pipeline: amqpPipeline, dataDir: s.dataDir })
    await view(again.url)
    const ch2 = await (await connect(again.amqpUrl)).createChannel()
    expect(await ch2.checkQueue('audit-q')).toMatchObject({ messageCount: 1 })
    ch2.publish('audit', 'audit.logout', Buffer.from('y'))
    await until(async () => (await ch2.checkQueue('audit-q')).messageCount === 2, 3000, 'routing restored')
  })

  it('headers exchanges route on message headers with x-match all/any', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('eu-errors')
    await ch.assertQueue('any-eu-or-error')
    await ch.bindQueue('eu-errors', 'amq.match', '', { 'x-match': 'all', region: 'eu', level: 'error' })
    await ch.bindQueue('any-eu-or-error', 'amq.headers', '', { 'x-match': 'any', region: 'eu', level: 'error' })
    await ch.bindExchange('amq.headers', 'amq.match', '', { 'x-match': 'any', region: 'eu', level: 'error' })
    ch.publish('amq.match', '', Buffer.from('1'), { headers: { region: 'eu', level: 'error' } })
    ch.publish('amq.match', '', Buffer.from('2'), { headers: { region: 'us', level: 'error' } })
    ch.publish('amq.match', '', Buffer.from('3'), { headers: { region: 'us', level: 'info' } })
    await ch.waitForConfirms()
    const bodies = async (q: string): Promise<string[]> => (await readStream(s.url, q)).events.map((e) => String(e.body))
    expect(await bodies('eu-errors')).toEqual(['1'])
    expect(await bodies('any-eu-or-error')).toEqual(['1', '2'])
  })
})
