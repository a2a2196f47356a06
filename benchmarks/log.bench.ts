// Log benchmark (issue 3): `npm run bench:log`, or after a build `node dist/benchmarks/log.bench.js`.
//
// Measures, in one run and on one disk: the disk's own ceiling (dd sequential bandwidth, raw
// write+fdatasync rate), append throughput and append-to-durable latency for every fsync policy
// and batch size, sequential read of a ~1 GB log, and open time after a clean stop and after a
// simulated crash. Prints a Markdown table with targets, and appends raw JSON lines to
// benchmarks/results/log.jsonl. Everything is written under a fresh temp dir that is removed at
// the end (also on error or Ctrl-C).
//
// Options (for profiling one cell, or a quick check):
//   --runs=N           repetitions of every throughput figure (default 3; the median is reported)
//   --only=ID[,ID]     run only these append cells, e.g. --only=batch/1000 or always/1/serial
//   --skip-disk        skip dd and the raw fdatasync loops
//   --skip-read        skip the 1 GB read and open phase
//   --dir=PATH         parent of the temp dir (default os.tmpdir())
//   --record           append to benchmarks/results/log.jsonl (else to a temp dir)
//   --no-warmup        skip the untimed warm-up appends (keeps them out of a --cpu-prof profile)
//
// Profiling one cell: node --cpu-prof --cpu-prof-dir=benchmarks/tmp/prof dist/benchmarks/log.bench.js \
//   --runs=1 --only=always/1/serial --skip-disk --skip-read --no-warmup
// then: node dist/benchmarks/cpuprofile-top.js benchmarks/tmp/prof/<file>.cpuprofile
//
// Records: every record encodes to exactly 250 bytes (key of 8 bytes, body of 221 bytes, 21 bytes
// of per-record framing); each append adds a 48-byte batch header on disk. MB/s is 10^6 bytes of
// encoded records per second (header excluded), the same unit dd reports.

import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { appendFileSync, closeSync, fdatasyncSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs'
import { appendFile, mkdir, mkdtemp, open, readdir, rm, unlink } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { encodeBatch, logDefaults, openLog, type AppendRecord, type FsyncPolicy, type Log } from '../src/log/index.js'
import { resultsDir } from './lib/results.js'

// ---- parameters ----------------------------------------------------------------------------------

const recordBytes = 250
const keyBytes = 8
const bodyBytes = recordBytes - 21 - keyBytes
const batchHeader = 48
const window = 64
const readTargetBytes = 1e9
const readBatchRecords = 100
const readMaxBytes = 1024 * 1024
const crashGarbageBytes = 37

interface Args {
  runs: number
  only: Set<string> | undefined
  skipDisk: boolean
  skipRead: boolean
  dir: string
  record: boolean
  warmup: boolean
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { runs: 3, only: undefined, skipDisk: false, skipRead: false, dir: tmpdir(), record: false, warmup: true }
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined]
    if (k === '--runs' && v !== undefined) args.runs = Math.max(1, Number.parseInt(v, 10))
    else if (k === '--only' && v !== undefined) args.only = new Set(v.split(','))
    else if (k === '--skip-disk') args.skipDisk = true
    else if (k === '--skip-read') args.skipRead = true
    else if (k === '--dir' && v !== undefined) args.dir = v
    else if (k === '--record') args.record = true
    else if (k === '--no-record') args.record = false
    else if (k === '--no-warmup') args.warmup = false
    else throw new Error(`unknown argument ${a}`)
  }
  return args
}

interface CellSpec {
  readonly id: string
  readonly policy: FsyncPolicy
  readonly batch: number
  /** appends kept in flight */
  readonly window: number
  readonly maxRecords: number
  readonly maxMs: number
}

function cellSpecs(): CellSpec[] {
  const cells: CellSpec[] = []
  for (const policy of ['always', 'batch', 'never'] as const) {
    for (const batch of [1, 100, 1000]) {
      const short = policy === 'always' && batch === 1
      const limits = short ? { maxRecords: 20_000, maxMs: 3000 } : { maxRecords: 2_000_000, maxMs: 5000 }
      if (short) cells.push({ id: 'always/1/serial', policy, batch, window: 1, ...limits })
      cells.push({ id: `${policy}/${batch}`, policy, batch, window, ...limits })
    }
  }
  return cells
}

