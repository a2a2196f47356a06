// Cluster mode benchmark (docs/cluster.md): `npm run bench:cluster`, or after a build
// `node dist/benchmarks/cluster.bench.js [options]`.
//
// Three Sluice nodes (child processes, `node dist/src/cli.js serve`, fsync: batch 5 ms) join one
// real etcd (Debian's etcd-server, benchmarks/lib/etcd.ts), leaseTtl 2 s; everything listens on
// 127.0.0.1. Every node declares streams s1, s2, s3, bound to a direct exchange by their names;
// the controller places one on each node, and this script reads where from GET /v1/cluster rather
// than assuming it. The load comes from benchmarks/http-load.ts, each generator in its own process:
// NDJSON requests of 100 events of 250 B, closed loop, only 200s that accept all 100 count.
//
//   forward    publish into s1 (a) at its home node, (b) at another node, which forwards each
//              request's records to the home over the internal port. Confirmed events/s of each,
//              their ratio (b)/(a) round by round, and server CPU µs per confirmed event: the
//              three nodes' CPU (/proc/<pid>/stat) over the measured window, in all and per node.
//   aggregate  three load generators at once, each into its own stream at that stream's home
//              (one stream per node), against the same three into one node started without a
//              cluster section that holds all three streams. Total confirmed events/s of each and
//              the ratio, round by round.
//   failover   SIGKILL the controller, then poll GET /v1/cluster on a survivor every 20 ms until
//              it names another controller: milliseconds from the kill (target ≤ leaseTtl + 1 s).
//              The killed node is restarted on its data and config, and the next round waits until
//              all three see each other again.
//
// Replication (docs/cluster.md, "Replication") runs on a second cluster of three nodes, r1–r3, on
// the same etcd under another prefix, with cluster.replication factor 3, minInSync 2 (replicaLagMax
// --replica-lag-max); it is started after the measurements above, and the first cluster is stopped
// once `replicated` no longer needs it.
//
//   leader-failover  4 publishers in this process send requests of 10 events with ids (exchange
//              benchid, dedup: id) into a stream through a surviving node, each request retried
//              with the same ids every 20 ms until it is confirmed; then SIGKILL that stream's
//              leader. Milliseconds from the kill to the first publish confirmed by the new leader:
//              the first confirm of a request sent after the kill (target ≤ leaseTtl + 1 s); also
//              when the survivor's placement first named the new leader. The stream is one whose
//              leader is not the controller when there is one, so the figure is the leader's alone;
//              these rounds run before `replicated` and `catch-up` load the cluster, so the new
//              leader restores only the ids these publishers sent. The killed node is restarted and
//              the next round waits until every stream has all three in sync again.
//   replicated s1 published at its leader with factor 3 against s1 at its home on the first
//              cluster (factor 1), alternating round by round, with the loader of `forward`:
//              confirmed events/s, p50/p99 latency of a request, server CPU µs per confirmed event
//              (the cluster's three nodes summed), and the ratio factor 3 / factor 1. Every
//              follower's copy must have grown as the leader's did, and no in-sync set may shrink.
//   catch-up   SIGKILL a follower of s1 (not the controller), wait until the leader has taken it
//              out of the in-sync set (replicaLagMax), publish --events events at the leader, then
//              restart the follower: from its "joined the cluster" until the leader sees its end at
//              the leader's end, events/s and MB/s (10^6 B of stored batches, its
//              sluice_cluster_replication_bytes_total); and from the restart until it is back in the
//              in-sync set.
//
// After every throughput window the home node's count of each loaded stream (GET /v1/streams/<s>)
// must have grown by at least the confirmed events (warm-up included), by no more than the
// requests cut at the ends of the windows could add, and the other nodes' copies not at all; no
// node may have fenced itself. Anything else is printed as a PROBLEMS line, and the exit code is 1.
//
// Options:
//   --runs=N          rounds of each measurement (default 3); median and min–max are reported
//   --duration=S      measured seconds of each throughput window (default 5)
//   --warmup=S        unrecorded seconds before it, on the same connections (default 1)
//   --connections=N   connections of each load generator (default 8)
//   --only=forward,aggregate,failover,leader-failover,replicated,catch-up
//   --events=N        events published while the catch-up follower is down (default 200000)
//   --replica-lag-max=S  cluster.replication.replicaLagMax of the replicated cluster (default 10,
//                     the server's default); catch-up waits this long for the follower to leave
//   --record          append to benchmarks/results/cluster.jsonl and rewrite this benchmark's
//                     section of benchmarks/RESULTS.md; without it the JSONL goes to a temp dir and
//                     no tracked file changes
//
// Nodes, etcd and load generators all share this machine's cores: on 2 cores the aggregate totals
// measure the machine more than cluster mode, so read the ratios.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { ClusterView } from '../src/cluster/index.js'
import { parseConfig } from '../src/config/index.js'
import type { ClosedResult, ClosedSpec } from './http-load.js'
import { eventBytes, eventLine } from './http-payload.js'
import { startEtcd, type EtcdServer } from './lib/etcd.js'
import { freePort, procCpuS } from './lib/proc.js'
import { findRepoRoot, resultsDir } from './lib/results.js'

// ---- parameters ----------------------------------------------------------------------------------

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const loader = fileURLToPath(new URL('./http-load.js', import.meta.url))

const eventsPerRequest = 100
const nodeIds = ['n1', 'n2', 'n3'] as const
/** The replicated cluster's nodes: another three, on the same etcd under `replicatedPrefix`. */
const replicatedIds = ['r1', 'r2', 'r3'] as const
const streamNames = ['s1', 's2', 's3'] as const
/** The stream the forwarding measurement loads. */
const forwardStream = 's1'
const clusterSecret = 'bench-secret-0123456789abcdef'
const etcdPrefix = '/sluice/bench'
const replicatedPrefix = '/sluice/bench-replicated'
const replicationFactor = 3
const replicationMinInSync = 2
/** An exchange whose events carry ids (dedup: id), bound like `bench`: the leader-failover publishers retry through it. */
const idExchange = 'benchid'
const leaseTtlMs = 2_000
const failoverTargetMs = leaseTtlMs + 1_000
const pollEveryMs = 20
/** A poll that answers slower than this is abandoned, so one slow answer cannot stall the clock. */
const pollTimeoutMs = 1_000
const failoverGiveUpMs = 10 * leaseTtlMs
const startTimeoutMs = 30_000
const stopTimeoutMs = 20_000
const settleTimeoutMs = 30_000
/** Far above what the machine can confirm, so the count bound never cuts a window short. */
const requestsPerSecondMax = 20_000
/** Leader failover: publishers in this process, events a request, when an attempt is given up. */
const idPublishers = 4
const idEventsPerRequest = 10
const idAttemptTimeoutMs = 1_000
/** Confirms before the kill, so the publishers are running at it. */
const idWarmConfirms = 40
/** Catch-up: the most seconds the publishing while the follower is down may take, and the catch-up itself. */
const catchUpLoadMaxS = 120
const catchUpGiveUpMs = 180_000

const publishPath = (stream: string): string => `/v1/exchanges/bench/publish?routingKey=${stream}`

const sectionStart = '<!-- bench:cluster:start (generated by npm run bench:cluster -- --record; do not edit) -->'
const sectionEnd = '<!-- bench:cluster:end -->'

type Measure = 'forward' | 'aggregate' | 'failover' | 'leader-failover' | 'replicated' | 'catch-up'
const measures: readonly Measure[] = ['forward', 'aggregate', 'failover', 'leader-failover', 'replicated', 'catch-up']

interface Args {
  runs: number
  durationS: number
  warmupS: number
  connections: number
  only: Set<Measure>
  /** events published while the catch-up follower is down */
  events: number
  replicaLagMaxS: number
  record: boolean
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { runs: 3, durationS: 5, warmupS: 1, connections: 8, only: new Set(measures), events: 200_000, replicaLagMaxS: 10, record: false }
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined]
    if (k === '--runs' && v !== undefined) args.runs = Math.min(50, Math.max(1, Number.parseInt(v, 10)))
    else if (k === '--duration' && v !== undefined) args.durationS = Math.min(120, Math.max(1, Number(v)))
    else if (k === '--warmup' && v !== undefined) args.warmupS = Math.min(30, Math.max(0, Number(v)))
    else if (k === '--connections' && v !== undefined) args.connections = Math.min(256, Math.max(1, Number.parseInt(v, 10)))
    else if (k === '--events' && v !== undefined) args.events = Math.min(2_000_000, Math.max(eventsPerRequest, Number.parseInt(v, 10)))
    else if (k === '--replica-lag-max' && v !== undefined) args.replicaLagMaxS = Math.min(60, Math.max(1, Number.parseInt(v, 10)))
    else if (k === '--only' && v !== undefined) {
      const s = new Set(v.split(',').map((x) => x.trim().toLowerCase()))
      for (const m of s) if (!(measures as readonly string[]).includes(m)) throw new Error(`unknown measurement ${m}; use ${measures.join(', ')}`)
      args.only = s as Set<Measure>
    } else if (k === '--record') args.record = true
    else throw new Error(`unknown argument ${a}`)
  }
  if (![args.runs, args.durationS, args.warmupS, args.connections, args.events, args.replicaLagMaxS].every(Number.isFinite)) throw new Error(`bad numeric option in ${argv.join(' ')}`)
  return args
}

// ---- small helpers -------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtUs = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
const fmtRatio = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')

interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
}

