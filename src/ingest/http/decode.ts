import { isUtf8 } from 'node:buffer'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { errors } from '../../errors.js'
import { timestampMaxMs } from '../../log/format.js'
import type { PublishEvent } from '../../streams/publisher.js'
import { nestedDeeperThan } from '../../streams/validate.js'
import { eventTtlMsMax, parseTtl } from '../../streams/ttl.js'

export interface DecodeOptions {
  readonly envelope: boolean
  readonly maxEventBytes: number
  /** Events in one request at most (blank lines are not events). */
  readonly maxEvents: number
  /** Nesting of objects and arrays in one event at most; a scalar has depth 0, `{}` depth 1. */
  readonly maxDepth: number
  /** Request-level routing key (?routingKey= or x-routing-key). */
  readonly routingKey: string | undefined
  /** Request-level headers (x-event-<name>); an envelope's own headers win. */
  readonly headers: Readonly<Record<string, string>> | undefined
  /** Request-level per-event TTL in ms (x-event-ttl); an envelope's own `ttl` wins. */
  readonly ttlMs?: number | undefined
}

type Unit = 'line' | 'event'

const envelopeKeys = new Set(['body', 'routingKey', 'headers', 'id', 'timestamp', 'ttl'])

/**
 * Large bodies are decoded in slices with a turn of the event loop between them, so one 16 MB
 * request delays the others by one slice, not by the whole body.
 */
const sliceBytes = 256 * 1024

/**
 * NDJSON: one JSON value a line; blank lines are skipped but still counted, so "line 731" is
 * the line an editor shows. Each line's own bytes become the stored body: no re-serialisation.
 */
export async function decodeNdjson(buf: Buffer, opts: DecodeOptions): Promise<PublishEvent[]> {
  const badLine = invalidUtf8Line(buf)
  const events: PublishEvent[] = []
  let start = 0
  let line = 0
  let slice = 0
  while (start < buf.length) {
    let end = buf.indexOf(0x0a, start)
    if (end === -1) end = buf.length
    line++
    if (line === badLine) throw errors.badEvent(line, 'invalid UTF-8; JSON text must be UTF-8')
    let stop = end
    if (stop > start && buf[stop - 1] === 0x0d) stop--
    if (stop > start && !isBlank(buf, start, stop)) {
      if (events.length >= opts.maxEvents) throw errors.tooManyEvents(opts.maxEvents)
      const bytes = buf.subarray(start, stop)
      let value: unknown
      try {
        value = JSON.parse(bytes.toString('utf8'))
      } catch (err) {
        throw errors.badEvent(line, `invalid JSON (${(err as Error).message})`)
      }
      // Valid JSON nested d deep takes at least 2d bytes, so short lines need no walk.
      if (bytes.length > 2 * opts.maxDepth) checkDepth(value, opts.envelope ? opts.maxDepth + 1 : opts.maxDepth, line, 'line', opts.maxDepth)
      events.push(toEvent(value, bytes, line, 'line', opts))
    }
    slice += end + 1 - start
    start = end + 1
    if (slice >= sliceBytes && start < buf.length) {
      slice = 0
      await yieldToLoop()
    }
  }
  if (events.length === 0) throw errors.badRequest('the body holds no events', { events: 0 })
  return events
}

/** application/json: one value, or an array of values (each one event). */
export async function decodeJson(buf: Buffer, opts: DecodeOptions): Promise<PublishEvent[]> {
  const badLine = invalidUtf8Line(buf)
  if (badLine > 0) throw errors.badEvent(badLine, 'invalid UTF-8; JSON text must be UTF-8')
  // Count before parsing: a body of "[1,1,1,…]" would otherwise become millions of values first.
  if (buf.length >= 2 * opts.maxEvents) await countTopLevel(buf, opts.maxEvents)
  let parsed: unknown
  try {
    parsed = JSON.parse(buf.toString('utf8'))
  } catch (err) {
    throw errors.badEvent(1, `invalid JSON (${(err as Error).message})`)
  }
  const values = Array.isArray(parsed) ? parsed : [parsed]
  if (values.length === 0) throw errors.badRequest('the body holds no events', { events: 0 })
  if (values.length > opts.maxEvents) throw errors.tooManyEvents(opts.maxEvents)
  const walk = buf.length > 2 * opts.maxDepth
  const events: PublishEvent[] = []
  let slice = 0
  for (let i = 0; i < values.length; i++) {
    const v: unknown = values[i]
    if (walk) checkDepth(v, opts.envelope ? opts.maxDepth + 1 : opts.maxDepth, i + 1, 'event', opts.maxDepth)
    const e = toEvent(v, undefined, i + 1, 'event', opts)
    events.push(e)
    slice += e.body.length
    if (slice >= sliceBytes && i + 1 < values.length) {
      slice = 0
      await yieldToLoop()
    }
  }
  return events
}

function isBlank(buf: Buffer, start: number, stop: number): boolean {
  for (let i = start; i < stop; i++) {
    const c = buf[i]
    if (c !== 0x20 && c !== 0x09) return false
  }
  return true
}

/**
 * The publish path checks every door's events (streams/validate.ts); this earlier check, on the
 * parsed value before anything re-serialises it, keeps JSON.stringify (JSON arrays, envelopes)
 * from overflowing the stack. An envelope adds one level around its body, so it is checked
 * against `limit` = maxDepth + 1.
 */
