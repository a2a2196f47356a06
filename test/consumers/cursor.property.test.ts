import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { IntervalSet, RangeChange } from '../../src/consumers/index.js'

/**
 * The group's cursor structure (cursor + settled ranges above it, persisted as key diffs) against
 * the simplest model: a set of settled offsets. Settling follows the group's own steps: add the
 * acked runs, move the cursor over the range that starts at it, apply the diff to the store.
 */
function settle(set: IntervalSet, cursor: number, offsets: number[], store: Map<number, number>): number {
  const sorted = [...new Set(offsets)].sort((a, b) => a - b)
  const change = new RangeChange()
  let i = 0
  while (i < sorted.length) {
    let j = i + 1
    while (j < sorted.length && sorted[j] === sorted[j - 1]! + 1) j++
    set.add(sorted[i]!, sorted[j - 1]! + 1, change)
    i = j
  }
  for (let r = set.takeAt(cursor, change); r !== undefined; r = set.takeAt(cursor, change)) cursor = r[1]
  for (const start of change.removed) store.delete(start)
  for (const [start, end] of change.upserts) store.set(start, end)
  return cursor
}

describe('cursor and settled ranges', () => {
  it('match a plain set of settled offsets under random ack orders, and their persisted form reloads the same', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.array(fc.array(fc.nat(199), { minLength: 1, maxLength: 8 }), { maxLength: 80 }), (n, batches) => {
        const model = new Set<number>()
        const set = new IntervalSet()
        const store = new Map<number, number>()
        let cursor = 0
        for (const raw of batches) {
          // Acks can only settle what is unsettled: offsets below the cursor are already settled.
          const batch = raw.map((o) => o % n).filter((o) => o >= cursor)
          for (const o of batch) model.add(o)
          cursor = settle(set, cursor, batch, store)
          let expectedCursor = 0
          while (model.has(expectedCursor)) expectedCursor++
          expect(cursor).toBe(expectedCursor)
          const above = [...model].filter((o) => o >= cursor).sort((a, b) => a - b)
          expect(set.count).toBe(above.length)
          const expanded: number[] = []
          for (const [s, e] of set.entries()) {
            expect(s).toBeGreaterThan(cursor) // a range at the cursor would have moved it
            for (let o = s; o < e; o++) expanded.push(o)
          }
          expect(expanded).toEqual(above)
          for (const o of above) expect(set.has(o)).toBe(true)
          // Reloading the persisted ranges rebuilds the same structure.
          const reloaded = new IntervalSet()
          for (const [s, e] of store) reloaded.add(s, e)
          expect([...reloaded.entries()]).toEqual([...set.entries()])
          // Ranges never touch: touching ones are merged.
          const ranges = [...set.entries()]
          for (let k = 1; k < ranges.length; k++) expect(ranges[k]![0]).toBeGreaterThan(ranges[k - 1]![1])
        }
      }),
      { numRuns: 500 },
    )
  })

  it('skip() jumps over a settled range and dropBelow() trims for retention', () => {
    const s = new IntervalSet()
    s.add(5, 10)
    s.add(12, 15)
    expect(s.skip(4)).toBe(4)
    expect(s.skip(5)).toBe(10)
    expect(s.skip(7)).toBe(10)
    expect(s.skip(10)).toBe(10)
    expect(s.count).toBe(8)
    s.dropBelow(13)
    expect([...s.entries()]).toEqual([[13, 15]])
    expect(s.count).toBe(2)
  })
})
