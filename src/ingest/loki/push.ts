// Loki push: a PushRequest, as JSON or as snappy-compressed protobuf (Loki's push.proto), becomes
// one event per log entry. The field-by-field mapping is docs/doors/loki.md; keep the two together.

import snappy from 'snappyjs'
import { errors } from '../../errors.js'
import type { RoutingKeyTemplate } from '../../router/index.js'
import type { PublishEvent } from '../../streams/publisher.js'
import { lokiTypes } from '../protos.js'

export type LokiEncoding = 'json' | 'protobuf'

export interface LokiOptions {
  /** Entries in one request at most (server.loki.maxEntriesPerRequest). */
  readonly maxEntries: number
  /** The door's routing-key template; undefined leaves it to the exchange's. */
  readonly routingKey: RoutingKeyTemplate | undefined
}

export interface LokiEvents {
  readonly events: PublishEvent[]
}

type Obj = Record<string, unknown>
type Labels = Record<string, string>

class BadRequest extends Error {}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** An own, writable entry even for a name such as "__proto__". */
function put(o: Obj, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

/**
 * The body, decoded. Protobuf bodies are snappy's block format (no framing, no Content-Encoding),
 * as Promtail, Alloy and winston-loki send them; their decompressed size is read from the block's
 * header and held to `maxBytes` before anything is allocated.
 */
export function decodeLokiPush(body: Buffer, encoding: LokiEncoding, maxBytes: number): unknown {
  if (encoding === 'json') {
    try {
      return JSON.parse(body.toString('utf8'))
    } catch (err) {
      throw errors.badRequest(`the body is not JSON: ${(err as Error).message}`)
    }
  }
  let raw: Uint8Array
  try {
    raw = snappy.uncompress(body, maxBytes)
  } catch (err) {
    const message = (err as Error).message
    if (message.includes('too big')) throw errors.bodyTooLarge(maxBytes + 1, maxBytes)
    throw errors.badRequest(`the body is not snappy-compressed: ${message}`)
  }
  try {
    return lokiTypes().pushRequest.decode(raw)
  } catch (err) {
    throw errors.badRequest(`the body is not a Loki PushRequest: ${(err as Error).message}`)
  }
}

/** Maps every entry of a decoded push to an event; throws 400 for a malformed one, 413 past the limit. */
export function lokiEvents(push: unknown, encoding: LokiEncoding, opts: LokiOptions): LokiEvents {
  try {
    return encoding === 'json' ? fromJson(push, opts) : fromProtobuf(push, opts)
  } catch (err) {
    if (err instanceof BadRequest) throw errors.badRequest(`the Loki push is malformed: ${err.message}`)
    throw err
  }
}

function streamsOf(push: unknown): unknown[] {
  if (!isObj(push)) throw new BadRequest('the request must be an object {"streams": [...]}')
  const streams = push.streams ?? []
  if (!Array.isArray(streams)) throw new BadRequest('"streams" must be an array')
  return streams
}

function event(labels: Labels, ns: string, line: string, metadata: Labels | undefined, opts: LokiOptions): PublishEvent {
  const value: Obj = { labels, timestamp: ns, line }
  if (metadata !== undefined) value.structuredMetadata = metadata
  // The event's own timestamp is the arrival time, as for every door (retention by age must not
  // drop a backlog sent late); the entry's time is in the body.
  return { body: Buffer.from(JSON.stringify(value)), value, json: true, routingKey: opts.routingKey?.(value) }
}

function fromJson(push: unknown, opts: LokiOptions): LokiEvents {
  const streams = streamsOf(push)
  let total = 0
  for (let s = 0; s < streams.length; s++) {
    const st = streams[s]
    if (!isObj(st)) throw new BadRequest(`streams[${s}] must be an object {"stream": {labels}, "values": [...]}`)
    const values = st.values ?? []
    if (!Array.isArray(values)) throw new BadRequest(`streams[${s}].values must be an array`)
    total += values.length
  }
  if (total > opts.maxEntries) throw errors.tooManyRecords('Loki', 'entries', 'server.loki.maxEntriesPerRequest', opts.maxEntries)
  const events: PublishEvent[] = []
  for (let s = 0; s < streams.length; s++) {
    const st = streams[s] as Obj
    const labels = stringMap(st.stream ?? {}, `streams[${s}].stream`)
    const values = (st.values ?? []) as unknown[]
    for (let i = 0; i < values.length; i++) {
      const at = `streams[${s}].values[${i}]`
      const v = values[i]
      if (!Array.isArray(v) || v.length < 2 || v.length > 3) throw new BadRequest(`${at} must be ["<unix epoch in nanoseconds>", "<log line>"] with an optional object of structured metadata`)
      const ns = nanosOf(v[0], at)
      if (typeof v[1] !== 'string') throw new BadRequest(`${at}: the log line must be a string`)
      const metadata = v.length === 3 && v[2] !== null ? stringMap(v[2], `${at}[2]`) : undefined
      events.push(event(labels, ns, v[1], metadata !== undefined && Object.keys(metadata).length > 0 ? metadata : undefined, opts))
    }
  }
  return { events }
}

function fromProtobuf(push: unknown, opts: LokiOptions): LokiEvents {
  const streams = streamsOf(push) as Obj[]
  let total = 0
  for (const st of streams) total += (st.entries as unknown[] | undefined)?.length ?? 0
  if (total > opts.maxEntries) throw errors.tooManyRecords('Loki', 'entries', 'server.loki.maxEntriesPerRequest', opts.maxEntries)
  const events: PublishEvent[] = []
  for (let s = 0; s < streams.length; s++) {
    const st = streams[s]!
    const labels = parseLabels(typeof st.labels === 'string' ? st.labels : '', `streams[${s}].labels`)
    const entries = (st.entries ?? []) as Obj[]
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      const ts = isObj(e.timestamp) ? e.timestamp : {}
      const seconds = BigInt(String(ts.seconds ?? 0))
      const nanos = BigInt(typeof ts.nanos === 'number' ? ts.nanos : 0)
      if (seconds < 0n || nanos < 0n || nanos > 999_999_999n) throw new BadRequest(`streams[${s}].entries[${i}].timestamp is before 1970 or malformed`)
      const pairs = (e.structuredMetadata ?? []) as Obj[]
      let metadata: Labels | undefined
      for (const p of pairs) put((metadata ??= {}), String(p.name ?? ''), String(p.value ?? ''))
      events.push(event(labels, (seconds * 1_000_000_000n + nanos).toString(), typeof e.line === 'string' ? e.line : '', metadata, opts))
    }
  }
  return { events }
}

