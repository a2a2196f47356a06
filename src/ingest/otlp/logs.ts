// OTLP logs: an ExportLogsServiceRequest, as protobuf or in OTLP's JSON mapping, becomes one event
// per LogRecord. The field-by-field mapping is docs/doors/otlp.md; keep the two together.
//
// Both encodings are walked by the same code: protobufjs decodes into objects with the same
// lowerCamelCase names as the JSON mapping, and sets only the fields present on the wire as own
// properties, so `Object.hasOwn` means "sent" for both. What differs is the representation of
// three kinds of fields: 64-bit integers (a Long from protobuf; a string or a number in JSON),
// trace and span ids (bytes; case-insensitive hex in JSON) and bytes values (bytes; base64).

import { errors } from '../../errors.js'
import type { RoutingKeyTemplate } from '../../router/index.js'
import type { PublishEvent } from '../../streams/publisher.js'
import { otlpTypes } from '../protos.js'

export interface OtlpOptions {
  /** LogRecords in one request at most (server.otlp.maxRecordsPerRequest). */
  readonly maxRecords: number
  /** Nesting of a body or attribute value at most (server.limits.maxEventDepth). */
  readonly maxDepth: number
  /** The door's routing-key template; undefined leaves it to the exchange's. */
  readonly routingKey: RoutingKeyTemplate | undefined
}

export interface OtlpEvents {
  /** Every LogRecord of the request, in order. */
  readonly total: number
  readonly events: PublishEvent[]
  /** For each event, the record's index in the request (they differ once a record is refused here). */
  readonly index: number[]
  /** Records refused while mapping (a value nested too deep), by index, with why. */
  readonly refused: Array<{ readonly index: number; readonly reason: string }>
}

type Obj = Record<string, unknown>

/**
 * A malformed request: the whole of it is refused with 400, as OTLP asks for bad data. Where it
 * is (`resourceLogs[0].scopeLogs[2].logRecords[7].attributes[1].value`) is put together only as
 * it is thrown, each level adding its part: the loops build no path strings for good data.
 */
class BadRequest extends Error {
  path = ''
}

/** One record cannot be stored; the others can. */
class BadRecord extends Error {}

/** Adds a level to the path of a BadRequest passing through; anything else passes unchanged. */
function at(err: unknown, part: string): unknown {
  if (err instanceof BadRequest) err.path = part + err.path
  return err
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Present on the wire: an own property (JSON null is the default value, as proto3 JSON has it). */
const has = (o: Obj, k: string): boolean => Object.hasOwn(o, k) && o[k] !== null && o[k] !== undefined

interface LongLike {
  readonly low: number
  readonly high: number
  toString(): string
}
const isLong = (v: unknown): v is LongLike => typeof v === 'object' && v !== null && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number'

function bad(field: string, why: string): BadRequest {
  const e = new BadRequest(why)
  e.path = `.${field}`
  return e
}

function list(o: Obj, k: string): unknown[] {
  if (!has(o, k)) return []
  const v = o[k]
  if (!Array.isArray(v)) throw bad(k, 'must be an array')
  return v
}

function obj(v: unknown): Obj {
  if (!isObj(v)) throw new BadRequest('must be an object')
  return v
}

function str(o: Obj, k: string): string {
  if (!has(o, k)) return ''
  const v = o[k]
  if (typeof v !== 'string') throw bad(k, 'must be a string')
  return v
}

function uint(o: Obj, k: string): number {
  if (!has(o, k)) return 0
  const v = o[k]
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v)
  throw bad(k, 'must be a non-negative integer')
}

/** A fixed64 count of nanoseconds as its decimal text; "0" when unset. */
function nanos(o: Obj, k: string): string {
  if (!has(o, k)) return '0'
  const v = o[k]
  // Long's own toString divides digit by digit; a BigInt of its two halves is several times faster.
  if (isLong(v)) return ((BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)).toString()
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) return v.charCodeAt(0) === 0x30 ? v.replace(/^0+(?=\d)/, '') : v
  // JSON numbers past 2^53 have already lost digits; what is left is still the closest time.
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v).toString()
  throw bad(k, 'must be an unsigned 64-bit integer (a decimal string in JSON)')
}