function spread(xs: readonly number[]): Spread {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
  return { median, min: s[0]!, max: s[s.length - 1]! }
}

const fmtSpread = (s: Spread, f: (n: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`

/** Problems found by the checks; each is printed when found and again at the end. */
const problems: string[] = []
function problem(text: string): void {
  problems.push(text)
  console.log(`PROBLEMS ${text}`)
}

// ---- child processes -----------------------------------------------------------------------------

const children = new Set<ChildProcess>()

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<number | null>
  alive(): boolean
  /** The last ~100 kB of its stdout and stderr, for error messages. */
  output(): string
}

/** Starts `node <args>`; `onLine` sees each line of its stdout as it comes. */
function startProc(args: readonly string[], onLine?: (line: string) => void): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error(`could not start node ${args.join(' ')}`)
  children.add(child)
  let out = ''
  let partial = ''
  const keep = (d: Buffer): void => {
    out += d.toString('utf8')
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  child.stdout!.on('data', (d: Buffer) => {
    keep(d)
    if (onLine === undefined) return
    partial += d.toString('utf8')
    let nl: number
    while ((nl = partial.indexOf('\n')) >= 0) {
      onLine(partial.slice(0, nl))
      partial = partial.slice(nl + 1)
    }
  })
  child.stderr!.on('data', keep)
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child)
      resolve(code)
    })
  })
  return { child, pid: child.pid, exited, alive: () => child.exitCode === null && child.signalCode === null, output: () => out }
}

async function stopProc(p: Proc): Promise<void> {
  if (!p.alive()) return
  p.child.kill('SIGTERM')
  const t = setTimeout(() => p.child.kill('SIGKILL'), stopTimeoutMs)
  await p.exited
  clearTimeout(t)
}

// ---- Sluice nodes --------------------------------------------------------------------------------

interface SluiceNode {
  readonly id: string
  readonly configFile: string
  readonly url: string
  proc: Proc
}

interface ClusterSection {
  readonly nodeId: string
  readonly etcdEndpoint: string
  readonly prefix: string
  /** cluster.replication factor, minInSync and replicaLagMax; without it, factor 1 */
  readonly replication?: { readonly factor: number; readonly minInSync: number; readonly replicaLagMaxS: number }
}

/** A node's configuration (checked with the server's own parser); without `cluster`, a single node. */
function nodeYaml(dataDir: string, httpPort: number, cluster: ClusterSection | undefined): string {
  let text = `server:
  dataDir: ${JSON.stringify(dataDir)}
  http: { host: 127.0.0.1, port: ${httpPort} }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { enabled: false }
  durability: { fsync: batch, interval: 5ms }
exchanges:
  bench: { type: direct }
  ${idExchange}: { type: direct, dedup: id }
streams:
${streamNames.map((s) => `  ${s}: {}`).join('\n')}
bindings:
${streamNames.map((s) => `  - { exchange: bench, stream: ${s}, key: ${s} }\n  - { exchange: ${idExchange}, stream: ${s}, key: ${s} }`).join('\n')}
`
  if (cluster !== undefined) {
    const r = cluster.replication
    text += `cluster:
  nodeId: ${cluster.nodeId}
  minNodes: ${nodeIds.length}
  secret: ${clusterSecret}
  etcd: { endpoints: [${JSON.stringify(cluster.etcdEndpoint)}], prefix: ${cluster.prefix}, leaseTtl: ${leaseTtlMs}ms }
  replication: { port: 0${r === undefined ? '' : `, factor: ${r.factor}, minInSync: ${r.minInSync}, replicaLagMax: ${r.replicaLagMaxS}s`} }
`
  }
  parseConfig(text, { env: {} }) // throws with every problem listed
  return text
}

/** Writes the node's config under `root/<id>/` and starts it. */
async function createNode(root: string, id: string, cluster: ClusterSection | undefined): Promise<SluiceNode> {
  const dir = join(root, id)
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const configFile = join(dir, 'sluice.yaml')
  writeFileSync(configFile, nodeYaml(join(dir, 'data'), port, cluster))
  return { id, configFile, url: `http://127.0.0.1:${port}`, proc: await startNodeProc(id, configFile) }
}

/**
 * Starts `sluice serve` on a config file; resolves once it logs "ready". Used again on a restart.
 * `onLine` sees each line it logs, as it comes.
 */
async function startNodeProc(id: string, configFile: string, onLine?: (line: string) => void): Promise<Proc> {
  let ready: () => void = () => undefined
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  const p = startProc([cli, 'serve', '--config', configFile], (line) => {
    onLine?.(line)
    // The server logs one JSON object a line; "ready" follows "http listener up".
    if (line.includes('"msg":"ready"')) ready()
  })
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    isReady.then(() => 'ready' as const),
    p.exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), startTimeoutMs))),
  ])
  clearTimeout(timer)
  if (outcome === 'ready') return p
  p.child.kill('SIGKILL')
  throw new Error(`node ${id} ${outcome === 'exited' ? `exited (${p.child.exitCode ?? p.child.signalCode})` : `was not ready after ${startTimeoutMs} ms`} before it was ready; its output:\n${p.output().slice(-4000)}`)
}

function assertAlive(nodes: readonly SluiceNode[]): void {
  for (const n of nodes) if (!n.proc.alive()) throw new Error(`node ${n.id} (pid ${n.proc.pid}) exited (${n.proc.child.exitCode ?? n.proc.child.signalCode}) during the run; its last output:\n${n.proc.output().slice(-4000)}`)
}

async function getJson<T>(url: string, timeoutMs = 2_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const body = (await res.json()) as T
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`)
  return body
}

const clusterView = (n: SluiceNode, timeoutMs?: number): Promise<ClusterView> => getJson<ClusterView>(`${n.url}/v1/cluster`, timeoutMs)

/**
 * Waits until every node is a member, sees all of them, holds the same full placement with every
 * home live, and names the same controller: only then does a publish through any node find its
 * stream's home (before, it answers 503 stream_unavailable). With `inSync`, every stream must also
 * have that many replicas, all of them in the in-sync set, in every node's view.
 */
async function settled(nodes: readonly SluiceNode[], inSync?: number): Promise<ClusterView> {
  const deadline = performance.now() + settleTimeoutMs
  const homes = (v: ClusterView): string => JSON.stringify(v.placement.map((p) => (inSync === undefined ? [p.stream, p.node, p.epoch] : [p.stream, p.node, p.epoch, [...p.isr].sort()])).sort())
  const replicated = (v: ClusterView): boolean => inSync === undefined || v.placement.every((p) => p.replicas.length === inSync && p.isr.length === inSync)
  let last = 'no answer yet'
  for (;;) {
    assertAlive(nodes)
    try {
      const vs = await Promise.all(nodes.map((n) => clusterView(n)))
      const first = vs[0]!
      const ok = vs.every((v) => v.state === 'member' && v.nodes.length === nodes.length && v.placement.length === streamNames.length && v.unplaced.length === 0 && v.placement.every((p) => p.live) && v.controller !== null && v.controller.node === first.controller?.node && homes(v) === homes(first) && replicated(v))
      if (ok) return first
      last = vs
        .map((v) => `${v.node}: ${v.state}, ${v.nodes.length} nodes, placed ${v.placement.length}, unplaced ${v.unplaced.length}, controller ${v.controller?.node ?? 'none'}${inSync === undefined ? '' : `, in sync ${v.placement.map((p) => `${p.stream} [${p.isr.join(' ')}]`).join(' ')}`}`)
        .join('; ')
    } catch (err) {
      last = (err as Error).message
    }
    if (performance.now() > deadline) throw new Error(`the cluster did not settle within ${settleTimeoutMs} ms; last seen: ${last}`)
    await sleep(100)
  }
}

type Placement = ClusterView['placement'][number]

function placementOf(view: ClusterView, stream: string): Placement {
  const p = view.placement.find((x) => x.stream === stream)
  if (p === undefined) throw new Error(`${stream} is not placed in ${view.node}'s view`)
  return p
}

function homeOf(view: ClusterView, stream: string): string {
  return placementOf(view, stream).node
}

const nodeById = (nodes: readonly SluiceNode[], id: string): SluiceNode => {
  const n = nodes.find((x) => x.id === id)
  if (n === undefined) throw new Error(`no node ${id} among ${nodes.map((x) => x.id).join(', ')}`)
  return n
}

/** A stream led by the node answering, from GET /v1/cluster `replication.leading` (docs/cluster.md). */
interface LeadingStatus {
  readonly epoch: number
  readonly end: number
  readonly highWatermark: number
  readonly followers: Readonly<Record<string, { readonly end: number; readonly lag: number | null; readonly caughtUpMsAgo: number }>>
}

function leadingOf(view: ClusterView, stream: string): LeadingStatus {
  const l = view.replication.leading[stream] as LeadingStatus | undefined
  if (l === undefined) throw new Error(`${view.node} does not lead ${stream}`)
  return l
}

async function storedEvents(n: SluiceNode, stream: string): Promise<number> {
  return (await getJson<{ events: number }>(`${n.url}/v1/streams/${stream}`)).events
}

/**
 * The count once it stops moving: a request the loader cut at the end of its window may still
 * be on its way to the disk (or to the home node) when the loader exits.
 */
async function settledEvents(n: SluiceNode, stream: string): Promise<number> {
  let prev = await storedEvents(n, stream)
  for (let i = 0; i < 30; i++) {
    await sleep(100)
    const cur = await storedEvents(n, stream)
    if (cur === prev) return cur
    prev = cur
  }
  return prev
}

