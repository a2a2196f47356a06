import { ClassicLevel } from 'classic-level'
import { describe, expect, test } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import { jsonCodec, keyspaceTable, openMeta, retiredNamespaces, str, u64 } from '../../src/meta/index.js'
import { groupKeyspaces } from '../../src/consumers/group.js'
import { tempMeta } from './temp-dir.js'

async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SluiceError)
  return err as SluiceError
}

describe('meta store lifecycle', () => {
  test('data persists across close and reopen', async () => {
    const { meta, open } = await tempMeta()
    await meta.definitions.put(['exchange', 'logs'], { type: 'topic', alternate: 'unrouted' })
    await meta.definitions.put(['stream', 'app-logs'], { retention: { maxAge: '7d' } })
    const ks = groupKeyspaces(meta)
    await ks.record.put(['indexer'], { cursor: 42, generation: 1, delivered: 44 })
    await meta.write([ks.settled.putOp(['indexer', 50], { end: 60 }), ks.deliveries.putOp(['indexer', 42], { count: 3, dueAtMs: 5000, parked: false })])
    await meta.close()
    expect(meta.state).toBe('closed')

    const again = await open()
    const ks2 = groupKeyspaces(again)
    expect(again.state).toBe('open')
    expect(await again.definitions.scan([])).toEqual([
      { key: ['exchange', 'logs'], value: { type: 'topic', alternate: 'unrouted' } },
      { key: ['stream', 'app-logs'], value: { retention: { maxAge: '7d' } } },
    ])
    expect(await ks2.record.get(['indexer'])).toEqual({ cursor: 42, generation: 1, delivered: 44 })
    expect(await ks2.settled.scan(['indexer'])).toEqual([{ key: ['indexer', 50], value: { end: 60 } }])
    expect(await ks2.deliveries.get(['indexer', 42])).toEqual({ count: 3, dueAtMs: 5000, parked: false })
  })

  test('a second open of a locked store is SLUICE_ERR_META_LOCKED with the LEVEL_LOCKED cause', async () => {
    const { dir, meta } = await tempMeta()
    const err = await rejection(openMeta(dir))
    expect(err.code).toBe('SLUICE_ERR_META_LOCKED')
    expect(err.message).toContain(dir)
    expect((err.cause as { code?: string }).code).toBe('LEVEL_LOCKED')
    // The holder is unaffected.
    const ks = groupKeyspaces(meta)
    await ks.record.put(['g'], { cursor: 1, generation: 0, delivered: 0 })
    expect(await ks.record.get(['g'])).toEqual({ cursor: 1, generation: 0, delivered: 0 })
  })

  test('close waits for queued writes, which all land', async () => {
    const { meta, open } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const writes = Array.from({ length: 200 }, (_, i) => ks.settled.put(['g', i * 10], { end: i * 10 + 5 }, { sync: i % 2 === 0 }))
    const closed = meta.close()
    expect(meta.state).toBe('closing')
    await closed
    await expect(Promise.all(writes)).resolves.toHaveLength(200)
    expect(meta.stats.writes).toBe(200 + 1) // plus the format marker written at first open

    const again = await open()
    const entries = await groupKeyspaces(again).settled.scan(['g'])
    expect(entries.map((e) => e.key[1])).toEqual(Array.from({ length: 200 }, (_, i) => i * 10))
  })

  test('every operation after close rejects with SLUICE_ERR_META_CLOSED', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    await ks.record.put(['g'], { cursor: 1, generation: 0, delivered: 0 })
    const closing = meta.close()
    // Refused as soon as closing starts, not only once closed.
    expect((await rejection(ks.record.put(['g'], { cursor: 2, generation: 0, delivered: 0 }))).code).toBe('SLUICE_ERR_META_CLOSED')
    await closing
    await expect(meta.close()).resolves.toBeUndefined()
    const ops = [
      ks.record.get(['g']),
      ks.record.del(['g']),
      ks.settled.range(['g'], ['h']),
      meta.write([ks.settled.putOp(['g', 1], { end: 2 })], { sync: false }),
      (async () => {
        for await (const _ of meta.definitions.iterate()) break
      })(),
    ]
    for (const op of ops) expect((await rejection(op)).code).toBe('SLUICE_ERR_META_CLOSED')
  })

  test('a store written by another format version is refused', async () => {
    const { dir, meta } = await tempMeta()
    await meta.close()
    const raw = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await raw.put(Buffer.from('00' + Buffer.from('format').toString('hex') + '0000', 'hex'), Buffer.from('00000002', 'hex'))
    await raw.close()
    const err = await rejection(openMeta(dir))
    expect(err.code).toBe('SLUICE_ERR_META_FORMAT')
    // The failed open released its lock.
    const ok = new ClassicLevel(dir)
    await ok.open()
    await ok.close()
  })

  test('a value that does not decode is SLUICE_ERR_META_CORRUPT naming the key', async () => {
    const { dir, meta, open } = await tempMeta()
    await groupKeyspaces(meta).settled.put(['g', 1], { end: 2 })
    await meta.close()
    const raw = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    const [key] = await raw.keys({ gte: Buffer.of(0x03), lt: Buffer.of(0x04) }).all()
    await raw.put(key as Buffer, Buffer.from('ff', 'hex'))
    await raw.close()
    const again = await open()
    const err = await rejection(groupKeyspaces(again).settled.get(['g', 1]))
    expect(err.code).toBe('SLUICE_ERR_META_CORRUPT')
    expect(err.message).toContain((key as Buffer).toString('hex'))
  })
})

