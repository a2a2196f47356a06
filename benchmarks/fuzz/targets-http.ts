// Fuzz targets for the HTTP door's body handling: decodeJson and decodeNdjson (plain and envelope
// mode) from src/ingest/http/decode.ts, and gzip bodies through readBody (src/ingest/http/body.ts)
// and then the decoder, as a publish request goes.

import { PassThrough } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import { gzipSync } from 'node:zlib'
import { SluiceError } from '../../src/errors.js'
import { readBody } from '../../src/ingest/http/body.js'
import { decodeJson, decodeNdjson, type DecodeOptions } from '../../src/ingest/http/decode.js'
import type { PublishEvent } from '../../src/streams/publisher.js'
import { check, checkMessage, type FuzzTarget, mutate, type MutateOptions, randomChunks, Rng } from './engine.js'

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

const records = [
  { level: 30, time: 1764086192708, pid: 1436, hostname: 'vm', service: 'web', msg: 'GET /health 200 1ms' },
  { timestamp: '2026-11-25T15:56:32.708Z', level: 'error', service: 'api', message: 'upstream timed out', fields: { ms: 5003, retry: true } },
  { service: 'checkout', level: 'info', order: { id: 'A-1', items: [1, 2, 3], total: 12.5 }, tags: ['a', 'b'], none: null },
  { emoji: '💩', cjk: '日本語', escaped: 'tab\tquote"backslash\\', big: 123456789012345680000, small: -1e-7 },
  'a string event',
  42,
  [1, [2, [3, [4]]]],
]
const envelopes = [
  { body: records[0], routingKey: 'web.info', headers: { level: 'info', region: 'eu' }, id: 'evt-1', timestamp: 1764086192708 },
  { body: records[1], id: 7, timestamp: '2026-11-25T15:56:32.708Z' },
  { body: null },
  { body: 'text', headers: {} },
]

const jsonDictionary = ['{', '}', '[', ']', '"', '\\', ':', ',', '\n', '\r\n', ' ', '\t', 'true', 'null', '1e400', '-0', '"\\ud800"', '"\\u0000"', '{"body":', '"routingKey":', '"headers":', '"id":', '"timestamp":', '"__proto__":', '[[[[[[[[[[', ']]]]]]]]]]', '1\n'].map(b)

/** Header byte: maxEventBytes, maxEvents, and (where the target allows) envelope mode. */
function decodeOptions(flags: number, envelope: boolean): DecodeOptions {
  return {
    envelope,
    maxEventBytes: [64, 1024, 1024 * 1024][flags % 3]!,
    maxEvents: [1, 10, 10_000][(flags >> 2) % 3]!,
    maxDepth: [4, 64][(flags >> 4) & 1]!,
    routingKey: flags & 0x20 ? 'rk.from.request' : undefined,
    headers: flags & 0x40 ? { source: 'fuzz' } : undefined,
  }
}

const errorCodes = new Set(['SLUICE_ERR_BAD_EVENT', 'SLUICE_ERR_BAD_REQUEST', 'SLUICE_ERR_EVENT_TOO_LARGE', 'SLUICE_ERR_TOO_MANY_EVENTS', 'SLUICE_ERR_BODY_TOO_LARGE', 'SLUICE_ERR_REQUEST_TIMEOUT'])

function checkRefusal(err: unknown): string {
  check(err instanceof SluiceError, 'crash', () => `threw ${(err as Error)?.name}: ${String((err as Error)?.message ?? err).slice(0, 300)}`)
  const e = err as SluiceError
  check(errorCodes.has(e.code), 'wrong', () => `unexpected error code ${e.code}: ${e.message.slice(0, 200)}`)
  check(e.status === 400 || e.status === 413 || e.status === 408, 'wrong', () => `${e.code} with status ${e.status}`)
  checkMessage(e.message, e.code, 1024)
  // The answer is JSON: it must serialise (details may hold what the client sent).
  JSON.stringify(e.toJSON())
  return `refused ${e.wireCode}`
}