/** A node's counters from GET /metrics; 0 for one it does not have (a single node has no cluster metrics). */
async function counters(n: SluiceNode): Promise<{ fences: number; shrinks: number; replicationBytes: number }> {
  const res = await fetch(`${n.url}/metrics`, { signal: AbortSignal.timeout(2_000) })
  const text = await res.text()
  const get = (re: RegExp): number => {
    const m = re.exec(text)
    return m === null ? 0 : Number(m[1])
  }
  return {
    // times the node fenced itself (cut off from etcd)
    fences: get(/^sluice_cluster_fences_total(?:\{[^}]*\})? (\S+)$/m),
    // in-sync sets this node shrank as a leader
    shrinks: get(/^sluice_cluster_isr_changes_total\{[^}]*change="shrink"[^}]*\} (\S+)$/m),
    // bytes of batches it fetched as a follower
    replicationBytes: get(/^sluice_cluster_replication_bytes_total(?:\{[^}]*\})? (\S+)$/m),
  }
}

// ---- load ----------------------------------------------------------------------------------------

interface LoadRun {
  readonly result: ClosedResult
  /** CPU seconds of each watched node over the loader's measured window */
  readonly cpuS: Readonly<Record<string, number>>
  readonly wallS: number
  /** when the measured window began, performance.now() of this process */
  readonly measureAt: number
}

function closedSpec(url: string, args: Args): ClosedSpec {
  const maxRequests = Math.ceil(Math.max(args.durationS, args.warmupS) * requestsPerSecondMax)
  return { mode: 'closed', url, events: eventsPerRequest, connections: args.connections, durationS: args.durationS, warmupS: args.warmupS, maxRequests }
}

/**
 * One load generator against `spec.url`. It prints MEASURE when its measured window starts (after
 * the warm-up) and RESULT {...} at the end; the watched nodes' CPU is read at both.
 */
async function runLoad(spec: ClosedSpec, watched: readonly SluiceNode[]): Promise<LoadRun> {
  const snap = (): { t: number; cpu: number[] } => ({ t: performance.now(), cpu: watched.map((n) => procCpuS(n.proc.pid)) })
  let start: ReturnType<typeof snap> | undefined
  let end: ReturnType<typeof snap> | undefined
  const p = startProc([loader, JSON.stringify(spec)], (line) => {
    if (line === 'MEASURE') start = snap()
    else if (line.startsWith('RESULT ')) end = snap()
  })
  const killer = setTimeout(() => p.child.kill('SIGKILL'), (spec.warmupS + spec.durationS + 60) * 1000)
  const code = await p.exited
  clearTimeout(killer)
  const m = /^RESULT (.*)$/m.exec(p.output())
  if (code !== 0 || m === null) throw new Error(`load generator for ${spec.url} failed (exit ${code}):\n${p.output().slice(-4000)}`)
  if (start === undefined || end === undefined) throw new Error('load generator did not report its window')
  const s = start
  const e = end
  const cpuS = Object.fromEntries(watched.map((n, i) => [n.id, e.cpu[i]! - s.cpu[i]!]))
  return { result: JSON.parse(m[1]!) as ClosedResult, cpuS, wallS: (e.t - s.t) / 1000, measureAt: s.t }
}

interface Load {
  readonly stream: string
  /** the node the loader sends to */
  readonly target: SluiceNode
  /** the node that stores the stream */
  readonly home: SluiceNode
  /** its followers, whose copies must grow as the home's does (cluster.replication.factor > 1) */
  readonly followers?: readonly SluiceNode[]
}

interface Window {
  readonly runs: readonly LoadRun[]
  /** sum of the loaders' confirmed events/s */
  readonly eventsPerSec: number
  /** all watched nodes' CPU from the first loader's start to the last one's exit, per event confirmed in it (warm-ups included) */
  readonly wholeCpuUsPerEvent: number
  /** spread of the loaders' measured-window starts, ms: how far their windows are apart */
  readonly startSkewMs: number
}

/**
 * Runs `loads` at once, then checks what was stored: at each home (and each of its followers) the
 * stream grew by at least the confirmed events and by at most what requests cut at the ends of the
 * two windows (warm-up and measured) or answered with an error could have added; elsewhere its
 * copies did not grow. No node may fence itself, nor shrink an in-sync set, during the window.
 */
async function loadWindow(label: string, loads: readonly Load[], watched: readonly SluiceNode[], args: Args): Promise<Window> {
  const countsBefore = await Promise.all(loads.map((l) => Promise.all(watched.map((n) => storedEvents(n, l.stream)))))
  const countersBefore = await Promise.all(watched.map(counters))
  const cpu0 = watched.map((n) => procCpuS(n.proc.pid))
  const runs = await Promise.all(loads.map((l) => runLoad(closedSpec(`${l.target.url}${publishPath(l.stream)}`, args), watched)))
  const cpu1 = watched.map((n) => procCpuS(n.proc.pid))
  assertAlive(watched)

  for (const [i, l] of loads.entries()) {
    const r = runs[i]!.result
    const confirmed = r.confirmed * eventsPerRequest + r.warmupConfirmedEvents
    const refused = r.responses - r.confirmed
    for (const [j, n] of watched.entries()) {
      const grew = (await settledEvents(n, l.stream)) - countsBefore[i]![j]!
      if (n === l.home || l.followers?.includes(n) === true) {
        const where = n === l.home ? 'at its home' : 'at its follower'
        const slack = (2 * args.connections + Math.max(0, refused)) * eventsPerRequest
        if (grew < confirmed) problem(`${label}: ${l.stream} ${where} ${n.id} grew by ${fmtInt(grew)} events, fewer than the ${fmtInt(confirmed)} confirmed`)
        else if (grew - confirmed > slack) problem(`${label}: ${l.stream} ${where} ${n.id} grew by ${fmtInt(grew)} events, ${fmtInt(grew - confirmed)} more than confirmed (at most ${fmtInt(slack)} expected from cut or refused requests)`)
      } else if (grew !== 0) problem(`${label}: ${l.stream}'s copy on ${n.id}, not its home, grew by ${fmtInt(grew)} events`)
    }
    const other = Object.entries(r.statusCodes).filter(([k]) => k !== '200')
    if (other.length > 0 || r.errors > 0 || r.timeouts > 0 || r.confirmed !== r.status200) {
      problem(`${label}: loader into ${l.stream} at ${l.target.id}: status ${JSON.stringify(r.statusCodes)}, errors ${r.errors}, timeouts ${r.timeouts}, confirmed ${r.confirmed} of ${r.status200} 200s`)
    }
  }
  const countersAfter = await Promise.all(watched.map(counters))
  for (const [j, n] of watched.entries()) {
    const before = countersBefore[j]!
    const after = countersAfter[j]!
    if (after.fences > before.fences) problem(`${label}: node ${n.id} fenced itself ${after.fences - before.fences} time(s) during the window (lease not renewed within ${leaseTtlMs} ms)`)
    if (after.shrinks > before.shrinks) problem(`${label}: node ${n.id} shrank an in-sync set ${after.shrinks - before.shrinks} time(s) during the window (a follower behind for replicaLagMax)`)
  }

  const allConfirmed = runs.reduce((a, x) => a + x.result.confirmed * eventsPerRequest + x.result.warmupConfirmedEvents, 0)
  const wholeCpuS = cpu1.reduce((a, c, j) => a + c - cpu0[j]!, 0)
  const starts = runs.map((x) => x.measureAt)
  return {
    runs,
    eventsPerSec: runs.reduce((a, x) => a + x.result.confirmedEventsPerSec, 0),
    wholeCpuUsPerEvent: (wholeCpuS * 1e6) / allConfirmed,
    startSkewMs: Math.max(...starts) - Math.min(...starts),
  }
}

// ---- forward -------------------------------------------------------------------------------------

type ForwardCase = 'direct' | 'forwarded'

/** One loader's figures in a window, as every load round reports them. */
interface LoadFigures {
  readonly eventsPerSec: number
  readonly cpuUsPerEvent: number
  readonly cpuUsPerEventByNode: Readonly<Record<string, number>>
  readonly serverCpuPct: number
  readonly loaderCpuPct: number
  readonly latencyMs: ClosedResult['latencyMs']
}

function loadFigures(run: Window['runs'][number]): LoadFigures {
  const events = run.result.confirmed * eventsPerRequest
  const cpuTotal = Object.values(run.cpuS).reduce((a, b) => a + b, 0)
  return {
    eventsPerSec: run.result.confirmedEventsPerSec,
    cpuUsPerEvent: (cpuTotal * 1e6) / events,
    cpuUsPerEventByNode: Object.fromEntries(Object.entries(run.cpuS).map(([id, s]) => [id, (s * 1e6) / events])),
    serverCpuPct: (cpuTotal / run.wallS) * 100,
    loaderCpuPct: run.result.loaderCpuPct,
    latencyMs: run.result.latencyMs,
  }
}

function printLoadRound(label: string, rep: number, round: LoadFigures, nodes: readonly SluiceNode[]): void {
  const byNode = nodes.map((n) => `${n.id} ${fmtUs(round.cpuUsPerEventByNode[n.id] ?? Number.NaN)}`).join(', ')
  console.log(
    `${label.padEnd(20)} round ${rep + 1}: ${fmtInt(round.eventsPerSec).padStart(9)} events/s  CPU ${fmtUs(round.cpuUsPerEvent)} µs/event (${byNode})  servers ${fmtInt(round.serverCpuPct)}% loader ${fmtInt(round.loaderCpuPct)}%  latency p50 ${round.latencyMs.p50} p99 ${round.latencyMs.p99} ms`,
  )
}

