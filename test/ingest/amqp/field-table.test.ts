import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AmqpProtocolError, decodeFieldTable, encodeFieldTable, type FieldTable, fieldNestingMax, fieldNumber, fieldString, isFieldTable, ReplyCode, Typed } from '../../../src/ingest/amqp/codec.js'
import { fieldTable, scalarByTag } from './arbitraries.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex')

function decodeError(bytes: Buffer): AmqpProtocolError {
  try {
    decodeFieldTable(bytes)
  } catch (err) {
    expect(err).toBeInstanceOf(AmqpProtocolError)
    return err as AmqpProtocolError
  }
  throw new Error('expected a decode error')
}

describe('field tables', () => {
  it('round-trips a table holding every type tag, nested in tables and arrays', () => {
    const every: FieldTable = {
      t: true,
      f0: false,
      b: new Typed('b', -5),
      B: new Typed('B', 250),
      s: new Typed('s', -300),
      u: new Typed('u', 65000),
      I: -70000,
      i: new Typed('i', 4_000_000_000),
      lBig: 1n,
      lBigHuge: -(1n << 62n),
      lNum: 2 ** 40,
      f: new Typed('f', 1.5),
      d: 0.25,
      dInt: new Typed('d', 3),
      dNegZero: -0,
      D: new Typed('D', { scale: 2, digits: 12345 }),
      T: new Typed('T', 1_700_000_000),
      S: 'héllo',
      SBad: new Typed('S', Buffer.from([0xc3, 0x28])),
      x: Buffer.from([0, 1, 2, 255]),
      V: null,
      A: [1, 'two', [null, { deep: [true] }], Buffer.alloc(0)],
      F: { nested: { more: { x: new Typed('u', 1) } }, empty: {} },
    }
    const bytes = encodeFieldTable(every)
    const decoded = decodeFieldTable(bytes)
    expect(decoded).toEqual(every)
    expect(encodeFieldTable(decoded)).toEqual(bytes)
  })

  it('round-trips each tag alone (property)', () => {
    for (const [tag, arb] of Object.entries(scalarByTag)) {
      fc.assert(
        fc.property(arb, (v) => {
          const table = { [tag]: v }
          const bytes = encodeFieldTable(table)
          expect(bytes[4 + 1 + Buffer.byteLength(tag)]).toBe(tag.charCodeAt(0))
          expect(decodeFieldTable(bytes)).toEqual(table)
        }),
        { numRuns: 200 },
      )
    }
  })

  it('round-trips generated nested tables, and re-encodes to the same bytes (property)', () => {
    fc.assert(
      fc.property(fieldTable, (table) => {
        const bytes = encodeFieldTable(table)
        const decoded = decodeFieldTable(bytes)
        expect(decoded).toEqual(table)
        expect(encodeFieldTable(decoded).equals(bytes)).toBe(true)
      }),
      { numRuns: 500 },
    )
  })

  it('encodes plain values with the tags RabbitMQ clients use', () => {
    // {"a": 1} → u32 len | 01 'a' | 'I' 00000001
    expect(encodeFieldTable({ a: 1 }).toString('hex')).toBe('00000007' + '0161' + '49' + '00000001')
    expect(encodeFieldTable({ s: 'ok' }).toString('hex')).toBe('00000009' + '0173' + '53' + '00000002' + ascii('ok'))
    expect(encodeFieldTable({ t: true }).toString('hex')).toBe('00000004' + '0174' + '74' + '01')
    expect(encodeFieldTable({ v: null }).toString('hex')).toBe('00000003' + '0176' + '56')
    expect(encodeFieldTable({ l: 2 ** 32 }).toString('hex')).toBe('0000000b' + '016c' + '6c' + '0000000100000000')
    expect(encodeFieldTable({ d: 0.5 }).toString('hex')).toBe('0000000b' + '0164' + '64' + '3fe0000000000000')
    expect(encodeFieldTable({ a: [1] }).toString('hex')).toBe('0000000c' + '0161' + '41' + '00000005' + '49' + '00000001')
    expect(encodeFieldTable({}).toString('hex')).toBe('00000000')
  })

  it('decodes hand-written bytes of every numeric tag', () => {
    const bytes = hex(`
      0000003e
      01 62 62 ff
      01 42 42 ff
      01 73 73 fffe
      01 75 75 fffe
      01 49 49 fffffffe
      01 69 69 fffffffe
      01 6c 6c fffffffffffffffe
      01 54 54 0000000065000000
      01 44 44 02 00000101`)
    expect(decodeFieldTable(bytes)).toEqual({
      b: new Typed('b', -1),
      B: new Typed('B', 255),
      s: new Typed('s', -2),
      u: new Typed('u', 65534),
      I: -2,
      i: new Typed('i', 4294967294),
      l: -2n,
      T: new Typed('T', 0x65000000),
      D: new Typed('D', { scale: 2, digits: 257 }),
    })
  })

  it('reads values whatever tag the client chose', () => {
    const t = decodeFieldTable(encodeFieldTable({ a: new Typed('s', 1000), b: 5, c: 2n ** 40n, d: new Typed('l', 7), e: 'x', f: new Typed('S', Buffer.from('y')), g: {} }))
    expect(fieldNumber(t.a)).toBe(1000)
    expect(fieldNumber(t.b)).toBe(5)
    expect(fieldNumber(t.c)).toBe(2 ** 40)
    expect(fieldNumber(t.d)).toBe(7)
    expect(fieldNumber(t.e)).toBeUndefined()
    expect(fieldNumber(2n ** 60n)).toBeUndefined()
    expect(fieldString(t.e)).toBe('x')
    expect(fieldString(t.f)).toBe('y')
    expect(isFieldTable(t.g)).toBe(true)
    expect(isFieldTable(t.a)).toBe(false)
  })

  it('keeps a "__proto__" key as data', () => {
    const decoded = decodeFieldTable(hex('0000000f 095f5f70726f746f5f5f 49 00000001'))
    expect(Object.getPrototypeOf(decoded)).toBeNull()
    expect(Object.keys(decoded)).toEqual(['__proto__'])
    expect(decoded['__proto__']).toBe(1)
  })

  it('refuses an unknown type tag with 502', () => {
    const err = decodeError(hex('00000003 0161 5a'))
    expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR)
    expect(err.message).toMatch(/unknown field type tag 0x5a \('Z'\)/)
  })

  it('refuses truncated values and lengths past the table with 502', () => {
    for (const bad of ['00000004 0161 49 00', '00000002 0561', '000000ff 0161 56', '00000007 0161 53 000000ff', '00000007 0161 41 00000009', '00000001']) {
      expect(decodeError(hex(bad)).replyCode).toBe(ReplyCode.SYNTAX_ERROR)
    }
  })

  it('refuses nesting past the limit with 502 instead of overflowing the stack', () => {
    const depth = 100_000
    // Arrays nested `depth` deep: 'A' u32 len, each wrapping the next.
    const buf = Buffer.alloc(4 + 2 + depth * 5)
    let off = 0
    buf.writeUInt32BE(buf.length - 4, off)
    off += 4
    buf.write('\x01a', off, 'latin1')
    off += 2
    for (let i = 0; i < depth; i++) {
      buf[off] = 0x41
      buf.writeUInt32BE(buf.length - off - 5, off + 1)
      off += 5
    }
    const err = decodeError(buf)
    expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR)
    expect(err.message).toMatch(/nested deeper/)
    let nested: FieldTable = {}
    for (let i = 0; i < fieldNestingMax; i++) nested = { n: nested }
    expect(decodeFieldTable(encodeFieldTable(nested))).toEqual(nested)
  })

  it('refuses values it cannot encode, as programmer errors', () => {
    expect(() => encodeFieldTable({ k: new Typed('b', 200) })).toThrow(RangeError)
    expect(() => encodeFieldTable({ k: 1n << 64n })).toThrow(RangeError)
    expect(() => encodeFieldTable({ ['k'.repeat(256)]: 1 })).toThrow(RangeError)
    expect(() => encodeFieldTable({ k: (() => 1) as unknown as number })).toThrow(TypeError)
  })

  it('never throws anything but AmqpProtocolError on random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (body) => {
        const buf = Buffer.alloc(4 + body.length)
        buf.writeUInt32BE(body.length)
        buf.set(body, 4)
        try {
          decodeFieldTable(buf)
        } catch (err) {
          expect(err).toBeInstanceOf(AmqpProtocolError)
        }
      }),
      { numRuns: 2000 },
    )
  })
})
