import type amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { call } from '../../helpers/consume.js'
import { connect, startAmqpServer } from '../../helpers/amqp.js'
import { waitFor } from '../../helpers/groups.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {}, dlq: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  indexer: { stream: app-logs, deadLetter: { stream: dlq } }
`

type ErrorBody = { error: { code: string; message: string } }

async function del(url: string, path: string, body?: unknown): Promise<{ status: number; body: ErrorBody | undefined }> {
  const res = await fetch(`${url}${path}`, { method: 'DELETE', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as ErrorBody) }
}

const code = (r: { status: number; body: ErrorBody | undefined }): [number, string | undefined] => [r.status, r.body?.error.code]

describe('DELETE of run-time definitions over HTTP', () => {
  it('a group declared over HTTP is deleted; one the file declares is protected; an AMQP queue\'s is the queue\'s', async () => {
    const s = await startAmqpServer({ pipeline })
    expect((await call(s.url, 'PUT', '/v1/groups/tmp', { stream: 'app-logs' })).status).toBe(201)
    expect(await del(s.url, '/v1/groups/tmp')).toEqual({ status: 204, body: undefined })
    expect((await call(s.url, 'GET', '/v1/groups/tmp')).status).toBe(404)
    expect(code(await del(s.url, '/v1/groups/tmp'))).toEqual([404, 'unknown_group'])
    // Declared again, it starts afresh: nothing of the deleted one is left.
    expect((await call(s.url, 'PUT', '/v1/groups/tmp', { stream: 'app-logs' })).status).toBe(201)

    const yaml = await del(s.url, '/v1/groups/indexer')
    expect(code(yaml)).toEqual([403, 'definition_protected'])
    expect(yaml.body?.error.message).toBe('group "indexer" is declared in the configuration file; change it there, not at run time')
    expect((await call(s.url, 'GET', '/v1/groups/indexer')).status).toBe(200)

    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertQueue('jobs')
    const queued = await del(s.url, '/v1/groups/jobs')
    expect(code(queued)).toEqual([409, 'definition_in_use'])
    expect(queued.body?.error.message).toMatch(/belongs to AMQP queue "jobs"; delete the queue/)
  })

  it('an AMQP queue is deleted through the AMQP door: its consumer is cancelled; the file\'s streams are protected', async () => {
    const s = await startAmqpServer({ pipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertQueue('jobs')
    let cancelled = false
    await ch.consume('jobs', (m) => {
      if (m === null) cancelled = true
    })
    expect(code(await del(s.url, '/v1/streams/jobs?ifUnused=true'))).toEqual([409, 'definition_in_use'])
    expect(await del(s.url, '/v1/streams/jobs')).toEqual({ status: 204, body: undefined })
    await waitFor('the consumer cancelled', async () => (cancelled ? true : undefined))
    expect((await call(s.url, 'GET', '/v1/streams/jobs')).status).toBe(404)
    expect((await call(s.url, 'GET', '/v1/groups/jobs')).status).toBe(404)
    expect(code(await del(s.url, '/v1/streams/jobs'))).toEqual([404, 'unknown_stream'])

    expect(code(await del(s.url, '/v1/streams/app-logs'))).toEqual([403, 'definition_protected'])
    expect(code(await del(s.url, '/v1/streams/ingest-errors'))).toEqual([403, 'definition_protected'])
    expect(code(await del(s.url, '/v1/streams/jobs?ifUnused=maybe'))).toEqual([400, 'bad_request'])
  })

  it('a stream a group reads or dead-letters into is in use', async () => {
    const s = await startAmqpServer({ pipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertQueue('parked')
    expect((await call(s.url, 'PUT', '/v1/groups/reader', { stream: 'parked' })).status).toBe(201)
    const r = await del(s.url, '/v1/streams/parked')
    expect(code(r)).toEqual([409, 'definition_in_use'])
    expect(r.body?.error.message).toBe('stream "parked" is read by group "reader"; delete those first')
    expect(await del(s.url, '/v1/groups/reader')).toEqual({ status: 204, body: undefined })
    expect((await call(s.url, 'PUT', '/v1/groups/sender', { stream: 'app-logs', deadLetter: { stream: 'parked' } })).status).toBe(201)
    const dl = await del(s.url, '/v1/streams/parked')
    expect(code(dl)).toEqual([409, 'definition_in_use'])
    expect(dl.body?.error.message).toBe('stream "parked" is the dead-letter stream of group "sender"')
  })

  it('run-time exchanges and bindings are deleted; the file\'s are protected', async () => {
    const s = await startAmqpServer({ pipeline })
    const conn: amqp.ChannelModel = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertExchange('audit', 'topic')
    await ch.assertQueue('audit-copy')
    await ch.bindQueue('audit-copy', 'audit', 'login.#')
    const bindings = async (exchange: string): Promise<unknown[]> =>
      ((await call<{ exchanges: Array<{ name: string; bindings: unknown[] }> }>(s.url, 'GET', '/v1/exchanges')).body.exchanges.find((e) => e.name === exchange)?.bindings ?? [])
    expect(await bindings('audit')).toEqual([{ stream: 'audit-copy', key: 'login.#' }])

    expect(code(await del(s.url, '/v1/exchanges/audit?ifUnused=true'))).toEqual([409, 'definition_in_use'])
    expect(await del(s.url, '/v1/exchanges/audit/bindings', { stream: 'audit-copy', key: 'login.#' })).toEqual({ status: 204, body: undefined })
    expect(await bindings('audit')).toEqual([])
    expect(code(await del(s.url, '/v1/exchanges/audit/bindings', { stream: 'audit-copy', key: 'login.#' }))).toEqual([400, 'bad_request'])
    expect(code(await del(s.url, '/v1/exchanges/audit/bindings', { key: 'x' }))).toEqual([400, 'bad_request'])
    expect(await del(s.url, '/v1/exchanges/audit?ifUnused=true')).toEqual({ status: 204, body: undefined })
    expect(code(await del(s.url, '/v1/exchanges/audit'))).toEqual([404, 'unknown_exchange'])

    expect(code(await del(s.url, '/v1/exchanges/logs/bindings', { stream: 'app-logs', key: '#' }))).toEqual([403, 'definition_protected'])
    expect(code(await del(s.url, '/v1/exchanges/logs'))).toEqual([403, 'definition_protected'])
    expect(code(await del(s.url, '/v1/exchanges/amq.topic'))).toEqual([403, 'definition_protected'])
  })
})
