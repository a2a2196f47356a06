// Load generator for the HTTP publish benchmark (issue 4). Always runs in its own process, apart
// from the server under test; benchmarks/http.bench.ts starts one per measurement:
//   node dist/benchmarks/http-load.js '<json spec>'
// and reads one line `RESULT {...}` from its stdout.
//
// Two modes:
//   closed  autocannon, N keep-alive connections each with one request in flight, for a fixed
//           time and at most maxRequests requests. A response counts as confirmed only if it is
//           a 200 whose body says every event of the request was accepted.
//   rate    open-loop load at a fixed rate from node:http (keep-alive): request k is due at
//           t0 + k/rate whatever happened to earlier ones. Latency is measured from the moment
//           the request is written (`sent`) and from the moment it was due (`due`, which also
//           counts any lag of this process, so it never hides a stall).
// Only 127.0.0.1 is accepted as a target.

import { Agent, request } from 'node:http'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { jsonBody, ndjsonBody } from './http-payload.js'

export interface ClosedSpec {
  readonly mode: 'closed'
  readonly url: string
  /** events per request: 1 is sent as application/json, more as application/x-ndjson */
  readonly events: number
  readonly connections: number
  readonly durationS: number
  /** a first, unrecorded run on the same connections count (JIT, page cache, sockets) */
  readonly warmupS: number
  readonly maxRequests: number
}

export interface RateSpec {
  readonly mode: 'rate'
  readonly url: string
  readonly rate: number
  readonly durationS: number
  readonly warmupS: number
  readonly timeoutMs: number
  readonly maxSockets: number
}

export type LoadSpec = ClosedSpec | RateSpec

export interface ClosedResult {
  readonly mode: 'closed'
  readonly durationS: number
  readonly requests: number
  readonly responses: number
  readonly status200: number
  readonly confirmed: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly statusCodes: Record<string, number>
  readonly confirmedRequestsPerSec: number
  readonly confirmedEventsPerSec: number
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number }
  /** confirmed events of the warm-up run, for the stored-count check */
  readonly warmupConfirmedEvents: number
  readonly loaderCpuPct: number
}

export interface RateResult {
  readonly mode: 'rate'
  readonly durationS: number
  readonly planned: number
  readonly sent: number
  readonly confirmed: number
  readonly failed: number
  readonly achievedRate: number
  /** from write to complete response */
  readonly sentMs: Percentiles
  /** from the moment the request was due to complete response */
  readonly dueMs: Percentiles
  readonly warmupConfirmed: number
  readonly loaderCpuPct: number
}

export interface Percentiles {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

export type LoadResult = ClosedResult | RateResult

// ---- autocannon (CommonJS, no bundled types): the little of it used here --------------------

interface AutocannonResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  mismatches: number
  statusCodeStats: Record<string, { count: number }>
  latency: { p50: number; p99: number; max: number }
  requests: { sent: number; total: number }
}

interface AutocannonOptions {
  url: string
  method: 'POST'
  headers: Record<string, string>
  body: Buffer
  connections: number
  pipelining: number
  duration: number
  maxOverallRequests: number
  timeout: number
  verifyBody: (body: string) => boolean
}

type Autocannon = (opts: AutocannonOptions) => Promise<AutocannonResult>
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

function checkTarget(url: string): URL {
  const u = new URL(url)
  if (u.hostname !== '127.0.0.1') throw new Error(`only 127.0.0.1 may be targeted, not ${u.hostname}`)
  return u
}

function cpuPct(before: NodeJS.CpuUsage, wallMs: number): number {
  const d = process.cpuUsage(before)
  return ((d.user + d.system) / 1000 / wallMs) * 100
}

