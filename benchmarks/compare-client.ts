// Client processes for the side-by-side benchmark with NATS JetStream (issue 9). Always runs in its
// own process, apart from the server under test; benchmarks/compare.bench.ts starts them:
//   node dist/benchmarks/compare-client.js '<json spec>'
// prints `READY` once connected, starts on a `go` line on stdin, may print `MEASURE` and `END`
// around its measured window, and ends with one line `RESULT {...}`. `stop` on stdin (or stdin
// closing) stops it early. Only 127.0.0.1 is accepted as a target.
//
// Each mode has the same shape for both systems, so the two sides differ only in the protocol:
//   publish  W1: closed loop with `window` events unconfirmed. JetStream: js.publish of single
//            events, `window` PubAcks pending. Sluice: NDJSON requests of `batch` events,
//            window / batch requests in flight, each confirmed by a 200 accepting all of them;
//            or, with `amqpUrl`, AMQP 0-9-1 basic.publish of single events on an amqplib confirm
//            channel (exchange `bench`), `window` confirms pending. With `lean`, the leanest client
//            each side has, frames by hand, the window refilled in one write after each read:
//            JetStream, PUB of single events with a reply inbox each and `window` PubAcks pending
//            (lib/lean-nats.ts); Sluice, AMQP 0-9-1 confirm mode on `amqpUrl` with pre-encoded
//            basic.publish + header + body frames, `window` confirms pending (lib/lean-amqp.ts).
//   prefill  JetStream only: the W2/W4 backlog, js.publish with a wide async window.
//   drain    W2/W4: fetch batches of up to `max`, parse every event, ack every event, until the
//            backlog is empty (an empty fetch) or `limit` events are acked. JetStream: a durable
//            pull consumer, js.fetch(stream, durable, {batch: max, no_wait: true}) (a pull request
//            answered at once with what is there), m.ack() per message as it arrives. Sluice: POST fetch {max, waitMs} and one POST ack {tags} per batch, the ack
//            overlapping the next fetch (at most one outstanding).
//   rate     W3 publisher: `eventsPerTick` events every `intervalMs`, open loop, each event carrying
//            its send time. JetStream: one js.publish per event. Sluice: one NDJSON request a tick.
//   follow   W3 consumer: consumes as events come and records receive time − send time.
//            JetStream: consumer.consume({max_messages}) (the pull consumer that keeps pulls
//            outstanding), m.ack() per message. Sluice: long-poll fetch (waitMs 1000) + ack per batch.

import { Agent, request } from 'node:http'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import amqp from 'amqplib'
import { connect, type JetStreamClient, type NatsConnection } from 'nats'
import { eventBytes, eventLine } from './http-payload.js'
import { basicAck, deliveryTagOf, FRAME_BODY, FRAME_METHOD, LeanAmqp, LeanAmqpPublisher, redeliveredOf, type Frame } from './lib/lean-amqp.js'
import { leanPull, LeanNatsPublisher } from './lib/lean-nats.js'

export type System = 'jetstream' | 'sluice'

interface BaseSpec {
  readonly system: System
  /** nats://127.0.0.1:PORT or http://127.0.0.1:PORT */
  readonly url: string
  /** hard limit of the measured part */
  readonly maxSeconds: number
}

export interface PublishSpec extends BaseSpec {
  readonly mode: 'publish'
  /** Sluice only: publish over AMQP 0-9-1 (amqplib, a confirm channel) to this amqp:// URL instead of HTTP */
  readonly amqpUrl?: string
  /**
   * The leanest client each side has, frames by hand: JetStream, PUB with a reply inbox per event
   * on the text protocol; Sluice, AMQP 0-9-1 confirm mode on `amqpUrl` (exchange `bench`).
   */
  readonly lean?: boolean
  /** JetStream subject, or Sluice routing key on exchange `bench` */
  readonly subject: string
  readonly window: number
  /** Sluice: events a request */
  readonly batch: number
  readonly warmupS: number
  readonly durationS: number
}

export interface PrefillSpec extends BaseSpec {
  readonly mode: 'prefill'
  readonly subject: string
  readonly events: number
  readonly window: number
}

export interface DrainSpec extends BaseSpec {
  readonly mode: 'drain'
  /** Sluice group, or JetStream durable consumer name */
  readonly target: string
  /** JetStream stream name (unused for Sluice) */
  readonly stream: string
  readonly consumer: string
  readonly max: number
  /** stop once this many are acked; 0 = until a fetch comes back empty */
  readonly limit: number
  /**
   * The leanest client each side has, frames by hand: JetStream, a pull consumer on the text
   * protocol (two pulls of `max` in flight, +ACK per message); Sluice, an AMQP 0-9-1 consumer on
   * `amqpUrl` (basic.qos `max` × 2, basic.ack multiple every `max` / 2 deliveries).
   */
  readonly lean?: boolean
  readonly amqpUrl?: string
}

