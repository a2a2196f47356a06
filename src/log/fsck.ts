import { readdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { readBatchHeader } from './format.js'
import { Log } from './log.js'
import { Segment, segmentNamePattern } from './segment.js'

export interface FsckProblem {
  readonly file: string
  readonly position: number
  readonly what: string
}

export interface FsckLogReport {
  readonly dir: string
  readonly segments: number
  readonly bytes: number
  readonly startOffset: number
  readonly endOffset: number
  readonly problems: FsckProblem[]
  readonly repaired: string[]
}

export interface FsckReport {
  readonly logs: FsckLogReport[]
  readonly ok: boolean
}

/** The stream log directories under a data dir (`<dataDir>/streams/<name>`), or the dir itself if it is one. */
async function findLogDirs(path: string): Promise<string[]> {
  const names = await readdir(path)
  if (names.some((n) => segmentNamePattern.test(n))) return [path]
  if (!names.includes('streams')) return []
  const streams = await readdir(join(path, 'streams'), { withFileTypes: true })
  return streams.filter((d) => d.isDirectory()).map((d) => join(path, 'streams', d.name)).sort()
}

/**
 * Checks every batch of every segment (CRC, offsets contiguous across segments) and every index
 * entry (it must point at the start of the batch holding its offset). With `repair`, damaged
 * tails are truncated and bad indexes rebuilt by reopening the log in repair mode.
 */
export async function fsck(path: string, options: { repair?: boolean } = {}): Promise<FsckReport> {
  const logs: FsckLogReport[] = []
  for (const dir of await findLogDirs(path)) logs.push(await checkLog(dir, options.repair === true))
  return { logs, ok: logs.every((l) => l.problems.length === 0 || l.repaired.length > 0) }
}

async function checkLog(dir: string, repair: boolean): Promise<FsckLogReport> {
  const names = (await readdir(dir)).sort()
  const bases = names
    .map((n) => segmentNamePattern.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && m[2] === 'log')
    .map((m) => Number(m[1]))
  const problems: FsckProblem[] = []
  const badIndexes: string[] = []
  let bytes = 0
  let expected: number | undefined
  let endOffset = bases[0] ?? 0
  for (const base of bases) {
    const seg = new Segment(dir, base, 0)
    try {
      const fileBytes = (await stat(seg.logPath)).size
      bytes += fileBytes
      if (expected !== undefined && expected !== base) problems.push({ file: seg.logPath, position: 0, what: `starts at offset ${base}, previous segment ends at ${expected}` })
      const starts = new Map<number, number>()
      const scan = await seg.scan(0, fileBytes, false, Number.MAX_SAFE_INTEGER)
      if (scan.damage !== undefined) {
        const d = scan.damage
        problems.push({ file: seg.logPath, position: d.position, what: `${d.reason} (${fileBytes - d.position} bytes from there${d.middle ? ', whole batches follow' : ', to the end'})` })
      }
      // Map batch starts for the index check by a second, header-only pass over the valid bytes.
      const fh = await seg.file()
      const head = Buffer.alloc(48)
      for (let p = 0; p < scan.validEnd; ) {
        await fh.read(head, 0, 48, p)
        const h = readBatchHeader(head)
        starts.set(p, h.baseOffset)
        p += h.length
      }
      const indexOk = await seg.index.load(seg.indexPath, seg.timeIndexPath, Math.max(fileBytes, 1))
      // The active segment's indexes are written only at a roll or a close: after a crash the
      // last segment may have none, and opening the log rebuilds them from the log itself.
      const unwrittenTail = !indexOk && base === bases[bases.length - 1] && !(await exists(seg.indexPath)) && !(await exists(seg.timeIndexPath))
      let indexProblem = indexOk || unwrittenTail ? undefined : 'index file is malformed (size, order or range)'
      if (indexOk) {
        for (const [pos, off] of starts) {
          const floor = seg.index.floorPosition(off - base)
          if (floor > pos) indexProblem = `entry for offset ${off} points past its batch at byte ${pos}`
          if (!starts.has(floor) && floor < scan.validEnd) indexProblem = `an entry points at byte ${floor}, not a batch start`
          if (indexProblem !== undefined) break
        }
      }
      if (indexProblem !== undefined) {
        problems.push({ file: seg.indexPath, position: 0, what: indexProblem })
        badIndexes.push(seg.indexPath, seg.timeIndexPath)
      }
      expected = scan.nextOffset
      endOffset = scan.nextOffset
    } finally {
      await seg.closeFiles()
    }
  }
  const repaired: string[] = []
  if (repair && problems.length > 0) {
    for (const p of badIndexes) await unlink(p).catch(() => undefined)
    const log = await Log.open(dir, { repair: true })
    for (const t of log.recovery.truncated) repaired.push(`truncated ${t.file} at byte ${t.position} (${t.bytes} bytes, from offset ${t.fromOffset})`)
    for (const r of log.recovery.rebuiltIndexes) repaired.push(`rebuilt indexes of ${r}`)
    endOffset = log.endOffset
    await log.close()
  }
  return { dir, segments: bases.length, bytes, startOffset: bases[0] ?? 0, endOffset, problems, repaired }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

export function formatFsckReport(report: FsckReport): string {
  const lines: string[] = []
  for (const l of report.logs) {
    lines.push(`${l.dir}: ${l.segments} segments, ${l.bytes} bytes, offsets [${l.startOffset}, ${l.endOffset})${l.problems.length === 0 ? ', ok' : ''}`)
    for (const p of l.problems) lines.push(`  DAMAGE ${p.file} byte ${p.position}: ${p.what}`)
    for (const r of l.repaired) lines.push(`  REPAIRED ${r}`)
  }
  if (report.logs.length === 0) lines.push('no stream logs found')
  lines.push(report.ok ? 'fsck: ok' : 'fsck: damage found (run with --repair to truncate and rebuild)')
  return lines.join('\n')
}
