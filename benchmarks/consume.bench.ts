// Consume benchmark (issue 5): `npm run bench:consume`, or after a build
// `node dist/benchmarks/consume.bench.js [options]`.
//
// Starts Sluice as a child process (`node dist/src/cli.js serve --config <generated yaml>`, from
// benchmarks/configs/consume.yaml, a fresh temp dataDir, HTTP on a free 127.0.0.1 port) and drives
// it with consumers (and, for W3, a publisher) that each run in their own process
// (benchmarks/consume-client.ts):
//
//   W1  1,000,000 events (250 B) prefilled; one group (prefetch 2000), 4 consumer processes each
//       fetching max 1,000 and acking every batch with one ack request: acked events/s, from the
//       first fetch to the last ack's answer.
//   W2  the same stream, 4 groups with one consumer process each: total acked deliveries/s.
//   W3  end to end: 50 events every 10 ms (5,000 events/s) as one NDJSON request each, every
//       event carrying its send time; one consumer long-polling (waitMs 1000, prefetch 2000)
//       computes receive time − send time. 2 s warm-up then 10 s measured. Cells: `batch` (the
//       server's durability, fsync batch 5ms: the figure of record), `always` and `never`
//       (stream-level fsync overrides, to tell the durability wait from dispatch and HTTP).
//   W4  memory: 10,000,000 events prefilled (fewer if the disk is short), server started, one
//       consumer fetches 1,000 and never acks; VmRSS sampled every 100 ms for 5 s, and VmHWM.
//       The same with a 1,000-event backlog for comparison.
//
// Prefill: written with the log API (src/log openLog + append, batches of 1,000, fsync never,
// then a clean close) into <dataDir>/streams/backlog BEFORE the server starts. The records are
// what an HTTP NDJSON publish of the same lines to the `logs` exchange stores: routing key
// api.info, JSON body of 250 B, exchange `logs`, no id, no headers.
//
// Every group is declared fresh for its run over HTTP (PUT /v1/groups/{g}), so each run starts
// from the full backlog. Each figure is run --runs times (default 3), W1 and W2 alternating; the
// median and min–max are reported. Server CPU comes from /proc/<pid>/stat, RSS from
// /proc/<pid>/status. Raw results are appended to benchmarks/results/consume.jsonl.
//
// If W1, W2 or W3 misses its target, that workload is run once more against a server started
// with `node --cpu-prof`, and the profile's top functions are printed.
//
// Options:
//   --runs=N             repetitions per figure (default 3)
//   --only=w1,w2,w3,w4   run only these workloads
//   --events=N           W1/W2 backlog (default 1,000,000)
//   --w4-events=N        W4 large backlog (default 10,000,000; reduced if disk is short)
//   --w3-cells=batch,always,never
//   --w3-duration=S      measured seconds per W3 run (default 10)
//   --max-run-s=S        time limit of one W1/W2 run (default 60); a run cut short says so
//   --ack-timeout=DUR    ackTimeout of the declared groups, e.g. 1s (default: the server's, 30s);
//                        a diagnostic for memory that scales with ackTimeout × delivery rate
//   --profile=w1,...     skip the measurements; only profile these workloads
//   --no-profile         never profile
//   --keep-profiles=DIR  copy the .cpuprofile files there
//   --record             append to benchmarks/results/consume.jsonl (else to a temp dir)
//
// The machine this was written for has 2 cores: the server and every client process share them.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseConfig } from '../src/config/index.js'
import { openLog, type AppendRecord } from '../src/log/index.js'
import type { ClientSpec, ConsumeResult, ConsumeSpec, HoldResult, HoldSpec, PublishResult, PublishSpec } from './consume-client.js'
import { formatProfile, summarizeProfile } from './cpuprofile-summary.js'
import { findRepoRoot, resultsDir } from './lib/results.js'
import { clockTicks, freePort, procCpuS, procMemKb } from './lib/proc.js'

// ---- parameters ----------------------------------------------------------------------------------

const eventBytes = 250
const fetchMax = 1000
const prefetch = 2000
const w1Consumers = 4
const w2Groups = 4
const w3EventsPerRequest = 50
const w3IntervalMs = 10
const w3WarmupS = 2
const w4Hold = 1000
const w4SmallEvents = 1000
const w4SampleS = 5
const sampleRssMs = 100

const targets = {
  w1EventsPerSec: 150_000,
  w2DeliveriesPerSec: 400_000,
  w3P50Ms: 2,
  w3P99Ms: 10,
  rssMb: 300,
}
const natsFetch500EventsPerSec = 78_000

type Workload = 'w1' | 'w2' | 'w3' | 'w4'
type W3Cell = 'batch' | 'always' | 'never'

interface Args {
  runs: number
  only: Set<Workload>
  events: number
  w4Events: number
  w3Cells: W3Cell[]
  w3DurationS: number
  maxRunS: number
  ackTimeout: string | undefined
  profileOnly: Set<Workload> | undefined
  profile: boolean
  keepProfiles: string | undefined
  record: boolean
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    runs: 3,
    only: new Set(['w1', 'w2', 'w3', 'w4']),
    events: 1_000_000,
    w4Events: 10_000_000,
    w3Cells: ['batch', 'always', 'never'],
    w3DurationS: 10,
    maxRunS: 60,
    ackTimeout: undefined,
    profileOnly: undefined,
    profile: true,
    keepProfiles: undefined,
    record: false,
  }
  const workloads = (v: string): Set<Workload> => {
    const s = new Set(v.split(',').map((x) => x.trim().toLowerCase()))
    for (const w of s) if (!['w1', 'w2', 'w3', 'w4'].includes(w)) throw new Error(`unknown workload ${w}; use w1, w2, w3, w4`)
    return s as Set<Workload>
  }
  const count = (v: string, max: number): number => Math.min(max, Math.max(1, Math.round(Number(v.replaceAll('_', '')))))
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined]
    if (k === '--runs' && v !== undefined) args.runs = count(v, 20)
    else if (k === '--only' && v !== undefined) args.only = workloads(v)
    else if (k === '--events' && v !== undefined) args.events = count(v, 20_000_000)
    else if (k === '--w4-events' && v !== undefined) args.w4Events = count(v, 50_000_000)
    else if (k === '--w3-cells' && v !== undefined) {
      const cells = v.split(',').map((x) => x.trim()) as W3Cell[]
      for (const c of cells) if (!['batch', 'always', 'never'].includes(c)) throw new Error(`unknown W3 cell ${c}`)
      args.w3Cells = cells
    } else if (k === '--w3-duration' && v !== undefined) args.w3DurationS = count(v, 60)
    else if (k === '--max-run-s' && v !== undefined) args.maxRunS = count(v, 600)
    else if (k === '--ack-timeout' && v !== undefined) args.ackTimeout = v
    else if (k === '--profile' && v !== undefined) args.profileOnly = workloads(v)
    else if (k === '--no-profile') args.profile = false
    else if (k === '--keep-profiles' && v !== undefined) args.keepProfiles = v
    else if (k === '--record') args.record = true
    else if (k === '--no-record') args.record = false
    else throw new Error(`unknown argument ${a}`)
  }
  return args
}

