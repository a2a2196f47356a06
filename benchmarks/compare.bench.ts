// Side by side with NATS JetStream (issue 9): `npm run bench:compare`, or after a build
// `node dist/benchmarks/compare.bench.js [options]`.
//
// Runs the same workloads, with the same 250-byte log events, against NATS JetStream (nats-server
// from Debian, `-js`, file storage in a temp dir, R1) and Sluice (`fsync: batch`, 5 ms), each on
// 127.0.0.1 and ONE AT A TIME: a round starts one server, runs W1–W4 on it, stops it, then does
// the same with the other (the order alternates between rounds, so drift on a shared machine hits
// both sides alike). Every client is its own process (benchmarks/compare-client.ts):
//
//   W1  durable publish with confirms, 1,000 events unconfirmed at most. JetStream: js.publish of
//       single events with 1,000 PubAcks pending. Sluice: NDJSON requests of 100 events, 10 in
//       flight. Confirmed events/s over a fixed window after a warm-up. When src/server.ts starts
//       an AMQP listener, also Sluice over AMQP 0-9-1: amqplib confirm channel, basic.publish of
//       single events to exchange `bench`, 1,000 confirms pending (held against JetStream's W1).
//   W1 lean: the same publish with the leanest client each side has, frames by hand, one publisher
//       process, 1,000 unconfirmed, single events. JetStream: PUB on the text protocol with a reply
//       inbox per event, 1,000 PubAcks pending (benchmarks/lib/lean-nats.ts). Sluice: AMQP 0-9-1
//       confirm mode, pre-encoded basic.publish + header + body frames to exchange `bench`, 1,000
//       confirms pending, basic.ack multiple counted (benchmarks/lib/lean-amqp.ts). Each side's
//       window is refilled in one write after each read. Target: Sluice ≥ 2× JetStream.
//   W2  consume + explicit ack of a prefilled backlog, by `--w2-consumers` processes (default 4)
//       sharing one durable consumer / one group, until it is empty. JetStream: durable pull
//       consumer (AckExplicit), pull requests of 1,000 with no_wait, m.ack() per message.
//       Sluice: fetch max 1,000 + one ack request per batch (`ranges`: the batch's first and last
//       tags; overlapping the next fetch), prefetch
//       2,000 per member (JetStream max_ack_pending: 2,000 per process). Acked events/s from the
//       first fetch to the last ack.
//   W3  latency: 5,000 events/s (50 every 10 ms; Sluice: one NDJSON request per tick, JetStream:
//       50 js.publish) for 10 s after a 2 s warm-up; one consumer takes them as they come
//       (JetStream: consumer.consume(); Sluice: long-poll fetch) and records receive time − send
//       time (the send time travels in the event body; one machine clock). p50/p99.
//   W4  fan-out: 4 independent consumers of one stream (JetStream: 4 durable consumers; Sluice:
//       4 groups), one process each, each acking the first `--w4-events` events of the backlog.
//       Total acked deliveries/s.
//   W2 lean / W4 lean: the same drains with the leanest client each side has, frames by hand
//       (benchmarks/lib/lean-nats.ts, benchmarks/lib/lean-amqp.ts), one process per consumer, so
//       the figures are the servers' and not the libraries'. JetStream: a pull consumer on the
//       text protocol, two pulls of 500 in flight, +ACK per message. Sluice: AMQP 0-9-1,
//       basic.qos 1,000, basic.ack with multiple every 500 deliveries. Target for W2 lean:
//       Sluice ≥ 1.5× JetStream.
//
// Two rows beside the targets show how much the clients shape the figures on 2 cores: W1 from two
// publisher processes (500 unconfirmed each; nats.js spends far more CPU per publish than an
// NDJSON batch costs), and W2 from one consumer process (the first half of the backlog).
//
// Backlog for W2/W4 (`--backlog`, default 1,000,000): Sluice's is written with the log API into
// <dataDir>/streams/backlog before its first start (what an HTTP publish would store); JetStream's
// is published once by a lean publisher (core NATS publishes to the stream subject, a flush every
// 5,000, then the stream's count checked) after its first start. Both data dirs persist across
// the rounds; each run declares a fresh consumer / group (W3's Sluice group is reset to latest).
// After each drain every JetStream consumer's ack floor and every Sluice group's cursor is checked
// against what the clients acked; a mismatch is printed as PROBLEMS and fails the row.
//
// The run is bounded: clients have hard time limits, the quiet-machine waits have a budget, a
// round is not started if it would end past 12 minutes, and profiles are skipped past 12 minutes.
// Servers, clients and the temp dir are removed on exit, on error and on SIGINT/SIGTERM.
//
// Server CPU comes from /proc/<pid>/stat over each measured window, RSS from /proc/<pid>/status
// (VmRSS sampled every 100 ms during each workload; VmHWM of each server process at its stop).
// The table (median and min–max of --runs, default 3) goes to benchmarks/RESULTS.md (this script's
// section is replaced, the others kept) and every run to benchmarks/results/compare.jsonl.
// Targets: Sluice ÷ JetStream ≥ 1.0 on W1, W2 and W4, ≥ 2.0 on W1 lean, ≥ 1.5 on W2 lean; W3 p99
// no worse than JetStream's. For each MISS the Sluice server is run once more under that workload
// with `node --cpu-prof`, and the profile's top functions over the measured window are printed and
// written down.
//
// nats-server is installed with `apt-get install -y nats-server` if missing. The whole run is
// sized for under 15 minutes on a 2-core machine.
//
// Options:
//   --runs=N              rounds (default 3)
//   --only=w1,w2,w3,w4    run only these workloads (also w1amqp, w1lean, w2lean, w4lean, and w1x2, w2x1: the rows beside the targets)
//   --backlog=N           W2 backlog (default 1,000,000)
//   --w4-events=N         events each W4 consumer acks (default 125,000)
//   --w2-consumers=N      W2 consumer processes (default 4)
//   --w1-duration=S       W1 measured seconds (default 5), after --w1-warmup=S (default 1)
//   --w3-duration=S       W3 measured seconds (default 10), after a 2 s warm-up
//   --profile=w1,...      skip the measurements; only profile Sluice under these workloads
//   --no-profile          never profile
//   --keep-profiles=DIR   copy the .cpuprofile files there
//   --server-cpus=LIST    start the servers under `taskset -c LIST` (e.g. 0), and
//   --client-cpus=LIST    the clients under `taskset -c LIST` (e.g. 1): how a server uses cores
//   --record              append to benchmarks/results/compare.jsonl and write the RESULTS.md
//                         section (without it, results go to a temp dir and git stays clean)

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { AckPolicy, connect, DeliverPolicy, DiscardPolicy, nanos, RetentionPolicy, StorageType, type JetStreamManager, type NatsConnection } from 'nats'
import { parseConfig } from '../src/config/index.js'
import { openLog, type AppendRecord } from '../src/log/index.js'
import type { ClientSpec, DrainResult, DrainSpec, FollowResult, FollowSpec, PrefillResult, PublishResult, PublishSpec, RateResult, RateSpec, System } from './compare-client.js'
import { formatProfile, summarizeProfile, type ProfileSummary } from './cpuprofile-summary.js'
import { eventBytes, eventLine } from './http-payload.js'
import { findRepoRoot, resultsDir } from './lib/results.js'
import { clockTicks, freePort, procCpuS, procMemKb } from './lib/proc.js'

// ---- parameters ----------------------------------------------------------------------------------

const w1Window = 1000
const w1SluiceBatch = 100
const fetchMax = 1000
/** Sluice prefetch per member; JetStream max_ack_pending is this × the processes on the consumer */
const prefetch = 2000
const w3EventsPerTick = 50
const w3IntervalMs = 10
const w3WarmupS = 2
const w4Consumers = 4
const sampleRssMs = 100
const jsPrefillWindow = 5000
/** past this, profiles are skipped so the whole run stays under 15 minutes */
const profileBudgetS = 12 * 60
/** a round is not started if it would end past this */
const roundsBudgetS = 12 * 60
/** quiet: the whole machine below this share of one core (see waitQuiet) */
const quietPct = 40
/** at most this long before one run, and in all */
const quietMaxMs = 5000
const quietBudgetMs = 60_000
const sectionTitle = '## Side by side with NATS JetStream (issue 9): npm run bench:compare'

/**
 * Rows beside the targets: w1x2 is W1 from two publisher processes (half the window each), w2x1
 * is W2 from one consumer process (acking the first half of the backlog). w1amqp is W1 into Sluice
 * over AMQP 0-9-1 (run only when src/server.ts starts an AMQP listener), against JetStream's W1.
 * w1lean is W1 with the leanest publisher each side has (compare-client PublishSpec.lean).
 */
