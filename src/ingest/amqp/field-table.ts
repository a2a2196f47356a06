import { isUtf8 } from 'node:buffer'
import { protocolErrors } from './protocol-error.js'
import { Reader, shortstrLength, U32_MAX, U64_MAX_NUMBER, utf8Length, writeShortstr, writeU32, writeU64 } from './wire.js'

// Field tables, with the type tags RabbitMQ and its clients use (the RabbitMQ errata, not the
// 0-9-1 spec's own list, which no client follows):
//
//   table: u32 byte length | (shortstr key | u8 tag | value)*
//   array: u32 byte length | (u8 tag | value)*
//
//   tag  value                            decodes to (see "Which JS value" below)
//   't'  u8, 0 = false                    boolean
//   'b'  i8            'B'  u8            Typed('b') / Typed('B')
//   's'  i16           'u'  u16           Typed('s') / Typed('u')
//   'I'  i32                              number
//   'i'  u32                              Typed('i')
//   'l'  i64                              number when a safe integer outside the i32 range, else bigint
//   'f'  float32                          Typed('f')
//   'd'  float64                          number, or Typed('d') when the value is a safe integer
//   'D'  u8 scale | u32 digits            Typed('D', { scale, digits })
//   'T'  u64 seconds                      Typed('T', seconds)
//   'S'  u32 length | bytes               string when valid UTF-8, else Typed('S', bytes)
//   'x'  u32 length | bytes               Buffer (a view into the frame)
//   'A'  array                            FieldValue[]
//   'F'  table                            FieldTable (a null-prototype object)
//   'V'  nothing                          null
//
// Which JS value: a decoded value is a plain JS value exactly when encoding that plain value gives
// the same tag back; otherwise it is wrapped in `Typed`, so decode → encode reproduces the bytes
// (headers pass through Sluice to consumers with the types their publisher chose). Plain values
// encode as: boolean 't'; number 'I' for i32 integers, 'l' for other safe integers, 'd' otherwise
// (and for -0); bigint 'l'; string 'S'; Buffer/Uint8Array 'x'; null 'V'; array 'A'; object 'F'.
// Use `fieldNumber` and friends to read a value whatever tag a client picked (amqplib sends
// x-message-ttl 1000 as 's', the Java client sends a Long as 'l').

export interface Decimal {
  /** Digits after the decimal point, 0..255. */
  readonly scale: number
  /** The unscaled value, u32. */
  readonly digits: number
}

interface TypedValues {
  b: number
  B: number
  s: number
  u: number
  I: number
  i: number
  l: bigint | number
  f: number
  d: number
  T: number
  D: Decimal
  S: Buffer
}
export type TypedTag = keyof TypedValues

/** A field value with an explicit wire type, for tags a plain JS value would not choose. */
export class Typed<T extends TypedTag = TypedTag> {
  readonly type: T
  readonly value: TypedValues[T]
  constructor(type: T, value: TypedValues[T]) {
    this.type = type
    this.value = value
  }
}

export type FieldValue = boolean | number | bigint | string | Buffer | Uint8Array | null | Typed | FieldArray | FieldTable
export type FieldArray = FieldValue[]
export interface FieldTable {
  [key: string]: FieldValue
}

/** Nesting deeper than this is refused, so a hostile frame of nested arrays cannot blow the stack. */
export const fieldNestingMax = 64

const I32_MIN = -0x8000_0000
const I32_MAX = 0x7fff_ffff
const I64_MIN = -(1n << 63n)
const I64_MAX = (1n << 63n) - 1n

// ---------------------------------------------------------------------------------------------
// Reading values whatever their tag

/** A numeric field value as a JS number (bigints outside the safe range and non-numbers give undefined). */
export function fieldNumber(v: FieldValue | undefined): number | undefined {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined
  if (v instanceof Typed) {
    const inner = v.value
    if (typeof inner === 'number') return inner
    if (typeof inner === 'bigint') return fieldNumber(inner)
  }
  return undefined
}

/** A string field value ('S' longstr, also when not valid UTF-8, decoded with replacement characters). */
export function fieldString(v: FieldValue | undefined): string | undefined {
  if (typeof v === 'string') return v
  if (v instanceof Typed && v.type === 'S') return (v.value as Buffer).toString('utf8')
  return undefined
}