// ---- helpers -------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return Number.NaN
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

interface Stat {
  readonly median: number
  readonly min: number
  readonly max: number
}

function stat(xs: readonly number[]): Stat {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }
}

const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtMs = (n: number): string => (!Number.isFinite(n) ? 'n/a' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n >= 1 ? n.toFixed(2) : n.toFixed(3))
const fmtMb = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
const fmtStat = (s: Stat, f: (n: number) => string): string => (s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`)

function buildRecords(n: number): AppendRecord[] {
  const body = randomBytes(bodyBytes)
  const timestamp = Date.now()
  return Array.from({ length: n }, (_, i) => ({ timestamp, key: `k-${String(i % 1_000_000).padStart(6, '0')}`, body }))
}

function settle(dir: string): void {
  spawnSync('sync', ['-f', dir])
}

/** Linux pressure-stall totals (µs), to tell a quiet run from one that shared the machine. */
interface Pressure {
  readonly cpu: number
  readonly io: number
}

function readPsi(kind: 'cpu' | 'io'): number {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${kind}`, 'utf8'))
    return m?.[1] === undefined ? Number.NaN : Number(m[1])
  } catch {
    return Number.NaN
  }
}

function pressure(): Pressure {
  return { cpu: readPsi('cpu'), io: readPsi('io') }
}

interface Stall {
  /** share of the run during which some task waited for a CPU, % */
  readonly cpuStallPct: number
  /** share of the run during which some task waited for I/O, % */
  readonly ioStallPct: number
}

function stallSince(p0: Pressure, elapsedMs: number): Stall {
  const p1 = pressure()
  return { cpuStallPct: ((p1.cpu - p0.cpu) / 1000 / elapsedMs) * 100, ioStallPct: ((p1.io - p0.io) / 1000 / elapsedMs) * 100 }
}

const fmtStall = (s: Stall): string => (Number.isFinite(s.cpuStallPct) ? `; cpu stall ${s.cpuStallPct.toFixed(0)}%, io stall ${s.ioStallPct.toFixed(0)}%` : '')


// ---- machine -------------------------------------------------------------------------------------

interface Machine {
  cpu: string
  cores: number
  memGiB: number
  node: string
  kernel: string
  df: string
  device: string
  fsType: string
  mountOptions: string
  loadAvg: number[]
}

function machineInfo(dir: string): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  } catch {
    // not Linux
  }
  const df = spawnSync('df', ['-hT', dir], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).stdout.trim()
  const row = df.split('\n')[1]?.split(/\s+/) ?? []
  const device = row[0] ?? 'unknown'
  const fsType = row[1] ?? 'unknown'
  const mountPoint = row[6] ?? ''
  let mountOptions = ''
  try {
    const line = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[1] === mountPoint)
    mountOptions = line?.split(' ')[3] ?? ''
  } catch {
    // not Linux
  }
  return { cpu, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release(), df, device, fsType, mountOptions, loadAvg: loadavg() }
}

// ---- disk ceiling --------------------------------------------------------------------------------

function ddRun(dir: string): number {
  const file = join(dir, 'dd.bin')
  const r = spawnSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=1024', 'conv=fdatasync'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
  rmSync(file, { force: true })
  settle(dir)
  const m = /(\d+) bytes.*copied, ([\d.]+) s/.exec(r.stderr)
  if (r.status !== 0 || m === null) throw new Error(`dd failed (${r.status}): ${r.stderr}`)
  return Number(m[1]) / Number(m[2]) / 1e6
}

interface SyncRun extends Stall {
  readonly perSec: number
  readonly count: number
  readonly p50Ms: number
  readonly p99Ms: number
}

const rawSyncMs = 3000
const rawSyncMax = 50_000