function checkDepth(value: unknown, limit: number, n: number, unit: Unit, maxDepth: number): void {
  if (nestedDeeperThan(value, limit)) throw errors.eventTooDeep(n, maxDepth, unit)
}

/**
 * Counts the values of a top-level JSON array without parsing it, and refuses past `max`. Not a
 * validator: a malformed body is left for JSON.parse to name.
 */
async function countTopLevel(buf: Buffer, max: number): Promise<void> {
  let i = 0
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0d)) i++
  if (buf[i] !== 0x5b) return // one value, one event
  let depth = 0
  let inString = false
  let commas = 0
  let nextYield = i + sliceBytes * 4
  for (; i < buf.length; i++) {
    const c = buf[i]!
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) depth++
    else if (c === 0x5d || c === 0x7d) {
      if (--depth === 0) return
    } else if (c === 0x2c && depth === 1 && ++commas >= max) throw errors.tooManyEvents(max)
    if (i >= nextYield) {
      nextYield = i + sliceBytes * 4
      await yieldToLoop()
    }
  }
}

/** 0 when the body is valid UTF-8, else the 1-based line of its first invalid byte. */
function invalidUtf8Line(buf: Buffer): number {
  if (isUtf8(buf)) return 0
  const at = firstInvalidUtf8(buf)
  let line = 1
  for (let i = buf.indexOf(0x0a); i !== -1 && i < at; i = buf.indexOf(0x0a, i + 1)) line++
  return line
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629). */
function firstInvalidUtf8(b: Buffer): number {
  let i = 0
  while (i < b.length) {
    const c = b[i]!
    if (c < 0x80) {
      i++
      continue
    }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (c >= 0xc2 && c <= 0xdf) n = 1
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2
      if (c === 0xe0) lo = 0xa0
      else if (c === 0xed) hi = 0x9f // no UTF-16 surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3
      if (c === 0xf0) lo = 0x90
      else if (c === 0xf4) hi = 0x8f
    } else return i
    const second = b[i + 1]
    if (second === undefined || second < lo || second > hi) return i
    for (let k = 2; k <= n; k++) {
      const x = b[i + k]
      if (x === undefined || x < 0x80 || x > 0xbf) return i
    }
    i += n + 1
  }
  return b.length
}

/** A name from the request for an error message: quoted, escaped, and cut to 64 characters (it may be megabytes long). */
function quotedName(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name)
}

function toEvent(value: unknown, bytes: Buffer | undefined, n: number, unit: Unit, opts: DecodeOptions): PublishEvent {
  if (!opts.envelope) {
    const body = bytes ?? Buffer.from(JSON.stringify(value))
    if (body.length > opts.maxEventBytes) throw errors.eventTooLarge(n, body.length, opts.maxEventBytes, unit)
    return { body, value, json: true, routingKey: opts.routingKey, headers: opts.headers, ttlMs: opts.ttlMs }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.badEvent(n, 'an envelope must be an object {body, routingKey?, headers?, id?, timestamp?, ttl?}', unit)
  const env = value as Record<string, unknown>
  for (const k of Object.keys(env)) if (!envelopeKeys.has(k)) throw errors.badEvent(n, `unknown envelope field ${quotedName(k)}`, unit)
  if (!Object.hasOwn(env, 'body')) throw errors.badEvent(n, 'the envelope has no "body"', unit)
  const body = Buffer.from(JSON.stringify(env.body))
  if (body.length > opts.maxEventBytes) throw errors.eventTooLarge(n, body.length, opts.maxEventBytes, unit)
  let routingKey = opts.routingKey
  if (env.routingKey !== undefined) {
    if (typeof env.routingKey !== 'string') throw errors.badEvent(n, '"routingKey" must be a string', unit)
    routingKey = env.routingKey
  }
  let headers: Record<string, unknown> | undefined = opts.headers === undefined ? undefined : { ...opts.headers }
  if (env.headers !== undefined) {
    if (typeof env.headers !== 'object' || env.headers === null || Array.isArray(env.headers)) throw errors.badEvent(n, '"headers" must be an object', unit)
    headers = { ...headers, ...(env.headers as Record<string, unknown>) }
  }
  let id: string | undefined
  if (env.id !== undefined) {
    if (typeof env.id === 'string' && env.id.length > 0 && env.id.isWellFormed()) id = env.id
    else if (typeof env.id === 'number' && Number.isFinite(env.id)) id = String(env.id)
    else throw errors.badEvent(n, '"id" must be a non-empty string or a number', unit)
  }
  let timestamp: number | undefined
  if (env.timestamp !== undefined) {
    timestamp = typeof env.timestamp === 'number' ? env.timestamp : typeof env.timestamp === 'string' ? Date.parse(env.timestamp) : Number.NaN
    if (!Number.isInteger(timestamp) || timestamp < 0 || timestamp > timestampMaxMs) throw errors.badEvent(n, '"timestamp" must be an ISO 8601 time or milliseconds since the epoch, before the year 6429', unit)
  }
  let ttlMs = opts.ttlMs
  if (env.ttl !== undefined) {
    ttlMs = parseTtl(env.ttl)
    if (ttlMs === undefined) throw errors.badEvent(n, `"ttl" must be whole milliseconds from 0 to ${eventTtlMsMax}, as a number or a string of digits`, unit)
  }
  return { body, value: env.body, json: true, routingKey, headers, id, timestamp, ttlMs }
}
