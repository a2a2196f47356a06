// Peak-shaving demo: `npm run demo:peak`, or after a build `node dist/benchmarks/peak-demo.js [options]`.
//
// The scenario: a consumer group whose `deliveryRate` is R receives a burst at 10 × R for 10 s.
// Sluice stores the burst at ingest speed, and the group drains it at R, never faster, until the
// backlog is gone. The demo runs that for real and draws it:
//
//   server     `node dist/src/cli.js serve --config <generated yaml>` as a child process, a fresh
//              temp dataDir, HTTP on a free 127.0.0.1 port, fsync: batch; one topic exchange `logs`
//              bound to the stream `app-logs`, read by the group `indexer` with deliveryRate R.
//   consumer   this same file forked with `--consumer` (its own process): fetches with long poll
//              (max 1,000, waitMs 1,000) and acks each batch before the next fetch, as fast as the
//              group lets it. It checks every event's sequence number: no gap, no duplicate.
//   publisher  this process: NDJSON requests of 500 events, paced to 10 × R for 10 s, at most 8
//              requests in flight; a 429/503 is retried after its Retry-After (none is expected:
//              the demo config has no rateLimits).
//   sampler    this process, every 250 ms: GET /v1/streams/app-logs (event count → ingest rate)
//              and GET /v1/groups/indexer (acked → delivery rate, backlog), until the backlog is
//              drained and everything confirmed was delivered, or 130 s after the burst began.
//
// Output: peak.svg (hand-written SVG: rates on top, backlog below), the samples in peak.json,
// and a summary on stdout. With --record they replace benchmarks/peak.svg and
// benchmarks/results/peak.json (the README's picture); without it they go to a temp dir. Exits 1 if the delivered events are not
// exactly the confirmed ones, or if the backlog did not drain in time.
//
// Options:
//   --rate=R          the group's deliveryRate in events/s (default 2000): a 10 × R burst for 10 s
//                     leaves about 9 × R × 10 events to drain, i.e. about 90 s at R after the burst
//   --factor=F        burst rate as a multiple of R (default 10)
//   --burst-s=S       burst duration in seconds (default 10)
//   --max-s=S         stop sampling this long after the burst began, drained or not (default 130)
//   --record          write benchmarks/peak.svg and benchmarks/results/peak.json
//   --no-write        print the summary only; do not write the SVG or the JSON
//   --replot          run nothing: redraw benchmarks/peak.svg from benchmarks/results/peak.json
//
// The defaults keep the whole run near 2 minutes: about 10 s of burst, 90 s of drain, plus the
// build and start. A smaller --rate scales the run down; the scenario stays F × R for S seconds.
//
// The drain rate reported is acked events per second from 1 s into the burst (past the bucket's
// first tenth of a second of tokens) to the last sample that still had a backlog.
//
// The machine this was written for has 2 cores, shared with whatever else runs: the load average
// at start and end is printed and saved, so a disturbed run can be told from a clean one.

import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findRepoRoot, resultsDir } from './lib/results.js'
import { freePort, procCpuS } from './lib/proc.js'

// ---- parameters ----------------------------------------------------------------------------------

const stream = 'app-logs'
const group = 'indexer'
const exchange = 'logs'
const eventsPerRequest = 500
const publishInFlightMax = 8
const publishAttemptsMax = 20
const sampleMs = 250
const tailAfterDrainS = 3
const fetchMax = 1000
const fetchWaitMs = 1000
const prefetch = 2000