function rawSyncLoop(dir: string): SyncRun {
  const file = join(dir, 'raw-sync.bin')
  const buf = randomBytes(recordBytes)
  const lat = new Float64Array(rawSyncMax)
  const fd = openSync(file, 'w')
  let n = 0
  const p0 = pressure()
  const t0 = performance.now()
  let now = t0
  try {
    while (n < rawSyncMax && now - t0 < rawSyncMs) {
      const s = now
      writeSync(fd, buf)
      fdatasyncSync(fd)
      now = performance.now()
      lat[n++] = now - s
    }
  } finally {
    closeSync(fd)
    rmSync(file, { force: true })
  }
  const stall = stallSince(p0, now - t0)
  const sorted = lat.subarray(0, n).sort()
  return { perSec: (n * 1000) / (now - t0), count: n, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), ...stall }
}

async function rawAsyncLoop(dir: string): Promise<SyncRun> {
  const file = join(dir, 'raw-async.bin')
  const buf = randomBytes(recordBytes)
  const lat = new Float64Array(rawSyncMax)
  const fh = await open(file, 'w')
  let n = 0
  const p0 = pressure()
  const t0 = performance.now()
  let now = t0
  try {
    while (n < rawSyncMax && now - t0 < rawSyncMs) {
      const s = now
      await fh.write(buf)
      await fh.datasync()
      now = performance.now()
      lat[n++] = now - s
    }
  } finally {
    await fh.close()
    await rm(file, { force: true })
  }
  const stall = stallSince(p0, now - t0)
  const sorted = lat.subarray(0, n).sort()
  return { perSec: (n * 1000) / (now - t0), count: n, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), ...stall }
}

// ---- append cells --------------------------------------------------------------------------------

interface CellRun extends Stall {
  readonly records: number
  readonly appends: number
  readonly elapsedMs: number
  readonly recPerSec: number
  readonly mbPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly syncs: number
}

async function runCell(spec: CellSpec, dir: string): Promise<CellRun> {
  await mkdir(dir, { recursive: true })
  const log = await openLog(dir, { fsync: spec.policy })
  try {
    const records = buildRecords(spec.batch)
    const maxAppends = Math.ceil(spec.maxRecords / spec.batch)
    const lat = new Float64Array(maxAppends)
    let issued = 0
    let done = 0
    let lastDone = 0
    const syncs0 = log.counters.syncs
    const p0 = pressure()
    const t0 = performance.now()
    const deadline = t0 + spec.maxMs
    const stamp = (): number => performance.now()
    const worker = async (): Promise<void> => {
      while (issued < maxAppends && performance.now() < deadline) {
        const i = issued++
        const s = performance.now()
        // The timestamp is taken in the promise's own reaction, before any worker goes on to
        // encode its next batch, so latency is append() call to resolution.
        const e = await log.append(records).then(stamp)
        lat[i] = e - s
        if (e > lastDone) lastDone = e
        done++
      }
    }
    await Promise.all(Array.from({ length: spec.window }, worker))
    const elapsedMs = lastDone - t0
    const stall = stallSince(p0, performance.now() - t0)
    const total = done * spec.batch
    if (log.endOffset !== total) throw new Error(`${spec.id}: endOffset ${log.endOffset} but ${total} records appended`)
    const sorted = lat.subarray(0, done).sort()
    return {
      records: total,
      appends: done,
      elapsedMs,
      recPerSec: (total * 1000) / elapsedMs,
      mbPerSec: (total * recordBytes) / elapsedMs / 1000,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      syncs: log.counters.syncs - syncs0,
      ...stall,
    }
  } finally {
    await log.close()
    await rm(dir, { recursive: true, force: true })
    settle(dirname(dir))
  }
}

// ---- read and open -------------------------------------------------------------------------------

