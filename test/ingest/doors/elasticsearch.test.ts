import { Client } from '@elastic/elasticsearch'
import { Client as Client8 } from 'es8'
import { describe, expect, it } from 'vitest'
import { startTestServer, testPipeline } from '../../helpers/server.js'
import { readAll, startDoors, waitForEvents } from './helpers.js'

const documents = 10_000

interface Doc {
  n: number
  '@timestamp': string
  message: string
  http: { status: number }
}

const doc = (n: number): Doc => ({ n, '@timestamp': new Date(1_700_000_000_000 + n).toISOString(), message: `GET /item/${n} é ✓`, http: { status: 200 + (n % 3) } })

function checkOnce(events: ReadonlyArray<{ routingKey: string; id: string | null; body: Doc }>, index: string, ids: boolean): void {
  expect(events).toHaveLength(documents)
  const seen = new Set<number>()
  for (const e of events) {
    expect(seen.has(e.body.n)).toBe(false)
    seen.add(e.body.n)
    expect(e.body).toEqual(doc(e.body.n))
    expect(e.routingKey).toBe(index)
    expect(e.id).toBe(ids ? `d${e.body.n}` : null)
  }
  expect(seen.size).toBe(documents)
}

describe('Elasticsearch door: the official clients', () => {
  it('@elastic/elasticsearch 9: the handshake, then helpers.bulk of 10,000 documents, each stored once', async () => {
    const s = await startDoors()
    const client = new Client({ node: s.url })
    const info = await client.info()
    expect(info.tagline).toBe('You Know, for Search')
    expect(info.version.number).toMatch(/^8\./)
    const stats = await client.helpers.bulk<Doc>({
      datasource: Array.from({ length: documents }, (_, n) => doc(n)),
      onDocument: (d) => ({ create: { _index: 'web-logs', _id: `d${d.n}` } }),
      flushBytes: 500_000,
    })
    expect(stats).toMatchObject({ total: documents, successful: documents, failed: 0, retry: 0 })
    checkOnce(await readAll<Doc>(s.url, 'app-logs'), 'web-logs', true)
    await client.close()
  })

  it('@elastic/elasticsearch 8 (es8): helpers.bulk of 10,000 documents to /{index}/_bulk-style index actions, each stored once', async () => {
    const s = await startDoors()
    const client = new Client8({ node: s.url })
    expect((await client.info()).cluster_name).toBe('sluice')
    const stats = await client.helpers.bulk<Doc>({ datasource: Array.from({ length: documents }, (_, n) => doc(n)), onDocument: () => ({ index: { _index: 'api' } }) })
    expect(stats).toMatchObject({ total: documents, successful: documents, failed: 0, retry: 0 })
    checkOnce(await readAll<Doc>(s.url, 'app-logs'), 'api', false)
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain(`sluice_ingest_events_total{listener="elasticsearch",exchange="logs"} ${documents}`)
    await client.close()
  })
})

const bulk = (url: string, lines: ReadonlyArray<unknown>, path = '/_bulk', type = 'application/x-ndjson'): Promise<Response> =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body: lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n' })

interface Item {
  _index: string
  _id: string
  status: number
  result?: string
  error?: { type: string; reason: string }
}
type Answer = { took: number; errors: boolean; items: Array<Record<string, Item>> }