interface ForwardRound extends LoadFigures {
  readonly rep: number
  readonly case: ForwardCase
  readonly target: string
  readonly home: string
}

interface ForwardSummary {
  readonly stream: string
  readonly home: string
  readonly entry: string
  readonly rounds: readonly ForwardRound[]
}

async function measureForward(nodes: readonly SluiceNode[], args: Args, record: (o: object) => void): Promise<ForwardSummary> {
  const view = await settled(nodes)
  const homeId = homeOf(view, forwardStream)
  const home = nodes.find((n) => n.id === homeId)!
  const entry = nodes.find((n) => n.id !== homeId)!
  console.log(`## forward: ${forwardStream} lives on ${home.id}; (a) publish at ${home.id}, (b) publish at ${entry.id}, which forwards to ${home.id}`)
  const rounds: ForwardRound[] = []
  for (let rep = 0; rep < args.runs; rep++) {
    // Alternating the order keeps a drift of the machine (page cache, other work) out of the ratio.
    const cases: ForwardCase[] = rep % 2 === 0 ? ['direct', 'forwarded'] : ['forwarded', 'direct']
    for (const c of cases) {
      const target = c === 'direct' ? home : entry
      const w = await loadWindow(`forward ${c} round ${rep + 1}`, [{ stream: forwardStream, target, home }], nodes, args)
      const run = w.runs[0]!
      const round: ForwardRound = { rep, case: c, target: target.id, home: home.id, ...loadFigures(run) }
      rounds.push(round)
      record({ kind: 'run', measure: 'forward', ...round, result: run.result })
      printLoadRound(`${c} (at ${target.id})`, rep, round, nodes)
    }
  }
  console.log('')
  return { stream: forwardStream, home: home.id, entry: entry.id, rounds }
}

// ---- aggregate -----------------------------------------------------------------------------------

type AggregateSetup = 'cluster' | 'single'

interface AggregateRound {
  readonly rep: number
  readonly setup: AggregateSetup
  readonly eventsPerSec: number
  readonly byStream: Readonly<Record<string, number>>
  readonly wholeCpuUsPerEvent: number
  readonly startSkewMs: number
}

async function measureAggregate(root: string, nodes: readonly SluiceNode[], args: Args, record: (o: object) => void): Promise<AggregateRound[]> {
  const view = await settled(nodes)
  const home = (s: string): SluiceNode => nodes.find((n) => n.id === homeOf(view, s))!
  const clusterLoads: Load[] = streamNames.map((s) => ({ stream: s, target: home(s), home: home(s) }))
  console.log(`## aggregate: 3 loaders at once; cluster: ${clusterLoads.map((l) => `${l.stream} at ${l.home.id}`).join(', ')}; single: one node without a cluster section, all 3 streams`)
  const single = await createNode(root, 'single', undefined)
  const rounds: AggregateRound[] = []
  try {
    const singleLoads: Load[] = streamNames.map((s) => ({ stream: s, target: single, home: single }))
    for (let rep = 0; rep < args.runs; rep++) {
      const setups: AggregateSetup[] = rep % 2 === 0 ? ['cluster', 'single'] : ['single', 'cluster']
      for (const setup of setups) {
        const loads = setup === 'cluster' ? clusterLoads : singleLoads
        const w = await loadWindow(`aggregate ${setup} round ${rep + 1}`, loads, setup === 'cluster' ? nodes : [single], args)
        const round: AggregateRound = {
          rep,
          setup,
          eventsPerSec: w.eventsPerSec,
          byStream: Object.fromEntries(loads.map((l, i) => [l.stream, w.runs[i]!.result.confirmedEventsPerSec])),
          wholeCpuUsPerEvent: w.wholeCpuUsPerEvent,
          startSkewMs: w.startSkewMs,
        }
        rounds.push(round)
        record({ kind: 'run', measure: 'aggregate', ...round, results: w.runs.map((r) => r.result) })
        console.log(
          `${setup.padEnd(8)} round ${rep + 1}: ${fmtInt(round.eventsPerSec).padStart(9)} events/s in all (${Object.entries(round.byStream)
            .map(([s, v]) => `${s} ${fmtInt(v)}`)
            .join(', ')})  CPU ${fmtUs(round.wholeCpuUsPerEvent)} µs/event over the whole load  windows start within ${fmtInt(round.startSkewMs)} ms`,
        )
      }
    }
  } finally {
    await stopProc(single.proc)
  }
  console.log('')
  return rounds
}

// ---- failover ------------------------------------------------------------------------------------

interface FailoverRound {
  readonly rep: number
  readonly killed: string
  readonly watchedFrom: string
  readonly elected: string
  readonly failoverMs: number
  /** when the survivor first showed no controller (the old one's lease gone), if a poll caught it */
  readonly keyGoneSeenMs: number | null
  readonly epochBefore: number
  readonly epochAfter: number
  /** from the restart of the killed node until all three see each other again */
  readonly rejoinMs: number
}

async function measureFailover(nodes: SluiceNode[], args: Args, record: (o: object) => void): Promise<FailoverRound[]> {
  console.log(`## failover: SIGKILL the controller, poll GET /v1/cluster on a survivor every ${pollEveryMs} ms (leaseTtl ${leaseTtlMs} ms, target ≤ ${fmtInt(failoverTargetMs)} ms)`)
  const rounds: FailoverRound[] = []
  for (let rep = 0; rep < args.runs; rep++) {
    const before = await settled(nodes)
    const old = before.controller!
    const victim = nodes.find((n) => n.id === old.node)!
    const survivor = nodes.find((n) => n.id !== old.node)!
    const t0 = performance.now()
    victim.proc.child.kill('SIGKILL')
    let keyGoneSeenMs: number | null = null
    let after: ClusterView | undefined
    let failoverMs = Number.NaN
    for (let k = 1; performance.now() - t0 < failoverGiveUpMs; k++) {
      try {
        const v = await clusterView(survivor, pollTimeoutMs)
        const at = performance.now() - t0
        if (v.controller === null) keyGoneSeenMs ??= at
        else if (v.controller.node !== old.node) {
          after = v
          failoverMs = at
          break
        }
      } catch {
        // A slow or failed answer is one missed poll; the clock keeps running.
      }
      await sleep(Math.max(0, t0 + k * pollEveryMs - performance.now()))
    }
    await victim.proc.exited
    if (after === undefined) throw new Error(`no new controller seen by ${survivor.id} within ${failoverGiveUpMs} ms of killing ${victim.id}`)
    const r0 = performance.now()
    victim.proc = await startNodeProc(victim.id, victim.configFile)
    await settled(nodes)
    const round: FailoverRound = {
      rep,
      killed: victim.id,
      watchedFrom: survivor.id,
      elected: after.controller!.node,
      failoverMs,
      keyGoneSeenMs,
      epochBefore: old.epoch,
      epochAfter: after.controller!.epoch,
      rejoinMs: performance.now() - r0,
    }
    rounds.push(round)
    record({ kind: 'run', measure: 'failover', ...round })
    if (failoverMs > failoverTargetMs) problem(`failover round ${rep + 1}: ${fmtInt(failoverMs)} ms, over the target of ${fmtInt(failoverTargetMs)} ms`)
    console.log(
      `round ${rep + 1}: killed ${round.killed} (epoch ${round.epochBefore}); ${round.watchedFrom} names ${round.elected} (epoch ${round.epochAfter}) after ${fmtInt(failoverMs)} ms` +
        `${keyGoneSeenMs === null ? '' : `, no controller seen from ${fmtInt(keyGoneSeenMs)} ms`}; ${round.killed} restarted and all 3 together again in ${fmtInt(round.rejoinMs)} ms`,
    )
  }
  console.log('')
  return rounds
}

// ---- replication: leader failover ----------------------------------------------------------------

interface IdConfirm {
  /** when the attempt that was confirmed was sent, performance.now() of this process */
  readonly sentAt: number
  readonly at: number
}

interface IdPublishers {
  readonly confirms: readonly IdConfirm[]
  /** attempts answered with anything but a whole confirm, or not within idAttemptTimeoutMs */
  failed(): number
  /** requests given up after retrying them for failoverGiveUpMs */
  gaveUp(): number
  stop(): Promise<void>
}

/** One request of idEventsPerRequest events, each with its own id and otherwise as the loader's. */
function idBody(prefix: string): Buffer {
  const lines: string[] = []
  for (let i = 0; i < idEventsPerRequest; i++) lines.push(`{"id":${JSON.stringify(`${prefix}-${i}`)},${eventLine(i).slice(1)}`)
  return Buffer.from(lines.join('\n'))
}

/** Whether the publish was confirmed whole: every event accepted, or known already (a retry). */
async function publishOnce(url: string, body: Buffer): Promise<boolean> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body, signal: AbortSignal.timeout(idAttemptTimeoutMs) })
    const text = await res.text()
    if (res.status !== 200) return false
    const r = JSON.parse(text) as { accepted?: number; duplicates?: number }
    return (r.accepted ?? 0) + (r.duplicates ?? 0) === idEventsPerRequest
  } catch {
    return false
  }
}