async function buildBigLog(dir: string): Promise<{ bytes: number; records: number; segments: number; ms: number }> {
  const segmentBytes = logDefaults.segmentBytes
  const batchBytes = batchHeader + readBatchRecords * recordBytes
  const perSegment = Math.floor(segmentBytes / batchBytes)
  // Whole segments only, so the last one is full and a crash scan walks a whole segment.
  const segments = Math.ceil(readTargetBytes / (perSegment * batchBytes))
  const appends = segments * perSegment
  const log = await openLog(dir, { fsync: 'never' })
  const records = buildRecords(readBatchRecords)
  const t0 = performance.now()
  let issued = 0
  const worker = async (): Promise<void> => {
    while (issued < appends) {
      issued++
      await log.append(records)
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  await log.close()
  const ms = performance.now() - t0
  return { bytes: appends * batchBytes, records: appends * readBatchRecords, segments, ms }
}

async function readPass(log: Log): Promise<{ bytes: number; batches: number; ms: number }> {
  let from = log.startOffset
  const end = log.endOffset
  let bytes = 0
  let batches = 0
  const t0 = performance.now()
  while (from < end) {
    const r = await log.readBatches(from, readMaxBytes)
    if (r.batches.length === 0) throw new Error(`readBatches made no progress at offset ${from}`)
    for (const b of r.batches) bytes += b.length
    batches += r.batches.length
    from = r.nextOffset
  }
  return { bytes, batches, ms: performance.now() - t0 }
}

const decodeMaxRecords = 2_000_000
const decodeMaxMs = 3000

async function decodePass(log: Log): Promise<{ records: number; bytes: number; ms: number }> {
  let from = log.startOffset
  let records = 0
  let bytes = 0
  const t0 = performance.now()
  while (records < decodeMaxRecords && performance.now() - t0 < decodeMaxMs && from < log.endOffset) {
    const r = await log.read(from, { maxBytes: readMaxBytes })
    for (const rec of r.records) bytes += rec.body.length
    records += r.records.length
    from = r.nextOffset
  }
  if (bytes !== records * bodyBytes) throw new Error('decoded bodies do not add up')
  return { records, bytes: records * recordBytes, ms: performance.now() - t0 }
}

interface OpenRun {
  readonly wallMs: number
  readonly recoveryMs: number
}

async function timedOpen(dir: string): Promise<{ log: Log; run: OpenRun }> {
  const t0 = performance.now()
  const log = await openLog(dir)
  const wallMs = performance.now() - t0
  return { log, run: { wallMs, recoveryMs: log.recovery.durationMs } }
}

async function simulateCrash(dir: string): Promise<string> {
  const names = await readdir(dir)
  const last = names.filter((n) => n.endsWith('.log')).sort().at(-1)
  if (last === undefined) throw new Error('no segment to damage')
  // Throws if the clean-shutdown marker is missing, which would mean the last close was not clean.
  await unlink(join(dir, '.clean-shutdown'))
  await appendFile(join(dir, last), Buffer.alloc(crashGarbageBytes, 0xa5))
  return last
}

// ---- main ----------------------------------------------------------------------------------------

interface Target {
  readonly name: string
  readonly actual: number
  readonly target: number
  readonly unit: string
  /** true: actual must be >= target; false: actual must be < target */
  readonly atLeast: boolean
  readonly note: string
}

function targetLine(t: Target): { pass: boolean; text: string } {
  const pass = t.atLeast ? t.actual >= t.target : t.actual < t.target
  const ratio = t.actual / t.target
  const off = t.atLeast ? `${(ratio * 100).toFixed(0)}% of target` : `${(ratio * 100).toFixed(1)}% of limit`
  const f = t.unit === 'ms' ? fmtMs : t.unit === 'MB/s' ? fmtMb : fmtInt
  return { pass, text: `| ${t.name} | ${f(t.actual)} ${t.unit} | ${t.atLeast ? '≥' : '<'} ${f(t.target)} ${t.unit} | ${pass ? 'PASS' : 'MISS'} | ${off}${t.note ? `; ${t.note}` : ''} |` }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const root = await mkdtemp(join(args.dir, 'sluice-bench-log-'))
  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    rmSync(root, { recursive: true, force: true })
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    console.error(`\n${sig}: removing ${root}`)
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const resultsFile = join(resultsDir(args.record), 'log.jsonl')
  const runId = new Date().toISOString()
  const record = (obj: object): void => {
    appendFileSync(resultsFile, `${JSON.stringify({ bench: 'log', runId, ...obj })}\n`)
  }

  try {
    const fs = statfsSync(root)
    const freeGB = (fs.bavail * fs.bsize) / 1e9
    if (freeGB < 4) throw new Error(`only ${freeGB.toFixed(1)} GB free under ${root}; the benchmark needs about 4 GB`)
    const enc = encodeBatch(buildRecords(10), 0)
    if (enc.length !== batchHeader + 10 * recordBytes) throw new Error(`records encode to ${(enc.length - batchHeader) / 10} bytes, expected ${recordBytes}`)

    const machine = machineInfo(root)
    console.log(`# Sluice log benchmark  ${runId}`)
    console.log(`CPU     ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB RAM`)
    console.log(`Node    ${machine.node}, kernel ${machine.kernel}`)
    console.log(`Load    ${machine.loadAvg.map((l) => l.toFixed(2)).join(' ')} (1/5/15 min) at start${machine.loadAvg[0]! > machine.cores / 2 ? ': the machine is busy, figures will be noisy' : ''}`)
    console.log(`Dir     ${root}  (${machine.fsType} on ${machine.device}; mount options ${machine.mountOptions || 'n/a'})`)
    console.log(machine.df)
    console.log(`Records ${recordBytes} B encoded (key ${keyBytes} B + body ${bodyBytes} B + 21 B framing), +${batchHeader} B batch header per append; window ${window} appends in flight; ${args.runs} runs per figure (median, min–max)`)
    console.log(`Log     defaults: segmentBytes ${logDefaults.segmentBytes}, intervalMs ${logDefaults.intervalMs}, maxBatchBytes ${logDefaults.maxBatchBytes}, indexIntervalBytes ${logDefaults.indexIntervalBytes}\n`)
    record({ kind: 'machine', ...machine, recordBytes, window, runs: args.runs, logDefaults: { ...logDefaults, logger: undefined, now: undefined } })

    // Phase 1: the disk's sequential ceiling.
    const dd: number[] = []
    const rawSync: SyncRun[] = []
    const rawAsync: SyncRun[] = []
    if (!args.skipDisk) {
      for (let rep = 0; rep < args.runs; rep++) {
        const p0 = pressure()
        const t0 = performance.now()
        const mbps = ddRun(root)
        const stall = stallSince(p0, performance.now() - t0)
        dd.push(mbps)
        record({ kind: 'dd', rep, mbPerSec: mbps, ...stall })
        console.log(`dd 1 GiB conv=fdatasync run ${rep + 1}: ${fmtMb(mbps)} MB/s${fmtStall(stall)}`)
      }
      await sleep(1000)
    }

    // Phase 2: appends. Runs go round-robin over the cells so slow drift hits every cell alike;
    // each round starts with the raw fdatasync loops and then the serial always/1 cell, so that
    // pair, which the target compares, is measured back to back.
    const specs = cellSpecs().filter((c) => args.only === undefined || args.only.has(c.id))
    const runs = new Map<string, CellRun[]>(specs.map((c) => [c.id, []]))
    if (specs.length > 0 && args.warmup) {
      // Warm-up, not reported: lets the JIT see the append path before anything is timed.
      await runCell({ id: 'warmup', policy: 'never', batch: 100, window, maxRecords: 200_000, maxMs: 1000 }, join(root, 'warmup'))
      await runCell({ id: 'warmup', policy: 'never', batch: 1, window, maxRecords: 50_000, maxMs: 1000 }, join(root, 'warmup'))
      await sleep(500)
    }
    for (let rep = 0; rep < args.runs; rep++) {
      if (!args.skipDisk) {
        const s = rawSyncLoop(root)
        rawSync.push(s)
        record({ kind: 'raw-fdatasync-sync', rep, ...s })
        const a = await rawAsyncLoop(root)
        rawAsync.push(a)
        record({ kind: 'raw-fdatasync-async', rep, ...a })
        console.log(`raw ${recordBytes} B write+fdatasync  run ${rep + 1}: sync API ${fmtInt(s.perSec)}/s (p50 ${fmtMs(s.p50Ms)} ms, p99 ${fmtMs(s.p99Ms)} ms${fmtStall(s)}), promise API ${fmtInt(a.perSec)}/s (p50 ${fmtMs(a.p50Ms)} ms, p99 ${fmtMs(a.p99Ms)} ms${fmtStall(a)})`)
      }
      for (const spec of specs) {
        const r = await runCell(spec, join(root, `cell-${spec.id.replaceAll('/', '-')}`))
        runs.get(spec.id)!.push(r)
        record({ kind: 'append', cell: spec.id, policy: spec.policy, batch: spec.batch, window: spec.window, rep, ...r })
        console.log(
          `${spec.id.padEnd(16)} run ${rep + 1}: ${fmtInt(r.recPerSec).padStart(11)} rec/s ${fmtMb(r.mbPerSec).padStart(7)} MB/s  p50 ${fmtMs(r.p50Ms)} ms  p99 ${fmtMs(r.p99Ms)} ms  (${fmtInt(r.records)} records, ${fmtInt(r.syncs)} syncs, ${(r.elapsedMs / 1000).toFixed(2)} s${fmtStall(r)})`,
        )
        await sleep(200)
      }
      await sleep(500)
    }

    // Phase 3: read and open a ~1 GB log.
    const read: number[] = []
    const readFirst: number[] = []
    const decode: number[] = []
    const decodeMb: number[] = []
    const openClean: OpenRun[] = []
    const openCrash: OpenRun[] = []
    let built: Awaited<ReturnType<typeof buildBigLog>> | undefined
    if (!args.skipRead) {
      const dir = join(root, 'big')
      built = await buildBigLog(dir)
      settle(root)
      console.log(`\nbuilt ${fmtInt(built.records)} records, ${(built.bytes / 1e9).toFixed(3)} GB in ${built.segments} segments (fsync never, ${readBatchRecords}-record appends) in ${(built.ms / 1000).toFixed(1)} s`)
      record({ kind: 'build', ...built })

      const { log, run } = await timedOpen(dir)
      try {
        if (!log.recovery.clean) throw new Error('the freshly built log did not open clean')
        for (let rep = 0; rep <= args.runs; rep++) {
          const p = await readPass(log)
          if (p.bytes !== built.bytes) throw new Error(`read ${p.bytes} bytes of ${built.bytes}`)
          const mbps = p.bytes / p.ms / 1000
          ;(rep === 0 ? readFirst : read).push(mbps)
          record({ kind: 'read-batches', rep, warm: rep > 0, ...p, mbPerSec: mbps })
          console.log(`readBatches pass ${rep}${rep === 0 ? ' (warm-up)' : ''}: ${fmtMb(mbps)} MB/s, ${fmtInt(p.batches)} batches in ${fmtMs(p.ms)} ms`)
        }
        for (let rep = 0; rep < args.runs; rep++) {
          const d = await decodePass(log)
          decode.push((d.records * 1000) / d.ms)
          decodeMb.push(d.bytes / d.ms / 1000)
          record({ kind: 'read-decode', rep, ...d, recPerSec: (d.records * 1000) / d.ms })
          console.log(`read() decode run ${rep + 1}: ${fmtInt((d.records * 1000) / d.ms)} rec/s (${fmtMb(d.bytes / d.ms / 1000)} MB/s), ${fmtInt(d.records)} records`)
        }
      } finally {
        await log.close()
      }
      record({ kind: 'open-first', ...run })

      for (let rep = 0; rep < args.runs; rep++) {
        const { log: l, run: r } = await timedOpen(dir)
        const clean = l.recovery.clean
        await l.close()
        if (!clean) throw new Error('open after a clean close was not clean')
        openClean.push(r)
        record({ kind: 'open-clean', rep, ...r })
        console.log(`open after clean close run ${rep + 1}: ${fmtMs(r.wallMs)} ms (recovery.durationMs ${fmtMs(r.recoveryMs)})`)
      }
      for (let rep = 0; rep < args.runs; rep++) {
        const damaged = await simulateCrash(dir)
        const { log: l, run: r } = await timedOpen(dir)
        const rec = l.recovery
        await l.close()
        const t = rec.truncated[0]
        if (rec.clean || rec.truncated.length !== 1 || t?.bytes !== crashGarbageBytes || !t.file.endsWith(damaged)) {
          throw new Error(`crash recovery did not truncate the ${crashGarbageBytes} garbage bytes: ${JSON.stringify(rec)}`)
        }
        openCrash.push(r)
        record({ kind: 'open-crash', rep, ...r, truncated: rec.truncated, rebuiltIndexes: rec.rebuiltIndexes.length })
        console.log(`open after crash run ${rep + 1}: ${fmtMs(r.wallMs)} ms (recovery.durationMs ${fmtMs(r.recoveryMs)}), truncated ${t.bytes} B at ${t.position} of ${damaged}`)
      }
      await rm(dir, { recursive: true, force: true })
    }

    // ---- report ----
    const lines: string[] = []
    const stallCol = (xs: readonly Stall[]): string => {
      const c = median(xs.map((x) => x.cpuStallPct))
      return Number.isFinite(c) ? `${c.toFixed(0)} / ${median(xs.map((x) => x.ioStallPct)).toFixed(0)}` : 'n/a'
    }
    lines.push('', `| Measurement | Median (min–max) | MB/s | p50 latency ms | p99 latency ms | records per fdatasync | CPU / IO stall % |`, '|---|---|---|---|---|---|---|')
    if (dd.length > 0) {
      lines.push(`| dd 1 GiB bs=1M conv=fdatasync | ${fmtStat(stat(dd), fmtMb)} MB/s | ${fmtMb(median(dd))} | | | | |`)
    }
    if (rawSync.length > 0) {
      lines.push(`| raw ${recordBytes} B write + fdatasync, sync API | ${fmtStat(stat(rawSync.map((r) => r.perSec)), fmtInt)} syncs/s | | ${fmtMs(median(rawSync.map((r) => r.p50Ms)))} | ${fmtMs(median(rawSync.map((r) => r.p99Ms)))} | 1 | ${stallCol(rawSync)} |`)
      lines.push(`| raw ${recordBytes} B write + fdatasync, promise API | ${fmtStat(stat(rawAsync.map((r) => r.perSec)), fmtInt)} syncs/s | | ${fmtMs(median(rawAsync.map((r) => r.p50Ms)))} | ${fmtMs(median(rawAsync.map((r) => r.p99Ms)))} | 1 | ${stallCol(rawAsync)} |`)
    }
    const cellSummary = new Map<string, { rec: Stat; mb: Stat; p50: number; p99: number; perSync: number }>()
    for (const spec of specs) {
      const rs = runs.get(spec.id)!
      const syncs = rs.reduce((a, r) => a + r.syncs, 0)
      const recs = rs.reduce((a, r) => a + r.records, 0)
      const s = { rec: stat(rs.map((r) => r.recPerSec)), mb: stat(rs.map((r) => r.mbPerSec)), p50: median(rs.map((r) => r.p50Ms)), p99: median(rs.map((r) => r.p99Ms)), perSync: syncs > 0 ? recs / syncs : Number.NaN }
      cellSummary.set(spec.id, s)
      const label = spec.window === 1 ? `append fsync=${spec.policy}, batch ${spec.batch}, serial (1 in flight)` : `append fsync=${spec.policy}, batch ${spec.batch}, ${spec.window} in flight`
      lines.push(`| ${label} | ${fmtStat(s.rec, fmtInt)} rec/s | ${fmtStat(s.mb, fmtMb)} | ${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ${spec.policy === 'never' ? '–' : fmtInt(s.perSync)} | ${stallCol(rs)} |`)
    }
    if (built !== undefined) {
      lines.push(`| readBatches(from, 1 MiB), ${(built.bytes / 1e9).toFixed(2)} GB, page cache warm | ${fmtStat(stat(read), fmtMb)} MB/s | ${fmtMb(median(read))} | | | | |`)
      lines.push(`| read() with decoding (≤ ${fmtInt(decodeMaxRecords)} records or ${decodeMaxMs / 1000} s) | ${fmtStat(stat(decode), fmtInt)} rec/s | ${fmtMb(median(decodeMb))} | | | | |`)
      lines.push(`| open after clean close (wall) | ${fmtStat(stat(openClean.map((r) => r.wallMs)), fmtMs)} ms | | | | | |`)
      lines.push(`| open after clean close (recovery.durationMs) | ${fmtStat(stat(openClean.map((r) => r.recoveryMs)), fmtMs)} ms | | | | | |`)
      lines.push(`| open after crash, ${crashGarbageBytes} B torn tail (wall) | ${fmtStat(stat(openCrash.map((r) => r.wallMs)), fmtMs)} ms | | | | | |`)
      lines.push(`| open after crash (recovery.durationMs) | ${fmtStat(stat(openCrash.map((r) => r.recoveryMs)), fmtMs)} ms | | | | | |`)
    }

    const targets: Target[] = []
    const batch1000 = cellSummary.get('batch/1000')
    if (batch1000 !== undefined) {
      const ddRecs = dd.length > 0 ? (0.7 * median(dd) * 1e6) / recordBytes : Number.POSITIVE_INFINITY
      const target = Math.min(1_000_000, ddRecs)
      targets.push({
        name: 'fsync=batch, 1,000-record appends',
        actual: batch1000.rec.median,
        target,
        unit: 'rec/s',
        atLeast: true,
        note: `target = min(1,000,000, 70% of dd = ${Number.isFinite(ddRecs) ? fmtInt(ddRecs) : 'n/a'} rec/s)`,
      })
    }
    const serial = cellSummary.get('always/1/serial')
    if (serial !== undefined && rawSync.length > 0) {
      const rawS = median(rawSync.map((r) => r.perSec))
      const rawA = median(rawAsync.map((r) => r.perSec))
      const serialRuns = runs.get('always/1/serial')!
      const paired = serialRuns.map((r, k) => r.recPerSec / (rawSync[k]?.perSec ?? Number.NaN))
      targets.push({
        name: 'fsync=always, 1-record appends, serial',
        actual: serial.rec.median,
        target: 0.8 * rawS,
        unit: 'rec/s',
        atLeast: true,
        note: `target = 80% of raw sync-API fdatasync ${fmtInt(rawS)}/s; vs promise-API ${fmtInt(rawA)}/s it is ${((serial.rec.median / rawA) * 100).toFixed(0)}%; per round (measured back to back) vs sync API: ${paired.map((x) => `${(x * 100).toFixed(0)}%`).join(', ')}`,
      })
    }
    if (built !== undefined) {
      targets.push({ name: 'sequential readBatches', actual: median(read), target: 500, unit: 'MB/s', atLeast: true, note: '' })
      targets.push({ name: 'open after clean close', actual: median(openClean.map((r) => r.wallMs)), target: 1000, unit: 'ms', atLeast: false, note: '' })
      targets.push({ name: 'open after crash', actual: median(openCrash.map((r) => r.wallMs)), target: 3000, unit: 'ms', atLeast: false, note: '' })
    }
    lines.push('', '| Target | Measured (median) | Target | Result | How far |', '|---|---|---|---|---|')
    const verdicts: { name: string; pass: boolean; actual: number; target: number }[] = []
    for (const t of targets) {
      const { pass, text } = targetLine(t)
      lines.push(text)
      verdicts.push({ name: t.name, pass, actual: t.actual, target: t.target })
    }
    lines.push('', `Load at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min)`)
    console.log(lines.join('\n'))
    record({
      loadAvgEnd: loadavg(),
      kind: 'summary',
      dd: dd.length > 0 ? stat(dd) : undefined,
      rawSync: rawSync.length > 0 ? stat(rawSync.map((r) => r.perSec)) : undefined,
      rawAsync: rawAsync.length > 0 ? stat(rawAsync.map((r) => r.perSec)) : undefined,
      cells: Object.fromEntries(cellSummary),
      read: read.length > 0 ? stat(read) : undefined,
      readFirstPass: readFirst[0],
      decode: decode.length > 0 ? stat(decode) : undefined,
      openClean: openClean.length > 0 ? stat(openClean.map((r) => r.wallMs)) : undefined,
      openCrash: openCrash.length > 0 ? stat(openCrash.map((r) => r.wallMs)) : undefined,
      targets: verdicts,
    })
    console.log(`\nraw results appended to ${resultsFile}`)
  } finally {
    cleanup()
    console.log(`removed ${root}`)
  }
}

await main()