export interface RateSpec extends BaseSpec {
  readonly mode: 'rate'
  readonly subject: string
  readonly eventsPerTick: number
  readonly intervalMs: number
  readonly warmupS: number
  readonly durationS: number
}

export interface FollowSpec extends BaseSpec {
  readonly mode: 'follow'
  readonly target: string
  readonly stream: string
  readonly consumer: string
  readonly max: number
}

export type ClientSpec = PublishSpec | PrefillSpec | DrainSpec | RateSpec | FollowSpec

export interface Percentiles {
  readonly n: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

export interface PublishResult {
  readonly mode: 'publish'
  readonly measuredS: number
  readonly confirmedEvents: number
  readonly warmupEvents: number
  readonly eventsPerSec: number
  readonly failed: number
  /** per publish (JetStream: one event; Sluice: one request of `batch`) */
  readonly confirmMs: Percentiles
  readonly cpuPct: number
}

export interface PrefillResult {
  readonly mode: 'prefill'
  readonly confirmed: number
  readonly failed: number
  readonly seconds: number
  readonly eventsPerSec: number
}

export interface DrainResult {
  readonly mode: 'drain'
  readonly consumer: string
  readonly fetches: number
  readonly emptyFetches: number
  readonly received: number
  readonly acked: number
  readonly ackFailed: number
  readonly redelivered: number
  readonly errors: number
  readonly firstFetchAt: number
  readonly lastAckAt: number
  /** highest stream sequence (JetStream) or offset (Sluice) acked */
  readonly maxSeq: number
  /** contiguous offset runs per non-empty fetch: 1 = each fetch got one block of the stream */
  readonly runsPerBatch: number
  readonly stoppedBy: 'empty' | 'limit' | 'time' | 'stop' | 'error'
  readonly cpuPct: number
}

export interface RateResult {
  readonly mode: 'rate'
  readonly planned: number
  readonly measuredEvents: number
  readonly confirmedEvents: number
  readonly failed: number
  readonly eventsPerSec: number
  readonly confirmMs: Percentiles
  readonly lateMs: Percentiles
  readonly cpuPct: number
}

export interface FollowResult {
  readonly mode: 'follow'
  readonly received: number
  readonly measuredReceived: number
  readonly redelivered: number
  readonly ackFailed: number
  readonly e2eMs: Percentiles
  readonly cpuPct: number
  /** performance.timeOrigin + performance.now() − Date.now() at the end: the clock check */
  readonly clockSkewMs: number
}

export type ClientResult = PublishResult | PrefillResult | DrainResult | RateResult | FollowResult

const wall = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

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

function checkUrl(url: string): URL {
  const u = new URL(url)
  if (u.hostname !== '127.0.0.1') throw new Error(`only 127.0.0.1 may be targeted, not ${u.hostname}`)
  return u
}

/** The port of an amqp://user:pass@127.0.0.1:PORT URL (checked like the others), for the lean AMQP clients. */
function amqpPort(url: string | undefined): number {
  if (url === undefined) throw new Error('a lean Sluice client needs amqpUrl')
  return Number(checkUrl(url.replace(/^amqp:\/\/[^@]*@/, 'http://')).port)
}

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
      else if (cmd === 'stop') this.#stop()
    })
    // The parent went away: stop, so no orphan keeps loading the server.
    rl.on('close', () => {
      resolveGo()
      this.#stop()
    })
  }

  #stop(): void {
    this.stopped = true
    for (const f of this.#onStop) f()
    this.#onStop = []
  }

  onStop(f: () => void): void {
    if (this.stopped) f()
    else this.#onStop.push(f)
  }
}

// ---- transports ----------------------------------------------------------------------------------

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

function get(agent: Agent, u: URL, path: string): Promise<Answer> {
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

async function natsConnect(url: string): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
  const u = checkUrl(url)
  // noAsyncTraces: no stack capture per request, the fast path the nats.js docs recommend for
  // JetStream publishers.
  const nc = await connect({ servers: `${u.hostname}:${u.port}`, noAsyncTraces: true, reconnect: false, name: 'sluice-compare' })
  return { nc, js: nc.jetstream({ timeout: 10_000 }) }
}

const publishPath = (routingKey: string): string => `/v1/exchanges/bench/publish?routingKey=${encodeURIComponent(routingKey)}`

/** A pool of distinct 250-byte events, so consecutive publishes are not byte-identical. */
const pool = Array.from({ length: 1024 }, (_, i) => Buffer.from(eventLine(i)))

function ndjsonFromPool(n: number, first: number): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < n; i++) {
    if (i > 0) parts.push(newline)
    parts.push(pool[(first + i) % pool.length]!)
  }
  return Buffer.concat(parts)
}
const newline = Buffer.from('\n')

