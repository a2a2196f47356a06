import { crc32c } from './crc.js'

// On-disk record batch, big-endian. docs/storage.md is the byte-by-byte reference; keep both in step.
//
// Batch header (48 bytes):
//   0 u32 length            whole batch, header included
//   4 u32 crc               CRC-32C of bytes [8, length)
//   8 u16 magic             0x534c ("SL")
//  10 u8  version           1
//  11 u8  attributes        0 (reserved for compression)
//  12 u64 baseOffset
//  20 u32 recordCount       >= 1
//  24 u64 firstTimestamp    ms since the epoch, of the first record
//  32 u64 lastTimestamp     of the last record
//  40 u64 maxTimestamp      largest in the batch: time lookups and retention use it
// Record, repeated recordCount times:
//   0 u32 recordLength      bytes after this field
//   4 u32 offsetDelta       offset - baseOffset
//   8 i48 timestampDelta    timestamp - firstTimestamp
//  14 u8  attributes        bit 0: body is JSON, bit 1: has id, bit 2: has headers, bit 3: has exchange
//  15 u16 keyLength, key (UTF-8)
//     [u8 exchangeLength, exchange (UTF-8)] when bit 3
//     [u16 idLength, id (UTF-8)]           when bit 1
//     [u32 headersLength, headers (JSON)]  when bit 2
//     u32 bodyLength, body

export const batchHeaderBytes = 48
export const batchMagic = 0x534c
export const batchVersion = 1
const recordFixedBytes = 4 + 4 + 6 + 1 + 2 + 4
const keyBytesMax = 0xffff
const idBytesMax = 0xffff
const twoTo32 = 0x1_0000_0000

export const recordFlags = { json: 1, id: 2, headers: 4, exchange: 8 } as const
/** Timestamps are stored as deltas in 48 signed bits, so every timestamp must be below 2^47 ms (year 6429). */
export const timestampMaxMs = 2 ** 47 - 1
const exchangeBytesMax = 0xff

/** What a door hands to the log: one event, already serialised. */
export interface AppendRecord {
  readonly timestamp: number
  readonly key: string
  readonly body: Uint8Array
  readonly json?: boolean | undefined
  readonly id?: string | undefined
  /** The exchange it was published to: dead-lettering and redrive route back through it. */
  readonly exchange?: string | undefined
  /** Already-serialised JSON object of headers, so the encoder never stringifies on the hot path. */
  readonly headers?: Uint8Array | undefined
}

/** A record read back from the log. */
export interface StoredRecord {
  readonly offset: number
  readonly timestamp: number
  readonly key: string
  readonly body: Buffer
  readonly json: boolean
  readonly id: string | undefined
  readonly exchange: string | undefined
  readonly headers: Buffer | undefined
}

export interface BatchHeader {
  readonly length: number
  readonly crc: number
  readonly baseOffset: number
  readonly recordCount: number
  readonly firstTimestamp: number
  readonly lastTimestamp: number
  readonly maxTimestamp: number
}

export class RecordTooLargeError extends Error {
  constructor(readonly field: string, readonly bytes: number, readonly limit: number) {
    super(`record ${field} of ${bytes} bytes is over the format's ${limit}-byte limit`)
  }
}

/**
 * The bytes a record takes in its batch (its length field included, the batch header not): the
 * size a group's `maxBacklogBytes` counts, the same whether the record is about to be appended
 * or was read back.
 */
export function storedRecordBytes(r: Pick<AppendRecord, 'key' | 'body' | 'id' | 'exchange' | 'headers'>): number {
  let size = recordFixedBytes + Buffer.byteLength(r.key) + r.body.length
  if (r.id !== undefined) size += 2 + Buffer.byteLength(r.id)
  if (r.exchange !== undefined) size += 1 + Buffer.byteLength(r.exchange)
  if (r.headers !== undefined) size += 4 + r.headers.length
  return size
}

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / twoTo32), at)
  buf.writeUInt32BE(value >>> 0, at + 4)
}

function readU64(buf: Uint8Array, at: number): number {
  const b = buf as Buffer
  return b.readUInt32BE(at) * twoTo32 + b.readUInt32BE(at + 4)
}

/**
 * Encode records into one batch. The size is computed first so the batch is a single allocation
 * and a single write; that is what makes group commit cheap.
 */
