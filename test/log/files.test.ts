import { readdir, readlink } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { openLog, SegmentFilePool, type AppendRecord, type Log } from '../../src/log/index.js'
import { tempDir } from '../helpers/temp.js'

const rec = (i: number): AppendRecord => ({ timestamp: 1_700_000_000_000 + i, key: `k.${i}`, body: Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(200) })), json: true })

/** Descriptors this process holds on files under `dir`, from /proc/self/fd. */
async function fdsUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const fd of await readdir('/proc/self/fd')) {
    try {
      const target = await readlink(`/proc/self/fd/${fd}`)
      if (target.startsWith(`${dir}/`)) out.push(target.slice(dir.length + 1))
    } catch {
      // The descriptor readdir itself used is gone by now.
    }
  }
  return out.sort()
}

async function readAll(log: Log): Promise<number[]> {
  const out: number[] = []
  for (let next = log.startOffset; ; ) {
    const { records, nextOffset } = await log.read(next, { maxBytes: 2048 })
    if (records.length === 0) return out
    for (const r of records) out.push((JSON.parse(r.body.toString()) as { i: number }).i)
    next = nextOffset
  }
}

async function fill(log: Log, n: number): Promise<void> {
  for (let i = 0; i < n; i += 10) await log.append(Array.from({ length: 10 }, (_, k) => rec(i + k)))
}

describe('segment file handles', () => {
  it('a log holds one descriptor (its active segment) however many segments it has, idle or reopened', async () => {
    const dir = await tempDir()
    const files = new SegmentFilePool(4)
    const log = await openLog(dir, { segmentBytes: 8 * 1024, files })
    await fill(log, 1000)
    const segments = log.stats().segments
    expect(segments).toBeGreaterThan(25)
    const active = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort().at(-1)!
    expect(await fdsUnder(dir)).toEqual([active])
    await log.close()
    expect(await fdsUnder(dir)).toEqual([])
    expect(files.stats()).toMatchObject({ readHandles: 0, writeHandles: 0 })

    const reopened = await openLog(dir, { segmentBytes: 8 * 1024, files })
    expect(reopened.recovery.clean).toBe(true)
    expect(await fdsUnder(dir)).toEqual([active])
    expect(files.stats().writeHandles).toBe(1)
    await reopened.close()
  })

  it('reads of sealed segments borrow pooled handles and give them back; the pool never holds more than its limit', async () => {
    const dir = await tempDir()
    const files = new SegmentFilePool(3)
    const log = await openLog(dir, { segmentBytes: 8 * 1024, files })
    await fill(log, 1000)
    const segments = log.stats().segments
    expect(await readAll(log)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    // Every sealed segment was opened once for the sequential read, then evicted for the next.
    expect(files.stats().opens).toBe(segments - 1)
    expect(files.stats()).toMatchObject({ readHandles: 3, readHandlesInUse: 0, waits: 0 })
    expect((await fdsUnder(dir)).length).toBe(1 + 3)

    // Many readers at once over different old segments: they take turns at the three handles.
    let peak = 0
    const sample = setInterval(() => (peak = Math.max(peak, files.stats().readHandles)), 0)
    const reads = await Promise.all(Array.from({ length: 12 }, (_, k) => log.read(k * 80, { maxRecords: 5 })))
    clearInterval(sample)
    expect(reads.map((r) => (JSON.parse(r.records[0]!.body.toString()) as { i: number }).i)).toEqual(Array.from({ length: 12 }, (_, k) => k * 80))
    expect(peak).toBeLessThanOrEqual(3)
    expect(files.stats().waits).toBeGreaterThan(0)
    expect((await fdsUnder(dir)).length).toBeLessThanOrEqual(1 + 3)

    // Idle handles are closed after a while (here: at once), back to the active segment alone.
    expect(files.closeIdle(0)).toBe(3)
    expect((await fdsUnder(dir)).length).toBe(1)
    expect(files.closeIdle(60_000)).toBe(0)

    await log.close()
    expect(await fdsUnder(dir)).toEqual([])
    expect(files.stats()).toMatchObject({ readHandles: 0, writeHandles: 0, readHandlesInUse: 0 })
  })

  it('retention deleting segments under readers: each read is whole or empty, and no handle outlives its file', async () => {
    const dir = await tempDir()
    const files = new SegmentFilePool(2)
    const log = await openLog(dir, { segmentBytes: 8 * 1024, files, retention: { maxBytes: 16 * 1024 } })
    let appended = 0
    for (let round = 0; round < 20; round++) {
      await fill(log, 100)
      appended += 100
      // Reads of the oldest segments race the retention that deletes them.
      const first = log.startOffset
      const reads = [log.read(first, { maxBytes: 64 * 1024 }), log.read(first + 30, { maxBytes: 64 * 1024 })]
      const dropped = await log.enforceRetention()
      expect(dropped.deletedSegments).toBeGreaterThan(0)
      for (const [k, r] of (await Promise.all(reads)).entries()) {
        // A record read is the record appended at its offset, whatever the race.
        for (const rec of r.records) expect((JSON.parse(rec.body.toString()) as { i: number }).i).toBe(rec.offset % 100)
        if (r.records.length > 0) expect(r.records[0]!.offset).toBe(first + k * 30)
      }
    }
    await new Promise((r) => setImmediate(r))
    const open = await fdsUnder(dir)
    expect(open.filter((f) => f.endsWith('.deleted'))).toEqual([])
    expect(open.length).toBeLessThanOrEqual(1 + 2)
    expect(files.stats().readHandlesInUse).toBe(0)
    const kept = await readAll(log)
    expect(kept.length).toBe(appended - log.startOffset)
    await log.close()
    expect(await fdsUnder(dir)).toEqual([])
  })

  it('opening many logs holds one descriptor each', async () => {
    const root = await tempDir()
    const files = new SegmentFilePool(8)
    const logs: Log[] = []
    for (let k = 0; k < 20; k++) {
      const log = await openLog(`${root}/s${k}`, { segmentBytes: 4 * 1024, files })
      await fill(log, 100)
      logs.push(log)
    }
    expect((await fdsUnder(root)).length).toBe(20)
    await Promise.all(logs.map((l) => l.close()))
    for (let k = 0; k < 20; k++) logs[k] = await openLog(`${root}/s${k}`, { segmentBytes: 4 * 1024, files })
    expect((await fdsUnder(root)).length).toBe(20)
    expect(files.stats().writeHandles).toBe(20)
    await Promise.all(logs.map((l) => l.close()))
    expect(await fdsUnder(root)).toEqual([])
  })
})