/** One event of exactly 250 bytes carrying its send time (ms since the epoch, µs precision). */
function timedEvent(seq: number, sent: number, measured: boolean): string {
  const head = `{"sent":${sent.toFixed(3)},"m":${measured ? 1 : 0},"seq":${seq},"service":"api","level":"info","msg":"`
  const tail = '"}'
  const pad = eventBytes - head.length - tail.length
  if (pad < 0) throw new Error(`event ${seq} does not fit in ${eventBytes} bytes`)
  return head + 'x'.repeat(pad) + tail
}

// ---- publish (W1) --------------------------------------------------------------------------------

/**
 * Closed loop with `window` events unconfirmed. The warm-up and the measured window run back to
 * back on the same connections; confirms are counted in the phase they arrive in.
 */
async function runPublish(spec: PublishSpec, ctl: Control): Promise<PublishResult> {
  const confirmMs = new Samples(2_000_000)
  let phase: 'warmup' | 'measure' | 'drain' = 'warmup'
  let warmupEvents = 0
  let confirmedEvents = 0
  let failed = 0
  let inflight = 0
  let seq = 0
  let cpu0 = process.cpuUsage()
  let tMeasure = 0
  let tEnd = 0
  let open = false
  let send: () => void = () => undefined
  // The lean clients: the whole room in one write, refilled once per read rather than per confirm.
  let sendMany: ((n: number) => void) | undefined
  let close: () => Promise<void>
  let unit = 1
  // Refilled on every confirm, so the window stays full without a polling loop.
  const refill = (): void => {
    if (sendMany !== undefined) {
      if (open && inflight < spec.window) sendMany(spec.window - inflight)
      return
    }
    while (open && inflight + unit <= spec.window) send()
  }
  const count = (events: number, ok: boolean, t0: number): void => {
    inflight -= events
    if (ok) {
      if (phase === 'measure') {
        confirmedEvents += events
        confirmMs.push(performance.now() - t0)
      } else if (phase === 'warmup') warmupEvents += events
    } else failed++
  }
  const settle = (events: number, ok: boolean, t0: number): void => {
    count(events, ok, t0)
    refill()
  }
  if (spec.lean === true) {
    const lean =
      spec.system === 'jetstream'
        ? await LeanNatsPublisher.open({ port: Number(checkUrl(spec.url).port), subject: spec.subject, bodies: pool })
        : await LeanAmqpPublisher.open({ port: amqpPort(spec.amqpUrl), exchange: 'bench', routingKey: spec.subject, bodies: pool, props: { contentType: 'application/json' }, maxUnconfirmed: spec.window })
    // Each event settled on its own (a multiple ack settles each of its events), with its own
    // confirm time; the window refilled after the read.
    lean.onSettled = (ok, sentAt) => count(1, ok, sentAt)
    lean.onReadEnd = refill
    let lost = false
    lean.onError = (why) => {
      if (lost) return
      lost = true
      // Nothing more will be confirmed: what is in flight failed, and no more is sent.
      process.stderr.write(`lean ${spec.system === 'jetstream' ? 'NATS' : 'AMQP'} publisher: ${why}\n`)
      failed += Math.max(1, inflight)
      inflight = 0
      sendMany = () => undefined
    }
    sendMany = (n) => {
      inflight += n
      lean.send(n)
    }
    close = () => lean.close()
  } else if (spec.system === 'jetstream') {
    const { nc, js } = await natsConnect(spec.url)
    await nc.flush()
    unit = 1
    send = () => {
      const t0 = performance.now()
      inflight += 1
      js.publish(spec.subject, pool[seq++ % pool.length]!).then(
        () => settle(1, true, t0),
        (err: unknown) => {
          if (failed < 3) process.stderr.write(`publish failed: ${(err as Error).message}\n`)
          settle(1, false, t0)
        },
      )
    }
    close = () => nc.close()
  } else if (spec.amqpUrl !== undefined) {
    checkUrl(spec.amqpUrl)
    const conn = await amqp.connect(spec.amqpUrl)
    conn.on('error', (err: Error) => process.stderr.write(`amqp connection error: ${err.message}\n`))
    const ch = await conn.createConfirmChannel()
    unit = 1
    send = () => {
      const t0 = performance.now()
      inflight += 1
      ch.publish('bench', spec.subject, pool[seq++ % pool.length]!, { contentType: 'application/json' }, (err: unknown) => {
        if (err !== null && err !== undefined && failed < 3) process.stderr.write(`amqp publish nacked: ${String(err)}\n`)
        settle(1, err === null || err === undefined, t0)
      })
    }
    close = async () => {
      await ch.close().catch(() => undefined)
      await conn.close().catch(() => undefined)
    }
  } else {
    const u = checkUrl(spec.url)
    const requests = Math.max(1, Math.floor(spec.window / spec.batch))
    const agent = new Agent({ keepAlive: true, maxSockets: requests })
    await Promise.all(Array.from({ length: requests }, () => get(agent, u, '/healthz')))
    unit = spec.batch
    const path = publishPath(spec.subject)
    const bodies = Array.from({ length: 16 }, (_, i) => ndjsonFromPool(spec.batch, i * spec.batch))
    const expected = `"accepted":${spec.batch},`
    send = () => {
      const t0 = performance.now()
      inflight += spec.batch
      post(agent, u, path, bodies[seq++ % bodies.length]!, 'application/x-ndjson', 30_000).then(
        (r) => {
          const ok = r.status === 200 && r.body.toString('utf8').includes(expected)
          if (!ok && failed < 3) process.stderr.write(`publish answered ${r.status}: ${r.body.toString('utf8').slice(0, 300)}\n`)
          settle(spec.batch, ok, t0)
        },
        (err: unknown) => {
          if (failed < 3) process.stderr.write(`publish failed: ${(err as Error).message}\n`)
          settle(spec.batch, false, t0)
        },
      )
    }
    close = async () => agent.destroy()
  }
  process.stdout.write('READY\n')
  await ctl.go
  const t0 = performance.now()
  const warmupEnd = t0 + spec.warmupS * 1000
  const end = warmupEnd + Math.min(spec.durationS, spec.maxSeconds) * 1000
  open = true
  refill()
  while (!ctl.stopped) {
    const now = performance.now()
    if (phase === 'warmup' && now >= warmupEnd) {
      phase = 'measure'
      cpu0 = process.cpuUsage()
      tMeasure = now
      process.stdout.write('MEASURE\n')
    }
    if (now >= end) break
    await sleep(Math.max(1, Math.min(10, (phase === 'warmup' ? warmupEnd : end) - now)))
  }
  open = false
  tEnd = performance.now()
  if (phase === 'warmup') tMeasure = tEnd
  phase = 'drain'
  process.stdout.write('END\n')
  const cpu = process.cpuUsage(cpu0)
  // Let what is in flight finish (bounded), so the server is quiet for the next run.
  const drainUntil = performance.now() + 15_000
  while (inflight > 0 && performance.now() < drainUntil) await sleep(10)
  await close()
  const measuredS = (tEnd - tMeasure) / 1000
  return {
    mode: 'publish',
    measuredS,
    confirmedEvents,
    warmupEvents,
    eventsPerSec: measuredS > 0 ? confirmedEvents / measuredS : 0,
    failed,
    confirmMs: confirmMs.percentiles(),
    cpuPct: measuredS > 0 ? ((cpu.user + cpu.system) / 1000 / (measuredS * 1000)) * 100 : 0,
  }
}