describe('Elasticsearch door: _bulk, item by item', () => {
  it('stores index and create, refuses update and delete by name, answers a repeated _id as Elasticsearch would', async () => {
    const s = await startDoors()
    const res = await bulk(
      s.url,
      [
        { index: { _index: 'a', _id: '1' } },
        { msg: 'one' },
        { create: { _id: '2' } },
        { msg: 'two' },
        { update: { _index: 'a', _id: '1' } },
        { doc: { msg: 'changed' } },
        { delete: { _index: 'a', _id: '2' } },
        '',
        { index: { _index: 'a', _type: 'events', pipeline: null, attempts: 0 } },
        { msg: 'three' },
      ],
      '/b/_bulk',
      'application/json; charset=utf-8',
    )
    expect(res.status).toBe(200)
    expect(res.headers.get('x-elastic-product')).toBe('Elasticsearch')
    const answer = (await res.json()) as Answer
    expect(answer.errors).toBe(true)
    expect(answer.items.map((i) => Object.keys(i)[0])).toEqual(['index', 'create', 'update', 'delete', 'index'])
    const items = answer.items.map((i) => Object.values(i)[0]!)
    expect(items.map((i) => [i._index, i.status, i.result ?? i.error!.type])).toEqual([
      ['a', 201, 'created'],
      ['b', 201, 'created'],
      ['a', 400, 'illegal_argument_exception'],
      ['a', 400, 'illegal_argument_exception'],
      ['a', 201, 'created'],
    ])
    expect(items[2]!.error!.reason).toContain('update action is not supported')
    expect(items[4]!._id).toMatch(/^[\w-]{20}$/)
    const stored = await readAll<{ msg: string }>(s.url, 'app-logs')
    expect(stored.map((e) => [e.routingKey, e.id, e.body.msg])).toEqual([
      ['a', '1', 'one'],
      ['b', '2', 'two'],
      ['a', null, 'three'],
    ])

    // Sent again: `create` finds the id taken (409), `index` stores nothing new (200 noop).
    const again = (await (await bulk(s.url, [{ create: { _index: 'a', _id: '1' } }, { msg: 'one' }, { index: { _index: 'b', _id: '2' } }, { msg: 'two' }], '/_bulk', 'application/vnd.elasticsearch+x-ndjson; compatible-with=9')).json()) as Answer
    expect(again.items.map((i) => Object.values(i)[0]!).map((i) => [i.status, i.result ?? i.error!.type])).toEqual([
      [409, 'version_conflict_engine_exception'],
      [200, 'noop'],
    ])
    expect(await readAll(s.url, 'app-logs')).toHaveLength(3)
  })

  it('a document that is not a JSON object fails its item and goes to ingest-errors; a malformed action line fails the request', async () => {
    const s = await startDoors()
    const answer = (await (await bulk(s.url, [{ index: { _index: 'x' } }, '{not json', { index: { _index: 'x' } }, '[1,2]', { index: {} }, { ok: 1 }, { index: { _index: 'x' } }, { ok: 2 }])).json()) as Answer
    expect(answer.items.map((i) => [i.index!.status, i.index!.error?.type])).toEqual([
      [400, 'document_parsing_exception'],
      [400, 'document_parsing_exception'],
      [400, 'action_request_validation_exception'],
      [201, undefined],
    ])
    expect((await readAll<{ ok: number }>(s.url, 'app-logs')).map((e) => e.body.ok)).toEqual([2])
    const kept = await waitForEvents<{ listener: string; raw: string; line: number }>(s.url, 'ingest-errors', 2)
    expect(kept.map((e) => [e.body.listener, e.body.raw, e.body.line])).toEqual([
      ['elasticsearch', '{not json', 2],
      ['elasticsearch', '[1,2]', 4],
    ])

    const bad = await bulk(s.url, [{ index: { _index: 'x' } }, { ok: 1 }, { frobnicate: {} }, { ok: 2 }])
    expect(bad.status).toBe(400)
    expect(bad.headers.get('x-elastic-product')).toBe('Elasticsearch')
    expect(await bad.json()).toEqual({ error: { root_cause: [{ type: 'bad_request', reason: expect.stringContaining('Malformed action/metadata line [3]') }], type: 'bad_request', reason: expect.any(String) }, status: 400 })
    expect(await readAll(s.url, 'app-logs')).toHaveLength(1)
    expect(await waitForEvents(s.url, 'ingest-errors', 3)).toHaveLength(3)
    expect((await bulk(s.url, [{ index: { _index: 'x' } }, { ok: 1 }], '/_bulk', 'text/csv')).status).toBe(415)
  })

  it('over a rate limit, what the bucket holds is stored and the rest is 429 item by item', async () => {
    const s = await startDoors({ pipeline: `${testPipeline}\nrateLimits:\n  - { match: { listener: http }, events: 1/s, burst: 3 }\n` })
    const lines = Array.from({ length: 5 }, (_, n) => [{ index: { _index: 'r' } }, { n }]).flat()
    const answer = (await (await bulk(s.url, lines)).json()) as Answer
    expect(answer.errors).toBe(true)
    expect(answer.items.map((i) => i.index!.status)).toEqual([201, 201, 201, 429, 429])
    expect(answer.items[3]!.index!.error!.type).toBe('es_rejected_execution_exception')
    expect((await readAll<{ n: number }>(s.url, 'app-logs')).map((e) => e.body.n)).toEqual([0, 1, 2])
  })

  it('under a resource alarm every item is a 429, and nothing is stored', async () => {
    const s = await startDoors()
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 })
    const res = await bulk(s.url, [{ index: { _index: 'r' } }, { n: 1 }, { create: { _index: 'r', _id: 'x' } }, { n: 2 }])
    expect(res.status).toBe(200)
    const answer = (await res.json()) as Answer
    expect(answer.items.map((i) => [Object.values(i)[0]!.status, Object.values(i)[0]!.error?.type])).toEqual([
      [429, 'es_rejected_execution_exception'],
      [429, 'es_rejected_execution_exception'],
    ])
    expect(await readAll(s.url, 'app-logs')).toEqual([])
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    expect(((await (await bulk(s.url, [{ create: { _index: 'r', _id: 'x' } }, { n: 2 }])).json()) as Answer).errors).toBe(false)
  })
})

