import { appendFile, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openLog, type AppendRecord, type Log, type LogOptions } from '../../src/log/index.js'
import { tempDir } from '../helpers/temp.js'

const rec = (i: number, ts = 1_700_000_000_000 + i): AppendRecord => ({
  timestamp: ts,
  key: `svc.info.${i}`,
  body: Buffer.from(JSON.stringify({ i, msg: 'x'.repeat(i % 50) })),
  json: true,
  id: i % 3 === 0 ? `id-${i}` : undefined,
  headers: i % 2 === 0 ? Buffer.from(JSON.stringify({ n: i })) : undefined,
})

async function readAll(log: Log, from = log.startOffset): Promise<number[]> {
  const out: number[] = []
  let next = from
  for (;;) {
    const { records, nextOffset } = await log.read(next, { maxBytes: 8192 })
    if (records.length === 0) return out
    for (const r of records) out.push((JSON.parse(r.body.toString()) as { i: number }).i)
    next = nextOffset
  }
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, k) => a + k)

async function withLog<T>(dir: string, opts: Partial<LogOptions>, fn: (log: Log) => Promise<T>): Promise<T> {
  const log = await openLog(dir, opts)
  try {
    return await fn(log)
  } finally {
    await log.close()
  }
}

describe('log', () => {
  for (const fsync of ['always', 'batch', 'never'] as const) {
    it(`appends and reads back in order with fsync ${fsync}`, async () => {
      const dir = await tempDir()
      await withLog(dir, { fsync }, async (log) => {
        const results = await Promise.all(range(0, 50).map((k) => log.append(range(k * 10, k * 10 + 10).map((i) => rec(i)))))
        expect(results.map((r) => r.baseOffset)).toEqual(range(0, 50).map((k) => k * 10))
        expect(log.endOffset).toBe(500)
        expect(await readAll(log)).toEqual(range(0, 500))
        const { records } = await log.read(7, { maxRecords: 3 })
        expect(records.map((r) => r.offset)).toEqual([7, 8, 9])
        expect(records[0]!.key).toBe('svc.info.7')
        expect(records.map((r) => r.id)).toEqual([undefined, undefined, 'id-9'])
        expect(records[1]!.headers?.toString()).toBe('{"n":8}')
        expect(records[0]!.json).toBe(true)
      })
    })
  }

  it('a read bounded by `end` stops before it, mid-batch too, and says where to go on', async () => {
    const dir = await tempDir()
    await withLog(dir, { fsync: 'never' }, async (log) => {
      for (let k = 0; k < 5; k++) await log.append(range(k * 10, k * 10 + 10).map((i) => rec(i)))
      const cut = await log.read(5, { end: 23 })
      expect(cut.records.map((r) => r.offset)).toEqual(range(5, 23))
      expect(cut.nextOffset).toBe(23)
      expect((await log.read(5, { end: 23, maxRecords: 4 })).records.map((r) => r.offset)).toEqual([5, 6, 7, 8])
      expect(await log.read(23, { end: 23 })).toEqual({ records: [], nextOffset: 23 })
      expect(await log.read(30, { end: 23 })).toEqual({ records: [], nextOffset: 30 })
      expect((await log.read(45, { end: 1000 })).records.map((r) => r.offset)).toEqual(range(45, 50))
    })
  })

  for (const fsync of ['always', 'never'] as const) {
    it(`truncate cuts at the batch holding the offset, drops later segments, and appends go on from there, across a reopen (fsync ${fsync})`, async () => {
      const dir = await tempDir()
      const opts = { segmentBytes: 16 * 1024, fsync, indexIntervalBytes: 512 }
      await withLog(dir, opts, async (log) => {
        for (let k = 0; k < 60; k++) await log.append(range(k * 10, k * 10 + 10).map((i) => rec(i)))
        const segmentsBefore = log.stats().segments
        expect(segmentsBefore).toBeGreaterThan(3)
        // Mid-batch: the batch [230, 240) goes whole.
        expect(await log.truncate(235)).toBe(230)
        expect(log.endOffset).toBe(230)
        expect(log.stats().segments).toBeLessThan(segmentsBefore)
        expect(await readAll(log)).toEqual(range(0, 230))
        // On a boundary, and past the end (nothing to do).
        expect(await log.truncate(200)).toBe(200)
        expect(await log.truncate(500)).toBe(200)
        const more = await log.append(range(1000, 1010).map((i) => rec(i)))
        expect(more.baseOffset).toBe(200)
        expect(await log.offsetForTime(1_700_000_000_000 + 1000)).toBe(200)
      })
      await withLog(dir, opts, async (log) => {
        expect(log.recovery.truncated).toEqual([])
        expect(log.endOffset).toBe(210)
        expect(await readAll(log)).toEqual([...range(0, 200), ...range(1000, 1010)])
        expect((await readdir(dir)).filter((f) => f.endsWith('.deleted'))).toEqual([])
        // At or below the start: empty, from there.
        expect(await log.truncate(0)).toBe(0)
        expect(log.endOffset).toBe(0)
        expect(await readAll(log)).toEqual([])
      })
    })
  }

  it('group commit shares one fsync among concurrent appends', async () => {
    const dir = await tempDir()
    await withLog(dir, { fsync: 'batch', intervalMs: 20 }, async (log) => {
      await Promise.all(range(0, 100).map((i) => log.append([rec(i)])))
      expect(log.counters.appendedBatches).toBe(100)
      expect(log.counters.syncs).toBeLessThanOrEqual(2)
    })
  })

  it('rolls segments by size, reopens, and continues at the next offset', async () => {
    const dir = await tempDir()
    await withLog(dir, { segmentBytes: 16 * 1024, fsync: 'never' }, async (log) => {
      for (let k = 0; k < 100; k++) await log.append(range(k * 10, k * 10 + 10).map((i) => rec(i)))
    })
    const logs = (await readdir(dir)).filter((n) => n.endsWith('.log'))
    expect(logs.length).toBeGreaterThan(5)
    expect(logs[0]).toBe('00000000000000000000.log')
    for (const name of logs) expect((await stat(join(dir, name))).size).toBeLessThanOrEqual(16 * 1024)
    await withLog(dir, { segmentBytes: 16 * 1024 }, async (log) => {
      expect(log.recovery.clean).toBe(true)
      expect(log.endOffset).toBe(1000)
      expect(await readAll(log)).toEqual(range(0, 1000))
      expect(await readAll(log, 555)).toEqual(range(555, 1000))
      const r = await log.append([rec(1000)])
      expect(r.baseOffset).toBe(1000)
    })
  })

  it('finds offsets by time', async () => {
    const dir = await tempDir()
    await withLog(dir, { segmentBytes: 8 * 1024, indexIntervalBytes: 512, fsync: 'never' }, async (log) => {
      for (let k = 0; k < 200; k++) await log.append([rec(k, 1_000_000 + k * 10)])
      expect(await log.offsetForTime(0)).toBe(0)
      expect(await log.offsetForTime(1_000_000 + 1234)).toBe(124)
      expect(await log.offsetForTime(1_000_000 + 1240)).toBe(124)
      expect(await log.offsetForTime(1_000_000 + 1990)).toBe(199)
      expect(await log.offsetForTime(9_000_000)).toBe(200)
    })
  })

  it('retention drops whole old segments by bytes and by age, never the active one', async () => {
    const dir = await tempDir()
    let now = 2_000_000
    await withLog(dir, { segmentBytes: 4096, fsync: 'never', retention: { maxBytes: 20_000 }, now: () => now }, async (log) => {
      for (let k = 0; k < 300; k++) await log.append([rec(k, 1_000_000 + k)])
      const before = log.stats()
      const r = await log.enforceRetention()
      expect(r.deletedSegments).toBeGreaterThan(0)
      const after = log.stats()
      expect(after.bytes).toBeLessThan(20_000 + 4096)
      expect(after.bytes).toBeGreaterThanOrEqual(20_000 - 4096)
      expect(after.startOffset).toBeGreaterThan(before.startOffset)
      expect(await readAll(log)).toEqual(range(after.startOffset, 300))
    })
    await withLog(dir, { segmentBytes: 4096, retention: { maxAgeMs: 1000 }, now: () => now }, async (log) => {
      now = 1_000_000 + 300 + 1001
      const r = await log.enforceRetention()
      expect(r.deletedSegments).toBeGreaterThan(0)
      expect(log.stats().segments).toBe(1)
      expect(log.startOffset).toBe(300)
      expect(await readAll(log)).toEqual([])
      expect((await log.append([rec(300)])).baseOffset).toBe(300)
    })
  })

  it('interest retention drops only segments wholly below what every group settled', async () => {
    const dir = await tempDir()
    await withLog(dir, { segmentBytes: 4096, fsync: 'never' }, async (log) => {
      for (let k = 0; k < 300; k++) await log.append([rec(k)])
      const segments = log.stats().segments
      expect(segments).toBeGreaterThan(3)
      expect((await log.enforceRetention(0)).deletedSegments).toBe(0)
      const r = await log.enforceRetention(150)
      expect(r.deletedSegments).toBeGreaterThan(0)
      // Offset 150 and what follows are all still there; the first kept segment starts at or below it.
      expect(log.startOffset).toBeLessThanOrEqual(150)
      expect(await readAll(log, 150)).toEqual(range(150, 300))
      // Everything settled: all but the active segment go.
      await log.enforceRetention(300)
      expect(log.stats().segments).toBe(1)
      expect((await log.append([rec(300)])).baseOffset).toBe(300)
    })
  })

  it('a tailing reader wakes on new durable records', async () => {
    const dir = await tempDir()
    await withLog(dir, { fsync: 'batch' }, async (log) => {
      const ac = new AbortController()
      const seen: number[] = []
      const done = (async () => {
        for await (const r of log.tail(0, ac.signal)) {
          seen.push(r.offset)
          if (seen.length === 30) ac.abort()
        }
      })()
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 10))
        await log.append(range(k * 10, k * 10 + 10).map((i) => rec(i)))
      }
      await done
      expect(seen).toEqual(range(0, 30))
    })
  })

  it('refuses records too large for the format with a coded error', async () => {
    const dir = await tempDir()
    await withLog(dir, { segmentBytes: 4096 }, async (log) => {
      await expect(log.append([{ timestamp: 1, key: 'k'.repeat(70_000), body: Buffer.alloc(1) }])).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_RECORD_TOO_LARGE' })
      await expect(log.append([{ timestamp: 1, key: 'k', body: Buffer.alloc(5000) }])).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_RECORD_TOO_LARGE' })
      expect((await log.append([rec(0)])).baseOffset).toBe(0)
    })
  })
})