/** True for a nested table (not an array, a Buffer or a Typed). */
export function isFieldTable(v: FieldValue | undefined): v is FieldTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Typed) && !(v instanceof Uint8Array)
}

// ---------------------------------------------------------------------------------------------
// Encoding: size first, then write into an exactly sized buffer

function numberTag(v: number): 'I' | 'l' | 'd' {
  if (Number.isInteger(v) && !Object.is(v, -0)) {
    if (v >= I32_MIN && v <= I32_MAX) return 'I'
    if (Number.isSafeInteger(v)) return 'l'
  }
  return 'd'
}

function bytesLength(v: Uint8Array, what: string): number {
  if (v.length > U32_MAX) throw new RangeError(`${what} is too long for a longstr`)
  return v.length
}

/** Encoded size of a table, including its u32 length prefix. */
export function fieldTableSize(table: FieldTable, depth = 0): number {
  if (depth > fieldNestingMax) throw new RangeError(`field table nested deeper than ${fieldNestingMax}`)
  let size = 4
  for (const key in table) {
    const v = table[key]
    if (v === undefined) continue
    size += 1 + shortstrLength(key, `field table key "${key.slice(0, 40)}"`) + fieldValueSize(v, depth)
  }
  return size
}

function fieldArraySize(arr: FieldArray, depth: number): number {
  if (depth > fieldNestingMax) throw new RangeError(`field array nested deeper than ${fieldNestingMax}`)
  let size = 4
  for (const v of arr) size += fieldValueSize(v, depth)
  return size
}

/** Encoded size of one tagged value, tag octet included. */
function fieldValueSize(v: FieldValue, depth: number): number {
  switch (typeof v) {
    case 'boolean':
      return 2
    case 'number': {
      const tag = numberTag(v)
      return tag === 'I' ? 5 : 9
    }
    case 'bigint':
      return 9
    case 'string':
      return 5 + utf8Length(v)
    case 'object':
      if (v === null) return 1
      if (v instanceof Typed) return typedSize(v)
      if (v instanceof Uint8Array) return 5 + bytesLength(v, 'byte array')
      if (Array.isArray(v)) return 1 + fieldArraySize(v, depth + 1)
      return 1 + fieldTableSize(v, depth + 1)
    default:
      throw new TypeError(`cannot encode a ${typeof v} in a field table`)
  }
}

function typedSize(v: Typed): number {
  switch (v.type) {
    case 'b':
    case 'B':
      return 2
    case 's':
    case 'u':
      return 3
    case 'I':
    case 'i':
    case 'f':
      return 5
    case 'l':
    case 'd':
    case 'T':
      return 9
    case 'D':
      return 6
    case 'S':
      return 5 + bytesLength(v.value as Buffer, 'longstr')
    default:
      throw new TypeError(`unknown field type tag ${JSON.stringify((v as Typed).type)}`)
  }
}

/** Writes a table (length prefix included) at `off`; returns the offset after it. */
export function writeFieldTable(buf: Buffer, off: number, table: FieldTable): number {
  const start = off
  off += 4
  for (const key in table) {
    const v = table[key]
    if (v === undefined) continue
    off = writeShortstr(buf, off, key, utf8Length(key))
    off = writeFieldValue(buf, off, v)
  }
  writeU32(buf, start, off - start - 4)
  return off
}

function writeFieldArray(buf: Buffer, off: number, arr: FieldArray): number {
  const start = off
  off += 4
  for (const v of arr) off = writeFieldValue(buf, off, v)
  writeU32(buf, start, off - start - 4)
  return off
}

function writeLongBytes(buf: Buffer, off: number, tag: number, bytes: Uint8Array): number {
  buf[off] = tag
  writeU32(buf, off + 1, bytes.length)
  buf.set(bytes, off + 5)
  return off + 5 + bytes.length
}

