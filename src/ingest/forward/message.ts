// Fluent Forward messages (https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1.5)
// become one event per entry. The field-by-field mapping is docs/doors/forward.md; keep the two
// together.
//
//   Message:                 [tag, time, record, option?]
//   Forward:                 [tag, [[time, record], ...], option?]
//   PackedForward:           [tag, bin|str of concatenated msgpack [time, record] entries, option?]
//   CompressedPackedForward: the same, gzipped, with option.compressed = "gzip"
//
// time is an integer (seconds) or EventTime, ext type 0: big-endian u32 seconds, u32 nanoseconds.

import { gunzipSync } from 'node:zlib'
import { Decoder, ExtData, ExtensionCodec } from '@msgpack/msgpack'
import type { RoutingKeyTemplate } from '../../router/index.js'
import type { PublishEvent } from '../../streams/publisher.js'

/** EventTime, as Fluentd's ext type 0 carries it; a class, so a record's own {seconds, nanoseconds} map is not taken for one. */
export class EventTime {
  constructor(
    readonly seconds: number,
    readonly nanoseconds: number,
  ) {}
}

const eventTimeType = 0

const codec = new ExtensionCodec()
codec.register({
  type: eventTimeType,
  encode: () => null,
  decode: (data: Uint8Array): EventTime => {
    if (data.byteLength !== 8) throw new Error(`an EventTime of ${data.byteLength} bytes, not 8`)
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
    return new EventTime(view.getUint32(0), view.getUint32(4))
  },
})

export interface ForwardLimits {
  /** Entries in one message at most (server.forward.maxEntriesPerFrame). */
  readonly maxEntries: number
  /** A PackedForward stream, decompressed, at most (server.forward.maxFrameSize). */
  readonly maxBytes: number
  /** Nesting of a decoded value at most (server.limits.maxEventDepth). */
  readonly maxDepth: number
}

/** A transport message: its events, and the `chunk` to ack once they are stored. */
export interface ForwardMessage {
  readonly kind: 'events'
  readonly events: PublishEvent[]
  readonly chunk: string | undefined
}

/** A handshake message (PING), for the handshake to check. */
export interface ForwardHandshake {
  readonly kind: 'handshake'
  readonly message: unknown[]
}

/** Not a Forward message; `chunk` is set when the message named one (so it can still be acked). */
export interface ForwardRefusal {
  readonly kind: 'refused'
  readonly error: string
  readonly chunk: string | undefined
  readonly limit?: 'forward.maxEntriesPerFrame' | 'forward.maxFrameSize' | undefined
}

class Refused extends Error {
  constructor(
    message: string,
    readonly limit?: ForwardRefusal['limit'],
  ) {
    super(message)
  }
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof ExtData)

function decoderFor(limits: ForwardLimits): Decoder {
  // The decoder's own bounds keep a hostile length from allocating more than the frame holds.
  return new Decoder({ extensionCodec: codec, maxStrLength: limits.maxBytes, maxBinLength: limits.maxBytes, maxArrayLength: limits.maxBytes, maxMapLength: limits.maxBytes, maxExtLength: limits.maxBytes })
}

/** Bytes as text when they are UTF-8 (Ruby strings often travel as bin), else base64. */
function bytesText(b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  const text = buf.toString('utf8')
  return Buffer.byteLength(text) === buf.length && !text.includes('\uFFFD') ? text : buf.toString('base64')
}

/** A decoded value as JSON can hold it: bytes as text, an EventTime as seconds, other extensions as {type, data}. */
function jsonValue(v: unknown, depth: number, maxDepth: number): unknown {
  if (v instanceof Uint8Array) return bytesText(v)
  if (typeof v !== 'object' || v === null || v instanceof Date) return v
  if (depth >= maxDepth) throw new Refused(`a record nested deeper than server.limits.maxEventDepth (${maxDepth})`)
  if (v instanceof ExtData) return { type: v.type, data: Buffer.from(v.data instanceof Uint8Array ? v.data : new Uint8Array()).toString('base64') }
  if (v instanceof EventTime) return seconds(v)
  if (Array.isArray(v)) return v.map((x) => jsonValue(x, depth + 1, maxDepth))
  const out: Obj = {}
  for (const [k, x] of Object.entries(v)) {
    // A key named "__proto__" is a key like any other.
    Object.defineProperty(out, k, { value: jsonValue(x, depth + 1, maxDepth), enumerable: true, writable: true, configurable: true })
  }
  return out
}


/** Seconds since the epoch; an EventTime's nanoseconds as the fraction (to the microsecond a double keeps). */
const seconds = (t: EventTime): number => t.seconds + t.nanoseconds / 1e9

function timeOf(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (v instanceof EventTime) return seconds(v)
  throw new Refused('an entry whose time is neither a number nor an EventTime')
}