function nanosOf(v: unknown, at: string): string {
  if (typeof v === 'string' && /^\d{1,19}$/.test(v)) return v.replace(/^0+(?=\d)/, '')
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v).toString()
  throw new BadRequest(`${at}: the timestamp must be nanoseconds since the epoch, as a string of digits`)
}

function stringMap(v: unknown, at: string): Labels {
  if (!isObj(v)) throw new BadRequest(`${at} must be an object of strings`)
  const out: Labels = {}
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new BadRequest(`${at}.${k} must be a string`)
    put(out, k, x)
  }
  return out
}

/**
 * A label set as the protobuf carries it, in Prometheus' text form: `{job="api", level="info"}`.
 * Names are bare (`[A-Za-z_][A-Za-z0-9_]*`, dots and other characters tolerated) or quoted;
 * values are quoted, with `\"`, `\\`, `\n` and `\t` escapes.
 */
export function parseLabels(text: string, at = 'labels'): Labels {
  const out: Labels = {}
  const s = text.trim()
  if (s === '') return out
  const fail = (i: number, why: string): never => {
    throw new BadRequest(`${at}: ${why} at character ${i} of ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`)
  }
  if (s[0] !== '{' || s[s.length - 1] !== '}') fail(0, 'a label set must be written {name="value", ...}')
  let i = 1
  const end = s.length - 1
  const space = (): void => {
    while (i < end && /\s/.test(s[i]!)) i++
  }
  const quoted = (): string => {
    let v = ''
    i++ // the opening quote
    for (;;) {
      if (i >= end) fail(i, 'an unterminated quoted string')
      const c = s[i]!
      if (c === '"') break
      if (c === '\\') {
        const n = s[i + 1]
        v += n === 'n' ? '\n' : n === 't' ? '\t' : (n ?? '')
        i += 2
        continue
      }
      v += c
      i++
    }
    i++ // the closing quote
    return v
  }
  space()
  while (i < end) {
    let name: string
    if (s[i] === '"') name = quoted()
    else {
      const start = i
      while (i < end && !/[\s=,"{}]/.test(s[i]!)) i++
      name = s.slice(start, i)
      if (name === '') fail(i, 'a label name was expected')
    }
    space()
    if (s[i] !== '=') fail(i, '"=" was expected')
    i++
    space()
    if (s[i] !== '"') fail(i, 'a quoted value was expected')
    put(out, name, quoted())
    space()
    if (i < end) {
      if (s[i] !== ',') fail(i, '"," was expected')
      i++
      space()
    }
  }
  return out
}