type Workload = 'w1' | 'w1x2' | 'w1amqp' | 'w1lean' | 'w2' | 'w2x1' | 'w2lean' | 'w3' | 'w4' | 'w4lean'
const workloads: readonly Workload[] = ['w1', 'w1x2', 'w1amqp', 'w1lean', 'w2', 'w2x1', 'w2lean', 'w3', 'w4', 'w4lean']
/** Drains with the leanest client each side has (compare-client DrainSpec.lean): Sluice over AMQP. */
const leanDrains: ReadonlySet<Workload> = new Set(['w2lean', 'w4lean'])
/** Workloads whose Sluice side is over AMQP 0-9-1: run only when Sluice has an AMQP door. */
const overAmqp: ReadonlySet<Workload> = new Set(['w1amqp', 'w1lean', ...leanDrains])
/** Sluice ÷ JetStream wanted where it is not 1 (higher is better). */
const ratioWanted: Partial<Record<Workload, number>> = { w1lean: 2, w2lean: 1.5 }
const besideTargets: ReadonlySet<Workload> = new Set(['w1x2', 'w2x1'])
const systems: readonly System[] = ['jetstream', 'sluice']
const sysName = (s: System): string => (s === 'jetstream' ? 'JetStream' : 'Sluice')

interface Args {
  runs: number
  only: Set<Workload>
  backlog: number
  w4Events: number
  w2Consumers: number
  w1DurationS: number
  w1WarmupS: number
  w3DurationS: number
  profileOnly: Set<Workload> | undefined
  profile: boolean
  keepProfiles: string | undefined
  record: boolean
  /** CPU lists (taskset -c) for the servers and for the clients: how a server uses cores, measured. */
  serverCpus: string | undefined
  clientCpus: string | undefined
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { runs: 3, only: new Set(workloads), backlog: 1_000_000, w4Events: 125_000, w2Consumers: 4, w1DurationS: 5, w1WarmupS: 1, w3DurationS: 10, profileOnly: undefined, profile: true, keepProfiles: undefined, record: false, serverCpus: undefined, clientCpus: undefined }
  const parseWorkloads = (v: string): Set<Workload> => {
    const s = new Set(v.split(',').map((x) => x.trim().toLowerCase()))
    for (const w of s) if (!(workloads as readonly string[]).includes(w)) throw new Error(`unknown workload ${w}; use ${workloads.join(', ')}`)
    return s as Set<Workload>
  }
  const count = (v: string, min: number, max: number): number => Math.min(max, Math.max(min, Math.round(Number(v.replaceAll('_', '')))))
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined]
    if (k === '--runs' && v !== undefined) args.runs = count(v, 1, 10)
    else if (k === '--only' && v !== undefined) args.only = parseWorkloads(v)
    else if (k === '--backlog' && v !== undefined) args.backlog = count(v, 1000, 10_000_000)
    else if (k === '--w4-events' && v !== undefined) args.w4Events = count(v, 1000, 10_000_000)
    else if (k === '--w2-consumers' && v !== undefined) args.w2Consumers = count(v, 1, 16)
    else if (k === '--w1-duration' && v !== undefined) args.w1DurationS = count(v, 1, 60)
    else if (k === '--w1-warmup' && v !== undefined) args.w1WarmupS = count(v, 0, 30)
    else if (k === '--w3-duration' && v !== undefined) args.w3DurationS = count(v, 1, 60)
    else if (k === '--profile' && v !== undefined) args.profileOnly = parseWorkloads(v)
    else if (k === '--no-profile') args.profile = false
    else if (k === '--keep-profiles' && v !== undefined) args.keepProfiles = v
    else if (k === '--record') args.record = true
    else if (k === '--no-record') args.record = false
    else if (k === '--server-cpus' && v !== undefined && /^[0-9,-]+$/.test(v)) args.serverCpus = v
    else if (k === '--client-cpus' && v !== undefined && /^[0-9,-]+$/.test(v)) args.clientCpus = v
    else throw new Error(`unknown argument ${a}`)
  }
  if (args.w4Events > args.backlog) args.w4Events = args.backlog
  return args
}

// ---- small helpers (as in benchmarks/consume.bench.ts) -------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a')
const fmtPct = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(0)}%` : 'n/a')
const fmtMb = (kb: number): string => (Number.isFinite(kb) ? (kb / 1024).toFixed(0) : 'n/a')
const fmtS = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')
const fmtRatio = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)

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

// ---- /proc (the same readings as benchmarks/http.bench.ts and consume.bench.ts) -------------------

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
  readonly us: number
  readonly server: number
  readonly machine: number
  readonly psi: number
}

function snap(serverPid: number): Snap {
  return { t: performance.now(), us: monotonicUs(), server: procCpuS(serverPid), machine: machineBusyS(), psi: psiCpuUs() }
}

interface Cpu {
  readonly windowS: number
  /** server CPU seconds in the window */
  readonly serverS: number
  /** % of one core */
  readonly serverPct: number
  readonly clientsPct: number
  /** everything else on the machine, % of one core */
  readonly otherPct: number
  /** share of the window in which some task waited for a CPU (PSI), % */
  readonly stallPct: number
  readonly fromUs: number
  readonly toUs: number
}

/** `clientsPct`: what the clients report of themselves (process.cpuUsage over their run). */
function cpuBetween(a: Snap, b: Snap, clientsPct: number): Cpu {
  const s = (b.t - a.t) / 1000
  const server = b.server - a.server
  return {
    windowS: s,
    serverS: server,
    serverPct: (server / s) * 100,
    clientsPct,
    otherPct: Math.max(0, ((b.machine - a.machine - server) / s) * 100 - clientsPct),
    stallPct: ((b.psi - a.psi) / 1000 / (s * 1000)) * 100,
    fromUs: a.us,
    toUs: b.us,
  }
}

/**
 * Waits (at most maxMs) until the machine is quiet: busy CPU over 500 ms, while the server under
 * test is idle, below quietPct of one core. Others share this machine; this keeps a run from
 * starting in the middle of their burst, within a bounded budget.
 */
async function waitQuiet(maxMs: number): Promise<{ pct: number; waitedMs: number }> {
  const t0 = performance.now()
  let pct = Number.NaN
  do {
    const a = machineBusyS()
    const ta = performance.now()
    await sleep(500)
    pct = ((machineBusyS() - a) / ((performance.now() - ta) / 1000)) * 100
    if (pct < quietPct) break
  } while (performance.now() - t0 < maxMs)
  return { pct, waitedMs: performance.now() - t0 }
}

/** Samples VmRSS of `pid` every 100 ms until stopped; returns the peak in kB. */
function rssSampler(pid: number): () => number {
  let peak = 0
  const take = (): void => {
    const { rss } = procMemKb(pid)
    if (rss > peak) peak = rss
  }
  take()
  const t = setInterval(take, sampleRssMs)
  return () => {
    clearInterval(t)
    take()
    return peak
  }
}

// ---- machine and versions ------------------------------------------------------------------------

interface Machine {
  cpu: string
  cores: number
  memGiB: number
  node: string
  kernel: string
  loadAvg: number[]
  tmpFreeGB: number
  tmpFs: string
}

function machineInfo(dir: string): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  } catch {
    // not Linux
  }
  const s = statfsSync(dir)
  const df = spawnSync('df', ['--output=fstype,source', dir], { encoding: 'utf8' }).stdout?.trim().split('\n')[1]?.trim().replace(/\s+/g, ' ') ?? 'unknown'
  return { cpu, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release(), loadAvg: loadavg(), tmpFreeGB: (s.bavail * s.bsize) / 1e9, tmpFs: df }
}

/** nats-server on PATH, installed from Debian if missing; exits non-zero with a clear message if that cannot be done. */
function ensureNatsServer(): string {
  const which = (): string => spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim()
  let bin = which()
  if (bin !== '') return bin
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).stdout.trim()
  if (apt === '') {
    console.error('nats-server is not installed and apt-get is not available to install it.\nInstall NATS server 2.9 or later (Debian/Ubuntu: apt-get install -y nats-server) and run again.')
    process.exit(2)
  }
  console.log('nats-server not found: apt-get install -y nats-server …')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  let r = spawnSync('apt-get', ['install', '-y', 'nats-server'], { stdio: 'inherit', env, timeout: 300_000 })
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env, timeout: 300_000 })
    r = spawnSync('apt-get', ['install', '-y', 'nats-server'], { stdio: 'inherit', env, timeout: 300_000 })
  }
  bin = which()
  if (r.status !== 0 || bin === '') {
    console.error(`apt-get install -y nats-server failed (exit ${r.status}); cannot run the comparison without nats-server.`)
    process.exit(2)
  }
  return bin
}

interface Versions {
  natsServer: string
  natsJs: string
  node: string
  sluice: { head: string; dirtySrc: number }
}

function versions(repo: string, natsBin: string): Versions {
  const ns = spawnSync(natsBin, ['--version'], { encoding: 'utf8' })
  const natsServer = `${ns.stdout}${ns.stderr}`.trim().replace(/^nats-server:\s*/, '')
  let natsJs = 'unknown'
  try {
    natsJs = (JSON.parse(readFileSync(join(repo, 'node_modules', 'nats', 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    // left unknown
  }
  const git = (a: string[]): string => spawnSync('git', a, { cwd: repo, encoding: 'utf8' }).stdout?.trim() ?? ''
  return { natsServer, natsJs, node: process.version, sluice: { head: git(['rev-parse', '--short', 'HEAD']) || 'unknown', dirtySrc: git(['status', '--porcelain', '--', 'src']).split('\n').filter((l) => l !== '').length } }
}

function amqplibVersion(repo: string): string {
  try {
    return (JSON.parse(readFileSync(join(repo, 'node_modules', 'amqplib', 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** Whether src/server.ts starts an AMQP listener (the AMQP row needs one). */
function amqpListenerPresent(repo: string): { present: boolean; why: string } {
  let text = ''
  try {
    text = readFileSync(join(repo, 'src', 'server.ts'), 'utf8')
  } catch {
    return { present: false, why: 'src/server.ts not found' }
  }
  if (/amqpListener\(/.test(text)) return { present: true, why: 'src/server.ts starts an AMQP listener (amqpListener)' }
  return { present: false, why: 'src/server.ts starts no AMQP listener (server.amqp is parsed by the config but nothing listens; src/ingest/amqp has the codec only)' }
}

// ---- child processes -----------------------------------------------------------------------------

const children = new Set<ChildProcess>()

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<number | null>
  output(): string
  /** resolves with the first output line starting with `prefix` (seen before or after the call) */
  line(prefix: string, timeoutMs: number): Promise<string>
  send(cmd: string): void
}

function startProc(cmd: string, args: readonly string[], onLine?: (line: string) => void): Proc {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error(`could not start ${cmd} ${args.join(' ')}`)
  children.add(child)
  let out = ''
  const lines: string[] = []
  const waiting: Array<{ prefix: string; resolve: (l: string) => void }> = []
  const partial = { stdout: '', stderr: '' }
  const feed = (which: 'stdout' | 'stderr', d: Buffer): void => {
    const text = d.toString('utf8')
    out += text
    if (out.length > 200_000) out = out.slice(-100_000)
    partial[which] += text
    let nl: number
    while ((nl = partial[which].indexOf('\n')) >= 0) {
      const l = partial[which].slice(0, nl)
      partial[which] = partial[which].slice(nl + 1)
      onLine?.(l)
      if (lines.length < 2000) lines.push(l)
      for (let i = waiting.length - 1; i >= 0; i--) {
        if (l.startsWith(waiting[i]!.prefix) || (waiting[i]!.prefix.startsWith('*') && l.includes(waiting[i]!.prefix.slice(1)))) {
          waiting[i]!.resolve(l)
          waiting.splice(i, 1)
        }
      }
    }
  }
  child.stdout!.on('data', (d: Buffer) => feed('stdout', d))
  child.stderr!.on('data', (d: Buffer) => feed('stderr', d))
  child.stdin!.on('error', () => undefined) // the child may be gone
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child)
      resolve(code)
    })
  })
  const matches = (l: string, prefix: string): boolean => l.startsWith(prefix) || (prefix.startsWith('*') && l.includes(prefix.slice(1)))
  const line = (prefix: string, timeoutMs: number): Promise<string> => {
    const seen = lines.find((l) => matches(l, prefix))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "${prefix}" line from ${cmd} ${args[0] ?? ''} in ${timeoutMs} ms:\n${out.slice(-3000)}`)), timeoutMs)
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
        reject(new Error(`${cmd} ${args[0] ?? ''} exited (${code}) before "${prefix}":\n${out.slice(-3000)}`))
      })
    })
  }
  const send = (c: string): void => {
    if (child.exitCode === null && child.stdin!.writable) child.stdin!.write(`${c}\n`)
  }
  return { child, pid: child.pid, exited, output: () => out, line, send }
}

