// The records of a forwarded append on the internal port: the node that routed a publish sends
// each target stream's records as it would have stored them, and the home node stores them
// unchanged. Big-endian, length-prefixed, every length checked against what is left:
//
//   u32 count, then per record:
//   f64 timestamp | u8 flags (1 json, 2 id, 4 headers) | u16 key length, key
//   | [u16 id length, id] | [u32 headers length, headers] | u32 body length, body

import type { Delivery } from '../consumers/index.js'
import type { AppendRecord } from '../log/index.js'

const flagJson = 1
const flagId = 2
const flagHeaders = 4

export function encodeRecords(records: readonly AppendRecord[]): Buffer {
  const keys = records.map((r) => Buffer.from(r.key))
  const ids = records.map((r) => (r.id === undefined ? undefined : Buffer.from(r.id)))
  let size = 4
  records.forEach((r, i) => {
    size += 8 + 1 + 2 + keys[i]!.length + 4 + r.body.length
    if (ids[i] !== undefined) size += 2 + ids[i]!.length
    if (r.headers !== undefined) size += 4 + r.headers.length
  })
  const out = Buffer.allocUnsafe(size)
  let at = out.writeUInt32BE(records.length, 0)
  records.forEach((r, i) => {
    at = out.writeDoubleBE(r.timestamp, at)
    const id = ids[i]
    at = out.writeUInt8((r.json === true ? flagJson : 0) | (id !== undefined ? flagId : 0) | (r.headers !== undefined ? flagHeaders : 0), at)
    at = out.writeUInt16BE(keys[i]!.length, at)
    at += keys[i]!.copy(out, at)
    if (id !== undefined) {
      at = out.writeUInt16BE(id.length, at)
      at += id.copy(out, at)
    }
    if (r.headers !== undefined) {
      at = out.writeUInt32BE(r.headers.length, at)
      out.set(r.headers, at)
      at += r.headers.length
    }
    at = out.writeUInt32BE(r.body.length, at)
    out.set(r.body, at)
    at += r.body.length
  })
  return out
}

export class WireError extends Error {}

/** The records of `buf`, with the exchange they were published to; throws WireError when malformed. */
export function decodeRecords(buf: Buffer, exchange: string, maxRecords: number): AppendRecord[] {
  let at = 0
  const need = (n: number): void => {
    if (at + n > buf.length) throw new WireError(`truncated at byte ${at}: ${n} more bytes expected, ${buf.length - at} left`)
  }
  need(4)
  const count = buf.readUInt32BE(at)
  at += 4
  if (count > maxRecords) throw new WireError(`${count} records, over the ${maxRecords} a request may carry`)
  const out: AppendRecord[] = []
  for (let i = 0; i < count; i++) {
    need(11)
    const timestamp = buf.readDoubleBE(at)
    const flags = buf.readUInt8(at + 8)
    const keyLen = buf.readUInt16BE(at + 9)
    at += 11
    need(keyLen)
    const key = buf.toString('utf8', at, at + keyLen)
    at += keyLen
    let id: string | undefined
    if ((flags & flagId) !== 0) {
      need(2)
      const n = buf.readUInt16BE(at)
      at += 2
      need(n)
      id = buf.toString('utf8', at, at + n)
      at += n
    }
    let headers: Buffer | undefined
    if ((flags & flagHeaders) !== 0) {
      need(4)
      const n = buf.readUInt32BE(at)
      at += 4
      need(n)
      headers = buf.subarray(at, at + n)
      at += n
    }
    need(4)
    const bodyLen = buf.readUInt32BE(at)
    at += 4
    need(bodyLen)
    const body = buf.subarray(at, at + bodyLen)
    at += bodyLen
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new WireError(`record ${i + 1}: timestamp ${timestamp} is not whole milliseconds`)
    out.push({ timestamp, key, body, json: (flags & flagJson) !== 0, id, exchange, headers })
  }
  if (at !== buf.length) throw new WireError(`${buf.length - at} bytes after the last record`)
  return out
}

/**
 * Deliveries from a group's home to the node whose consumer takes them: each is its tag, count,
 * redelivered flag, offset and exchange, then its record as encodeRecords writes one.
 *
 *   u32 count, then per delivery:
 *   u16 tag length, tag | u32 delivery count | u8 redelivered | f64 offset
 *   | u16 exchange length, exchange | u32 record length, record (encodeRecords of one)
 */
export function encodeDeliveries(ds: readonly Delivery[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)]
  parts[0]!.writeUInt32BE(ds.length, 0)
  for (const d of ds) {
    const tag = Buffer.from(d.tag)
    const ex = Buffer.from(d.record.exchange ?? '')
    const rec = encodeRecords([d.record])
    const head = Buffer.allocUnsafe(2 + tag.length + 4 + 1 + 8 + 2 + ex.length + 4)
    let at = head.writeUInt16BE(tag.length, 0)
    at += tag.copy(head, at)
    at = head.writeUInt32BE(d.deliveryCount, at)
    at = head.writeUInt8(d.redelivered ? 1 : 0, at)
    at = head.writeDoubleBE(d.record.offset, at)
    at = head.writeUInt16BE(ex.length, at)
    at += ex.copy(head, at)
    head.writeUInt32BE(rec.length, at)
    parts.push(head, rec)
  }
  return Buffer.concat(parts)
}

export function decodeDeliveries(buf: Buffer): Delivery[] {
  let at = 0
  const need = (n: number): void => {
    if (at + n > buf.length) throw new WireError(`deliveries truncated at byte ${at}`)
  }
  need(4)
  const count = buf.readUInt32BE(0)
  at = 4
  const out: Delivery[] = []
  for (let i = 0; i < count; i++) {
    need(2)
    const tagLen = buf.readUInt16BE(at)
    at += 2
    need(tagLen + 4 + 1 + 8 + 2)
    const tag = buf.toString('utf8', at, at + tagLen)
    at += tagLen
    const deliveryCount = buf.readUInt32BE(at)
    const redelivered = buf.readUInt8(at + 4) === 1
    const offset = buf.readDoubleBE(at + 5)
    const exLen = buf.readUInt16BE(at + 13)
    at += 15
    need(exLen + 4)
    const exchange = buf.toString('utf8', at, at + exLen)
    at += exLen
    const recLen = buf.readUInt32BE(at)
    at += 4
    need(recLen)
    const [r] = decodeRecords(buf.subarray(at, at + recLen), exchange, 1)
    at += recLen
    if (r === undefined) throw new WireError(`delivery ${i + 1} carries no record`)
    out.push({
      tag,
      deliveryCount,
      redelivered,
      record: { offset, timestamp: r.timestamp, key: r.key, body: Buffer.from(r.body.buffer, r.body.byteOffset, r.body.length), json: r.json === true, id: r.id, exchange: exchange === '' ? undefined : exchange, headers: r.headers === undefined ? undefined : Buffer.from(r.headers.buffer, r.headers.byteOffset, r.headers.length) },
    })
  }
  if (at !== buf.length) throw new WireError(`${buf.length - at} bytes after the last delivery`)
  return out
}
