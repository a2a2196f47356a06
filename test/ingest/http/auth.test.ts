import { describe, expect, it } from 'vitest'
import { Authenticator, Authorizer, hashApiKey, hashPassword } from '../../../src/auth/index.js'
import { parseConfig } from '../../../src/config/index.js'
import { buildHttpApp } from '../../../src/ingest/http/app.js'
import { httpRules, routesWithoutRule, wwwAuthenticate } from '../../../src/ingest/http/access.js'
import { Metrics } from '../../../src/metrics/index.js'
import { postNdjson, startTestServer, testPipeline } from '../../helpers/server.js'
import type { WireError } from './util.js'

const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

const pipeline = `${testPipeline}
groups:
  indexer: { stream: app-logs }
`

/** Users for most cases: a shipper that may only publish to logs, a reader, ops with monitoring, an admin. */
async function authYaml(anonymous: 'loopback' | 'none' = 'none'): Promise<string> {
  // A cheap scrypt cost keeps the test fast; the format and the check are the same.
  const opsHash = await hashPassword('ops-pw', { N: 1024, r: 8, p: 1 })
  return `
auth:
  anonymous: ${anonymous}
  users:
    - { username: admin, password: admin-pw, tags: [administrator] }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: indexer, password: idx-pw, permissions: { read: "^(app-logs|indexer)$" } }
    - { username: ops, passwordHash: "${opsHash}", tags: [monitoring] }
    - { username: planner, password: plan-pw, permissions: { configure: "^planned$", read: "^errors$" } }
  apiKeys:
    - { name: fleet, keyHash: "${hashApiKey('fleet-key-0123456789')}", user: shipper }
`
}

async function scrape(url: string, headers: Record<string, string> = basic('admin', 'admin-pw')): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers })
  expect(res.status).toBe(200)
  return res.text()
}