/**
 * idPublishers closed loops in this process, each sending requests with new ids one after the
 * other and retrying a request with the same ids every pollEveryMs until it is confirmed. Bounded:
 * each stops after 100,000 requests, a request is given up after failoverGiveUpMs, and all stop
 * 3 × failoverGiveUpMs after the start if stop() has not been called.
 */
function startIdPublishers(url: string, tag: string): IdPublishers {
  const confirms: IdConfirm[] = []
  let failed = 0
  let gaveUp = 0
  let stopped = false
  const deadline = performance.now() + 3 * failoverGiveUpMs
  const loop = async (j: number): Promise<void> => {
    for (let k = 0; !stopped && k < 100_000 && performance.now() < deadline; k++) {
      const body = idBody(`${tag}-${j}-${k}`)
      const first = performance.now()
      for (;;) {
        const sentAt = performance.now()
        if (await publishOnce(url, body)) {
          confirms.push({ sentAt, at: performance.now() })
          break
        }
        failed++
        if (stopped) break
        if (performance.now() - first > failoverGiveUpMs) {
          gaveUp++
          break
        }
        await sleep(pollEveryMs)
      }
    }
  }
  const all = Promise.all(Array.from({ length: idPublishers }, (_, j) => loop(j)))
  return {
    confirms,
    failed: () => failed,
    gaveUp: () => gaveUp,
    stop: async () => {
      stopped = true
      await all
    },
  }
}

interface LeaderFailoverRound {
  readonly rep: number
  readonly stream: string
  readonly killed: string
  /** whether the killed leader was the controller too (only when every stream's leader was) */
  readonly killedController: boolean
  /** the survivor the publishers sent to */
  readonly entry: string
  readonly newLeader: string
  readonly epochBefore: number
  readonly epochAfter: number
  /** the stream's events at the leader just before the kill, the publishers' so far included */
  readonly streamEvents: number
  /** from the kill to the first confirm of a publish sent after it */
  readonly failoverMs: number
  /** from the kill until the entry's placement named another leader */
  readonly placementMs: number
  readonly failedAttempts: number
  /** from the restart of the killed node until every stream has all three in sync again */
  readonly rejoinMs: number
}

async function measureLeaderFailover(nodes: SluiceNode[], args: Args, record: (o: object) => void): Promise<LeaderFailoverRound[]> {
  console.log(
    `## leader-failover: ${idPublishers} publishers retry requests of ${idEventsPerRequest} events with ids (exchange ${idExchange}) through a survivor; SIGKILL the stream's leader (leaseTtl ${leaseTtlMs} ms, target ≤ ${fmtInt(failoverTargetMs)} ms to the first publish confirmed by the new leader)`,
  )
  const rounds: LeaderFailoverRound[] = []
  for (let rep = 0; rep < args.runs; rep++) {
    const before = await settled(nodes, replicationFactor)
    const controller = before.controller!.node
    const all = streamNames.map((s) => placementOf(before, s))
    const p = all.find((x) => x.node !== controller) ?? all[0]!
    const victim = nodeById(nodes, p.node)
    const entry = nodes.find((n) => n !== victim && n.id !== controller) ?? nodes.find((n) => n !== victim)!
    const pubs = startIdPublishers(`${entry.url}/v1/exchanges/${idExchange}/publish?routingKey=${p.stream}`, `round${rep}`)
    let t0 = Number.NaN
    let after: Placement | undefined
    let placementMs = Number.NaN
    let first: IdConfirm | undefined
    let failedBefore = 0
    let streamEvents = Number.NaN
    try {
      const warmUntil = performance.now() + 10_000
      while (pubs.confirms.length < idWarmConfirms) {
        if (performance.now() > warmUntil) throw new Error(`leader-failover round ${rep + 1}: only ${pubs.confirms.length} publishes confirmed through ${entry.id} in 10 s before the kill (${pubs.failed()} attempts failed)`)
        await sleep(pollEveryMs)
      }
      failedBefore = pubs.failed()
      streamEvents = await storedEvents(victim, p.stream)
      t0 = performance.now()
      victim.proc.child.kill('SIGKILL')
      for (let k = 1; performance.now() - t0 < failoverGiveUpMs; k++) {
        if (after === undefined) {
          try {
            const q = placementOf(await clusterView(entry, pollTimeoutMs), p.stream)
            if (q.node !== victim.id) {
              after = q
              placementMs = performance.now() - t0
            }
          } catch {
            // A slow or failed answer is one missed poll; the clock keeps running.
          }
        }
        first ??= pubs.confirms.find((c) => c.sentAt >= t0)
        if (after !== undefined && first !== undefined) break
        await sleep(Math.max(0, t0 + k * pollEveryMs - performance.now()))
      }
    } finally {
      await pubs.stop()
    }
    await victim.proc.exited
    if (after === undefined) throw new Error(`leader-failover round ${rep + 1}: ${entry.id} named no new leader of ${p.stream} within ${failoverGiveUpMs} ms of killing ${victim.id}`)
    if (first === undefined) throw new Error(`leader-failover round ${rep + 1}: no publish into ${p.stream} confirmed through ${entry.id} within ${failoverGiveUpMs} ms of killing ${victim.id}`)
    if (after.epoch !== p.epoch + 1) problem(`leader-failover round ${rep + 1}: ${p.stream}'s new leader ${after.node} is at epoch ${after.epoch}, not ${p.epoch + 1}`)
    if (after.isr.includes(victim.id)) problem(`leader-failover round ${rep + 1}: the killed ${victim.id} is still in ${p.stream}'s in-sync set [${after.isr.join(', ')}]`)
    if (pubs.gaveUp() > 0) problem(`leader-failover round ${rep + 1}: ${pubs.gaveUp()} request(s) not confirmed within ${failoverGiveUpMs} ms of retrying`)
    if (failedBefore > 0) problem(`leader-failover round ${rep + 1}: ${failedBefore} attempt(s) failed before the kill`)
    const r0 = performance.now()
    victim.proc = await startNodeProc(victim.id, victim.configFile)
    await settled(nodes, replicationFactor)
    const round: LeaderFailoverRound = {
      rep,
      stream: p.stream,
      killed: victim.id,
      killedController: victim.id === controller,
      entry: entry.id,
      newLeader: after.node,
      epochBefore: p.epoch,
      epochAfter: after.epoch,
      streamEvents,
      failoverMs: first.at - t0,
      placementMs,
      failedAttempts: pubs.failed() - failedBefore,
      rejoinMs: performance.now() - r0,
    }
    rounds.push(round)
    record({ kind: 'run', measure: 'leader-failover', ...round })
    if (round.failoverMs > failoverTargetMs) problem(`leader-failover round ${rep + 1}: ${fmtInt(round.failoverMs)} ms, over the target of ${fmtInt(failoverTargetMs)} ms`)
    console.log(
      `round ${rep + 1}: ${round.stream} (${fmtInt(streamEvents)} events) led by ${round.killed}${round.killedController ? ', the controller too' : ''}, publishing through ${round.entry}: killed at epoch ${round.epochBefore}; ${round.entry}'s placement names ${round.newLeader} (epoch ${round.epochAfter}) after ${fmtInt(placementMs)} ms,` +
        ` first publish confirmed by it after ${fmtInt(round.failoverMs)} ms (${round.failedAttempts} attempts failed meanwhile); ${round.killed} restarted and all in sync again in ${fmtInt(round.rejoinMs)} ms`,
    )
  }
  console.log('')
  return rounds
}

// ---- replication: publish throughput, factor 3 against factor 1 ----------------------------------

interface ReplicatedRound extends LoadFigures {
  readonly rep: number
  readonly factor: number
  readonly leader: string
  readonly followers: readonly string[]
}

async function measureReplicated(plain: readonly SluiceNode[], replicated: readonly SluiceNode[], args: Args, record: (o: object) => void): Promise<ReplicatedRound[]> {
  const stream = forwardStream
  console.log(
    `## replicated: ${stream} published at its leader, factor ${replicationFactor} minInSync ${replicationMinInSync} (${replicatedIds.join(', ')}), against ${stream} at its home with factor 1 (${nodeIds.join(', ')}); CPU summed over the cluster's 3 nodes`,
  )
  const rounds: ReplicatedRound[] = []
  for (let rep = 0; rep < args.runs; rep++) {
    // Alternating the order keeps a drift of the machine out of the ratio.
    const factors = rep % 2 === 0 ? [replicationFactor, 1] : [1, replicationFactor]
    for (const factor of factors) {
      const nodes = factor === 1 ? plain : replicated
      const view = await settled(nodes, factor === 1 ? undefined : replicationFactor)
      const p = placementOf(view, stream)
      const leader = nodeById(nodes, p.node)
      const followers = factor === 1 ? [] : p.replicas.filter((id) => id !== p.node).map((id) => nodeById(nodes, id))
      const w = await loadWindow(`replicated factor ${factor} round ${rep + 1}`, [{ stream, target: leader, home: leader, followers }], nodes, args)
      const run = w.runs[0]!
      const round: ReplicatedRound = { rep, factor, leader: leader.id, followers: followers.map((n) => n.id), ...loadFigures(run) }
      rounds.push(round)
      record({ kind: 'run', measure: 'replicated', ...round, result: run.result })
      printLoadRound(`factor ${factor} (at ${leader.id})`, rep, round, nodes)
    }
  }
  console.log('')
  return rounds
}

// ---- replication: a follower's catch-up ----------------------------------------------------------

