// Abuse soak: `npm run soak:abuse`, or after a build `node dist/benchmarks/soak-abuse.js [--seconds=S]`.
//
// A real server (`node dist/src/cli.js serve`, a child process on loopback ports kept across its
// restarts, a fresh temp dataDir, fsync: batch, the NDJSON and syslog doors' idleTimeout 10 s)
// serves normal clients for the whole run while hostile and careless ones hit it, and it is
// SIGKILLed and restarted a few times. Everything is loopback and every loop is bounded in count
// and in time; the whole run takes about S + 60 seconds (S = 150).
//
// Normal clients, from 127.0.0.1, all run throughout:
//   - two HTTP publishers (application/json arrays and application/x-ndjson), 20 events a request,
//     each event with a unique id; an event is *confirmed* when its request got 200;
//   - one TCP NDJSON publisher (no confirmations on that door: its events are counted, not checked);
//   - one consumer on the group `worker`: long-poll fetch (waitMs 1000) and ack;
//   - a prober: GET /healthz and /readyz every 250 ms.
// Abuse, from 127.0.0.2–127.0.0.9 (so per-address limits single out the abusers), in waves:
//   - abort storms: long-poll fetches (waitMs 30 s) and publishes reset (RST) after a few ms;
//   - slow bodies: publishes whose body arrives a few bytes a second, 300 per address (over the
//     per-address request cap);
//   - idle floods on every door (HTTP, NDJSON, AMQP, syslog): 600 silent connections a door from
//     two addresses (over the NDJSON and syslog per-address connection caps), held;
//   - tiny-event bombs: 2 MB of `1\n` (a million events), a `[1,1,…]` array, a gzip bomb;
//   - SIGKILL of the server, then a restart on the same dataDir and ports.
// Then, on a 20 MB tmpfs (mounted here and unmounted after; needs root, skipped with a printed
// line otherwise), a disk filling every way (see fullDisk): publishes until admission refuses
// them, another file taking the rest, a SIGKILL and restart at 0 bytes free, space coming back
// (the tmpfs grows to 40 MB), the disk filling again under admitted writes (ENOSPC in the log),
// SIGKILLs, and every refused request sent again once there is room.
//
// Checks (exit code 1 when one fails):
//   - every normal request that started while the server was up was answered, within 3 s for a
//     publish and waitMs + 3 s for a fetch, and not with a 5xx that blames load (no lockout);
//   - nothing confirmed is lost: the stream is read back whole at the end and every confirmed id
//     is in it; the consumer got every confirmed id too (after a bounded drain);
//   - the server's RSS stays under 1 GB;
//   - full disk: nothing confirmed lost or stored twice; nothing of a request answered 503 stored;
//     a restart at 0 bytes free works; publishing and the metadata reserve come back by
//     themselves with the space; refused requests sent again are accepted.
//
// Options: --seconds=S (the abuse part, default 150), --no-disk (skip the full-disk part).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, copyFileSync, cpSync, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, statSync, symlinkSync, writeFileSync, writeSync, type WriteStream } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { freePort } from './lib/proc.js'

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const abuseSeconds = Number(arg('seconds') ?? 150)
const withDisk = !process.argv.includes('--no-disk')
/** The server's entry point: a private copy of the build (see snapshotBuild), set by main. */
let cli = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/**
 * Copies dist/src (and package.json, with a link to node_modules) into `base`, so that others
 * rebuilding dist/ during the run cannot change the server between two restarts.
 */
function snapshotBuild(base: string): string {
  const repo = fileURLToPath(new URL('../../', import.meta.url))
  const code = join(base, 'code')
  cpSync(join(repo, 'dist', 'src'), join(code, 'dist', 'src'), { recursive: true })
  copyFileSync(join(repo, 'package.json'), join(code, 'package.json'))
  symlinkSync(join(repo, 'node_modules'), join(code, 'node_modules'), 'dir')
  return join(code, 'dist', 'src', 'cli.js')
}

const publishBoundMs = 3000
const fetchWaitMs = 1000
const fetchBoundMs = fetchWaitMs + 3000
/** After a restart is ready, requests begun this soon after it may still meet the old sockets. */
const restartGraceMs = 1000
const rssLimitBytes = 1024 ** 3

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const now = (): number => performance.now()
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
// ---- the server ----------------------------------------------------------------------------------

interface Ports {
  http: number
  ndjson: number
  amqp: number
  syslog: number
}

function configYaml(dataDir: string, p: Ports, diskFreeLimit: string): string {
  return `
server:
  dataDir: ${JSON.stringify(dataDir)}
  http: { host: 127.0.0.1, port: ${p.http} }
  ndjson: { host: 127.0.0.1, port: ${p.ndjson}, exchange: logs, idleTimeout: 10s }
  amqp: { host: 127.0.0.1, port: ${p.amqp} }
  syslog: { host: 127.0.0.1, port: ${p.syslog}, udp: false, exchange: logs, routingKey: "syslog.{facility}.{severity}", idleTimeout: 10s }
  durability: { fsync: batch, interval: 5ms }
  alarms: { diskFreeLimit: ${diskFreeLimit} }
  log: { level: warn }
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}", dedup: id }
streams:
  app-logs: { segmentSize: 16mb }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  worker: { stream: app-logs, prefetch: 2000, ackTimeout: 15s, maxDeliveries: 0 }
`
}