// ---- prefill (JetStream backlog) -----------------------------------------------------------------

/**
 * The lean way to fill a stream: core NATS publishes to the stream's subject (no PubAck each),
 * `window` at a time, each chunk followed by a flush (a PING/PONG round trip, so the server has
 * read it); the parent then checks the stream's message count.
 */
async function runPrefill(spec: PrefillSpec, ctl: Control): Promise<PrefillResult> {
  if (spec.system !== 'jetstream') throw new Error('prefill is for JetStream; Sluice is prefilled with the log API')
  const { nc } = await natsConnect(spec.url)
  process.stdout.write('READY\n')
  await ctl.go
  const t0 = performance.now()
  const deadline = t0 + spec.maxSeconds * 1000
  let sent = 0
  while (sent < spec.events && !ctl.stopped && performance.now() < deadline) {
    const end = Math.min(spec.events, sent + spec.window)
    for (; sent < end; sent++) nc.publish(spec.subject, pool[sent % pool.length]!)
    await nc.flush()
  }
  const seconds = (performance.now() - t0) / 1000
  await nc.close()
  return { mode: 'prefill', confirmed: sent, failed: spec.events - sent, seconds, eventsPerSec: sent / seconds }
}

// ---- drain (W2, W4) ------------------------------------------------------------------------------

interface WireDelivery {
  readonly tag: string
  readonly offset: number
  readonly redelivered: boolean
  readonly body: unknown
}