function checkEvents(events: readonly PublishEvent[], opts: DecodeOptions, inputBytes: number): string {
  check(events.length >= 1 && events.length <= opts.maxEvents, 'wrong', () => `${events.length} events, maxEvents ${opts.maxEvents}`)
  let total = 0
  for (const e of events) {
    check(Buffer.isBuffer(e.body) && e.body.length <= opts.maxEventBytes, 'memory', () => `event body of ${e.body.length} bytes, maxEventBytes ${opts.maxEventBytes}`)
    total += e.body.length
    try {
      JSON.parse(e.body.toString('utf8'))
    } catch {
      check(false, 'wrong', () => `stored body is not JSON: ${e.body.toString('utf8').slice(0, 100)}`)
    }
    check(e.routingKey === undefined || typeof e.routingKey === 'string', 'wrong', () => 'routing key is not a string')
    check(e.id === undefined || (typeof e.id === 'string' && e.id.length > 0 && e.id.isWellFormed()), 'wrong', () => `id ${JSON.stringify(e.id)}`)
    check(e.timestamp === undefined || (Number.isSafeInteger(e.timestamp) && e.timestamp >= 0), 'wrong', () => `timestamp ${e.timestamp}`)
  }
  check(total <= 3 * inputBytes + 16 * events.length, 'memory', () => `${total} bytes of events from a ${inputBytes}-byte body`)
  return opts.envelope ? 'accepted (envelopes)' : 'accepted'
}

async function decodeChecked(kind: 'json' | 'ndjson', body: Buffer, opts: DecodeOptions): Promise<string> {
  let events: PublishEvent[]
  try {
    events = await (kind === 'json' ? decodeJson(body, opts) : decodeNdjson(body, opts))
  } catch (err) {
    return checkRefusal(err)
  }
  return checkEvents(events, opts, body.length)
}

function corpusFor(kind: 'json' | 'ndjson', envelope: boolean): Buffer[] {
  const values: unknown[] = envelope ? envelopes : records
  if (kind === 'ndjson') return [values.map((v) => JSON.stringify(v)).join('\n'), values.map((v) => JSON.stringify(v)).join('\r\n') + '\r\n', '\n\n' + JSON.stringify(values[0]) + '\n  \n'].map(b)
  return [JSON.stringify(values), JSON.stringify(values[0]), JSON.stringify(values, null, 2), `[${JSON.stringify(values[1])}]`].map(b)
}

function decodeTarget(name: string, what: string, kind: 'json' | 'ndjson', envelope: 'always' | 'header'): FuzzTarget {
  const corpus = [...corpusFor(kind, envelope === 'always'), ...(envelope === 'header' ? corpusFor(kind, true) : [])]
  const opts: MutateOptions = { maxBytes: 32 * 1024, dictionary: jsonDictionary, corpus }
  return {
    name,
    what,
    caseTimeMs: 200,
    generate(rng) {
      const flags = rng.u32() & 0xff
      if (rng.chance(0.02)) {
        // Bombs: many tiny events, deep nesting, a long string; the limits must stop them early.
        const n = rng.range(1, 200_000)
        const bomb = rng.pick([
          () => b('1\n'.repeat(n)),
          () => b(`[${'1,'.repeat(n)}1]`),
          () => b('['.repeat(Math.min(n, 100_000)) + ']'.repeat(Math.min(n, 100_000))),
          () => b(`{"body":${'{"a":'.repeat(Math.min(n, 50_000))}1${'}'.repeat(Math.min(n, 50_000))}}`),
          () => b(`"${'x'.repeat(n * 4)}"`),
        ])()
        return Buffer.concat([Buffer.from([flags]), bomb])
      }
      return Buffer.concat([Buffer.from([flags]), mutate(rng, rng.pick(corpus), opts)])
    },
    run(input) {
      const flags = input[0] ?? 0
      const envelopeMode = envelope === 'always' || (flags & 0x80) !== 0
      return decodeChecked(kind, input.subarray(1), decodeOptions(flags, envelopeMode))
    },
  }
}