interface CatchUpRound {
  readonly rep: number
  readonly stream: string
  readonly leader: string
  readonly follower: string
  /** events published while it was down: the leader's end then, less the end they both had before */
  readonly events: number
  /** bytes of batches the follower fetched after its restart (sluice_cluster_replication_bytes_total) */
  readonly bytes: number
  /** from the kill until the leader took it out of the in-sync set */
  readonly shrinkMs: number
  readonly publishS: number
  /** from the restart until it logged "joined the cluster" */
  readonly joinMs: number
  /** from then until the leader saw its end at the leader's end */
  readonly catchUpMs: number
  /** from the restart until the leader's in-sync set held it again */
  readonly inSyncMs: number
  readonly eventsPerSec: number
  readonly mbPerSec: number
}

/** The end of a stream at its leader once it stops moving (requests cut at the loader's exit). */
async function settledEnd(leader: SluiceNode, stream: string): Promise<number> {
  let prev = leadingOf(await clusterView(leader), stream).end
  for (let i = 0; i < 30; i++) {
    await sleep(100)
    const cur = leadingOf(await clusterView(leader), stream).end
    if (cur === prev) return cur
    prev = cur
  }
  return prev
}

async function measureCatchUp(nodes: SluiceNode[], args: Args, record: (o: object) => void): Promise<CatchUpRound[]> {
  const stream = forwardStream
  console.log(
    `## catch-up: SIGKILL a follower of ${stream}, wait until the leader takes it out of the in-sync set (replicaLagMax ${args.replicaLagMaxS} s), publish ${fmtInt(args.events)} events at the leader, restart the follower and time its catch-up`,
  )
  const rounds: CatchUpRound[] = []
  for (let rep = 0; rep < args.runs; rep++) {
    const view = await settled(nodes, replicationFactor)
    const p = placementOf(view, stream)
    const leader = nodeById(nodes, p.node)
    const controller = view.controller!.node
    const leads = (id: string): number => view.placement.filter((q) => q.node === id).length
    // Not the controller, and leading nothing if it can be: its death then changes only the in-sync set.
    const candidates = p.replicas.filter((id) => id !== p.node && id !== controller)
    const followerId = candidates.find((id) => leads(id) === 0) ?? candidates[0] ?? p.replicas.find((id) => id !== p.node)
    if (followerId === undefined) throw new Error(`${stream} has no follower: replicas [${p.replicas.join(', ')}]`)
    const follower = nodeById(nodes, followerId)
    const endBefore = leadingOf(await clusterView(leader), stream).end
    const followed = (await clusterView(follower)).replication.following[stream] as { readonly end: number } | undefined
    if (followed?.end !== endBefore) problem(`catch-up round ${rep + 1}: before the kill ${follower.id} held ${stream} to ${followed?.end ?? 'nothing'}, the leader ${leader.id} to ${endBefore}`)

    follower.proc.child.kill('SIGKILL')
    await follower.proc.exited
    const k0 = performance.now()
    const shrinkUntil = k0 + args.replicaLagMaxS * 1000 + 10_000
    while (placementOf(await clusterView(leader), stream).isr.includes(follower.id)) {
      if (performance.now() > shrinkUntil) throw new Error(`catch-up round ${rep + 1}: ${leader.id} kept the dead ${follower.id} in ${stream}'s in-sync set for ${fmtInt(performance.now() - k0)} ms`)
      await sleep(100)
    }
    const shrinkMs = performance.now() - k0

    const spec: ClosedSpec = { mode: 'closed', url: `${leader.url}${publishPath(stream)}`, events: eventsPerRequest, connections: args.connections, durationS: catchUpLoadMaxS, warmupS: 0, maxRequests: Math.ceil(args.events / eventsPerRequest) }
    const pub0 = performance.now()
    const run = await runLoad(spec, [])
    const publishS = (performance.now() - pub0) / 1000
    const r = run.result
    const other = Object.entries(r.statusCodes).filter(([k]) => k !== '200')
    if (other.length > 0 || r.errors > 0 || r.timeouts > 0 || r.confirmed !== r.status200) {
      problem(`catch-up round ${rep + 1}: loader into ${stream} at ${leader.id} with ${follower.id} down: status ${JSON.stringify(r.statusCodes)}, errors ${r.errors}, timeouts ${r.timeouts}, confirmed ${r.confirmed} of ${r.status200} 200s`)
    }
    const target = await settledEnd(leader, stream)
    const events = target - endBefore
    if (events < r.confirmed * eventsPerRequest) problem(`catch-up round ${rep + 1}: ${stream} at ${leader.id} grew by ${fmtInt(events)} events, fewer than the ${fmtInt(r.confirmed * eventsPerRequest)} confirmed`)

    let joinedAt: number | undefined
    let startedAgain = false
    let startErr: unknown
    const r0 = performance.now()
    const starting = startNodeProc(follower.id, follower.configFile, (line) => {
      if (joinedAt === undefined && line.includes('"msg":"joined the cluster"')) joinedAt = performance.now()
      // A copy that does not continue the leader's is fetched again from the start (not a catch-up).
      if (line.includes('starting it again')) startedAgain = true
    }).catch((err: unknown) => {
      startErr = err
      return undefined
    })
    let caughtAt: number | undefined
    let inSyncAt: number | undefined
    for (let k = 1; caughtAt === undefined || inSyncAt === undefined; k++) {
      if (startErr !== undefined) throw startErr
      if (performance.now() - r0 > catchUpGiveUpMs) throw new Error(`catch-up round ${rep + 1}: ${follower.id} had not caught up on ${stream} (${fmtInt(events)} events) and come back in sync within ${catchUpGiveUpMs} ms of its restart`)
      try {
        const v = await clusterView(leader, pollTimeoutMs)
        const at = performance.now()
        const f = leadingOf(v, stream).followers[follower.id]
        if (caughtAt === undefined && f !== undefined && f.end >= target) caughtAt = at
        if (inSyncAt === undefined && placementOf(v, stream).isr.includes(follower.id)) inSyncAt = at
      } catch {
        // A slow or failed answer is one missed poll.
      }
      await sleep(Math.max(0, r0 + k * pollEveryMs - performance.now()))
    }
    const proc = await starting
    if (proc === undefined) throw startErr
    follower.proc = proc
    if (joinedAt === undefined) problem(`catch-up round ${rep + 1}: ${follower.id} logged no "joined the cluster"; its catch-up is timed from its restart`)
    if (startedAgain) problem(`catch-up round ${rep + 1}: ${follower.id} started its copy of ${stream} again from the leader's start instead of continuing it`)
    const from = joinedAt ?? r0
    const catchUpMs = Math.max(1, caughtAt - from)
    const bytes = (await counters(follower)).replicationBytes
    const [atLeader, atFollower] = await Promise.all([storedEvents(leader, stream), storedEvents(follower, stream)])
    if (atLeader !== atFollower) problem(`catch-up round ${rep + 1}: back in sync, ${follower.id} holds ${fmtInt(atFollower)} events of ${stream}, its leader ${leader.id} ${fmtInt(atLeader)}`)
    const round: CatchUpRound = {
      rep,
      stream,
      leader: leader.id,
      follower: follower.id,
      events,
      bytes,
      shrinkMs,
      publishS,
      joinMs: from - r0,
      catchUpMs,
      inSyncMs: inSyncAt - r0,
      eventsPerSec: events / (catchUpMs / 1000),
      mbPerSec: bytes / 1e6 / (catchUpMs / 1000),
    }
    rounds.push(round)
    record({ kind: 'run', measure: 'catch-up', ...round, result: r })
    console.log(
      `round ${rep + 1}: killed ${round.follower} (follower of ${stream}, led by ${round.leader}); out of the in-sync set after ${fmtInt(shrinkMs)} ms; ${fmtInt(events)} events published in ${publishS.toFixed(1)} s;` +
        ` restarted: joined after ${fmtInt(round.joinMs)} ms, caught up ${fmtInt(events)} events (${(bytes / 1e6).toFixed(1)} MB) in ${fmtInt(catchUpMs)} ms: ${fmtInt(round.eventsPerSec)} events/s, ${round.mbPerSec.toFixed(1)} MB/s; in sync again ${fmtInt(round.inSyncMs)} ms after the restart`,
    )
  }
  console.log('')
  return rounds
}

// ---- machine, code, results ----------------------------------------------------------------------

interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly node: string
  readonly kernel: string
  readonly loadAvg: readonly number[]
  readonly etcd: string
}

function machineInfo(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1].trim()
  } catch {
    // not Linux
  }
  const etcd = /etcd Version: (\S+)/.exec(spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown'
  return { cpu, cores: cpus().length, node: process.version, kernel: release(), loadAvg: loadavg(), etcd }
}

function gitHead(repo: string): { head: string; dirtySrc: number } {
  const git = (args: string[]): string => spawnSync('git', args, { cwd: repo, encoding: 'utf8' }).stdout?.trim() ?? ''
  return { head: git(['rev-parse', '--short', 'HEAD']) || 'unknown', dirtySrc: git(['status', '--porcelain', '--', 'src']).split('\n').filter((l) => l !== '').length }
}

/** Replaces the part of RESULTS.md between this script's markers, or appends it at the end. */
function writeResultsSection(file: string, section: string): void {
  const block = `${sectionStart}\n${section.trim()}\n${sectionEnd}`
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n'
  const a = old.indexOf(sectionStart)
  const b = old.indexOf(sectionEnd)
  const text = a >= 0 && b > a ? old.slice(0, a) + block + old.slice(b + sectionEnd.length) : `${old.replace(/\n*$/, '')}\n\n${block}\n`
  writeFileSync(file, text)
}