export function encodeBatch(records: readonly AppendRecord[], baseOffset: number): Buffer {
  if (records.length === 0) throw new RangeError('a batch holds at least one record')
  const keyLens = new Array<number>(records.length)
  const idLens = new Array<number>(records.length)
  const exLens = new Array<number>(records.length)
  let size = batchHeaderBytes
  let maxTimestamp = 0
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    const keyLen = Buffer.byteLength(r.key)
    if (keyLen > keyBytesMax) throw new RecordTooLargeError('key', keyLen, keyBytesMax)
    const idLen = r.id === undefined ? -1 : Buffer.byteLength(r.id)
    if (idLen > idBytesMax) throw new RecordTooLargeError('id', idLen, idBytesMax)
    const exLen = r.exchange === undefined ? -1 : Buffer.byteLength(r.exchange)
    if (exLen > exchangeBytesMax) throw new RecordTooLargeError('exchange', exLen, exchangeBytesMax)
    keyLens[i] = keyLen
    idLens[i] = idLen
    exLens[i] = exLen
    size += recordFixedBytes + keyLen + r.body.length
    if (idLen >= 0) size += 2 + idLen
    if (exLen >= 0) size += 1 + exLen
    if (r.headers !== undefined) size += 4 + r.headers.length
    if (!Number.isSafeInteger(r.timestamp) || r.timestamp < 0 || r.timestamp > timestampMaxMs) throw new RangeError(`timestamp ${r.timestamp} is outside 0..${timestampMaxMs} ms`)
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp
  }
  const buf = Buffer.allocUnsafe(size)
  const first = records[0]!.timestamp
  buf.writeUInt32BE(size, 0)
  buf.writeUInt16BE(batchMagic, 8)
  buf.writeUInt8(batchVersion, 10)
  buf.writeUInt8(0, 11)
  writeU64(buf, baseOffset, 12)
  buf.writeUInt32BE(records.length, 20)
  writeU64(buf, first, 24)
  writeU64(buf, records[records.length - 1]!.timestamp, 32)
  writeU64(buf, maxTimestamp, 40)
  let p = batchHeaderBytes
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    const keyLen = keyLens[i]!
    const idLen = idLens[i]!
    const exLen = exLens[i]!
    const start = p
    p += 4
    buf.writeUInt32BE(i, p)
    buf.writeIntBE(r.timestamp - first, p + 4, 6)
    let flags = r.json === true ? recordFlags.json : 0
    if (idLen >= 0) flags |= recordFlags.id
    if (r.headers !== undefined) flags |= recordFlags.headers
    if (exLen >= 0) flags |= recordFlags.exchange
    buf[p + 10] = flags
    buf.writeUInt16BE(keyLen, p + 11)
    p += 13
    if (keyLen > 0) p += buf.write(r.key, p, keyLen, 'utf8')
    if (exLen >= 0) {
      buf[p++] = exLen
      if (exLen > 0) p += buf.write(r.exchange!, p, exLen, 'utf8')
    }
    if (idLen >= 0) {
      buf.writeUInt16BE(idLen, p)
      p += 2
      if (idLen > 0) p += buf.write(r.id!, p, idLen, 'utf8')
    }
    if (r.headers !== undefined) {
      buf.writeUInt32BE(r.headers.length, p)
      p += 4
      buf.set(r.headers, p)
      p += r.headers.length
    }
    buf.writeUInt32BE(r.body.length, p)
    p += 4
    buf.set(r.body, p)
    p += r.body.length
    buf.writeUInt32BE(p - start - 4, start)
  }
  buf.writeUInt32BE(crc32c(buf.subarray(8)), 4)
  return buf
}

/** Reads the fixed header fields; trusts nothing, checks nothing. */
export function readBatchHeader(buf: Uint8Array, at = 0): BatchHeader {
  const b = buf as Buffer
  return {
    length: b.readUInt32BE(at),
    crc: b.readUInt32BE(at + 4),
    baseOffset: readU64(b, at + 12),
    recordCount: b.readUInt32BE(at + 20),
    firstTimestamp: readU64(b, at + 24),
    lastTimestamp: readU64(b, at + 32),
    maxTimestamp: readU64(b, at + 40),
  }
}

export type BatchCheck =
  | { readonly ok: true; readonly header: BatchHeader }
  | { readonly ok: false; readonly torn: boolean; readonly reason: string }

/**
 * Validates the batch starting at `at` within `buf` (which holds `available` bytes from there on).
 * `torn` means the bytes simply end too early, as after a crash mid-write; anything else is damage.
 */