export function httpJsonTarget(): FuzzTarget {
  return decodeTarget('http-json', 'decodeJson (src/ingest/http/decode.ts): application/json bodies, one value or an array', 'json', 'header')
}

export function httpNdjsonTarget(): FuzzTarget {
  return decodeTarget('http-ndjson', 'decodeNdjson (src/ingest/http/decode.ts): application/x-ndjson bodies', 'ndjson', 'header')
}

export function httpEnvelopeTarget(): FuzzTarget {
  return decodeTarget('http-envelope', 'decodeJson and decodeNdjson with ?envelope=true: {body, routingKey?, headers?, id?, timestamp?}', 'json', 'always')
}

// ---- gzip ------------------------------------------------------------------------------------

/** A request as readBody sees it: headers, then the body in chunks, then the end. */
function fakeRequest(headers: Record<string, string>, chunks: readonly Buffer[]): IncomingMessage {
  const raw = new PassThrough() as unknown as IncomingMessage & PassThrough
  Object.assign(raw, { headers, complete: false })
  queueMicrotask(() => {
    for (const c of chunks) raw.write(c)
    ;(raw as { complete: boolean }).complete = true
    raw.end()
  })
  return raw
}

export function httpGzipTarget(): FuzzTarget {
  const plain = [...corpusFor('ndjson', false), ...corpusFor('json', false)]
  const corpus = plain.map((p) => gzipSync(p))
  // Bombs: a few KB that expand far past maxBodySize.
  corpus.push(gzipSync(Buffer.alloc(2 * 1024 * 1024, 0x20)), gzipSync(b('1\n'.repeat(500_000))))
  const opts: MutateOptions = { maxBytes: 32 * 1024, dictionary: [Buffer.from([0x1f, 0x8b, 0x08]), Buffer.from([0, 0, 0, 0]), Buffer.from([0xff, 0xff]), ...jsonDictionary], corpus }
  const maxBodyBytes = 256 * 1024
  return {
    name: 'http-gzip',
    what: 'readBody (src/ingest/http/body.ts) with content-encoding: gzip, then decodeNdjson/decodeJson, random chunks',
    caseTimeMs: 500,
    generate(rng) {
      const head = Buffer.allocUnsafe(5)
      head[0] = rng.u32() & 0xff
      head.writeUInt32BE(rng.u32(), 1)
      const body = rng.chance(0.15) ? gzipSync(mutate(rng, rng.pick(plain), { ...opts, corpus: plain })) : mutate(rng, rng.pick(corpus), opts)
      return Buffer.concat([head, body])
    },
    async run(input) {
      if (input.length < 5) return 'short input'
      const flags = input[0]!
      const body = input.subarray(5)
      const chunks = randomChunks(new Rng(input.readUInt32BE(1)), body)
      const headers: Record<string, string> = { 'content-encoding': flags & 1 ? 'x-gzip' : 'gzip', 'content-type': 'application/x-ndjson' }
      if (flags & 2) headers['content-length'] = String(body.length)
      let decoded: Buffer
      try {
        decoded = await readBody(fakeRequest(headers, chunks), { maxBodyBytes, bodyTimeoutMs: 10_000, maxDrainBytes: 1024 * 1024 })
      } catch (err) {
        return `body ${checkRefusal(err)}`
      }
      check(decoded.length <= maxBodyBytes, 'memory', () => `gunzipped body of ${decoded.length} bytes, maxBodyBytes ${maxBodyBytes}`)
      return `gunzipped, ${await decodeChecked(flags & 4 ? 'json' : 'ndjson', decoded, decodeOptions(flags >> 3, false))}`
    },
  }
}
