import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import { openLog, type AppendRecord, type FsyncPolicy, type Log } from '../../src/log/index.js'
import { fillDisk, freeBytes, mountTmpfs } from '../helpers/tmpfs.js'

const kb = 1024

/** One batch of `n` records tagged `tag`, about `n` × 1 KB. */
const batch = (tag: string, n: number): AppendRecord[] =>
  Array.from({ length: n }, (_, k) => ({ timestamp: 1_700_000_000_000 + k, key: `k.${tag}`, body: Buffer.from(JSON.stringify({ tag, k, pad: 'p'.repeat(1000) })), json: true }))

async function tags(log: Log): Promise<string[]> {
  const out: string[] = []
  for (let next = log.startOffset; ; ) {
    const { records, nextOffset } = await log.read(next, { maxBytes: 256 * kb })
    if (records.length === 0) return out
    for (const r of records) {
      const { tag, k } = JSON.parse(r.body.toString()) as { tag: string; k: number }
      out.push(`${tag}${k}`)
    }
    next = nextOffset
  }
}

const expected = (...parts: Array<[string, number]>): string[] => parts.flatMap(([tag, n]) => Array.from({ length: n }, (_, k) => `${tag}${k}`))

async function logBytes(dir: string): Promise<number> {
  let total = 0
  for (const n of await readdir(dir)) if (n.endsWith('.log')) total += (await stat(join(dir, n))).size
  return total
}

function writeFailed(err: unknown): string {
  expect(err).toBeInstanceOf(SluiceError)
  const e = err as SluiceError
  expect(e.code).toBe('SLUICE_ERR_LOG_WRITE_FAILED')
  expect(e.status).toBe(503)
  return String(e.details?.errno)
}

