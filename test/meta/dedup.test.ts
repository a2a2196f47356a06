import { describe, expect, test } from 'vitest'
import { tempMeta } from './temp-dir.js'

describe('dedup ids', () => {
  test('get ignores expired ids; expire deletes oldest expired first and stops at a live one', async () => {
    const { meta } = await tempMeta()
    for (let i = 0; i < 10; i++) await meta.dedup.put('s', `id-${i}`, { offset: i, storedAtMs: i * 100, expiresAtMs: i * 100 + 1000 }, { sync: false })
    await meta.dedup.put('other', 'id-0', { offset: 0, storedAtMs: 0, expiresAtMs: 1 })

    expect(await meta.dedup.get('s', 'id-3', 1299)).toEqual({ offset: 3, storedAtMs: 300, expiresAtMs: 1300 })
    expect(await meta.dedup.get('s', 'id-3', 1300)).toBeUndefined()

    expect(await meta.dedup.expire('s', 1350, 2)).toBe(2) // bounded: only id-0, id-1
    expect(await meta.dedup.expire('s', 1350, 100)).toBe(2) // id-2, id-3; id-4 is live
    for (let i = 0; i < 10; i++) expect((await meta.dedup.get('s', `id-${i}`, 0)) !== undefined).toBe(i >= 4)
    // Other scopes are untouched.
    expect(await meta.dedup.get('other', 'id-0', 0)).toEqual({ offset: 0, storedAtMs: 0, expiresAtMs: 1 })
  })

  test('dropDedupAbove removes ids pointing past the recovered log end, in that scope only', async () => {
    const { meta, open } = await tempMeta()
    await meta.write(
      [0, 3, 5, 6, 9].flatMap((o) => [
        ...meta.dedup.putOps('app-logs', `e${o}`, { offset: o, storedAtMs: 1, expiresAtMs: 1e12 }),
        ...meta.dedup.putOps('errors', `e${o}`, { offset: o, storedAtMs: 1, expiresAtMs: 1e12 }),
      ]),
    )
    // Recovered log holds offsets 0..5 (end 6): ids at 6 and 9 refer to records that are gone.
    expect(await meta.dropDedupAbove('app-logs', 5)).toBe(2)
    await meta.close()
    const again = await open()
    const present = async (scope: string) => {
      const out: number[] = []
      for (const o of [0, 3, 5, 6, 9]) if (await again.dedup.get(scope, `e${o}`, 0)) out.push(o)
      return out
    }
    expect(await present('app-logs')).toEqual([0, 3, 5])
    expect(await present('errors')).toEqual([0, 3, 5, 6, 9])
    expect(await again.dropDedupAbove('errors', -1)).toBe(5)
    expect(await present('errors')).toEqual([])
  })

  test('an id stored again at a later offset survives cleanup of its old index entry', async () => {
    const { meta } = await tempMeta()
    await meta.dedup.put('s', 'x', { offset: 1, storedAtMs: 0, expiresAtMs: 10 })
    await meta.dedup.put('s', 'x', { offset: 8, storedAtMs: 20, expiresAtMs: 30 })
    expect(await meta.dedup.expire('s', 15, 10)).toBe(0)
    expect(await meta.dedup.get('s', 'x', 15)).toEqual({ offset: 8, storedAtMs: 20, expiresAtMs: 30 })
    expect(await meta.dropDedupAbove('s', 1)).toBe(1)
    expect(await meta.dedup.get('s', 'x', 15)).toBeUndefined()
  })
})

describe('clampGroup', () => {
  test('pulls a group back inside a log that recovered shorter', async () => {
    const { meta } = await tempMeta()
    await meta.write([
      meta.groupState.putOp(['g'], { cursor: 100, generation: 2, updatedAtMs: 5 }),
      meta.settled.putOp(['g', 10], { end: 20 }),
      meta.settled.putOp(['g', 40], { end: 60 }),
      meta.settled.putOp(['g', 70], { end: 80 }),
      meta.deliveries.putOp(['g', 45], { count: 2, dueAtMs: null, parked: false }),
      meta.deliveries.putOp(['g', 55], { count: 1, dueAtMs: null, parked: true }),
      meta.settled.putOp(['h', 70], { end: 80 }),
    ])
    expect(await meta.clampGroup('g', 50)).toEqual({ cursorClamped: true, settledDropped: 1, settledTrimmed: 1, deliveriesDropped: 1 })
    expect(await meta.groupState.get(['g'])).toEqual({ cursor: 50, generation: 2, updatedAtMs: 5 })
    expect(await meta.settled.scan(['g'])).toEqual([
      { key: ['g', 10], value: { end: 20 } },
      { key: ['g', 40], value: { end: 50 } },
    ])
    expect((await meta.deliveries.scan(['g'])).map((e) => e.key[1])).toEqual([45])
    expect(await meta.settled.scan(['h'])).toEqual([{ key: ['h', 70], value: { end: 80 } }])
    // Idempotent: a second clamp finds nothing to change.
    expect(await meta.clampGroup('g', 50)).toEqual({ cursorClamped: false, settledDropped: 0, settledTrimmed: 0, deliveriesDropped: 0 })
  })
})
