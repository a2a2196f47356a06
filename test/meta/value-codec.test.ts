import { describe, expect, test } from 'vitest'
import { deliveryStateCodec, jsonCodec, settledRangeCodec } from '../../src/meta/value-codec.js'

describe('value codecs', () => {
  test('binary records round-trip at their documented sizes', () => {
    expect(settledRangeCodec.encode({ end: 99 }).toString('hex')).toBe('01' + '0000000000000063')
    expect(settledRangeCodec.decode(settledRangeCodec.encode({ end: 99 }))).toEqual({ end: 99 })

    for (const d of [
      { count: 1, dueAtMs: null, parked: false },
      { count: 5, dueAtMs: 0, parked: true },
      { count: 2 ** 32 - 1, dueAtMs: 1_700_000_000_000, parked: false },
    ]) {
      expect(deliveryStateCodec.encode(d)).toHaveLength(14)
      expect(deliveryStateCodec.decode(deliveryStateCodec.encode(d))).toEqual(d)
    }

    const json = { type: 'topic', alternate: 'unrouted', args: [1, null, true] }
    expect(jsonCodec().decode(jsonCodec().encode(json))).toEqual(json)
  })

  test('an unknown layout version or a wrong length is refused, not misread', () => {
    const bytes = settledRangeCodec.encode({ end: 1 })
    bytes[0] = 2
    expect(() => settledRangeCodec.decode(bytes)).toThrow(/layout version 2/)
    expect(() => deliveryStateCodec.decode(Buffer.from('01', 'hex'))).toThrow(/1 bytes/)
  })
})