describe('atomic writes', () => {
  test('one write across keyspaces is applied whole', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    await meta.write([
      ks.record.putOp(['g'], { cursor: 10, generation: 0, delivered: 12 }),
      ks.settled.putOp(['g', 12], { end: 15 }),
      ks.deliveries.delOp(['g', 10]),
      meta.definitions.putOp(['group', 'g'], { stream: 's' }),
    ])
    expect(await ks.record.get(['g'])).toEqual({ cursor: 10, generation: 0, delivered: 12 })
    expect(await ks.settled.get(['g', 12])).toEqual({ end: 15 })
    expect(await meta.definitions.get(['group', 'g'])).toEqual({ stream: 's' })
  })

  test('a reader sees all of a batch or none of it, never part', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const n = 2000
    const ops = Array.from({ length: n }, (_, i) => ks.deliveries.putOp(['g', i], { count: 1, dueAtMs: null, parked: false }))
    const written = meta.write(ops, { sync: true })
    const seen = new Set<number>()
    let done = false
    void written.finally(() => {
      done = true
    })
    // Each scan reads one LevelDB snapshot, taken before, during or after the batch.
    while (!done) {
      let count = 0
      for await (const _ of ks.deliveries.iterate({ prefix: ['g'] })) count++
      seen.add(count)
    }
    await written
    for (const count of seen) expect([0, n]).toContain(count)
    expect((await ks.deliveries.scan(['g'])).length).toBe(n)
  })

  test('a write with a malformed op is refused whole and does not fail its batch mates', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const good = ks.settled.put(['g', 1], { end: 2 })
    const bad = meta.write([ks.settled.putOp(['g', 3], { end: 4 }), { type: 'put', key: Buffer.of(0x03), value: 'x' as unknown as Buffer }])
    await expect(bad).rejects.toThrow(/must be a Buffer/)
    await good
    expect(await ks.settled.scan(['g'])).toEqual([{ key: ['g', 1], value: { end: 2 } }])
    // Building an op with an unencodable key fails before anything is queued.
    await expect(ks.settled.put(['g', -1], { end: 0 })).rejects.toThrow(/u64/)
  })
})

describe('range scans', () => {
  test('scan and range stay within one group, in offset order', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    // Names chosen to share prefixes: the classic way a prefix scan leaks into a neighbour.
    const groups = ['a', 'a\0', 'a\0b', 'ab', 'b', '']
    const offsets = [0, 1, 9, 10, 255, 256, 65_536, 2 ** 32, 2 ** 40 + 3]
    const ops = groups.flatMap((g) => offsets.map((o) => ks.settled.putOp([g, o], { end: o + 1 })))
    await meta.write(ops.reverse(), { sync: false })

    for (const g of groups) {
      const entries = await ks.settled.scan([g])
      expect(entries.map((e) => e.key)).toEqual(offsets.map((o) => [g, o]))
      expect(entries.map((e) => e.value.end)).toEqual(offsets.map((o) => o + 1))
    }
    expect((await ks.settled.range(['a', 10], ['a', 65_536])).map((e) => e.key[1])).toEqual([10, 255, 256])
    expect((await ks.settled.range(['a', 10], ['a', 65_536], { reverse: true, limit: 2 })).map((e) => e.key[1])).toEqual([256, 255])
    expect((await ks.settled.scan(['a\0'], { limit: 3 })).map((e) => e.key[1])).toEqual([0, 1, 9])
    expect((await ks.settled.range(['a', 2 ** 32])).map((e) => e.key)).toEqual([
      ['a', 2 ** 32],
      ['a', 2 ** 40 + 3],
      ...[...groups.filter((g) => g > 'a')].sort().flatMap((g) => offsets.map((o) => [g, o])),
    ])
    expect(await ks.settled.scan(['missing'])).toEqual([])
    // Keyspaces never see each other's keys.
    expect(await ks.deliveries.scan([])).toEqual([])
  })

  test('iterate streams past the range bound and stops early on break', async () => {
    const { meta } = await tempMeta({ rangeEntriesMax: 10 })
    const ks = groupKeyspaces(meta)
    await meta.write(
      Array.from({ length: 1000 }, (_, i) => ks.deliveries.putOp(['g', i], { count: i, dueAtMs: null, parked: false })),
      { sync: false },
    )
    expect(await ks.deliveries.scan(['g'])).toHaveLength(10)
    let total = 0
    for await (const { key, value } of ks.deliveries.iterate({ prefix: ['g'] })) {
      expect(value.count).toBe(key[1])
      total++
    }
    expect(total).toBe(1000)
    for await (const _ of ks.deliveries.iterate({ prefix: ['g'] })) break
  })

  test('keyspaces are registered by name from the namespace table, once each', async () => {
    const { meta } = await tempMeta()
    const ks = groupKeyspaces(meta)
    const redriven = meta.keyspace('redriven', [str(), u64()], jsonCodec<number>())
    await redriven.put(['dlq', 5], 9)
    await ks.settled.put(['dlq', 5], { end: 6 })
    expect(await redriven.scan(['dlq'])).toEqual([{ key: ['dlq', 5], value: 9 }])
    expect(() => meta.keyspace('redriven', [str()], jsonCodec())).toThrow(/already registered/)
    expect(() => groupKeyspaces(meta)).toThrow(/already registered/)
    // Every listed byte is distinct, and none reuses a retired one.
    const bytes = Object.values(keyspaceTable).map((k) => k.namespace)
    expect(new Set(bytes).size).toBe(bytes.length)
    for (const retired of Object.values(retiredNamespaces)) expect(bytes).not.toContain(retired)
  })
})
