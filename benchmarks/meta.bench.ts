// Metadata write throughput: how many durable (synced) writes per second the store takes with
// one caller versus many concurrent callers. Each write is one ack-sized op (a settled range).
// With one caller every write pays its own fsync; with many, group commit lets callers that
// arrive during an fsync share the next one, so writes/s should rise roughly with callers
// until the batch cost itself shows.
//
// Run: npm run build && node dist/benchmarks/meta.bench.js [--ms=2000] [--repeats=3]
// Prints one JSON line per run, then a summary table: median (min-max) over the repeats.

import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir, type as osType, release } from 'node:os'
import { join } from 'node:path'
import { groupKeyspaces } from '../src/consumers/group.js'
import { openMeta, type MetaStore } from '../src/meta/index.js'

interface Run {
  readonly name: string
  readonly callers: number
  readonly sync: boolean
  readonly repeat: number
  readonly writes: number
  readonly seconds: number
  readonly writesPerSec: number
  readonly batches: number
  readonly syncedBatches: number
  readonly writesPerBatch: number
}

const arg = (name: string, fallback: number): number => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`))
  return hit === undefined ? fallback : Number(hit.slice(name.length + 3))
}
const durationMs = arg('ms', 2000)
const repeats = arg('repeats', 3)
// Bounds every loop even on a disk whose fsync is a no-op.
const writesMaxPerCaller = 200_000

const configs = [
  { name: 'synced, 1 caller', callers: 1, sync: true },
  { name: 'synced, 10 callers', callers: 10, sync: true },
  { name: 'synced, 100 callers', callers: 100, sync: true },
  { name: 'not synced, 1 caller', callers: 1, sync: false },
  { name: 'not synced, 100 callers', callers: 100, sync: false },
] as const

const registered = new WeakMap<MetaStore, ReturnType<typeof groupKeyspaces>>()
// A keyspace is registered once per store; every run on the same store shares the handles.
function keyspacesOf(meta: MetaStore): ReturnType<typeof groupKeyspaces> {
  let ks = registered.get(meta)
  if (ks === undefined) registered.set(meta, (ks = groupKeyspaces(meta)))
  return ks
}

async function runOnce(meta: MetaStore, callers: number, sync: boolean, runId: number): Promise<Omit<Run, 'name' | 'repeat'>> {
  const { settled } = keyspacesOf(meta)
  const before = { ...meta.stats }
  const deadline = performance.now() + durationMs
  const started = performance.now()
  let writes = 0
  const caller = async (id: number): Promise<void> => {
    const group = `bench-${runId}-${id}`
    for (let offset = 0; offset < writesMaxPerCaller && performance.now() < deadline; offset++) {
      await settled.put([group, offset], { end: offset + 1 }, { sync })
      writes++
    }
  }
  await Promise.all(Array.from({ length: callers }, (_, i) => caller(i)))
  const seconds = (performance.now() - started) / 1000
  const batches = meta.stats.batches - before.batches
  return {
    callers,
    sync,
    writes,
    seconds: round(seconds, 3),
    writesPerSec: Math.round(writes / seconds),
    batches,
    syncedBatches: meta.stats.syncedBatches - before.syncedBatches,
    writesPerBatch: round(writes / Math.max(1, batches), 1),
  }
}

const round = (n: number, digits: number): number => Number(n.toFixed(digits))
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-meta-bench-'))
  const meta = await openMeta(join(dir, 'meta'))
  const runs: Run[] = []
  try {
    let runId = 0
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const c of configs) {
        const run = { name: c.name, repeat, ...(await runOnce(meta, c.callers, c.sync, runId++)) }
        runs.push(run)
        console.log(JSON.stringify(run))
      }
    }
  } finally {
    await meta.close()
    await rm(dir, { recursive: true, force: true })
  }
  console.log(`\nmachine: ${osType()} ${release()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, tmpdir ${tmpdir()}`)
  console.log(`${durationMs} ms per run, ${repeats} repeats; median (min-max)\n`)
  console.log('| configuration | writes/s | writes per batch |')
  console.log('|---|---|---|')
  for (const c of configs) {
    const mine = runs.filter((r) => r.name === c.name)
    const rate = mine.map((r) => r.writesPerSec)
    const per = mine.map((r) => r.writesPerBatch)
    console.log(`| ${c.name} | ${median(rate)} (${Math.min(...rate)}-${Math.max(...rate)}) | ${median(per)} (${Math.min(...per)}-${Math.max(...per)}) |`)
  }
}

await main()
