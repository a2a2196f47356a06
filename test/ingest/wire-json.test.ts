import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { deliveriesJson, toWireDelivery, wireDeliveryJson } from '../../src/ingest/http/groups.js'
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

  it('a fetch answer of many deliveries parses to the object form of each, in order', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 12 }), fc.boolean(), fc.string(), (rs, sameKey, stream) => {
        // Shared keys and timestamps exercise what the writer reuses between deliveries.
        const ds = rs.map((r, i) => ({ tag: `2-${r.offset}-1-tok`, record: sameKey ? { ...r, key: 'k.é', timestamp: 1_700_000_000_000 } : r, deliveryCount: 1, redelivered: i % 2 === 0 }))
        const parsed = JSON.parse(deliveriesJson(stream, ds).toString('utf8')) as { events: unknown[] }
        expect(parsed.events).toEqual(ds.map((d) => JSON.parse(JSON.stringify(toWireDelivery(stream, d)))))
      }),
      { numRuns: 300 },
    )
  })
})