class Server {
  proc: ChildProcess | undefined
  exited: Promise<number | null> = Promise.resolve(null)
  /** When the server was last not serving: from a kill to its next "ready" (plus a grace). */
  downFrom = 0
  upAt = 0
  kills = 0
  restartsMs: number[] = []
  rssMax = 0
  #log: WriteStream
  #rssTimer: NodeJS.Timeout | undefined

  constructor(
    readonly dir: string,
    readonly ports: Ports,
    readonly diskFreeLimit: string,
    logPath: string,
  ) {
    writeFileSync(join(dir, 'sluice.yaml'), configYaml(join(dir, 'data'), ports, diskFreeLimit))
    this.#log = createWriteStream(logPath, { flags: 'a' })
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports.http}`
  }

  /** Whether a request that began at `t` met a server that was up (not killed, not restarting). */
  upDuring(t0: number, t1: number): boolean {
    return !(t1 >= this.downFrom && t0 <= this.upAt + restartGraceMs)
  }

  async start(): Promise<void> {
    const t0 = now()
    // A restart keeps the kill's time: requests cut by the kill itself are not held against it.
    if (this.upAt !== Number.POSITIVE_INFINITY) this.downFrom = t0
    this.upAt = Number.POSITIVE_INFINITY
    const proc = spawn(process.execPath, [cli, 'serve', '--config', join(this.dir, 'sluice.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)))
    proc.stderr!.pipe(this.#log, { end: false })
    proc.stdout!.pipe(this.#log, { end: false })
    // Ready once /readyz answers anything but "recovering" (a disk alarm on the full disk still
    // means the server is up). The log level is warn, so there is no "ready" line to wait for.
    let exitCode: number | null | undefined
    void this.exited.then((code) => (exitCode = code))
    const deadline = t0 + 60_000
    for (;;) {
      if (exitCode !== undefined) throw new Error(`server exited with ${exitCode} before it was ready (log: ${this.#log.path as string})`)
      if (now() > deadline) throw new Error(`server not ready within 60 s (log: ${this.#log.path as string})`)
      try {
        const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) })
        const text = await res.text()
        if (res.status === 200 || (res.status === 503 && !text.includes('"not_ready"'))) break
      } catch {
        // not listening yet
      }
      await sleep(50)
    }
    this.upAt = now()
    this.restartsMs.push(this.upAt - t0)
    this.#rssTimer = setInterval(() => this.#sampleRss(), 500)
  }

  #sampleRss(): void {
    const pid = this.proc?.pid
    if (pid === undefined) return
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m !== null) this.rssMax = Math.max(this.rssMax, Number(m[1]) * 1024)
    } catch {
      // gone between the kill and the timer
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    clearInterval(this.#rssTimer)
    this.downFrom = now()
    this.upAt = Number.POSITIVE_INFINITY
    if (signal === 'SIGKILL') this.kills++
    this.proc?.kill(signal)
    await Promise.race([this.exited, sleep(30_000)])
  }

  async restart(): Promise<void> {
    await this.kill('SIGKILL')
    await this.start()
  }

  close(): void {
    this.#log.end()
  }
}

// ---- normal clients ----------------------------------------------------------------------------

interface Latencies {
  count: number
  ok: number
  /** Answered, but not 200, while up: status → count. */
  refused: Map<string, number>
  /** Failed or too slow while the server was up. */
  violations: string[]
  /** Failed while the server was down or restarting (not held against it). */
  duringRestart: number
  samples: number[]
}

/** When the abuse part began (performance.now()), so a violation says when it happened. */
let runStartedAt = 0
const runTime = (t: number): string => `at ${((t - runStartedAt) / 1000).toFixed(1)} s`

const newLatencies = (): Latencies => ({ count: 0, ok: 0, refused: new Map(), violations: [], duringRestart: 0, samples: [] })

