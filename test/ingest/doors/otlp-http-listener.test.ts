import { readFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { OTLPLogExporter as HttpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http'
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto'
import { describe, expect, it } from 'vitest'
import { makePki, tlsYaml } from '../../helpers/pki.js'
import { startTestServer, testPipeline, type TestServer } from '../../helpers/server.js'
import { tempDir } from '../../helpers/temp.js'
import { readAll, waitForEvents } from './helpers.js'
import { checkArrived, exportThrough, records, type OtlpEvent } from './otlp-sdk.js'

/** A server whose OTLP door also has its own listener; `http` is that listener's extra keys. */
async function startOtlpHttp(http = '', rest = '', pipeline = testPipeline): Promise<{ s: TestServer; base: string }> {
  const s = await startTestServer({ server: `  otlp: { exchange: logs, http: { enabled: true, port: 0${http} } }\n${rest}`, pipeline })
  const listener = s.server.listeners.find((l) => l.options.name === 'otlp-http')!
  return { s, base: `${listener.tls === true ? 'https' : 'http'}://127.0.0.1:${listener.port}` }
}

const oneRecord = (text: string): string => JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] }, scopeLogs: [{ logRecords: [{ severityText: 'INFO', body: { stringValue: text } }] }] }] })

const post = (base: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${base}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })

const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })

