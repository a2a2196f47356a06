import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { openLog, type FsyncPolicy } from '../../src/log/index.js'
import { tempDir } from '../helpers/temp.js'

const child = fileURLToPath(new URL('./crash-child.mjs', import.meta.url))

interface Confirmed {
  base: number
  last: number
  firstSeq: number
}

/** Runs the child until a random moment, SIGKILLs it, and returns what it confirmed. */
async function runAndKill(dir: string, fsync: FsyncPolicy, firstSeq: number, killAfterMs: number): Promise<{ ready: number; confirmed: Confirmed[] }> {
  const proc = spawn(process.execPath, [child, dir, fsync, '5', '4', String(firstSeq)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const confirmed: Confirmed[] = []
  let ready = -1
  const lines = createInterface({ input: proc.stdout })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  lines.on('line', (line) => {
    const [tag, a, b, c] = line.split(' ')
    if (tag === 'ready') {
      ready = Number(a)
      setTimeout(() => proc.kill('SIGKILL'), killAfterMs)
    } else if (tag === 'ok') {
      confirmed.push({ base: Number(a), last: Number(b), firstSeq: Number(c) })
    }
  })
  await exited
  lines.close()
  return { ready, confirmed }
}

describe('crash safety', () => {
  for (const fsync of ['always', 'batch'] as const) {
    it(`every confirmed record survives SIGKILL at random moments (fsync ${fsync})`, async () => {
      const dir = await tempDir()
      const kills = 12
      let seq = 0
      let confirmedTotal = 0
      for (let round = 0; round < kills; round++) {
        const { ready, confirmed } = await runAndKill(dir, fsync, seq, 30 + Math.floor(Math.random() * 120))
        expect(ready).toBeGreaterThanOrEqual(0)
        seq += 1_000_000 // fresh sequence space per round keeps each round's records distinguishable
        confirmedTotal += confirmed.length
        const log = await openLog(dir)
        try {
          // Appends resume right after the recovered end: the child of the next round starts there.
          const maxConfirmed = confirmed.reduce((m, c) => Math.max(m, c.last), -1)
          expect(log.endOffset).toBeGreaterThan(maxConfirmed)
          if (confirmed.length > 0) expect(Math.min(...confirmed.map((c) => c.base))).toBeGreaterThanOrEqual(ready)
          for (const c of confirmed) {
            const { records } = await log.read(c.base, { maxRecords: c.last - c.base + 1 })
            expect(records.map((r) => r.offset)).toEqual(Array.from({ length: c.last - c.base + 1 }, (_, k) => c.base + k))
            records.forEach((r, k) => {
              const s = c.firstSeq + k
              expect(JSON.parse(r.body.toString())).toEqual({ seq: s, pad: `${s}:`.repeat(8) })
              expect(r.id).toBe(`s-${s}`)
            })
          }
          // Every record present, confirmed or not, is whole: reading the full log checks each CRC.
          let next = log.startOffset
          let count = 0
          for (;;) {
            const { records, nextOffset } = await log.read(next)
            if (records.length === 0) break
            count += records.length
            next = nextOffset
          }
          expect(count).toBe(log.endOffset)
          const again = await log.append([{ timestamp: Date.now(), key: 'after', body: Buffer.from('{}'), json: true }])
          expect(again.baseOffset).toBe(count)
        } finally {
          await log.close()
        }
        // Leave the log as after a crash for the next child: no clean-shutdown marker.
        await rm(join(dir, '.clean-shutdown'), { force: true })
      }
      expect(confirmedTotal).toBeGreaterThan(kills)
    })
  }
})
