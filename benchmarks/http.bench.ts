// HTTP publish benchmark (issue 4): `npm run bench:http`, or after a build
// `node dist/benchmarks/http.bench.js [options]`.
//
// Starts Sluice as a child process (`node dist/src/cli.js serve --config <generated yaml>`, from
// benchmarks/configs/http.yaml, a fresh temp dataDir, HTTP on 127.0.0.1:17400) and a bare
// fastify server (benchmarks/bare-fastify.ts, 127.0.0.1:17401) as the ceiling, and drives both
// from load generators that run in their own processes (benchmarks/http-load.ts):
//
//   W1  NDJSON batches of 1,000 events (250 B each) a request, 4 and 8 connections: confirmed
//       events/s (a 200 whose body accepts all 1,000), Sluice and bare fastify.
//   W2  one event a request (application/json), 50 connections: requests/s, Sluice and bare.
//   W3  one event a request at a steady 1,000 requests/s (open loop), ~10 s: latency to confirm.
//   W4  peak RSS (VmHWM) of the Sluice process over the whole run.
//
// Every event routes to 2 of the 3 bindings of a topic exchange; fsync: batch, 5ms. Each figure is
// run --runs times (default 3) round-robin over the cells; the median and min–max are reported.
// Server CPU comes from /proc/<pid>/stat, RSS from /proc/<pid>/status (sampled every 100 ms, and
// VmHWM at the end). Raw results are appended to benchmarks/results/http.jsonl.
//
// If a throughput or latency target is missed, the workload is run once more against a fresh
// server started with `node --cpu-prof`, and the profile's top functions over the measured window
// (not start-up or warm-up) are printed.
//
// Options:
//   --runs=N            repetitions per cell (default 3)
//   --duration=S        measured seconds per W1/W2 run (default 10); W3 always runs 10 s
//   --warmup=S          unrecorded seconds before each run (default 2)
//   --only=w1,w2,w3     run only these workloads
//   --conns=4,8         W1 connection counts
//   --profile=w1,...    skip the measurements; only profile these workloads
//   --no-profile        never profile
//   --keep-profiles=DIR copy the .cpuprofile files there
//   --record            append to benchmarks/results/http.jsonl (else to a temp dir)
//   --interval=MS       experiment: override durability.interval (the issue's setup is 5ms)
//
// The machine this was written for has 2 cores: the load generator and the server share them.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { mkdtempSync } from 'node:fs'
import { parseConfig } from '../src/config/index.js'
import { formatProfile, summarizeProfile, type ProfileSummary } from './cpuprofile-summary.js'
import type { ClosedResult, ClosedSpec, LoadResult, LoadSpec, RateResult, RateSpec } from './http-load.js'
import { eventBytes, eventLine } from './http-payload.js'
import { findRepoRoot, resultsDir } from './lib/results.js'
import { clockTicks, procCpuS, procMemKb } from './lib/proc.js'

// ---- parameters ----------------------------------------------------------------------------------

const sluicePort = 17400
const barePort = 17401
const publishPath = '/v1/exchanges/logs/publish'
const batchEvents = 1000
const w2Connections = 50
const w3Rate = 1000
const w3DurationS = 10
const w3MaxSockets = 64
const sampleRssMs = 100
/** before each run: wait for the rest of the machine to use less than this share of one core */
const quietPct = 30

const targets = {
  w1EventsPerSec: 400_000,
  w2RequestsPerSec: 25_000,
  w2RatioOfBare: 0.7,
  w3P99Ms: 10,
  rssMb: 300,
}

type Workload = 'w1' | 'w2' | 'w3'

interface Args {
  runs: number
  durationS: number
  warmupS: number
  only: Set<Workload>
  conns: number[]
  profileOnly: Set<Workload> | undefined
  profile: boolean
  keepProfiles: string | undefined
  record: boolean
  intervalMs: number | undefined
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { runs: 3, durationS: 10, warmupS: 2, only: new Set(['w1', 'w2', 'w3']), conns: [4, 8], profileOnly: undefined, profile: true, keepProfiles: undefined, record: false, intervalMs: undefined }
  const workloads = (v: string): Set<Workload> => {
    const s = new Set(v.split(',').map((x) => x.trim().toLowerCase()))
    for (const w of s) if (w !== 'w1' && w !== 'w2' && w !== 'w3') throw new Error(`unknown workload ${w}; use w1, w2, w3`)
    return s as Set<Workload>
  }
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined]
    if (k === '--runs' && v !== undefined) args.runs = Math.max(1, Number.parseInt(v, 10))
    else if (k === '--duration' && v !== undefined) args.durationS = Math.min(60, Math.max(1, Number(v)))
    else if (k === '--warmup' && v !== undefined) args.warmupS = Math.min(30, Math.max(0, Number(v)))
    else if (k === '--only' && v !== undefined) args.only = workloads(v)
    else if (k === '--conns' && v !== undefined) args.conns = v.split(',').map((x) => Math.max(1, Number.parseInt(x, 10)))
    else if (k === '--profile' && v !== undefined) args.profileOnly = workloads(v)
    else if (k === '--no-profile') args.profile = false
    else if (k === '--keep-profiles' && v !== undefined) args.keepProfiles = v
    else if (k === '--record') args.record = true
    else if (k === '--no-record') args.record = false
    else if (k === '--interval' && v !== undefined) args.intervalMs = Math.max(0, Number.parseInt(v, 10))
    else throw new Error(`unknown argument ${a}`)
  }
  return args
}

