// Client processes for the consume benchmark (issue 5). Always runs in its own process, apart from
// the server under test; benchmarks/consume.bench.ts starts one per consumer (or publisher):
//   node dist/benchmarks/consume-client.js '<json spec>'
// It prints READY once its connections are warm, waits for a line `go` on stdin (so that every
// consumer of a run starts together), and prints one line `RESULT {...}` at the end. A line
// `stop` on stdin ends a consumer that runs until stopped (after its next empty fetch), and ends
// a holder at once.
//
// Three modes:
//   consume  a consumer-group member over HTTP: POST /v1/groups/{g}/fetch {consumer, max, waitMs},
//            then one POST /v1/groups/{g}/ack {tags} for the whole batch. The ack of batch N is
//            in flight while batch N+1 is fetched (at most one ack outstanding), so the group's
//            prefetch must allow 2 × max. Optionally measures publish-to-delivery latency from
//            the `sent` wall-clock time the publisher embeds in each event body.
//   hold     fetches once (up to max) and never acks: holds those events in flight until stopped.
//   publish  open-loop NDJSON publisher: `events` events every `intervalMs` as one request, each
//            event body carrying its send time (wall clock, sub-millisecond), for warm-up plus
//            measured seconds; a request is due at t0 + k × intervalMs whatever happened before.
//
// Wall clock with sub-millisecond resolution in every process: performance.timeOrigin +
// performance.now() (the realtime clock read once at process start, then the monotonic clock).
// Only 127.0.0.1 is accepted as a target. Every loop is bounded in count and in time.

import { Agent, request } from 'node:http'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'

export interface ConsumeSpec {
  readonly mode: 'consume'
  readonly base: string
  readonly group: string
  readonly consumer: string
  readonly max: number
  readonly waitMs: number
  /** false: the first empty fetch ends the run (a drained backlog); true: only after `stop`. */
  readonly untilStop: boolean
  /** measure receive time − the event's embedded `sent` time */
  readonly latency: boolean
  readonly maxSeconds: number
  readonly maxFetches: number
}

export interface HoldSpec {
  readonly mode: 'hold'
  readonly base: string
  readonly group: string
  readonly consumer: string
  readonly max: number
  readonly maxSeconds: number
}

export interface PublishSpec {
  readonly mode: 'publish'
  readonly base: string
  readonly exchange: string
  readonly routingKey: string
  readonly events: number
  readonly intervalMs: number
  readonly warmupS: number
  readonly durationS: number
  readonly timeoutMs: number
  readonly maxSockets: number
}

export type ClientSpec = ConsumeSpec | HoldSpec | PublishSpec

export interface Percentiles {
  readonly n: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

export interface ConsumeResult {
  readonly mode: 'consume'
  readonly consumer: string
  readonly fetches: number
  readonly emptyFetches: number
  readonly fetched: number
  readonly redelivered: number
  readonly acks: number
  readonly acked: number
  /** contiguous offset runs per non-empty fetch, on average (1 = each batch is one range) */
  readonly runsPerBatch: number
  /** tags the server answered as not settled */
  readonly ackFailed: number
  readonly httpErrors: number
  /** wall-clock ms: when the first fetch was sent, and when the last ack's answer arrived */
  readonly firstFetchAt: number
  readonly lastAckAt: number
  readonly fetchMs: Percentiles
  readonly ackMs: Percentiles
  /** publish-to-delivery, measured events only (latency mode) */
  readonly e2eMs: Percentiles | undefined
  readonly measuredReceived: number
  readonly stoppedBy: 'empty' | 'stop' | 'time' | 'count' | 'error'
  readonly cpuPct: number
  /** performance.timeOrigin + performance.now() − Date.now() at the end: the clock check */
  readonly clockSkewMs: number
}

export interface HoldResult {
  readonly mode: 'hold'
  readonly held: number
  readonly fetchMs: number
}

export interface PublishResult {
  readonly mode: 'publish'
  readonly planned: number
  readonly sent: number
  readonly confirmed: number
  readonly failed: number
  readonly measuredEventsConfirmed: number
  readonly warmupEventsConfirmed: number
  readonly achievedEventsPerSec: number
  /** publish request: write to confirm */
  readonly confirmMs: Percentiles
  /** how late requests were written relative to their due time (this process's own lag) */
  readonly lateMs: Percentiles
  readonly cpuPct: number
  readonly clockSkewMs: number
}

export type ClientResult = ConsumeResult | HoldResult | PublishResult

const wall = (): number => performance.timeOrigin + performance.now()

/** A bounded sample store: keeps the first `cap` values. */
class Samples {
  #v: Float64Array
  #n = 0
  constructor(readonly cap: number) {
    this.#v = new Float64Array(Math.min(cap, 4096))
  }