function entryEvent(tag: string, time: unknown, record: unknown, limits: ForwardLimits, template: RoutingKeyTemplate | undefined): PublishEvent {
  if (!isObj(record)) throw new Refused('an entry whose record is not a map')
  const value = { tag, time: timeOf(time), record: jsonValue(record, 1, limits.maxDepth) }
  return { body: Buffer.from(JSON.stringify(value)), value, json: true, routingKey: template?.(value) }
}

function chunkOf(option: unknown): string | undefined {
  if (!isObj(option)) return undefined
  const c = option.chunk
  return typeof c === 'string' ? c : c instanceof Uint8Array ? bytesText(c) : undefined
}

/**
 * One whole msgpack value from a connection, decoded: a transport message's events, a handshake
 * message, or why it is neither. A message refused here is refused whole: Forward clients resend
 * what is not acked, and the same bytes would be refused again.
 */
export function forwardMessage(frame: Buffer, limits: ForwardLimits, template: RoutingKeyTemplate | undefined): ForwardMessage | ForwardHandshake | ForwardRefusal {
  let message: unknown
  try {
    message = decoderFor(limits).decode(frame)
  } catch (err) {
    return { kind: 'refused', error: `not msgpack: ${(err as Error).message}`, chunk: undefined }
  }
  if (!Array.isArray(message) || message.length < 2) return { kind: 'refused', error: 'not a Forward message: expected an array [tag, ...]', chunk: undefined }
  if (message[0] === 'PING' || message[0] === 'HELO' || message[0] === 'PONG') return { kind: 'handshake', message }
  const tag = message[0] instanceof Uint8Array ? bytesText(message[0]) : message[0]
  const second = message[1]
  // [tag, time, record, option] has four elements; with three, the second tells Message mode
  // (a time, or anything else that is then refused as a time) from the Forward modes.
  const messageMode = message.length === 4 || !(Array.isArray(second) || second instanceof Uint8Array || typeof second === 'string')
  const option = message[messageMode ? 3 : 2]
  const chunk = chunkOf(option)
  try {
    if (typeof tag !== 'string') throw new Refused('not a Forward message: the tag must be a string')
    if (messageMode) {
      if (message.length < 3 || message.length > 4) throw new Refused(`a Message-mode message of ${message.length} elements, not 3 or 4`)
      return { kind: 'events', events: [entryEvent(tag, second, message[2], limits, template)], chunk }
    }
    if (message.length > 3) throw new Refused(`a Forward message of ${message.length} elements, not 2 or 3`)
    let entries: unknown[]
    if (Array.isArray(second)) entries = second
    else if (second instanceof Uint8Array) entries = packedEntries(second, option, limits)
    // A str stream would have been decoded as UTF-8 text, which binary msgpack is not.
    else if (typeof second === 'string') throw new Refused('a PackedForward stream sent as str, not bin; Sluice reads bin streams only')
    else throw new Refused('not a Forward message: the second element is not a time, an array of entries or a packed stream')
    if (entries.length > limits.maxEntries) throw tooManyEntries(limits.maxEntries)
    const events = entries.map((e) => {
      if (!Array.isArray(e) || e.length !== 2) throw new Refused('an entry that is not [time, record]')
      return entryEvent(tag, e[0], e[1], limits, template)
    })
    return { kind: 'events', events, chunk }
  } catch (err) {
    if (err instanceof Refused) return { kind: 'refused', error: err.message, chunk, limit: err.limit }
    if (err instanceof RangeError) return { kind: 'refused', error: 'a record nested too deeply to read', chunk }
    throw err
  }
}

const tooManyEntries = (max: number): Refused => new Refused(`a message of more than server.forward.maxEntriesPerFrame (${max}) entries`, 'forward.maxEntriesPerFrame')

/** The entries of a PackedForward stream, gunzipped first for CompressedPackedForward. */
function packedEntries(stream: Uint8Array, option: unknown, limits: ForwardLimits): unknown[] {
  let bytes = stream
  if (isObj(option) && option.compressed === 'gzip') {
    try {
      // Gzip members may follow one another (Fluent Bit appends them); gunzip reads them all.
      bytes = gunzipSync(bytes, { maxOutputLength: limits.maxBytes })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new Refused(`a packed stream over server.forward.maxFrameSize (${limits.maxBytes} bytes) once decompressed`, 'forward.maxFrameSize')
      throw new Refused(`a CompressedPackedForward stream that is not gzip: ${(err as Error).message}`)
    }
  }
  const out: unknown[] = []
  try {
    for (const entry of decoderFor(limits).decodeMulti(bytes)) {
      if (out.length >= limits.maxEntries) throw tooManyEntries(limits.maxEntries)
      out.push(entry)
    }
  } catch (err) {
    if (err instanceof Refused) throw err
    throw new Refused(`a packed stream that is not msgpack entries: ${(err as Error).message}`)
  }
  return out
}