function failures(metrics: string, reason: string): number {
  const m = new RegExp(`^sluice_auth_failures_total\\{door="http",reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics)
  return m === null ? 0 : Number(m[1])
}

describe('HTTP door: the default configuration', () => {
  it('lets a loopback client publish, read and scrape with no credentials (anonymous guest)', async () => {
    const s = await startTestServer({ pipeline })
    const res = await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info', msg: 'hi' }])
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    expect((await fetch(`${s.url}/v1/streams/app-logs/events`)).status).toBe(200)
    expect((await fetch(`${s.url}/v1/overview`)).status).toBe(200)
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200)
    // guest/guest logs in from loopback too; a wrong guest password does not.
    expect((await fetch(`${s.url}/v1/streams`, { headers: basic('guest', 'guest') })).status).toBe(200)
    expect((await fetch(`${s.url}/v1/streams`, { headers: basic('guest', 'nope') })).status).toBe(401)
  })
})

describe('HTTP door: authentication', () => {
  it('refuses a request without credentials with 401 and WWW-Authenticate; the probes stay open', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    const res = await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info' }])
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe(wwwAuthenticate)
    const body = (await res.json()) as WireError
    expect(body.error.code).toBe('unauthenticated')
    for (const path of ['/v1/streams', '/v1/groups/indexer', '/metrics']) {
      const r = await fetch(`${s.url}${path}`)
      expect([path, r.status]).toEqual([path, 401])
    }
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
    // Nothing reached the stream.
    const read = await fetch(`${s.url}/v1/streams/app-logs/events`, { headers: basic('admin', 'admin-pw') })
    expect(((await read.json()) as { events: unknown[] }).events).toEqual([])
  })

  it('refuses a bad password, an unknown user and a bad key alike, and counts each by reason', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    const before = await scrape(s.url)
    const answers = await Promise.all([
      postNdjson(s.url, 'logs', ['{}'], basic('shipper', 'wrong')),
      postNdjson(s.url, 'logs', ['{}'], basic('nobody', 'ship-pw')),
      postNdjson(s.url, 'logs', ['{}'], bearer('not-a-key')),
      postNdjson(s.url, 'logs', ['{}'], { authorization: 'Digest abc' }),
    ])
    const bodies = await Promise.all(answers.map(async (r) => [r.status, r.headers.get('www-authenticate'), ((await r.json()) as WireError).error.code]))
    expect(bodies).toEqual(Array.from({ length: 4 }, () => [401, wwwAuthenticate, 'unauthenticated']))
    // The answer never says which part was wrong.
    expect(new Set(await Promise.all(answers.slice(0, 3).map(async (r) => r.headers.get('content-length'))))).toHaveProperty('size', 1)
    const after = await scrape(s.url)
    expect(failures(after, 'bad_password') - failures(before, 'bad_password')).toBe(1)
    expect(failures(after, 'unknown_user') - failures(before, 'unknown_user')).toBe(1)
    expect(failures(after, 'bad_api_key') - failures(before, 'bad_api_key')).toBe(1)
    expect(failures(after, 'malformed') - failures(before, 'malformed')).toBe(1)
  })

  it('takes an API key as a Bearer token, acting as its user', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    const res = await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info' }], bearer('fleet-key-0123456789'))
    expect(res.status).toBe(200)
    // The key is shipper: it may publish to logs, and nothing else.
    const other = await postNdjson(s.url, 'strict', ['{}'], bearer('fleet-key-0123456789'))
    expect(other.status).toBe(403)
    expect(((await other.json()) as WireError).error.details).toEqual({ permission: 'write', resource: { kind: 'exchange', name: 'strict' } })
  })

  it('verifies a passwordHash (scrypt), and refuses the wrong password for it', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    expect((await fetch(`${s.url}/v1/overview`, { headers: basic('ops', 'ops-pw') })).status).toBe(200)
    // Again: now from the verified cache, same answer.
    expect((await fetch(`${s.url}/v1/overview`, { headers: basic('ops', 'ops-pw') })).status).toBe(200)
    expect((await fetch(`${s.url}/v1/overview`, { headers: basic('ops', 'ops-pw!') })).status).toBe(401)
  })
})

describe('HTTP door: permissions, one table', () => {
  it('a user with write but not read publishes (200) and is refused a fetch (403 with details)', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    const pub = await postNdjson(s.url, 'logs', [{ service: 'web', level: 'error' }], basic('shipper', 'ship-pw'))
    expect(pub.status).toBe(200)
    const fetchRes = await fetch(`${s.url}/v1/groups/indexer/fetch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...basic('shipper', 'ship-pw') },
      body: JSON.stringify({ consumer: 'c1', max: 10 }),
    })
    expect(fetchRes.status).toBe(403)
    expect((await fetchRes.json()) as WireError).toEqual({
      error: { code: 'forbidden', message: 'user "shipper" has no read permission on group "indexer" (consume)', details: { permission: 'read', resource: { kind: 'group', name: 'indexer' } } },
    })
    const read = await fetch(`${s.url}/v1/streams/app-logs/events`, { headers: basic('shipper', 'ship-pw') })
    expect(read.status).toBe(403)
    expect(((await read.json()) as WireError).error.details).toEqual({ permission: 'read', resource: { kind: 'stream', name: 'app-logs' } })
    // Each refusal is counted, by door and operation.
    const metrics = await scrape(s.url)
    expect(metrics).toContain('sluice_auth_denials_total{door="http",operation="consume"} 1')
    expect(metrics).toContain('sluice_auth_denials_total{door="http",operation="stream.read"} 1')
  })

  it('a reader fetches and acks its group and reads its stream, but may not publish, reset or list', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    expect((await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info' }], basic('shipper', 'ship-pw'))).status).toBe(200)
    const auth = basic('indexer', 'idx-pw')
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body) })
    const fetched = await post('/v1/groups/indexer/fetch', { consumer: 'c1', max: 10 })
    expect(fetched.status).toBe(200)
    const { events } = (await fetched.json()) as { events: Array<{ tag: string }> }
    expect(events).toHaveLength(1)
    const acked = await post('/v1/groups/indexer/ack', { tags: events.map((e) => e.tag) })
    expect(await acked.json()).toEqual({ settled: 1, failed: [] })
    expect((await fetch(`${s.url}/v1/streams/app-logs/events`, { headers: auth })).status).toBe(200)
    expect((await fetch(`${s.url}/v1/groups/indexer`, { headers: auth })).status).toBe(200)
    const refused = [
      await postNdjson(s.url, 'logs', ['{}'], auth),
      await post('/v1/groups/indexer/reset', { to: 'earliest' }),
      await fetch(`${s.url}/v1/streams`, { headers: auth }),
      await fetch(`${s.url}/v1/streams/errors/events`, { headers: auth }),
    ]
    const details = await Promise.all(refused.map(async (r) => [r.status, ((await r.json()) as WireError).error.details]))
    expect(details).toEqual([
      [403, { permission: 'write', resource: { kind: 'exchange', name: 'logs' } }],
      [403, { permission: 'configure', resource: { kind: 'group', name: 'indexer' } }],
      [403, { permission: 'monitoring', resource: { kind: 'broker', name: 'streams' } }],
      [403, { permission: 'read', resource: { kind: 'stream', name: 'errors' } }],
    ])
  })

  it('declaring a group needs configure on it and read on its stream', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    const put = (name: string, body: unknown): Promise<Response> =>
      fetch(`${s.url}/v1/groups/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...basic('planner', 'plan-pw') }, body: JSON.stringify(body) })
    const noRead = await put('planned', { stream: 'app-logs' })
    expect([noRead.status, ((await noRead.json()) as WireError).error.details]).toEqual([403, { permission: 'read', resource: { kind: 'stream', name: 'app-logs' } }])
    const noConfigure = await put('other', { stream: 'errors' })
    expect([noConfigure.status, ((await noConfigure.json()) as WireError).error.details]).toEqual([403, { permission: 'configure', resource: { kind: 'group', name: 'other' } }])
    const deadLetter = await put('planned', { stream: 'errors', deadLetter: { stream: 'unrouted' } })
    expect([deadLetter.status, ((await deadLetter.json()) as WireError).error.details]).toEqual([403, { permission: 'write', resource: { kind: 'stream', name: 'unrouted' } }])
    expect((await put('planned', { stream: 'errors' })).status).toBe(201)
  })
})

describe('HTTP door: /metrics', () => {
  it('needs tag monitoring (or administrator)', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')) })
    expect((await fetch(`${s.url}/metrics`)).status).toBe(401)
    const shipper = await fetch(`${s.url}/metrics`, { headers: basic('shipper', 'ship-pw') })
    expect([shipper.status, ((await shipper.json()) as WireError).error.details]).toEqual([403, { permission: 'monitoring', resource: { kind: 'broker', name: 'metrics' } }])
    expect(await scrape(s.url, basic('ops', 'ops-pw'))).toContain('sluice_auth_failures_total')
    expect((await fetch(`${s.url}/metrics`, { headers: basic('admin', 'admin-pw') })).status).toBe(200)
  })

  it('is open to every client with server.http.openMetrics', async () => {
    const s = await startTestServer({ pipeline: pipeline + (await authYaml('none')), server: '  http: { port: 0, openMetrics: true }' })
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200)
    // The rest of the door is not.
    expect((await fetch(`${s.url}/v1/overview`)).status).toBe(401)
  })
})

describe('HTTP door: every route asks the authorizer', () => {
  it('has a rule for every /v1 route, and no rule for a route that does not exist', async () => {
    const config = parseConfig('', { env: {} })
    const access = { authenticator: new Authenticator(config.auth), authorizer: new Authorizer(), openMetrics: false }
    const app = buildHttpApp({ getBroker: () => undefined, metrics: new Metrics(), http: config.server.http, limits: config.server.limits, access }, () => undefined)
    await app.ready()
    expect(routesWithoutRule(app)).toEqual([])
    const registered = new Set<string>()
    for (const key of Object.keys(httpRules)) {
      const [method, url] = key.split(' ') as [string, string]
      if (app.hasRoute({ method: method as 'GET', url })) registered.add(key)
    }
    expect([...registered].sort()).toEqual(Object.keys(httpRules).sort())
    await app.close()
  })
})
