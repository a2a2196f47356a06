import type { StoredRecord } from '../../log/index.js'
import type { PublishEvent } from '../../streams/publisher.js'
import { parseTtl } from '../../streams/ttl.js'
import { type BasicProperties, encodeProperties } from './content.js'
import { type FieldTable, type FieldValue, isFieldTable, Typed } from './field-table.js'

// An AMQP message as a Sluice event, and back.
//
//   AMQP                          event
//   body                          body, as is (bytes)
//   content-type */json or +json  json: true (when the body also parses); otherwise raw bytes
//   message-id                    id (dedup within the exchange's window)
//   headers                       headers, as JSON values (see toJson)
//   timestamp (s)                 timestamp (ms)
//   routing-key                   key
//   every other property          headers["x-amqp-properties"], restored on delivery
//
// The default exchange "" is stored as `amq.default`, the hidden direct exchange bound to every
// stream by its name, and shown to consumers as "" again.

export const amqpPropertiesHeader = 'x-amqp-properties'
export const defaultExchangeName = 'amq.default'

const jsonType = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i

/** One basic.publish as the event the publisher stores. `value` is the parsed body when it is JSON. */
export function toPublishEvent(routingKey: string, p: BasicProperties, body: Buffer): PublishEvent {
  let value: unknown
  const first = body.length > 0 ? body[0]! : 0
  // Only what can start a JSON text is worth a parse attempt (templates and headers exchanges read it).
  if (body.length > 0 && (first === 0x7b || first === 0x5b || first === 0x22 || (first >= 0x30 && first <= 0x39) || first === 0x2d || first === 0x74 || first === 0x66 || first === 0x6e)) {
    try {
      value = JSON.parse(body.toString('utf8')) as unknown
    } catch {
      value = undefined
    }
  }
  const json = value !== undefined && p.contentType !== undefined && jsonType.test(p.contentType)
  const headers: Record<string, unknown> = p.headers === undefined ? {} : (toJson(p.headers) as Record<string, unknown>)
  const props: Record<string, unknown> = {}
  if (p.contentType !== undefined) props.contentType = p.contentType
  if (p.contentEncoding !== undefined) props.contentEncoding = p.contentEncoding
  if (p.deliveryMode !== undefined) props.deliveryMode = p.deliveryMode
  if (p.priority !== undefined) props.priority = p.priority
  if (p.correlationId !== undefined) props.correlationId = p.correlationId
  if (p.replyTo !== undefined) props.replyTo = p.replyTo
  if (p.expiration !== undefined) props.expiration = p.expiration
  if (p.timestamp !== undefined) props.timestamp = p.timestamp
  if (p.type !== undefined) props.type = p.type
  if (p.userId !== undefined) props.userId = p.userId
  if (p.appId !== undefined) props.appId = p.appId
  if (p.clusterId !== undefined) props.clusterId = p.clusterId
  if (p.headers !== undefined) props.headers = true
  headers[amqpPropertiesHeader] = props
  return {
    body,
    value,
    json,
    routingKey,
    headers,
    id: p.messageId !== undefined && p.messageId !== '' && p.messageId.isWellFormed() ? p.messageId : undefined,
    // Checked by the publish path like every door's: beyond what the log holds (year 6429) the
    // publish is refused (basic.nack), as an HTTP publish gets a 400.
    timestamp: p.timestamp === undefined ? undefined : p.timestamp * 1000,
    // RabbitMQ's per-message TTL: a string of whole milliseconds. Anything else is NaN, which the
    // publish path refuses.
    ttlMs: p.expiration === undefined ? undefined : (parseTtl(p.expiration) ?? Number.NaN),
  }
}

/** A field value as JSON: typed numbers lose their wire type, byte strings become UTF-8 text. */
export function toJson(v: FieldValue): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : null
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()
  if (v instanceof Typed) {
    const inner = v.value
    if (v.type === 'S') return (inner as Buffer).toString('utf8')
    if (v.type === 'D') {
      const d = inner as { scale: number; digits: number }
      return d.digits / 10 ** d.scale
    }
    return toJson(inner as FieldValue)
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8')
  if (Array.isArray(v)) return v.map(toJson)
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = toJson(x)
  return out
}