async function runClosed(spec: ClosedSpec): Promise<ClosedResult> {
  checkTarget(spec.url)
  const body = spec.events === 1 ? jsonBody() : ndjsonBody(spec.events)
  const contentType = spec.events === 1 ? 'application/json' : 'application/x-ndjson'
  const expected = `"accepted":${spec.events},`
  const once = async (durationS: number): Promise<{ r: AutocannonResult; confirmed: number }> => {
    let confirmed = 0
    const r = await autocannon({
      url: spec.url,
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      connections: spec.connections,
      pipelining: 1,
      duration: durationS,
      maxOverallRequests: spec.maxRequests,
      timeout: 30,
      // Only a full accept counts: error bodies never hold "accepted".
      verifyBody: (b) => {
        const ok = b.includes(expected)
        if (ok) confirmed++
        return ok
      },
    })
    return { r, confirmed }
  }
  let warmupConfirmed = 0
  if (spec.warmupS > 0) warmupConfirmed = (await once(spec.warmupS)).confirmed
  process.stdout.write('MEASURE\n')
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const { r, confirmed } = await once(spec.durationS)
  const wallMs = performance.now() - t0
  const statusCodes: Record<string, number> = {}
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCodes[code] = s.count
  const status200 = statusCodes['200'] ?? 0
  const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0)
  return {
    mode: 'closed',
    durationS: r.duration,
    requests: r.requests.sent,
    responses,
    status200,
    confirmed,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    confirmedRequestsPerSec: confirmed / r.duration,
    confirmedEventsPerSec: (confirmed * spec.events) / r.duration,
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
    warmupConfirmedEvents: warmupConfirmed * spec.events,
    loaderCpuPct: cpuPct(cpu0, wallMs),
  }
}

function percentiles(values: Float64Array): Percentiles {
  if (values.length === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, p999: Number.NaN, max: Number.NaN, mean: Number.NaN }
  const v = Float64Array.from(values).sort()
  const at = (q: number): number => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]!
  let sum = 0
  for (const x of v) sum += x
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: v[v.length - 1]!, mean: sum / v.length }
}

interface RateWindow {
  planned: number
  sent: number
  confirmed: number
  failed: number
  sentMs: number[]
  dueMs: number[]
  elapsedMs: number
}

/** Open-loop load: `rate` requests a second for `durationS`, then waits for the last answers. */
function rateWindow(spec: RateSpec, agent: Agent, durationS: number): Promise<RateWindow> {
  const u = checkTarget(spec.url)
  const body = jsonBody()
  const planned = Math.round(spec.rate * durationS)
  const w: RateWindow = { planned, sent: 0, confirmed: 0, failed: 0, sentMs: [], dueMs: [], elapsedMs: 0 }
  const intervalMs = 1000 / spec.rate
  return new Promise((resolve) => {
    let done = 0
    const t0 = performance.now()
    const finish = (): void => {
      done++
      if (done === planned) {
        w.elapsedMs = performance.now() - t0
        resolve(w)
      }
    }
    const fire = (due: number): void => {
      const sentAt = performance.now()
      w.sent++
      let settled = false
      const settle = (ok: boolean): void => {
        if (settled) return
        settled = true
        const end = performance.now()
        if (ok) {
          w.confirmed++
          w.sentMs.push(end - sentAt)
          w.dueMs.push(end - due)
        } else {
          w.failed++
        }
        finish()
      }
      const req = request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length }, timeout: spec.timeoutMs },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => settle(res.statusCode === 200 && Buffer.concat(chunks).toString('utf8').includes('"accepted":1,')))
          res.on('error', () => settle(false))
        },
      )
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => settle(false))
      req.end(body)
    }
    let next = 0
    const tick = (): void => {
      const now = performance.now()
      while (next < planned && t0 + next * intervalMs <= now) {
        fire(t0 + next * intervalMs)
        next++
      }
      if (next >= planned) clearInterval(timer)
    }
    const timer = setInterval(tick, 1)
    tick()
  })
}

async function runRate(spec: RateSpec): Promise<RateResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.maxSockets })
  let warmupConfirmed = 0
  if (spec.warmupS > 0) warmupConfirmed = (await rateWindow(spec, agent, spec.warmupS)).confirmed
  process.stdout.write('MEASURE\n')
  const cpu0 = process.cpuUsage()
  const w = await rateWindow(spec, agent, spec.durationS)
  const loaderCpuPct = cpuPct(cpu0, w.elapsedMs)
  agent.destroy()
  return {
    mode: 'rate',
    durationS: w.elapsedMs / 1000,
    planned: w.planned,
    sent: w.sent,
    confirmed: w.confirmed,
    failed: w.failed,
    achievedRate: w.confirmed / (w.elapsedMs / 1000),
    sentMs: percentiles(Float64Array.from(w.sentMs)),
    dueMs: percentiles(Float64Array.from(w.dueMs)),
    warmupConfirmed,
    loaderCpuPct,
  }
}

async function main(): Promise<void> {
  const raw = process.argv[2]
  if (raw === undefined) throw new Error("usage: http-load.js '<json spec>'")
  const spec = JSON.parse(raw) as LoadSpec
  const result = spec.mode === 'closed' ? await runClosed(spec) : await runRate(spec)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`http-load: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