describe('OTLP/HTTP on its own listener (server.otlp.http)', () => {
  it('exporter-logs-otlp-proto (protobuf, gzip) and -http (JSON): 1,000 records each, once, attributes and trace ids intact', async () => {
    const { s, base } = await startOtlpHttp()
    expect(base).not.toBe(s.url)
    await exportThrough(new ProtoExporter({ url: `${base}/v1/logs`, compression: 'gzip' as never }))
    checkArrived(await waitForEvents<OtlpEvent>(s.url, 'app-logs', records))
    await exportThrough(new HttpJsonExporter({ url: `${base}/v1/logs` }))
    const all = await waitForEvents<OtlpEvent>(s.url, 'app-logs', 2 * records)
    expect(all).toHaveLength(2 * records)
    checkArrived(all.slice(records))
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain(`sluice_ingest_events_total{listener="otlp",exchange="logs"} ${2 * records}`)
    expect(metrics).toMatch(/sluice_connections_total\{listener="otlp-http"\} [1-9]/)
  })

  it('serves only POST /v1/logs: every other path and method is 404, while the API listener keeps its routes', async () => {
    const { s, base } = await startOtlpHttp()
    expect((await post(base, oneRecord('one'))).status).toBe(200)
    for (const [method, path] of [['GET', '/v1/logs'], ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/metrics'], ['GET', '/'], ['GET', '/v1/streams'], ['POST', '/v1/exchanges/logs/publish'], ['POST', '/loki/api/v1/push'], ['POST', '/_bulk'], ['POST', '/v1/traces']] as const) {
      const res = await fetch(`${base}${path}`, { method, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) })
      expect(res.status, `${method} ${path}`).toBe(404)
      await res.arrayBuffer()
    }
    // The API listener's own /v1/logs and the rest of its API are unchanged.
    expect((await post(s.url, oneRecord('two'))).status).toBe(200)
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    expect((await readAll<OtlpEvent>(s.url, 'app-logs')).map((e) => [e.routingKey, e.body.body])).toEqual([
      ['api.INFO', 'one'],
      ['api.INFO', 'two'],
    ])
  })

  it('a request without credentials is the listener user; one that logs in is its login, checked for write on the exchange', async () => {
    const users = `
auth:
  anonymous: none
  users:
    - { username: admin, password: admin-pw, tags: [administrator] }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: reader, password: read-pw, permissions: { read: ".*" } }`
    // No listener user under anonymous: none: only a login gets in.
    const plain = await startOtlpHttp('', users)
    const anonymous = await post(plain.base, oneRecord('nobody'))
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic')
    expect(await anonymous.json()).toEqual({ code: 16, message: expect.stringContaining('needs credentials') })
    expect((await post(plain.base, oneRecord('as shipper'), basic('shipper', 'ship-pw'))).status).toBe(200)
    const reader = await post(plain.base, oneRecord('as reader'), basic('reader', 'read-pw'))
    expect(reader.status).toBe(403)
    expect(await reader.json()).toEqual({ code: 7, message: expect.stringContaining('reader') })
    expect((await post(plain.base, oneRecord('bad password'), basic('shipper', 'nope'))).status).toBe(401)
    const admin = basic('admin', 'admin-pw')
    expect((await readWith(plain.s.url, admin)).map((e) => e.body.body)).toEqual(['as shipper'])
    const metrics = await (await fetch(`${plain.s.url}/metrics`, { headers: admin })).text()
    expect(metrics).toMatch(/sluice_auth_failures_total\{door="otlp-http",reason="no_credentials"\} 1/)

    // With a listener user, a request without credentials publishes as it.
    const withUser = await startOtlpHttp(', user: shipper', users)
    expect((await post(withUser.base, oneRecord('listener user'))).status).toBe(200)
    expect((await readWith(withUser.s.url, admin)).map((e) => e.body.body)).toEqual(['listener user'])
  })

  it('a client address outside `allow` is refused at accept and counted', async () => {
    const { s, base } = await startOtlpHttp(', allow: [10.0.0.0/8]')
    await expect(post(base, oneRecord('refused'))).rejects.toThrow()
    expect(await readAll(s.url, 'app-logs')).toEqual([])
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toMatch(/sluice_auth_failures_total\{door="otlp-http",reason="address"\} [1-9]/)
  })

  it('rate limits match it as listener otlp-http: 429 with Retry-After in a google.rpc.Status', async () => {
    const { s, base } = await startOtlpHttp('', 'rateLimits:\n  - { match: { listener: otlp-http }, events: 1/m, burst: 2 }')
    expect((await post(base, oneRecord('a'))).status).toBe(200)
    expect((await post(base, oneRecord('b'))).status).toBe(200)
    const refused = await post(base, oneRecord('c'))
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await refused.json()).toEqual({ code: 8, message: expect.stringContaining('rate limit') })
    // The API listener is another listener: the rule does not apply there.
    expect((await post(s.url, oneRecord('d'))).status).toBe(200)
    expect((await readAll<OtlpEvent>(s.url, 'app-logs')).map((e) => e.body.body)).toEqual(['a', 'b', 'd'])
  })

  it('over TLS with clientAuth required: the exporter with its client certificate publishes as the user the certificate names; a client without one is refused', async () => {
    const dir = await tempDir()
    const pki = await makePki(dir)
    const users = `
auth:
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }`
    const { s, base } = await startOtlpHttp(`, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })}`, users)
    expect(base.startsWith('https://')).toBe(true)
    const [ca, cert, key] = await Promise.all([readFile(pki.ca), readFile(pki.client.cert), readFile(pki.client.key)])
    await exportThrough(new ProtoExporter({ url: `${base}/v1/logs`, httpAgentOptions: { ca, cert, key } }))
    checkArrived(await waitForEvents<OtlpEvent>(s.url, 'app-logs', records))

    const withoutCertificate = await new Promise<string>((resolve) => {
      const req = httpsRequest(`${base}/v1/logs`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => resolve(`answered ${res.statusCode}`))
      req.on('error', (err) => resolve(`refused: ${err.message}`))
      req.end(oneRecord('no certificate'))
    })
    expect(withoutCertificate).toMatch(/^refused/)
    expect(await readAll(s.url, 'app-logs')).toHaveLength(records)
  })
})

async function readWith(url: string, headers: Record<string, string>): Promise<Array<{ body: OtlpEvent }>> {
  const res = await fetch(`${url}/v1/streams/app-logs/events?from=0&limit=10000`, { headers })
  expect(res.status).toBe(200)
  return ((await res.json()) as { events: Array<{ body: OtlpEvent }> }).events
}