function fromJson(v: unknown): FieldValue {
  if (v === null || v === undefined) return null
  if (typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v
  if (Array.isArray(v)) return v.map(fromJson)
  if (typeof v === 'object') {
    const out: FieldTable = {}
    for (const [k, x] of Object.entries(v)) out[k] = fromJson(x)
    return out
  }
  return String(v)
}

/** Binding arguments (headers exchanges) as router header values; other x- arguments are dropped. */
export function bindingHeaders(args: FieldTable): Record<string, string | number | boolean | null> | undefined {
  const out: Record<string, string | number | boolean | null> = {}
  let any = false
  for (const [k, v] of Object.entries(args)) {
    if (k.startsWith('x-') && k !== 'x-match') continue
    const j = toJson(v)
    out[k] = j === null || typeof j === 'string' || typeof j === 'number' || typeof j === 'boolean' ? j : JSON.stringify(j)
    any = true
  }
  return any ? out : undefined
}

function parseHeaders(r: StoredRecord): Record<string, unknown> {
  if (r.headers === undefined) return {}
  try {
    const h = JSON.parse(r.headers.toString('utf8')) as unknown
    return typeof h === 'object' && h !== null && !Array.isArray(h) ? (h as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** The exchange name a consumer sees: the default exchange is "" on the wire. */
export const wireExchange = (name: string | undefined): string => (name === undefined || name === defaultExchangeName ? '' : name)

/**
 * The properties of a delivery: those the publisher sent, restored, with the event's headers
 * (x-death rewritten in RabbitMQ's shape) and `x-delivery-count`.
 */
export function deliveryProperties(r: StoredRecord, deliveryCount: number): BasicProperties {
  const headers = parseHeaders(r)
  const saved = headers[amqpPropertiesHeader]
  delete headers[amqpPropertiesHeader]
  const p: BasicProperties = {}
  if (typeof saved === 'object' && saved !== null) {
    const s = saved as Record<string, unknown>
    for (const k of ['contentType', 'contentEncoding', 'correlationId', 'replyTo', 'expiration', 'type', 'userId', 'appId', 'clusterId'] as const) {
      if (typeof s[k] === 'string') p[k] = s[k]
    }
    for (const k of ['deliveryMode', 'priority'] as const) {
      if (typeof s[k] === 'number' && Number.isInteger(s[k]) && s[k] >= 0 && s[k] <= 255) p[k] = s[k]
    }
    if (typeof s.timestamp === 'number' && Number.isSafeInteger(s.timestamp) && s.timestamp >= 0) p.timestamp = s.timestamp
  } else {
    // An event from another door: what AMQP can say about it.
    if (r.json) p.contentType = 'application/json'
    p.timestamp = Math.floor(r.timestamp / 1000)
  }
  if (r.id !== undefined && Buffer.byteLength(r.id) <= 255) p.messageId = r.id
  const table: FieldTable = {}
  for (const [k, v] of Object.entries(headers)) table[k] = fromJson(v)
  rabbitDeaths(table)
  table['x-delivery-count'] = Math.max(0, deliveryCount - 1)
  p.headers = table
  return p
}

/**
 * Encoded delivery properties, remembering the last: the events of one dispatch mostly differ in
 * nothing the properties carry (same headers, same second, same delivery count), and building a
 * field table per delivery was the largest cost of consuming over AMQP. One per channel.
 */
export class DeliveryPropertiesCache {
  #json = false
  #second = -1
  #count = -1
  #id: string | undefined
  #headers: Buffer | undefined
  #bytes: Buffer | undefined

  bytes(r: StoredRecord, deliveryCount: number): Buffer {
    const second = Math.floor(r.timestamp / 1000)
    const hit =
      this.#bytes !== undefined &&
      this.#count === deliveryCount &&
      this.#json === r.json &&
      this.#id === r.id &&
      // The timestamp property is the record's own second only when no publisher's were saved.
      (r.headers === undefined ? this.#headers === undefined && this.#second === second : this.#headers !== undefined && this.#headers.equals(r.headers) && this.#second === second)
    if (hit) return this.#bytes!
    const bytes = encodeProperties(deliveryProperties(r, deliveryCount))
    this.#bytes = bytes
    this.#count = deliveryCount
    this.#json = r.json
    this.#id = r.id
    this.#second = second
    // A copy: the record's headers are a view into a read buffer that is reused.
    this.#headers = r.headers === undefined ? undefined : Buffer.from(r.headers)
    return bytes
  }
}

/**
 * Sluice's x-death entries ({reason, stream, group, exchange, routingKey, count, time}) gain the
 * fields RabbitMQ clients read: queue (the group), routing-keys, exchange "" for the default
 * exchange, and time as an AMQP timestamp. x-first-death-queue and x-last-death-queue likewise.
 */
function rabbitDeaths(t: FieldTable): void {
  const deaths = t['x-death']
  if (Array.isArray(deaths)) {
    t['x-death'] = deaths.map((d) => {
      if (!isFieldTable(d)) return d
      const out: FieldTable = { ...d }
      if (typeof d.group === 'string') out.queue = d.group
      out.exchange = wireExchange(typeof d.exchange === 'string' ? d.exchange : undefined)
      if (typeof d.routingKey === 'string') out['routing-keys'] = [d.routingKey]
      if (typeof d.time === 'string') {
        const ms = Date.parse(d.time)
        if (!Number.isNaN(ms)) out.time = new Typed('T', Math.floor(ms / 1000))
      }
      return out
    })
  }
  for (const which of ['first', 'last'] as const) {
    const g = t[`x-${which}-death-group`]
    if (typeof g === 'string') t[`x-${which}-death-queue`] = g
    const x = t[`x-${which}-death-exchange`]
    if (x !== undefined) t[`x-${which}-death-exchange`] = wireExchange(typeof x === 'string' ? x : undefined)
  }
}
