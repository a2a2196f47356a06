// One GELF message (https://go2docs.graylog.org/current/getting_in_log_data/gelf.html) becomes one
// event. The field-by-field mapping is docs/doors/gelf.md; keep the two together.

import { gunzipSync, inflateSync } from 'node:zlib'
import type { RoutingKeyTemplate } from '../../router/index.js'
import type { PublishEvent } from '../../streams/publisher.js'

/** Why a payload or message was not taken; `limit` is set when a named limit refused it. */
export interface GelfRefusal {
  readonly error: string
  readonly limit?: 'gelf.maxMessageSize' | undefined
}

export const isGelfRefusal = (v: unknown): v is GelfRefusal => typeof v === 'object' && v !== null && typeof (v as GelfRefusal).error === 'string'

const tooLarge = (what: string, maxBytes: number): GelfRefusal => ({ error: `${what} is over server.gelf.maxMessageSize (${maxBytes} bytes)`, limit: 'gelf.maxMessageSize' })

/**
 * A UDP payload (one datagram, or the joined chunks) as JSON text. GELF senders compress with
 * zlib (gelf-pro, graypy, Docker's default) or gzip, or not at all; the first bytes tell which.
 * Decompression stops at `maxBytes`, so a small bomb cannot take more memory than the limit.
 */
export function gelfPayload(payload: Buffer, maxBytes: number): Buffer | GelfRefusal {
  const b0 = payload[0]
  const b1 = payload[1]
  if (b0 === undefined) return { error: 'empty payload' }
  const gzip = b0 === 0x1f && b1 === 0x8b
  // A zlib stream starts with CMF 0x?8 (deflate) and a header check: CMF*256 + FLG is a multiple of 31.
  const zlib = (b0 & 0x0f) === 0x08 && b1 !== undefined && ((b0 << 8) | b1) % 31 === 0
  if (!gzip && !zlib) return payload.length > maxBytes ? tooLarge(`a message of ${payload.length} bytes`, maxBytes) : payload
  try {
    return (gzip ? gunzipSync : inflateSync)(payload, { maxOutputLength: maxBytes })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge('the decompressed message', maxBytes)
    return { error: `not valid ${gzip ? 'gzip' : 'zlib'} data: ${(err as Error).message}` }
  }
}

type Obj = Record<string, unknown>

/** The receive time as GELF writes timestamps: seconds since the epoch, milliseconds as the fraction. */
const gelfNow = (nowMs: number): number => nowMs / 1000

/**
 * A GELF message's JSON text as an event: the message as sent, once it is an object with a
 * string `short_message` and `host`, as Graylog requires. `timestamp` is a number (a numeric
 * string becomes one); when absent it is the receive time, as the spec says the server sets it.
 * Everything else, `_` extras included, is kept as sent.
 */
export function gelfEvent(json: Buffer, nowMs: number, template: RoutingKeyTemplate | undefined): PublishEvent | GelfRefusal {
  let value: unknown
  try {
    value = JSON.parse(json.toString('utf8'))
  } catch (err) {
    return { error: `not GELF: invalid JSON (${(err as Error).message})` }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'not GELF: the message must be a JSON object' }
  const m = value as Obj
  if (typeof m.short_message !== 'string') return { error: 'not GELF: short_message must be a string' }
  if (typeof m.host !== 'string') return { error: 'not GELF: host must be a string' }
  if (m.version !== undefined && typeof m.version !== 'string') return { error: 'not GELF: version must be a string such as "1.1"' }
  const ts = m.timestamp
  if (ts === undefined || ts === null) m.timestamp = gelfNow(nowMs)
  else if (typeof ts === 'string' && ts.trim() !== '' && Number.isFinite(Number(ts))) m.timestamp = Number(ts)
  else if (typeof ts !== 'number') return { error: 'not GELF: timestamp must be a number of seconds since the epoch' }
  return { body: Buffer.from(JSON.stringify(m)), value: m, json: true, routingKey: template?.(m) }
}
