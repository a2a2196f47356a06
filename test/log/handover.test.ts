// A stream handed from one node to another: the new node's log takes the old one's batches as
// stored (appendStored) after starting empty at its first offset (reset), and ends up byte for
// byte the same, reopening the same after a restart.

import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openLog, type AppendRecord, type Log } from '../../src/log/index.js'
import { tempDir } from '../helpers/temp.js'

const rec = (i: number): AppendRecord => ({ timestamp: 1_700_000_000_000 + i, key: `k.${i}`, body: Buffer.from(JSON.stringify({ i })), json: true, id: `id-${i}` })

async function batchesOf(log: Log): Promise<Buffer[]> {
  const out: Buffer[] = []
  for (let from = log.startOffset; from < log.endOffset; ) {
    const { batches, nextOffset } = await log.readBatches(from, 1000)
    out.push(...batches.map((b) => Buffer.from(b)))
    from = nextOffset
  }
  return out
}

async function ids(log: Log): Promise<string[]> {
  const out: string[] = []
  for (let from = log.startOffset; ; ) {
    const { records, nextOffset } = await log.read(from)
    if (records.length === 0) return out
    out.push(...records.map((r) => `${r.offset}:${r.id}`))
    from = nextOffset
  }
}

describe('log handover', () => {
  it('copies a log that retention has cut at its start, with the same offsets, bytes and segments', async () => {
    const source = await openLog(await tempDir(), { segmentBytes: 2048 })
    const targetDir = await tempDir()
    const target = await openLog(targetDir, { segmentBytes: 2048 })
    try {
      for (let k = 0; k < 40; k++) await source.append([rec(k * 3), rec(k * 3 + 1), rec(k * 3 + 2)])
      await source.enforceRetention(60) // drops whole segments below offset 60 (nothing reads them)
      expect(source.startOffset).toBeGreaterThan(0)
      // The target held an older, unrelated copy: reset throws it away.
      await target.append([rec(1000), rec(1001)])
      await target.reset(source.startOffset)
      expect([target.startOffset, target.endOffset]).toEqual([source.startOffset, source.startOffset])
      const batches = await batchesOf(source)
      const r = await target.appendStored(batches.slice(0, 5))
      expect(r.baseOffset).toBe(source.startOffset)
      await target.appendStored(batches.slice(5))
      expect(target.endOffset).toBe(source.endOffset)
      expect(await ids(target)).toEqual(await ids(source))
      expect(Buffer.concat(await batchesOf(target)).equals(Buffer.concat(batches))).toBe(true)
      // Appends go on after the copy at the next offset.
      expect((await target.append([rec(500)])).baseOffset).toBe(source.endOffset)
    } finally {
      await source.close()
      await target.close()
    }
    const reopened = await openLog(targetDir, { segmentBytes: 2048 })
    try {
      expect(reopened.recovery.truncated).toEqual([])
      expect((await ids(reopened)).at(-1)).toBe(`${reopened.endOffset - 1}:id-500`)
    } finally {
      await reopened.close()
    }
  })

  it('refuses a batch that is damaged, cut, or not at its end, and queues none of a refused call', async () => {
    const source = await openLog(await tempDir())
    const target = await openLog(await tempDir())
    try {
      await source.append([rec(0), rec(1)])
      await source.append([rec(2)])
      const [b0, b1] = await batchesOf(source)
      const damaged = Buffer.from(b1!)
      damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 0xff, damaged.length - 1)
      await expect(target.appendStored([b0!, damaged])).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_CORRUPT' })
      await expect(target.appendStored([b0!.subarray(0, b0!.length - 3)])).rejects.toMatchObject({ code: 'SLUICE_ERR_LOG_CORRUPT' })
      await expect(target.appendStored([b1!])).rejects.toThrow(/starts at offset 2, not at this log's end 0/)
      expect([target.nextOffset, target.endOffset]).toEqual([0, 0])
      await target.appendStored([b0!, b1!])
      expect(await ids(target)).toEqual(['0:id-0', '1:id-1', '2:id-2'])
    } finally {
      await source.close()
      await target.close()
    }
  })

  it('a reset leaves no segment file of the old copy behind', async () => {
    const dir = await tempDir()
    const log = await openLog(dir, { segmentBytes: 1024 })
    try {
      for (let i = 0; i < 50; i++) await log.append([rec(i)])
      await log.reset(50)
      expect(log.stats()).toMatchObject({ startOffset: 50, endOffset: 50, segments: 1 })
      expect((await readdir(dir)).filter((f) => f.endsWith('.log'))).toEqual(['00000000000000000050.log'])
      expect(await readFile(join(dir, '00000000000000000050.log'))).toHaveLength(0)
    } finally {
      await log.close()
    }
  })
})