function writeFieldValue(buf: Buffer, off: number, v: FieldValue): number {
  switch (typeof v) {
    case 'boolean':
      buf[off] = 0x74 // 't'
      buf[off + 1] = v ? 1 : 0
      return off + 2
    case 'number': {
      const tag = numberTag(v)
      if (tag === 'I') {
        buf[off] = 0x49
        buf.writeInt32BE(v, off + 1)
        return off + 5
      }
      if (tag === 'l') {
        buf[off] = 0x6c
        buf.writeBigInt64BE(BigInt(v), off + 1)
        return off + 9
      }
      buf[off] = 0x64
      buf.writeDoubleBE(v, off + 1)
      return off + 9
    }
    case 'bigint':
      return writeInt64(buf, off, v)
    case 'string': {
      buf[off] = 0x53 // 'S'
      const len = buf.write(v, off + 5, 'utf8')
      writeU32(buf, off + 1, len)
      return off + 5 + len
    }
    case 'object':
      if (v === null) {
        buf[off] = 0x56 // 'V'
        return off + 1
      }
      if (v instanceof Typed) return writeTyped(buf, off, v)
      if (v instanceof Uint8Array) return writeLongBytes(buf, off, 0x78, v) // 'x'
      if (Array.isArray(v)) {
        buf[off] = 0x41 // 'A'
        return writeFieldArray(buf, off + 1, v)
      }
      buf[off] = 0x46 // 'F'
      return writeFieldTable(buf, off + 1, v)
    default:
      throw new TypeError(`cannot encode a ${typeof v} in a field table`)
  }
}

function writeInt64(buf: Buffer, off: number, v: bigint): number {
  if (v < I64_MIN || v > I64_MAX) throw new RangeError(`field value ${v} does not fit a signed 64-bit 'l'`)
  buf[off] = 0x6c // 'l'
  buf.writeBigInt64BE(v, off + 1)
  return off + 9
}

function checkInt(v: number, min: number, max: number, tag: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`field value ${v} does not fit type '${tag}' [${min}, ${max}]`)
}

function writeTyped(buf: Buffer, off: number, t: Typed): number {
  const tag = t.type
  buf[off] = tag.charCodeAt(0)
  const p = off + 1
  switch (tag) {
    case 'b': {
      const v = t.value as number
      checkInt(v, -0x80, 0x7f, tag)
      buf.writeInt8(v, p)
      return p + 1
    }
    case 'B': {
      const v = t.value as number
      checkInt(v, 0, 0xff, tag)
      buf[p] = v
      return p + 1
    }
    case 's': {
      const v = t.value as number
      checkInt(v, -0x8000, 0x7fff, tag)
      buf.writeInt16BE(v, p)
      return p + 2
    }
    case 'u': {
      const v = t.value as number
      checkInt(v, 0, 0xffff, tag)
      buf.writeUInt16BE(v, p)
      return p + 2
    }
    case 'I': {
      const v = t.value as number
      checkInt(v, I32_MIN, I32_MAX, tag)
      buf.writeInt32BE(v, p)
      return p + 4
    }
    case 'i': {
      const v = t.value as number
      checkInt(v, 0, U32_MAX, tag)
      buf.writeUInt32BE(v, p)
      return p + 4
    }
    case 'l': {
      const v = t.value as bigint | number
      if (typeof v === 'number' && !Number.isInteger(v)) throw new RangeError(`field value ${v} is not an integer for type 'l'`)
      return writeInt64(buf, off, typeof v === 'bigint' ? v : BigInt(v))
    }
    case 'f':
      buf.writeFloatBE(t.value as number, p)
      return p + 4
    case 'd':
      buf.writeDoubleBE(t.value as number, p)
      return p + 8
    case 'T': {
      const v = t.value as number
      checkInt(v, 0, U64_MAX_NUMBER, tag)
      return writeU64(buf, p, v)
    }
    case 'D': {
      const { scale, digits } = t.value as Decimal
      checkInt(scale, 0, 0xff, 'D scale')
      checkInt(digits, 0, U32_MAX, 'D digits')
      buf[p] = scale
      return writeU32(buf, p + 1, digits)
    }
    case 'S':
      return writeLongBytes(buf, off, 0x53, t.value as Buffer)
    default:
      throw new TypeError(`unknown field type tag ${JSON.stringify(tag)}`)
  }
}