async function stopProc(p: Proc, timeoutMs = 20_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode
  p.child.kill(signal)
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  const code = await p.exited
  clearTimeout(t)
  return code
}

/**
 * Copies dist/ into the temp dir and runs every node child from there, beside package.json and a
 * symlink to node_modules (as benchmarks/http.bench.ts does): others rebuilding dist/ during the
 * run cannot change the code measured halfway through.
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

/** Set from --server-cpus / --client-cpus: every process of that side starts under `taskset -c`. */
const pinning: { server: string | undefined; client: string | undefined } = { server: undefined, client: undefined }

/** The command line, under taskset when that side is pinned (taskset execs it: the pid is the program's). */
function pinned(side: 'server' | 'client', cmd: string, args: readonly string[]): [string, string[]] {
  const cpus = pinning[side]
  return cpus === undefined ? [cmd, [...args]] : ['taskset', ['-c', cpus, cmd, ...args]]
}

function startClient(code: string, spec: ClientSpec): Proc {
  return startProc(...pinned('client', process.execPath, [join(code, 'dist', 'benchmarks', 'compare-client.js'), JSON.stringify(spec)]))
}

async function clientResult<T>(p: Proc, timeoutMs: number): Promise<T> {
  const killer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  const code = await p.exited
  clearTimeout(killer)
  const m = /^RESULT (.*)$/m.exec(p.output())
  if (code !== 0 || m === null) throw new Error(`client failed (exit ${code}):\n${p.output().slice(-3000)}`)
  return JSON.parse(m[1]!) as T
}

// ---- servers -------------------------------------------------------------------------------------

interface Server {
  readonly system: System
  readonly proc: Proc
  /** what clients connect to */
  readonly url: string
  /** Sluice only, when its AMQP door is on: amqp://guest:guest@127.0.0.1:PORT */
  readonly amqpUrl?: string
  /** JetStream only: the harness's own admin connection (stream and consumer set-up, checks) */
  readonly nc?: NatsConnection
  readonly jsm?: JetStreamManager
  readonly startMs: number
}

const jsStreams = { pub: 'PUB', backlog: 'BACKLOG', live: 'LIVE' } as const

async function startJetStream(natsBin: string, storeDir: string): Promise<Server> {
  const t0 = performance.now()
  const port = await freePort()
  mkdirSync(storeDir, { recursive: true })
  // -js: JetStream with its defaults (file store; R1 on a single server); -sd: the store; -a: loopback only.
  const proc = startProc(...pinned('server', natsBin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port), '-n', 'sluice-compare']))
  await proc.line('*Server is ready', 60_000)
  const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, name: 'sluice-compare-admin' })
  const jsm = await nc.jetstreamManager()
  for (const [subject, name] of Object.entries(jsStreams)) {
    try {
      await jsm.streams.info(name)
    } catch {
      await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, num_replicas: 1, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, max_msgs: -1, max_bytes: -1 })
    }
  }
  return { system: 'jetstream', proc, url: `nats://127.0.0.1:${port}`, nc, jsm, startMs: performance.now() - t0 }
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
function writeSluiceConfig(repo: string, root: string, dataDir: string, port: number, name: string, amqpPort: number | undefined): string {
  const template = readFileSync(join(repo, 'benchmarks', 'configs', 'compare.yaml'), 'utf8')
  let text = template.replaceAll('${SLUICE_BENCH_DATA_DIR}', JSON.stringify(dataDir)).replaceAll('"${SLUICE_BENCH_HTTP_PORT:-17600}"', String(port))
  if (amqpPort !== undefined) {
    const line = /^(\s*)amqp: \{ enabled: false \}/m
    if (!line.test(text)) throw new Error('benchmarks/configs/compare.yaml: expected a line `amqp: { enabled: false }` under server')
    text = text.replace(line, `$1amqp: { host: 127.0.0.1, port: ${amqpPort} }`)
  }
  parseConfig(text, { env: {} }) // throws with every problem listed
  const file = join(root, `${name}.yaml`)
  writeFileSync(file, text)
  return file
}

async function startSluice(repo: string, code: string, root: string, dataDir: string, name: string, withAmqp: boolean, nodeArgs: readonly string[] = []): Promise<Server> {
  const t0 = performance.now()
  const port = await freePort()
  const amqpPort = withAmqp ? await freePort() : undefined
  const config = writeSluiceConfig(repo, root, dataDir, port, name, amqpPort)
  const proc = startProc(...pinned('server', process.execPath, [...nodeArgs, join(code, 'dist', 'src', 'cli.js'), 'serve', '--config', config]))
  const url = `http://127.0.0.1:${port}`
  await waitReady(proc, `${url}/readyz`)
  return { system: 'sluice', proc, url, ...(amqpPort !== undefined ? { amqpUrl: `amqp://guest:guest@127.0.0.1:${amqpPort}` } : {}), startMs: performance.now() - t0 }
}

/** Sluice stops cleanly on SIGTERM; nats-server shuts down the same way on either, but exits 0 only on SIGINT. */
async function stopServer(s: Server): Promise<number | null> {
  if (s.nc !== undefined) await s.nc.close().catch(() => undefined)
  return stopProc(s.proc, 20_000, s.system === 'jetstream' ? 'SIGINT' : 'SIGTERM')
}