describe('Elasticsearch door: what agents ask before they bulk', () => {
  it('answers the handshake and the probes, each with the product header', async () => {
    const s = await startDoors()
    const root = await fetch(s.url, { headers: { accept: 'application/json' } })
    expect(root.status).toBe(200)
    expect(root.headers.get('x-elastic-product')).toBe('Elasticsearch')
    expect(await root.json()).toMatchObject({ cluster_name: 'sluice', version: { number: expect.stringMatching(/^8\.\d+\.\d+$/), build_flavor: 'default' }, tagline: 'You Know, for Search' })
    expect((await fetch(s.url, { method: 'HEAD' })).status).toBe(200)
    expect(await (await fetch(`${s.url}/_license`)).json()).toMatchObject({ license: { status: 'active', type: 'basic' } })
    expect(await (await fetch(`${s.url}/_xpack`)).json()).toMatchObject({ features: { ilm: { available: false } } })
    expect(await (await fetch(`${s.url}/_cluster/health`)).json()).toMatchObject({ status: 'green' })
    const template = await fetch(`${s.url}/_index_template/logs`)
    expect(template.status).toBe(404)
    expect(template.headers.get('x-elastic-product')).toBe('Elasticsearch')
    expect(await template.json()).toMatchObject({ error: { type: 'resource_not_found_exception' }, status: 404 })
    expect((await fetch(`${s.url}/_index_template/logs`, { method: 'HEAD' })).status).toBe(404)
    const put = await fetch(`${s.url}/_index_template/logs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"index_patterns":["logs-*"]}' })
    expect([put.status, await put.json()]).toEqual([200, { acknowledged: true }])
    expect((await fetch(`${s.url}/_template/logs`)).status).toBe(404)
    expect((await fetch(`${s.url}/any-index`, { method: 'HEAD' })).status).toBe(200)
  })

  it('a door that is off answers 404 on every path, the handshake included', async () => {
    const s = await startTestServer()
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/_license'],
      ['HEAD', '/some-index'],
      ['POST', '/_bulk'],
    ] as const) {
      const res = await fetch(`${s.url}${path}`, { method, ...(method === 'POST' ? { headers: { 'content-type': 'application/x-ndjson' }, body: '{"index":{"_index":"x"}}\n{}\n' } : {}) })
      expect(res.status).toBe(404)
    }
  })
})