interface Args {
  rate: number
  factor: number
  burstS: number
  maxS: number
  write: boolean
  record: boolean
  replot: boolean
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { rate: 2000, factor: 10, burstS: 10, maxS: 130, write: true, record: false, replot: false }
  const num = (k: string, v: string, min: number, max: number): number => {
    const n = Number(v.replaceAll('_', ''))
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${k} must be a number from ${min} to ${max}`)
    return n
  }
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined]
    if (k === '--rate' && v !== undefined) args.rate = Math.round(num(k, v, 10, 1_000_000))
    else if (k === '--factor' && v !== undefined) args.factor = num(k, v, 1, 100)
    else if (k === '--burst-s' && v !== undefined) args.burstS = num(k, v, 1, 120)
    else if (k === '--max-s' && v !== undefined) args.maxS = num(k, v, 5, 1200)
    else if (k === '--no-write') args.write = false
    else if (k === '--record') args.record = true
    else if (k === '--replot') args.replot = true
    else throw new Error(`unknown argument ${a}`)
  }
  return args
}

// ---- small helpers -------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)))
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtS = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
const fmtPct = (n: number): string => (Number.isFinite(n) ? `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(1)}%` : 'n/a')

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}

async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}

// ---- consumer (a child process: this file with --consumer) ---------------------------------------

interface ConsumerSpec {
  readonly base: string
  readonly group: string
  readonly consumer: string
  /** Sequence numbers run from 0 to capacity − 1. */
  readonly capacity: number
}

export interface ConsumerReport {
  readonly received: number
  readonly unique: number
  readonly duplicates: number
  readonly outOfRange: number
  readonly redelivered: number
  readonly acked: number
  readonly ackFailed: number
  readonly fetches: number
  readonly emptyFetches: number
  readonly maxBatch: number
  readonly errors: number
  readonly cpuS: number
}

interface WireDelivery {
  readonly tag: string
  readonly redelivered: boolean
  readonly body: { readonly n?: unknown }
}

async function runConsumer(spec: ConsumerSpec): Promise<void> {
  let stop = false
  process.on('message', (m) => {
    if (m === 'stop') stop = true
  })
  process.on('disconnect', () => (stop = true))
  const seen = new Uint8Array(spec.capacity)
  const r = { received: 0, unique: 0, duplicates: 0, outOfRange: 0, redelivered: 0, acked: 0, ackFailed: 0, fetches: 0, emptyFetches: 0, maxBatch: 0, errors: 0 }
  const cpu0 = process.cpuUsage()
  process.send?.('ready')
  while (!stop) {
    let events: WireDelivery[]
    try {
      events = (await postJson<{ events: WireDelivery[] }>(`${spec.base}/v1/groups/${spec.group}/fetch`, { consumer: spec.consumer, max: fetchMax, waitMs: fetchWaitMs })).events
    } catch {
      r.errors++
      await sleep(100)
      continue
    }
    r.fetches++
    if (events.length === 0) {
      r.emptyFetches++
      continue
    }
    r.maxBatch = Math.max(r.maxBatch, events.length)
    for (const e of events) {
      r.received++
      if (e.redelivered) r.redelivered++
      const n = e.body.n
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= spec.capacity) {
        r.outOfRange++
        continue
      }
      if (seen[n] === 1) r.duplicates++
      else {
        seen[n] = 1
        r.unique++
      }
    }
    // Ack before the next fetch: the demo's consumer does no work, so it is as fast as the
    // group's deliveryRate allows, and what it holds in flight stays small.
    for (let attempt = 0; ; attempt++) {
      try {
        const a = await postJson<{ settled: number; failed: unknown[] }>(`${spec.base}/v1/groups/${spec.group}/ack`, { tags: events.map((e) => e.tag) })
        r.acked += a.settled
        r.ackFailed += a.failed.length
        break
      } catch {
        r.errors++
        if (attempt >= 5) break
        await sleep(100)
      }
    }
  }
  const c = process.cpuUsage(cpu0)
  const report: ConsumerReport = { ...r, cpuS: (c.user + c.system) / 1e6 }
  process.send?.({ report })
  process.disconnect?.()
}

// ---- server --------------------------------------------------------------------------------------

function serverYaml(dataDir: string, port: number, rate: number): string {
  return `# Generated by benchmarks/peak-demo.ts for one run.
server:
  dataDir: ${JSON.stringify(dataDir)}
  http: { host: 127.0.0.1, port: ${port} }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { enabled: false }
  durability: { fsync: batch, interval: 5ms }
  log: { level: warn }
exchanges:
  ${exchange}: { type: topic, routingKey: "{service}.{level}" }
streams:
  ${stream}: {}
bindings:
  - { exchange: ${exchange}, stream: ${stream}, key: "#" }
groups:
  ${group}: { stream: ${stream}, prefetch: ${prefetch}, deliveryRate: ${rate}/s }
`
}

interface Server {
  readonly child: ChildProcess
  readonly base: string
  readonly logFile: string
  stop(): Promise<void>
}

async function startSluice(repo: string, dir: string, rate: number): Promise<Server> {
  const port = await freePort()
  const configFile = join(dir, 'sluice.yaml')
  writeFileSync(configFile, serverYaml(join(dir, 'data'), port, rate))
  const logFile = join(dir, 'server.log')
  const out = openSync(logFile, 'a')
  const child = spawn(process.execPath, [join(repo, 'dist/src/cli.js'), 'serve', '--config', configFile], { stdio: ['ignore', out, out] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}; its log:\n${readFileSync(logFile, 'utf8')}`)
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the server was not ready within 20 s; its log:\n${readFileSync(logFile, 'utf8')}`)
    await sleep(100)
  }
  return {
    child,
    base,
    logFile,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(t)
    },
  }
}

// ---- publisher -----------------------------------------------------------------------------------

interface PublishTotals {
  sent: number
  confirmed: number
  requests: number
  refusals: Record<string, number>
  failed: number
  lastConfirmAt: number
}

const services = ['web', 'api', 'auth', 'billing']
const levels = ['info', 'info', 'info', 'warn', 'error']
const paths = ['/api/items', '/api/orders', '/login', '/health', '/api/search?q=lamp']

function ndjsonBody(from: number, count: number): string {
  let s = ''
  for (let n = from; n < from + count; n++) {
    const e = {
      n,
      service: services[n % services.length],
      level: levels[n % levels.length],
      host: `node-${n % 7}`,
      msg: `GET ${paths[n % paths.length]} ${n % 50 === 0 ? 503 : 200} ${(n * 7) % 97}ms`,
      trace: (n * 2654435761).toString(16).padStart(16, '0').slice(-16),
    }
    s += `${JSON.stringify(e)}\n`
  }
  return s
}

/** One NDJSON request, retried after Retry-After on 429/503; adds what was confirmed to `totals`. */
async function publishOnce(base: string, from: number, count: number, totals: PublishTotals): Promise<void> {
  const body = ndjsonBody(from, count)
  totals.sent += count
  for (let attempt = 1; attempt <= publishAttemptsMax; attempt++) {
    totals.requests++
    let res: Response
    try {
      res = await fetch(`${base}/v1/exchanges/${exchange}/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
    } catch {
      totals.refusals.network = (totals.refusals.network ?? 0) + 1
      await sleep(200)
      continue
    }
    if (res.status === 200) {
      const r = (await res.json()) as { accepted: number }
      totals.confirmed += r.accepted
      totals.lastConfirmAt = performance.now()
      return
    }
    const text = await res.text()
    let code = String(res.status)
    try {
      code = (JSON.parse(text) as { error: { code: string } }).error.code
    } catch {
      // not the error shape; keep the status
    }
    totals.refusals[code] = (totals.refusals[code] ?? 0) + 1
    if (res.status !== 429 && res.status !== 503) break
    // What a well-behaved client does: wait as long as the server says, then send the same body.
    await sleep(Number(res.headers.get('retry-after') ?? '1') * 1000)
  }
  totals.failed += count
}

