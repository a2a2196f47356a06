import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { decodeJson, decodeNdjson } from '../../../src/ingest/http/decode.js'
import { limitHits } from '../../../src/limits.js'
import { postNdjson, readStream, startTestServer } from '../../helpers/server.js'
import type { WireError } from './util.js'

const publishUrl = (url: string, query = ''): string => `${url}/v1/exchanges/logs/publish${query}`
const ev = (i: number) => ({ service: 'api', level: 'info', i })

async function post(url: string, body: string | Buffer, type: string, extra: Record<string, string> = {}): Promise<{ status: number; body: WireError & { accepted?: number } }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': type, ...extra }, body })
  return { status: res.status, body: (await res.json()) as WireError & { accepted?: number } }
}

/** "[[[…0…]]]" nested `depth` deep. */
const nested = (depth: number): string => '['.repeat(depth) + '0' + ']'.repeat(depth)

describe('work per request is bounded', () => {
  it('2 MB of "1\\n" (a million events) is refused with 413 too_many_events, at once', async () => {
    const { url } = await startTestServer()
    const started = Date.now()
    const res = await post(publishUrl(url), '1\n'.repeat(1024 * 1024), 'application/x-ndjson')
    expect(res.status).toBe(413)
    expect(res.body.error).toMatchObject({ code: 'too_many_events', details: { limit: 'maxEventsPerRequest', limitEvents: 10_000 } })
    expect(res.body.error.message).toMatch(/maxEventsPerRequest/)
    expect(Date.now() - started).toBeLessThan(3000)
    // The same as a JSON array, counted before it is parsed.
    const arr = await post(publishUrl(url), `[${'1,'.repeat(1024 * 1024)}1]`, 'application/json')
    expect(arr.status).toBe(413)
    expect(arr.body.error.code).toBe('too_many_events')
    expect(Date.now() - started).toBeLessThan(5000)
    expect((await readStream(url, 'app-logs')).events).toEqual([])
  })

  it('exactly maxEventsPerRequest events are taken; one more is refused whole', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxEventsPerRequest: 100 }' })
    const lines = Array.from({ length: 100 }, (_, i) => ev(i))
    expect(await (await postNdjson(url, 'logs', lines)).json()).toEqual({ accepted: 100, duplicates: 0, unroutable: 0 })
    // Blank lines are not events.
    const withBlanks = await postNdjson(url, 'logs', [...lines.slice(0, 50), '', ' ', ...lines.slice(50)])
    expect(withBlanks.status).toBe(200)
    const over = await postNdjson(url, 'logs', [...lines, ev(100)])
    expect(over.status).toBe(413)
    expect(((await over.json()) as WireError).error.code).toBe('too_many_events')
    const arr = await post(publishUrl(url), JSON.stringify([...lines, ev(100)]), 'application/json')
    expect(arr.body.error.code).toBe('too_many_events')
    expect((await readStream(url, 'app-logs')).events).toHaveLength(200)
  })

  it('gzip bombs: decompression stops at maxBodySize, and a bomb of tiny events is refused by count, quickly, in bounded memory', async () => {
    const { url } = await startTestServer()
    // 100 MB of spaces in about 100 KB: decompression stops past maxBodySize (16 MB).
    const wide = gzipSync(Buffer.alloc(100 * 1024 * 1024, 0x20), { level: 9 })
    // Just under 16 MB of "1\n" in about 16 KB: 8 million events, as the probe sent.
    const tiny = gzipSync(Buffer.from('1\n'.repeat(8 * 1024 * 1024 - 1024)), { level: 9 })
    expect(tiny.length).toBeLessThan(32 * 1024)
    const rssBefore = process.memoryUsage.rss()
    const started = Date.now()
    for (let i = 0; i < 3; i++) {
      const w = await post(publishUrl(url), wide, 'application/x-ndjson', { 'content-encoding': 'gzip' })
      expect(w.status).toBe(413)
      expect(w.body.error.code).toBe('body_too_large')
      const t = await post(publishUrl(url), tiny, 'application/x-ndjson', { 'content-encoding': 'gzip' })
      expect(t.status).toBe(413)
      expect(t.body.error.code).toBe('too_many_events')
    }
    expect(Date.now() - started).toBeLessThan(10_000)
    // Eight million events held as objects would take gigabytes; the body itself is 16 MB.
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(256 * 1024 * 1024)
    expect((await readStream(url, 'app-logs')).events).toEqual([])
  }, 60_000)

  it('a large request does not starve the others: small publishes are answered while it is decoded', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxBodySize: 32mb, maxEventsPerRequest: 10000, maxEventSize: 8kb }' })
    // 10,000 events of about 2.5 KB: 25 MB to parse and route.
    const pad = 'x'.repeat(2500)
    const big = Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ service: 'bulk', level: 'info', i, pad })).join('\n')
    let bigDone = 0
    const bigRequest = post(publishUrl(url), big, 'application/x-ndjson').then((r) => {
      bigDone = Date.now()
      return r
    })
    const smallAnswered: number[] = []
    await new Promise((r) => setTimeout(r, 20))
    for (let i = 0; i < 5; i++) {
      const r = await postNdjson(url, 'logs', [ev(i)])
      expect(r.status).toBe(200)
      smallAnswered.push(Date.now())
    }
    const b = await bigRequest
    expect(b.status).toBe(200)
    expect(b.body.accepted).toBe(10_000)
    // At least some small publishes finished before the big one did.
    expect(smallAnswered.filter((t) => t < bigDone).length).toBeGreaterThan(0)
  }, 60_000)
})