/** An int64 value: a JSON number while it is exact, else its decimal text. */
function int64(v: unknown): number | string {
  let text: string
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (isLong(v)) {
    const n = v.high * 4294967296 + (v.low >>> 0)
    if (Number.isSafeInteger(n)) return n
    text = BigInt.asIntN(64, (BigInt(v.high) << 32n) | BigInt(v.low >>> 0)).toString()
  } else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) text = v
  else throw bad('intValue', 'must be a 64-bit integer')
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : BigInt(text).toString()
}

/** A trace or span id as lowercase hex; '' when unset. Its length is checked: a wrong one is bad data. */
function hexId(o: Obj, k: string, bytes: number): string {
  if (!has(o, k)) return ''
  const v = o[k]
  let hex: string
  if (v instanceof Uint8Array) hex = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')
  else if (typeof v === 'string' && /^[0-9a-fA-F]*$/.test(v)) hex = v.toLowerCase()
  else throw bad(k, 'must be hex')
  if (hex === '') return ''
  if (hex.length !== bytes * 2) throw bad(k, `must be ${bytes} bytes (${bytes * 2} hex digits), not ${hex.length / 2}`)
  return hex
}

function double(v: unknown): number | string {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
  // proto3's JSON mapping writes the values JSON has no number for as strings.
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return v
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v)
  throw bad('doubleValue', 'must be a number')
}

function bytesValue(v: unknown): string {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
  if (typeof v === 'string') return v
  throw bad('bytesValue', 'must be bytes (base64 in JSON)')
}

const tooDeep = (maxDepth: number): BadRecord => new BadRecord(`a value nested deeper than server.limits.maxEventDepth (${maxDepth})`)

/** AnyValue as plain JSON: strings, booleans, numbers, arrays and objects; an empty AnyValue is null. */
function anyValue(v: unknown, depth: number, maxDepth: number): unknown {
  const o = obj(v)
  if (has(o, 'stringValue')) {
    if (typeof o.stringValue !== 'string') throw bad('stringValue', 'must be a string')
    return o.stringValue
  }
  if (has(o, 'intValue')) return int64(o.intValue)
  if (has(o, 'boolValue')) {
    if (typeof o.boolValue !== 'boolean') throw bad('boolValue', 'must be a boolean')
    return o.boolValue
  }
  if (has(o, 'doubleValue')) return double(o.doubleValue)
  if (has(o, 'bytesValue')) return bytesValue(o.bytesValue)
  if (has(o, 'arrayValue')) {
    if (depth >= maxDepth) throw tooDeep(maxDepth)
    let values: unknown[]
    try {
      values = list(obj(o.arrayValue), 'values')
    } catch (err) {
      throw at(err, '.arrayValue')
    }
    const out = new Array<unknown>(values.length)
    for (let i = 0; i < values.length; i++) {
      try {
        out[i] = anyValue(values[i], depth + 1, maxDepth)
      } catch (err) {
        throw at(err, `.arrayValue.values[${i}]`)
      }
    }
    return out
  }
  if (has(o, 'kvlistValue')) {
    if (depth >= maxDepth) throw tooDeep(maxDepth)
    try {
      return keyValues(list(obj(o.kvlistValue), 'values'), depth + 1, maxDepth)
    } catch (err) {
      throw at(err, '.kvlistValue.values')
    }
  }
  return null
}

/** A KeyValue list as one object; a repeated key keeps its last value, as a map would. */
function keyValues(kvs: readonly unknown[], depth: number, maxDepth: number): Obj {
  const out: Obj = {}
  for (let i = 0; i < kvs.length; i++) {
    try {
      const kv = obj(kvs[i])
      const key = str(kv, 'key')
      let value: unknown = null
      try {
        if (has(kv, 'value')) value = anyValue(kv.value, depth, maxDepth)
      } catch (err) {
        throw at(err, '.value')
      }
      // A key named "__proto__" is a key like any other.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
      else out[key] = value
    } catch (err) {
      throw at(err, `[${i}]`)
    }
  }
  return out
}

/** A field holding a KeyValue list, as an object. */
function attributesOf(o: Obj, k: string, maxDepth: number): Obj {
  const kvs = list(o, k)
  if (kvs.length === 0) return {}
  try {
    return keyValues(kvs, 1, maxDepth)
  } catch (err) {
    throw at(err, `.${k}`)
  }
}

