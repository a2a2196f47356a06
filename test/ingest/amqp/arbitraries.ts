// fast-check generators for the AMQP codec tests. Every generated value is in the codec's
// canonical form (what decoding produces), so encode → decode must give it back exactly.

import fc from 'fast-check'
import type { BasicProperties, FieldTable, FieldValue, MethodInit, MethodName } from '../../../src/ingest/amqp/codec.js'
import { Typed } from '../../../src/ingest/amqp/codec.js'
import { type ArgType, methodSpecs } from '../../../src/ingest/amqp/spec.js'

const I32_MIN = -0x8000_0000
const I32_MAX = 0x7fff_ffff

export const shortstr: fc.Arbitrary<string> = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => Buffer.byteLength(s) <= 255)
const longBytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))
const key = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => Buffer.byteLength(s) <= 255)

/** One arbitrary per wire tag, in canonical decoded form. */
export const scalarByTag: Record<string, fc.Arbitrary<FieldValue>> = {
  t: fc.boolean(),
  b: fc.integer({ min: -128, max: 127 }).map((v) => new Typed('b', v)),
  B: fc.integer({ min: 0, max: 255 }).map((v) => new Typed('B', v)),
  s: fc.integer({ min: -0x8000, max: 0x7fff }).map((v) => new Typed('s', v)),
  u: fc.integer({ min: 0, max: 0xffff }).map((v) => new Typed('u', v)),
  I: fc.integer({ min: I32_MIN, max: I32_MAX }),
  i: fc.integer({ min: 0, max: 0xffff_ffff }).map((v) => new Typed('i', v)),
  // 'l' decodes to a number when it is a safe integer outside the i32 range, else to a bigint.
  l: fc.oneof(
    fc.integer({ min: I32_MIN, max: I32_MAX }).map((v) => BigInt(v)),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).filter((v) => v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)),
    fc.oneof(fc.integer({ min: I32_MAX + 1, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: I32_MIN - 1 })),
  ),
  f: fc.float().map((v) => new Typed('f', v)),
  d: fc.double().map((v) => (Number.isSafeInteger(v) && !Object.is(v, -0) ? new Typed('d', v) : v)),
  D: fc.record({ scale: fc.integer({ min: 0, max: 255 }), digits: fc.integer({ min: 0, max: 0xffff_ffff }) }).map((v) => new Typed('D', v)),
  T: fc.maxSafeNat().map((v) => new Typed('T', v)),
  S: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constant(new Typed('S', Buffer.from([0x61, 0xff, 0xfe])))),
  x: longBytes,
  V: fc.constant(null),
}

export const { value: fieldValue, table: fieldTable } = fc.letrec<{ value: FieldValue; table: FieldTable; array: FieldValue[] }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, ...Object.values(scalarByTag), tie('array'), tie('table')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  table: fc.dictionary(key, tie('value'), { maxKeys: 5 }) as fc.Arbitrary<FieldTable>,
}))

const argArbitrary: Record<ArgType, fc.Arbitrary<unknown>> = {
  octet: fc.integer({ min: 0, max: 0xff }),
  short: fc.integer({ min: 0, max: 0xffff }),
  long: fc.integer({ min: 0, max: 0xffff_ffff }),
  longlong: fc.maxSafeNat(),
  shortstr,
  longstr: longBytes,
  bit: fc.boolean(),
  table: fieldTable,
}

/** A method with every argument (reserved ones too) and its ids, as decodeMethod returns it. */
export function methodArbitrary(name: MethodName): fc.Arbitrary<MethodInit & { classId: number; methodId: number }> {
  const [classId, methodId, args] = methodSpecs[name]
  const record: Record<string, fc.Arbitrary<unknown>> = {}
  for (const [argName, type] of args as readonly (readonly [string, ArgType])[]) record[argName] = argArbitrary[type]
  return fc.record(record).map((a) => ({ name, classId, methodId, ...a }) as unknown as MethodInit & { classId: number; methodId: number })
}

export const properties: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: shortstr,
    contentEncoding: shortstr,
    headers: fieldTable,
    deliveryMode: fc.integer({ min: 0, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    correlationId: shortstr,
    replyTo: shortstr,
    expiration: shortstr,
    messageId: shortstr,
    timestamp: fc.maxSafeNat(),
    type: shortstr,
    userId: shortstr,
    appId: shortstr,
    clusterId: shortstr,
  },
  { requiredKeys: [] },
)