// ---- small helpers -------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a')
const fmtPct = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(0)}%` : 'n/a')

interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
}

function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
  return { median, min: s[0]!, max: s[s.length - 1]! }
}

const fmtSpread = (s: Spread, f: (n: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`


// ---- /proc ---------------------------------------------------------------------------------------

/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
function machineCpuS(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
  const busy = user + nice + system + irq + softirq + steal
  return { busy: busy / clockTicks, total: (busy + idle + iowait) / clockTicks }
}

function psiCpuUs(): number {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? Number.NaN)
  } catch {
    return Number.NaN
  }
}

// ---- machine -------------------------------------------------------------------------------------

interface Machine {
  cpu: string
  cores: number
  memGiB: number
  node: string
  kernel: string
  loadAvg: number[]
}

function machineInfo(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  } catch {
    // not Linux
  }
  return { cpu, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release(), loadAvg: loadavg() }
}

// ---- child processes -----------------------------------------------------------------------------

const children = new Set<ChildProcess>()
/** servers under test by pid, so a run can tell that its server died */
const serverProcs = new Map<number, Proc>()

/** The server under test exited during a run: a crash, or a signal from someone else's process. */
class ServerDied extends Error {
  constructor(readonly proc: Proc) {
    const { exitCode, signalCode } = proc.child
    const out = proc.output()
    const signal = /"signal":"(\w+)","msg":"stopping"/.exec(out)?.[1]
    super(`the server under test (pid ${proc.pid}) exited during the run (exit ${exitCode}, signal ${signalCode}${signal !== undefined ? `; it logged receiving ${signal}, which this benchmark did not send` : ''}); its last output:\n${out.slice(-4000)}`)
  }
}

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<number | null>
  output(): string
}

function startProc(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
  if (child.pid === undefined) throw new Error(`could not start node ${args.join(' ')}`)
  children.add(child)
  let out = ''
  const keep = (d: Buffer): void => {
    out += d.toString('utf8')
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child)
      resolve(code)
    })
  })
  return { child, pid: child.pid, exited, output: () => out }
}

async function stopProc(p: Proc, timeoutMs = 20_000): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode
  p.child.kill('SIGTERM')
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  const code = await p.exited
  clearTimeout(t)
  return code
}

async function waitReady(p: Proc, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`server exited (${p.child.exitCode}) before it was ready:\n${p.output()}`)
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms:\n${p.output()}`)
}

// ---- servers -------------------------------------------------------------------------------------

interface Servers {
  readonly repo: string
  readonly root: string
  readonly intervalMs: number | undefined
  /** a private copy of the build the children run from (see snapshotBuild) */
  readonly code: string
}

/**
 * Copies dist/ into the temp dir and runs every child from there, beside package.json and a
 * symlink to node_modules: others rebuilding dist/ during the run cannot change the code measured
 * halfway through (or catch a half-written file). Returns the copy's root.
 */
function snapshotBuild(repo: string, root: string): string {
  const code = join(root, 'code')
  mkdirSync(code, { recursive: true })
  cpSync(join(repo, 'dist', 'src'), join(code, 'dist', 'src'), { recursive: true })
  cpSync(join(repo, 'dist', 'benchmarks'), join(code, 'dist', 'benchmarks'), { recursive: true })
  copyFileSync(join(repo, 'package.json'), join(code, 'package.json'))
  symlinkSync(join(repo, 'node_modules'), join(code, 'node_modules'), 'dir')
  return code
}

interface CodeVersion {
  /** git HEAD, and the files under src/ that differ from it (read-only git commands) */
  readonly head: string
  readonly dirtySrc: string[]
  /** sha256 of the copied dist/src/**.js, first 12 hex digits */
  readonly buildHash: string
}

function codeVersion(repo: string, code: string): CodeVersion {
  const git = (args: string[]): string => spawnSync('git', args, { cwd: repo, encoding: 'utf8' }).stdout?.trimEnd() ?? ''
  const head = git(['rev-parse', '--short', 'HEAD']).trim() || 'unknown'
  const dirtySrc = git(['status', '--porcelain', '--', 'src'])
    .split('\n')
    .filter((l) => l !== '')
  const h = createHash('sha256')
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const f = join(dir, e.name)
      if (e.isDirectory()) walk(f)
      else if (e.name.endsWith('.js')) h.update(f.slice(code.length)).update(readFileSync(f))
    }
  }
  walk(join(code, 'dist', 'src'))
  return { head, dirtySrc, buildHash: h.digest('hex').slice(0, 12) }
}

/** Writes the resolved config for `dataDir` and checks it with the server's own parser. */
function writeSluiceConfig(s: Servers, dataDir: string, name: string): string {
  const template = readFileSync(join(s.repo, 'benchmarks', 'configs', 'http.yaml'), 'utf8')
  let text = template.replaceAll('${SLUICE_BENCH_DATA_DIR}', JSON.stringify(dataDir)).replaceAll('"${SLUICE_BENCH_HTTP_PORT:-17400}"', String(sluicePort))
  if (s.intervalMs !== undefined) text = text.replace('interval: 5ms', `interval: ${s.intervalMs}ms`)
  parseConfig(text, { env: {} }) // throws with every problem listed
  const file = join(s.root, `${name}.yaml`)
  writeFileSync(file, text)
  return file
}

async function startSluice(s: Servers, name: string, nodeArgs: readonly string[] = []): Promise<Proc> {
  const dataDir = join(s.root, `${name}-data`)
  const config = writeSluiceConfig(s, dataDir, name)
  const p = startProc([...nodeArgs, join(s.code, 'dist', 'src', 'cli.js'), 'serve', '--config', config])
  serverProcs.set(p.pid, p)
  await waitReady(p, `http://127.0.0.1:${sluicePort}/readyz`)
  return p
}