function note(l: Latencies, server: Server, t0: number, boundMs: number, outcome: { status?: number; error?: string }): void {
  const t1 = now()
  const ms = t1 - t0
  l.count++
  const up = server.upDuring(t0, t1)
  if (outcome.status === 200) {
    l.ok++
    if (up) {
      l.samples.push(ms)
      if (ms > boundMs && l.violations.length < 1000) l.violations.push(`${ms.toFixed(0)} ms (bound ${boundMs} ms) ${runTime(t0)}`)
    }
    return
  }
  if (!up) {
    l.duringRestart++
    return
  }
  const what = outcome.status !== undefined ? `status ${outcome.status}` : `error ${outcome.error ?? '?'}`
  l.refused.set(what, (l.refused.get(what) ?? 0) + 1)
  // A 429 is a limit doing its work; anything else while up means the door failed a normal client.
  if (outcome.status !== 429 && l.violations.length < 1000) l.violations.push(`${what} after ${ms.toFixed(0)} ms ${runTime(t0)}`)
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

class Normal {
  readonly confirmed = new Set<string>()
  readonly received = new Set<string>()
  readonly publish = newLatencies()
  readonly fetch = newLatencies()
  readonly probe = newLatencies()
  tcpSent = 0
  #seq = 0
  stopPublishing = false
  stopAll = false

  constructor(readonly server: Server) {}

  #events(prefix: string, n: number): { id: string; service: string; level: string; seq: number; msg: string }[] {
    return Array.from({ length: n }, () => {
      const seq = ++this.#seq
      return { id: `${prefix}-${seq}`, service: 'soak', level: seq % 10 === 0 ? 'error' : 'info', seq, msg: `normal event ${seq}` }
    })
  }

  async httpPublisher(kind: 'json' | 'ndjson', deadline: number): Promise<void> {
    for (let i = 0; i < 200_000 && !this.stopPublishing && now() < deadline; i++) {
      const events = this.#events(kind === 'json' ? 'j' : 'n', 20)
      const body = kind === 'json' ? JSON.stringify(events) : events.map((e) => JSON.stringify(e)).join('\n')
      const t0 = now()
      try {
        const res = await fetch(`${this.server.url}/v1/exchanges/logs/publish`, {
          method: 'POST',
          headers: { 'content-type': kind === 'json' ? 'application/json' : 'application/x-ndjson' },
          body,
          signal: AbortSignal.timeout(15_000),
        })
        await res.arrayBuffer()
        if (res.status === 200) for (const e of events) this.confirmed.add(e.id)
        note(this.publish, this.server, t0, publishBoundMs, { status: res.status })
      } catch (err) {
        note(this.publish, this.server, t0, publishBoundMs, { error: (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message })
        await sleep(100)
      }
      await sleep(15)
    }
  }

  async tcpPublisher(deadline: number): Promise<void> {
    for (let conn = 0; conn < 1000 && !this.stopPublishing && now() < deadline; conn++) {
      const socket = connect({ host: '127.0.0.1', port: this.server.ports.ndjson })
      let open = true
      socket.on('error', () => (open = false))
      socket.on('close', () => (open = false))
      await new Promise<void>((r) => {
        socket.once('connect', () => r())
        socket.once('error', () => r())
      })
      for (let i = 0; i < 100_000 && open && !this.stopPublishing && now() < deadline; i++) {
        const lines = this.#events('t', 10).map((e) => `${JSON.stringify(e)}\n`).join('')
        if (!socket.write(lines)) await new Promise<void>((r) => socket.once('drain', () => r()).once('close', () => r()))
        this.tcpSent += 10
        await sleep(50)
      }
      socket.end()
      await sleep(200)
    }
  }

  async consumer(deadline: number, idleStopMs = 0): Promise<void> {
    let emptySince = now()
    for (let i = 0; i < 100_000 && !this.stopAll && now() < deadline; i++) {
      const t0 = now()
      try {
        const res = await fetch(`${this.server.url}/v1/groups/worker/fetch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ consumer: 'soak-consumer', max: 500, waitMs: fetchWaitMs }),
          signal: AbortSignal.timeout(15_000),
        })
        const text = await res.text()
        note(this.fetch, this.server, t0, fetchBoundMs, { status: res.status })
        if (res.status !== 200) {
          await sleep(100)
          continue
        }
        const events = (JSON.parse(text) as { events: { tag: string; id: string }[] }).events
        for (const e of events) this.received.add(e.id)
        if (events.length > 0) {
          emptySince = now()
          const ack = await fetch(`${this.server.url}/v1/groups/worker/ack`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ tags: events.map((e) => e.tag) }),
            signal: AbortSignal.timeout(15_000),
          })
          await ack.arrayBuffer()
        } else if (idleStopMs > 0 && now() - emptySince > idleStopMs) {
          return
        }
      } catch (err) {
        note(this.fetch, this.server, t0, fetchBoundMs, { error: (err as Error).message })
        await sleep(100)
      }
    }
  }

  async prober(deadline: number): Promise<void> {
    for (let i = 0; i < 100_000 && !this.stopAll && now() < deadline; i++) {
      for (const path of ['/healthz', '/readyz']) {
        const t0 = now()
        try {
          const res = await fetch(`${this.server.url}${path}`, { signal: AbortSignal.timeout(10_000) })
          await res.arrayBuffer()
          note(this.probe, this.server, t0, publishBoundMs, { status: res.status })
        } catch (err) {
          note(this.probe, this.server, t0, publishBoundMs, { error: (err as Error).message })
        }
      }
      await sleep(250)
    }
  }
}

// ---- abusers -------------------------------------------------------------------------------------

const abuserAddresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9']

interface AbuseCounts {
  abortedFetches: number
  abortedPublishes: number
  slowBodies: number
  slowBodyEndings: Map<string, number>
  /** Per door: silent connections opened, refused at connect, closed by the server while held. */
  idle: Map<string, { opened: number; refused: number; closed: number; closeMs: number[] }>
  bombs: Map<string, number>
  bombMsMax: number
}

const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1)

function rawSocket(port: number, localAddress: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress })
    const timer = setTimeout(() => {
      s.destroy()
      resolve(undefined)
    }, 5000)
    s.once('connect', () => {
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', () => {
      clearTimeout(timer)
      resolve(undefined)
    })
  })
}

function httpText(method: string, path: string, body: string, type = 'application/json'): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

class Abuse {
  readonly c: AbuseCounts = { abortedFetches: 0, abortedPublishes: 0, slowBodies: 0, slowBodyEndings: new Map(), idle: new Map(), bombs: new Map(), bombMsMax: 0 }
  #k = 0

  constructor(readonly server: Server) {}

  /** Long polls and publishes reset (RST) a few ms after they are sent. */
  async abortStorm(count: number, deadline: number): Promise<void> {
    const one = async (i: number): Promise<void> => {
      const fetchKind = i % 2 === 0
      const s = await rawSocket(this.server.ports.http, abuserAddresses[i % 4]!)
      if (s === undefined) return
      s.on('error', () => undefined)
      const k = ++this.#k
      if (fetchKind) s.write(httpText('POST', '/v1/groups/worker/fetch', JSON.stringify({ consumer: `abuser-${k % 50}`, max: 50, waitMs: 30_000 })))
      else s.write(httpText('POST', '/v1/exchanges/logs/publish', `{"id":"abort-${k}","service":"abuse","level":"info"}`, 'application/x-ndjson'))
      await sleep(fetchKind ? 5 + (k % 200) : k % 3)
      s.resetAndDestroy()
      if (fetchKind) this.c.abortedFetches++
      else this.c.abortedPublishes++
    }
    for (let i = 0; i < count && now() < deadline; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => one(i + j)))
    }
  }

  /** Publishes whose bodies trickle in; the server must give up on them (bodyTimeout), not wait forever. */
  async slowBodies(count: number, holdMs: number): Promise<void> {
    const one = async (i: number): Promise<void> => {
      const s = await rawSocket(this.server.ports.http, abuserAddresses[4 + (i % 2)]!)
      if (s === undefined) return bump(this.c.slowBodyEndings, 'not connected')
      this.c.slowBodies++
      let answer = ''
      let closed = false
      s.on('data', (d: Buffer) => (answer += d.toString('latin1')))
      s.on('error', () => undefined)
      s.on('close', () => (closed = true))
      s.write('POST /v1/exchanges/logs/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n')
      const end = now() + holdMs
      for (let t = 0; t < 1000 && !closed && now() < end; t++) {
        s.write('{"x":1}\n')
        await sleep(500)
      }
      const status = /^HTTP\/1\.1 (\d+)/.exec(answer)?.[1]
      bump(this.c.slowBodyEndings, status !== undefined ? `answered ${status}` : closed ? 'closed by the server' : 'still open at the end')
      s.destroy()
    }
    await Promise.all(Array.from({ length: count }, (_, i) => one(i)))
  }

  /** Silent connections on a door, held open; the door may refuse some or close them. */
  async idleFlood(door: keyof Ports, count: number, holdMs: number): Promise<void> {
    const c = this.c.idle.get(door) ?? { opened: 0, refused: 0, closed: 0, closeMs: [] }
    this.c.idle.set(door, c)
    const sockets: Socket[] = []
    const held: number[] = []
    for (let i = 0; i < count; i++) {
      const s = await rawSocket(this.server.ports[door], abuserAddresses[6 + (i % 2)]!)
      if (s === undefined) {
        c.refused++
        continue
      }
      c.opened++
      const opened = now()
      s.on('error', () => undefined)
      s.on('close', () => held.push(now() - opened))
      sockets.push(s)
    }
    await sleep(holdMs)
    c.closed += held.length
    c.closeMs.push(...held)
    for (const s of sockets) s.destroy()
  }

  /** Tiny-event bombs: the door must answer 413 fast, not store a million events. */
  async bombs(): Promise<void> {
    const ones = Buffer.from('1\n'.repeat(1_000_000))
    const array = Buffer.from(`[${'1,'.repeat(999_999)}1]`)
    const gz = gzipSync(Buffer.from('1\n'.repeat(4_000_000)), { level: 9 })
    const send = (body: Buffer, type: string, gzip: boolean): Promise<void> =>
      new Promise((resolve) => {
        const t0 = now()
        const req = httpRequest(
          { host: '127.0.0.1', port: this.server.ports.http, method: 'POST', path: '/v1/exchanges/logs/publish', localAddress: abuserAddresses[2]!, headers: { 'content-type': type, 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) }, timeout: 60_000 },
          (res) => {
            res.resume()
            res.on('end', () => {
              bump(this.c.bombs, `${type}${gzip ? ' gzip' : ''} → ${res.statusCode}`)
              this.c.bombMsMax = Math.max(this.c.bombMsMax, now() - t0)
              resolve()
            })
          },
        )
        req.on('error', (err) => {
          bump(this.c.bombs, `${type}${gzip ? ' gzip' : ''} → ${err.message}`)
          resolve()
        })
        req.on('timeout', () => req.destroy(new Error('no answer in 60 s')))
        req.end(body)
      })
    await Promise.all([send(ones, 'application/x-ndjson', false), send(array, 'application/json', false), send(gz, 'application/x-ndjson', true)])
  }
}

// ---- reading back --------------------------------------------------------------------------------

async function readAll(url: string): Promise<{ ids: Map<string, number>; events: number }> {
  const ids = new Map<string, number>()
  let events = 0
  let from = 0
  for (let page = 0; page < 100_000; page++) {
    const res = await fetch(`${url}/v1/streams/app-logs/events?from=${from}&limit=10000`, { signal: AbortSignal.timeout(60_000) })
    if (res.status !== 200) throw new Error(`read app-logs from ${from}: ${res.status} ${await res.text()}`)
    const body = (await res.json()) as { events: { body: { id?: unknown } }[]; nextOffset: number }
    if (body.events.length === 0) break
    for (const e of body.events) {
      events++
      const id = typeof e.body === 'object' && e.body !== null && typeof e.body.id === 'string' ? e.body.id : undefined
      if (id !== undefined) ids.set(id, (ids.get(id) ?? 0) + 1)
    }
    from = body.nextOffset
  }
  return { ids, events }
}

// ---- full disk -----------------------------------------------------------------------------------

interface DiskResult {
  skipped?: string
  /** Where it stopped early, if it did. */
  error?: string
  /** Each phase, in order, with what it saw. */
  phases: string[]
  confirmed: number
  /** Refusals by status and code, over every phase, and the first message of each. */
  refusedWith: Map<string, number>
  examples: Map<string, string>
  /** Events of requests answered 503 found in the stream (an answer of 503 must keep nothing). */
  refusedButStored: number
  /** Refused requests sent again after space came back, and how many of those got 200. */
  retried: number
  retriedOk: number
  /** Confirmed events missing from the stream at the end (after the last restart). */
  lost: number
  storedTwice: number
  healthyWhileFull: boolean
  restartOnFullOk: boolean
  /** From space coming back to the first publish answered 200, each time. */
  recoveredMs: number[]
  /** From space coming back to the metadata store's reserve being in place again. */
  reserveBackMs?: number | undefined
}

interface DiskEvent {
  id: string
  service: string
  level: string
  pad: string
}

/**
 * Fills a 20 MB tmpfs every way a disk fills: publishes until admission refuses them, a file from
 * someone else taking the rest, a restart on the disk at 0 bytes free, the disk filling under
 * writes the server had already admitted (ENOSPC in the log), space coming back. Refused requests
 * are sent again once there is room, as their Retry-After tells a client to.
 */
async function fullDisk(base: string, logPath: string): Promise<DiskResult> {
  const r: DiskResult = { phases: [], confirmed: 0, refusedWith: new Map(), examples: new Map(), refusedButStored: 0, retried: 0, retriedOk: 0, lost: 0, storedTwice: 0, healthyWhileFull: false, restartOnFullOk: false, recoveredMs: [] }
  const mnt = join(base, 'tmpfs')
  mkdirSync(mnt, { recursive: true })
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mnt], { encoding: 'utf8' })
  if (m.status !== 0) {
    r.skipped = `mount -t tmpfs failed: ${(m.stderr || m.error?.message || '').trim()}`
    return r
  }
  const ports: Ports = { http: await freePort(), ndjson: await freePort(), amqp: await freePort(), syslog: await freePort() }
  const server = new Server(mnt, ports, '4mb', logPath)
  const junk = join(mnt, 'someone-elses-file')
  const confirmed = new Set<string>()
  const refused: DiskEvent[][] = []
  let seq = 0
  const batch = (): DiskEvent[] => Array.from({ length: 50 }, () => ({ id: `d-${++seq}`, service: 'disk', level: 'info', pad: 'x'.repeat(2000) }))
  const freeMb = (): string => {
    const s = statfsSync(mnt)
    return `${((s.bavail * s.bsize) / 1024 / 1024).toFixed(1)} MB free`
  }
  let lastRefusal = ''
  /** One publish of ~100 KB: 'ok', 'refused' (an answer that is not 200) or 'unknown' (no answer). */
  const publish = async (events: DiskEvent[]): Promise<'ok' | 'refused' | 'unknown'> => {
    try {
      const res = await fetch(`${server.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events), signal: AbortSignal.timeout(15_000) })
      const text = await res.text()
      if (res.status === 200) {
        for (const e of events) confirmed.add(e.id)
        return 'ok'
      }
      const what = `${res.status} ${(/"code":"([a-z_]+)"/.exec(text) ?? [])[1] ?? ''}`.trim()
      bump(r.refusedWith, what)
      lastRefusal = `${what}: ${(/"message":"((?:[^"\\]|\\.)*)"/.exec(text) ?? [])[1] ?? text.slice(0, 300)}`
      if (!r.examples.has(what)) r.examples.set(what, lastRefusal)
      if (res.status === 503) refused.push(events)
      return 'refused'
    } catch (err) {
      bump(r.refusedWith, (err as Error).message)
      return 'unknown'
    }
  }
  /** Publishes until `refusals` answers are not 200 (or `max` requests); returns how many got 200. */
  const publishUntilRefused = async (refusals: number, max: number): Promise<number> => {
    let ok = 0
    let no = 0
    for (let i = 0; i < max && no < refusals; i++) {
      if ((await publish(batch())) === 'ok') ok++
      else {
        no++
        await sleep(50)
      }
    }
    return ok
  }
  /** Another process's file takes every byte left (tmpfs has no reserved blocks). */
  const fillDisk = (): number => {
    const fd = openSync(junk, 'a')
    const chunk = Buffer.alloc(256 * 1024, 0x6a)
    let written = 0
    try {
      for (let i = 0; i < 10_000; i++) {
        try {
          written += writeSync(fd, chunk, 0, i < 100 ? chunk.length : 4096)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
          if (i >= 100) break
          i = 99 // the big chunks no longer fit: finish with small ones
        }
      }
    } finally {
      closeSync(fd)
    }
    return written
  }
  /** Publishes every 200 ms until one gets 200 (at most 60 s); returns the time it took. */
  const untilAccepted = async (from: number): Promise<number | undefined> => {
    for (let i = 0; i < 300 && now() - from < 60_000; i++) {
      if ((await publish(batch())) === 'ok') return now() - from
      await sleep(200)
    }
    return undefined
  }
  const storedIds = async (): Promise<Map<string, number>> => (await readAll(server.url)).ids
  const countRefusedStored = (ids: Map<string, number>): number => refused.flat().filter((e) => ids.has(e.id)).length
  try {
    await server.start()
    r.phases.push(`started on an empty 20 MB tmpfs (${freeMb()}, the metadata reserve included)`)

    // 1. Admission: the server refuses what would take the free space below diskFreeLimit.
    let ok = await publishUntilRefused(20, 2000)
    r.phases.push(`admission: ${ok} publishes of 100 KB accepted, then refused (${freeMb()})`)

    // 2. Someone else takes the rest: 0 bytes free. Reads and health go on; a SIGKILL and a
    // restart on the full disk must work (the metadata store's reserve is for this).
    r.phases.push(`another file took ${(fillDisk() / 1024 / 1024).toFixed(1)} MB (${freeMb()})`)
    await publishUntilRefused(5, 5)
    r.healthyWhileFull = (await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(10_000) })).status === 200
    await server.restart()
    r.restartOnFullOk = true
    r.phases.push(`SIGKILL and restart at 0 bytes free: ready in ${(server.restartsMs.at(-1)! / 1000).toFixed(1)} s (${freeMb()})`)

    // 3. Space comes back (the tmpfs grows to 40 MB, the other file goes): publishing resumes
    // by itself.
    rmSync(junk, { force: true })
    spawnSync('mount', ['-o', 'remount,size=40m', mnt])
    let back = await untilAccepted(now())
    if (back !== undefined) r.recoveredMs.push(back)
    // The start at 0 bytes free spent the metadata store's reserve: it must come back by itself
    // while the server runs, before the disk can fill again.
    const spaceBack = now()
    const reserve = join(mnt, 'data', 'meta.reserve')
    let reserveBytes = 0
    for (let i = 0; i < 300 && reserveBytes < 8 * 1024 * 1024; i++) {
      await sleep(100)
      reserveBytes = statSync(reserve, { throwIfNoEntry: false })?.size ?? 0
    }
    r.reserveBackMs = reserveBytes >= 8 * 1024 * 1024 ? now() - spaceBack : undefined
    r.phases.push(`space back (${freeMb()}): publishing accepted again after ${back === undefined ? 'NEVER (60 s)' : `${(back / 1000).toFixed(1)} s`}; the metadata reserve back after ${r.reserveBackMs === undefined ? 'NEVER (30 s)' : `${(r.reserveBackMs / 1000).toFixed(1)} s`}`)

    // 4. The disk fills under writes already admitted: the other file takes everything between
    // two probes of the free space, so the log meets ENOSPC, rolls back and raises the alarm.
    // A race with the server's probe (every second): up to 3 tries until the log met ENOSPC.
    const enospc = (): number => r.refusedWith.get('503 log_write_failed') ?? 0
    for (let attempt = 1; attempt <= 3; attempt++) {
      const inFlight = Array.from({ length: 4 }, () => publishUntilRefused(5, 40))
      await sleep(20)
      const took = fillDisk()
      ok = (await Promise.all(inFlight)).reduce((a, b) => a + b, 0)
      r.phases.push(`the disk filled under load (try ${attempt}; another file took ${(took / 1024 / 1024).toFixed(1)} MB): ${ok} publishes accepted around it; the log met ENOSPC ${enospc()} times so far`)
      if (enospc() > 0 || attempt === 3) break
      rmSync(junk, { force: true })
      await untilAccepted(now())
    }
    // What the refused requests left, if anything, would show after a restart (the bug was
    // events of a 503 served after a repair): SIGKILL on the full disk, then read everything.
    await server.restart()
    let ids = await storedIds()
    r.refusedButStored = countRefusedStored(ids)
    r.phases.push(`SIGKILL and restart at ${freeMb()}: ready in ${(server.restartsMs.at(-1)! / 1000).toFixed(1)} s; events of the ${refused.length} requests answered 503 found in the stream: ${r.refusedButStored}`)

    // 5. Space comes back again, and a publish goes in (moving the dedup checkpoints on); then a
    // SIGKILL, and every refused request is sent again, as a client told to retry would: each
    // must now be stored, once (a refused request must not have left its ids in the dedup
    // window either).
    rmSync(junk, { force: true })
    back = await untilAccepted(now())
    if (back !== undefined) r.recoveredMs.push(back)
    await server.restart()
    const retry = refused.splice(0)
    r.retried = retry.length
    const retryRefusals = new Map<string, number>()
    for (const events of retry) {
      if ((await publish(events)) === 'ok') r.retriedOk++
      else bump(retryRefusals, lastRefusal)
    }
    for (const [what, n] of retryRefusals) r.phases.push(`a request sent again was refused ×${n}: ${what}`)
    r.phases.push(`space back (${freeMb()}): accepted again after ${back === undefined ? 'NEVER (60 s)' : `${(back / 1000).toFixed(1)} s`}; after a SIGKILL and restart, ${r.retriedOk} of ${r.retried} refused requests sent again got 200`)

    // 6. A last SIGKILL and restart: everything confirmed is there, once.
    await server.restart()
    ids = await storedIds()
    r.lost = [...confirmed].filter((id) => !ids.has(id)).length
    r.storedTwice = [...ids.values()].filter((n) => n > 1).length
    r.phases.push(`SIGKILL and restart: ${fmt(confirmed.size)} confirmed, ${r.lost} missing, ${r.storedTwice} stored twice`)
  } catch (err) {
    r.error = (err as Error).message
    r.lost = -1
  } finally {
    r.confirmed = confirmed.size
    await server.kill('SIGTERM')
    server.close()
    const u = spawnSync('umount', [mnt])
    if (u.status !== 0) spawnSync('umount', ['-l', mnt])
  }
  return r
}

