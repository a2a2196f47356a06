import { isUtf8 } from 'node:buffer'
import { protocolErrors } from './protocol-error.js'

// Primitive AMQP types, all big-endian:
//   octet u8 | short u16 | long u32 | longlong u64 | timestamp u64 (seconds)
//   shortstr: u8 length | bytes (UTF-8 by convention, at most 255 bytes)
//   longstr:  u32 length | bytes (binary)
//
// 64-bit rule: longlong and timestamp decode to a JS number. Values above 2^53 - 1 lose precision;
// Sluice never issues delivery tags or body sizes that large, so a client sending one still gets
// "unknown delivery tag" (or a size limit error) as it would from RabbitMQ. Field tables are the
// exception: there 'l' keeps full precision (see field-table.ts).

const TWO_32 = 4_294_967_296

/**
 * Whether `text`, decoded from buf[start, end), came from bytes that are not UTF-8. A shortstr
 * that is not is a 502 SYNTAX_ERROR naming the field, rather than a name quietly changed to
 * U+FFFD (two names becoming one, a 255-byte name becoming one too long to send back). Only a
 * decoded U+FFFD makes the isUtf8 call worth it.
 */
export function notUtf8(text: string, buf: Buffer, start: number, end: number): boolean {
  return text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))
}

/** Reads one frame payload with bounds checks; a short read is a 502 SYNTAX_ERROR, never a RangeError. */
export class Reader {
  buf: Buffer
  pos: number
  end: number

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  need(n: number, what: string): void {
    if (this.end - this.pos < n) throw protocolErrors.syntax(`truncated ${what}: needs ${n} bytes, ${this.end - this.pos} left`)
  }

  u8(what = 'octet'): number {
    this.need(1, what)
    return this.buf[this.pos++]!
  }

  u16(what = 'short'): number {
    this.need(2, what)
    const b = this.buf
    const p = this.pos
    this.pos = p + 2
    return (b[p]! << 8) | b[p + 1]!
  }

  u32(what = 'long'): number {
    this.need(4, what)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  u64(what = 'longlong'): number {
    this.need(8, what)
    const b = this.buf
    const p = this.pos
    this.pos = p + 8
    return b.readUInt32BE(p) * TWO_32 + b.readUInt32BE(p + 4)
  }

  shortstr(what = 'shortstr'): string {
    this.need(1, what)
    const len = this.buf[this.pos]!
    this.need(1 + len, what)
    const start = this.pos + 1
    this.pos = start + len
    if (len === 0) return ''
    const text = this.buf.toString('utf8', start, start + len)
    if (notUtf8(text, this.buf, start, start + len)) throw protocolErrors.syntax(`${what} is not valid UTF-8`)
    return text
  }

  /** A view of the bytes, not a copy: it stays valid as long as the frame's buffer does. */
  longstr(what = 'longstr'): Buffer {
    const len = this.u32(what)
    this.need(len, what)
    const start = this.pos
    this.pos = start + len
    return this.buf.subarray(start, start + len)
  }
}

/** UTF-8 byte length, with a loop for short ASCII strings, the usual case for names and keys. */
export function utf8Length(s: string): number {
  const n = s.length
  if (n > 32) return Buffer.byteLength(s, 'utf8')
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8')
  return n
}

export function shortstrLength(s: string, what: string): number {
  const n = utf8Length(s)
  if (n > 255) throw new RangeError(`${what} is ${n} bytes in UTF-8; a shortstr holds at most 255`)
  return n
}

/** Writes a shortstr whose byte length the caller already measured. */
export function writeShortstr(buf: Buffer, off: number, s: string, len: number): number {
  buf[off] = len
  if (len === s.length) {
    // ASCII: a JS loop beats the native call for the short names and keys AMQP carries.
    for (let i = 0; i < len; i++) buf[off + 1 + i] = s.charCodeAt(i)
  } else {
    buf.write(s, off + 1, len, 'utf8')
  }
  return off + 1 + len
}

export function writeU16(buf: Buffer, off: number, v: number): number {
  buf[off] = v >>> 8
  buf[off + 1] = v & 0xff
  return off + 2
}

export function writeU32(buf: Buffer, off: number, v: number): number {
  buf[off] = v >>> 24
  buf[off + 1] = (v >>> 16) & 0xff
  buf[off + 2] = (v >>> 8) & 0xff
  buf[off + 3] = v & 0xff
  return off + 4
}

/** Writes an unsigned 64-bit integer given as a non-negative JS integer (see the 64-bit rule above). */
export function writeU64(buf: Buffer, off: number, v: number): number {
  const hi = Math.floor(v / TWO_32)
  writeU32(buf, off, hi)
  writeU32(buf, off + 4, v - hi * TWO_32)
  return off + 8
}

export function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} must be an integer in [0, ${max}], got ${v}`)
}

export const U8_MAX = 0xff
export const U16_MAX = 0xffff
export const U32_MAX = 0xffff_ffff
/** The largest u64 this codec writes from a JS number: 2^64 - 1 rounds up, so stop below it. */
export const U64_MAX_NUMBER = 18_446_744_073_709_549_568