/**
 * Maps every LogRecord of a decoded request to an event. Throws a 400 SluiceError for a malformed
 * request and a 413 when it holds more records than allowed; a record that cannot be stored on its
 * own is listed in `refused` and the others go on.
 */
export function otlpEvents(request: unknown, opts: OtlpOptions): OtlpEvents {
  try {
    return mapRequest(request, opts)
  } catch (err) {
    if (err instanceof BadRequest) throw errors.badRequest(`the OTLP request is malformed: ${err.path === '' ? 'the request' : err.path.replace(/^\./, '')} ${err.message}`)
    if (err instanceof RangeError) throw errors.badRequest('the OTLP request is nested too deeply to read')
    throw err
  }
}

function mapRequest(request: unknown, opts: OtlpOptions): OtlpEvents {
  const resourceLogs = list(obj(request), 'resourceLogs')
  // Count first: a request over the limit is refused before anything is built for it.
  let total = 0
  for (let r = 0; r < resourceLogs.length; r++) {
    try {
      const scopeLogs = list(obj(resourceLogs[r]), 'scopeLogs')
      for (let s = 0; s < scopeLogs.length; s++) {
        try {
          total += list(obj(scopeLogs[s]), 'logRecords').length
        } catch (err) {
          throw at(err, `.scopeLogs[${s}]`)
        }
      }
    } catch (err) {
      throw at(err, `.resourceLogs[${r}]`)
    }
  }
  if (total > opts.maxRecords) throw errors.tooManyRecords('OTLP', 'log records', 'server.otlp.maxRecordsPerRequest', opts.maxRecords)

  const out: OtlpEvents = { total, events: [], index: [], refused: [] }
  let n = 0
  for (let r = 0; r < resourceLogs.length; r++) {
    try {
      n = mapResourceLogs(resourceLogs[r] as Obj, n, opts, out)
    } catch (err) {
      throw at(err, `.resourceLogs[${r}]`)
    }
  }
  return out
}

/** One ResourceLogs' records; `n` is the index of its first record in the request. Returns the next. */
function mapResourceLogs(rl: Obj, n: number, opts: OtlpOptions, out: OtlpEvents): number {
  let resource: Obj = {}
  if (has(rl, 'resource')) {
    try {
      resource = attributesOf(obj(rl.resource), 'attributes', opts.maxDepth)
    } catch (err) {
      throw at(err, '.resource')
    }
  }
  const resourceJson = JSON.stringify(resource)
  const scopeLogs = list(rl, 'scopeLogs')
  for (let s = 0; s < scopeLogs.length; s++) {
    const sl = scopeLogs[s] as Obj
    let scope: Obj | undefined
    try {
      scope = has(sl, 'scope') ? mapScope(obj(sl.scope), opts.maxDepth) : undefined
    } catch (err) {
      throw at(err, `.scopeLogs[${s}].scope`)
    }
    // Resource and scope are the same for every record under them: serialised once.
    const tail = `,"resource":${resourceJson}${scope === undefined ? '' : `,"scope":${JSON.stringify(scope)}`}}`
    const records = list(sl, 'logRecords')
    for (let i = 0; i < records.length; i++, n++) {
      let fields: Obj
      try {
        fields = mapRecord(obj(records[i]), opts.maxDepth)
      } catch (err) {
        if (err instanceof BadRecord) {
          out.refused.push({ index: n, reason: `log record ${n}: ${err.message}` })
          continue
        }
        throw at(err, `.scopeLogs[${s}].logRecords[${i}]`)
      }
      const head = JSON.stringify(fields)
      const body = Buffer.from(head.length === 2 ? `{${tail.slice(1)}` : head.slice(0, -1) + tail)
      // The value templates and headers exchanges see: the same fields, sharing resource and scope.
      fields.resource = resource
      if (scope !== undefined) fields.scope = scope
      // The event's own timestamp stays the arrival time, as for every door: retention by age
      // must not drop a backlog an agent sends late. The record's times are in the body.
      out.events.push({ body, value: fields, json: true, routingKey: opts.routingKey?.(fields) })
      out.index.push(n)
    }
  }
  return n
}