  push(x: number): void {
    if (this.#n >= this.cap) return
    if (this.#n === this.#v.length) {
      const bigger = new Float64Array(Math.min(this.cap, this.#v.length * 2))
      bigger.set(this.#v)
      this.#v = bigger
    }
    this.#v[this.#n++] = x
  }

  get length(): number {
    return this.#n
  }

  percentiles(): Percentiles {
    const n = this.#n
    if (n === 0) return { n: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, p999: Number.NaN, max: Number.NaN, mean: Number.NaN }
    const v = this.#v.slice(0, n).sort()
    const at = (q: number): number => v[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!
    let sum = 0
    for (const x of v) sum += x
    return { n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: v[n - 1]!, mean: sum / n }
  }
}

function checkBase(base: string): URL {
  const u = new URL(base)
  if (u.hostname !== '127.0.0.1') throw new Error(`only 127.0.0.1 may be targeted, not ${u.hostname}`)
  return u
}

interface Answer {
  readonly status: number
  readonly body: Buffer
}

function post(agent: Agent, u: URL, path: string, body: Buffer, contentType: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

const postJson = (agent: Agent, u: URL, path: string, obj: unknown, timeoutMs: number): Promise<Answer> => post(agent, u, path, Buffer.from(JSON.stringify(obj)), 'application/json', timeoutMs)

/** stdin commands from the parent: `go` and `stop`. */
class Control {
  readonly go: Promise<void>
  stopped = false
  #onStop: Array<() => void> = []
  constructor() {
    let resolveGo: () => void = () => undefined
    this.go = new Promise<void>((r) => (resolveGo = r))
    const rl = createInterface({ input: process.stdin })
    rl.on('line', (line) => {
      const cmd = line.trim()
      if (cmd === 'go') resolveGo()
      else if (cmd === 'stop') {
        this.stopped = true
        for (const f of this.#onStop) f()
        this.#onStop = []
      }
    })
    // The parent went away: stop, so no orphan keeps loading the server.
    rl.on('close', () => {
      this.stopped = true
      resolveGo()
      for (const f of this.#onStop) f()
    })
  }

  onStop(f: () => void): void {
    if (this.stopped) f()
    else this.#onStop.push(f)
  }
}

interface WireDelivery {
  readonly tag: string
  readonly offset: number
  readonly redelivered: boolean
  readonly body: { readonly sent?: number; readonly m?: number }
}

async function runConsume(spec: ConsumeSpec, ctl: Control): Promise<ConsumeResult> {
  const u = checkBase(spec.base)
  const agent = new Agent({ keepAlive: true, maxSockets: 2 })
  const fetchPath = `/v1/groups/${encodeURIComponent(spec.group)}/fetch`
  const ackPath = `/v1/groups/${encodeURIComponent(spec.group)}/ack`
  const timeoutMs = spec.waitMs + 30_000
  // Warm the two sockets (one for fetches, one for acks) before the start signal.
  await Promise.all([0, 1].map(async () => (await fetchGet(agent, u, '/healthz')).status))
  process.stdout.write('READY\n')
  await ctl.go
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const fetchMs = new Samples(200_000)
  const ackMs = new Samples(200_000)
  const e2e = new Samples(2_000_000)
  let fetches = 0
  let emptyFetches = 0
  let fetched = 0
  let redelivered = 0
  let acks = 0
  let acked = 0
  let ackFailed = 0
  let httpErrors = 0
  let measuredReceived = 0
  let runs = 0
  let batches = 0
  let firstFetchAt = Number.NaN
  let lastAckAt = Number.NaN
  let stoppedBy: ConsumeResult['stoppedBy'] = 'time'
  let pendingAck: Promise<void> | undefined
  const fetchBody = Buffer.from(JSON.stringify({ consumer: spec.consumer, max: spec.max, waitMs: spec.waitMs }))
  const ack = async (tags: string[]): Promise<void> => {
    const a0 = performance.now()
    const r = await postJson(agent, u, ackPath, { tags }, timeoutMs)
    const end = wall()
    ackMs.push(performance.now() - a0)
    acks++
    if (r.status !== 200) {
      httpErrors++
      ackFailed += tags.length
      return
    }
    const ans = JSON.parse(r.body.toString('utf8')) as { settled: number; failed: unknown[] }
    acked += ans.settled
    ackFailed += ans.failed.length
    lastAckAt = end
  }
  try {
    while (fetches < spec.maxFetches) {
      if (performance.now() - t0 > spec.maxSeconds * 1000) {
        stoppedBy = 'time'
        break
      }
      const f0 = performance.now()
      if (fetches === 0) firstFetchAt = wall()
      const r = await post(agent, u, fetchPath, fetchBody, 'application/json', timeoutMs)
      const recvAt = wall()
      fetchMs.push(performance.now() - f0)
      fetches++
      if (r.status !== 200) {
        httpErrors++
        stoppedBy = 'error'
        process.stderr.write(`fetch answered ${r.status}: ${r.body.toString('utf8').slice(0, 500)}\n`)
        break
      }
      const events = (JSON.parse(r.body.toString('utf8')) as { events: WireDelivery[] }).events
      if (events.length === 0) {
        emptyFetches++
        if (!spec.untilStop || ctl.stopped) {
          stoppedBy = spec.untilStop ? 'stop' : 'empty'
          break
        }
        continue
      }
      fetched += events.length
      batches++
      const tags = new Array<string>(events.length)
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!
        tags[i] = e.tag
        if (i === 0 || e.offset !== events[i - 1]!.offset + 1) runs++
        if (e.redelivered) redelivered++
        if (spec.latency && e.body.m === 1 && typeof e.body.sent === 'number') {
          e2e.push(recvAt - e.body.sent)
          measuredReceived++
        }
      }
      // At most one ack outstanding: it overlaps the next fetch, as a pipelined client's would.
      if (pendingAck !== undefined) await pendingAck
      pendingAck = ack(tags)
    }
    if (fetches >= spec.maxFetches) stoppedBy = 'count'
  } finally {
    if (pendingAck !== undefined) await pendingAck
  }
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  agent.destroy()
  return {
    mode: 'consume',
    consumer: spec.consumer,
    fetches,
    emptyFetches,
    fetched,
    redelivered,
    acks,
    acked,
    runsPerBatch: batches > 0 ? runs / batches : 0,
    ackFailed,
    httpErrors,
    firstFetchAt,
    lastAckAt,
    fetchMs: fetchMs.percentiles(),
    ackMs: ackMs.percentiles(),
    e2eMs: spec.latency ? e2e.percentiles() : undefined,
    measuredReceived,
    stoppedBy,
    cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    clockSkewMs: wall() - Date.now(),
  }
}

function fetchGet(agent: Agent, u: URL, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

async function runHold(spec: HoldSpec, ctl: Control): Promise<HoldResult> {
  const u = checkBase(spec.base)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  await fetchGet(agent, u, '/healthz')
  process.stdout.write('READY\n')
  await ctl.go
  const f0 = performance.now()
  const r = await postJson(agent, u, `/v1/groups/${encodeURIComponent(spec.group)}/fetch`, { consumer: spec.consumer, max: spec.max, waitMs: 5000 }, 30_000)
  const fetchMs = performance.now() - f0
  if (r.status !== 200) throw new Error(`fetch answered ${r.status}: ${r.body.toString('utf8').slice(0, 500)}`)
  const held = (JSON.parse(r.body.toString('utf8')) as { events: unknown[] }).events.length
  process.stdout.write(`HELD ${held}\n`)
  // Hold them (no ack) until told to stop, or at most maxSeconds.
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, spec.maxSeconds * 1000)
    ctl.onStop(() => {
      clearTimeout(t)
      resolve()
    })
  })
  agent.destroy()
  return { mode: 'hold', held, fetchMs }
}

/** One NDJSON event of exactly 250 bytes carrying its send time. */
const eventBytes = 250
function timedEvent(seq: number, sent: number, measured: boolean): string {
  const head = `{"sent":${sent.toFixed(3)},"m":${measured ? 1 : 0},"seq":${seq},"service":"api","level":"info","msg":"`
  const tail = '"}'
  const pad = eventBytes - head.length - tail.length
  if (pad < 0) throw new Error(`event ${seq} does not fit in ${eventBytes} bytes`)
  return head + 'x'.repeat(pad) + tail
}

async function runPublish(spec: PublishSpec, ctl: Control): Promise<PublishResult> {
  const u = checkBase(spec.base)
  const agent = new Agent({ keepAlive: true, maxSockets: spec.maxSockets })
  const path = `/v1/exchanges/${encodeURIComponent(spec.exchange)}/publish?routingKey=${encodeURIComponent(spec.routingKey)}`
  await fetchGet(agent, u, '/healthz')
  process.stdout.write('READY\n')
  await ctl.go
  const warmupReqs = Math.round((spec.warmupS * 1000) / spec.intervalMs)
  const planned = warmupReqs + Math.round((spec.durationS * 1000) / spec.intervalMs)
  const confirmMs = new Samples(planned)
  const lateMs = new Samples(planned)
  let sent = 0
  let confirmed = 0
  let failed = 0
  let measuredEventsConfirmed = 0
  let warmupEventsConfirmed = 0
  let seq = 0
  const expected = `"accepted":${spec.events},`
  let cpu0 = process.cpuUsage()
  let tMeasure = performance.now()
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    let done = 0
    const finish = (): void => {
      if (++done === planned) resolve()
    }
    const fire = (k: number, due: number): void => {
      const measured = k >= warmupReqs
      if (k === warmupReqs) {
        cpu0 = process.cpuUsage()
        tMeasure = performance.now()
        process.stdout.write('MEASURE\n')
      }
      const sentAt = wall()
      const lines: string[] = []
      for (let i = 0; i < spec.events; i++) lines.push(timedEvent(seq++, sentAt, measured))
      const body = Buffer.from(lines.join('\n'))
      const w0 = performance.now()
      lateMs.push(w0 - due)
      sent++
      post(agent, u, path, body, 'application/x-ndjson', spec.timeoutMs).then(
        (r) => {
          if (r.status === 200 && r.body.toString('utf8').includes(expected)) {
            confirmed++
            confirmMs.push(performance.now() - w0)
            if (measured) measuredEventsConfirmed += spec.events
            else warmupEventsConfirmed += spec.events
          } else {
            failed++
            if (failed <= 3) process.stderr.write(`publish answered ${r.status}: ${r.body.toString('utf8').slice(0, 300)}\n`)
          }
          finish()
        },
        (err: unknown) => {
          failed++
          if (failed <= 3) process.stderr.write(`publish failed: ${(err as Error).message}\n`)
          finish()
        },
      )
    }
    let next = 0
    const tick = (): void => {
      const now = performance.now()
      while (next < planned && t0 + next * spec.intervalMs <= now) {
        fire(next, t0 + next * spec.intervalMs)
        next++
      }
      if (next >= planned) clearInterval(timer)
    }
    const timer = setInterval(tick, 1)
    ctl.onStop(() => {
      // Told to stop early: count what was never sent as done.
      clearInterval(timer)
      while (next < planned) {
        next++
        finish()
      }
    })
    tick()
  })
  const wallMs = performance.now() - tMeasure
  const cpu = process.cpuUsage(cpu0)
  agent.destroy()
  return {
    mode: 'publish',
    planned,
    sent,
    confirmed,
    failed,
    measuredEventsConfirmed,
    warmupEventsConfirmed,
    achievedEventsPerSec: measuredEventsConfirmed / (wallMs / 1000),
    confirmMs: confirmMs.percentiles(),
    lateMs: lateMs.percentiles(),
    cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    clockSkewMs: wall() - Date.now(),
  }
}

async function main(): Promise<void> {
  const raw = process.argv[2]
  if (raw === undefined) throw new Error("usage: consume-client.js '<json spec>'")
  const spec = JSON.parse(raw) as ClientSpec
  const ctl = new Control()
  // A hard stop whatever happens: no client outlives its budget.
  const budgetS = spec.mode === 'publish' ? spec.warmupS + spec.durationS + 60 : spec.maxSeconds + 60
  setTimeout(() => {
    process.stderr.write(`consume-client: over its ${budgetS} s budget, exiting\n`)
    process.exit(3)
  }, budgetS * 1000).unref()
  const result = spec.mode === 'consume' ? await runConsume(spec, ctl) : spec.mode === 'hold' ? await runHold(spec, ctl) : await runPublish(spec, ctl)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`consume-client: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
