import { errors } from '../../errors.js'
import { timestampMaxMs } from '../../log/format.js'
import type { PublishEvent } from '../../streams/publisher.js'

export interface DecodeOptions {
  readonly envelope: boolean
  readonly maxEventBytes: number
  /** Request-level routing key (?routingKey= or x-routing-key). */
  readonly routingKey: string | undefined
  /** Request-level headers (x-event-<name>); an envelope's own headers win. */
  readonly headers: Readonly<Record<string, string>> | undefined
}

type Unit = 'line' | 'event'

const envelopeKeys = new Set(['body', 'routingKey', 'headers', 'id', 'timestamp'])

/**
 * NDJSON: one JSON value a line; blank lines are skipped but still counted, so "line 731" is
 * the line an editor shows. Each line's own bytes become the stored body: no re-serialisation.
 */
export function decodeNdjson(buf: Buffer, opts: DecodeOptions): PublishEvent[] {
  const events: PublishEvent[] = []
  let start = 0
  let line = 0
  while (start < buf.length) {
    let end = buf.indexOf(0x0a, start)
    if (end === -1) end = buf.length
    line++
    let stop = end
    if (stop > start && buf[stop - 1] === 0x0d) stop--
    if (stop > start && !isBlank(buf, start, stop)) {
      const bytes = buf.subarray(start, stop)
      let value: unknown
      try {
        value = JSON.parse(bytes.toString('utf8'))
      } catch (err) {
        throw errors.badEvent(line, `invalid JSON (${(err as Error).message})`)
      }
      events.push(toEvent(value, bytes, line, 'line', opts))
    }
    start = end + 1
  }
  if (events.length === 0) throw errors.badRequest('the body holds no events', { events: 0 })
  return events
}

/** application/json: one value, or an array of values (each one event). */
export function decodeJson(buf: Buffer, opts: DecodeOptions): PublishEvent[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(buf.toString('utf8'))
  } catch (err) {
    throw errors.badEvent(1, `invalid JSON (${(err as Error).message})`)
  }
  const values = Array.isArray(parsed) ? parsed : [parsed]
  if (values.length === 0) throw errors.badRequest('the body holds no events', { events: 0 })
  return values.map((v, i) => toEvent(v, undefined, i + 1, 'event', opts))
}

function isBlank(buf: Buffer, start: number, stop: number): boolean {
  for (let i = start; i < stop; i++) {
    const c = buf[i]
    if (c !== 0x20 && c !== 0x09) return false
  }
  return true
}

function toEvent(value: unknown, bytes: Buffer | undefined, n: number, unit: Unit, opts: DecodeOptions): PublishEvent {
  if (!opts.envelope) {
    const body = bytes ?? Buffer.from(JSON.stringify(value))
    if (body.length > opts.maxEventBytes) throw errors.eventTooLarge(n, body.length, opts.maxEventBytes, unit)
    return { body, value, json: true, routingKey: opts.routingKey, headers: opts.headers }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.badEvent(n, 'an envelope must be an object {body, routingKey?, headers?, id?, timestamp?}', unit)
  const env = value as Record<string, unknown>
  for (const k of Object.keys(env)) if (!envelopeKeys.has(k)) throw errors.badEvent(n, `unknown envelope field "${k}"`, unit)
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
  return { body, value: env.body, json: true, routingKey, headers, id, timestamp }
}