describe('decoding yields to the event loop', () => {
  it('a 16 MB NDJSON body and a 16 MB JSON array are decoded in slices, with timers running between them', async () => {
    const pad = 'x'.repeat(1600)
    const lines = Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ i, pad }))
    const opts = { envelope: false, maxEventBytes: 1 << 20, maxEvents: 10_000, maxDepth: 64, routingKey: 'k', headers: undefined }
    for (const [name, run] of [
      ['ndjson', () => decodeNdjson(Buffer.from(lines.join('\n')), opts)],
      ['json', () => decodeJson(Buffer.from(`[${lines.join(',')}]`), opts)],
    ] as const) {
      let ticks = 0
      const ticker = setInterval(() => ticks++, 0)
      const events = await run()
      clearInterval(ticker)
      expect(events, name).toHaveLength(10_000)
      expect(events[9999]!.value, name).toEqual({ i: 9999, pad })
      // 16 MB in 256 KB slices: dozens of turns of the loop, where one synchronous pass gives none.
      expect(ticks, name).toBeGreaterThan(10)
    }
  })
})

describe('deeply nested events are refused with 400 bad_event', () => {
  it('100,000 levels: application/json, NDJSON and envelopes name the line or event; nothing is stored', async () => {
    const { url } = await startTestServer()
    const deep = nested(100_000)
    const json = await post(publishUrl(url), deep, 'application/json')
    expect(json.status).toBe(400)
    expect(json.body.error).toMatchObject({ code: 'bad_event', details: { event: 1 } })
    expect(json.body.error.message).toMatch(/maxEventDepth/)
    const arr = await post(publishUrl(url), `[${JSON.stringify(ev(1))},${deep}]`, 'application/json')
    expect(arr.body.error).toMatchObject({ code: 'bad_event', details: { event: 2 } })
    const ndjson = await post(publishUrl(url), `${JSON.stringify(ev(1))}\n${JSON.stringify(ev(2))}\n${deep}\n`, 'application/x-ndjson')
    expect(ndjson.body.error).toMatchObject({ code: 'bad_event', details: { line: 3 } })
    const envelope = await post(publishUrl(url, '?envelope=true'), `{"body":1}\n{"body":${deep}}`, 'application/x-ndjson')
    expect(envelope.status).toBe(400)
    expect(envelope.body.error).toMatchObject({ code: 'bad_event', details: { line: 2 } })
    const envelopeJson = await post(publishUrl(url, '?envelope=true'), `[{"body":${deep}}]`, 'application/json')
    expect(envelopeJson.body.error).toMatchObject({ code: 'bad_event', details: { event: 1 } })
    expect((await readStream(url, 'app-logs')).events).toEqual([])
    expect(limitHits.get('limits.maxEventDepth')).toBeGreaterThanOrEqual(5)
  })

  it('maxEventDepth levels pass, one more is refused, in every mode', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxEventDepth: 8 }' })
    const ok = `{"a":${nested(7)}}` // 8 levels: the object and 7 arrays
    const tooDeep = `{"a":${nested(8)}}`
    expect((await post(publishUrl(url, '?routingKey=x'), ok, 'application/json')).status).toBe(200)
    expect((await post(publishUrl(url, '?routingKey=x'), ok, 'application/x-ndjson')).status).toBe(200)
    expect((await post(publishUrl(url, '?routingKey=x&envelope=true'), `{"body":${ok}}`, 'application/x-ndjson')).status).toBe(200)
    expect((await post(publishUrl(url, '?routingKey=x'), tooDeep, 'application/json')).body.error.code).toBe('bad_event')
    expect((await post(publishUrl(url, '?routingKey=x'), tooDeep, 'application/x-ndjson')).body.error.code).toBe('bad_event')
    expect((await post(publishUrl(url, '?routingKey=x&envelope=true'), `{"body":${tooDeep}}`, 'application/x-ndjson')).body.error.code).toBe('bad_event')
    expect((await readStream(url, 'app-logs')).events.map((e) => e.body)).toEqual([JSON.parse(ok), JSON.parse(ok), JSON.parse(ok)])
  })
})