async function publishBurst(base: string, eventsPerSec: number, burstS: number, t0: number, totals: PublishTotals): Promise<void> {
  const total = Math.round(eventsPerSec * burstS)
  const intervalMs = (eventsPerRequest * 1000) / eventsPerSec
  const inFlight = new Set<Promise<void>>()
  for (let k = 0, from = 0; from < total; k++, from += eventsPerRequest) {
    await sleep(t0 + k * intervalMs - performance.now())
    while (inFlight.size >= publishInFlightMax) await Promise.race(inFlight)
    const p = publishOnce(base, from, Math.min(eventsPerRequest, total - from), totals).finally(() => inFlight.delete(p))
    inFlight.add(p)
  }
  await Promise.all(inFlight)
}

// ---- sampling ------------------------------------------------------------------------------------

export interface Sample {
  /** seconds since the burst began */
  readonly t: number
  /** events in the stream */
  readonly events: number
  readonly acked: number
  readonly delivered: number
  readonly backlog: number
  readonly inFlight: number
  /** events/s over the interval ending at t (0 for the first sample) */
  readonly ingestRate: number
  readonly deliveryRate: number
  /** ms the two GETs of this sample took: a slow answer means the server (or machine) stalled */
  readonly probeMs: number
}

interface GroupView {
  readonly acked: number
  readonly delivered: number
  readonly backlog: number
  readonly inFlight: number
  readonly redelivered: number
  readonly ackTimeouts: number
  readonly members: readonly unknown[]
}

async function sampleOnce(base: string, t0: number, prev: Sample | undefined): Promise<Sample> {
  const asked = performance.now()
  const [s, g] = await Promise.all([getJson<{ events: number }>(`${base}/v1/streams/${stream}`), getJson<GroupView>(`${base}/v1/groups/${group}`)])
  const t = (performance.now() - t0) / 1000
  const dt = prev === undefined ? 0 : t - prev.t
  return {
    t,
    events: s.events,
    acked: g.acked,
    delivered: g.delivered,
    backlog: g.backlog,
    inFlight: g.inFlight,
    ingestRate: dt > 0 ? (s.events - prev!.events) / dt : 0,
    deliveryRate: dt > 0 ? (g.acked - prev!.acked) / dt : 0,
    probeMs: performance.now() - asked,
  }
}

// ---- the SVG chart -------------------------------------------------------------------------------

interface ChartInput {
  readonly samples: readonly Sample[]
  readonly rate: number
  readonly factor: number
  readonly burstS: number
  readonly peakBacklog: number
  readonly peakAtS: number
  readonly drainedAtS: number | undefined
  readonly drainRate: number
  readonly footer: string
}

/** The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k) at or above v. */
function niceCeil(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p
  return 10 * p
}

const esc = (s: string): string => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
const px = (n: number): string => (Math.round(n * 10) / 10).toString()