async function runDrain(spec: DrainSpec, ctl: Control): Promise<DrainResult> {
  if (spec.lean === true) return runLeanDrain(spec, ctl)
  let fetches = 0
  let emptyFetches = 0
  let received = 0
  let acked = 0
  let ackFailed = 0
  let redelivered = 0
  let errors = 0
  let firstFetchAt = Number.NaN
  let lastAckAt = Number.NaN
  let maxSeq = -1
  let runs = 0
  let batches = 0
  let stoppedBy: DrainResult['stoppedBy'] = 'time'
  let sink = 0 // keeps the parsed bodies observably used
  const want = (): number => (spec.limit > 0 ? Math.min(spec.max, spec.limit - received) : spec.max)
  let cpu0 = process.cpuUsage()
  let t0 = 0
  if (spec.system === 'jetstream') {
    const { nc, js } = await natsConnect(spec.url)
    await js.consumers.get(spec.stream, spec.target) // it exists
    await nc.flush()
    process.stdout.write('READY\n')
    await ctl.go
    cpu0 = process.cpuUsage()
    t0 = performance.now()
    const deadline = t0 + spec.maxSeconds * 1000
    let refused = 0
    try {
      for (;;) {
        if (ctl.stopped) {
          stoppedBy = 'stop'
          break
        }
        if (performance.now() > deadline) break
        const n = want()
        if (n <= 0) {
          stoppedBy = 'limit'
          break
        }
        if (fetches === 0) firstFetchAt = wall()
        // A pull request with no_wait: the server sends what it has, up to `n`, then ends the
        // request (404 when it has fewer). No client-side expiry timer, so nothing already on its
        // way is dropped when a loaded machine is slow to read it (consumer.fetch() closes its
        // subscription at `expires`, and what was in flight then waits for ack_wait and comes back).
        const iter = js.fetch(spec.stream, spec.target, { batch: n, no_wait: true })
        fetches++
        let got = 0
        let prevSeq = -2
        try {
          for await (const m of iter) {
            if (m.seq !== prevSeq + 1) runs++
            prevSeq = m.seq
            got++
            received++
            const body = m.json<{ ts?: number }>()
            sink += body.ts ?? 0
            if (m.redelivered) redelivered++
            if (m.seq > maxSeq) maxSeq = m.seq
            m.ack()
            acked++
            lastAckAt = wall()
          }
        } catch (err) {
          // e.g. 409 max ack pending exceeded: try again shortly, a bounded number of times
          if (++refused > 10_000) throw err
          await sleep(1)
          continue
        }
        if (got > 0) batches++
        if (got === 0) {
          emptyFetches++
          if (spec.limit === 0) {
            stoppedBy = 'empty'
            break
          }
          await sleep(1)
        }
      }
      // Every ack is in the server's hands (a round trip after the last one).
      await nc.flush()
    } catch (err) {
      errors++
      stoppedBy = 'error'
      process.stderr.write(`drain failed: ${(err as Error).stack ?? String(err)}\n`)
    }
    await nc.close()
  } else {
    const u = checkUrl(spec.url)
    const agent = new Agent({ keepAlive: true, maxSockets: 2 })
    const fetchPath = `/v1/groups/${encodeURIComponent(spec.target)}/fetch`
    const ackPath = `/v1/groups/${encodeURIComponent(spec.target)}/ack`
    await Promise.all([0, 1].map(() => get(agent, u, '/healthz')))
    process.stdout.write('READY\n')
    await ctl.go
    cpu0 = process.cpuUsage()
    t0 = performance.now()
    const deadline = t0 + spec.maxSeconds * 1000
    let pendingAck: Promise<void> | undefined
    const ack = async (tags: string[]): Promise<void> => {
      try {
        // One run for the whole fetch: its deliveries are consecutive in this member's order.
        const r = await post(agent, u, ackPath, Buffer.from(JSON.stringify({ ranges: [[tags[0], tags[tags.length - 1]]] })), 'application/json', 30_000)
        if (r.status !== 200) {
          errors++
          ackFailed += tags.length
          return
        }
        const ans = JSON.parse(r.body.toString('utf8')) as { settled: number; failed: unknown[] }
        acked += ans.settled
        ackFailed += tags.length - ans.settled
        lastAckAt = wall()
      } catch (err) {
        errors++
        ackFailed += tags.length
        process.stderr.write(`ack failed: ${(err as Error).message}\n`)
      }
    }
    try {
      for (;;) {
        if (ctl.stopped) {
          stoppedBy = 'stop'
          break
        }
        if (performance.now() > deadline) break
        const n = want()
        if (n <= 0) {
          stoppedBy = 'limit'
          break
        }
        if (fetches === 0) firstFetchAt = wall()
        const r = await post(agent, u, fetchPath, Buffer.from(JSON.stringify({ consumer: spec.consumer, max: n, waitMs: 1000 })), 'application/json', 30_000)
        fetches++
        if (r.status !== 200) {
          errors++
          stoppedBy = 'error'
          process.stderr.write(`fetch answered ${r.status}: ${r.body.toString('utf8').slice(0, 500)}\n`)
          break
        }
        const events = (JSON.parse(r.body.toString('utf8')) as { events: WireDelivery[] }).events
        if (events.length === 0) {
          emptyFetches++
          if (spec.limit === 0) {
            stoppedBy = 'empty'
            break
          }
          continue
        }
        received += events.length
        batches++
        const tags = new Array<string>(events.length)
        for (let i = 0; i < events.length; i++) {
          const e = events[i]!
          tags[i] = e.tag
          if (i === 0 || e.offset !== events[i - 1]!.offset + 1) runs++
          if (e.redelivered) redelivered++
          if (e.offset > maxSeq) maxSeq = e.offset
          sink += (e.body as { ts?: number }).ts ?? 0
        }
        // At most one ack outstanding: it overlaps the next fetch, as a pipelined client's would.
        if (pendingAck !== undefined) await pendingAck
        pendingAck = ack(tags)
      }
    } finally {
      if (pendingAck !== undefined) await pendingAck
    }
    agent.destroy()
  }
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  if (sink === -1) process.stderr.write('unreachable\n')
  return {
    mode: 'drain',
    consumer: spec.consumer,
    fetches,
    emptyFetches,
    received,
    acked,
    ackFailed,
    redelivered,
    errors,
    firstFetchAt,
    lastAckAt,
    maxSeq,
    runsPerBatch: batches > 0 ? runs / batches : 0,
    stoppedBy,
    cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
  }
}