// ---- small helpers -------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a')
const fmtPct = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(0)}%` : 'n/a')
const fmtMb = (kb: number): string => (Number.isFinite(kb) ? (kb / 1024).toFixed(0) : 'n/a')

interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
}

function spread(xs: readonly number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
  return { median, min: s[0]!, max: s[s.length - 1]! }
}

const fmtSpread = (s: Spread, f: (n: number) => string): string => (s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`)

// ---- /proc (the same readings as benchmarks/http.bench.ts) ---------------------------------------

/** Busy CPU seconds of the whole machine, from /proc/stat. */
function machineBusyS(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f
  return (user + nice + system + irq + softirq + steal) / clockTicks
}

function psiCpuUs(): number {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? Number.NaN)
  } catch {
    return Number.NaN
  }
}

interface Snap {
  readonly t: number
  readonly server: number
  readonly machine: number
  readonly psi: number
}

function snap(serverPid: number): Snap {
  return { t: performance.now(), server: procCpuS(serverPid), machine: machineBusyS(), psi: psiCpuUs() }
}

interface Cpu {
  /** % of one core */
  readonly serverPct: number
  readonly clientsPct: number
  /** everything else on the machine, % of one core */
  readonly otherPct: number
  /** share of the window in which some task waited for a CPU (PSI), % */
  readonly stallPct: number
}

/** `clientsPct`: what the clients report of themselves (process.cpuUsage over their run). */
function cpuBetween(a: Snap, b: Snap, clientsPct: number): Cpu {
  const s = (b.t - a.t) / 1000
  const server = b.server - a.server
  return {
    serverPct: (server / s) * 100,
    clientsPct,
    otherPct: Math.max(0, ((b.machine - a.machine - server) / s) * 100 - clientsPct),
    stallPct: ((b.psi - a.psi) / 1000 / (s * 1000)) * 100,
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
  tmpFreeGB: number
}

function machineInfo(dir: string): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  } catch {
    // not Linux
  }
  return { cpu, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release(), loadAvg: loadavg(), tmpFreeGB: freeBytes(dir) / 1e9 }
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

// ---- child processes -----------------------------------------------------------------------------

const children = new Set<ChildProcess>()

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<number | null>
  output(): string
  /** resolves with the first stdout line starting with `prefix` (seen before or after the call) */
  line(prefix: string, timeoutMs: number): Promise<string>
  send(cmd: string): void
}

function startProc(args: readonly string[]): Proc {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error(`could not start node ${args.join(' ')}`)
  children.add(child)
  let out = ''
  const keep = (d: Buffer): void => {
    out += d.toString('utf8')
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  const lines: string[] = []
  const waiting: Array<{ prefix: string; resolve: (l: string) => void }> = []
  let partial = ''
  child.stdout!.on('data', (d: Buffer) => {
    keep(d)
    partial += d.toString('utf8')
    let nl: number
    while ((nl = partial.indexOf('\n')) >= 0) {
      const l = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      if (lines.length < 1000) lines.push(l)
      for (let i = waiting.length - 1; i >= 0; i--) {
        if (l.startsWith(waiting[i]!.prefix)) {
          waiting[i]!.resolve(l)
          waiting.splice(i, 1)
        }
      }
    }
  })
  child.stderr!.on('data', keep)
  child.stdin!.on('error', () => undefined) // the child may be gone
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child)
      resolve(code)
    })
  })
  const line = (prefix: string, timeoutMs: number): Promise<string> => {
    const seen = lines.find((l) => l.startsWith(prefix))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "${prefix}" line from ${args[0]} in ${timeoutMs} ms:\n${out.slice(-3000)}`)), timeoutMs)
      const w = {
        prefix,
        resolve: (l: string) => {
          clearTimeout(t)
          resolve(l)
        },
      }
      waiting.push(w)
      void exited.then((code) => {
        if (!waiting.includes(w)) return
        clearTimeout(t)
        reject(new Error(`${args[0]} exited (${code}) before "${prefix}":\n${out.slice(-3000)}`))
      })
    })
  }
  const send = (cmd: string): void => {
    if (child.exitCode === null && child.stdin!.writable) child.stdin!.write(`${cmd}\n`)
  }
  return { child, pid: child.pid, exited, output: () => out, line, send }
}

async function stopProc(p: Proc, timeoutMs = 20_000): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode
  p.child.kill('SIGTERM')
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  const code = await p.exited
  clearTimeout(t)
  return code
}

// ---- the server ----------------------------------------------------------------------------------

interface Server {
  readonly proc: Proc
  readonly base: string
  readonly dataDir: string
  /** set before a deliberate stop, so an exit before it is reported as a crash */
  stopping: boolean
}

async function waitReady(p: Proc, url: string, timeoutMs = 60_000): Promise<void> {
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
    await sleep(50)
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms:\n${p.output()}`)
}

/** Writes the resolved config for `dataDir` and checks it with the server's own parser. */
function writeConfig(repo: string, root: string, dataDir: string, port: number, name: string): string {
  const template = readFileSync(join(repo, 'benchmarks', 'configs', 'consume.yaml'), 'utf8')
  const text = template.replaceAll('${SLUICE_BENCH_DATA_DIR}', JSON.stringify(dataDir)).replaceAll('"${SLUICE_BENCH_HTTP_PORT:-17500}"', String(port))
  parseConfig(text, { env: {} }) // throws with every problem listed
  const file = join(root, `${name}.yaml`)
  writeFileSync(file, text)
  return file
}

