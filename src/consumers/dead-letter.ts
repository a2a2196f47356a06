import type { StoredRecord, AppendRecord } from '../log/index.js'
import { expiresAtHeader, originalExpiresAtHeader } from '../streams/ttl.js'

export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit'

export interface DeathEntry {
  reason: DeathReason
  stream: string
  group: string
  exchange: string | null
  routingKey: string
  count: number
  time: string
  error?: string
}

export interface Death {
  readonly record: StoredRecord
  readonly reason: DeathReason
  readonly error?: string | undefined
}

/** Where a group's poison events go; the registry binds it to a stream or an exchange. */
export interface DeadLetterSink {
  /** Resolves once every record is durable at the target. */
  deadLetter(records: readonly AppendRecord[], values: readonly unknown[]): Promise<void>
}

/** A stored record's headers as an object; {} when it has none or they are not a JSON object. */
export function parseHeaders(record: StoredRecord): Record<string, unknown> {
  if (record.headers === undefined) return {}
  try {
    const h = JSON.parse(record.headers.toString('utf8')) as unknown
    return typeof h === 'object' && h !== null && !Array.isArray(h) ? (h as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/**
 * The headers of a dead-lettered event, RabbitMQ style: `x-death` holds one entry per
 * {stream, group, reason}, most recent first, whose count grows each time the event dies there
 * again; `x-first-death-*` keep the first death, `x-last-death-*` the latest.
 */
export function deathHeaders(record: StoredRecord, death: Omit<DeathEntry, 'count' | 'time' | 'exchange' | 'routingKey'>, nowMs: number): Record<string, unknown> {
  const headers = parseHeaders(record)
  const previous = Array.isArray(headers['x-death']) ? (headers['x-death'] as DeathEntry[]).filter((e) => typeof e === 'object' && e !== null) : []
  const time = new Date(nowMs).toISOString()
  const same = previous.findIndex((e) => e.reason === death.reason && e.stream === death.stream && e.group === death.group)
  let entry: DeathEntry
  if (same === -1) {
    entry = { reason: death.reason, stream: death.stream, group: death.group, exchange: record.exchange ?? null, routingKey: record.key, count: 1, time }
  } else {
    const old = previous.splice(same, 1)[0]!
    entry = { ...old, count: (typeof old.count === 'number' ? old.count : 0) + 1, time }
  }
  if (death.error !== undefined) entry.error = death.error
  else delete entry.error
  const out: Record<string, unknown> = { ...headers, 'x-death': [entry, ...previous] }
  // As RabbitMQ drops `expiration`: a TTL that killed the event must not kill its dead letter.
  if (Object.hasOwn(out, expiresAtHeader)) {
    out[originalExpiresAtHeader] = out[expiresAtHeader]
    delete out[expiresAtHeader]
  }
  if (headers['x-first-death-reason'] === undefined) {
    out['x-first-death-reason'] = death.reason
    out['x-first-death-stream'] = death.stream
    out['x-first-death-group'] = death.group
    out['x-first-death-exchange'] = record.exchange ?? null
  }
  out['x-last-death-reason'] = death.reason
  out['x-last-death-stream'] = death.stream
  out['x-last-death-group'] = death.group
  out['x-last-death-exchange'] = record.exchange ?? null
  return out
}

/** The record a dead-letter target stores: same body, id, key and origin; headers gain the death. */
export function deadLetterRecord(d: Death, stream: string, group: string, nowMs: number, routingKey?: string): AppendRecord {
  const headers = deathHeaders(d.record, { reason: d.reason, stream, group, ...(d.error !== undefined ? { error: d.error } : {}) }, nowMs)
  return {
    timestamp: d.record.timestamp,
    key: routingKey ?? d.record.key,
    body: Buffer.from(d.record.body),
    json: d.record.json,
    id: d.record.id,
    exchange: d.record.exchange,
    headers: Buffer.from(JSON.stringify(headers)),
  }
}

/** A stored JSON body parsed, for routing templates; undefined when it does not parse. */
export function safeParse(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown
  } catch {
    return undefined
  }
}