function mapScope(o: Obj, maxDepth: number): Obj | undefined {
  const scope: Obj = {}
  const name = str(o, 'name')
  const version = str(o, 'version')
  if (name !== '') scope.name = name
  if (version !== '') scope.version = version
  const attrs = attributesOf(o, 'attributes', maxDepth)
  if (Object.keys(attrs).length > 0) scope.attributes = attrs
  return Object.keys(scope).length === 0 ? undefined : scope
}

function mapRecord(o: Obj, maxDepth: number): Obj {
  const f: Obj = {}
  const time = nanos(o, 'timeUnixNano')
  const observed = nanos(o, 'observedTimeUnixNano')
  if (time !== '0') f.timeUnixNano = time
  if (observed !== '0') f.observedTimeUnixNano = observed
  const severityNumber = uint(o, 'severityNumber')
  if (severityNumber !== 0) f.severityNumber = severityNumber
  const severityText = str(o, 'severityText')
  if (severityText !== '') f.severityText = severityText
  const eventName = str(o, 'eventName')
  if (eventName !== '') f.eventName = eventName
  if (has(o, 'body')) {
    try {
      f.body = anyValue(o.body, 0, maxDepth)
    } catch (err) {
      throw at(err, '.body')
    }
  }
  f.attributes = attributesOf(o, 'attributes', maxDepth)
  const dropped = uint(o, 'droppedAttributesCount')
  if (dropped !== 0) f.droppedAttributesCount = dropped
  const traceId = hexId(o, 'traceId', 16)
  const spanId = hexId(o, 'spanId', 8)
  if (traceId !== '') f.traceId = traceId
  if (spanId !== '') f.spanId = spanId
  const flags = uint(o, 'flags')
  if (flags !== 0) f.flags = flags
  return f
}

export type OtlpEncoding = 'json' | 'protobuf'

/** The request body, decoded: JSON.parse, or protobufjs with the official schema. */
export function decodeOtlpLogs(body: Buffer, encoding: OtlpEncoding): unknown {
  if (encoding === 'json') {
    try {
      return JSON.parse(body.toString('utf8'))
    } catch (err) {
      throw errors.badRequest(`the body is not JSON: ${(err as Error).message}`)
    }
  }
  try {
    return otlpTypes().exportLogsRequest.decode(body)
  } catch (err) {
    throw errors.badRequest(`the body is not an ExportLogsServiceRequest: ${(err as Error).message}`)
  }
}

/** ExportLogsServiceResponse: empty on full success, else with partialSuccess. */
export function encodeOtlpResponse(encoding: OtlpEncoding, rejected: number, message: string): Buffer | string {
  const partial = rejected > 0 || message !== ''
  if (encoding === 'json') return partial ? JSON.stringify({ partialSuccess: { rejectedLogRecords: String(rejected), errorMessage: message } }) : '{}'
  const t = otlpTypes().exportLogsResponse
  return Buffer.from(t.encode(partial ? { partialSuccess: { rejectedLogRecords: rejected, errorMessage: message } } : {}).finish())
}

/** gRPC status codes for the HTTP statuses Sluice answers with (google.rpc.Code), for OTLP/HTTP error bodies and OTLP/gRPC. */
export function grpcCode(status: number): number {
  switch (status) {
    case 400:
    case 413:
    case 415:
      return 3 // INVALID_ARGUMENT
    case 401:
      return 16 // UNAUTHENTICATED
    case 403:
      return 7 // PERMISSION_DENIED
    case 404:
      return 5 // NOT_FOUND
    case 408:
      return 4 // DEADLINE_EXCEEDED
    case 429:
      return 8 // RESOURCE_EXHAUSTED
    case 503:
      return 14 // UNAVAILABLE
    default:
      return status >= 500 ? 13 : 2 // INTERNAL : UNKNOWN
  }
}

/** The body of an error answer: a google.rpc.Status, as OTLP/HTTP asks, in the request's encoding. */
export function encodeOtlpStatus(encoding: OtlpEncoding, status: number, message: string): Buffer | string {
  const s = { code: grpcCode(status), message }
  return encoding === 'json' ? JSON.stringify(s) : Buffer.from(otlpTypes().status.encode(s).finish())
}

