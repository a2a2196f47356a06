import { request } from 'node:http'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { RateLimiter } from '../../src/flow/rate-limiter.js'
import { limitHits } from '../../src/limits.js'
import { sleep } from '../helpers/consume.js'
import { postNdjson, startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
  audit: { type: fanout }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
`

const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })

/** A publish from a chosen loopback address (Linux routes all of 127/8 to lo): fetch cannot pick one. */
function publishFrom(url: string, localAddress: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/exchanges/logs/publish`, { method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/x-ndjson' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function metric(url: string, name: string, labels: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text()
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

describe('rate limits per source (the limiter alone)', () => {
  const limiter = (rules: string): RateLimiter =>
    new RateLimiter(parseConfig(`auth:\n  users:\n    - { username: a, password: a }\n    - { username: b, password: b }\nexchanges: { logs: {} }\nrateLimits:\n${rules}`, { env: {} }).rateLimits, 0)

  it('per: user gives each user its own buckets; without per, one pair is shared', () => {
    const per = limiter('  - { per: user, events: 10/s, burst: 10 }\n')
    expect(per.check({ listener: 'http', exchange: 'logs', user: 'a' }, 10, 0, 0).retryAfterMs).toBe(0)
    expect(per.check({ listener: 'http', exchange: 'logs', user: 'a' }, 1, 0, 0)).toEqual({ retryAfterMs: 100, rule: 'rateLimits[0]' })
    expect(per.check({ listener: 'http', exchange: 'logs', user: 'b' }, 10, 0, 0).retryAfterMs).toBe(0)
    // A publish with no user is not this rule's to limit.
    expect(per.check({ listener: 'syslog', exchange: 'logs' }, 1000, 0, 0).retryAfterMs).toBe(0)
    expect(per.sourceCounts()).toEqual(new Map([['rateLimits[0]', 2]]))

    const shared = limiter('  - { events: 10/s, burst: 10 }\n')
    expect(shared.check({ listener: 'http', exchange: 'logs', user: 'a' }, 10, 0, 0).retryAfterMs).toBe(0)
    expect(shared.check({ listener: 'http', exchange: 'logs', user: 'b' }, 1, 0, 0).retryAfterMs).toBe(100)
    expect(shared.sourceCounts()).toEqual(new Map())
  })

  it('per: remote keys an IPv4-mapped address as its IPv4 form; per: apiKey skips publishes without a key', () => {
    const rl = limiter('  - { per: remote, events: 5/s, burst: 5 }\n')
    expect(rl.check({ listener: 'ndjson', exchange: 'logs', remote: '::ffff:10.0.0.1' }, 5, 0, 0).retryAfterMs).toBe(0)
    expect(rl.check({ listener: 'ndjson', exchange: 'logs', remote: '10.0.0.1' }, 1, 0, 0).retryAfterMs).toBe(200)
    expect(rl.check({ listener: 'ndjson', exchange: 'logs', remote: '10.0.0.2' }, 5, 0, 0).retryAfterMs).toBe(0)
    const keys = limiter('  - { per: apiKey, events: 5/s, burst: 5 }\n')
    expect(keys.check({ listener: 'http', exchange: 'logs', user: 'a' }, 100, 0, 0).retryAfterMs).toBe(0)
    expect(keys.check({ listener: 'http', exchange: 'logs', apiKey: 'fleet' }, 5, 0, 0).retryAfterMs).toBe(0)
    expect(keys.check({ listener: 'http', exchange: 'logs', apiKey: 'fleet' }, 1, 0, 0).retryAfterMs).toBe(200)
    expect(keys.check({ listener: 'http', exchange: 'logs', apiKey: 'other' }, 5, 0, 0).retryAfterMs).toBe(0)
  })

  it('holds at most maxSources, forgets the least recently used first, and counts it', () => {
    const rl = limiter('  - { per: remote, events: 1/s, burst: 1, maxSources: 3 }\n')
    const from = (remote: string, now = 0): number => rl.check({ listener: 'http', exchange: 'logs', remote }, 1, 0, now).retryAfterMs
    const before = limitHits.get('rateLimits.maxSources') ?? 0
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) expect(from(a)).toBe(0)
    expect(from('10.0.0.1')).toBeGreaterThan(0) // used: now the most recent
    expect(from('10.0.0.4')).toBe(0) // evicts 10.0.0.2, the least recently used
    expect(from('10.0.0.1')).toBeGreaterThan(0) // still held, still empty
    expect(from('10.0.0.2')).toBe(0) // forgotten: a fresh, full bucket (evicts 10.0.0.3)
    expect(rl.sourceCounts().get('rateLimits[0]')).toBe(3)
    expect(rl.evictedByRule.get('rateLimits[0]')).toBe(2)
    expect((limitHits.get('rateLimits.maxSources') ?? 0) - before).toBe(2)
  })

  it('match.user picks the users a rule applies to', () => {
    const rl = limiter('  - { match: { user: a }, events: 1/s, burst: 1 }\n')
    expect(rl.check({ listener: 'amqp', exchange: 'logs', user: 'a' }, 1, 0, 0).retryAfterMs).toBe(0)
    expect(rl.check({ listener: 'amqp', exchange: 'logs', user: 'a' }, 1, 0, 0).retryAfterMs).toBeGreaterThan(0)
    expect(rl.check({ listener: 'amqp', exchange: 'logs', user: 'b' }, 50, 0, 0).retryAfterMs).toBe(0)
  })
})

describe('rate limits per source (a real server)', () => {
  it('per: user: two HTTP users each get their own bucket; one throttled does not throttle the other', async () => {
    const auth = `
auth:
  anonymous: none
  users:
    - { username: admin, password: admin-pw, tags: [administrator] }
    - { username: alice, password: alice-pw, permissions: { write: "^logs$" } }
    - { username: bob, password: bob-pw, permissions: { write: "^logs$" } }
`
    const s = await startTestServer({ pipeline: `${pipeline}\nrateLimits:\n  - { match: { exchange: logs }, per: user, events: 10/s, burst: 20 }\n`, server: auth })
    const batch = (who: string, n: number): Array<Record<string, unknown>> => Array.from({ length: n }, (_, i) => ({ service: who, level: 'info', i }))
    expect((await postNdjson(s.url, 'logs', batch('alice', 20), basic('alice', 'alice-pw'))).status).toBe(200)
    const refused = await postNdjson(s.url, 'logs', batch('alice', 5), basic('alice', 'alice-pw'))
    expect(refused.status).toBe(429)
    expect(((await refused.json()) as { error: { details: { rule: string } } }).error.details.rule).toBe('rateLimits[0]')
    // Bob's bucket is his own and full.
    expect((await postNdjson(s.url, 'logs', batch('bob', 20), basic('bob', 'bob-pw'))).status).toBe(200)
    expect((await postNdjson(s.url, 'logs', batch('bob', 5), basic('bob', 'bob-pw'))).status).toBe(429)
    expect(await metric(s.url, 'sluice_rate_limit_sources', 'rule="rateLimits\\[0\\]"', basic('admin', 'admin-pw'))).toBe(2)
  })

  it('per: remote: many client addresses stay bounded by maxSources, the evictions counted', async () => {
    const s = await startTestServer({ pipeline: `${pipeline}\nrateLimits:\n  - { per: remote, events: 1/s, burst: 2, maxSources: 8 }\n` })
    const line = `${JSON.stringify({ service: 'web', level: 'info' })}\n`
    // Each of 20 addresses spends its own burst; a third publish from one is refused.
    for (let i = 1; i <= 20; i++) {
      expect(await publishFrom(s.url, `127.0.0.${i}`, line + line)).toBe(200)
    }
    expect(await publishFrom(s.url, '127.0.0.20', line)).toBe(429)
    expect(await metric(s.url, 'sluice_rate_limit_sources', 'rule="rateLimits\\[0\\]"')).toBe(8)
    expect(await metric(s.url, 'sluice_rate_limit_evictions_total', 'rule="rateLimits\\[0\\]"')).toBe(12)
    // 127.0.0.1 was forgotten long ago: it starts again with a full bucket.
    expect(await publishFrom(s.url, '127.0.0.1', line + line)).toBe(200)
    expect(await metric(s.url, 'sluice_rate_limit_evictions_total', 'rule="rateLimits\\[0\\]"')).toBe(13)
  })

  it('per: user on a stream door: the listener user is the source', async () => {
    const auth = `
auth:
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
`
    const s = await startTestServer({ pipeline: `${pipeline}\nrateLimits:\n  - { match: { user: shipper }, per: user, events: 1000/s, burst: 1000 }\n`, server: auth, ndjson: '{ port: 0, exchange: logs, user: shipper }' })
    const port = s.server.listeners.find((l) => l.options.name === 'ndjson')!.port
    const socket = connect({ host: '127.0.0.1', port })
    await new Promise<void>((r) => socket.once('connect', () => r()))
    socket.end(`${JSON.stringify({ service: 'web', level: 'info' })}\n`)
    for (let i = 0; i < 100 && (await metric(s.url, 'sluice_rate_limit_sources', 'rule="rateLimits\\[0\\]"')) !== 1; i++) await sleep(20)
    expect(await metric(s.url, 'sluice_rate_limit_sources', 'rule="rateLimits\\[0\\]"')).toBe(1)
  })
})