describe('recovery', () => {
  async function filled(dir: string, n = 100): Promise<string> {
    await withLog(dir, { fsync: 'never' }, async (log) => {
      for (let k = 0; k < n; k++) await log.append([rec(k)])
    })
    // Drop the clean marker so the next open recovers as after a crash.
    await rm(join(dir, '.clean-shutdown'))
    return join(dir, '00000000000000000000.log')
  }

  it('cuts garbage appended to the tail and keeps every whole batch', async () => {
    const dir = await tempDir()
    const file = await filled(dir)
    const size = (await stat(file)).size
    await appendFile(file, Buffer.from('this is not a batch at all, 37 bytes'))
    await withLog(dir, {}, async (log) => {
      expect(log.recovery.truncated).toEqual([expect.objectContaining({ position: size, bytes: 36, fromOffset: 100 })])
      expect(await readAll(log)).toEqual(range(0, 100))
      expect((await log.append([rec(100)])).baseOffset).toBe(100)
    })
    await withLog(dir, {}, async (log) => {
      expect(log.recovery.clean).toBe(true)
      expect(await readAll(log)).toEqual(range(0, 101))
    })
  })

  it('cuts a last batch with a flipped byte', async () => {
    const dir = await tempDir()
    const file = await filled(dir)
    const data = await readFile(file)
    data[data.length - 3]! ^= 0xff
    await writeFile(file, data)
    await withLog(dir, {}, async (log) => {
      expect(log.recovery.truncated).toHaveLength(1)
      expect(log.recovery.truncated[0]!.fromOffset).toBe(99)
      expect(await readAll(log)).toEqual(range(0, 99))
    })
  })

  it('cuts a torn last batch', async () => {
    const dir = await tempDir()
    const file = await filled(dir)
    const size = (await stat(file)).size
    await truncate(file, size - 10)
    await withLog(dir, {}, async (log) => {
      expect(await readAll(log)).toEqual(range(0, 99))
      expect(log.endOffset).toBe(99)
    })
  })

  it('rebuilds a truncated index', async () => {
    const dir = await tempDir()
    await withLog(dir, { fsync: 'never', indexIntervalBytes: 256 }, async (log) => {
      for (let k = 0; k < 100; k++) await log.append([rec(k)])
    })
    const index = join(dir, '00000000000000000000.index')
    const full = (await stat(index)).size
    await truncate(index, full - 3)
    await withLog(dir, { indexIntervalBytes: 256 }, async (log) => {
      expect(log.recovery.rebuiltIndexes).toHaveLength(1)
      expect(await readAll(log, 50)).toEqual(range(50, 100))
    })
    expect((await stat(index)).size).toBe(full)
  })

  it('refuses to open with damage in the middle of a segment', async () => {
    const dir = await tempDir()
    const file = await filled(dir)
    const data = await readFile(file)
    data[2000] = data[2000]! ^ 0x01
    await writeFile(file, data)
    await expect(openLog(dir)).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_CORRUPT' })
    await withLog(dir, { repair: true }, async (log) => {
      const kept = await readAll(log)
      expect(kept.length).toBeGreaterThan(0)
      expect(kept).toEqual(range(0, kept.length))
    })
  })
})
