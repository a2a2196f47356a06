import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fsck, openLog } from '../../src/log/index.js'
import { tempDir } from '../helpers/temp.js'

async function dataDirWithStreams(): Promise<string> {
  const data = await tempDir()
  for (const name of ['app-logs', 'errors']) {
    const dir = join(data, 'streams', name)
    await mkdir(dir, { recursive: true })
    const log = await openLog(dir, { fsync: 'never', segmentBytes: 8192, indexIntervalBytes: 512 })
    for (let i = 0; i < 200; i++) await log.append([{ timestamp: 1000 + i, key: 'k', body: Buffer.from(`event ${i} ${'x'.repeat(40)}`) }])
    await log.close()
  }
  return data
}

describe('fsck', () => {
  it('reports a healthy data dir as ok', async () => {
    const data = await dataDirWithStreams()
    const report = await fsck(data)
    expect(report.ok).toBe(true)
    expect(report.logs.map((l) => [l.dir.endsWith('app-logs') || l.dir.endsWith('errors'), l.startOffset, l.endOffset, l.problems.length])).toEqual([
      [true, 0, 200, 0],
      [true, 0, 200, 0],
    ])
  })

  it('finds a flipped byte in a sealed segment and a bad index, and repairs both', async () => {
    const data = await dataDirWithStreams()
    const dir = join(data, 'streams', 'errors')
    const first = join(dir, '00000000000000000000.log')
    const bytes = await readFile(first)
    bytes[1000]! ^= 0x10
    await writeFile(first, bytes)
    const index = join(data, 'streams', 'app-logs', '00000000000000000000.index')
    const idx = await readFile(index)
    idx.writeUInt32BE(idx.readUInt32BE(12) + 3, 12) // second entry's position now points mid-batch
    await writeFile(index, idx)
    const report = await fsck(data)
    expect(report.ok).toBe(false)
    const errorsLog = report.logs.find((l) => l.dir === dir)!
    expect(errorsLog.problems[0]).toMatchObject({ file: first })
    expect(errorsLog.problems[0]!.what).toMatch(/CRC mismatch/)
    const appLog = report.logs.find((l) => l.dir.endsWith('app-logs'))!
    expect(appLog.problems[0]!.file).toBe(index)

    const repaired = await fsck(data, { repair: true })
    expect(repaired.logs.map((l) => [l.problems.length > 0, l.repaired.length > 0])).toEqual([[true, true], [true, true]])
    const after = await fsck(data)
    expect(after.logs.find((l) => l.dir.endsWith('app-logs'))!.problems).toEqual([])
    expect(after.logs.find((l) => l.dir.endsWith('app-logs'))!.endOffset).toBe(200)
  })

  it('sees a torn tail as damage and repair cuts it', async () => {
    const data = await dataDirWithStreams()
    const dir = join(data, 'streams', 'app-logs')
    const log = await openLog(dir)
    const last = join(dir, log.stats().segments > 1 ? (await import('node:fs/promises').then((fs) => fs.readdir(dir))).filter((n) => n.endsWith('.log')).sort().pop()! : '00000000000000000000.log')
    await log.close()
    await rm(join(dir, '.clean-shutdown'))
    const size = (await readFile(last)).length
    await truncate(last, size - 5)
    expect((await fsck(data)).ok).toBe(false)
    const fixed = await fsck(data, { repair: true })
    expect(fixed.logs.find((l) => l.dir === dir)!.endOffset).toBe(199)
    expect((await fsck(data)).ok).toBe(true)
  })
})
