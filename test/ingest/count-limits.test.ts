import type amqplib from 'amqplib'
import { describe, expect, it } from 'vitest'
import { validateConfigText } from '../../src/config/index.js'
import { channelError, collect, connect, startAmqpServer, until } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

// Every count of things has a limit: streams and groups (the file's and run time's together),
// consumers across all groups, consumers per AMQP channel. Past one, nothing new is made and the
// client is told which limit it met; what exists goes on working. Each count is a gauge and each
// refusal counts in sluice_limit_hits_total{limit}.

async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

const hits = (url: string, limit: string): Promise<number> => metric(url, `sluice_limit_hits_total{limit="${limit}"}`)

/** Resolves with the error that closes `conn` (a 530 and the like). */
function connectionError(conn: amqplib.ChannelModel): Promise<{ code: number; message: string }> {
  return new Promise((resolve) => conn.once('error', (e: { code: number; message: string }) => resolve(e)))
}

async function fetchAs(url: string, group: string, consumer: string): Promise<Response> {
  return fetch(`${url}/v1/groups/${group}/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ consumer, max: 10, waitMs: 0 }) })
}

describe('server.limits.maxStreams and maxGroups in the file', () => {
  it('a file declaring more than the limits is refused, naming the section, the count and the key', () => {
    const result = validateConfigText(
      `server:
  limits: { maxStreams: 2, maxGroups: 1 }
streams:
  a: {}
  b: {}
  c: {}
groups:
  g1: { stream: a }
  g2: { stream: b }
`,
      { env: {} },
    )
    expect(result.ok).toBe(false)
    expect(result.ok ? [] : result.problems).toEqual([
      'streams (line 4, col 3): 3 streams are declared, over server.limits.maxStreams (2); raise the limit or declare fewer',
      'groups (line 8, col 3): 2 groups are declared, over server.limits.maxGroups (1); raise the limit or declare fewer',
    ])
    // At the limit is fine; the built-in ingest-errors stream is not counted.
    expect(validateConfigText('server:\n  limits: { maxStreams: 3, maxGroups: 2 }\nstreams: { a: {}, b: {}, c: {} }\ngroups: { g1: { stream: a }, g2: { stream: b } }\n', { env: {} }).ok).toBe(true)
  })
})

describe('server.limits.maxStreams at run time', () => {
  it('queue.declare past it closes the channel with 406 naming the limit; the queues already there work; deleting one frees a place', async () => {
    // The file's cfg-stream is one of the three.
    const s = await startAmqpServer({ pipeline: amqpPipeline, server: '  limits: { maxStreams: 3 }' })
    const before = await hits(s.url, 'limits.maxStreams')
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    await ch.assertQueue('q1')
    await ch.assertQueue('q2', { durable: true })
    expect(await metric(s.url, 'sluice_streams')).toBe(3)
    expect(await channelError(conn, (c) => c.assertQueue('q3'))).toMatchObject({
      code: 406,
      message: expect.stringContaining("PRECONDITION_FAILED - cannot declare queue 'q3' in vhost '/': stream limit (3) is reached (server.limits.maxStreams)"),
    })
    expect(await channelError(conn, (c) => c.assertQueue(''))).toMatchObject({ code: 406, message: expect.stringContaining('(server.limits.maxStreams)') })
    expect((await hits(s.url, 'limits.maxStreams')) - before).toBe(2)
    expect(await metric(s.url, 'sluice_streams')).toBe(3)
    // Nothing of the refused queues was made.
    expect(await channelError(conn, (c) => c.checkQueue('q3'))).toMatchObject({ code: 404 })
    // What exists goes on: redeclares, publishes and consumes.
    await ch.assertQueue('q2', { durable: true })
    ch.sendToQueue('q1', Buffer.from('one'))
    ch.sendToQueue('q2', Buffer.from('two'))
    await ch.waitForConfirms()
    expect((await collect(ch, 'q1', 1)).map((m) => m.content.toString())).toEqual(['one'])
    expect((await collect(ch, 'q2', 1)).map((m) => m.content.toString())).toEqual(['two'])
    // A place freed is a place taken.
    await ch.deleteQueue('q1')
    expect(await metric(s.url, 'sluice_streams')).toBe(2)
    expect((await ch.assertQueue('q3')).queue).toBe('q3')
  })
})

describe('server.limits.maxGroups at run time', () => {
  it('AMQP queues, stream-queue consumers and PUT /v1/groups stop at it, naming the limit; nothing is left half made', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, server: '  limits: { maxGroups: 2 }' })
    const before = await hits(s.url, 'limits.maxGroups')
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertQueue('work') // its group is the second
    expect(await metric(s.url, 'sluice_groups')).toBe(2)
    expect(await channelError(conn, (c) => c.assertQueue('more-work'))).toMatchObject({
      code: 406,
      message: expect.stringContaining("PRECONDITION_FAILED - cannot declare queue 'more-work' in vhost '/': group limit (2) is reached (server.limits.maxGroups)"),
    })
    // The queue's stream went with its refused group.
    expect(await channelError(conn, (c) => c.checkQueue('more-work'))).toMatchObject({ code: 404 })
    const streams = (await (await fetch(`${s.url}/v1/streams`)).json()) as { streams: Array<{ name: string }> }
    expect(JSON.stringify(streams)).not.toContain('more-work')
    // A stream queue needs no group of its own, but each of its consumers does.
    await ch.assertQueue('log', { arguments: { 'x-queue-type': 'stream' } })
    expect(await channelError(conn, (c) => c.consume('log', () => undefined))).toMatchObject({
      code: 406,
      message: expect.stringContaining("cannot consume from stream queue 'log' in vhost '/': each consumer needs a group of its own and the group limit (2) is reached (server.limits.maxGroups)"),
    })
    const put = await fetch(`${s.url}/v1/groups/by-http`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: 'cfg-stream' }) })
    expect(put.status).toBe(409)
    expect(((await put.json()) as { error: unknown }).error).toMatchObject({ code: 'too_many_groups', details: { group: 'by-http', limit: 'maxGroups', limitGroups: 2 } })
    expect((await hits(s.url, 'limits.maxGroups')) - before).toBe(3)
    // Deleting a queue frees its group's place.
    await ch.deleteQueue('work')
    expect(await metric(s.url, 'sluice_groups')).toBe(1)
    expect((await fetch(`${s.url}/v1/groups/by-http`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: 'cfg-stream' }) })).status).toBe(201)
  })
})

describe('server.amqp.maxConsumersPerChannel', () => {
  it("one consumer past it closes the connection with 530, RabbitMQ's words and the key; other connections go on", async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, maxConsumersPerChannel: 8 }' })
    const before = await hits(s.url, 'amqp.maxConsumersPerChannel')
    const conn = await connect(s.amqpUrl)
    const closed = connectionError(conn)
    const ch = await conn.createChannel()
    for (let i = 0; i < 8; i++) await ch.consume('cfg-group', () => undefined)
    // Another channel has its own allowance.
    const other = await conn.createChannel()
    await other.consume('cfg-group', () => undefined)
    await ch.consume('cfg-group', () => undefined).catch(() => undefined)
    expect(await closed).toMatchObject({ code: 530, message: expect.stringContaining('NOT_ALLOWED - reached maximum (8) of consumers per channel (server.amqp.maxConsumersPerChannel)') })
    expect((await hits(s.url, 'amqp.maxConsumersPerChannel')) - before).toBe(1)
    const again = await (await connect(s.amqpUrl)).createChannel()
    expect((await again.consume('cfg-group', () => undefined)).consumerTag).toMatch(/^amq\.ctag-/)
  })
})

describe('server.limits.maxConsumers', () => {
  it('one count over every door: a new HTTP consumer gets 503 too_many_consumers, a new AMQP one 530; known ones go on; leaving frees places', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline, server: '  limits: { maxConsumers: 3 }' })
    const before = await hits(s.url, 'limits.maxConsumers')
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.consume('cfg-group', () => undefined)
    expect((await fetchAs(s.url, 'cfg-group', 'a')).status).toBe(200)
    expect((await fetchAs(s.url, 'cfg-group', 'b')).status).toBe(200)
    expect(await metric(s.url, 'sluice_consumers')).toBe(3)
    const refused = await fetchAs(s.url, 'cfg-group', 'c')
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(((await refused.json()) as { error: unknown }).error).toMatchObject({ code: 'too_many_consumers', details: { limit: 'maxConsumers', limitConsumers: 3 } })
    // A consumer the group knows is not a new one.
    expect((await fetchAs(s.url, 'cfg-group', 'a')).status).toBe(200)
    const late = await connect(s.amqpUrl)
    const closed = connectionError(late)
    await (await late.createChannel()).consume('cfg-group', () => undefined).catch(() => undefined)
    expect(await closed).toMatchObject({ code: 530, message: expect.stringContaining('NOT_ALLOWED - reached maximum (3) of consumers across all queues (server.limits.maxConsumers)') })
    expect((await hits(s.url, 'limits.maxConsumers')) - before).toBe(2)
    // The AMQP consumer leaves with its connection: its place is free.
    await conn.close()
    await until(async () => (await metric(s.url, 'sluice_consumers')) === 2)
    expect((await fetchAs(s.url, 'cfg-group', 'c')).status).toBe(200)
  })
})