interface Summary {
  readonly table: string
  readonly json: object
}

interface Measured {
  readonly forward?: ForwardSummary | undefined
  readonly aggregate?: readonly AggregateRound[] | undefined
  readonly failover?: readonly FailoverRound[] | undefined
  readonly leaderFailover?: readonly LeaderFailoverRound[] | undefined
  readonly replicated?: readonly ReplicatedRound[] | undefined
  readonly catchUp?: readonly CatchUpRound[] | undefined
}

const fmtMs = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')

function summarize(m: Measured, nodes: readonly string[]): Summary {
  const { forward, aggregate, failover } = m
  const rows = ['| Measure | Median (min–max) | Unit | Server CPU µs/event, median: all nodes; per node |', '|---|---|---|---|']
  const json: Record<string, unknown> = {}
  if (forward !== undefined) {
    const of = (c: ForwardCase): ForwardRound[] => forward.rounds.filter((r) => r.case === c)
    const direct = of('direct')
    const fwd = of('forwarded')
    const role = (id: string): string => (id === forward.home ? ' (home)' : id === forward.entry ? ' (entry)' : '')
    const cpuCell = (rs: readonly ForwardRound[]): string =>
      `${fmtUs(spread(rs.map((r) => r.cpuUsPerEvent)).median)}; ${nodes.map((id) => `${id}${role(id)} ${fmtUs(spread(rs.map((r) => r.cpuUsPerEventByNode[id] ?? Number.NaN)).median)}`).join(', ')}`
    const ratio = spread(direct.map((d) => (fwd.find((f) => f.rep === d.rep)?.eventsPerSec ?? Number.NaN) / d.eventsPerSec))
    rows.push(`| forward (a): ${forward.stream} published at its home ${forward.home} | ${fmtSpread(spread(direct.map((r) => r.eventsPerSec)), fmtInt)} | confirmed events/s | ${cpuCell(direct)} |`)
    rows.push(`| forward (b): ${forward.stream} published at ${forward.entry}, forwarded to ${forward.home} | ${fmtSpread(spread(fwd.map((r) => r.eventsPerSec)), fmtInt)} | confirmed events/s | ${cpuCell(fwd)} |`)
    rows.push(`| forward ratio (b)/(a), round by round | ${fmtSpread(ratio, fmtRatio)} | × | |`)
    json['forward'] = {
      stream: forward.stream,
      home: forward.home,
      entry: forward.entry,
      direct: spread(direct.map((r) => r.eventsPerSec)),
      forwarded: spread(fwd.map((r) => r.eventsPerSec)),
      ratio,
      directCpuUsPerEvent: spread(direct.map((r) => r.cpuUsPerEvent)),
      forwardedCpuUsPerEvent: spread(fwd.map((r) => r.cpuUsPerEvent)),
    }
  }
  if (aggregate !== undefined) {
    const of = (s: AggregateSetup): AggregateRound[] => aggregate.filter((r) => r.setup === s)
    const cl = of('cluster')
    const si = of('single')
    const ratio = spread(cl.map((c) => c.eventsPerSec / (si.find((s) => s.rep === c.rep)?.eventsPerSec ?? Number.NaN)))
    rows.push(`| aggregate: 3 loaders, each into its stream at its home, 3 nodes | ${fmtSpread(spread(cl.map((r) => r.eventsPerSec)), fmtInt)} | confirmed events/s in all | ${fmtUs(spread(cl.map((r) => r.wholeCpuUsPerEvent)).median)} over the whole load, warm-up included |`)
    rows.push(`| aggregate: the same 3 loaders into one node without a cluster section | ${fmtSpread(spread(si.map((r) => r.eventsPerSec)), fmtInt)} | confirmed events/s in all | ${fmtUs(spread(si.map((r) => r.wholeCpuUsPerEvent)).median)} over the whole load, warm-up included |`)
    rows.push(`| aggregate ratio 3 nodes / 1 node, round by round | ${fmtSpread(ratio, fmtRatio)} | × | |`)
    json['aggregate'] = { cluster: spread(cl.map((r) => r.eventsPerSec)), single: spread(si.map((r) => r.eventsPerSec)), ratio }
  }
  if (failover !== undefined) {
    const ms = spread(failover.map((r) => r.failoverMs))
    const pass = failover.every((r) => r.failoverMs <= failoverTargetMs)
    rows.push(`| controller failover after SIGKILL, leaseTtl ${leaseTtlMs / 1000} s (target ≤ ${fmtInt(failoverTargetMs)} ms: ${pass ? 'PASS, every round' : 'MISS'}) | ${fmtSpread(ms, fmtInt)} | ms | |`)
    json['failover'] = { ms, targetMs: failoverTargetMs, pass }
  }
  if (m.leaderFailover !== undefined && m.leaderFailover.length > 0) {
    const lf = m.leaderFailover
    const ms = spread(lf.map((r) => r.failoverMs))
    const placementMs = spread(lf.map((r) => r.placementMs))
    const pass = lf.every((r) => r.failoverMs <= failoverTargetMs)
    const withController = lf.filter((r) => r.killedController).length
    const note = withController === 0 ? 'a leader that is not the controller' : `the leader; in ${withController} of ${lf.length} rounds the controller too`
    rows.push(
      `| stream leader failover, factor ${replicationFactor}: SIGKILL of ${note} to the first publish confirmed by the new leader, retried through a survivor, leaseTtl ${leaseTtlMs / 1000} s (target ≤ ${fmtInt(failoverTargetMs)} ms: ${pass ? 'PASS, every round' : 'MISS'}) | ${fmtSpread(ms, fmtInt)} | ms | |`,
    )
    rows.push(`| stream leader failover: SIGKILL to the survivor's placement naming the new leader | ${fmtSpread(placementMs, fmtInt)} | ms | |`)
    json['leaderFailover'] = { ms, placementMs, targetMs: failoverTargetMs, pass, killedController: withController }
  }
  if (m.replicated !== undefined && m.replicated.length > 0) {
    const of = (f: number): ReplicatedRound[] => m.replicated!.filter((r) => r.factor === f)
    const r3 = of(replicationFactor)
    const r1 = of(1)
    const cpuCell = (rs: readonly ReplicatedRound[]): string => {
      const ids = Object.keys(rs[0]?.cpuUsPerEventByNode ?? {})
      const role = (id: string): string => (id === rs[0]?.leader ? ' (leader)' : '')
      return `${fmtUs(spread(rs.map((r) => r.cpuUsPerEvent)).median)}; ${ids.map((id) => `${id}${role(id)} ${fmtUs(spread(rs.map((r) => r.cpuUsPerEventByNode[id] ?? Number.NaN)).median)}`).join(', ')}`
    }
    const latency = (rs: readonly ReplicatedRound[]): string => `p50 ${fmtSpread(spread(rs.map((r) => r.latencyMs.p50)), fmtMs)}; p99 ${fmtSpread(spread(rs.map((r) => r.latencyMs.p99)), fmtMs)}`
    const ratio = spread(r3.map((a) => a.eventsPerSec / (r1.find((b) => b.rep === a.rep)?.eventsPerSec ?? Number.NaN)))
    const stream = forwardStream
    rows.push(`| replicated: ${stream} published at its leader ${r3[0]?.leader ?? '?'}, factor ${replicationFactor}, minInSync ${replicationMinInSync} | ${fmtSpread(spread(r3.map((r) => r.eventsPerSec)), fmtInt)} | confirmed events/s | ${cpuCell(r3)} |`)
    rows.push(`| replicated: ${stream} published at its home ${r1[0]?.leader ?? '?'}, factor 1 | ${fmtSpread(spread(r1.map((r) => r.eventsPerSec)), fmtInt)} | confirmed events/s | ${cpuCell(r1)} |`)
    rows.push(`| replicated ratio factor ${replicationFactor} / factor 1, round by round | ${fmtSpread(ratio, fmtRatio)} | × | |`)
    rows.push(`| replicated: confirm latency of a request of ${eventsPerRequest} events, factor ${replicationFactor} | ${latency(r3)} | ms | |`)
    rows.push(`| replicated: confirm latency of a request of ${eventsPerRequest} events, factor 1 | ${latency(r1)} | ms | |`)
    json['replicated'] = {
      factor3: spread(r3.map((r) => r.eventsPerSec)),
      factor1: spread(r1.map((r) => r.eventsPerSec)),
      ratio,
      factor3CpuUsPerEvent: spread(r3.map((r) => r.cpuUsPerEvent)),
      factor1CpuUsPerEvent: spread(r1.map((r) => r.cpuUsPerEvent)),
      factor3LatencyMs: { p50: spread(r3.map((r) => r.latencyMs.p50)), p99: spread(r3.map((r) => r.latencyMs.p99)) },
      factor1LatencyMs: { p50: spread(r1.map((r) => r.latencyMs.p50)), p99: spread(r1.map((r) => r.latencyMs.p99)) },
    }
  }
  if (m.catchUp !== undefined && m.catchUp.length > 0) {
    const cu = m.catchUp
    const events = spread(cu.map((r) => r.events)).median
    const mb = spread(cu.map((r) => r.bytes / 1e6)).median
    rows.push(`| follower catch-up: ${fmtInt(events)} events (${mb.toFixed(1)} MB stored) published while it was down, from its joining the cluster until its end reached the leader's | ${fmtSpread(spread(cu.map((r) => r.eventsPerSec)), fmtInt)} | events/s | |`)
    rows.push(`| follower catch-up, the same in stored bytes | ${fmtSpread(spread(cu.map((r) => r.mbPerSec)), fmtRatio)} | MB/s | |`)
    rows.push(`| follower restart (SIGKILLed, then started on its data) to back in the in-sync set | ${fmtSpread(spread(cu.map((r) => r.inSyncMs)), fmtInt)} | ms | |`)
    json['catchUp'] = { events, bytes: spread(cu.map((r) => r.bytes)), eventsPerSec: spread(cu.map((r) => r.eventsPerSec)), mbPerSec: spread(cu.map((r) => r.mbPerSec)), inSyncMs: spread(cu.map((r) => r.inSyncMs)), catchUpMs: spread(cu.map((r) => r.catchUpMs)) }
  }
  return { table: rows.join('\n'), json }
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  const repo = findRepoRoot()
  const root = mkdtempSync(join(tmpdir(), 'sluice-bench-cluster-'))
  let etcd: EtcdServer | undefined
  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    for (const c of children) c.kill('SIGKILL')
    etcd?.kill()
    rmSync(root, { recursive: true, force: true })
  }
  const onSignal = (sig: string): void => {
    console.error(`\n${sig}: stopping the nodes, etcd and the load generators, removing ${root}`)
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanup)

  const resultsFile = join(resultsDir(args.record), 'cluster.jsonl')
  const runId = new Date().toISOString()
  const record = (obj: object): void => appendFileSync(resultsFile, `${JSON.stringify({ bench: 'cluster', runId, ...obj })}\n`)
  const t0 = performance.now()

  const nodes: SluiceNode[] = []
  const replicated: SluiceNode[] = []
  const replication = { factor: replicationFactor, minInSync: replicationMinInSync, replicaLagMaxS: args.replicaLagMaxS }
  const plainNeeded = (['forward', 'aggregate', 'failover', 'replicated'] as const).some((m) => args.only.has(m))
  const replicatedNeeded = (['leader-failover', 'replicated', 'catch-up'] as const).some((m) => args.only.has(m))
  try {
    const machine = machineInfo()
    const code = gitHead(repo)
    console.log(`# Sluice cluster benchmark  ${runId}`)
    console.log(`CPU     ${machine.cpu}, ${machine.cores} cores; Node ${machine.node}, Linux ${machine.kernel}, etcd ${machine.etcd}`)
    console.log(`Load    ${machine.loadAvg.map((l) => l.toFixed(2)).join(' ')} (1/5/15 min) at start`)
    console.log(`Code    git ${code.head}${code.dirtySrc > 0 ? ` with ${code.dirtySrc} uncommitted file(s) under src/` : ', src/ clean'}`)
    console.log(`Setup   ${nodeIds.length} nodes + 1 etcd on 127.0.0.1, leaseTtl ${leaseTtlMs} ms, fsync batch 5ms; NDJSON ${eventsPerRequest} events of ${eventBytes} B a request, ${args.connections} connections a loader`)
    if (replicatedNeeded) console.log(`        replication: another ${replicatedIds.length} nodes on the same etcd with factor ${replication.factor}, minInSync ${replication.minInSync}, replicaLagMax ${replication.replicaLagMaxS} s; catch-up publishes ${fmtInt(args.events)} events`)
    console.log(`Runs    ${args.runs} round${args.runs === 1 ? '' : 's'}; ${args.durationS} s measured after ${args.warmupS} s warm-up; data in ${root}`)
    console.log(`Note    nodes, etcd and load generators share ${machine.cores} cores: the throughput figures are bounded by this machine, so read the ratios${machine.cores <= 2 ? ' (on 2 cores the three nodes, etcd and the loaders take turns)' : ''}`)
    console.log('')
    record({ kind: 'machine', ...machine, code, args: { ...args, only: [...args.only] }, eventBytes, eventsPerRequest, leaseTtlMs })

    etcd = await startEtcd(root)
    const endpoint = etcd.endpoint
    if (plainNeeded) {
      nodes.push(...(await Promise.all(nodeIds.map((id) => createNode(root, id, { nodeId: id, etcdEndpoint: endpoint, prefix: etcdPrefix })))))
      const view = await settled(nodes)
      console.log(`Cluster ${view.placement.map((p) => `${p.stream} on ${p.node}`).join(', ')}; controller ${view.controller?.node ?? 'none'}; settled ${fmtInt(performance.now() - t0)} ms after start`)
      console.log('')
    }

    const forward = args.only.has('forward') ? await measureForward(nodes, args, record) : undefined
    const aggregate = args.only.has('aggregate') ? await measureAggregate(root, nodes, args, record) : undefined
    const failover = args.only.has('failover') ? await measureFailover(nodes, args, record) : undefined

    // The replicated cluster starts after the measurements above, so they run as they did without it.
    if (replicatedNeeded) {
      const r0 = performance.now()
      replicated.push(...(await Promise.all(replicatedIds.map((id) => createNode(root, id, { nodeId: id, etcdEndpoint: endpoint, prefix: replicatedPrefix, replication })))))
      const view = await settled(replicated, replicationFactor)
      console.log(
        `Replicated cluster ${view.placement.map((p) => `${p.stream} led by ${p.node} (in sync ${p.isr.join(' ')})`).join(', ')}; controller ${view.controller?.node ?? 'none'}; settled ${fmtInt(performance.now() - r0)} ms after its start`,
      )
      console.log('')
    }
    // Failover first: the streams then hold only its own publishers' events.
    const leaderFailover = args.only.has('leader-failover') ? await measureLeaderFailover(replicated, args, record) : undefined
    const replicatedRounds = args.only.has('replicated') ? await measureReplicated(nodes, replicated, args, record) : undefined
    // The first cluster has nothing more to do.
    await Promise.all(nodes.map((n) => stopProc(n.proc)))
    const catchUp = args.only.has('catch-up') ? await measureCatchUp(replicated, args, record) : undefined

    const summary = summarize({ forward, aggregate, failover, leaderFailover, replicated: replicatedRounds, catchUp }, nodes.map((n) => n.id))
    console.log(summary.table)
    console.log('')
    console.log(`Load at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min); ${fmtInt((performance.now() - t0) / 1000)} s in all`)
    for (const p of problems) console.log(`PROBLEMS ${p}`)
    if (problems.length === 0) console.log('Checks  every window stored at least what was confirmed, at the home and its followers only; no node fenced itself or shrank an in-sync set; no error answers')
    record({ kind: 'summary', ...summary.json, problems })

    if (args.record) {
      const when = runId.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
      const md = [
        '## Cluster mode: npm run bench:cluster',
        '',
        `- **Run:** ${when} (\`runId\` \`${runId}\` in \`benchmarks/results/cluster.jsonl\`). Command: \`npm run bench:cluster -- ${process.argv.slice(2).join(' ')}\` (${args.runs} round${args.runs === 1 ? '' : 's'}, ${args.durationS} s measured after ${args.warmupS} s warm-up, ${args.connections} connections a loader).`,
        `- **Machine:** "${machine.cpu}", ${machine.cores} cores, Linux ${machine.kernel}, Node ${machine.node}, etcd ${machine.etcd}; load average at start ${machine.loadAvg.map((l) => l.toFixed(2)).join(' / ')}. Sluice at ${code.head}${code.dirtySrc > 0 ? ` with ${code.dirtySrc} uncommitted file(s) under src/` : ''}.`,
        `- **Set-up:** 3 nodes and one etcd on 127.0.0.1 (leaseTtl ${leaseTtlMs / 1000} s), fsync batch 5 ms, streams s1–s3 placed one per node by the controller; load generators (\`benchmarks/http-load.ts\`) in their own processes, NDJSON requests of ${eventsPerRequest} events of ${eventBytes} B. CPU from /proc/<pid>/stat of the node processes.${replicatedNeeded ? ` Replication rows: another 3 nodes on the same etcd under another prefix, \`cluster.replication\` factor ${replication.factor}, minInSync ${replication.minInSync}, replicaLagMax ${replication.replicaLagMaxS} s, started after the rows above; leader failover with ${idPublishers} publishers in the benchmark's process retrying requests of ${idEventsPerRequest} events with ids every ${pollEveryMs} ms; catch-up after ${fmtInt(args.events)} events published while the follower was down.` : ''}`,
        `- **Shared CPU:** the nodes, etcd and the load generators share ${machine.cores} cores, so the totals are bounded by the machine; read the ratios.`,
        '',
        summary.table,
        '',
        problems.length === 0 ? 'Checks: every window stored at least what was confirmed, at the home and its followers only; no node fenced itself or shrank an in-sync set; no error answers.' : `PROBLEMS: ${problems.join('; ')}`,
      ]
      writeResultsSection(join(repo, 'benchmarks', 'RESULTS.md'), md.join('\n'))
      console.log(`RESULTS.md section written; raw results appended to ${resultsFile}`)
    } else console.log(`raw results appended to ${resultsFile} (--record writes benchmarks/results/cluster.jsonl and RESULTS.md)`)
    return problems.length === 0 ? 0 : 1
  } finally {
    // Clean stops revoke the leases, so etcd is stopped last.
    await Promise.all([...nodes, ...replicated].map((n) => stopProc(n.proc).catch(() => undefined)))
    await etcd?.stop().catch(() => undefined)
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