function compact(n: number): string {
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`
  return String(n)
}

export function renderChart(c: ChartInput): string {
  const W = 960
  const H = 650
  const left = 86
  const right = W - 36
  const p1 = { top: 126, bottom: 372 }
  const p2 = { top: 420, bottom: 570 }
  const last = c.samples[c.samples.length - 1]
  const xMax = Math.max(10, Math.ceil((last?.t ?? 10) / 10) * 10)
  const x = (t: number): number => left + (Math.max(0, Math.min(t, xMax)) / xMax) * (right - left)
  // The rate axis is scaled to the burst, not to the highest sample: a 250 ms interval in which a
  // clump of confirms landed can read 2-3 × the burst rate, and scaling to it would flatten the
  // rest. Such a sample is clipped at the top of the panel and its value written there.
  const rMax = niceCeil(Math.max(c.rate * c.factor * 1.4, ...c.samples.map((s) => s.deliveryRate)))
  const y1 = (v: number): number => p1.bottom - (Math.max(0, v) / rMax) * (p1.bottom - p1.top)
  const bMax = niceCeil(Math.max(1, c.peakBacklog) * 1.12)
  const y2 = (v: number): number => p2.bottom - (Math.max(0, v) / bMax) * (p2.bottom - p2.top)
  // Labels drawn over data get a white halo, so a noisy line under them does not hide them.
  const halo = 'stroke="#fff" stroke-width="3.5" stroke-linejoin="round" paint-order="stroke"'
  const out: string[] = []
  const add = (s: string): void => {
    out.push(s)
  }
  const colors = { ingest: '#1f6fb2', delivery: '#d9480f', rate: '#222', backlog: '#6741d9', burst: '#f5b82e', grid: '#e4e4e4', axis: '#555', text: '#222', muted: '#666' }

  add(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" role="img" aria-labelledby="title desc">`)
  add(`<title id="title">Sluice: a ${c.factor}× burst absorbed, then drained at the group's deliveryRate</title>`)
  add(
    `<desc id="desc">Publishing at ${fmtInt(c.rate * c.factor)} events/s for ${c.burstS} s while group ${group} is limited to ${fmtInt(c.rate)} deliveries/s. The backlog peaks at ${fmtInt(c.peakBacklog)} events and drains at ${fmtInt(c.drainRate)} events/s.</desc>`,
  )
  add(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`)
  add(`<text x="${left}" y="34" font-size="20" font-weight="bold" fill="${colors.text}">A ${c.factor}× burst, absorbed by the log and drained at the group's deliveryRate</text>`)
  add(
    `<text x="${left}" y="57" font-size="12.5" fill="${colors.muted}">${fmtInt(c.rate * c.factor)} events/s (${c.factor} × R) published over HTTP for ${c.burstS} s · group "${group}" with deliveryRate R = ${fmtInt(c.rate)}/s · one consumer · ${sampleMs} ms samples</text>`,
  )

  // Legend: labels are short enough that an estimate of their width (7 px a character at 13 px)
  // spaces them; no font metrics are needed.
  const ly = 88
  let lx = left
  const legendItem = (label: string, mark: string): void => {
    add(mark.replaceAll('X0', px(lx)).replaceAll('X1', px(lx + 28)))
    add(`<text x="${px(lx + 36)}" y="${ly}" font-size="13" fill="${colors.text}">${esc(label)}</text>`)
    lx += 36 + label.length * 7 + 26
  }
  const lineMark = (color: string, width: number, dash?: string): string =>
    `<line x1="X0" y1="${ly - 4}" x2="X1" y2="${ly - 4}" stroke="${color}" stroke-width="${width}"${dash === undefined ? '' : ` stroke-dasharray="${dash}"`}/>`
  const boxMark = (color: string, opacity: number, stroke: boolean): string =>
    `<rect x="X0" y="${ly - 12}" width="28" height="14" fill="${color}" fill-opacity="${opacity}"${stroke ? ` stroke="${color}" stroke-width="1.2"` : ''}/>`
  legendItem('ingest (stored/s)', lineMark(colors.ingest, 2.5))
  legendItem('delivery (acked/s)', lineMark(colors.delivery, 2.5))
  legendItem('deliveryRate R', lineMark(colors.rate, 1.6, '7 5'))
  legendItem('backlog', boxMark(colors.backlog, 0.28, true))
  legendItem('burst window', boxMark(colors.burst, 0.3, false))

  for (const [p, yFn, max, title] of [
    [p1, y1, rMax, 'events/s'],
    [p2, y2, bMax, 'backlog (events)'],
  ] as const) {
    // Burst window, grid, axes.
    add(`<rect x="${px(x(0))}" y="${p.top}" width="${px(x(c.burstS) - x(0))}" height="${p.bottom - p.top}" fill="${colors.burst}" fill-opacity="0.25"/>`)
    for (let i = 0; i <= 5; i++) {
      const v = (max * i) / 5
      const yy = yFn(v)
      add(`<line x1="${left}" y1="${px(yy)}" x2="${right}" y2="${px(yy)}" stroke="${colors.grid}" stroke-width="1"/>`)
      add(`<text x="${left - 8}" y="${px(yy + 4)}" font-size="12" fill="${colors.muted}" text-anchor="end">${compact(v)}</text>`)
    }
    for (let t = 0; t <= xMax; t += 10) {
      add(`<line x1="${px(x(t))}" y1="${p.top}" x2="${px(x(t))}" y2="${p.bottom}" stroke="${colors.grid}" stroke-width="1"/>`)
      add(`<line x1="${px(x(t))}" y1="${p.bottom}" x2="${px(x(t))}" y2="${p.bottom + 5}" stroke="${colors.axis}" stroke-width="1"/>`)
    }
    add(`<line x1="${left}" y1="${p.bottom}" x2="${right}" y2="${p.bottom}" stroke="${colors.axis}" stroke-width="1"/>`)
    add(`<line x1="${left}" y1="${p.top}" x2="${left}" y2="${p.bottom}" stroke="${colors.axis}" stroke-width="1"/>`)
    const my = (p.top + p.bottom) / 2
    add(`<text x="22" y="${px(my)}" font-size="13" fill="${colors.text}" text-anchor="middle" transform="rotate(-90 22 ${px(my)})">${title}</text>`)
  }
  add(`<text x="${px(x(c.burstS / 2))}" y="${p1.top - 6}" font-size="12" fill="#8a5a00" text-anchor="middle">burst</text>`)

  // Rates: each sample is the average over the interval ending at it, drawn at that interval's middle.
  const rated = c.samples.slice(1)
  const mid = (i: number): number => (c.samples[i]!.t + c.samples[i + 1]!.t) / 2
  const poly = (f: (s: Sample) => number, y: (v: number) => number): string => rated.map((s, i) => `${px(x(mid(i)))},${px(y(f(s)))}`).join(' ')
  add(`<clipPath id="p1"><rect x="${left}" y="${p1.top}" width="${right - left}" height="${p1.bottom - p1.top}"/></clipPath>`)
  add(`<polyline points="${poly((s) => s.ingestRate, y1)}" fill="none" stroke="${colors.ingest}" stroke-width="1.8" stroke-linejoin="round" clip-path="url(#p1)"/>`)
  add(`<polyline points="${poly((s) => s.deliveryRate, y1)}" fill="none" stroke="${colors.delivery}" stroke-width="2.2" stroke-linejoin="round" clip-path="url(#p1)"/>`)
  const over = rated.map((s, i) => ({ t: mid(i), v: s.ingestRate })).filter((o) => o.v > rMax)
  if (over.length > 0) {
    const top = over.reduce((a, o) => (o.v > a.v ? o : a))
    add(`<path d="M${px(x(top.t) - 5)},${p1.top + 7} L${px(x(top.t))},${p1.top + 1} L${px(x(top.t) + 5)},${p1.top + 7} Z" fill="${colors.ingest}"/>`)
    add(`<text x="${px(x(top.t) + 8)}" y="${p1.top + 12}" font-size="11" fill="${colors.ingest}" ${halo}>${over.length === 1 ? '' : `${over.length} samples off scale, highest `}${fmtInt(top.v)}/s</text>`)
  }
  add(`<line x1="${left}" y1="${px(y1(c.rate))}" x2="${right}" y2="${px(y1(c.rate))}" stroke="${colors.rate}" stroke-width="1.6" stroke-dasharray="7 5"/>`)
  add(`<text x="${right - 4}" y="${px(y1(c.rate) - 8)}" font-size="12" fill="${colors.rate}" text-anchor="end" ${halo}>deliveryRate R = ${fmtInt(c.rate)}/s</text>`)
  add(`<text x="${px(x(c.burstS) + 8)}" y="${px(y1(c.rate * c.factor) + 4)}" font-size="12" fill="${colors.ingest}" ${halo}>${c.factor} × R = ${fmtInt(c.rate * c.factor)}/s</text>`)

  // Backlog: an area under the sampled values.
  const pts = c.samples.map((s) => `${px(x(s.t))},${px(y2(s.backlog))}`)
  if (c.samples.length > 0) {
    add(`<polygon points="${px(x(c.samples[0]!.t))},${p2.bottom} ${pts.join(' ')} ${px(x(last!.t))},${p2.bottom}" fill="${colors.backlog}" fill-opacity="0.22" stroke="none"/>`)
    add(`<polyline points="${pts.join(' ')}" fill="none" stroke="${colors.backlog}" stroke-width="2" stroke-linejoin="round"/>`)
  }
  add(`<circle cx="${px(x(c.peakAtS))}" cy="${px(y2(c.peakBacklog))}" r="4" fill="${colors.backlog}"/>`)
  add(`<text x="${px(x(c.peakAtS) + 9)}" y="${px(y2(c.peakBacklog) - 6)}" font-size="12" fill="${colors.backlog}" ${halo}>peak ${fmtInt(c.peakBacklog)} events at ${fmtS(c.peakAtS)} s</text>`)
  if (c.drainedAtS !== undefined) {
    const dx = x(c.drainedAtS)
    add(`<line x1="${px(dx)}" y1="${p2.top}" x2="${px(dx)}" y2="${p2.bottom}" stroke="${colors.axis}" stroke-width="1.2" stroke-dasharray="3 3"/>`)
    add(`<text x="${px(dx - 6)}" y="${p2.top + 16}" font-size="12" fill="${colors.text}" text-anchor="end" ${halo}>drained at ${fmtS(c.drainedAtS)} s</text>`)
    add(`<text x="${px(dx - 6)}" y="${p2.top + 32}" font-size="12" fill="${colors.muted}" text-anchor="end" ${halo}>at ${fmtInt(c.drainRate)} events/s</text>`)
  }

  // Shared x axis.
  for (let t = 0; t <= xMax; t += 10) add(`<text x="${px(x(t))}" y="${p2.bottom + 20}" font-size="12" fill="${colors.muted}" text-anchor="middle">${t}</text>`)
  add(`<text x="${px((left + right) / 2)}" y="${p2.bottom + 42}" font-size="13" fill="${colors.text}" text-anchor="middle">time since the burst began (s)</text>`)
  add(`<text x="${left}" y="${H - 12}" font-size="11" fill="${colors.muted}">${esc(c.footer)}</text>`)
  add('</svg>')
  return `${out.join('\n')}\n`
}

