// The /v1 routes the management UI added (docs/http-api.md), and the rule that shares `GET /`
// between the UI and the Elasticsearch handshake, over real sockets.

import { spawnSync } from 'node:child_process'
import { readdir, readFile, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { beforeAll, describe, expect, it } from 'vitest'
import { call } from '../helpers/consume.js'
import { startTestServer, testConfig } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'
import { seededServer, type Seeded } from './seed.js'
import { limitHits } from '../../src/limits.js'

const root = new URL('../../', import.meta.url).pathname
let seeded: Seeded

beforeAll(async () => {
  // The UI files the server serves come from `npm run build`; build them if a test run has none.
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-ui.mjs')], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  seeded = await seededServer()
})

describe('the UI files', () => {
  it('fit the budget: 250 KB gzipped for the whole UI', async () => {
    const dir = await tempDir()
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-ui.mjs'), '--outdir', dir], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    let total = 0
    for (const f of await readdir(dir)) total += gzipSync(await readFile(join(dir, f)), { level: 9 }).length
    expect(total).toBeGreaterThan(10_000)
    expect(total).toBeLessThanOrEqual(250 * 1024)
  })

  it('GET / from a browser is the UI; from an Elasticsearch client it is the handshake', async () => {
    const browser = await fetch(`${seeded.url}/`, { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } })
    expect(browser.status).toBe(200)
    expect(browser.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(browser.headers.get('content-security-policy')).toContain("default-src 'self'")
    const html = await browser.text()
    expect(html).toContain('<script type="module" src="/ui/app.js"></script>')
    // Nothing from another host: no CDN, no web fonts.
    expect(html).not.toMatch(/https?:\/\//)
    const js = await fetch(`${seeded.url}/ui/app.js`)
    expect(js.status).toBe(200)
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(await js.text()).not.toMatch(/https?:\/\/(fonts|cdn|unpkg|jsdelivr)/)
    expect((await fetch(`${seeded.url}/ui/app.css`)).status).toBe(200)
    expect((await fetch(`${seeded.url}/ui/nothing.js`)).status).toBe(404)
    expect((await fetch(`${seeded.url}/ui/..%2Fpackage.json`)).status).toBe(404)
    // The Elasticsearch door is off in this pipeline: its handshake answers 404 in its own shape.
    const es = await fetch(`${seeded.url}/`, { headers: { accept: 'application/vnd.elasticsearch+json; compatible-with=8' } })
    expect(es.status).toBe(404)
    expect(es.headers.get('x-elastic-product')).toBe('Elasticsearch')
  })

  it('GET / with the Elasticsearch door on: the handshake for its clients, the UI for browsers', async () => {
    const s = await startTestServer({ server: '  elasticsearch: { exchange: logs }' })
    const es = await fetch(`${s.url}/`, { headers: { accept: 'application/json' } })
    expect(es.status).toBe(200)
    expect(((await es.json()) as { tagline?: string }).tagline).toBe('You Know, for Search')
    const curl = await fetch(`${s.url}/`, { headers: { accept: '*/*' } })
    expect(curl.headers.get('x-elastic-product')).toBe('Elasticsearch')
    const browser = await fetch(`${s.url}/`, { headers: { accept: 'text/html' } })
    expect(browser.headers.get('content-type')).toBe('text/html; charset=utf-8')
  })

  it('server.http.ui: false leaves GET / to the door', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, ui: false }' })
    expect((await fetch(`${s.url}/`, { headers: { accept: 'text/html' } })).headers.get('content-type')).not.toContain('text/html')
    expect((await fetch(`${s.url}/ui/app.js`)).status).toBe(404)
  })
})