// ---- the run -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = now()
  const git = (...a: string[]): string => spawnSync('git', a, { encoding: 'utf8' }).stdout?.trim() ?? ''
  const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter((l) => l !== '').length
  console.log(`soak:abuse: ${abuseSeconds} s of abuse under normal load, then a drain, a read-back and the full-disk part`)
  console.log(`  ${new Date().toISOString()}; commit ${git('rev-parse', '--short', 'HEAD') || '?'}${dirty > 0 ? ` with ${dirty} uncommitted files in src/` : ''}; ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  const base = mkdtempSync(join(tmpdir(), 'sluice-soak-abuse-'))
  cli = snapshotBuild(base)
  const logPath = join(base, 'server.log')
  const ports: Ports = { http: await freePort(), ndjson: await freePort(), amqp: await freePort(), syslog: await freePort() }
  const server = new Server(base, ports, '64mb', logPath)
  await server.start()
  const normal = new Normal(server)
  const abuse = new Abuse(server)
  const t0 = now()
  runStartedAt = t0
  const end = t0 + abuseSeconds * 1000
  const at = (s: number): number => t0 + s * 1000
  const untilAt = async (t: number): Promise<void> => {
    const wait = t - now()
    if (wait > 0) await sleep(wait)
  }
  const log = (what: string): void => console.log(`  ${((now() - t0) / 1000).toFixed(0).padStart(4)} s  ${what}`)

  const normals = [normal.httpPublisher('json', end), normal.httpPublisher('ndjson', end), normal.tcpPublisher(end), normal.consumer(end + 120_000), normal.prober(end + 120_000)]

  // The schedule, as fractions of the run so --seconds scales it.
  const S = abuseSeconds
  // The group's counters live in the server process: added up before each SIGKILL.
  const groupTotals = { delivered: 0, redelivered: 0, ackTimeouts: 0 }
  const collectGroup = async (): Promise<void> => {
    try {
      const g = (await (await fetch(`${server.url}/v1/groups/worker`, { signal: AbortSignal.timeout(5000) })).json()) as Partial<typeof groupTotals>
      for (const k of ['delivered', 'redelivered', 'ackTimeouts'] as const) groupTotals[k] += g[k] ?? 0
    } catch {
      // not counted: said in the totals as a lower bound
    }
  }
  const restart = async (): Promise<void> => {
    await collectGroup()
    await server.restart()
  }
  const waves = (async () => {
    await untilAt(at(S * 0.05))
    log('abort storm: 1,000 long polls and publishes reset; tiny-event bombs')
    await Promise.all([abuse.abortStorm(1000, at(S * 0.25)), abuse.bombs()])
    await untilAt(at(S * 0.25))
    log('SIGKILL 1 under load')
    await restart()
    log(`restarted in ${server.restartsMs.at(-1)!.toFixed(0)} ms`)
    await untilAt(at(S * 0.3))
    log('idle floods (600 per door) and 600 slow bodies')
    await Promise.all([
      abuse.idleFlood('http', 600, S * 150),
      abuse.idleFlood('ndjson', 600, S * 150),
      abuse.idleFlood('amqp', 600, S * 150),
      abuse.idleFlood('syslog', 600, S * 150),
      abuse.slowBodies(600, S * 150),
    ])
    await untilAt(at(S * 0.5))
    log('SIGKILL 2 under load')
    await restart()
    log(`restarted in ${server.restartsMs.at(-1)!.toFixed(0)} ms`)
    await untilAt(at(S * 0.55))
    log('everything at once: abort storm, idle floods, slow bodies, bombs')
    await Promise.all([
      abuse.abortStorm(1500, at(S * 0.8)),
      abuse.idleFlood('http', 400, S * 120),
      abuse.idleFlood('amqp', 400, S * 120),
      abuse.slowBodies(300, S * 120),
      abuse.bombs(),
    ])
    await untilAt(at(S * 0.8))
    log('SIGKILL 3 under load')
    await restart()
    log(`restarted in ${server.restartsMs.at(-1)!.toFixed(0)} ms`)
    await untilAt(at(S * 0.9))
    log('SIGKILL 4 under load')
    await restart()
    log(`restarted in ${server.restartsMs.at(-1)!.toFixed(0)} ms`)
  })()
  await waves
  await untilAt(end)
  normal.stopPublishing = true
  log('publishers stopped; draining the consumer (at most 60 s, ending after 5 s with nothing)')
  await Promise.all(normals.slice(0, 3))
  const drainEnd = now() + 60_000
  // Whatever the abusers' dead polls held comes back at once or after ackTimeout (15 s).
  for (let i = 0; i < 60 && now() < drainEnd; i++) {
    if ([...normal.confirmed].every((id) => normal.received.has(id))) break
    await sleep(1000)
  }
  normal.stopAll = true
  await Promise.all(normals.slice(3))
  log('reading the stream back')
  const stored = await readAll(server.url)
  // Deliveries the abusers' reset polls took come back at once or, when already written, at
  // ackTimeout.
  await collectGroup()
  await server.kill('SIGTERM')
  server.close()

  const lost = [...normal.confirmed].filter((id) => !stored.ids.has(id))
  const notDelivered = [...normal.confirmed].filter((id) => !normal.received.has(id))
  const duplicates = [...stored.ids.values()].filter((n) => n > 1).length
  const tcpStored = [...stored.ids.keys()].filter((id) => id.startsWith('t-')).length

  let disk: DiskResult | undefined
  if (withDisk) {
    log('full disk on a 20 MB tmpfs')
    disk = await fullDisk(base, logPath)
  }

  const show = (name: string, l: Latencies): string =>
    `${name}: ${fmt(l.count)} requests, ${fmt(l.ok)} answered 200; while up p50 ${percentile(l.samples, 50).toFixed(0)} ms, p99 ${percentile(l.samples, 99).toFixed(0)} ms, max ${percentile(l.samples, 100).toFixed(0)} ms; refused while up: ${[...l.refused].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}; failed during restarts: ${l.duringRestart}; violations ${l.violations.length}`
  console.log('\nTotals')
  console.log(`  wall ${((now() - started) / 1000).toFixed(0)} s; load at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; SIGKILLs ${server.kills}; restarts ready in ${server.restartsMs.slice(1).map((m) => `${(m / 1000).toFixed(1)} s`).join(', ')}; server RSS max ${(server.rssMax / 1024 / 1024).toFixed(0)} MB`)
  console.log(`  ${show('publish (HTTP json + ndjson)', normal.publish)}`)
  console.log(`  ${show('fetch (long poll)', normal.fetch)}`)
  console.log(`  ${show('healthz/readyz', normal.probe)}`)
  console.log(`  confirmed ${fmt(normal.confirmed.size)} events; stored ${fmt(stored.events)} events; confirmed but not stored: ${lost.length}; stored twice: ${duplicates}; confirmed but never delivered to the consumer: ${notDelivered.length}`)
  console.log(`  group worker (summed over the server's lives): delivered ${fmt(groupTotals.delivered)}, redelivered ${fmt(groupTotals.redelivered)}, ack timeouts ${fmt(groupTotals.ackTimeouts)}`)
  console.log(`  TCP NDJSON (no confirmations): sent ${fmt(normal.tcpSent)}, stored ${fmt(tcpStored)}`)
  console.log(`  abuse: ${fmt(abuse.c.abortedFetches)} long polls and ${fmt(abuse.c.abortedPublishes)} publishes reset; ${abuse.c.slowBodies} slow bodies (${[...abuse.c.slowBodyEndings].map(([k, n]) => `${k} ×${n}`).join(', ')}); idle connections (opened, refused at connect, closed by the server while held, median time to that close): ${[...abuse.c.idle].map(([door, c]) => `${door} ${fmt(c.opened)}/${c.refused}/${fmt(c.closed)}/${(percentile(c.closeMs, 50) / 1000).toFixed(1)} s`).join(', ')}; bombs: ${[...abuse.c.bombs].map(([k, n]) => `${k} ×${n}`).join(', ')} (slowest answer ${(abuse.c.bombMsMax / 1000).toFixed(1)} s)`)
  if (disk === undefined) console.log('  full disk: skipped (--no-disk)')
  else if (disk.skipped !== undefined) console.log(`  full disk: SKIPPED (${disk.skipped})`)
  else {
    console.log(`  full disk (20 MB tmpfs, diskFreeLimit 4mb): confirmed ${fmt(disk.confirmed)}; refused ${[...disk.refusedWith].map(([k, n]) => `${k} ×${n}`).join(', ')}; /healthz at 0 bytes free ${disk.healthyWhileFull ? 200 : 'not 200'}; restart at 0 bytes free ${disk.restartOnFullOk ? 'ok' : 'FAILED'}; refused but stored ${disk.refusedButStored}; refused requests sent again ${disk.retriedOk}/${disk.retried} got 200; confirmed but not stored ${disk.lost}; stored twice ${disk.storedTwice}${disk.error !== undefined ? `; STOPPED: ${disk.error}` : ''}`)
    for (const p of disk.phases) console.log(`    - ${p}`)
    for (const example of disk.examples.values()) console.log(`    ${example}`)
  }

  const failures: string[] = []
  for (const [name, l] of [['publish', normal.publish], ['fetch', normal.fetch], ['probe', normal.probe]] as const) {
    if (l.violations.length > 0) failures.push(`${name}: ${l.violations.length} answers late or failed while up, e.g. ${l.violations.slice(0, 3).join('; ')}`)
  }
  if (lost.length > 0) failures.push(`${lost.length} confirmed events lost, e.g. ${lost.slice(0, 5).join(', ')}`)
  if (notDelivered.length > 0) failures.push(`${notDelivered.length} confirmed events never reached the consumer, e.g. ${notDelivered.slice(0, 5).join(', ')}`)
  if (server.rssMax > rssLimitBytes) failures.push(`server RSS reached ${server.rssMax} bytes`)
  if (disk !== undefined && disk.skipped === undefined) {
    if (disk.error !== undefined) failures.push(`full disk: stopped early: ${disk.error}`)
    if (disk.lost !== 0 || disk.storedTwice > 0) failures.push(`full disk: ${disk.lost} confirmed events lost, ${disk.storedTwice} stored twice`)
    if (disk.refusedButStored > 0) failures.push(`full disk: ${disk.refusedButStored} events of requests answered 503 were stored`)
    if (!disk.restartOnFullOk) failures.push('full disk: no restart at 0 bytes free')
    if (disk.reserveBackMs === undefined) failures.push('full disk: the metadata reserve did not come back with the space')
    if (disk.recoveredMs.length < 2) failures.push('full disk: publishing did not resume by itself when space came back')
    if (disk.retriedOk < disk.retried) failures.push(`full disk: ${disk.retried - disk.retriedOk} refused requests sent again after space came back were not accepted`)
  }
  console.log(failures.length === 0 ? '\nPASS' : `\nFAIL\n  ${failures.join('\n  ')}`)
  console.log(`server log: ${logPath}`)
  if (failures.length === 0) rmSync(join(base, 'data'), { recursive: true, force: true })
  rmSync(join(base, 'code'), { recursive: true, force: true })
  process.exitCode = failures.length === 0 ? 0 : 1
  // A stray check of the dataDir's free space, so a run on a nearly full disk says so.
  const free = statfsSync(base)
  if (free.bavail * free.bsize < 1024 ** 3) console.log(`note: only ${(free.bavail * free.bsize) / 1024 / 1024} MB free under ${base}`)
}

await main()
