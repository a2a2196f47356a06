import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { batchHeaderBytes, checkBatch, decodeRecords, encodeBatch, readBatchHeader, type AppendRecord } from '../../src/log/index.js'

const recordArb: fc.Arbitrary<AppendRecord> = fc.record({
  timestamp: fc.integer({ min: 0, max: 2 ** 47 - 1 }),
  key: fc.string({ maxLength: 40, unit: 'grapheme' }),
  body: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  json: fc.boolean(),
  id: fc.option(fc.string({ maxLength: 30, unit: 'grapheme' }), { nil: undefined }),
  exchange: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  headers: fc.option(fc.uint8Array({ maxLength: 50 }).map((u) => Buffer.from(u)), { nil: undefined }),
})

describe('batch codec', () => {
  it('round-trips every field', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 2 ** 50 }), (records, base) => {
        const buf = encodeBatch(records, base)
        const check = checkBatch(buf, 0, buf.length)
        expect(check.ok).toBe(true)
        const h = readBatchHeader(buf)
        expect(h.length).toBe(buf.length)
        expect(h.baseOffset).toBe(base)
        expect(h.recordCount).toBe(records.length)
        expect(h.firstTimestamp).toBe(records[0]!.timestamp)
        expect(h.lastTimestamp).toBe(records[records.length - 1]!.timestamp)
        expect(h.maxTimestamp).toBe(Math.max(...records.map((r) => r.timestamp)))
        const out = decodeRecords(buf)
        expect(out.map((r) => r.offset)).toEqual(records.map((_, i) => base + i))
        out.forEach((r, i) => {
          const src = records[i]!
          expect(r.timestamp).toBe(src.timestamp)
          expect(r.key).toBe(src.key)
          expect(r.id).toBe(src.id)
          expect(r.exchange).toBe(src.exchange)
          expect(r.json).toBe(src.json)
          expect(Buffer.compare(r.body, Buffer.from(src.body))).toBe(0)
          expect(r.headers === undefined ? undefined : Buffer.from(r.headers)).toEqual(src.headers === undefined ? undefined : Buffer.from(src.headers))
        })
      }),
      { numRuns: 300 },
    )
  })

  it('decodes from an offset inside the batch', () => {
    const buf = encodeBatch([0, 1, 2, 3].map((i) => ({ timestamp: i, key: `k${i}`, body: Buffer.from([i]) })), 100)
    expect(decodeRecords(buf, 102).map((r) => r.key)).toEqual(['k2', 'k3'])
  })

  it('detects every single-byte corruption of a batch', () => {
    const records: AppendRecord[] = [
      { timestamp: 1_700_000_000_000, key: 'api.error', body: Buffer.from('{"level":"error","msg":"boom"}'), json: true, id: 'e-1', exchange: 'logs', headers: Buffer.from('{"a":1}') },
      { timestamp: 1_700_000_000_005, key: 'api.info', body: Buffer.from('plain bytes') },
    ]
    const good = encodeBatch(records, 42)
    let detected = 0
    for (let pos = 0; pos < good.length; pos++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(good)
        bad[pos]! ^= flip
        const check = checkBatch(bad, 0, bad.length)
        expect(check.ok, `flip 0x${flip.toString(16)} at byte ${pos} went unnoticed`).toBe(false)
        detected++
      }
    }
    expect(detected).toBe(good.length * 3)
    expect(good.length).toBeGreaterThan(batchHeaderBytes)
  })

  it('reports a short buffer as torn, not as damage', () => {
    const buf = encodeBatch([{ timestamp: 1, key: 'k', body: Buffer.alloc(100) }], 0)
    const check = checkBatch(buf, 0, buf.length - 1)
    expect(check).toMatchObject({ ok: false, torn: true })
  })
})