async function startBare(s: Servers): Promise<Proc> {
  const p = startProc([join(s.code, 'dist', 'benchmarks', 'bare-fastify.js'), `--port=${barePort}`])
  serverProcs.set(p.pid, p)
  await waitReady(p, `http://127.0.0.1:${barePort}/healthz`)
  return p
}

/**
 * Waits (at most maxWaitMs) until the rest of the machine is quiet: busy CPU over 500 ms, while
 * the servers under test are idle, below quietPct of one core. Returns the last reading.
 */
async function waitQuiet(maxWaitMs = 10_000): Promise<{ pct: number; waitedMs: number }> {
  const t0 = performance.now()
  for (;;) {
    const a = machineCpuS()
    await sleep(500)
    const b = machineCpuS()
    const pct = ((b.busy - a.busy) / 0.5) * 100
    const waitedMs = performance.now() - t0
    if (pct < quietPct || waitedMs > maxWaitMs) return { pct, waitedMs }
  }
}

// ---- one load run --------------------------------------------------------------------------------

interface Observed<R extends LoadResult> {
  readonly result: R
  /** CPU of the server under test during the measured window, % of one core */
  readonly serverCpuPct: number
  /** CPU of everything else on the machine (neither server nor loader), % of one core */
  readonly otherCpuPct: number
  /** share of the window in which some task waited for a CPU (PSI), % */
  readonly cpuStallPct: number
  /** the rest of the machine's CPU just before the run (see waitQuiet), % of one core */
  readonly quietPct: number
  /** the measured window on the monotonic clock, µs (as V8 profile timestamps) */
  readonly windowUs: { readonly fromUs: number; readonly toUs: number }
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)

/**
 * Runs one loader process against `serverPid`. The loader prints MEASURE when its measured
 * window starts (after the warm-up) and RESULT {...} at the end; the server's CPU is read at both.
 */
async function runLoad<R extends LoadResult>(s: Servers, spec: LoadSpec, serverPid: number): Promise<Observed<R>> {
  const quiet = await waitQuiet()
  const maxS = spec.warmupS + spec.durationS + 60
  const p = startProc([join(s.code, 'dist', 'benchmarks', 'http-load.js'), JSON.stringify(spec)])
  const killer = setTimeout(() => p.child.kill('SIGKILL'), maxS * 1000)
  let start: { t: number; us: number; server: number; loader: number; machine: { busy: number; total: number }; psi: number } | undefined
  let end: typeof start
  let buf = ''
  p.child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8')
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      const snap = { t: performance.now(), us: monotonicUs(), server: procCpuS(serverPid), loader: procCpuS(p.pid), machine: machineCpuS(), psi: psiCpuUs() }
      if (line === 'MEASURE') start = snap
      else if (line.startsWith('RESULT ')) end = snap
    }
  })
  const code = await p.exited
  clearTimeout(killer)
  const server = serverProcs.get(serverPid)
  if (server !== undefined && (server.child.exitCode !== null || server.child.signalCode !== null)) throw new ServerDied(server)
  const m = /^RESULT (.*)$/m.exec(p.output())
  if (code !== 0 || m === null) throw new Error(`load generator failed (exit ${code}):\n${p.output()}`)
  const result = JSON.parse(m[1]!) as R
  if (start === undefined || end === undefined) throw new Error('load generator did not report its window')
  const wallS = (end.t - start.t) / 1000
  const serverS = end.server - start.server
  const loaderS = end.loader - start.loader
  const machineS = end.machine.busy - start.machine.busy
  return {
    result,
    serverCpuPct: (serverS / wallS) * 100,
    otherCpuPct: Math.max(0, ((machineS - serverS - loaderS) / wallS) * 100),
    cpuStallPct: ((end.psi - start.psi) / 1000 / (wallS * 1000)) * 100,
    quietPct: quiet.pct,
    windowUs: { fromUs: start.us, toUs: end.us },
  }
}

