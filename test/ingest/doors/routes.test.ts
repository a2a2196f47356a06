import { describe, expect, it } from 'vitest'
import { hashApiKey } from '../../../src/auth/index.js'
import { testPipeline } from '../../helpers/server.js'
import { readAll, startDoors } from './helpers.js'

const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })

describe('a route that does not exist', () => {
  it('answers 404 whatever the content type, and the connection goes on', async () => {
    const s = await startDoors()
    const cases: Array<[string, string, string | undefined]> = [
      ['POST', '/nope', 'text/weird'],
      ['POST', '/v1/nope', 'application/octet-stream'],
      ['PUT', '/a/b/c/d', 'image/png'],
      ['POST', '/v1/exchanges/logs/publish/extra', 'application/x-protobuf'],
      ['POST', '/v2/logs', 'application/json'],
      ['POST', '/loki/api/v1/tail', undefined],
      ['DELETE', '/_bulk', 'application/x-ndjson'],
      ['GET', '/v1/logs', undefined],
    ]
    for (const [method, path, type] of cases) {
      const res = await fetch(`${s.url}${path}`, { method, ...(method === 'GET' ? {} : { body: 'x'.repeat(100_000), headers: type === undefined ? {} : { 'content-type': type } }) })
      expect([method, path, res.status]).toEqual([method, path, 404])
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found')
    }
    // The bodies were drained, not read as events: nothing was stored, nothing was set aside.
    expect(await readAll(s.url, 'app-logs')).toEqual([])
    expect(await readAll(s.url, 'ingest-errors')).toEqual([])
  })
})

const users = `
auth:
  anonymous: none
  users:
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: other, password: other-pw, permissions: { write: "^audit$" } }
  apiKeys:
    - { name: fleet, keyHash: "${hashApiKey('fleet-key-0123456789')}", user: shipper }
`

describe('who may use the doors', () => {
  it('publishing needs write on the door exchange; the Elasticsearch probes need a login', async () => {
    const s = await startDoors({ pipeline: testPipeline + users })
    const otlp = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${s.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityText: 'x' }] }] }] }) })
    const loki = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${s.url}/loki/api/v1/push`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ streams: [{ stream: { job: 'j' }, values: [['1', 'l']] }] }) })
    const bulk = (headers: Record<string, string>, path = '/_bulk'): Promise<Response> =>
      fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...headers }, body: '{"index":{"_index":"i"}}\n{"a":1}\n' })

    // No credentials: 401, in each protocol's own shape.
    const unauth = await otlp({})
    expect(unauth.status).toBe(401)
    expect(unauth.headers.get('www-authenticate')).toContain('Basic')
    expect(await unauth.json()).toEqual({ code: 16, message: expect.any(String) })
    expect((await loki({})).status).toBe(401)
    const esUnauth = await bulk({})
    expect(esUnauth.status).toBe(401)
    expect(((await esUnauth.json()) as { error: { type: string } }).error.type).toBe('unauthenticated')
    expect((await fetch(s.url)).status).toBe(401)

    // Write on another exchange: 403.
    const other = basic('other', 'other-pw')
    const forbidden = await otlp(other)
    expect(forbidden.status).toBe(403)
    expect(await forbidden.json()).toEqual({ code: 7, message: expect.stringContaining('write') })
    expect((await loki(other)).status).toBe(403)
    expect((await bulk(other)).status).toBe(403)
    expect((await bulk(other, '/i/_bulk')).status).toBe(403)
    // Any user who logs in may read the handshake and the probes.
    expect((await fetch(s.url, { headers: other })).status).toBe(200)
    expect((await fetch(`${s.url}/_license`, { headers: other })).status).toBe(200)
    expect((await fetch(`${s.url}/some-index`, { method: 'HEAD', headers: other })).status).toBe(200)

    // Write on logs: stored, by password and by API key as a bearer token.
    const shipper = basic('shipper', 'ship-pw')
    expect((await otlp(shipper)).status).toBe(200)
    expect((await loki(shipper)).status).toBe(204)
    expect((await bulk({ authorization: 'Bearer fleet-key-0123456789' })).status).toBe(200)
    expect(s.server.streams.get('app-logs')!.log.endOffset).toBe(3)
  })
})
