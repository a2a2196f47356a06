import assert from 'node:assert/strict'

// A key is: u8 namespace | part | part | ...
// Every part is encoded so that comparing encoded keys byte by byte (LevelDB's default
// comparator) gives the same order as comparing the logical tuples part by part:
//
//   str  UTF-8 bytes, each 0x00 byte written as 0x00 0xFF, then the terminator 0x00 0x00.
//        UTF-8 byte order is code-point order; the terminator is below every continuation
//        (any byte > 0x00, or the escape 0x00 0xFF), so "a" < "a\0" < "ab" holds encoded too.
//        Escaping rather than forbidding NUL lets client-supplied dedup ids be key parts.
//   u64  8 bytes big-endian, so numeric order is byte order. Held as a JS number: offsets
//        and millisecond times stay below 2^53, and a number avoids a BigInt per key on
//        the ack path.
//
// The encoding is prefix-free per part, so the encoding of a leading sub-tuple is a byte
// prefix of every key that starts with it: that is what makes "all keys of group g" and
// "offsets [a, b) of group g" single contiguous LevelDB ranges.

export type KeyPart = StrPart | U64Part | OneOfPart<string>

interface StrPart { readonly kind: 'str' }
interface U64Part { readonly kind: 'u64' }
interface OneOfPart<T extends string> { readonly kind: 'oneOf'; readonly values: readonly T[] }

export const str = (): StrPart => ({ kind: 'str' })
export const u64 = (): U64Part => ({ kind: 'u64' })
/** A string part restricted to `values`; decoding anything else is corruption. */
export const oneOf = <const T extends string>(values: readonly T[]): OneOfPart<T> => ({ kind: 'oneOf', values })

type PartValue<P> = P extends OneOfPart<infer T> ? T : P extends U64Part ? number : string
export type KeyOf<Parts extends readonly KeyPart[]> = { -readonly [I in keyof Parts]: PartValue<Parts[I]> }

/** The key itself or any leading sub-tuple of it, down to the empty tuple (the whole keyspace). */
export type KeyPrefix<K extends readonly unknown[]> = K extends readonly [...infer Head, unknown] ? K | KeyPrefix<Head> : K

export interface KeyCodec<K extends readonly unknown[]> {
  readonly namespace: number
  encode(key: K | KeyPrefix<K>): Buffer
  decode(bytes: Uint8Array): K
}

const u64Max = Number.MAX_SAFE_INTEGER
const twoTo32 = 0x1_0000_0000

export function keyCodec<const Parts extends readonly KeyPart[]>(namespace: number, parts: Parts): KeyCodec<KeyOf<Parts>> {
  assert.ok(Number.isInteger(namespace) && namespace >= 0 && namespace <= 0xff, `namespace ${namespace} is not a byte`)
  return {
    namespace,
    encode: (key) => encodeKey(namespace, parts, key as readonly unknown[]),
    decode: (bytes) => decodeKey(namespace, parts, bytes) as KeyOf<Parts>,
  }
}

function encodeKey(namespace: number, parts: readonly KeyPart[], key: readonly unknown[]): Buffer {
  assert.ok(key.length <= parts.length, `key has ${key.length} parts, the keyspace ${parts.length}`)
  const chunks: Buffer[] = [Buffer.of(namespace)]
  for (let i = 0; i < key.length; i++) {
    const part = parts[i] as KeyPart
    const value = key[i]
    if (part.kind === 'u64') {
      assert.ok(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= u64Max, `key part ${i}: ${String(value)} is not a u64 below 2^53`)
      const b = Buffer.allocUnsafe(8)
      b.writeUInt32BE(Math.floor(value / twoTo32), 0)
      b.writeUInt32BE(value % twoTo32, 4)
      chunks.push(b)
    } else {
      assert.ok(typeof value === 'string', `key part ${i}: ${String(value)} is not a string`)
      if (part.kind === 'oneOf') assert.ok(part.values.includes(value), `key part ${i}: ${value} is not one of ${part.values.join(', ')}`)
      chunks.push(escapeString(value))
    }
  }
  return Buffer.concat(chunks)
}

// Node 20 has String.prototype.isWellFormed; the ES2023 lib typings do not.
type WellFormedCheck = string & { isWellFormed(): boolean }

function escapeString(value: string): Buffer {
  // Lone surrogates would all encode as U+FFFD, so two different ids could share a key and
  // one event be dropped as a duplicate of the other; callers must validate input first.
  assert.ok((value as WellFormedCheck).isWellFormed(), 'key string is not well-formed UTF-16 (lone surrogate)')
  const raw = Buffer.from(value, 'utf8')
  let zeros = 0
  for (const byte of raw) if (byte === 0) zeros++
  const out = Buffer.allocUnsafe(raw.length + zeros + 2)
  let at = 0
  for (const byte of raw) {
    out[at++] = byte
    if (byte === 0) out[at++] = 0xff
  }
  out[at++] = 0
  out[at++] = 0
  return out
}

function decodeKey(namespace: number, parts: readonly KeyPart[], bytes: Uint8Array): unknown[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf[0] !== namespace) throw new Error(`key namespace ${String(buf[0])} is not ${namespace}`)
  const key: unknown[] = []
  let at = 1
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as KeyPart
    if (part.kind === 'u64') {
      if (at + 8 > buf.length) throw new Error(`key ends inside u64 part ${i}`)
      const value = buf.readUInt32BE(at) * twoTo32 + buf.readUInt32BE(at + 4)
      if (value > u64Max) throw new Error(`key part ${i} is above 2^53`)
      key.push(value)
      at += 8
      continue
    }
    const bytesOut: number[] = []
    for (;;) {
      if (at + 1 >= buf.length) throw new Error(`key ends inside string part ${i}`)
      const byte = buf[at] as number
      if (byte !== 0) {
        bytesOut.push(byte)
        at++
        continue
      }
      const next = buf[at + 1]
      at += 2
      if (next === 0) break
      if (next !== 0xff) throw new Error(`bad escape 0x00 0x${String(next?.toString(16))} in key part ${i}`)
      bytesOut.push(0)
    }
    const value = Buffer.from(bytesOut).toString('utf8')
    if (part.kind === 'oneOf' && !part.values.includes(value)) throw new Error(`key part ${i}: ${value} is not one of ${part.values.join(', ')}`)
    key.push(value)
  }
  if (at !== buf.length) throw new Error(`${buf.length - at} trailing bytes after the key`)
  return key
}

/**
 * The smallest byte string greater than every string that starts with `prefix`, or undefined
 * when there is none (all 0xff). Used as the exclusive upper bound of a prefix scan.
 */
export function prefixEnd(prefix: Uint8Array): Buffer | undefined {
  let end = prefix.length
  while (end > 0 && prefix[end - 1] === 0xff) end--
  if (end === 0) return undefined
  const out = Buffer.from(prefix.subarray(0, end))
  out[end - 1] = (out[end - 1] as number) + 1
  return out
}
