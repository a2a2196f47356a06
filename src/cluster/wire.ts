// The records of a forwarded append on the internal port: the node that routed a publish sends
// each target stream's records as it would have stored them, and the home node stores them
// unchanged. Big-endian, length-prefixed, every length checked against what is left:
//
//   u32 count, then per record:
//   f64 timestamp | u8 flags (1 json, 2 id, 4 headers) | u16 key length, key
//   | [u16 id length, id] | [u32 headers length, headers] | u32 body length, body

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