// ---- workloads -----------------------------------------------------------------------------------

type Target = 'sluice' | 'bare'

/** Flags a run that shared the machine with other work (the rest used ≥ quietPct of a core). */
const noisy = (o: Observed<LoadResult>): string => (o.otherCpuPct >= quietPct || o.quietPct >= quietPct ? '  [NOISY: other work on the machine]' : '')

interface ClosedCell {
  readonly id: string
  readonly workload: 'w1' | 'w2'
  readonly target: Target
  readonly events: number
  readonly connections: number
}

function closedSpec(cell: ClosedCell, durationS: number, warmupS: number): ClosedSpec {
  const port = cell.target === 'sluice' ? sluicePort : barePort
  // Bounded in count as well as time: far above what either server can do in durationS.
  const maxRequests = Math.ceil(durationS * (cell.events === 1 ? 200_000 : 5_000))
  return { mode: 'closed', url: `http://127.0.0.1:${port}${publishPath}`, events: cell.events, connections: cell.connections, durationS, warmupS, maxRequests }
}

function rateSpec(durationS: number, warmupS: number): RateSpec {
  return { mode: 'rate', url: `http://127.0.0.1:${sluicePort}${publishPath}`, rate: w3Rate, durationS, warmupS, timeoutMs: 10_000, maxSockets: w3MaxSockets }
}

// ---- main ----------------------------------------------------------------------------------------