/**
 * W2/W4 with the leanest client on each side (see DrainSpec.lean). AMQP has no "empty" answer: a
 * Sluice drain with no limit ends once nothing has arrived for `leanQuietMs` (not counted: the
 * window ends at the last ack). AMQP deliveries carry no offset; one consumer gets its group's
 * events in offset order, so the highest offset acked is the count less one (the orchestrator
 * checks the group's cursor on the server besides).
 */
const leanQuietMs = 300

async function runLeanDrain(spec: DrainSpec, ctl: Control): Promise<DrainResult> {
  let received = 0
  let redelivered = 0
  let maxSeq = -1
  let runs = 0
  let prevSeq = -2
  let sink = 0
  let firstFetchAt = Number.NaN
  let lastAckAt = Number.NaN
  let cpu0 = process.cpuUsage()
  let t0 = 0
  const see = (payload: Buffer): void => {
    // What a consumer does at least: look at the event (the ts field's first digit).
    sink += payload[7] ?? 0
  }
  if (spec.system === 'jetstream') {
    const port = Number(checkUrl(spec.url).port)
    process.stdout.write('READY\n')
    await ctl.go
    cpu0 = process.cpuUsage()
    t0 = performance.now()
    firstFetchAt = wall()
    const r = await leanPull({
      port,
      stream: spec.stream,
      consumer: spec.target,
      batch: spec.max / 2,
      pipeline: 2,
      limit: spec.limit,
      deadlineMs: spec.maxSeconds * 1000,
      onMessage: (seq, again, payload) => {
        received++
        if (seq !== prevSeq + 1) runs++
        prevSeq = seq
        if (seq > maxSeq) maxSeq = seq
        if (again) redelivered++
        see(payload)
        lastAckAt = wall()
      },
    })
    const wallMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    if (r.error !== undefined) process.stderr.write(`lean pull: ${r.error}\n`)
    return { mode: 'drain', consumer: spec.consumer, fetches: r.pulls, emptyFetches: r.emptyPulls, received, acked: r.acked, ackFailed: 0, redelivered, errors: r.stoppedBy === 'error' ? 1 : 0, firstFetchAt, lastAckAt, maxSeq, runsPerBatch: r.pulls > 0 ? runs / r.pulls : 0, stoppedBy: r.stoppedBy, cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100 }
  }
  const c = await LeanAmqp.open(amqpPort(spec.amqpUrl))
  process.stdout.write('READY\n')
  await ctl.go
  cpu0 = process.cpuUsage()
  t0 = performance.now()
  firstFetchAt = wall()
  const ackEvery = spec.max / 2
  let unacked = 0
  let lastTag = 0
  let acked = 0
  let errors = 0
  let stoppedBy: DrainResult['stoppedBy'] = 'time'
  let finish: () => void = () => undefined
  const done = new Promise<void>((r) => (finish = r))
  let quiet: NodeJS.Timeout | undefined
  const ack = (): void => {
    if (unacked === 0) return
    c.sock.write(basicAck(1, lastTag, true))
    acked += unacked
    unacked = 0
    lastAckAt = wall()
  }
  let stopped = false
  const stop = (why: DrainResult['stoppedBy']): void => {
    if (stopped) return
    stopped = true
    stoppedBy = why
    finish()
  }
  c.onClose = (why) => {
    if (stoppedBy === 'time' && received < (spec.limit || Infinity)) {
      errors++
      process.stderr.write(`lean AMQP consumer: ${why}\n`)
      stop('error')
    }
  }
  const onFrame = (f: Frame): void => {
    // Deliveries still on their way after the stop (up to the qos) are neither counted nor acked.
    if (stopped) return
    if (f.type === FRAME_METHOD) {
      const cls = f.payload.readUInt16BE(0)
      const m = f.payload.readUInt16BE(2)
      if (cls === 60 && m === 60) {
        lastTag = deliveryTagOf(f.payload)
        if (redeliveredOf(f.payload)) redelivered++
      } else if (cls === 20 || cls === 10) {
        errors++
        process.stderr.write(`lean AMQP consumer: closed by the server: ${f.payload.subarray(4).toString('latin1')}\n`)
        stop('error')
      }
      return
    }
    if (f.type !== FRAME_BODY) return
    received++
    maxSeq = received - 1
    see(f.payload)
    unacked++
    if (unacked >= ackEvery) ack()
    if (spec.limit > 0 && received >= spec.limit) {
      ack()
      return stop('limit')
    }
    if (spec.limit === 0) {
      if (quiet !== undefined) quiet.refresh()
      else
        quiet = setTimeout(() => {
          ack()
          stop('empty')
        }, leanQuietMs)
    }
  }
  ctl.onStop(() => stop('stop'))
  const timer = setTimeout(() => stop('time'), spec.maxSeconds * 1000)
  await c.consume(spec.target, spec.max, onFrame).catch((err: unknown) => {
    errors++
    process.stderr.write(`basic.consume failed: ${(err as Error).message}\n`)
    stop('error')
  })
  await done
  clearTimeout(timer)
  if (quiet !== undefined) clearTimeout(quiet)
  ack()
  await c.close()
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  if (sink === -1) process.stderr.write('unreachable\n')
  return { mode: 'drain', consumer: spec.consumer, fetches: 1, emptyFetches: 0, received, acked, ackFailed: 0, redelivered, errors, firstFetchAt, lastAckAt, maxSeq, runsPerBatch: 1, stoppedBy, cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100 }
}

