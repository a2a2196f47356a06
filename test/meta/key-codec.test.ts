import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { keyCodec, oneOf, prefixEnd, str, u64 } from '../../src/meta/key-codec.js'

const settledKey = keyCodec(0x03, [str(), u64()])

// Logical order: names by Unicode code point (UTF-8 byte order), then offsets numerically.
function codePointCompare(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) as number)
  const y = Array.from(b, (c) => c.codePointAt(0) as number)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number)
  }
  return x.length - y.length
}
const logicalCompare = (a: [string, number], b: [string, number]): number => codePointCompare(a[0], b[0]) || a[1] - b[1]
const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0)

// Names include NUL and astral characters on purpose: both are where naive encodings break.
const nameArb = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', 'a', 'a\0', 'a\0b', 'ab', '\0', '\u{10ffff}', '\uffff'))
const offsetArb = fc.oneof(fc.nat(), fc.constantFrom(0, 255, 256, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
const pairArb = fc.tuple(nameArb, offsetArb)

describe('key codec', () => {
  test('encoded byte order equals logical (name, offset) order', () => {
    fc.assert(
      fc.property(pairArb, pairArb, (a, b) => {
        expect(sign(Buffer.compare(settledKey.encode(a), settledKey.encode(b)))).toBe(sign(logicalCompare(a, b)))
      }),
      { numRuns: 5000 },
    )
  })

  test('sorting many encoded keys gives the logical order', () => {
    fc.assert(
      fc.property(fc.array(pairArb, { maxLength: 50 }), (pairs) => {
        const byBytes = pairs.map((p) => settledKey.encode(p)).sort(Buffer.compare).map((k) => settledKey.decode(k))
        expect(byBytes).toEqual([...pairs].sort(logicalCompare))
      }),
    )
  })

  test('decode inverts encode', () => {
    fc.assert(
      fc.property(pairArb, (p) => {
        expect(settledKey.decode(settledKey.encode(p))).toEqual(p)
      }),
    )
  })

  test('a sub-tuple encodes to a byte prefix of every key that starts with it', () => {
    fc.assert(
      fc.property(pairArb, ([name, offset]) => {
        const prefix = settledKey.encode([name])
        const key = settledKey.encode([name, offset])
        expect(key.subarray(0, prefix.length)).toEqual(prefix)
        const end = prefixEnd(prefix) as Buffer
        expect(Buffer.compare(key, end)).toBe(-1)
      }),
    )
  })

  test('another name never falls inside a name prefix range', () => {
    fc.assert(
      fc.property(pairArb, pairArb, ([a], [b, offset]) => {
        fc.pre(a !== b)
        const prefix = settledKey.encode([a])
        const end = prefixEnd(prefix) as Buffer
        const key = settledKey.encode([b, offset])
        const inside = Buffer.compare(key, prefix) >= 0 && Buffer.compare(key, end) < 0
        expect(inside).toBe(false)
      }),
    )
  })

  test('byte layout: namespace, escaped name, terminator, big-endian u64', () => {
    expect(settledKey.encode(['g\0', 258]).toString('hex')).toBe('03' + '67' + '00ff' + '0000' + '0000000000000102')
    expect(settledKey.encode(['g', 2 ** 32 + 1]).toString('hex')).toBe('03' + '67' + '0000' + '0000000100000001')
  })

  test('rejects values it cannot encode in order', () => {
    expect(() => settledKey.encode(['g', -1])).toThrow(/u64/)
    expect(() => settledKey.encode(['g', 1.5])).toThrow(/u64/)
    expect(() => settledKey.encode(['g', 2 ** 53])).toThrow(/u64/)
    expect(() => settledKey.encode(['\ud800', 1])).toThrow(/surrogate/)
    const kinds = keyCodec(0x01, [oneOf(['exchange', 'stream']), str()])
    expect(() => kinds.encode(['queue' as 'stream', 'x'])).toThrow(/one of/)
  })

  test('decode rejects keys of another namespace or with trailing bytes', () => {
    const good = settledKey.encode(['g', 1])
    expect(() => settledKey.decode(Buffer.concat([good, Buffer.of(0)]))).toThrow(/trailing/)
    expect(() => settledKey.decode(Buffer.concat([Buffer.of(0x04), good.subarray(1)]))).toThrow(/namespace/)
    expect(() => settledKey.decode(good.subarray(0, good.length - 1))).toThrow(/ends inside/)
  })

  test('prefixEnd carries past 0xff bytes', () => {
    expect(prefixEnd(Buffer.from('01ff', 'hex'))).toEqual(Buffer.from('02', 'hex'))
    expect(prefixEnd(Buffer.from('0100', 'hex'))).toEqual(Buffer.from('0101', 'hex'))
    expect(prefixEnd(Buffer.from('ffff', 'hex'))).toBeUndefined()
  })
})