interface TargetResult {
  readonly name: string
  readonly measured: string
  readonly target: string
  readonly pass: boolean
  readonly how: string
  readonly workload: Workload | 'w4'
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  const repo = findRepoRoot()
  const root = mkdtempSync(join(tmpdir(), 'sluice-bench-http-'))
  const s: Servers = { repo, root, intervalMs: args.intervalMs, code: snapshotBuild(repo, root) }
  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    for (const c of children) c.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  }
  const onSignal = (sig: string): void => {
    console.error(`\n${sig}: stopping the servers and removing ${root}`)
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanup)

  const resultsFile = join(resultsDir(args.record), 'http.jsonl')
  const runId = new Date().toISOString()
  const record = (obj: object): void => {
    appendFileSync(resultsFile, `${JSON.stringify({ bench: 'http', runId, ...obj })}\n`)
  }

  try {
    const machine = machineInfo()
    console.log(`# Sluice HTTP publish benchmark  ${runId}`)
    console.log(`CPU     ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB RAM`)
    console.log(`Node    ${machine.node}, kernel ${machine.kernel}`)
    console.log(`Load    ${machine.loadAvg.map((l) => l.toFixed(2)).join(' ')} (1/5/15 min) at start${machine.loadAvg[0]! > machine.cores / 2 ? ': the machine is busy, figures will be noisy' : ''}`)
    console.log(`Events  ${eventBytes} B JSON, e.g. ${eventLine(0).slice(0, 90)}…`)
    console.log(`Setup   topic exchange, routing key {service}.{level} = api.info, 3 bindings of which 2 match; fsync batch ${args.intervalMs === undefined ? '5ms' : `${args.intervalMs}ms (EXPERIMENT: the issue's setup is 5ms)`}; data in ${root}`)
    console.log(`Runs    ${args.runs} per cell, ${args.durationS} s measured after ${args.warmupS} s warm-up (W3: ${w3DurationS} s); load generators in their own processes`)
    if (machine.cores <= 2) console.log(`Note    only ${machine.cores} cores: the load generator and the server compete for them`)
    const version = codeVersion(repo, s.code)
    console.log(`Code    git ${version.head}${version.dirtySrc.length > 0 ? ` with uncommitted changes in ${version.dirtySrc.map((l) => l.slice(3)).join(', ')}` : ', src/ clean'}; build ${version.buildHash} (copied to ${s.code})`)
    console.log('')
    record({ kind: 'machine', ...machine, code: version, intervalMs: args.intervalMs ?? 5, eventBytes, batchEvents, runs: args.runs, durationS: args.durationS, warmupS: args.warmupS, conns: args.conns })

    const missed = new Set<Workload>()
    const targetRows: TargetResult[] = []
    let sluiceBest: ClosedCell | undefined

    if (args.profileOnly === undefined) {
      let sluice = await startSluice(s, 'sluice')
      let bare = await startBare(s)
      // A server killed from outside (others on this machine have stopped every `cli.js serve`
      // process by name) is restarted on the same data, and the run repeated, a few times at most.
      const restarts: string[] = []
      const maxRestarts = 3
      const withServer = async <R extends LoadResult>(target: Target, run: (pid: number) => Promise<Observed<R>>): Promise<Observed<R>> => {
        for (;;) {
          try {
            return await run(target === 'sluice' ? sluice.pid : bare.pid)
          } catch (err) {
            if (!(err instanceof ServerDied) || restarts.length >= maxRestarts) throw err
            restarts.push(err.message.split('\n')[0]!)
            console.log(`        [${target} server died during the run, restarting it and repeating the run: ${err.message.split('\n')[0]}]`)
            if (target === 'sluice') sluice = await startSluice(s, 'sluice')
            else bare = await startBare(s)
          }
        }
      }
      const rssPeak = new Map<string, number>()
      let phase = 'idle'
      const sampler = setInterval(() => {
        const { rss } = procMemKb(sluice.pid)
        if (rss > (rssPeak.get(phase) ?? 0)) rssPeak.set(phase, rss)
      }, sampleRssMs)
      const startupHwmKb = procMemKb(sluice.pid).hwm
      let confirmedEvents = 0

      const closedRuns = new Map<string, Observed<ClosedResult>[]>()
      const runClosedCells = async (cells: readonly ClosedCell[]): Promise<void> => {
        for (const c of cells) closedRuns.set(c.id, [])
        for (let rep = 0; rep < args.runs; rep++) {
          for (const cell of cells) {
            phase = cell.target === 'sluice' ? cell.workload : phase
            const o = await withServer(cell.target, (pid) => runLoad<ClosedResult>(s, closedSpec(cell, args.durationS, args.warmupS), pid))
            if (cell.target === 'sluice') confirmedEvents += o.result.confirmed * cell.events + o.result.warmupConfirmedEvents
            closedRuns.get(cell.id)!.push(o)
            const r = o.result
            record({ kind: 'run', workload: cell.workload, cell: cell.id, target: cell.target, connections: cell.connections, eventsPerRequest: cell.events, rep, ...r, serverCpuPct: o.serverCpuPct, otherCpuPct: o.otherCpuPct, cpuStallPct: o.cpuStallPct, quietPct: o.quietPct })
            const other = Object.entries(r.statusCodes).filter(([k]) => k !== '200')
            console.log(
              `${cell.id.padEnd(14)} run ${rep + 1}: ${fmtInt(r.confirmedEventsPerSec).padStart(9)} events/s ${fmtInt(r.confirmedRequestsPerSec).padStart(7)} req/s (${fmtInt((cell.events === 1 ? r.confirmedRequestsPerSec : r.confirmedEventsPerSec) / (o.serverCpuPct / 100))} per server CPU-s)  latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms` +
                `  server CPU ${fmtPct(o.serverCpuPct)} loader ${fmtPct(r.loaderCpuPct)} other ${fmtPct(o.otherCpuPct)} stall ${fmtPct(o.cpuStallPct)}${noisy(o)}` +
                (r.errors + r.timeouts > 0 || other.length > 0 || r.confirmed !== r.status200 ? `  [errors ${r.errors}, timeouts ${r.timeouts}, status ${JSON.stringify(r.statusCodes)}, confirmed ${r.confirmed}/${r.status200}]` : ''),
            )
          }
        }
      }
      const med = (id: string, f: (o: Observed<ClosedResult>) => number): Spread => spread((closedRuns.get(id) ?? []).map(f))
      const eps = (o: Observed<ClosedResult>): number => o.result.confirmedEventsPerSec
      const rps = (o: Observed<ClosedResult>): number => o.result.confirmedRequestsPerSec

      // W1
      const w1Cells: ClosedCell[] = []
      if (args.only.has('w1')) {
        for (const c of args.conns) w1Cells.push({ id: `w1/sluice/c${c}`, workload: 'w1', target: 'sluice', events: batchEvents, connections: c })
        for (const c of args.conns) w1Cells.push({ id: `w1/bare/c${c}`, workload: 'w1', target: 'bare', events: batchEvents, connections: c })
        console.log(`## W1: NDJSON, ${batchEvents} events a request, connections ${args.conns.join(' and ')}`)
        await runClosedCells(w1Cells)
        console.log('')
      }
      // W2
      const w2Cells: ClosedCell[] = []
      if (args.only.has('w2')) {
        w2Cells.push({ id: 'w2/sluice/c50', workload: 'w2', target: 'sluice', events: 1, connections: w2Connections })
        w2Cells.push({ id: 'w2/bare/c50', workload: 'w2', target: 'bare', events: 1, connections: w2Connections })
        console.log(`## W2: one event a request (application/json), ${w2Connections} connections`)
        await runClosedCells(w2Cells)
        console.log('')
      }
      // W3
      const w3Runs: Observed<RateResult>[] = []
      if (args.only.has('w3')) {
        console.log(`## W3: one event a request at ${fmtInt(w3Rate)} requests/s, open loop, ${w3DurationS} s`)
        phase = 'w3'
        for (let rep = 0; rep < args.runs; rep++) {
          const o = await withServer('sluice', (pid) => runLoad<RateResult>(s, rateSpec(w3DurationS, args.warmupS), pid))
          const r = o.result
          confirmedEvents += r.confirmed + r.warmupConfirmed
          w3Runs.push(o)
          record({ kind: 'run', workload: 'w3', cell: 'w3/sluice/rate1000', target: 'sluice', rep, ...r, serverCpuPct: o.serverCpuPct, otherCpuPct: o.otherCpuPct, cpuStallPct: o.cpuStallPct, quietPct: o.quietPct })
          console.log(
            `w3/rate1000    run ${rep + 1}: ${fmtInt(r.achievedRate)} req/s confirmed (${r.confirmed}/${r.planned}, failed ${r.failed})  from send: p50 ${fmtMs(r.sentMs.p50)} p99 ${fmtMs(r.sentMs.p99)} max ${fmtMs(r.sentMs.max)} ms` +
              `  from due: p50 ${fmtMs(r.dueMs.p50)} p99 ${fmtMs(r.dueMs.p99)} max ${fmtMs(r.dueMs.max)} ms  server CPU ${fmtPct(o.serverCpuPct)} loader ${fmtPct(r.loaderCpuPct)} other ${fmtPct(o.otherCpuPct)}${noisy(o)}`,
          )
        }
        console.log('')
      }

      // Stored-count check: every confirmed event is in both matching streams, none in errors.
      const streamsRes = await fetch(`http://127.0.0.1:${sluicePort}/v1/streams`)
      const streams = ((await streamsRes.json()) as { streams: { name: string; nextOffset: number }[] }).streams
      const stored = Object.fromEntries(streams.map((x) => [x.name, x.nextOffset]))
      const storedOk = stored['all-logs'] === stored['api-logs'] && stored['errors'] === 0 && (stored['all-logs'] ?? 0) >= confirmedEvents
      console.log(`Stored  all-logs ${fmtInt(stored['all-logs'] ?? 0)}, api-logs ${fmtInt(stored['api-logs'] ?? 0)}, errors ${fmtInt(stored['errors'] ?? 0)} events; confirmed ${fmtInt(confirmedEvents)} (incl. warm-ups): ${storedOk ? 'ok' : 'MISMATCH'}`)

      clearInterval(sampler)
      const mem = procMemKb(sluice.pid)
      // A restarted server's predecessor is gone with its VmHWM: its sampled RSS still counts.
      const hwmMb = Math.max(mem.hwm, ...rssPeak.values()) / 1024
      if (restarts.length > 0) console.log(`Restarts ${restarts.length}: the Sluice or bare server was killed from outside during a run, restarted on the same data, and the run repeated`)
      console.log(`RSS     Sluice peak (VmHWM) ${hwmMb.toFixed(0)} MB; after start ${(startupHwmKb / 1024).toFixed(0)} MB; sampled peak per phase: ${[...rssPeak].map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} MB`).join(', ')}`)
      const sluiceCpuTotal = procCpuS(sluice.pid)
      const stopT0 = performance.now()
      const stopCode = await stopProc(sluice)
      console.log(`Stop    Sluice stopped with exit ${stopCode} in ${fmtInt(performance.now() - stopT0)} ms (CPU used over the run ${sluiceCpuTotal.toFixed(1)} s)`)
      await stopProc(bare)
      console.log('')

      // ---- summary tables ----
      // Per server CPU-second: how much work one core-second of the server buys. Less sensitive to
      // other work on the machine than the rate itself, which drops when the server gets less CPU.
      const rows: string[] = ['| Workload | Server | Connections | Median (min–max) | Unit | Per server CPU-second | Server CPU | Loader CPU | Other CPU |', '|---|---|---|---|---|---|---|---|---|']
      const perCpu = (id: string, f: (o: Observed<ClosedResult>) => number): string => fmtInt(med(id, (o) => f(o) / (o.serverCpuPct / 100)).median)
      const cpuCol = (id: string): [string, string, string] => [fmtPct(med(id, (o) => o.serverCpuPct).median), fmtPct(med(id, (o) => o.result.loaderCpuPct).median), fmtPct(med(id, (o) => o.otherCpuPct).median)]
      for (const cell of w1Cells) {
        const [sc, lc, oc] = cpuCol(cell.id)
        rows.push(`| W1 NDJSON ×${batchEvents} | ${cell.target === 'sluice' ? 'Sluice' : 'bare fastify'} | ${cell.connections} | ${fmtSpread(med(cell.id, eps), fmtInt)} | confirmed events/s | ${perCpu(cell.id, eps)} | ${sc} | ${lc} | ${oc} |`)
      }
      for (const cell of w2Cells) {
        const [sc, lc, oc] = cpuCol(cell.id)
        rows.push(`| W2 1 event/request | ${cell.target === 'sluice' ? 'Sluice' : 'bare fastify'} | ${cell.connections} | ${fmtSpread(med(cell.id, rps), fmtInt)} | requests/s | ${perCpu(cell.id, rps)} | ${sc} | ${lc} | ${oc} |`)
      }
      if (w3Runs.length > 0) {
        const sc = fmtPct(spread(w3Runs.map((o) => o.serverCpuPct)).median)
        const lc = fmtPct(spread(w3Runs.map((o) => o.result.loaderCpuPct)).median)
        const oc = fmtPct(spread(w3Runs.map((o) => o.otherCpuPct)).median)
        const f = (g: (r: RateResult) => number): string => fmtSpread(spread(w3Runs.map((o) => g(o.result))), fmtMs)
        rows.push(`| W3 ${fmtInt(w3Rate)} req/s, latency from send | Sluice | ≤${w3MaxSockets} | p50 ${f((r) => r.sentMs.p50)}; p99 ${f((r) => r.sentMs.p99)}; max ${f((r) => r.sentMs.max)} | ms | | ${sc} | ${lc} | ${oc} |`)
        rows.push(`| W3 ${fmtInt(w3Rate)} req/s, latency from due time | Sluice | ≤${w3MaxSockets} | p50 ${f((r) => r.dueMs.p50)}; p99 ${f((r) => r.dueMs.p99)}; max ${f((r) => r.dueMs.max)} | ms | | | | |`)
        rows.push(`| W3 achieved rate | Sluice | | ${fmtSpread(spread(w3Runs.map((o) => o.result.achievedRate)), fmtInt)} | confirmed requests/s | | | | |`)
      }
      rows.push(`| W4 peak RSS (VmHWM), whole run | Sluice | | ${hwmMb.toFixed(0)} | MB | | | | |`)
      console.log(rows.join('\n'))
      console.log('')

      // ---- targets ----
      if (w1Cells.length > 0) {
        const sl = w1Cells.filter((c) => c.target === 'sluice')
        const best = sl.reduce((a, b) => (med(b.id, eps).median > med(a.id, eps).median ? b : a))
        sluiceBest = best
        const bareBest = w1Cells.filter((c) => c.target === 'bare').reduce((a, b) => (med(b.id, eps).median > med(a.id, eps).median ? b : a))
        const v = med(best.id, eps).median
        const ceiling = med(bareBest.id, eps).median
        targetRows.push({
          workload: 'w1',
          name: `W1 NDJSON ×${batchEvents}: confirmed events/s (best: ${best.connections} connections)`,
          measured: `${fmtInt(v)} events/s`,
          target: `≥ ${fmtInt(targets.w1EventsPerSec)}`,
          pass: v >= targets.w1EventsPerSec,
          how: `${((v / targets.w1EventsPerSec) * 100).toFixed(0)}% of target; ceiling (bare fastify, ${bareBest.connections} connections) ${fmtInt(ceiling)} events/s, Sluice = ${((v / ceiling) * 100).toFixed(0)}% of it`,
        })
      }
      if (w2Cells.length > 0) {
        const v = med('w2/sluice/c50', rps).median
        const b = med('w2/bare/c50', rps).median
        const sl = closedRuns.get('w2/sluice/c50')!
        const br = closedRuns.get('w2/bare/c50')!
        const paired = spread(sl.map((o, i) => rps(o) / rps(br[i]!)))
        const ratio = v / b
        targetRows.push({
          workload: 'w2',
          name: 'W2 one event a request: share of bare fastify',
          measured: `${(ratio * 100).toFixed(0)}% (${fmtInt(v)} / ${fmtInt(b)} req/s; per round ${(paired.min * 100).toFixed(0)}–${(paired.max * 100).toFixed(0)}%)`,
          target: `≥ ${(targets.w2RatioOfBare * 100).toFixed(0)}%`,
          pass: ratio >= targets.w2RatioOfBare,
          how: `${((ratio / targets.w2RatioOfBare) * 100).toFixed(0)}% of target`,
        })
        targetRows.push({
          workload: 'w2',
          name: 'W2 one event a request: requests/s',
          measured: `${fmtInt(v)} req/s`,
          target: `≥ ${fmtInt(targets.w2RequestsPerSec)}`,
          pass: v >= targets.w2RequestsPerSec,
          how: `${((v / targets.w2RequestsPerSec) * 100).toFixed(0)}% of target`,
        })
      }
      if (w3Runs.length > 0) {
        const p99 = spread(w3Runs.map((o) => o.result.sentMs.p99)).median
        const p99due = spread(w3Runs.map((o) => o.result.dueMs.p99)).median
        const failed = w3Runs.reduce((a, o) => a + o.result.failed, 0)
        targetRows.push({
          workload: 'w3',
          name: `W3 ${fmtInt(w3Rate)} req/s: p99 latency to confirm`,
          measured: `${fmtMs(p99)} ms (from due time ${fmtMs(p99due)} ms)`,
          target: `≤ ${targets.w3P99Ms} ms`,
          pass: p99 <= targets.w3P99Ms && failed === 0,
          how: `${((p99 / targets.w3P99Ms) * 100).toFixed(0)}% of the limit${failed > 0 ? `; ${failed} requests failed` : ''}`,
        })
      }
      targetRows.push({
        workload: 'w4',
        name: 'W4 peak RSS of the Sluice process, whole run',
        measured: `${hwmMb.toFixed(0)} MB`,
        target: `≤ ${targets.rssMb} MB`,
        pass: hwmMb <= targets.rssMb,
        how: `${((hwmMb / targets.rssMb) * 100).toFixed(0)}% of the limit`,
      })
      console.log('| Target | Measured (median) | Target | Result | How far |')
      console.log('|---|---|---|---|---|')
      for (const t of targetRows) {
        console.log(`| ${t.name} | ${t.measured} | ${t.target} | ${t.pass ? 'PASS' : 'MISS'} | ${t.how} |`)
        if (!t.pass && t.workload !== 'w4') missed.add(t.workload)
      }
      console.log(`\nLoad at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min)`)
      const summary = {
        w1: Object.fromEntries(w1Cells.map((c) => [c.id, med(c.id, eps)])),
        w2: Object.fromEntries(w2Cells.map((c) => [c.id, med(c.id, rps)])),
        w3: w3Runs.length === 0 ? undefined : { sentP50: spread(w3Runs.map((o) => o.result.sentMs.p50)), sentP99: spread(w3Runs.map((o) => o.result.sentMs.p99)), sentMax: spread(w3Runs.map((o) => o.result.sentMs.max)), dueP99: spread(w3Runs.map((o) => o.result.dueMs.p99)) },
        rss: { hwmMb, phases: Object.fromEntries([...rssPeak].map(([k, v]) => [k, v / 1024])) },
        restarts,
        stored,
        confirmedEvents,
        storedOk,
        targets: targetRows,
      }
      record({ kind: 'summary', ...summary })
    } else {
      for (const w of args.profileOnly) missed.add(w)
    }

    // ---- profiles of the missed workloads ----
    if (args.profile && missed.size > 0) {
      console.log(`\n## CPU profiles (node --cpu-prof) of the Sluice server under ${[...missed].join(', ')}`)
      for (const w of (['w1', 'w2', 'w3'] as const).filter((x) => missed.has(x))) {
        const profDir = join(root, `prof-${w}`)
        const sluice = await startSluice(s, `prof-${w}`, ['--cpu-prof', `--cpu-prof-dir=${profDir}`])
        let what: string
        let windowUs: { fromUs: number; toUs: number }
        if (w === 'w1') {
          const c = sluiceBest?.connections ?? args.conns[args.conns.length - 1]!
          const o = await runLoad<ClosedResult>(s, closedSpec({ id: `w1/sluice/c${c}`, workload: 'w1', target: 'sluice', events: batchEvents, connections: c }, args.durationS, args.warmupS), sluice.pid)
          what = `W1 NDJSON ×${batchEvents}, ${c} connections: ${fmtInt(o.result.confirmedEventsPerSec)} events/s under the profiler, server CPU ${fmtPct(o.serverCpuPct)}`
          windowUs = o.windowUs
        } else if (w === 'w2') {
          const o = await runLoad<ClosedResult>(s, closedSpec({ id: 'w2/sluice/c50', workload: 'w2', target: 'sluice', events: 1, connections: w2Connections }, args.durationS, args.warmupS), sluice.pid)
          what = `W2 one event a request, ${w2Connections} connections: ${fmtInt(o.result.confirmedRequestsPerSec)} req/s under the profiler, server CPU ${fmtPct(o.serverCpuPct)}`
          windowUs = o.windowUs
        } else {
          const o = await runLoad<RateResult>(s, rateSpec(w3DurationS, args.warmupS), sluice.pid)
          what = `W3 ${fmtInt(w3Rate)} req/s: p99 ${fmtMs(o.result.sentMs.p99)} ms under the profiler, server CPU ${fmtPct(o.serverCpuPct)}`
          windowUs = o.windowUs
        }
        const code = await stopProc(sluice)
        const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : []
        if (files.length === 0) {
          console.log(`${w}: no profile written (server exit ${code})`)
          continue
        }
        const file = join(profDir, files[0]!)
        if (args.keepProfiles !== undefined) {
          mkdirSync(args.keepProfiles, { recursive: true })
          copyFileSync(file, join(args.keepProfiles, `sluice-${w}-${runId.replaceAll(':', '')}.cpuprofile`))
        }
        // Only the measured window: start-up and the warm-up are left out.
        const summary: ProfileSummary = summarizeProfile(file, 15, s.code, windowUs)
        console.log(`\n### ${what}`)
        console.log(formatProfile({ ...summary, file: `${w} (${files[0]})` }))
        record({ kind: 'profile', workload: w, what, ...summary, file: files[0] })
      }
    }
    console.log(`\nraw results appended to ${resultsFile}`)
    return 0
  } finally {
    for (const c of [...children]) c.kill('SIGTERM')
    await sleep(children.size > 0 ? 500 : 0)
    cleanup()
    console.log(`removed ${root}`)
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