describe('the routes the UI uses', () => {
  it('GET /v1/whoami names the anonymous loopback guest', async () => {
    const r = await call<{ username: string; tags: string[]; method: string }>(seeded.url, 'GET', '/v1/whoami')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ username: 'guest', tags: ['administrator'], method: 'anonymous' })
  })

  it('POST /v1/exchanges/{exchange}/route answers where an event would go and stores nothing', async () => {
    const before = (await call<{ events: number }>(seeded.url, 'GET', '/v1/overview')).body.events
    const byTemplate = await call(seeded.url, 'POST', '/v1/exchanges/logs/route', { body: { service: 'api', level: 'error' } })
    expect(byTemplate).toEqual({ status: 200, body: { exchange: 'logs', routingKey: 'api.error', streams: ['app-logs', 'errors'], unroutable: false } })
    const byKey = await call(seeded.url, 'POST', '/v1/exchanges/bulk/route', { routingKey: 'nowhere' })
    expect(byKey.body).toEqual({ exchange: 'bulk', routingKey: 'nowhere', streams: [], unroutable: true, policy: 'drop' })
    expect((await call(seeded.url, 'POST', '/v1/exchanges/nope/route', {})).status).toBe(404)
    expect((await call(seeded.url, 'POST', '/v1/exchanges/logs/route', { key: 'x' })).status).toBe(400)
    expect((await call<{ events: number }>(seeded.url, 'GET', '/v1/overview')).body.events).toBe(before)
  })

  it('GET /v1/streams/{stream}/search filters by key pattern and text, and pages', async () => {
    const r = await call<{ events: Array<{ offset: number; routingKey: string }>; nextOffset: number; complete: boolean; scanned: number }>(seeded.url, 'GET', '/v1/streams/app-logs/search?key=*.error&limit=2')
    expect(r.body.events.map((e) => e.routingKey)).toEqual(['web.error', 'web.error'])
    expect(r.body.events.map((e) => e.offset)).toEqual([5, 11])
    expect(r.body.nextOffset).toBe(12)
    const next = await call<{ events: Array<{ offset: number }>; complete: boolean }>(seeded.url, 'GET', `/v1/streams/app-logs/search?key=*.error&limit=10&from=${r.body.nextOffset}`)
    expect(next.body.events.map((e) => e.offset)).toEqual([17, 23, 29])
    expect(next.body.complete).toBe(true)
    const text = await call<{ events: Array<{ body: { n: number } }> }>(seeded.url, 'GET', '/v1/streams/big/search?q=BULK%20EVENT%209999')
    expect(text.body.events.map((e) => e.body.n)).toEqual([9999])
    const hash = await call<{ events: unknown[] }>(seeded.url, 'GET', '/v1/streams/app-logs/search?key=api.%23&limit=100')
    expect(hash.body.events).toHaveLength(15)
  })

  it('GET /v1/streams/{stream}/search stops at server.http.maxScanEvents and says where', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, maxScanEvents: 100 }' })
    await fetch(`${s.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: Array.from({ length: 250 }, (_, i) => JSON.stringify({ service: 'a', level: 'info', n: i })).join('\n') })
    const before = limitHits.get('http.maxScanEvents') ?? 0
    const r = await call<{ events: unknown[]; scanned: number; nextOffset: number; complete: boolean }>(s.url, 'GET', '/v1/streams/app-logs/search?q=nothing-matches')
    expect(r.body).toMatchObject({ events: [], scanned: 100, nextOffset: 100, complete: false })
    expect(limitHits.get('http.maxScanEvents')).toBe(before + 1)
  })

  it('GET /v1/streams/{stream}/dead-letters counts by reason and origin what a redrive would send', async () => {
    const r = await call<{ matching: number; byReason: Record<string, number>; byOrigin: Array<{ group: string; exchange: string | null; count: number }>; complete: boolean }>(seeded.url, 'GET', '/v1/streams/dlq/dead-letters')
    expect(r.status).toBe(200)
    expect(r.body.byReason).toEqual({ rejected: 2, delivery_limit: 1, maxlen: 2, expired: 2 })
    expect(r.body.matching).toBe(7)
    expect(r.body.complete).toBe(true)
    expect(r.body.byOrigin.map((o) => [o.group, o.exchange, o.count]).sort()).toEqual([
      ['alerts', 'logs', 2],
      ['expiring', 'bulk', 2],
      ['indexer', 'logs', 3],
    ])
    const rejected = await call<{ matching: number }>(seeded.url, 'GET', '/v1/streams/dlq/dead-letters?reason=rejected')
    expect(rejected.body.matching).toBe(2)
  })

  it("GET /v1/overview has the data dir's disk: free, size and the alarm's limit", async () => {
    const o = await call<{ dataDir: string; disk: { freeBytes: number; totalBytes: number; limitBytes: number } }>(seeded.url, 'GET', '/v1/overview')
    const fs = await statfs(o.body.dataDir)
    expect(o.body.disk.totalBytes).toBe(fs.blocks * fs.bsize)
    // Others write to this disk too: the same figure, give or take what they wrote meanwhile.
    expect(Math.abs(o.body.disk.freeBytes - fs.bavail * fs.bsize)).toBeLessThan(256 * 1024 * 1024)
    expect(o.body.disk.limitBytes).toBe(testConfig(o.body.dataDir).server.alarms.diskFreeLimitBytes)
  })

  it('GET /v1/overview/rates keeps one sample a second', async () => {
    await new Promise((r) => setTimeout(r, 2200))
    const r = await call<{ intervalMs: number; times: number[]; ingest: number[]; delivered: number[]; totals: { ingest: number } }>(seeded.url, 'GET', '/v1/overview/rates')
    expect(r.body.intervalMs).toBe(1000)
    expect(r.body.times.length).toBeGreaterThanOrEqual(1)
    expect(r.body.ingest).toHaveLength(r.body.times.length)
    // 30 log records, 10,000 bulk events, 2 short-lived ones; dead letters are not counted as ingest.
    expect(r.body.totals.ingest).toBe(30 + 10_000 + 2)
  })

  it('GET /v1/groups/{group}/lag keeps the lag in events and seconds one sample a second', async () => {
    // The sampler runs once a second; on a loaded machine two samples can take longer than the
    // rate test's wait before this one, so wait for them (bounded) rather than assume them.
    type Lag = { tracked: boolean; intervalMs: number; times: number[]; backlog: number[]; lagSeconds: number[]; now: { backlog: number; lagSeconds: number } }
    // Samples taken while the seed was still settling saw other backlogs: only later ones count.
    const after = (l: Lag): number => l.times.filter((t) => t > seeded.settledAt).length
    let r = await call<Lag>(seeded.url, 'GET', '/v1/groups/indexer/lag')
    for (let i = 0; i < 100 && r.status === 200 && after(r.body) < 2; i++) {
      await new Promise((done) => setTimeout(done, 100))
      r = await call<Lag>(seeded.url, 'GET', '/v1/groups/indexer/lag')
    }
    expect(r.status).toBe(200)
    expect(r.body.tracked).toBe(true)
    expect(r.body.intervalMs).toBe(1000)
    expect(after(r.body)).toBeGreaterThanOrEqual(2)
    expect(r.body.backlog).toHaveLength(r.body.times.length)
    expect(r.body.lagSeconds).toHaveLength(r.body.times.length)
    const g = await call<{ backlog: number }>(seeded.url, 'GET', '/v1/groups/indexer')
    // Nothing consumes in this file: every sample since the seed settled is the backlog the group reports.
    expect(g.body.backlog).toBe(27)
    expect(new Set(r.body.backlog.slice(-after(r.body)))).toEqual(new Set([g.body.backlog]))
    expect(r.body.now.backlog).toBe(g.body.backlog)
    // The oldest unsettled event was published before the server's first sample, and ages.
    expect(r.body.lagSeconds.at(-1)!).toBeGreaterThan(r.body.lagSeconds[0]!)
    expect((await call(seeded.url, 'GET', '/v1/groups/nope/lag')).status).toBe(404)
  })

  it('GET /v1/groups/{group}/lag: past server.http.maxLagHistoryGroups a group is not charted, and that is counted', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, maxLagHistoryGroups: 1 }' })
    const before = limitHits.get('http.maxLagHistoryGroups') ?? 0
    expect((await call(s.url, 'PUT', '/v1/groups/first', { stream: 'app-logs' })).status).toBe(201)
    expect((await call(s.url, 'PUT', '/v1/groups/second', { stream: 'errors' })).status).toBe(201)
    await new Promise((r) => setTimeout(r, 2200))
    const first = await call<{ tracked: boolean; times: number[] }>(s.url, 'GET', '/v1/groups/first/lag')
    const second = await call<{ tracked: boolean; times: number[]; now: { backlog: number } }>(s.url, 'GET', '/v1/groups/second/lag')
    expect(first.body.tracked).toBe(true)
    expect(first.body.times.length).toBeGreaterThanOrEqual(1)
    expect(second.body).toMatchObject({ tracked: false, times: [], now: { backlog: 0 } })
    expect(limitHits.get('http.maxLagHistoryGroups')).toBe(before + 1)
  })

  it('GET /v1/streams/{stream}/tail sends new events as server-sent events, within server.http.maxLiveFeeds', async () => {
    const s = await startTestServer({ server: '  http: { port: 0, maxLiveFeeds: 1 }' })
    const ctl = new AbortController()
    const res = await fetch(`${s.url}/v1/streams/app-logs/tail`, { signal: ctl.signal })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const second = await fetch(`${s.url}/v1/streams/app-logs/tail`)
    expect(second.status).toBe(503)
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('too_many_connections')
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    const published = Date.now()
    await fetch(`${s.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ service: 'tail', level: 'info' }) })
    let text = ''
    while (!text.includes('event: event')) text += (await reader.read()).value ?? ''
    expect(Date.now() - published).toBeLessThan(1000)
    expect(text).toMatch(/id: 0\nevent: event\ndata: \{"offset":0,.*"routingKey":"tail.info"/)
    ctl.abort()
    // The place is given back once the client leaves.
    for (let i = 0; i < 50; i++) {
      const again = await fetch(`${s.url}/v1/streams/app-logs/tail`)
      if (again.status === 200) {
        await again.body?.cancel()
        return
      }
      await again.body?.cancel()
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error('the feed place was not given back')
  })
})