function assertAlive(s: Server): void {
  if (s.proc.child.exitCode !== null || s.proc.child.signalCode !== null) throw new Error(`${sysName(s.system)} (pid ${s.proc.pid}) exited during the run (code ${s.proc.child.exitCode}, signal ${s.proc.child.signalCode}):\n${s.proc.output().slice(-5000)}`)
}

async function api<T>(base: string, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  })
  return { status: res.status, json: (await res.json()) as T }
}

interface GroupStatsWire {
  cursor: number
  backlog: number
  inFlight: number
  acked: number
  redelivered: number
}

/** A consumer group (Sluice) or durable pull consumer (JetStream) on `stream`. */
async function declareConsumer(s: Server, stream: keyof typeof jsStreams, name: string, members: number, start: 'earliest' | 'latest'): Promise<void> {
  if (s.system === 'jetstream') {
    await s.jsm!.consumers.add(jsStreams[stream], {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: start === 'earliest' ? DeliverPolicy.All : DeliverPolicy.New,
      max_ack_pending: prefetch * members,
      ack_wait: nanos(30_000),
      max_deliver: -1,
    })
  } else {
    const r = await api<unknown>(s.url, 'PUT', `/v1/groups/${encodeURIComponent(name)}`, { stream, prefetch, start })
    if (r.status !== 201 && r.status !== 200) throw new Error(`declaring group ${name} answered ${r.status}: ${JSON.stringify(r.json)}`)
    if (r.status === 200) {
      const rr = await api<unknown>(s.url, 'POST', `/v1/groups/${encodeURIComponent(name)}/reset`, { to: start })
      if (rr.status !== 200) throw new Error(`resetting group ${name} answered ${rr.status}: ${JSON.stringify(rr.json)}`)
    }
  }
}

/** Checks that `expectedAcked` events (from the start) are settled and nothing is in flight; JetStream consumers are deleted after. */
async function checkConsumer(s: Server, stream: keyof typeof jsStreams, name: string, expectedAcked: number): Promise<string[]> {
  const problems: string[] = []
  if (s.system === 'jetstream') {
    // Acks are fire-and-forget: give the server a moment to have applied the last ones.
    let info = await s.jsm!.consumers.info(jsStreams[stream], name)
    for (let i = 0; i < 50 && (info.num_ack_pending > 0 || info.ack_floor.stream_seq < expectedAcked); i++) {
      await sleep(100)
      info = await s.jsm!.consumers.info(jsStreams[stream], name)
    }
    if (info.num_ack_pending !== 0 || info.ack_floor.stream_seq < expectedAcked || info.num_redelivered > 0) {
      problems.push(`consumer ${name}: ack floor ${info.ack_floor.stream_seq} (expected ≥ ${expectedAcked}), ack pending ${info.num_ack_pending}, redelivered ${info.num_redelivered}; delivered ${info.delivered.stream_seq}, pending ${info.num_pending}, waiting pulls ${info.num_waiting}`)
    }
    await s.jsm!.consumers.delete(jsStreams[stream], name)
  } else {
    const r = await api<GroupStatsWire>(s.url, 'GET', `/v1/groups/${encodeURIComponent(name)}`)
    const st = r.json
    if (r.status !== 200 || st.cursor < expectedAcked || st.inFlight !== 0 || st.redelivered > 0) problems.push(`group ${name}: cursor ${st.cursor} (expected ≥ ${expectedAcked}), in flight ${st.inFlight}, redelivered ${st.redelivered}`)
  }
  return problems
}

// ---- prefill -------------------------------------------------------------------------------------

/**
 * Writes `count` events into <dataDir>/streams/<stream> with the log API, as an HTTP publish to
 * exchange `bench` with routing key `backlog` would store them, in appends of 1,000 (16 in
 * flight), fsync never, then closes the log cleanly (which syncs it). Only before the server
 * starts: the log has one writer. (The same as benchmarks/consume.bench.ts.)
 */
