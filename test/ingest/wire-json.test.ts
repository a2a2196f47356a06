import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { toWireDelivery, wireDeliveryJson } from '../../src/ingest/http/groups.js'
import { toWireEvent, wireEventJson } from '../../src/ingest/http/routes.js'
import type { StoredRecord } from '../../src/log/index.js'

const jsonValue = fc.jsonValue()
const record: fc.Arbitrary<StoredRecord> = fc.record({
  offset: fc.nat(),
  timestamp: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  key: fc.string(),
  json: fc.boolean(),
  id: fc.option(fc.string({ minLength: 1 }), { nil: undefined }),
  exchange: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  value: jsonValue,
  raw: fc.uint8Array({ maxLength: 40 }),
  headers: fc.option(fc.dictionary(fc.string(), jsonValue, { maxKeys: 4 }), { nil: undefined }),
}).map((r) => ({
  offset: r.offset,
  timestamp: r.timestamp,
  key: r.key,
  json: r.json,
  id: r.id,
  exchange: r.exchange,
  body: r.json ? Buffer.from(JSON.stringify(r.value)) : Buffer.from(r.raw),
  headers: r.headers === undefined ? undefined : Buffer.from(JSON.stringify(r.headers)),
}))

describe('wire JSON built from stored bytes', () => {
  it('parses to exactly what the object form gives, for events and deliveries', () => {
    fc.assert(
      fc.property(record, fc.nat(), fc.boolean(), (r, count, redelivered) => {
        expect(JSON.parse(wireEventJson(r))).toEqual(JSON.parse(JSON.stringify(toWireEvent(r))))
        const d = { tag: `1-${r.offset}-${count + 1}`, record: r, deliveryCount: count + 1, redelivered }
        expect(JSON.parse(wireDeliveryJson('s', d))).toEqual(JSON.parse(JSON.stringify(toWireDelivery('s', d))))
      }),
      { numRuns: 500 },
    )
  })
})