/** Encodes a table on its own (length prefix included). */
export function encodeFieldTable(table: FieldTable): Buffer {
  const buf = Buffer.allocUnsafe(fieldTableSize(table))
  writeFieldTable(buf, 0, table)
  return buf
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Reads a table (length prefix included) at the reader's position. */
export function readFieldTable(r: Reader, depth = 0): FieldTable {
  if (depth > fieldNestingMax) throw protocolErrors.syntax(`field table nested deeper than ${fieldNestingMax}`)
  const len = r.u32('field table length')
  r.need(len, 'field table')
  const end = r.pos + len
  const outerEnd = r.end
  r.end = end // a value cannot run past its table
  const table: FieldTable = Object.create(null) as FieldTable
  while (r.pos < end) {
    const key = r.shortstr('field table key')
    table[key] = readFieldValue(r, depth)
  }
  r.end = outerEnd
  return table
}

function readFieldArray(r: Reader, depth: number): FieldArray {
  if (depth > fieldNestingMax) throw protocolErrors.syntax(`field array nested deeper than ${fieldNestingMax}`)
  const len = r.u32('field array length')
  r.need(len, 'field array')
  const end = r.pos + len
  const outerEnd = r.end
  r.end = end
  const arr: FieldArray = []
  while (r.pos < end) arr.push(readFieldValue(r, depth))
  r.end = outerEnd
  return arr
}

function readFieldValue(r: Reader, depth: number): FieldValue {
  const tag = r.u8('field type tag')
  const b = r.buf
  switch (tag) {
    case 0x74: // 't'
      return r.u8('bool') !== 0
    case 0x62: // 'b'
      r.need(1, "'b' value")
      return new Typed('b', b.readInt8(r.pos++))
    case 0x42: // 'B'
      return new Typed('B', r.u8("'B' value"))
    case 0x73: {
      // 's'
      r.need(2, "'s' value")
      const v = b.readInt16BE(r.pos)
      r.pos += 2
      return new Typed('s', v)
    }
    case 0x75: // 'u'
      return new Typed('u', r.u16("'u' value"))
    case 0x49: {
      // 'I'
      r.need(4, "'I' value")
      const v = b.readInt32BE(r.pos)
      r.pos += 4
      return v
    }
    case 0x69: // 'i'
      return new Typed('i', r.u32("'i' value"))
    case 0x6c: {
      // 'l'
      r.need(8, "'l' value")
      const v = b.readBigInt64BE(r.pos)
      r.pos += 8
      const n = Number(v)
      return Number.isSafeInteger(n) && (n < I32_MIN || n > I32_MAX) ? n : v
    }
    case 0x66: {
      // 'f'
      r.need(4, "'f' value")
      const v = b.readFloatBE(r.pos)
      r.pos += 4
      return new Typed('f', v)
    }
    case 0x64: {
      // 'd'
      r.need(8, "'d' value")
      const v = b.readDoubleBE(r.pos)
      r.pos += 8
      return numberTag(v) === 'd' ? v : new Typed('d', v)
    }
    case 0x44: {
      // 'D'
      const scale = r.u8("'D' scale")
      const digits = r.u32("'D' digits")
      return new Typed('D', { scale, digits })
    }
    case 0x54: // 'T'
      return new Typed('T', r.u64("'T' value"))
    case 0x53: {
      // 'S'
      const bytes = r.longstr("'S' value")
      return isUtf8(bytes) ? bytes.toString('utf8') : new Typed('S', bytes)
    }
    case 0x78: // 'x'
      return r.longstr("'x' value")
    case 0x41: // 'A'
      return readFieldArray(r, depth + 1)
    case 0x46: // 'F'
      return readFieldTable(r, depth + 1)
    case 0x56: // 'V'
      return null
    default:
      throw protocolErrors.syntax(`unknown field type tag 0x${tag.toString(16)}${tag >= 0x20 && tag < 0x7f ? ` ('${String.fromCharCode(tag)}')` : ''}`)
  }
}

/** Decodes a table on its own (length prefix included); throws AmqpProtocolError (502) when malformed. */
export function decodeFieldTable(buf: Buffer): FieldTable {
  const r = new Reader(buf)
  const table = readFieldTable(r)
  if (r.pos !== buf.length) throw protocolErrors.syntax(`${buf.length - r.pos} bytes after the field table`)
  return table
}