async function prefillSluice(dataDir: string, stream: string, count: number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now()
  const log = await openLog(join(dataDir, 'streams', stream), { fsync: 'never' })
  const pool = Array.from({ length: 4096 }, (_, i) => Buffer.from(eventLine(i)))
  const inflight = new Set<Promise<void>>()
  for (let i = 0; i < count; ) {
    const n = Math.min(1000, count - i)
    const timestamp = Date.now()
    const records = new Array<AppendRecord>(n)
    for (let j = 0; j < n; j++) records[j] = { timestamp, key: 'backlog', body: pool[(i + j) % pool.length]!, json: true, exchange: 'bench' }
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
  return { ms: performance.now() - t0, bytes }
}

async function prefillJetStream(code: string, s: Server, count: number): Promise<PrefillResult> {
  const info = await s.jsm!.streams.info(jsStreams.backlog)
  if (info.state.messages >= count) return { mode: 'prefill', confirmed: 0, failed: 0, seconds: 0, eventsPerSec: 0 }
  if (info.state.messages > 0) await s.jsm!.streams.purge(jsStreams.backlog)
  const spec: ClientSpec = { mode: 'prefill', system: 'jetstream', url: s.url, subject: 'backlog', events: count, window: jsPrefillWindow, maxSeconds: 240 }
  const p = startClient(code, spec)
  try {
    await p.line('READY', 30_000)
    p.send('go')
    const r = await clientResult<PrefillResult>(p, 330_000)
    let after = await s.jsm!.streams.info(jsStreams.backlog)
    for (let i = 0; i < 300 && after.state.messages < count; i++) {
      await sleep(100)
      after = await s.jsm!.streams.info(jsStreams.backlog)
    }
    if (after.state.messages !== count) throw new Error(`JetStream prefill: the stream holds ${after.state.messages} messages, not ${count} (${r.confirmed} published)`)
    return r
  } finally {
    if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

// ---- workloads -----------------------------------------------------------------------------------

interface Run {
  readonly workload: Workload
  readonly system: System
  readonly round: number
  /** W1 events/s, W2 events/s, W3 p99 ms, W4 deliveries/s */
  readonly value: number
  readonly p50?: number
  readonly events: number
  readonly cpu: Cpu
  readonly rssPeakKb: number
  readonly problems: readonly string[]
  readonly detail: Readonly<Record<string, unknown>>
}

interface Ctx {
  readonly code: string
  readonly args: Args
  /** whether Sluice has an AMQP door to measure (the overAmqp workloads) */
  readonly amqp: boolean
}

/**
 * W1 from `procs` publisher processes sharing the window (procs 1: the target row; 2: w1x2);
 * `amqp`: Sluice over AMQP (w1amqp); `lean`: each side's leanest publisher (w1lean; Sluice's over AMQP).
 */
async function runW1(ctx: Ctx, s: Server, round: number, procs = 1, door: 'native' | 'amqp' | 'lean' = 'native'): Promise<Run> {
  const { args } = ctx
  if (door !== 'native' && s.system === 'sluice' && s.amqpUrl === undefined) throw new Error(`W1 ${door === 'lean' ? 'lean' : 'over AMQP'} needs a Sluice server with its AMQP door on`)
  const spec: PublishSpec = {
    mode: 'publish',
    system: s.system,
    url: s.url,
    ...(door !== 'native' && s.amqpUrl !== undefined ? { amqpUrl: s.amqpUrl } : {}),
    ...(door === 'lean' ? { lean: true } : {}),
    subject: 'pub',
    window: w1Window / procs,
    batch: s.system === 'sluice' && door === 'native' ? w1SluiceBatch : 1,
    warmupS: args.w1WarmupS,
    durationS: args.w1DurationS,
    maxSeconds: args.w1DurationS,
  }
  const ps = Array.from({ length: procs }, () => startClient(ctx.code, spec))
  try {
    await Promise.all(ps.map((p) => p.line('READY', 30_000))).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${sysName(s.system)} server output (last 3,000 characters):\n${s.proc.output().slice(-3000)}`)
    })
    const stopRss = rssSampler(s.proc.pid)
    for (const p of ps) p.send('go')
    await Promise.all(ps.map((p) => p.line('MEASURE', (args.w1WarmupS + 30) * 1000)))
    const s0 = snap(s.proc.pid)
    await Promise.race(ps.map((p) => p.line('END', (args.w1DurationS + 30) * 1000)))
    const s1 = snap(s.proc.pid)
    const rssPeakKb = stopRss()
    const rs = await Promise.all(ps.map((p) => clientResult<PublishResult>(p, 60_000)))
    assertAlive(s)
    const failed = rs.reduce((a, r) => a + r.failed, 0)
    const problems = failed > 0 ? [`${failed} publishes failed`] : []
    const value = rs.reduce((a, r) => a + r.eventsPerSec, 0)
    const events = rs.reduce((a, r) => a + r.confirmedEvents, 0)
    const confirmMs = { p50: spread(rs.map((r) => r.confirmMs.p50)).median, p99: Math.max(...rs.map((r) => r.confirmMs.p99)) }
    return { workload: door === 'amqp' ? 'w1amqp' : door === 'lean' ? 'w1lean' : procs === 1 ? 'w1' : 'w1x2', system: s.system, round, value, events, cpu: cpuBetween(s0, s1, rs.reduce((a, r) => a + r.cpuPct, 0)), rssPeakKb, problems, detail: { procs, confirmMs, publishers: rs } }
  } finally {
    for (const p of ps) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

/** W2 (one consumer shared by `members` processes, until empty) and W4 (`w4Consumers` consumers, one process each, `limit` events each). */
async function runDrainWorkload(ctx: Ctx, s: Server, workload: 'w2' | 'w2x1' | 'w2lean' | 'w4' | 'w4lean', round: number, tag = ''): Promise<Run> {
  const { args } = ctx
  const lean = leanDrains.has(workload)
  if (lean && s.system === 'sluice' && s.amqpUrl === undefined) throw new Error('a lean drain needs a Sluice server with its AMQP door on')
  const names = workload === 'w4' || workload === 'w4lean' ? Array.from({ length: w4Consumers }, (_, i) => `${tag}${workload}-r${round}-${String.fromCharCode(97 + i)}`) : [`${tag}${workload}-r${round}`]
  const membersPer = workload === 'w2' ? args.w2Consumers : 1
  // w2: until the backlog is empty; w2x1: the first half of it; w4: the first w4Events each
  const limit = workload === 'w2' || workload === 'w2lean' ? 0 : workload === 'w2x1' ? Math.floor(args.backlog / 2) : args.w4Events
  const each = limit === 0 ? args.backlog : limit
  for (const n of names) await declareConsumer(s, 'backlog', n, membersPer, 'earliest')
  const maxSeconds = 90
  const specs: DrainSpec[] = []
  for (const n of names) for (let i = 0; i < membersPer; i++) specs.push({ mode: 'drain', system: s.system, url: s.url, target: n, stream: jsStreams.backlog, consumer: `${n}-c${i + 1}`, max: fetchMax, limit, maxSeconds, ...(lean ? { lean, ...(s.amqpUrl !== undefined ? { amqpUrl: s.amqpUrl } : {}) } : {}) })
  const procs = specs.map((spec) => startClient(ctx.code, spec))
  try {
    await Promise.all(procs.map((p) => p.line('READY', 30_000)))
    const stopRss = rssSampler(s.proc.pid)
    const s0 = snap(s.proc.pid)
    for (const p of procs) p.send('go')
    await Promise.all(procs.map((p) => p.line('RESULT', (maxSeconds + 60) * 1000)))
    const s1 = snap(s.proc.pid)
    const rssPeakKb = stopRss()
    const results = await Promise.all(procs.map((p) => clientResult<DrainResult>(p, 30_000)))
    assertAlive(s)
    const acked = results.reduce((a, r) => a + r.acked, 0)
    const first = Math.min(...results.map((r) => r.firstFetchAt))
    const last = Math.max(...results.filter((r) => Number.isFinite(r.lastAckAt)).map((r) => r.lastAckAt))
    const windowS = (last - first) / 1000
    const expected = each * names.length
    const problems: string[] = []
    for (const r of results) {
      if (r.stoppedBy !== (limit === 0 ? 'empty' : 'limit')) problems.push(`${r.consumer}: stopped by ${r.stoppedBy}`)
      if (r.ackFailed > 0) problems.push(`${r.consumer}: ${r.ackFailed} acks failed`)
      if (r.errors > 0) problems.push(`${r.consumer}: ${r.errors} errors`)
      if (r.redelivered > 0) problems.push(`${r.consumer}: ${r.redelivered} redeliveries`)
      if (limit > 0 && r.maxSeq !== (s.system === 'jetstream' ? limit : limit - 1)) problems.push(`${r.consumer}: highest acked ${s.system === 'jetstream' ? 'sequence' : 'offset'} ${r.maxSeq}`)
    }
    if (acked !== expected) problems.push(`acked ${acked} of ${expected}`)
    for (const n of names) problems.push(...(await checkConsumer(s, 'backlog', n, each)))
    const cpu = cpuBetween(s0, s1, results.reduce((a, r) => a + r.cpuPct, 0))
    return {
      workload,
      system: s.system,
      round,
      value: acked / windowS,
      events: acked,
      cpu,
      rssPeakKb,
      problems,
      detail: { windowS, acked, expected, consumers: results.map((r) => ({ consumer: r.consumer, acked: r.acked, maxSeq: r.maxSeq, runsPerBatch: r.runsPerBatch, fetches: r.fetches, emptyFetches: r.emptyFetches, cpuPct: r.cpuPct, stoppedBy: r.stoppedBy })) },
    }
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

async function runW3(ctx: Ctx, s: Server, round: number, tag = ''): Promise<Run> {
  const { args } = ctx
  const name = s.system === 'sluice' ? `${tag}w3` : `${tag}w3-r${round}`
  await declareConsumer(s, 'live', name, 1, 'latest')
  const fspec: FollowSpec = { mode: 'follow', system: s.system, url: s.url, target: name, stream: jsStreams.live, consumer: `c-r${round}`, max: fetchMax, maxSeconds: w3WarmupS + args.w3DurationS + 30 }
  const rspec: RateSpec = { mode: 'rate', system: s.system, url: s.url, subject: 'live', eventsPerTick: w3EventsPerTick, intervalMs: w3IntervalMs, warmupS: w3WarmupS, durationS: args.w3DurationS, maxSeconds: args.w3DurationS }
  const fol = startClient(ctx.code, fspec)
  const pub = startClient(ctx.code, rspec)
  try {
    await Promise.all([fol.line('READY', 30_000), pub.line('READY', 30_000)])
    fol.send('go')
    await sleep(200) // the consumer's first pull is waiting before the first publish
    const stopRss = rssSampler(s.proc.pid)
    pub.send('go')
    await pub.line('MEASURE', (w3WarmupS + 30) * 1000)
    const s0 = snap(s.proc.pid)
    await pub.line('END', (args.w3DurationS + 30) * 1000)
    const s1 = snap(s.proc.pid)
    const rssPeakKb = stopRss()
    const publisher = await clientResult<RateResult>(pub, 60_000)
    await sleep(500) // the last events reach the consumer
    fol.send('stop')
    const follower = await clientResult<FollowResult>(fol, 30_000)
    assertAlive(s)
    const missing = publisher.measuredEvents - follower.measuredReceived
    const problems: string[] = []
    if (missing !== 0) problems.push(`${missing} measured events not received`)
    if (publisher.failed > 0) problems.push(`${publisher.failed} publishes failed`)
    if (follower.ackFailed > 0) problems.push(`${follower.ackFailed} acks failed`)
    if (follower.redelivered > 0) problems.push(`${follower.redelivered} redelivered`)
    if (s.system === 'jetstream') await s.jsm!.consumers.delete(jsStreams.live, name)
    const e = follower.e2eMs
    return {
      workload: 'w3',
      system: s.system,
      round,
      value: e.p99,
      p50: e.p50,
      events: follower.measuredReceived,
      cpu: cpuBetween(s0, s1, publisher.cpuPct + follower.cpuPct),
      rssPeakKb,
      problems,
      detail: { e2eMs: e, publishRate: publisher.eventsPerSec, confirmMs: publisher.confirmMs, senderLateMs: publisher.lateMs, clockSkewMs: follower.clockSkewMs, publisherCpuPct: publisher.cpuPct, followerCpuPct: follower.cpuPct },
    }
  } finally {
    for (const p of [fol, pub]) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

/** One run of workload `w`; `tag` prefixes the consumer names of W2–W4 (the profile runs'). */
function runWorkload(ctx: Ctx, s: Server, w: Workload, round: number, tag = ''): Promise<Run> {
  if (w === 'w1') return runW1(ctx, s, round)
  if (w === 'w1x2') return runW1(ctx, s, round, 2)
  if (w === 'w1amqp') return runW1(ctx, s, round, 1, 'amqp')
  if (w === 'w1lean') return runW1(ctx, s, round, 1, 'lean')
  if (w === 'w3') return runW3(ctx, s, round, tag)
  return runDrainWorkload(ctx, s, w, round, tag)
}

function runLine(r: Run): string {
  const c = r.cpu
  const head = `${r.workload}/${sysName(r.system).padEnd(9)} round ${r.round}: `
  let what: string
  if (r.workload === 'w1' || r.workload === 'w1x2' || r.workload === 'w1amqp' || r.workload === 'w1lean') what = `${fmtInt(r.value).padStart(9)} events/s confirmed (${fmtInt(r.events)} in ${fmtS(c.windowS)} s; confirm p50 ${fmtMs((r.detail['confirmMs'] as { p50: number }).p50)} p99 ${fmtMs((r.detail['confirmMs'] as { p99: number }).p99)} ms per ${r.system === 'sluice' && (r.workload === 'w1' || r.workload === 'w1x2') ? `${w1SluiceBatch}-event request` : 'event'})`
  else if (r.workload === 'w3') what = `publish→delivery p50 ${fmtMs(r.p50 ?? Number.NaN)} p99 ${fmtMs(r.value)} max ${fmtMs((r.detail['e2eMs'] as { max: number }).max)} ms (${fmtInt(r.events)} events, publish ${fmtInt(r.detail['publishRate'] as number)}/s)`
  else what = `${fmtInt(r.value).padStart(9)} ${r.workload === 'w4' || r.workload === 'w4lean' ? 'deliveries' : 'events'}/s acked (${fmtInt(r.events)} in ${fmtS(r.detail['windowS'] as number)} s; offset runs per fetch ${spread((r.detail['consumers'] as Array<{ runsPerBatch: number }>).map((c) => c.runsPerBatch)).median.toFixed(1)})`
  return (
    `${head}${what}  server CPU ${fmtS(c.serverS)} s (${fmtPct(c.serverPct)}), clients ${fmtPct(c.clientsPct)}, other ${fmtPct(c.otherPct)}, stall ${fmtPct(c.stallPct)}, server RSS peak ${fmtMb(r.rssPeakKb)} MB` +
    (r.problems.length > 0 ? `\n    PROBLEMS: ${r.problems.join('; ')}` : '')
  )
}

// ---- summary -------------------------------------------------------------------------------------

/** A summary row as recorded in compare.jsonl (`kind: summary`); benchmarks/summary.ts reads it. */
export interface Row {
  readonly workload: Workload
  readonly label: string
  readonly unit: string
  readonly js: Spread
  readonly sl: Spread
  /** Sluice ÷ JetStream of the medians */
  readonly ratio: number
  readonly target: string
  /** undefined: a row beside the targets */
  readonly pass: boolean | undefined
  readonly higherIsBetter: boolean
  readonly jsCpuS: Spread
  readonly slCpuS: Spread
  readonly jsCpuUsPerEvent: number
  readonly slCpuUsPerEvent: number
  readonly jsRssKb: number
  readonly slRssKb: number
  readonly extra: string
  readonly problems: number
}

function buildRows(args: Args, runs: readonly Run[]): Row[] {
  const rows: Row[] = []
  const pick = (w: Workload, sys: System): Run[] => runs.filter((r) => r.workload === w && r.system === sys)
  for (const w of workloads) {
    // JetStream has no AMQP door: Sluice's AMQP publish is held against JetStream's W1.
    const jr = pick(w === 'w1amqp' ? 'w1' : w, 'jetstream')
    const sr = pick(w, 'sluice')
    if (jr.length === 0 || sr.length === 0) continue
    const js = spread(jr.map((r) => r.value))
    const sl = spread(sr.map((r) => r.value))
    const higherIsBetter = w !== 'w3'
    const ratio = sl.median / js.median
    const problems = [...jr, ...sr].reduce((a, r) => a + r.problems.length, 0)
    const met = (higherIsBetter ? ratio >= (ratioWanted[w] ?? 1) : sl.median <= js.median) && sr.every((r) => r.problems.length === 0)
    const pass = besideTargets.has(w) ? undefined : met
    const usPerEvent = (rs: Run[]): number => spread(rs.map((r) => (r.cpu.serverS / r.events) * 1e6)).median
    const rss = (rs: Run[]): number => Math.max(...rs.map((r) => r.rssPeakKb))
    const labels: Record<Workload, [string, string, string]> = {
      w1: [`W1 durable publish, ≤${fmtInt(w1Window)} unconfirmed, 1 publisher process`, 'confirmed events/s', 'ratio ≥ 1.00'],
      w1amqp: [`W1 into Sluice over AMQP 0-9-1 (amqplib confirm channel, ≤${fmtInt(w1Window)} unconfirmed) vs JetStream's W1`, 'confirmed events/s', 'ratio ≥ 1.00'],
      w1lean: [`W1 lean publishers, 1 process, ≤${fmtInt(w1Window)} unconfirmed: JetStream PUB + PubAck on the text protocol vs Sluice AMQP confirm mode (pre-encoded frames, ack multiple)`, 'confirmed events/s', 'ratio ≥ 2.00'],
      w1x2: [`W1 with 2 publisher processes, ≤${fmtInt(w1Window / 2)} unconfirmed each`, 'confirmed events/s', '(no target: shows how far the client limits W1)'],
      w2: [`W2 consume + ack, ${fmtInt(args.backlog)} backlog, ${args.w2Consumers} consumer process${args.w2Consumers === 1 ? '' : 'es'}`, 'acked events/s', 'ratio ≥ 1.00'],
      w2x1: [`W2 with 1 consumer process (first ${fmtInt(Math.floor(args.backlog / 2))})`, 'acked events/s', '(no target: the same server work without 4 client processes on 2 cores)'],
      w3: [`W3 publish→delivery at ${fmtInt((w3EventsPerTick * 1000) / w3IntervalMs)}/s, p99`, 'ms', 'Sluice p99 ≤ JetStream p99'],
      w4: [`W4 fan-out, ${w4Consumers} consumers × ${fmtInt(args.w4Events)}`, 'acked deliveries/s (total)', 'ratio ≥ 1.00'],
      w2lean: [`W2 lean clients, 1 process: JetStream pull (2 × ${fmtInt(fetchMax / 2)} in flight, +ACK each) vs Sluice AMQP (qos ${fmtInt(fetchMax)}, ack multiple every ${fmtInt(fetchMax / 2)})`, 'acked events/s', 'ratio ≥ 1.50'],
      w4lean: [`W4 fan-out with the lean clients, ${w4Consumers} × ${fmtInt(args.w4Events)}`, 'acked deliveries/s (total)', 'ratio ≥ 1.00'],
    }
    const [label, unit, target] = labels[w]
    let extra = ''
    if (w === 'w3') extra = `p50: JetStream ${fmtSpread(spread(jr.map((r) => r.p50 ?? Number.NaN)), fmtMs)} ms, Sluice ${fmtSpread(spread(sr.map((r) => r.p50 ?? Number.NaN)), fmtMs)} ms`
    rows.push({
      workload: w,
      label,
      unit,
      js,
      sl,
      ratio,
      target,
      pass,
      higherIsBetter,
      jsCpuS: spread(jr.map((r) => r.cpu.serverS)),
      slCpuS: spread(sr.map((r) => r.cpu.serverS)),
      jsCpuUsPerEvent: usPerEvent(jr),
      slCpuUsPerEvent: usPerEvent(sr),
      jsRssKb: rss(jr),
      slRssKb: rss(sr),
      extra,
      problems,
    })
  }
  return rows
}

function formatTable(rows: readonly Row[]): string {
  const out = [
    '| Workload | Unit | JetStream median (min–max) | Sluice median (min–max) | Sluice ÷ JetStream | Target | Result |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    const f = r.workload === 'w3' ? fmtMs : fmtInt
    out.push(`| ${r.label} | ${r.unit} | ${fmtSpread(r.js, f)} | ${fmtSpread(r.sl, f)} | ${fmtRatio(r.ratio)} | ${r.target} | ${r.pass === undefined ? '–' : r.pass ? 'PASS' : 'MISS'}${r.problems > 0 ? ` (${r.problems} problem(s) in the runs)` : ''} |`)
  }
  return out.join('\n')
}

function formatResources(rows: readonly Row[], serverTotals: readonly ServerTotal[]): string {
  const out = [
    '| Workload | JetStream server CPU s (median) | Sluice server CPU s (median) | JetStream CPU µs/event | Sluice CPU µs/event | JetStream peak RSS MB | Sluice peak RSS MB |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    out.push(`| ${r.label} | ${fmtSpread(r.jsCpuS, fmtS)} | ${fmtSpread(r.slCpuS, fmtS)} | ${r.jsCpuUsPerEvent.toFixed(1)} | ${r.slCpuUsPerEvent.toFixed(1)} | ${fmtMb(r.jsRssKb)} | ${fmtMb(r.slRssKb)} |`)
  }
  for (const sys of systems) {
    const t = serverTotals.filter((x) => x.system === sys)
    if (t.length === 0) continue
    out.push(
      `| Whole round (start to stop), ${sysName(sys)} | ${sys === 'jetstream' ? fmtSpread(spread(t.map((x) => x.cpuS)), fmtS) : ''} | ${sys === 'sluice' ? fmtSpread(spread(t.map((x) => x.cpuS)), fmtS) : ''} | | | ${sys === 'jetstream' ? `VmHWM ${fmtMb(Math.max(...t.map((x) => x.hwmKb)))}` : ''} | ${sys === 'sluice' ? `VmHWM ${fmtMb(Math.max(...t.map((x) => x.hwmKb)))}` : ''} |`,
    )
  }
  return out.join('\n')
}

interface ServerTotal {
  readonly system: System
  readonly round: number
  readonly startMs: number
  readonly cpuS: number
  readonly hwmKb: number
  readonly exitCode: number | null
}

interface ProfileOut {
  readonly workload: Workload
  readonly what: string
  readonly summary: ProfileSummary
  readonly text: string
}

/** Hand-written notes below this line in the section survive a rewrite of the section. */
const notesMarker = '<!-- bench:compare notes: everything below is kept when the script rewrites this section -->'

/**
 * Replaces this script's section of RESULTS.md (from its title to the next `## `), or appends it.
 * The other sections are kept as they are, and so are the notes after `notesMarker` in this one.
 */
function writeResultsSection(file: string, section: string): void {
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n'
  const start = old.indexOf(sectionTitle)
  let text: string
  if (start < 0) text = `${old.replace(/\n*$/, '')}\n\n${section.trim()}\n`
  else {
    const next = old.indexOf('\n## ', start + sectionTitle.length)
    const mine = old.slice(start, next < 0 ? undefined : next)
    const m = mine.indexOf(notesMarker)
    const notes = m < 0 ? '' : `\n\n${mine.slice(m).trim()}`
    text = `${old.slice(0, start)}${section.trim()}${notes}\n${next < 0 ? '' : old.slice(next)}`
  }
  writeFileSync(file, text)
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  pinning.server = args.serverCpus
  pinning.client = args.clientCpus
  const repo = findRepoRoot()
  const natsBin = ensureNatsServer()
  const root = mkdtempSync(join(tmpdir(), 'sluice-bench-compare-'))
  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    for (const c of children) c.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  }
  const onSignal = (sig: string): void => {
    console.error(`\n${sig}: stopping the servers and clients, removing ${root}`)
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanup)

  const resultsFile = join(resultsDir(args.record), 'compare.jsonl')
  const runId = new Date().toISOString()
  const record = (obj: object): void => {
    appendFileSync(resultsFile, `${JSON.stringify({ bench: 'compare', runId, ...obj })}\n`)
  }
  const tStart = performance.now()
  const elapsedS = (): number => (performance.now() - tStart) / 1000
  const servers: Server[] = []

  try {
    const code = snapshotBuild(repo, root)
    const machine = machineInfo(root)
    const v = versions(repo, natsBin)
    const amqp = amqpListenerPresent(repo)
    const ctx: Ctx = { code, args, amqp: amqp.present && [...args.only, ...(args.profileOnly ?? [])].some((w) => overAmqp.has(w)) }
    const sample = eventLine(0)
    console.log(`# Sluice vs NATS JetStream  ${runId}`)
    console.log(`CPU      ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB RAM; kernel ${machine.kernel}`)
    console.log(`Disk     temp dir ${root} on ${machine.tmpFs}, ${machine.tmpFreeGB.toFixed(0)} GB free`)
    console.log(`Load     ${machine.loadAvg.map((l) => l.toFixed(2)).join(' ')} (1/5/15 min) at start${machine.loadAvg[0]! > machine.cores / 2 ? ': the machine is busy, figures will be noisy' : ''}`)
    console.log(`Versions nats-server ${v.natsServer}, nats.js ${v.natsJs}, Node ${v.node}; Sluice ${v.sluice.head}${v.sluice.dirtySrc > 0 ? ` + ${v.sluice.dirtySrc} uncommitted file(s) under src/` : ''}`)
    console.log(`Events   ${eventBytes} B JSON, e.g. ${sample.slice(0, 72)}…`)
    console.log('Durable  JetStream: file store, R1, default sync (2.9.x fsyncs its files every 2 minutes, not before a PubAck; the sync_interval option does not exist before 2.10).')
    console.log('         Sluice: fsync batch, interval 5ms: every confirm (and every ack answer) waits for an fdatasync.')
    console.log(`Scale    ${args.runs} rounds (one server at a time, order alternating); W1 ${args.w1WarmupS} s warm-up + ${args.w1DurationS} s; W2 ${fmtInt(args.backlog)}-event backlog, ${args.w2Consumers} processes; W3 ${w3WarmupS} s + ${args.w3DurationS} s; W4 ${w4Consumers} × ${fmtInt(args.w4Events)} events`)
    if (args.serverCpus !== undefined || args.clientCpus !== undefined) console.log(`Pinned   servers on CPUs ${args.serverCpus ?? "any"}, clients on CPUs ${args.clientCpus ?? "any"} (taskset -c)`)
    console.log(`AMQP     ${amqp.present ? (ctx.amqp ? `${amqp.why}: Sluice over AMQP 0-9-1 in ${workloads.filter((w) => overAmqp.has(w) && (args.only.has(w) || args.profileOnly?.has(w) === true)).join(', ')} (w1amqp: amqplib ${amqplibVersion(repo)}, confirm channel; the lean rows: frames by hand)` : 'not run (--only)') : `row skipped: ${amqp.why}`}`)
    console.log('RabbitMQ third column not run (optional; skipped to keep the run under 15 minutes)')
    console.log('')
    record({ kind: 'machine', ...machine, versions: v, amqp, args: { ...args, only: [...args.only], profileOnly: args.profileOnly === undefined ? undefined : [...args.profileOnly] } })

    const jsStore = join(root, 'js-store')
    const slData = join(root, 'sluice-data')
    const drains: readonly Workload[] = ['w2', 'w2x1', 'w2lean', 'w4', 'w4lean']
    const needBacklog = drains.some((w) => args.only.has(w) || args.profileOnly?.has(w) === true)
    if (needBacklog) {
      const pf = await prefillSluice(slData, 'backlog', args.backlog)
      console.log(`Prefill  Sluice: ${fmtInt(args.backlog)} events (${(pf.bytes / 1e6).toFixed(0)} MB) written with the log API in ${(pf.ms / 1000).toFixed(1)} s, before the server starts`)
      record({ kind: 'prefill', system: 'sluice', events: args.backlog, ...pf })
    }
    let jsPrefilled = !needBacklog

    const runs: Run[] = []
    const serverTotals: ServerTotal[] = []
    let quietSpentMs = 0
    if (args.profileOnly === undefined) {
      let roundS = 0
      for (let round = 1; round <= args.runs; round++) {
        if (round > 1 && elapsedS() + roundS > roundsBudgetS) {
          console.log(`Rounds ${round}–${args.runs} skipped: ${elapsedS().toFixed(0)} s elapsed and a round takes about ${roundS.toFixed(0)} s; the whole run must stay under 15 minutes\n`)
          record({ kind: 'skipped-rounds', from: round, to: args.runs, elapsedS: elapsedS(), roundS })
          break
        }
        const roundT0 = elapsedS()
        const order: System[] = round % 2 === 1 ? ['jetstream', 'sluice'] : ['sluice', 'jetstream']
        for (const sys of order) {
          console.log(`## round ${round}: ${sysName(sys)}`)
          const s = sys === 'jetstream' ? await startJetStream(natsBin, jsStore) : await startSluice(repo, code, root, slData, `sluice-r${round}`, ctx.amqp)
          servers.push(s)
          try {
            console.log(`${sysName(sys)} pid ${s.proc.pid} at ${s.url}, ready in ${fmtInt(s.startMs)} ms, RSS ${fmtMb(procMemKb(s.proc.pid).rss)} MB`)
            if (sys === 'jetstream' && !jsPrefilled) {
              const pf = await prefillJetStream(code, s, args.backlog)
              jsPrefilled = true
              console.log(`Prefill  JetStream: ${fmtInt(args.backlog)} events published (core publish to the stream subject, a flush every ${fmtInt(jsPrefillWindow)}) in ${pf.seconds.toFixed(1)} s (${fmtInt(pf.eventsPerSec)}/s)`)
              record({ kind: 'prefill', system: 'jetstream', events: args.backlog, ...pf })
            }
            for (const w of workloads) {
              if (!args.only.has(w)) continue
              if ((w === 'w1amqp' && sys === 'jetstream') || (overAmqp.has(w) && sys === 'sluice' && !ctx.amqp)) continue
              const quiet = quietSpentMs < quietBudgetMs ? await waitQuiet(Math.min(quietMaxMs, quietBudgetMs - quietSpentMs)) : { pct: Number.NaN, waitedMs: 0 }
              quietSpentMs += quiet.waitedMs
              if (quiet.pct >= quietPct) console.log(`(machine busy: ${fmtPct(quiet.pct)} of a core in use before this run, waited ${(quiet.waitedMs / 1000).toFixed(1)} s; quiet-wait budget left ${((quietBudgetMs - quietSpentMs) / 1000).toFixed(0)} s)`)
              const r = await runWorkload(ctx, s, w, round)
              runs.push(r)
              console.log(runLine(r))
              record({ kind: 'run', ...r, quietBefore: quiet })
              await sleep(300)
            }
          } finally {
            const cpuS = procCpuS(s.proc.pid)
            const hwmKb = procMemKb(s.proc.pid).hwm
            const exitCode = await stopServer(s)
            servers.splice(servers.indexOf(s), 1)
            const t: ServerTotal = { system: sys, round, startMs: s.startMs, cpuS, hwmKb, exitCode }
            serverTotals.push(t)
            record({ kind: 'server', ...t })
            console.log(`${sysName(sys)} stopped (exit ${exitCode}); CPU ${fmtS(cpuS)} s over the round, VmHWM ${fmtMb(hwmKb)} MB; ${elapsedS().toFixed(0)} s elapsed\n`)
          }
        }
        roundS = Math.max(roundS, elapsedS() - roundT0)
      }
    }

    // ---- summary ----
    const rows = buildRows(args, runs)
    const table = formatTable(rows)
    const resources = formatResources(rows, serverTotals)
    if (rows.length > 0) {
      console.log(table)
      console.log('')
      for (const r of rows) if (r.extra !== '') console.log(`${r.label}: ${r.extra}`)
      console.log('')
      console.log(resources)
      console.log('')
      for (const r of rows) if (r.pass !== undefined) console.log(`${r.pass ? 'PASS' : 'MISS'}  ${r.label}: Sluice ÷ JetStream = ${fmtRatio(r.ratio)} (${r.target})`)
      record({ kind: 'summary', rows })
    }

    // ---- profiles of the misses ----
    const missed = args.profileOnly ?? new Set(rows.filter((r) => r.pass === false).map((r) => r.workload))
    const profiles: ProfileOut[] = []
    if (args.profile && missed.size > 0) {
      console.log(`\n## CPU profiles (node --cpu-prof) of the Sluice server under ${[...missed].join(', ')}`)
      for (const w of workloads.filter((x) => missed.has(x))) {
        if (elapsedS() > profileBudgetS) {
          console.log(`${w}: profile skipped, ${elapsedS().toFixed(0)} s elapsed (the whole run must stay under 15 minutes); run \`node dist/benchmarks/compare.bench.js --profile=${w}\``)
          continue
        }
        const profDir = join(root, `prof-${w}`)
        const s = await startSluice(repo, code, root, slData, `prof-${w}`, overAmqp.has(w), ['--cpu-prof', `--cpu-prof-dir=${profDir}`])
        servers.push(s)
        let r: Run
        try {
          r = await runWorkload(ctx, s, w, 99, 'prof-')
        } finally {
          await stopServer(s)
          servers.splice(servers.indexOf(s), 1)
        }
        const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : []
        if (files.length === 0) {
          console.log(`${w}: no profile written`)
          continue
        }
        const file = join(profDir, files[0]!)
        if (args.keepProfiles !== undefined) {
          mkdirSync(args.keepProfiles, { recursive: true })
          copyFileSync(file, join(args.keepProfiles, `sluice-compare-${w}-${runId.replaceAll(':', '')}.cpuprofile`))
        }
        const summary = summarizeProfile(file, 15, code, { fromUs: r.cpu.fromUs, toUs: r.cpu.toUs })
        const what = `${w.toUpperCase()} under the profiler: ${runLine(r).replace(/^\S+\s+round 99: /, '')}`
        const text = formatProfile({ ...summary, file: `${w} (${files[0]})` })
        console.log(`\n### ${what}`)
        console.log(text)
        profiles.push({ workload: w, what, summary, text })
        record({ kind: 'profile', workload: w, what, ...summary, file: files[0] })
      }
    }

    // ---- RESULTS.md ----
    if (args.record && rows.length > 0) {
      const when = runId.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
      const md: string[] = [
        sectionTitle,
        '',
        `- **Run:** ${when} (\`runId\` \`${runId}\` in \`benchmarks/results/compare.jsonl\`), ${elapsedS().toFixed(0)} s in all. Command: \`npm run bench:compare\` (build, then \`node dist/benchmarks/compare.bench.js\`).`,
        `- **Machine:** "${machine.cpu}", ${machine.cores} vCPUs, ${machine.memGiB} GiB RAM, Linux ${machine.kernel}; temp dir on ${machine.tmpFs}. Load average at start ${machine.loadAvg.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min): the machine is shared, see the "other" CPU in the JSONL.`,
        `- **Versions:** nats-server ${v.natsServer} (Debian package), nats.js (npm \`nats\`) ${v.natsJs}, Node ${v.node}; Sluice at ${v.sluice.head}${v.sluice.dirtySrc > 0 ? ` with ${v.sluice.dirtySrc} uncommitted file(s) under src/ (others' work in progress)` : ''}.`,
        '- **Durability (not the same):** JetStream ran with its defaults: file store, R1, and it does **not** fsync before a PubAck or an ack; its file store syncs every 2 minutes (`sync_interval`, default 2m; nats-server 2.9.x does not even accept the option, it is hard-wired). A PubAck means "in the OS page cache". Sluice ran with `fsync: batch` (5 ms): it **fdatasyncs before every confirm** and answers an ack only once the settlement is synced. So every Sluice figure below includes an fdatasync per group commit that JetStream never does.',
        `- **Set-up:** both servers on 127.0.0.1, **one at a time** (a round runs W1–W4 on one, stops it, then the other; the order alternates), clients in their own processes (\`benchmarks/compare-client.ts\`), the same 250-byte JSON events. JetStream: \`nats-server -js -sd <tmp> -a 127.0.0.1 -p <free port>\`, streams PUB/BACKLOG/LIVE (file, R1, limits). Sluice: \`benchmarks/configs/compare.yaml\`, one direct exchange, one stream per workload. ${args.runs} rounds; medians with min–max.`,
        `- **Workloads:** W1: JetStream \`js.publish\` of single events with ${fmtInt(w1Window)} PubAcks pending; Sluice NDJSON requests of ${w1SluiceBatch} events, ${w1Window / w1SluiceBatch} in flight (≤${fmtInt(w1Window)} unconfirmed); ${args.w1WarmupS} s warm-up, ${args.w1DurationS} s measured; beside it, the same window split over two publisher processes${ctx.amqp ? '; and Sluice over AMQP 0-9-1 (amqplib confirm channel, `basic.publish` of single events to exchange `bench`, 1,000 confirms pending), held against JetStream\'s W1' : ''}. W1 lean: the same publish with the leanest publisher each side has, frames by hand, one process, ${fmtInt(w1Window)} single events unconfirmed: JetStream \`PUB\` on the text protocol with a reply inbox per event (${fmtInt(w1Window)} PubAcks pending), Sluice AMQP 0-9-1 confirm mode with pre-encoded \`basic.publish\` + header + body frames to exchange \`bench\` (${fmtInt(w1Window)} confirms pending, \`basic.ack\` multiple counted); each side's window refilled in one write after each read. W2: ${args.w2Consumers} consumer processes on one durable pull consumer (AckExplicit, pull requests \`js.fetch(stream, durable, {batch: 1000, no_wait: true})\`, \`m.ack()\` per message as it arrives, max_ack_pending ${fmtInt(prefetch * args.w2Consumers)}) / one group (fetch max 1,000, prefetch ${fmtInt(prefetch)} per member, one ack request per batch, \`{"ranges": [[first, last]]}\`, overlapping the next fetch), every body JSON-parsed, until the backlog is empty; beside it, the same from one process over the first half of the backlog. W2 lean and W4 lean: the same drains with the leanest client each side has, frames by hand, one process per consumer: JetStream a pull consumer on the text protocol (two pulls of 500 in flight, +ACK per message), Sluice an AMQP 0-9-1 consumer (basic.qos 1,000, basic.ack with multiple every 500). W3: 50 events every 10 ms (Sluice: one NDJSON request; JetStream: 50 \`js.publish\`), the send time in the body; JetStream consumer \`consume()\`, Sluice long-poll fetch (waitMs 1000); ${w3WarmupS} s warm-up, ${args.w3DurationS} s measured. W4: ${w4Consumers} durable consumers / ${w4Consumers} groups on the backlog stream, one process each, each acking the first ${fmtInt(args.w4Events)} events as in W2.`,
        `- **Scaled down to fit 15 minutes on 2 cores:** W1 ${args.w1DurationS} s measured per run; W2 backlog ${fmtInt(args.backlog)}; W4 ${fmtInt(args.w4Events)} events per consumer instead of the whole backlog; Sluice's backlog written with the log API before the server starts, JetStream's published once by core NATS publishes to the stream subject (a flush every ${fmtInt(jsPrefillWindow)}, then the count checked). The AMQP row: ${amqp.present ? (ctx.amqp ? `measured (src/server.ts starts the AMQP listener), with amqplib ${amqplibVersion(repo)}` : 'not run') : `skipped, ${amqp.why}`}. RabbitMQ: not run (optional third column, skipped for time).`,
        '',
        table,
        '',
        ...rows.filter((r) => r.extra !== '').map((r) => `${r.label}: ${r.extra}.`),
        '',
        'Server resources (CPU from /proc/<pid>/stat over each measured window; peak VmRSS sampled every 100 ms during the workload, the highest over the runs):',
        '',
        resources,
      ]
      if (profiles.length > 0) {
        md.push('', '### Profiles of the misses (Sluice server, `node --cpu-prof`, measured window only)')
        for (const p of profiles) md.push('', `#### ${p.what}`, '', p.text)
      }
      writeResultsSection(join(repo, 'benchmarks', 'RESULTS.md'), md.join('\n'))
      console.log(`\nRESULTS.md section written; raw results appended to ${resultsFile}`)
    }
    console.log(`total ${elapsedS().toFixed(0)} s`)
    return 0
  } finally {
    for (const s of servers) await stopServer(s).catch(() => null)
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