// ---- the run -------------------------------------------------------------------------------------

const children = new Set<ChildProcess>()

const svgFile = 'benchmarks/peak.svg'
const jsonFile = 'benchmarks/results/peak.json'

interface PeakDoc {
  readonly params: { readonly deliveryRate: number; readonly factor: number; readonly burstS: number }
  readonly summary: { readonly peakBacklog: number; readonly peakAtS: number; readonly drainedAtS: number | null; readonly drainRate: number }
  readonly footer: string
  readonly samples: readonly Sample[]
}

function chartFrom(doc: PeakDoc): ChartInput {
  const { params: p, summary: m } = doc
  return { samples: doc.samples, rate: p.deliveryRate, factor: p.factor, burstS: p.burstS, peakBacklog: m.peakBacklog, peakAtS: m.peakAtS, drainedAtS: m.drainedAtS ?? undefined, drainRate: m.drainRate, footer: doc.footer }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  const repo = findRepoRoot()
  if (args.replot) {
    const doc = JSON.parse(readFileSync(join(repo, jsonFile), 'utf8')) as PeakDoc
    writeFileSync(join(repo, svgFile), renderChart(chartFrom(doc)))
    console.log(`redrew ${svgFile} from ${jsonFile}`)
    return 0
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-peak-'))
  let server: Server | undefined
  const cleanup = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
    if (server !== undefined && (server.child.exitCode !== null || server.child.signalCode !== null)) {
      // It was not us who stopped it: show why.
      const log = readFileSync(server.logFile, 'utf8').trimEnd().split('\n')
      console.error(`the server exited on its own (code ${server.child.exitCode}, signal ${server.child.signalCode}); the end of its log:\n${log.slice(-40).join('\n')}`)
    }
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await run(args, repo, dir, (s) => (server = s))
  } finally {
    await cleanup()
  }
}