async function startServer(repo: string, root: string, dataDir: string, name: string, nodeArgs: readonly string[] = []): Promise<Server> {
  const port = await freePort()
  const config = writeConfig(repo, root, dataDir, port, name)
  const proc = startProc([...nodeArgs, join(repo, 'dist', 'src', 'cli.js'), 'serve', '--config', config])
  const base = `http://127.0.0.1:${port}`
  await waitReady(proc, `${base}/readyz`)
  const server: Server = { proc, base, dataDir, stopping: false }
  void proc.exited.then((code) => {
    if (!server.stopping) console.error(`\nSERVER ${name} (pid ${proc.pid}) EXITED UNEXPECTEDLY (code ${code}, signal ${proc.child.signalCode}); its last output:\n${proc.output().slice(-6000)}\n`)
  })
  return server
}

async function stopServer(s: Server): Promise<number | null> {
  s.stopping = true
  return stopProc(s.proc)
}

async function api<T>(base: string, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  })
  const json = (await res.json()) as T
  return { status: res.status, json }
}

interface GroupStatsWire {
  cursor: number
  backlog: number
  inFlight: number
  delivered: number
  acked: number
  redelivered: number
  ackTimeouts: number
}

/** ackTimeout of every declared group; undefined = the server's default */
let groupAckTimeout: string | undefined

async function declareGroup(base: string, name: string, stream: string, prefetchN: number, start: 'earliest' | 'latest'): Promise<void> {
  const r = await api<unknown>(base, 'PUT', `/v1/groups/${encodeURIComponent(name)}`, { stream, prefetch: prefetchN, start, ...(groupAckTimeout === undefined ? {} : { ackTimeout: groupAckTimeout }) })
  if (r.status !== 201 && r.status !== 200) throw new Error(`declaring group ${name} answered ${r.status}: ${JSON.stringify(r.json)}`)
}

async function groupStats(base: string, name: string): Promise<GroupStatsWire> {
  const r = await api<GroupStatsWire>(base, 'GET', `/v1/groups/${encodeURIComponent(name)}`)
  if (r.status !== 200) throw new Error(`group ${name}: ${r.status} ${JSON.stringify(r.json)}`)
  return r.json
}

// ---- prefill -------------------------------------------------------------------------------------

/** A 250-byte JSON log line, the shape `npm run bench:http` publishes (routing key api.info). */
function eventLine(i: number): string {
  const head = `{"ts":${1_732_550_400_000 + i},"service":"api","level":"info","msg":"GET /v1/items/${i} 200 ${(i % 97) + 3}ms `
  const tail = '"}'
  const line = head + 'x'.repeat(eventBytes - head.length - tail.length) + tail
  if (Buffer.byteLength(line) !== eventBytes) throw new Error('event size mismatch')
  return line
}

interface Prefill {
  readonly events: number
  readonly ms: number
  readonly bytes: number
}

/**
 * Writes `count` events into <dataDir>/streams/<stream> with the log API, as an HTTP publish to
 * `logs` would store them, in appends of 1,000 (16 in flight), fsync never, then closes the log
 * cleanly (which syncs it). Only before the server starts: the log has one writer.
 */
async function prefill(dataDir: string, stream: string, count: number): Promise<Prefill> {
  const t0 = performance.now()
  const log = await openLog(join(dataDir, 'streams', stream), { fsync: 'never' })
  const pool = Array.from({ length: 4096 }, (_, i) => Buffer.from(eventLine(i)))
  const inflight = new Set<Promise<void>>()
  for (let i = 0; i < count; ) {
    const n = Math.min(1000, count - i)
    const timestamp = Date.now()
    const records = new Array<AppendRecord>(n)
    for (let j = 0; j < n; j++) records[j] = { timestamp, key: 'api.info', body: pool[(i + j) % pool.length]!, json: true, exchange: 'logs' }
    const p: Promise<void> = log.append(records).then(() => {
      inflight.delete(p)
    })
    inflight.add(p)
    if (inflight.size >= 16) await Promise.race(inflight)
    i += n
  }
  await Promise.all(inflight)
  const bytes = log.stats().bytes
  if (log.endOffset !== count) throw new Error(`prefill wrote ${log.endOffset} events, not ${count}`)
  await log.close()
  return { events: count, ms: performance.now() - t0, bytes }
}

// ---- clients -------------------------------------------------------------------------------------

function startClient(repo: string, spec: ClientSpec): Proc {
  return startProc([join(repo, 'dist', 'benchmarks', 'consume-client.js'), JSON.stringify(spec)])
}

async function clientResult<T>(p: Proc, timeoutMs: number): Promise<T> {
  const killer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  const code = await p.exited
  clearTimeout(killer)
  const m = /^RESULT (.*)$/m.exec(p.output())
  if (code !== 0 || m === null) throw new Error(`client failed (exit ${code}):\n${p.output().slice(-3000)}`)
  return JSON.parse(m[1]!) as T
}

// ---- W1 / W2 -------------------------------------------------------------------------------------

interface DrainRun {
  readonly workload: 'w1' | 'w2'
  readonly rep: number
  readonly groups: readonly string[]
  readonly consumers: readonly ConsumeResult[]
  readonly acked: number
  readonly expected: number
  readonly windowS: number
  readonly rate: number
  readonly cpu: Cpu
  readonly serverRssPeakKb: number
  readonly stats: Readonly<Record<string, GroupStatsWire>>
  readonly complete: boolean
  readonly problems: readonly string[]
}

/**
 * One drain: declares the groups, starts one consumer process per (group, consumer), starts them
 * together, and waits until each has drained its share (first empty fetch) or hit the time limit.
 */
