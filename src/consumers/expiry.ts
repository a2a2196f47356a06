import type { StoredRecord } from '../log/index.js'
import { expiresAtHeader } from '../streams/ttl.js'
import { parseHeaders } from './dead-letter.js'

// Most events carry no TTL: a byte search spares them a JSON parse of their headers.
const marker = Buffer.from(`"${expiresAtHeader}"`)

/** When an event expires for a group: the earlier of its own TTL and the group's `messageTtl`. */
export function expiryOf(record: StoredRecord, messageTtlMs: number | null): number {
  let at = messageTtlMs === null ? Number.POSITIVE_INFINITY : record.timestamp + messageTtlMs
  const h = record.headers
  if (h !== undefined && h.indexOf(marker) !== -1) {
    const v = parseHeaders(record)[expiresAtHeader]
    if (typeof v === 'number' && Number.isFinite(v) && v < at) at = v
  }
  return at
}