async function run(args: Args, repo: string, dir: string, onServer: (s: Server) => void): Promise<number> {
  const { rate, factor, burstS } = args
  const burstRate = rate * factor
  const capacity = Math.ceil(burstRate * burstS) + eventsPerRequest
  const loadStart = loadavg()
  console.log(`peak demo: deliveryRate R = ${fmtInt(rate)}/s, burst ${factor} × R = ${fmtInt(burstRate)} events/s for ${burstS} s (${fmtInt(burstRate * burstS)} events)`)
  console.log(`machine: ${cpus().length} cores, load average ${loadStart.map((l) => l.toFixed(2)).join(' ')}${loadStart[0]! > cpus().length * 0.75 ? ' (busy: rates may be disturbed)' : ''}`)

  const server = await startSluice(repo, dir, rate)
  onServer(server)
  const base = server.base
  console.log(`server: ${base}, data in ${dir}`)

  // The consumer: this file again, in its own process.
  const spec: ConsumerSpec = { base, group, consumer: 'peak-1', capacity }
  const consumer = fork(fileURLToPath(import.meta.url), ['--consumer', JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(consumer)
  let report: ConsumerReport | undefined
  const reported = new Promise<void>((resolve) => {
    consumer.on('message', (m) => {
      if (typeof m === 'object' && m !== null && 'report' in m) {
        report = (m as { report: ConsumerReport }).report
        resolve()
      }
    })
    consumer.once('exit', () => resolve())
  })
  // Start once the consumer is a member of the group, long-polling.
  for (const deadline = Date.now() + 10_000; ; ) {
    const g = await getJson<GroupView>(`${base}/v1/groups/${group}`)
    if (g.members.length > 0) break
    if (Date.now() > deadline) throw new Error('the consumer did not join the group within 10 s')
    await sleep(50)
  }

  const t0 = performance.now()
  const serverCpu0 = procCpuS(server.child.pid)
  const totals: PublishTotals = { sent: 0, confirmed: 0, requests: 0, refusals: {}, failed: 0, lastConfirmAt: 0 }
  const samples: Sample[] = []
  let publishing = true
  const published = publishBurst(base, burstRate, burstS, t0, totals).finally(() => (publishing = false))

  let drainedAt: number | undefined
  let sampleErrors = 0
  let lastLog = Number.NEGATIVE_INFINITY
  for (let k = 0; ; ) {
    try {
      samples.push(await sampleOnce(base, t0, samples[samples.length - 1]))
    } catch (err) {
      sampleErrors++
      if (server.child.exitCode !== null || server.child.signalCode !== null || sampleErrors > 40) throw new Error('the server stopped answering', { cause: err })
    }
    const s = samples[samples.length - 1]
    if (s !== undefined) {
      if (drainedAt === undefined && !publishing && s.backlog === 0 && s.acked >= totals.confirmed) drainedAt = s.t
      if (drainedAt !== undefined && s.t >= drainedAt + tailAfterDrainS) break
    }
    if ((performance.now() - t0) / 1000 >= args.maxS) break
    if (s !== undefined && s.t - lastLog >= 10) {
      lastLog = s.t
      console.log(`  t=${fmtS(s.t).padStart(5)} s  stored ${fmtInt(s.events).padStart(8)}  acked ${fmtInt(s.acked).padStart(8)}  backlog ${fmtInt(s.backlog).padStart(8)}`)
    }
    // The next tick at least half a period away: after a stalled answer the sampler skips the
    // ticks it missed rather than firing them back to back, which would give rates over a few
    // milliseconds (spikes that are artefacts of the sampling, not of the server).
    const now = performance.now()
    k = Math.max(k + 1, Math.ceil((now + sampleMs / 2 - t0) / sampleMs))
    await sleep(t0 + k * sampleMs - now)
  }
  await published

  consumer.send('stop')
  const killTimer = setTimeout(() => consumer.kill('SIGTERM'), 5000)
  await reported
  clearTimeout(killTimer)
  const finalGroup = await getJson<GroupView>(`${base}/v1/groups/${group}`)
  const finalStream = await getJson<{ events: number }>(`${base}/v1/streams/${stream}`)
  const loadEnd = loadavg()
  const serverCpuS = procCpuS(server.child.pid) - serverCpu0
  const wallS = (performance.now() - t0) / 1000
  const stalls = samples.filter((s) => s.probeMs > 500)

  // ---- figures ----
  const peak = samples.reduce((a, s) => (s.backlog > a.backlog ? s : a), samples[0]!)
  // The drain rate: acked events per second from 1 s into the burst (past the bucket's initial
  // tenth of a second of tokens) to the last sample at which a backlog was still waiting.
  const from = samples.find((s) => s.t >= 1) ?? samples[0]!
  const busy = samples.filter((s) => s.backlog > 0 && s.t >= from.t)
  const to = busy[busy.length - 1] ?? from
  const drainRate = to.t > from.t ? (to.acked - from.acked) / (to.t - from.t) : Number.NaN
  const afterBurst = samples.find((s) => s.t >= burstS + 1)
  const afterRate = afterBurst !== undefined && to.t > afterBurst.t ? (to.acked - afterBurst.acked) / (to.t - afterBurst.t) : Number.NaN
  const duringBurstStored = samples.filter((s) => s.t <= burstS + 0.5)
  const ingestSpanS = (totals.lastConfirmAt - t0) / 1000
  const rateDiffPct = ((drainRate - rate) / rate) * 100
  const delivered = report?.unique ?? 0
  const checks = {
    deliveredEqualsConfirmed: report !== undefined && report.unique === totals.confirmed && report.received === totals.confirmed,
    noDuplicates: report !== undefined && report.duplicates === 0 && report.outOfRange === 0,
    groupAckedEqualsConfirmed: finalGroup.acked === totals.confirmed && finalGroup.backlog === 0,
    storedEqualsConfirmed: finalStream.events === totals.confirmed,
    drained: drainedAt !== undefined,
  }
  const ok = Object.values(checks).every(Boolean)

  const lines = [
    '',
    `published   ${fmtInt(totals.sent)} events in ${fmtInt(totals.requests)} requests of ${eventsPerRequest} (${fmtInt(totals.sent / Math.max(0.001, ingestSpanS))} events/s over ${fmtS(ingestSpanS)} s, target ${fmtInt(burstRate)}/s)${Object.keys(totals.refusals).length > 0 ? `; refusals ${JSON.stringify(totals.refusals)}` : ''}`,
    `confirmed   ${fmtInt(totals.confirmed)} (200 answers; stored in the stream: ${fmtInt(finalStream.events)})`,
    `delivered   ${fmtInt(delivered)} distinct events to the consumer (received ${fmtInt(report?.received ?? 0)}, duplicates ${report?.duplicates ?? 'n/a'}, redelivered ${report?.redelivered ?? 'n/a'}); group acked ${fmtInt(finalGroup.acked)}, backlog ${fmtInt(finalGroup.backlog)}`,
    `peak backlog ${fmtInt(peak.backlog)} events at t = ${fmtS(peak.t)} s`,
    `drain rate  ${fmtInt(drainRate)} events/s from t = ${fmtS(from.t)} s to ${fmtS(to.t)} s vs R = ${fmtInt(rate)}/s (${fmtPct(rateDiffPct)}); after the burst alone ${fmtInt(afterRate)}/s (${fmtPct(((afterRate - rate) / rate) * 100)})`,
    `drained     ${drainedAt === undefined ? `NOT within ${args.maxS} s` : `at t = ${fmtS(drainedAt)} s (${fmtS(drainedAt - burstS)} s after the burst ended)`}`,
    `consumer    ${fmtInt(report?.fetches ?? 0)} fetches (${fmtInt(report?.emptyFetches ?? 0)} empty, largest ${fmtInt(report?.maxBatch ?? 0)} events), ${report?.errors ?? 'n/a'} errors, ${fmtS(report?.cpuS ?? Number.NaN)} CPU s`,
    `CPU         server ${fmtS(serverCpuS)} s, consumer ${fmtS(report?.cpuS ?? Number.NaN)} s over ${fmtS(wallS)} s${stalls.length > 0 ? `; the server took over 500 ms to answer ${stalls.length} samples (longest ${fmtInt(Math.max(...stalls.map((x) => x.probeMs)))} ms): a busy machine?` : ''}`,
    `load avg    start ${loadStart.map((l) => l.toFixed(2)).join(' ')}, end ${loadEnd.map((l) => l.toFixed(2)).join(' ')}${sampleErrors > 0 ? `; ${sampleErrors} failed samples` : ''}`,
    `check       delivered = confirmed: ${checks.deliveredEqualsConfirmed ? 'yes' : 'NO'}; no duplicates: ${checks.noDuplicates ? 'yes' : 'NO'}; group acked = confirmed, backlog 0: ${checks.groupAckedEqualsConfirmed ? 'yes' : 'NO'}; stored = confirmed: ${checks.storedEqualsConfirmed ? 'yes' : 'NO'}`,
  ]
  console.log(lines.join('\n'))

  if (args.write) {
    const svgPath = args.record ? join(repo, svgFile) : join(resultsDir(false), 'peak.svg')
    const jsonPath = args.record ? join(repo, jsonFile) : join(resultsDir(false), 'peak.json')
    const runAt = new Date().toISOString()
    const footer = `npm run demo:peak · ${runAt.slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · ${cpus().length} vCPU, load ${loadStart[0]!.toFixed(1)} · ${fmtInt(totals.confirmed)} events confirmed, ${fmtInt(delivered)} delivered, drain ${fmtInt(drainRate)}/s (${fmtPct(rateDiffPct)} vs R)${ok ? '' : ' · CHECKS FAILED'}`
    mkdirSync(dirname(jsonPath), { recursive: true })
    const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d
    const doc = {
      runAt,
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAvgStart: loadStart, loadAvgEnd: loadEnd },
      params: { deliveryRate: rate, factor, burstRate, burstS, eventsPerRequest, publishInFlightMax, sampleMs, fetchMax, fetchWaitMs, prefetch, stream, group, fsync: 'batch' },
      summary: {
        published: totals.sent,
        confirmed: totals.confirmed,
        stored: finalStream.events,
        delivered,
        received: report?.received ?? null,
        duplicates: report?.duplicates ?? null,
        redelivered: report?.redelivered ?? null,
        groupAcked: finalGroup.acked,
        peakBacklog: peak.backlog,
        peakAtS: round(peak.t),
        drainedAtS: drainedAt === undefined ? null : round(drainedAt),
        drainRate: round(drainRate, 1),
        drainRateFromS: round(from.t),
        drainRateToS: round(to.t),
        drainRateVsRPct: round(rateDiffPct, 2),
        afterBurstRate: round(afterRate, 1),
        ingestSpanS: round(ingestSpanS),
        storedDuringBurstWindow: duringBurstStored[duringBurstStored.length - 1]?.events ?? null,
        refusals: totals.refusals,
        checks,
      },
      footer,
      consumer: report ?? null,
      cpu: { serverS: round(serverCpuS, 2), consumerS: report === undefined ? null : round(report.cpuS, 2), wallS: round(wallS, 2) },
      slowSamples: stalls.length,
      samples: samples.map((s) => ({ ...s, t: round(s.t), ingestRate: round(s.ingestRate, 1), deliveryRate: round(s.deliveryRate, 1), probeMs: round(s.probeMs, 1) })),
    }
    writeFileSync(jsonPath, `${JSON.stringify(doc, null, 1)}\n`)
    // Drawn from the JSON as written, so `--replot` gives the same picture.
    writeFileSync(svgPath, renderChart(chartFrom(doc)))
    console.log(`wrote ${relative(process.cwd(), svgPath)} and ${relative(process.cwd(), jsonPath)}`)
  }
  if (!ok) console.log('FAILED: see the checks above')
  return ok ? 0 : 1
}

if (process.argv[2] === '--consumer') {
  runConsumer(JSON.parse(process.argv[3] ?? '{}') as ConsumerSpec).catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
} else {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
}