describe('a full disk', () => {
  for (const fsync of ['always', 'batch', 'never'] as FsyncPolicy[]) {
    it(`ENOSPC rolls the log back to its last durable batch and it takes appends again (fsync ${fsync})`, async () => {
      const disk = await mountTmpfs(2 * 1024 * kb)
      const dir = join(disk, 'log')
      const reported: unknown[] = []
      const opts = { fsync, segmentBytes: 1024 * kb, onWriteError: (err: unknown) => reported.push(err) }
      let log = await openLog(dir, opts)
      try {
        await log.append(batch('a', 50))
        const durableBytes = await logBytes(dir)
        await fillDisk(join(disk, 'filler'), disk, 16 * kb)
        // Too big for the space left, with a small one queued behind it in the same flush.
        const big = log.append(batch('b', 100))
        const behind = log.append(batch('c', 2))
        const [bigErr, behindErr] = await Promise.all([big.then(() => undefined, (e: unknown) => e), behind.then(() => undefined, (e: unknown) => e)])
        expect(writeFailed(bigErr)).toBe('ENOSPC')
        expect(writeFailed(behindErr)).toBe('ENOSPC')
        expect(reported.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOSPC'])
        expect(log.endOffset).toBe(50)
        expect(log.nextOffset).toBe(50)
        expect(await logBytes(dir)).toBe(durableBytes)
        expect(await tags(log)).toEqual(expected(['a', 50]))

        // What fits still goes in, without a restart, from the durable end on.
        expect(await log.append(batch('d', 3))).toEqual({ baseOffset: 50, lastOffset: 52 })
        await rm(join(disk, 'filler'))
        expect(await log.append(batch('e', 100))).toEqual({ baseOffset: 53, lastOffset: 152 })
        expect(await tags(log)).toEqual(expected(['a', 50], ['d', 3], ['e', 100]))
        await log.close()
        log = await openLog(dir, opts)
        expect(await tags(log)).toEqual(expected(['a', 50], ['d', 3], ['e', 100]))
      } finally {
        await log.close()
      }
    })
  }

  it('a flush that rolled into new segments before the disk filled is undone whole: the new segments go', async () => {
    const disk = await mountTmpfs(2 * 1024 * kb)
    const dir = join(disk, 'log')
    const opts = { fsync: 'batch' as const, segmentBytes: 64 * kb }
    let log = await openLog(dir, opts)
    try {
      await log.append(batch('a', 20))
      const logFiles = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n.endsWith('.log')).sort()
      const before = await logFiles()
      await fillDisk(join(disk, 'filler'), disk, 150 * kb)
      // Appended in one tick, so written in one flush: ~300 KB over five segments, 150 KB free.
      const parts = Array.from({ length: 6 }, (_, k) => log.append(batch(`b${k}-`, 50)))
      const outcomes = await Promise.allSettled(parts)
      expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill('rejected'))
      for (const o of outcomes) expect(writeFailed((o as PromiseRejectedResult).reason)).toBe('ENOSPC')
      expect(log.endOffset).toBe(20)
      expect(log.stats().segments).toBe(1)
      expect(await logFiles()).toEqual(before)
      expect(await tags(log)).toEqual(expected(['a', 20]))

      await rm(join(disk, 'filler'))
      const again = await Promise.all(Array.from({ length: 6 }, (_, k) => log.append(batch(`c${k}-`, 50))))
      expect(again[0]!.baseOffset).toBe(20)
      expect(again[5]!.lastOffset).toBe(319)
      const want = expected(['a', 20], ...Array.from({ length: 6 }, (_, k): [string, number] => [`c${k}-`, 50]))
      expect(await tags(log)).toEqual(want)
      await log.close()
      log = await openLog(dir, opts)
      expect(log.recovery.clean).toBe(true)
      expect(await tags(log)).toEqual(want)
      expect(await freeBytes(disk)).toBeGreaterThan(0)
    } finally {
      await log.close()
    }
  })

  it('appendAll: the parts of one request are kept together or not at all', async () => {
    const disk = await mountTmpfs(2 * 1024 * kb)
    const dir = join(disk, 'log')
    const log = await openLog(dir, { fsync: 'batch', segmentBytes: 64 * kb })
    try {
      await log.append(batch('a', 10))
      // A record the format cannot hold in the last part: no part is queued, no offset used.
      const tooLong = { ...batch('x', 1)[0]!, key: 'k'.repeat(70_000) }
      await expect(log.appendAll([batch('b', 20), [tooLong]])).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_RECORD_TOO_LARGE' })
      expect(log.nextOffset).toBe(10)
      await fillDisk(join(disk, 'filler'), disk, 100 * kb)
      await expect(log.appendAll(Array.from({ length: 5 }, (_, k) => batch(`c${k}-`, 40)))).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_WRITE_FAILED' })
      expect(log.endOffset).toBe(10)
      expect(await tags(log)).toEqual(expected(['a', 10]))
      await rm(join(disk, 'filler'))
      expect(await log.appendAll(Array.from({ length: 5 }, (_, k) => batch(`d${k}-`, 40)))).toEqual({ baseOffset: 10, lastOffset: 209 })
      expect(await tags(log)).toEqual(expected(['a', 10], ...Array.from({ length: 5 }, (_, k): [string, number] => [`d${k}-`, 40])))
    } finally {
      await log.close()
    }
  })

  it('a crash right after a rolled-back write recovers only the durable batches', async () => {
    const disk = await mountTmpfs(2 * 1024 * kb)
    const dir = join(disk, 'log')
    const log = await openLog(dir, { fsync: 'always', segmentBytes: 1024 * kb })
    await log.append(batch('a', 30))
    await fillDisk(join(disk, 'filler'), disk, 8 * kb)
    await expect(log.append(batch('b', 40))).rejects.toThrow(/rolled back/)
    // No close: the next open sees what a crash would leave (no clean-shutdown marker).
    const reopened = await openLog(dir, { fsync: 'always', segmentBytes: 1024 * kb })
    try {
      expect(reopened.recovery.clean).toBe(false)
      expect(reopened.recovery.truncated).toEqual([])
      expect(await tags(reopened)).toEqual(expected(['a', 30]))
    } finally {
      await reopened.close()
      await log.close()
    }
  })
})
