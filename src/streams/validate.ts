import { errors, type SluiceError } from '../errors.js'
import { timestampMaxMs } from '../log/format.js'
import type { PublishEvent } from './publisher.js'
import { eventTtlMsMax } from './ttl.js'

export interface EventLimits {
  /** server.limits.maxEventSize: the stored body of one event. */
  readonly maxEventBytes: number
  /** server.limits.maxEventDepth: nesting of a JSON body, and of each header value. */
  readonly maxEventDepth: number
}

/** What the record format can hold: u16 lengths for the routing key and the id. */
const keyBytesMax = 0xffff
const idBytesMax = 0xffff

/**
 * True when `v` nests objects and arrays more than `max` deep (a scalar has depth 0, `{}` depth
 * 1). The walk stops at `max`, so a hostile value cannot take it deeper than the limit.
 */
export function nestedDeeperThan(v: unknown, max: number): boolean {
  if (typeof v !== 'object' || v === null) return false
  if (max === 0) return true
  if (Array.isArray(v)) {
    for (const x of v as unknown[]) if (nestedDeeperThan(x, max - 1)) return true
    return false
  }
  const o = v as Record<string, unknown>
  for (const k in o) if (nestedDeeperThan(o[k], max - 1)) return true
  return false
}

/**
 * The one event validation, whatever the door: every door's events pass here inside the publish
 * path, so a rule cannot hold on one door and not another. Returns why the event cannot be
 * stored (its position `n` counts from 1 and names it in the error), or undefined.
 */
export function invalidEvent(ev: PublishEvent, n: number, limits: EventLimits): SluiceError | undefined {
  if (ev.body.length > limits.maxEventBytes) return errors.eventTooLarge(n, ev.body.length, limits.maxEventBytes, 'event')
  const ts = ev.timestamp
  if (ts !== undefined && (!Number.isSafeInteger(ts) || ts < 0 || ts > timestampMaxMs)) {
    return errors.badEvent(n, 'the timestamp must be whole milliseconds since the epoch, before the year 6429', 'event')
  }
  if (ev.id !== undefined) {
    if (ev.id.length === 0) return errors.badEvent(n, 'the id is empty', 'event')
    // Ids become metadata keys, which must be valid Unicode.
    if (!ev.id.isWellFormed()) return errors.badEvent(n, 'the id holds invalid Unicode', 'event')
    if (Buffer.byteLength(ev.id) > idBytesMax) return errors.badEvent(n, `the id is over ${idBytesMax} bytes`, 'event')
  }
  // Deep values are refused on every door: consumers and tools that read them back recurse
  // (JSON.stringify overflows the stack near 10,000 levels). JSON nested d deep takes at least
  // 2d bytes, so most bodies need no walk. A header value may nest as deep as a body; the
  // headers mapping itself (AMQP keeps its properties there) is not a level.
  const maxDepth = limits.maxEventDepth
  if (ev.json && ev.body.length > 2 * maxDepth && nestedDeeperThan(ev.value, maxDepth)) return errors.eventTooDeep(n, maxDepth, 'event')
  if (ev.headers !== undefined) {
    for (const k in ev.headers) if (nestedDeeperThan(ev.headers[k], maxDepth)) return errors.eventTooDeep(n, maxDepth, 'event')
  }
  if (ev.routingKey !== undefined && Buffer.byteLength(ev.routingKey) > keyBytesMax) return errors.badEvent(n, `the routing key is over ${keyBytesMax} bytes`, 'event')
  const ttl = ev.ttlMs
  if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > eventTtlMsMax)) {
    return errors.badEvent(n, `the TTL must be whole milliseconds from 0 to ${eventTtlMsMax}`, 'event')
  }
  return undefined
}
