import { describe, expect, test } from 'vitest'
import { GroupCommit, type MetaOp } from '../../src/meta/group-commit.js'
import { groupKeyspaces } from '../../src/consumers/group.js'
import { tempMeta } from './temp-dir.js'

describe('group commit on a real store', () => {
  test('100 concurrent synced writes share far fewer than 100 synced batches', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const before = { ...meta.stats }
    await Promise.all(Array.from({ length: 100 }, (_, i) => ks.record.put([`g${i}`], { cursor: i, generation: 0, delivered: 0 }, { sync: true })))
    const synced = meta.stats.syncedBatches - before.syncedBatches
    expect(meta.stats.writes - before.writes).toBe(100)
    expect(synced).toBeGreaterThanOrEqual(1)
    expect(synced).toBeLessThanOrEqual(5)
    for (let i = 0; i < 100; i++) expect(await ks.record.get([`g${i}`])).toEqual({ cursor: i, generation: 0, delivered: 0 })
  })

  test('callers arriving while a sync is in flight ride the next one', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const before = { ...meta.stats }
    // 50 independent ackers, each awaiting its own durable write before the next, as a consumer does.
    const acker = async (id: number): Promise<void> => {
      for (let round = 0; round < 10; round++) await ks.settled.put([`g${id}`, round], { end: round + 1 }, { sync: true })
    }
    await Promise.all(Array.from({ length: 50 }, (_, i) => acker(i)))
    const writes = meta.stats.writes - before.writes
    const synced = meta.stats.syncedBatches - before.syncedBatches
    expect(writes).toBe(500)
    expect(synced).toBeLessThan(writes / 10)
    expect(meta.stats.maxWritesPerBatch).toBeGreaterThanOrEqual(25)
    expect((await ks.settled.scan(['g49'])).map((e) => e.key[1])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  test('non-synced writes never issue a synced batch, and keep call order with synced ones', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const before = { ...meta.stats }
    await Promise.all(Array.from({ length: 20 }, (_, i) => ks.record.put(['g'], { cursor: i, generation: 0, delivered: 0 }, { sync: false })))
    expect(meta.stats.syncedBatches).toBe(before.syncedBatches)
    expect(meta.stats.batches).toBeGreaterThan(before.batches)
    expect((await ks.record.get(['g']))?.cursor).toBe(19)

    // Mixed: the last call wins whatever its sync flag, since batches keep call order.
    const mixed = Array.from({ length: 30 }, (_, i) => ks.record.put(['h'], { cursor: i, generation: 0, delivered: 0 }, { sync: i % 3 === 0 }))
    await Promise.all(mixed)
    expect((await ks.record.get(['h']))?.cursor).toBe(29)
  })
})

// The queue's logic on its own: apply is a hand-released promise so the test controls when
// each "fsync" completes. The real-disk behaviour is covered above.
describe('group commit queue', () => {
  const op = (n: number): MetaOp => ({ type: 'put', key: Buffer.of(n), value: Buffer.alloc(0) })

  function controlledApply() {
    const batches: Array<{ keys: number[]; sync: boolean; release: () => void; fail: (e: Error) => void }> = []
    const apply = (ops: readonly MetaOp[], sync: boolean) =>
      new Promise<void>((resolve, reject) => {
        batches.push({ keys: ops.map((o) => o.key[0] as number), sync, release: resolve, fail: reject })
      })
    return { batches, apply }
  }
  const tick = () => new Promise((r) => setImmediate(r))

  test('each caller resolves only after the batch carrying its ops completes', async () => {
    const { batches, apply } = controlledApply()
    const gc = new GroupCommit(apply, { batchOpsMax: 100, queuedOpsMax: 1000 })
    const resolved: number[] = []
    const submit = (n: number, sync: boolean) => gc.submit([op(n)], sync).then(() => resolved.push(n))

    const first = [submit(1, true), submit(2, false)]
    await tick()
    expect(batches.map((b) => b.keys)).toEqual([[1, 2]])
    expect(batches[0]?.sync).toBe(true)

    const second = [submit(3, false), submit(4, true), submit(5, false)]
    await tick()
    expect(batches).toHaveLength(1) // still in flight: 3-5 wait
    expect(resolved).toEqual([])

    batches[0]?.release()
    await Promise.all(first)
    await tick()
    expect(resolved).toEqual([1, 2])
    expect(batches.map((b) => b.keys)).toEqual([[1, 2], [3, 4, 5]])
    expect(batches[1]?.sync).toBe(true)

    batches[1]?.release()
    await Promise.all(second)
    expect(resolved).toEqual([1, 2, 3, 4, 5])
    expect(gc.stats).toMatchObject({ writes: 5, ops: 5, batches: 2, syncedBatches: 2, maxWritesPerBatch: 3, queuedOps: 0 })
  })

  test('a failed batch rejects exactly its callers; later ones go on', async () => {
    const { batches, apply } = controlledApply()
    const gc = new GroupCommit(apply, { batchOpsMax: 100, queuedOpsMax: 1000 })
    const a = gc.submit([op(1)], true)
    await tick()
    const b = gc.submit([op(2)], true)
    batches[0]?.fail(new Error('disk on fire'))
    await expect(a).rejects.toThrow('disk on fire')
    await tick()
    batches[1]?.release()
    await expect(b).resolves.toBeUndefined()
  })

  test('batches split at batchOpsMax without splitting a caller, and the queue is bounded', async () => {
    const { batches, apply } = controlledApply()
    const gc = new GroupCommit(apply, { batchOpsMax: 3, queuedOpsMax: 6 })
    const all = [gc.submit([op(1), op(2)], true), gc.submit([op(3), op(4)], true), gc.submit([op(5)], true)]
    await expect(gc.submit([op(6), op(7)], true)).rejects.toMatchObject({ code: 'SLUICE_ERR_META_OVERLOADED' })
    await tick()
    batches[0]?.release()
    await tick()
    batches[1]?.release()
    await Promise.all(all)
    expect(batches.map((b) => b.keys)).toEqual([[1, 2], [3, 4, 5]])
    await gc.drained()
  })
})