// ---- rate (W3 publisher) -------------------------------------------------------------------------

async function runRate(spec: RateSpec, ctl: Control): Promise<RateResult> {
  const warmupTicks = Math.round((spec.warmupS * 1000) / spec.intervalMs)
  const planned = warmupTicks + Math.round((Math.min(spec.durationS, spec.maxSeconds) * 1000) / spec.intervalMs)
  const confirmMs = new Samples(planned * spec.eventsPerTick)
  const lateMs = new Samples(planned)
  let confirmedEvents = 0
  let measuredEvents = 0
  let failed = 0
  let seq = 0
  let outstanding = 0
  let fireTick: (measured: boolean) => void
  let close: () => Promise<void>
  const onConfirm = (events: number, measured: boolean, t0: number): void => {
    outstanding -= events
    confirmedEvents += events
    if (measured) {
      measuredEvents += events
      confirmMs.push(performance.now() - t0)
    }
  }
  const onFail = (events: number, err: string): void => {
    outstanding -= events
    if (failed++ < 3) process.stderr.write(`${err}\n`)
  }
  if (spec.system === 'jetstream') {
    const { nc, js } = await natsConnect(spec.url)
    await nc.flush()
    fireTick = (measured) => {
      const sentAt = wall()
      for (let i = 0; i < spec.eventsPerTick; i++) {
        const t0 = performance.now()
        outstanding++
        js.publish(spec.subject, Buffer.from(timedEvent(seq++, sentAt, measured))).then(
          () => onConfirm(1, measured, t0),
          (err: unknown) => onFail(1, `publish failed: ${(err as Error).message}`),
        )
      }
    }
    close = () => nc.close()
  } else {
    const u = checkUrl(spec.url)
    const agent = new Agent({ keepAlive: true, maxSockets: 16 })
    await get(agent, u, '/healthz')
    const path = publishPath(spec.subject)
    const expected = `"accepted":${spec.eventsPerTick},`
    fireTick = (measured) => {
      const sentAt = wall()
      const lines: string[] = []
      for (let i = 0; i < spec.eventsPerTick; i++) lines.push(timedEvent(seq++, sentAt, measured))
      const t0 = performance.now()
      outstanding += spec.eventsPerTick
      post(agent, u, path, Buffer.from(lines.join('\n')), 'application/x-ndjson', 10_000).then(
        (r) => {
          if (r.status === 200 && r.body.toString('utf8').includes(expected)) onConfirm(spec.eventsPerTick, measured, t0)
          else onFail(spec.eventsPerTick, `publish answered ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`)
        },
        (err: unknown) => onFail(spec.eventsPerTick, `publish failed: ${(err as Error).message}`),
      )
    }
    close = async () => agent.destroy()
  }
  process.stdout.write('READY\n')
  await ctl.go
  let cpu0 = process.cpuUsage()
  let tMeasure = performance.now()
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    let next = 0
    const tick = (): void => {
      const now = performance.now()
      while (next < planned && t0 + next * spec.intervalMs <= now) {
        if (next === warmupTicks) {
          cpu0 = process.cpuUsage()
          tMeasure = performance.now()
          process.stdout.write('MEASURE\n')
        }
        lateMs.push(now - (t0 + next * spec.intervalMs))
        fireTick(next >= warmupTicks)
        next++
      }
      if (next >= planned) {
        clearInterval(timer)
        resolve()
      }
    }
    const timer = setInterval(tick, 1)
    ctl.onStop(() => {
      clearInterval(timer)
      resolve()
    })
    tick()
  })
  const wallMs = performance.now() - tMeasure
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write('END\n')
  const drainUntil = performance.now() + 15_000
  while (outstanding > 0 && performance.now() < drainUntil) await sleep(5)
  await close()
  return {
    mode: 'rate',
    planned: planned * spec.eventsPerTick,
    measuredEvents,
    confirmedEvents,
    failed,
    eventsPerSec: measuredEvents / (wallMs / 1000),
    confirmMs: confirmMs.percentiles(),
    lateMs: lateMs.percentiles(),
    cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
  }
}