export function checkBatch(buf: Uint8Array, at: number, available: number): BatchCheck {
  if (available < batchHeaderBytes) return { ok: false, torn: true, reason: `${available} bytes, shorter than a batch header` }
  const b = buf as Buffer
  const length = b.readUInt32BE(at)
  const magic = b.readUInt16BE(at + 8)
  if (magic !== batchMagic) return { ok: false, torn: false, reason: `bad magic 0x${magic.toString(16)}` }
  if (b[at + 10] !== batchVersion) return { ok: false, torn: false, reason: `unknown batch version ${b[at + 10]}` }
  if (length < batchHeaderBytes + recordFixedBytes) return { ok: false, torn: false, reason: `batch length ${length} is too small` }
  if (length > available) return { ok: false, torn: true, reason: `batch of ${length} bytes but only ${available} remain` }
  const crc = b.readUInt32BE(at + 4)
  const actual = crc32c(b.subarray(at + 8, at + length))
  if (crc !== actual) return { ok: false, torn: false, reason: `CRC mismatch (stored ${crc.toString(16)}, computed ${actual.toString(16)})` }
  const header = readBatchHeader(b, at)
  if (header.recordCount === 0) return { ok: false, torn: false, reason: 'batch with zero records' }
  return { ok: true, header }
}

/** Whether buf[a, a+n) equals buf[b, b+n); a loop, as keys are short and a native call costs more. */
function sameBytes(buf: Buffer, a: number, b: number, n: number): boolean {
  if (b < 0) return false
  for (let i = 0; i < n; i++) if (buf[a + i] !== buf[b + i]) return false
  return true
}

/**
 * Decodes the records of a batch that already passed checkBatch. Record slices are views into
 * `batch`; callers that keep them past the read buffer's life must copy.
 */
export function decodeRecords(batch: Buffer, fromOffset = 0, out: StoredRecord[] = []): StoredRecord[] {
  const header = readBatchHeader(batch, 0)
  const end = header.length
  let p = batchHeaderBytes
  // The records of a batch mostly share their key and exchange: the string of the previous one is
  // reused when the bytes match, instead of a new string per record for the GC to collect.
  let prevKey = ''
  let prevKeyAt = -1
  let prevKeyLen = 0
  let prevEx: string | undefined
  let prevExAt = -1
  let prevExLen = 0
  for (let i = 0; i < header.recordCount; i++) {
    if (p + recordFixedBytes > end) throw new RangeError(`record ${i} runs past the batch end`)
    const recordEnd = p + 4 + batch.readUInt32BE(p)
    const offset = header.baseOffset + batch.readUInt32BE(p + 4)
    if (offset < fromOffset) {
      p = recordEnd
      continue
    }
    const timestamp = header.firstTimestamp + batch.readIntBE(p + 8, 6)
    const flags = batch[p + 14]!
    const keyLen = batch.readUInt16BE(p + 15)
    p += 17
    let key = ''
    if (keyLen > 0) {
      if (keyLen === prevKeyLen && sameBytes(batch, p, prevKeyAt, keyLen)) key = prevKey
      else prevKey = key = batch.toString('utf8', p, p + keyLen)
      prevKeyAt = p
      prevKeyLen = keyLen
    }
    p += keyLen
    let exchange: string | undefined
    if ((flags & recordFlags.exchange) !== 0) {
      const exLen = batch[p]!
      if (prevEx !== undefined && exLen === prevExLen && sameBytes(batch, p + 1, prevExAt, exLen)) exchange = prevEx
      else prevEx = exchange = batch.toString('utf8', p + 1, p + 1 + exLen)
      prevExAt = p + 1
      prevExLen = exLen
      p += 1 + exLen
    }
    let id: string | undefined
    if ((flags & recordFlags.id) !== 0) {
      const idLen = batch.readUInt16BE(p)
      id = batch.toString('utf8', p + 2, p + 2 + idLen)
      p += 2 + idLen
    }
    let headers: Buffer | undefined
    if ((flags & recordFlags.headers) !== 0) {
      const hLen = batch.readUInt32BE(p)
      headers = batch.subarray(p + 4, p + 4 + hLen)
      p += 4 + hLen
    }
    const bodyLen = batch.readUInt32BE(p)
    const body = batch.subarray(p + 4, p + 4 + bodyLen)
    p += 4 + bodyLen
    if (p !== recordEnd || p > end) throw new RangeError(`record ${i} fields do not add up to its length`)
    out.push({ offset, timestamp, key, body, json: (flags & recordFlags.json) !== 0, id, exchange, headers })
  }
  return out
}

export function batchLastOffset(header: BatchHeader): number {
  return header.baseOffset + header.recordCount - 1
}
