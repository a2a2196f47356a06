import { appendFile, readdir, rm, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { openLog, type Log } from '../../src/log/index.js'
import { tempDir } from '../helpers/temp.js'

// A model of what the log must hold: every appended record in offset order. A torn tail may take
// whole batches from the end, never a part of one, never anything before a survivor.
type Cmd =
  | { kind: 'append'; count: number; size: number }
  | { kind: 'reopen' }
  | { kind: 'crashTorn'; cut: number }
  | { kind: 'crashGarbage'; bytes: number }
  | { kind: 'retention'; maxBytes: number }

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 20 }), size: fc.integer({ min: 0, max: 150 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crashTorn' as const), cut: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crashGarbage' as const), bytes: fc.integer({ min: 1, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retention' as const), maxBytes: fc.integer({ min: 1000, max: 20_000 }) }) },
)

const opts = { segmentBytes: 4096, indexIntervalBytes: 512, fsync: 'never' as const }

async function lastSegment(dir: string): Promise<string> {
  const logs = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort()
  return join(dir, logs[logs.length - 1]!)
}

async function readAll(log: Log): Promise<{ offset: number; tag: string }[]> {
  const out: { offset: number; tag: string }[] = []
  let next = log.startOffset
  for (;;) {
    const { records, nextOffset } = await log.read(next, { maxBytes: 3000 })
    if (records.length === 0) return out
    for (const r of records) out.push({ offset: r.offset, tag: r.body.toString() })
    next = nextOffset
  }
}

describe('log model property', () => {
  it('reads return exactly what was appended and kept, in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), async (cmds) => {
        const dir = await tempDir()
        const model: string[] = [] // model[offset] = body
        let log = await openLog(dir, opts)
        let start = 0
        try {
          for (const c of cmds) {
            if (c.kind === 'append') {
              const bodies = Array.from({ length: c.count }, (_, k) => `${model.length + k}:${'b'.repeat(c.size)}`)
              const r = await log.append(bodies.map((b) => ({ timestamp: 1000 + model.length, key: 'k', body: Buffer.from(b) })))
              expect(r.baseOffset).toBe(model.length)
              model.push(...bodies)
            } else if (c.kind === 'reopen') {
              await log.close()
              log = await openLog(dir, opts)
              expect(log.recovery.clean).toBe(true)
            } else if (c.kind === 'crashTorn' || c.kind === 'crashGarbage') {
              await log.close()
              await rm(join(dir, '.clean-shutdown'))
              const file = await lastSegment(dir)
              const size = (await stat(file)).size
              if (c.kind === 'crashGarbage') {
                await appendFile(file, Buffer.alloc(c.bytes, 0x5a))
              } else if (size > 0) {
                // Cutting bytes from the end destroys every batch that overlaps the cut.
                const keep = Math.max(0, size - c.cut)
                await truncate(file, keep)
                log = await openLog(dir, opts)
                const survivors = await readAll(log)
                // Whatever survived is an unbroken prefix of the model; the rest is gone for good.
                const end = log.endOffset
                expect(end).toBeLessThanOrEqual(model.length)
                expect(end).toBeGreaterThanOrEqual(start)
                model.length = end
                expect(survivors.map((s) => s.tag)).toEqual(model.slice(log.startOffset))
                continue
              }
              log = await openLog(dir, opts)
              expect(log.endOffset).toBe(model.length)
            } else {
              await log.close()
              log = await openLog(dir, { ...opts, retention: { maxBytes: c.maxBytes } })
              await log.enforceRetention()
              const s = log.stats()
              // Kept bytes stay within one segment of the limit, and never below it by more than one segment.
              if (s.segments > 1) expect(s.bytes - 4096).toBeLessThan(c.maxBytes)
            }
            start = log.startOffset
            const got = await readAll(log)
            expect(got.map((g) => g.offset)).toEqual(Array.from({ length: model.length - start }, (_, k) => start + k))
            expect(got.map((g) => g.tag)).toEqual(model.slice(start))
          }
        } finally {
          await log.close()
        }
      }),
      { numRuns: 100, interruptAfterTimeLimit: 60_000 },
    )
  })
})