// ---- follow (W3 consumer) ------------------------------------------------------------------------

interface TimedBody {
  readonly sent?: number
  readonly m?: number
}

async function runFollow(spec: FollowSpec, ctl: Control): Promise<FollowResult> {
  const e2e = new Samples(2_000_000)
  let received = 0
  let measuredReceived = 0
  let redelivered = 0
  let ackFailed = 0
  const see = (body: TimedBody, recvAt: number): void => {
    received++
    if (body.m === 1 && typeof body.sent === 'number') {
      e2e.push(recvAt - body.sent)
      measuredReceived++
    }
  }
  let cpu0 = process.cpuUsage()
  let t0 = 0
  if (spec.system === 'jetstream') {
    const { nc, js } = await natsConnect(spec.url)
    const c = await js.consumers.get(spec.stream, spec.target)
    const msgs = await c.consume({ max_messages: spec.max })
    await nc.flush()
    process.stdout.write('READY\n')
    await ctl.go
    cpu0 = process.cpuUsage()
    t0 = performance.now()
    const hardStop = setTimeout(() => msgs.stop(), spec.maxSeconds * 1000)
    ctl.onStop(() => msgs.stop())
    for await (const m of msgs) {
      const recvAt = wall()
      see(m.json<TimedBody>(), recvAt)
      if (m.redelivered) redelivered++
      m.ack()
    }
    clearTimeout(hardStop)
    await nc.flush()
    await nc.close()
  } else {
    const u = checkUrl(spec.url)
    const agent = new Agent({ keepAlive: true, maxSockets: 2 })
    const fetchPath = `/v1/groups/${encodeURIComponent(spec.target)}/fetch`
    const ackPath = `/v1/groups/${encodeURIComponent(spec.target)}/ack`
    await Promise.all([0, 1].map(() => get(agent, u, '/healthz')))
    process.stdout.write('READY\n')
    await ctl.go
    cpu0 = process.cpuUsage()
    t0 = performance.now()
    const deadline = t0 + spec.maxSeconds * 1000
    const fetchBody = Buffer.from(JSON.stringify({ consumer: spec.consumer, max: spec.max, waitMs: 1000 }))
    let pendingAck: Promise<void> | undefined
    const ack = async (tags: string[]): Promise<void> => {
      const r = await post(agent, u, ackPath, Buffer.from(JSON.stringify({ tags })), 'application/json', 30_000)
      if (r.status !== 200) ackFailed += tags.length
      else ackFailed += (JSON.parse(r.body.toString('utf8')) as { failed: unknown[] }).failed.length
    }
    while (!ctl.stopped && performance.now() < deadline) {
      const r = await post(agent, u, fetchPath, fetchBody, 'application/json', 30_000)
      const recvAt = wall()
      if (r.status !== 200) throw new Error(`fetch answered ${r.status}: ${r.body.toString('utf8').slice(0, 500)}`)
      const events = (JSON.parse(r.body.toString('utf8')) as { events: Array<WireDelivery & { body: TimedBody }> }).events
      if (events.length === 0) continue
      const tags = new Array<string>(events.length)
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!
        tags[i] = e.tag
        if (e.redelivered) redelivered++
        see(e.body, recvAt)
      }
      if (pendingAck !== undefined) await pendingAck
      pendingAck = ack(tags)
    }
    if (pendingAck !== undefined) await pendingAck
    agent.destroy()
  }
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { mode: 'follow', received, measuredReceived, redelivered, ackFailed, e2eMs: e2e.percentiles(), cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100, clockSkewMs: wall() - Date.now() }
}

async function main(): Promise<void> {
  const raw = process.argv[2]
  if (raw === undefined) throw new Error("usage: compare-client.js '<json spec>'")
  const spec = JSON.parse(raw) as ClientSpec
  const ctl = new Control()
  // A hard stop whatever happens: no client outlives its budget (set-up, warm-up and drain included).
  const budgetS = spec.maxSeconds + ('warmupS' in spec ? spec.warmupS : 0) + 90
  setTimeout(() => {
    process.stderr.write(`compare-client: over its ${budgetS} s budget, exiting\n`)
    process.exit(3)
  }, budgetS * 1000).unref()
  let result: ClientResult
  if (spec.mode === 'publish') result = await runPublish(spec, ctl)
  else if (spec.mode === 'prefill') result = await runPrefill(spec, ctl)
  else if (spec.mode === 'drain') result = await runDrain(spec, ctl)
  else if (spec.mode === 'rate') result = await runRate(spec, ctl)
  else result = await runFollow(spec, ctl)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`compare-client: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