async function runDrain(repo: string, server: Server, workload: 'w1' | 'w2', rep: number, events: number, maxRunS: number, tag = ''): Promise<DrainRun> {
  const groups = workload === 'w1' ? [`${tag}w1-r${rep}`] : Array.from({ length: w2Groups }, (_, i) => `${tag}w2-r${rep}-${String.fromCharCode(97 + i)}`)
  for (const g of groups) await declareGroup(server.base, g, 'backlog', prefetch, 'earliest')
  const members: Array<{ group: string; consumer: string }> = []
  if (workload === 'w1') for (let i = 0; i < w1Consumers; i++) members.push({ group: groups[0]!, consumer: `c${i + 1}-r${rep}` })
  else for (const g of groups) members.push({ group: g, consumer: `c1-r${rep}` })
  const procs = members.map((m) => {
    const spec: ConsumeSpec = { mode: 'consume', base: server.base, group: m.group, consumer: m.consumer, max: fetchMax, waitMs: 1000, untilStop: false, latency: false, maxSeconds: maxRunS, maxFetches: Math.ceil(events / 10) + 100 }
    return startClient(repo, spec)
  })
  try {
    await Promise.all(procs.map((p) => p.line('READY', 30_000)))
    let rssPeak = 0
    const sampler = setInterval(() => {
      const { rss } = procMemKb(server.proc.pid)
      if (rss > rssPeak) rssPeak = rss
    }, sampleRssMs)
    const s0 = snap(server.proc.pid)
    for (const p of procs) p.send('go')
    // Read the CPU of the clients just before they exit: wait for their RESULT lines first.
    await Promise.all(procs.map((p) => p.line('RESULT', (maxRunS + 60) * 1000)))
    const s1 = snap(server.proc.pid)
    clearInterval(sampler)
    const consumers = await Promise.all(procs.map((p) => clientResult<ConsumeResult>(p, 30_000)))
    const stats: Record<string, GroupStatsWire> = {}
    for (const g of groups) stats[g] = await groupStats(server.base, g)
    const acked = consumers.reduce((a, c) => a + c.acked, 0)
    const first = Math.min(...consumers.map((c) => c.firstFetchAt))
    const last = Math.max(...consumers.filter((c) => Number.isFinite(c.lastAckAt)).map((c) => c.lastAckAt))
    const windowS = (last - first) / 1000
    const expected = events * groups.length
    const problems: string[] = []
    for (const c of consumers) {
      if (c.stoppedBy !== 'empty') problems.push(`${c.consumer}: stopped by ${c.stoppedBy}`)
      if (c.ackFailed > 0) problems.push(`${c.consumer}: ${c.ackFailed} tags not settled`)
      if (c.httpErrors > 0) problems.push(`${c.consumer}: ${c.httpErrors} HTTP errors`)
      if (c.redelivered > 0) problems.push(`${c.consumer}: ${c.redelivered} redeliveries`)
    }
    for (const [g, st] of Object.entries(stats)) {
      if (st.acked !== events || st.backlog !== 0 || st.inFlight !== 0) problems.push(`group ${g}: acked ${st.acked}, backlog ${st.backlog}, in flight ${st.inFlight} (expected ${events} acked)`)
      if (st.redelivered > 0 || st.ackTimeouts > 0) problems.push(`group ${g}: ${st.redelivered} redelivered, ${st.ackTimeouts} ack timeouts`)
    }
    if (acked !== expected) problems.push(`acked ${acked} of ${expected}`)
    return { workload, rep, groups, consumers, acked, expected, windowS, rate: acked / windowS, cpu: cpuBetween(s0, s1, consumers.reduce((a, c) => a + c.cpuPct, 0)), serverRssPeakKb: rssPeak, stats, complete: acked === expected, problems }
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

function drainLine(r: DrainRun): string {
  const fetchP50 = spread(r.consumers.map((c) => c.fetchMs.p50)).median
  const ackP50 = spread(r.consumers.map((c) => c.ackMs.p50)).median
  const ackP99 = Math.max(...r.consumers.map((c) => c.ackMs.p99))
  const clientCpu = r.consumers.map((c) => fmtPct(c.cpuPct)).join('/')
  const runs = spread(r.consumers.map((c) => c.runsPerBatch)).median
  return (
    `${r.workload} run ${r.rep}: ${fmtInt(r.rate).padStart(9)} ${r.workload === 'w1' ? 'events' : 'deliveries'}/s acked (${fmtInt(r.acked)} in ${r.windowS.toFixed(2)} s)` +
    `  offset runs per batch ${runs.toFixed(1)}, fetch p50 ${fmtMs(fetchP50)} ms, ack p50 ${fmtMs(ackP50)} p99 ${fmtMs(ackP99)} ms` +
    `  server CPU ${fmtPct(r.cpu.serverPct)}, clients ${fmtPct(r.cpu.clientsPct)} (${clientCpu}), other ${fmtPct(r.cpu.otherPct)}, stall ${fmtPct(r.cpu.stallPct)}, server RSS peak ${fmtMb(r.serverRssPeakKb)} MB` +
    (r.problems.length > 0 ? `\n    PROBLEMS: ${r.problems.join('; ')}` : '')
  )
}

// ---- W3 ------------------------------------------------------------------------------------------

interface E2eRun {
  readonly cell: W3Cell
  readonly rep: number
  readonly consumer: ConsumeResult
  readonly publisher: PublishResult
  readonly missing: number
  readonly cpu: Cpu
}

async function runE2e(repo: string, server: Server, cell: W3Cell, rep: number, durationS: number): Promise<E2eRun> {
  const group = `e2e-${cell}`
  await declareGroup(server.base, group, `live-${cell}`, prefetch, 'latest')
  const cspec: ConsumeSpec = { mode: 'consume', base: server.base, group, consumer: `c-r${rep}`, max: fetchMax, waitMs: 1000, untilStop: true, latency: true, maxSeconds: w3WarmupS + durationS + 30, maxFetches: 1_000_000 }
  const pspec: PublishSpec = { mode: 'publish', base: server.base, exchange: 'live', routingKey: cell, events: w3EventsPerRequest, intervalMs: w3IntervalMs, warmupS: w3WarmupS, durationS, timeoutMs: 10_000, maxSockets: 16 }
  const cons = startClient(repo, cspec)
  const pub = startClient(repo, pspec)
  try {
    await Promise.all([cons.line('READY', 30_000), pub.line('READY', 30_000)])
    cons.send('go')
    await sleep(100) // the consumer's first long poll is waiting before the first publish
    pub.send('go')
    await pub.line('MEASURE', (w3WarmupS + 30) * 1000)
    const s0 = snap(server.proc.pid)
    await pub.line('RESULT', (durationS + 60) * 1000)
    const s1 = snap(server.proc.pid)
    const publisher = await clientResult<PublishResult>(pub, 30_000)
    cons.send('stop')
    const consumer = await clientResult<ConsumeResult>(cons, 30_000)
    return { cell, rep, consumer, publisher, missing: publisher.measuredEventsConfirmed - consumer.measuredReceived, cpu: cpuBetween(s0, s1, publisher.cpuPct + consumer.cpuPct) }
  } finally {
    for (const p of [cons, pub]) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

function e2eLine(r: E2eRun): string {
  const e = r.consumer.e2eMs!
  const p = r.publisher
  return (
    `w3/${r.cell.padEnd(6)} run ${r.rep}: publish→delivery p50 ${fmtMs(e.p50)} p90 ${fmtMs(e.p90)} p99 ${fmtMs(e.p99)} p99.9 ${fmtMs(e.p999)} max ${fmtMs(e.max)} ms (${fmtInt(e.n)} events)` +
    `  publish confirm p50 ${fmtMs(p.confirmMs.p50)} p99 ${fmtMs(p.confirmMs.p99)} ms, ${fmtInt(p.achievedEventsPerSec)} events/s, sender late p99 ${fmtMs(p.lateMs.p99)} ms` +
    `  server CPU ${fmtPct(r.cpu.serverPct)}, clients ${fmtPct(r.cpu.clientsPct)}, other ${fmtPct(r.cpu.otherPct)}, stall ${fmtPct(r.cpu.stallPct)}` +
    (r.missing !== 0 || p.failed > 0 || r.consumer.ackFailed > 0 || r.consumer.redelivered > 0
      ? `\n    PROBLEMS: ${r.missing} measured events not received, ${p.failed} publishes failed, ${r.consumer.ackFailed} acks failed, ${r.consumer.redelivered} redelivered`
      : '')
  )
}

// ---- W4 ------------------------------------------------------------------------------------------

interface MemRun {
  readonly backlog: number
  readonly rep: number
  readonly startMs: number
  readonly idleRssKb: number
  readonly heldRssMaxKb: number
  readonly heldRssLastKb: number
  readonly hwmKb: number
  readonly held: number
  readonly inFlight: number
}

async function runMemory(repo: string, root: string, dataDir: string, backlog: number, rep: number): Promise<MemRun> {
  const t0 = performance.now()
  const server = await startServer(repo, root, dataDir, `w4-${backlog}-r${rep}`)
  const startMs = performance.now() - t0
  try {
    await sleep(1000)
    const idleRssKb = procMemKb(server.proc.pid).rss
    const group = `hold-r${rep}`
    await declareGroup(server.base, group, 'backlog', w4Hold, 'earliest')
    const holder = startClient(repo, { mode: 'hold', base: server.base, group, consumer: `holder-r${rep}`, max: w4Hold, maxSeconds: w4SampleS + 30 } satisfies HoldSpec)
    try {
      await holder.line('READY', 30_000)
      holder.send('go')
      await holder.line('HELD', 30_000)
      let max = 0
      let last = 0
      const end = performance.now() + w4SampleS * 1000
      for (let i = 0; i < w4SampleS * (1000 / sampleRssMs) + 10 && performance.now() < end; i++) {
        last = procMemKb(server.proc.pid).rss
        if (last > max) max = last
        await sleep(sampleRssMs)
      }
      const hwmKb = procMemKb(server.proc.pid).hwm
      const st = await groupStats(server.base, group)
      holder.send('stop')
      const h = await clientResult<HoldResult>(holder, 30_000)
      return { backlog, rep, startMs, idleRssKb, heldRssMaxKb: max, heldRssLastKb: last, hwmKb, held: h.held, inFlight: st.inFlight }
    } finally {
      if (holder.child.exitCode === null) holder.child.kill('SIGKILL')
    }
  } finally {
    await stopServer(server)
  }
}

// ---- main ----------------------------------------------------------------------------------------

interface TargetResult {
  readonly workload: Workload
  readonly name: string
  readonly measured: string
  readonly target: string
  readonly pass: boolean
  readonly how: string
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  groupAckTimeout = args.ackTimeout
  const repo = findRepoRoot()
  const root = mkdtempSync(join(tmpdir(), 'sluice-bench-consume-'))
  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    for (const c of children) c.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  }
  const onSignal = (sig: string): void => {
    console.error(`\n${sig}: stopping the server and clients, removing ${root}`)
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanup)

  const resultsFile = join(resultsDir(args.record), 'consume.jsonl')
  const runId = new Date().toISOString()
  const record = (obj: object): void => {
    appendFileSync(resultsFile, `${JSON.stringify({ bench: 'consume', runId, ...obj })}\n`)
  }
  const tStart = performance.now()

  try {
    const machine = machineInfo(root)
    console.log(`# Sluice consume benchmark  ${runId}`)
    console.log(`CPU     ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB RAM`)
    console.log(`Node    ${machine.node}, kernel ${machine.kernel}; temp dir ${root}, ${machine.tmpFreeGB.toFixed(0)} GB free`)
    console.log(`Load    ${machine.loadAvg.map((l) => l.toFixed(2)).join(' ')} (1/5/15 min) at start${machine.loadAvg[0]! > machine.cores / 2 ? ': the machine is busy, figures will be noisy' : ''}`)
    console.log(`Events  ${eventBytes} B JSON, e.g. ${eventLine(0).slice(0, 80)}…`)
    console.log(`Setup   prefill with the log API (appends of 1,000) before the server starts; groups declared per run (prefetch ${prefetch}, fair dispatch, manual ack); fetch max ${fetchMax}, one ack request per batch, the ack overlapping the next fetch`)
    if (args.ackTimeout !== undefined) console.log(`Groups  ackTimeout ${args.ackTimeout} (diagnostic; the default is 30s)`)
    console.log(`Runs    ${args.runs} per figure; server and every client in their own processes, 127.0.0.1 only`)
    if (machine.cores <= 2) console.log(`Note    only ${machine.cores} cores: the server and all client processes compete for them`)
    console.log('')
    const git = (a: string[]): string => spawnSync('git', a, { cwd: repo, encoding: 'utf8' }).stdout?.trim() ?? ''
    const codeInfo = { head: git(['rev-parse', '--short', 'HEAD']), dirty: git(['status', '--porcelain', '--', 'src']).split('\n').filter((l) => l !== '') }
    console.log(`Code    commit ${codeInfo.head}${codeInfo.dirty.length > 0 ? ` plus ${codeInfo.dirty.length} uncommitted change(s) under src/` : ''} (built by npm run build)`)
    record({ kind: 'machine', ...machine, code: codeInfo, eventBytes, fetchMax, prefetch, runs: args.runs, events: args.events, ackTimeout: args.ackTimeout ?? 'default (30s)' })

    const missed = new Set<Workload>()
    const failures: string[] = []
    /** Runs one workload; a failure (a server crash, say) is reported and the next one still runs. */
    const guarded = async (label: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f()
      } catch (err) {
        failures.push(label)
        console.error(`\n${label} FAILED: ${(err as Error).stack ?? String(err)}\n`)
        record({ kind: 'error', workload: label, error: String(err) })
      }
    }
    const targetRows: TargetResult[] = []
    const rows: string[] = ['| Workload | Median (min–max) | Unit | Server CPU | Client CPU | Notes |', '|---|---|---|---|---|---|']
    const mainData = join(root, 'main-data')
    const liveData = join(root, 'live-data')
    let mainPrefilled = false
    const ensureMainPrefill = async (): Promise<void> => {
      if (mainPrefilled) return
      const pf = await prefill(mainData, 'backlog', args.events)
      mainPrefilled = true
      console.log(`Prefill ${fmtInt(pf.events)} events (${(pf.bytes / 1e6).toFixed(0)} MB on disk) with the log API in ${(pf.ms / 1000).toFixed(1)} s`)
      record({ kind: 'prefill', stream: 'backlog', ...pf })
    }

    if (args.profileOnly === undefined) {
      // ---- W1 and W2 ----
      const w1Runs: DrainRun[] = []
      const w2Runs: DrainRun[] = []
      let drainHwmKb = 0
      let drainDiag: DrainRun | undefined
      if (args.only.has('w1') || args.only.has('w2')) {
        await guarded('W1/W2', async () => {
          await ensureMainPrefill()
          const server = await startServer(repo, root, mainData, 'main')
          console.log(`Server  pid ${server.proc.pid} at ${server.base}, RSS after start ${fmtMb(procMemKb(server.proc.pid).rss)} MB`)
          console.log(`## W1: one group, ${w1Consumers} consumer processes; W2: ${w2Groups} groups, one consumer process each; ${fmtInt(args.events)} events; runs alternate`)
          try {
            for (let rep = 1; rep <= args.runs; rep++) {
              for (const w of ['w1', 'w2'] as const) {
                if (!args.only.has(w)) continue
                const r = await runDrain(repo, server, w, rep, args.events, args.maxRunS)
                ;(w === 'w1' ? w1Runs : w2Runs).push(r)
                console.log(drainLine(r))
                record({ kind: 'run', workload: w, rep, rate: r.rate, acked: r.acked, expected: r.expected, windowS: r.windowS, complete: r.complete, problems: r.problems, cpu: r.cpu, serverRssPeakKb: r.serverRssPeakKb, stats: r.stats, consumers: r.consumers })
                await sleep(500)
              }
            }
            const mem = procMemKb(server.proc.pid)
            drainHwmKb = mem.hwm
            console.log(`Server  RSS ${fmtMb(mem.rss)} MB, peak (VmHWM) ${fmtMb(mem.hwm)} MB after W1/W2`)
          } finally {
            const code = await stopServer(server)
            console.log(`Server  stopped, exit ${code}`)
          }
          // Memory during drains: deadlines of acked deliveries stay in the group's timer heap
          // until they would have fired (ackTimeout), so a drain's RSS grows with rate × ackTimeout.
          // If the drains went over the RSS budget, one W1 run on a fresh server with ackTimeout 1s
          // tells that growth from the rest.
          if (w1Runs.length > 0 && args.ackTimeout === undefined && drainHwmKb / 1024 > targets.rssMb) {
            groupAckTimeout = '1s'
            const diag = await startServer(repo, root, mainData, 'diag')
            try {
              const r = await runDrain(repo, diag, 'w1', 1, args.events, args.maxRunS, 'diag-')
              drainDiag = r
              console.log(`diag: W1 on a fresh server with the groups' ackTimeout at 1s instead of 30s:`)
              console.log(drainLine(r))
              record({ kind: 'diagnostic', workload: 'w1', ackTimeout: '1s', rate: r.rate, acked: r.acked, windowS: r.windowS, serverRssPeakKb: r.serverRssPeakKb, hwmKb: procMemKb(diag.proc.pid).hwm, problems: r.problems })
            } finally {
              groupAckTimeout = undefined
              await stopServer(diag)
            }
          }
          console.log('')
        })
      }

      // ---- W3 ----
      const w3Runs: E2eRun[] = []
      if (args.only.has('w3')) {
        await guarded('W3', async () => {
          console.log(`## W3: ${fmtInt((w3EventsPerRequest * 1000) / w3IntervalMs)} events/s (${w3EventsPerRequest} every ${w3IntervalMs} ms, one NDJSON request), one long-polling consumer; ${w3WarmupS} s warm-up + ${args.w3DurationS} s measured`)
          const server = await startServer(repo, root, liveData, 'live')
          try {
            for (let rep = 1; rep <= args.runs; rep++) {
              for (const cell of args.w3Cells) {
                const r = await runE2e(repo, server, cell, rep, args.w3DurationS)
                w3Runs.push(r)
                console.log(e2eLine(r))
                record({ kind: 'run', workload: 'w3', cell, rep, e2eMs: r.consumer.e2eMs, missing: r.missing, cpu: r.cpu, publisher: r.publisher, consumer: r.consumer })
                await sleep(300)
              }
            }
          } finally {
            const code = await stopServer(server)
            console.log(`Server  stopped, exit ${code}`)
          }
          console.log('')
        })
      }

      // ---- W4 ----
      const w4Runs: MemRun[] = []
      let w4Large = args.w4Events
      if (args.only.has('w4')) {
        await guarded('W4', async () => {
          const free = freeBytes(root)
          const need = (n: number): number => n * 300
          const headroom = 10e9
          while (w4Large > 1_000_000 && free - need(w4Large) < headroom) w4Large = Math.floor(w4Large / 2)
          const note = w4Large === args.w4Events ? '' : ` (reduced from ${fmtInt(args.w4Events)}: ${(free / 1e9).toFixed(0)} GB free, keeping ${headroom / 1e9} GB headroom)`
          console.log(`## W4: RSS with ${fmtInt(w4Hold)} events in flight (fetched, never acked): backlog ${fmtInt(w4SmallEvents)} and ${fmtInt(w4Large)} events${note}`)
          for (const n of [w4SmallEvents, w4Large]) {
            const dir = join(root, `w4-${n}-data`)
            const pf = await prefill(dir, 'backlog', n)
            console.log(`Prefill ${fmtInt(n)} events (${(pf.bytes / 1e6).toFixed(0)} MB) with the log API in ${(pf.ms / 1000).toFixed(1)} s`)
            record({ kind: 'prefill', stream: 'backlog', workload: 'w4', ...pf })
            for (let rep = 1; rep <= args.runs; rep++) {
              const r = await runMemory(repo, root, dir, n, rep)
              w4Runs.push(r)
              console.log(
                `w4/${fmtInt(n).padStart(10)} run ${rep}: start ${fmtInt(r.startMs)} ms; RSS idle ${fmtMb(r.idleRssKb)} MB, with ${fmtInt(r.held)} held (server in flight ${fmtInt(r.inFlight)}): max ${fmtMb(r.heldRssMaxKb)} MB, last ${fmtMb(r.heldRssLastKb)} MB; VmHWM ${fmtMb(r.hwmKb)} MB`,
              )
              record({ kind: 'run', workload: 'w4', ...r })
            }
            rmSync(dir, { recursive: true, force: true })
          }
          console.log('')
        })
      }

      // ---- summary ----
      const fromRuns = <T>(xs: readonly T[], f: (x: T) => number): Spread => spread(xs.map(f))
      if (w1Runs.length > 0) {
        const s = fromRuns(w1Runs, (r) => r.rate)
        const incomplete = w1Runs.filter((r) => !r.complete).length
        rows.push(`| W1 1 group × ${w1Consumers} consumers, ${fmtInt(args.events)} events | ${fmtSpread(s, fmtInt)} | events/s acked | ${fmtPct(fromRuns(w1Runs, (r) => r.cpu.serverPct).median)} | ${fmtPct(fromRuns(w1Runs, (r) => r.cpu.clientsPct).median)} | fetch max ${fetchMax}, prefetch ${prefetch}${incomplete > 0 ? `; ${incomplete} run(s) incomplete` : ''} |`)
        targetRows.push({ workload: 'w1', name: `W1 one group, ${w1Consumers} consumers: acked events/s`, measured: `${fmtInt(s.median)} events/s`, target: `≥ ${fmtInt(targets.w1EventsPerSec)}`, pass: s.median >= targets.w1EventsPerSec && incomplete === 0, how: `${((s.median / targets.w1EventsPerSec) * 100).toFixed(0)}% of target; ${((s.median / natsFetch500EventsPerSec) * 100).toFixed(0)}% of NATS JetStream fetch(500) (${fmtInt(natsFetch500EventsPerSec)}/s)` })
      }
      if (w2Runs.length > 0) {
        const s = fromRuns(w2Runs, (r) => r.rate)
        const incomplete = w2Runs.filter((r) => !r.complete).length
        rows.push(`| W2 ${w2Groups} groups × 1 consumer, ${fmtInt(args.events)} events each | ${fmtSpread(s, fmtInt)} | deliveries/s acked (total) | ${fmtPct(fromRuns(w2Runs, (r) => r.cpu.serverPct).median)} | ${fmtPct(fromRuns(w2Runs, (r) => r.cpu.clientsPct).median)} | ${incomplete > 0 ? `${incomplete} run(s) incomplete` : ''} |`)
        targetRows.push({ workload: 'w2', name: `W2 ${w2Groups} groups: total acked deliveries/s`, measured: `${fmtInt(s.median)} deliveries/s`, target: `≥ ${fmtInt(targets.w2DeliveriesPerSec)}`, pass: s.median >= targets.w2DeliveriesPerSec && incomplete === 0, how: `${((s.median / targets.w2DeliveriesPerSec) * 100).toFixed(0)}% of target` })
      }
      if (w1Runs.length + w2Runs.length > 0) {
        const peak = (rs: readonly DrainRun[]): string => fmtSpread(fromRuns(rs, (r) => r.serverRssPeakKb), fmtMb)
        rows.push(
          `| Server RSS during the W1/W2 drains (groups' ackTimeout 30s) | W1 ${peak(w1Runs)}; W2 ${peak(w2Runs)}; VmHWM ${fmtMb(drainHwmKb)} | MB | | | W1 run 1 on the fresh server: ${fmtMb(w1Runs[0]?.serverRssPeakKb ?? Number.NaN)} MB${drainDiag !== undefined ? `; the same run with ackTimeout 1s: ${fmtMb(drainDiag.serverRssPeakKb)} MB (${fmtInt(drainDiag.rate)} events/s)` : ''} |`,
        )
      }
      for (const cell of args.w3Cells) {
        const rs = w3Runs.filter((r) => r.cell === cell)
        if (rs.length === 0) continue
        const f = (g: (r: E2eRun) => number): string => fmtSpread(fromRuns(rs, g), fmtMs)
        const missing = rs.reduce((a, r) => a + r.missing, 0)
        rows.push(
          `| W3 e2e 5,000 events/s, fsync ${cell}${cell === 'batch' ? ' 5ms (server default)' : ''} | p50 ${f((r) => r.consumer.e2eMs!.p50)}; p99 ${f((r) => r.consumer.e2eMs!.p99)}; max ${f((r) => r.consumer.e2eMs!.max)} | ms publish→delivery | ${fmtPct(fromRuns(rs, (r) => r.cpu.serverPct).median)} | ${fmtPct(fromRuns(rs, (r) => r.cpu.clientsPct).median)} | publish confirm p50 ${f((r) => r.publisher.confirmMs.p50)}, p99 ${f((r) => r.publisher.confirmMs.p99)} ms${missing !== 0 ? `; ${missing} events not received` : ''} |`,
        )
      }
      const w3Rec = w3Runs.filter((r) => r.cell === 'batch')
      if (w3Rec.length > 0) {
        const p50 = fromRuns(w3Rec, (r) => r.consumer.e2eMs!.p50).median
        const p99 = fromRuns(w3Rec, (r) => r.consumer.e2eMs!.p99).median
        const missing = w3Rec.reduce((a, r) => a + r.missing, 0)
        const other = args.w3Cells
          .filter((c) => c !== 'batch')
          .map((c) => {
            const rs = w3Runs.filter((r) => r.cell === c)
            return `fsync ${c}: p50 ${fmtMs(fromRuns(rs, (r) => r.consumer.e2eMs!.p50).median)}, p99 ${fmtMs(fromRuns(rs, (r) => r.consumer.e2eMs!.p99).median)} ms`
          })
        targetRows.push({ workload: 'w3', name: 'W3 e2e at 5,000 events/s (fsync batch 5ms): p50', measured: `${fmtMs(p50)} ms`, target: `≤ ${targets.w3P50Ms} ms`, pass: p50 <= targets.w3P50Ms && missing === 0, how: `${((p50 / targets.w3P50Ms) * 100).toFixed(0)}% of the limit${other.length > 0 ? `; for comparison ${other.join('; ')}` : ''}` })
        targetRows.push({ workload: 'w3', name: 'W3 e2e at 5,000 events/s (fsync batch 5ms): p99', measured: `${fmtMs(p99)} ms`, target: `≤ ${targets.w3P99Ms} ms`, pass: p99 <= targets.w3P99Ms && missing === 0, how: `${((p99 / targets.w3P99Ms) * 100).toFixed(0)}% of the limit` })
      }
      for (const n of [w4SmallEvents, w4Large]) {
        const rs = w4Runs.filter((r) => r.backlog === n)
        if (rs.length === 0) continue
        const mb = (g: (r: MemRun) => number): string => fmtSpread(fromRuns(rs, g), (x) => fmtMb(x))
        rows.push(`| W4 RSS, backlog ${fmtInt(n)}, ${fmtInt(w4Hold)} in flight | VmRSS ${mb((r) => r.heldRssMaxKb)}; VmHWM ${mb((r) => r.hwmKb)}; idle before the fetch ${mb((r) => r.idleRssKb)} | MB | | | start to ready ${fmtSpread(fromRuns(rs, (r) => r.startMs), fmtInt)} ms |`)
      }
      const w4Big = w4Runs.filter((r) => r.backlog === w4Large)
      if (w4Big.length > 0) {
        const rss = fromRuns(w4Big, (r) => r.heldRssMaxKb).max / 1024
        const hwm = fromRuns(w4Big, (r) => r.hwmKb).max / 1024
        const small = w4Runs.filter((r) => r.backlog === w4SmallEvents)
        const smallRss = fromRuns(small, (r) => r.heldRssMaxKb).median / 1024
        const held = w4Big.every((r) => r.held === w4Hold && r.inFlight === w4Hold)
        targetRows.push({ workload: 'w4', name: `W4 server RSS, ${fmtInt(w4Large)}-event backlog, ${fmtInt(w4Hold)} in flight (worst run)`, measured: `VmRSS ${rss.toFixed(0)} MB, VmHWM ${hwm.toFixed(0)} MB`, target: `≤ ${targets.rssMb} MB`, pass: Math.max(rss, hwm) <= targets.rssMb && held, how: `${((Math.max(rss, hwm) / targets.rssMb) * 100).toFixed(0)}% of the limit; with a ${fmtInt(w4SmallEvents)}-event backlog ${smallRss.toFixed(0)} MB${held ? '' : '; the holder did not hold exactly 1,000'}` })
      }
      console.log(rows.join('\n'))
      console.log('')
      console.log('| Target | Measured (median) | Target | Result | How far |')
      console.log('|---|---|---|---|---|')
      for (const t of targetRows) {
        console.log(`| ${t.name} | ${t.measured} | ${t.target} | ${t.pass ? 'PASS' : 'MISS'} | ${t.how} |`)
        if (!t.pass && t.workload !== 'w4') missed.add(t.workload)
      }
      if (failures.length > 0) console.log(`\nFAILED workloads (see above): ${failures.join(', ')}`)
      console.log(`\nLoad at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min); measurements took ${((performance.now() - tStart) / 1000).toFixed(0)} s`)
      record({
        kind: 'summary',
        w1: w1Runs.length > 0 ? fromRuns(w1Runs, (r) => r.rate) : undefined,
        w2: w2Runs.length > 0 ? fromRuns(w2Runs, (r) => r.rate) : undefined,
        w3: Object.fromEntries(args.w3Cells.map((c) => [c, { p50: fromRuns(w3Runs.filter((r) => r.cell === c), (r) => r.consumer.e2eMs!.p50), p99: fromRuns(w3Runs.filter((r) => r.cell === c), (r) => r.consumer.e2eMs!.p99) }])),
        w4: { largeEvents: w4Large, runs: w4Runs },
        targets: targetRows,
      })
    } else {
      for (const w of args.profileOnly) if (w !== 'w4') missed.add(w)
    }

    // ---- profiles of the missed workloads ----
    if (args.profile && missed.size > 0) {
      console.log(`\n## CPU profiles (node --cpu-prof) of the Sluice server under ${[...missed].join(', ')}`)
      for (const w of (['w1', 'w2', 'w3'] as const).filter((x) => missed.has(x))) {
        await guarded(`profile ${w}`, async () => {
          const profDir = join(root, `prof-${w}`)
          let what: string
          let code: number | null
          if (w === 'w1' || w === 'w2') {
            await ensureMainPrefill()
            const server = await startServer(repo, root, mainData, `prof-${w}`, ['--cpu-prof', `--cpu-prof-dir=${profDir}`])
            try {
              const r = await runDrain(repo, server, w, 1, args.events, Math.min(args.maxRunS, 25), 'prof-')
              what = `${w.toUpperCase()}: ${fmtInt(r.rate)} ${w === 'w1' ? 'events' : 'deliveries'}/s under the profiler (${fmtInt(r.acked)} in ${r.windowS.toFixed(1)} s), server CPU ${fmtPct(r.cpu.serverPct)}, clients ${fmtPct(r.cpu.clientsPct)}`
            } finally {
              code = await stopServer(server)
            }
          } else {
            const server = await startServer(repo, root, liveData, 'prof-w3', ['--cpu-prof', `--cpu-prof-dir=${profDir}`])
            try {
              const r = await runE2e(repo, server, 'batch', 99, args.w3DurationS)
              what = `W3 fsync batch: p50 ${fmtMs(r.consumer.e2eMs!.p50)} ms, p99 ${fmtMs(r.consumer.e2eMs!.p99)} ms under the profiler, server CPU ${fmtPct(r.cpu.serverPct)}`
            } finally {
              code = await stopServer(server)
            }
          }
          const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : []
          if (files.length === 0) {
            console.log(`${w}: no profile written (server exit ${code})`)
            return
          }
          const file = join(profDir, files[0]!)
          if (args.keepProfiles !== undefined) {
            mkdirSync(args.keepProfiles, { recursive: true })
            copyFileSync(file, join(args.keepProfiles, `sluice-consume-${w}-${runId.replaceAll(':', '')}.cpuprofile`))
          }
          const summary = summarizeProfile(file, 15)
          console.log(`\n### ${what}`)
          console.log(formatProfile({ ...summary, file: `${w} (${files[0]})` }))
          record({ kind: 'profile', workload: w, what, ...summary, file: files[0] })
        })
      }
    }
    if (failures.length > 0) console.log(`\nFAILED: ${failures.join(', ')}`)
    console.log(`\ntotal ${((performance.now() - tStart) / 1000).toFixed(0)} s`)
    console.log(`raw results appended to ${resultsFile}`)
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
