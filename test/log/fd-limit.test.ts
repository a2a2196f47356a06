import { spawnSync } from 'node:child_process'
import { readdir, readlink, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.js'
import { startServer } from '../../src/server.js'
import { testConfig } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

const streams = 120

const pipeline = [
  'exchanges:',
  '  all: { type: fanout }',
  'streams:',
  ...Array.from({ length: streams }, (_, k) => `  s${k}: { segmentSize: 16kb }`),
  'bindings:',
  ...Array.from({ length: streams }, (_, k) => `  - { exchange: all, stream: s${k} }`),
].join('\n')

async function openFds(): Promise<string[]> {
  const out: string[] = []
  for (const fd of await readdir('/proc/self/fd')) {
    try {
      out.push(await readlink(`/proc/self/fd/${fd}`))
    } catch {
      // readdir's own descriptor, gone already
    }
  }
  return out
}

/** Sets this process's soft limit on descriptors; returns the previous one (a number or "unlimited"). */
function setSoftFdLimit(soft: number | string): string {
  const before = spawnSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output=SOFT', '--noheadings'], { encoding: 'utf8' })
  if (before.status !== 0) throw new Error(`prlimit is needed for this test: ${before.error?.message ?? before.stderr}`)
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:`], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`prlimit --nofile=${soft}: ${r.stderr}`)
  return before.stdout.trim()
}

describe('descriptors at start-up and stop', () => {
  it(`${streams} streams of several segments each restart, twice, under a limit of 160 descriptors more than the process had`, async () => {
    const dataDir = await tempDir()
    const config = testConfig(dataDir, pipeline, '  limits: { maxOpenSegmentFiles: 16 }')
    let server = await startServer(config, createLogger('silent'))
    const body = Array.from({ length: 40 }, (_, k) => JSON.stringify({ k, pad: 'x'.repeat(1000) })).join('\n')
    for (let r = 0; r < 2; r++) {
      const res = await fetch(`${server.httpUrl}/v1/exchanges/all/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
      expect(res.status).toBe(200)
    }
    const segments = server.streams.get('s0')!.log.stats().segments
    expect(segments).toBeGreaterThanOrEqual(4)
    await server.stop()

    // Before this change a stream held three descriptors per segment: 120 × 5 × 3 would not fit.
    const base = (await openFds()).length
    const previous = setSoftFdLimit(base + 160)
    try {
      for (let round = 0; round < 2; round++) {
        server = await startServer(config, createLogger('silent'))
        const held = (await openFds()).filter((p) => p.startsWith(`${dataDir}/streams/`))
        // One per stream (its active segment; ingest-errors is one more), plus what the pool of 16
        // keeps of the reads made at start.
        expect(held.length).toBeLessThanOrEqual(streams + 1 + 16)
        expect(server.streams.files.stats().writeHandles).toBe(streams + 1)
        expect(server.streams.files.stats().readHandles).toBeLessThanOrEqual(16)
        expect(server.streams.all().every((s) => s.log.recovery.clean)).toBe(true)
        // Old segments are read through the pool and the events come back whole.
        const ks: number[] = []
        for (let from = 0; ; ) {
          const res = await fetch(`${server.httpUrl}/v1/streams/s7/events?from=${from}&limit=100`)
          const page = (await res.json()) as { events: Array<{ body: { k: number } }>; nextOffset: number }
          if (page.events.length === 0) break
          for (const e of page.events) ks.push(e.body.k)
          from = page.nextOffset
        }
        expect(ks).toEqual([...Array.from({ length: 40 }, (_, k) => k), ...Array.from({ length: 40 }, (_, k) => k)])
        await server.stop()
        for (let k = 0; k < streams; k += 17) await stat(join(dataDir, 'streams', `s${k}`, '.clean-shutdown'))
      }
    } finally {
      setSoftFdLimit(previous)
    }
  })
})