describe('invalid UTF-8 is refused, not stored as U+FFFD', () => {
  it('names the NDJSON line and the JSON text line; valid multi-byte text passes untouched', async () => {
    const { url } = await startTestServer()
    const good = Buffer.from(`${JSON.stringify({ service: 'api', level: 'info', msg: 'héllo €𝄞' })}\n`)
    const bad = Buffer.concat([Buffer.from('{"service":"api","level":"info","msg":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')])
    const res = await post(publishUrl(url), Buffer.concat([good, good, bad, good]), 'application/x-ndjson')
    expect(res.status).toBe(400)
    expect(res.body.error).toMatchObject({ code: 'bad_event', details: { line: 3 } })
    expect(res.body.error.message).toMatch(/UTF-8/)
    // A lone surrogate (CESU-8) and a truncated sequence are not UTF-8 either.
    for (const bytes of [[0xed, 0xa0, 0x80], [0xe2, 0x82], [0xc0, 0xaf]]) {
      const body = Buffer.concat([Buffer.from('{"msg":"'), Buffer.from(bytes), Buffer.from('"}')])
      const r = await post(publishUrl(url, '?routingKey=a'), body, 'application/x-ndjson')
      expect(r.body.error).toMatchObject({ code: 'bad_event', details: { line: 1 } })
    }
    const json = await post(publishUrl(url), Buffer.concat([Buffer.from('[\n{"a":1},\n{"b":"'), Buffer.from([0xc3]), Buffer.from('"}\n]')]), 'application/json')
    expect(json.body.error).toMatchObject({ code: 'bad_event', details: { line: 3 } })
    const envelope = await post(publishUrl(url, '?envelope=true'), Buffer.concat([Buffer.from('{"body":"'), Buffer.from([0x80]), Buffer.from('"}')]), 'application/x-ndjson')
    expect(envelope.body.error.code).toBe('bad_event')
    expect((await readStream(url, 'app-logs')).events).toEqual([])
    expect((await post(publishUrl(url), good, 'application/x-ndjson')).status).toBe(200)
    expect((await readStream(url, 'app-logs')).events.map((e) => (e.body as { msg: string }).msg)).toEqual(['héllo €𝄞'])
  })
})
