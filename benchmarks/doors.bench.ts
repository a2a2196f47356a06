// The doors of other ecosystems against HTTP NDJSON (issue 14): `npm run bench:doors`, or after a
// build `node dist/benchmarks/doors.bench.js [--events=200000] [--seconds=20] [--runs=3]
// [--batch=500] [--inflight=4] [--record] [--cpu-prof-dir=DIR]`.
//
// One Sluice (a child process, fsync: batch 5 ms, every listener on 127.0.0.1) serves every door
// at once; this process is the load, pre-encoded before each window so encoding is not timed:
//   - HTTP NDJSON (the baseline): POST /v1/exchanges/logs/publish, `--batch` lines a request;
//   - OTLP/HTTP protobuf: POST /v1/logs, an ExportLogsServiceRequest of `--batch` records;
//   - Loki JSON: POST /loki/api/v1/push, one stream of `--batch` entries;
//   - Elasticsearch bulk: POST /_bulk, `--batch` index/document pairs;
//   - GELF TCP: NUL-terminated frames over `--inflight` connections (no acks: done when stored);
//   - Fluent Forward: Forward-mode messages of `--batch` entries with `chunk`, done when acked;
//   - OTLP/gRPC: LogsService/Export with `--batch` records.
// Each request or message has `--inflight` in flight. Every event is about 250 bytes on the wire
// (its padding sized per door), and a door's window ends when every event is confirmed durable (or,
// for GELF, counted in the stream); the stream must then hold exactly what was sent. A door stops
// early at `--seconds`. Reported: events/s, server CPU µs per event (from /proc, the server's own
// process), and each door's rate as a share of NDJSON's in the same round; the medians of `--runs`
// rounds go to doors.md and doors.jsonl in resultsDir (a temp dir unless --record).

import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { cpus, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js'
import { decodeMultiStream, encode } from '@msgpack/msgpack'
import { otlpTypes } from '../src/ingest/protos.js'
import { freePort, procCpuS } from './lib/proc.js'
import { recordRequested, resultsDir } from './lib/results.js'

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const eventBytes = 250

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? dflt : Number(a.split('=')[1])
}

const opts = { events: arg('events', 200_000), seconds: arg('seconds', 20), runs: arg('runs', 3), batch: arg('batch', 500), inflight: arg('inflight', 4) }
/** --cpu-prof-dir=DIR: the server runs under `node --cpu-prof` and leaves its profile there (a diagnostic: figures under the profiler are lower). */
const cpuProfDir = process.argv.find((x) => x.startsWith('--cpu-prof-dir='))?.slice('--cpu-prof-dir='.length)

interface Ports {
  readonly http: number
  readonly gelf: number
  readonly forward: number
  readonly grpc: number
}

// ---- the load: one door's requests, pre-encoded --------------------------------------------------

/** The padding that makes `unit(pad)` as close to `eventBytes` as it gets. */
function padFor(unit: (pad: string) => number): string {
  const bare = unit('')
  return 'x'.repeat(Math.max(0, eventBytes - bare))
}

const message = (i: number): string => `GET /api/v1/items/${i} 200 12ms`

interface Door {
  readonly name: string
  /** Bytes one event takes on the wire, as padded. */
  readonly bytesPerEvent: number
  /** Sends `batches` of `batch` events; resolves with how many are confirmed (or stored, for GELF). */
  send(batches: readonly Buffer[], stored: () => Promise<number>, storedBefore: number, deadline: number): Promise<number>
}

/** POSTs each body, `inflight` at a time over kept-alive connections; counts the 2xx answers. */
async function postAll(port: number, path: string, type: string, bodies: readonly Buffer[], batch: number, deadline: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.inflight })
  let next = 0
  let confirmed = 0
  const one = (body: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': type, 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const status = res.statusCode ?? 0
          if (status >= 200 && status < 300) {
            // A bulk answer is 200 with per-item results: a failed item would not be stored.
            if (path === '/_bulk' && Buffer.concat(chunks).subarray(0, 40).toString().includes('"errors":true')) reject(new Error(`bulk items failed: ${Buffer.concat(chunks).toString().slice(0, 300)}`))
            else resolve(status)
          } else reject(new Error(`${path} answered ${status}: ${Buffer.concat(chunks).toString().slice(0, 300)}`))
        })
      })
      req.on('error', reject)
      req.end(body)
    })
  const worker = async (): Promise<void> => {
    while (next < bodies.length && performance.now() < deadline) {
      await one(bodies[next++]!)
      confirmed += batch
    }
  }
  await Promise.all(Array.from({ length: opts.inflight }, worker))
  agent.destroy()
  return confirmed
}

function ndjsonDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const line = (i: number, pad: string): string => JSON.stringify({ ts: 1795622290220 + i, service: 'api', level: 'info', host: `web-${i % 16}`, i, msg: message(i), pad })
  const pad = padFor((p) => Buffer.byteLength(line(0, p)) + 1)
  return {
    name: 'HTTP NDJSON',
    bytesPerEvent: Buffer.byteLength(line(0, pad)) + 1,
    encode: (n) => batches(n, (from, to) => Buffer.from(range(from, to, (i) => `${line(i, pad)}\n`).join(''))),
    send: (bodies, _stored, _before, deadline) => postAll(port, '/v1/exchanges/logs/publish', 'application/x-ndjson', bodies, opts.batch, deadline),
  }
}

function otlpRecords(from: number, to: number, pad: string): unknown {
  return {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] },
        scopeLogs: [{ scope: { name: 'bench' }, logRecords: range(from, to, (i) => ({ timeUnixNano: 1795622290220000000 + i, severityNumber: 9, severityText: 'INFO', body: { stringValue: `${message(i)} ${pad}` }, attributes: [{ key: 'i', value: { intValue: i } }, { key: 'host', value: { stringValue: `web-${i % 16}` } }] })) }],
      },
    ],
  }
}

function otlpBytes(from: number, to: number, pad: string): Buffer {
  const t = otlpTypes().exportLogsRequest
  return Buffer.from(t.encode(t.fromObject(otlpRecords(from, to, pad) as Record<string, unknown>)).finish())
}

function otlpPad(): string {
  return padFor((p) => otlpBytes(0, 1, p).length - otlpBytes(0, 0, p).length)
}

function otlpHttpDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const pad = otlpPad()
  return {
    name: 'OTLP/HTTP protobuf',
    bytesPerEvent: otlpBytes(0, 1, pad).length - otlpBytes(0, 0, pad).length,
    encode: (n) => batches(n, (from, to) => otlpBytes(from, to, pad)),
    send: (bodies, _stored, _before, deadline) => postAll(port, '/v1/logs', 'application/x-protobuf', bodies, opts.batch, deadline),
  }
}

function lokiDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const entry = (i: number, pad: string): string => JSON.stringify([String(1795622290220000000n + BigInt(i)), `level=info host=web-${i % 16} i=${i} msg="${message(i)}" ${pad}`])
  const pad = padFor((p) => Buffer.byteLength(entry(0, p)) + 1)
  return {
    name: 'Loki JSON',
    bytesPerEvent: Buffer.byteLength(entry(0, pad)) + 1,
    encode: (n) => batches(n, (from, to) => Buffer.from(`{"streams":[{"stream":{"service_name":"api","level":"info"},"values":[${range(from, to, (i) => entry(i, pad)).join(',')}]}]}`)),
    send: (bodies, _stored, _before, deadline) => postAll(port, '/loki/api/v1/push', 'application/json', bodies, opts.batch, deadline),
  }
}

function bulkDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const action = '{"index":{"_index":"bench"}}\n'
  const doc = (i: number, pad: string): string => `${JSON.stringify({ '@timestamp': '2026-11-25T15:56:32.708Z', service: 'api', level: 'info', host: `web-${i % 16}`, i, message: message(i), pad })}\n`
  const pad = padFor((p) => action.length + Buffer.byteLength(doc(0, p)))
  return {
    name: 'Elasticsearch bulk',
    bytesPerEvent: action.length + Buffer.byteLength(doc(0, pad)),
    encode: (n) => batches(n, (from, to) => Buffer.from(range(from, to, (i) => action + doc(i, pad)).join(''))),
    send: (bodies, _stored, _before, deadline) => postAll(port, '/_bulk', 'application/x-ndjson', bodies, opts.batch, deadline),
  }
}

function gelfDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const frame = (i: number, pad: string): string => `${JSON.stringify({ version: '1.1', host: `web-${i % 16}`, short_message: `${message(i)} ${pad}`, level: 6, _service: 'api', _i: i })}\0`
  const pad = padFor((p) => Buffer.byteLength(frame(0, p)))
  return {
    name: 'GELF TCP',
    bytesPerEvent: Buffer.byteLength(frame(0, pad)),
    encode: (n) => batches(n, (from, to) => Buffer.from(range(from, to, (i) => frame(i, pad)).join(''))),
    async send(bodies, stored, storedBefore, deadline) {
      // No acks in GELF: each connection writes its share, then the window waits for the stream.
      let next = 0
      let sent = 0
      const conn = async (): Promise<void> => {
        const socket = connect({ host: '127.0.0.1', port })
        await new Promise<void>((r, j) => socket.once('connect', r).once('error', j))
        while (next < bodies.length && performance.now() < deadline) {
          const body = bodies[next++]!
          sent += opts.batch
          if (!socket.write(body)) await new Promise<void>((r) => socket.once('drain', () => r()))
        }
        await new Promise<void>((r) => socket.end(() => r()))
      }
      await Promise.all(Array.from({ length: opts.inflight }, conn))
      const want = storedBefore + sent
      while ((await stored()) < want) {
        if (performance.now() > deadline + 30_000) throw new Error(`GELF: ${want} events expected in the stream, fewer arrived`)
        await sleep(5)
      }
      return sent
    },
  }
}

function forwardDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const entry = (i: number, pad: string): unknown[] => [1795622290 + i, { service: 'api', level: 'info', host: `web-${i % 16}`, i, msg: message(i), pad }]
  const pad = padFor((p) => encode(entry(0, p)).length)
  return {
    name: 'Fluent Forward',
    bytesPerEvent: encode(entry(0, pad)).length,
    encode: (n) => batches(n, (from, to) => Buffer.from(encode(['app.web', range(from, to, (i) => entry(i, pad)), { chunk: `c${from}` }]))),
    async send(bodies, _stored, _before, deadline) {
      // One connection; `inflight` messages awaiting their acks at once, as fluent-logger pipelines.
      const socket: Socket = connect({ host: '127.0.0.1', port })
      await new Promise<void>((r, j) => socket.once('connect', r).once('error', j))
      const waiting = new Map<string, () => void>()
      const reader = (async () => {
        for await (const m of decodeMultiStream(socket)) {
          const ack = (m as { ack?: string }).ack
          if (ack !== undefined) waiting.get(ack)?.()
        }
      })()
      let next = 0
      let confirmed = 0
      const worker = async (): Promise<void> => {
        while (next < bodies.length && performance.now() < deadline) {
          const i = next++
          const acked = new Promise<void>((r) => waiting.set(`c${i * opts.batch}`, r))
          socket.write(bodies[i]!)
          await acked
          confirmed += opts.batch
        }
      }
      await Promise.all(Array.from({ length: opts.inflight }, worker))
      socket.end()
      await reader.catch(() => undefined)
      return confirmed
    },
  }
}

function grpcDoor(port: number): Door & { encode(n: number): Buffer[] } {
  const pad = otlpPad()
  return {
    name: 'OTLP/gRPC',
    bytesPerEvent: otlpBytes(0, 1, pad).length - otlpBytes(0, 0, pad).length,
    encode: (n) => batches(n, (from, to) => otlpBytes(from, to, pad)),
    async send(bodies, _stored, _before, deadline) {
      const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure())
      let next = 0
      let confirmed = 0
      const call = (body: Buffer): Promise<void> =>
        new Promise((resolve, reject) =>
          client.makeUnaryRequest('/opentelemetry.proto.collector.logs.v1.LogsService/Export', (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), (err: ServiceError | null) => (err === null ? resolve() : reject(err))),
        )
      const worker = async (): Promise<void> => {
        while (next < bodies.length && performance.now() < deadline) {
          await call(bodies[next++]!)
          confirmed += opts.batch
        }
      }
      await Promise.all(Array.from({ length: opts.inflight }, worker))
      client.close()
      return confirmed
    },
  }
}

function range<T>(from: number, to: number, f: (i: number) => T): T[] {
  return Array.from({ length: to - from }, (_, k) => f(from + k))
}

function batches(n: number, make: (from: number, to: number) => Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let from = 0; from < n; from += opts.batch) out.push(make(from, Math.min(n, from + opts.batch)))
  return out
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- the server -----------------------------------------------------------------------------------

async function startSluice(dir: string): Promise<{ proc: ChildProcess; ports: Ports }> {
  const ports: Ports = { http: await freePort(), gelf: await freePort(), forward: await freePort(), grpc: await freePort() }
  const conf = join(dir, 'sluice.yaml')
  writeFileSync(
    conf,
    `server:
  dataDir: ${JSON.stringify(join(dir, 'data'))}
  http: { host: 127.0.0.1, port: ${ports.http} }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { enabled: false }
  gelf: { host: 127.0.0.1, port: ${ports.gelf}, udp: false, exchange: logs }
  forward: { host: 127.0.0.1, port: ${ports.forward}, exchange: logs }
  otlp: { exchange: logs, grpc: { enabled: true, host: 127.0.0.1, port: ${ports.grpc} } }
  loki: { exchange: logs }
  elasticsearch: { exchange: logs }
  durability: { fsync: batch, interval: 5ms }
  log: { level: warn }
exchanges: { logs: { type: topic, routingKey: "{service}.{level}" } }
streams: { bench: {} }
bindings: [ { exchange: logs, stream: bench, key: "#" } ]
`,
  )
  const profArgs = cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`]
  const proc = spawn(process.execPath, [...profArgs, cli, 'serve', '--config', conf], { stdio: ['ignore', 'ignore', 'inherit'] })
  const deadline = Date.now() + 30_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sluice exited with ${proc.exitCode}`)
    try {
      if ((await fetch(`http://127.0.0.1:${ports.http}/readyz`)).status === 200) return { proc, ports }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('sluice did not become ready in 30 s')
    await sleep(100)
  }
}

async function storedEvents(port: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/streams/bench`)
  return ((await r.json()) as { events: number }).events
}

interface Measured {
  readonly door: string
  readonly round: number
  readonly events: number
  readonly seconds: number
  readonly eventsPerSec: number
  readonly serverCpuUsPerEvent: number
  readonly bytesPerEvent: number
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-doors-'))
  const { proc, ports } = await startSluice(dir)
  const pid = proc.pid!
  const doors = [ndjsonDoor(ports.http), otlpHttpDoor(ports.http), lokiDoor(ports.http), bulkDoor(ports.http), gelfDoor(ports.gelf), forwardDoor(ports.forward), grpcDoor(ports.grpc)]
  const measured: Measured[] = []
  const out = resultsDir(recordRequested())
  console.log(`bench:doors — ${opts.events} events a door a round (at most ${opts.seconds} s), ${opts.runs} round(s), ${opts.batch} events a request, ${opts.inflight} in flight, ~${eventBytes}-byte events; ${cpus().length} CPUs, Linux ${release()}`)
  try {
    for (let round = 1; round <= opts.runs; round++) {
      for (const door of doors) {
        const bodies = door.encode(opts.events)
        const before = await storedEvents(ports.http)
        const cpu0 = procCpuS(pid)
        const t0 = performance.now()
        const confirmed = await door.send(bodies, () => storedEvents(ports.http), before, t0 + opts.seconds * 1000)
        const seconds = (performance.now() - t0) / 1000
        const cpu1 = procCpuS(pid)
        const after = await storedEvents(ports.http)
        // Confirmed means durable: the stream must hold exactly those events, no more, no fewer.
        if (after - before !== confirmed) throw new Error(`${door.name}: ${confirmed} events confirmed but the stream grew by ${after - before}`)
        const m: Measured = { door: door.name, round, events: confirmed, seconds, eventsPerSec: confirmed / seconds, serverCpuUsPerEvent: ((cpu1 - cpu0) * 1e6) / confirmed, bytesPerEvent: door.bytesPerEvent }
        measured.push(m)
        console.log(`round ${round}  ${door.name.padEnd(20)} ${fmt(m.eventsPerSec).padStart(9)} events/s  ${m.serverCpuUsPerEvent.toFixed(1).padStart(6)} µs CPU/event  (${confirmed} events in ${seconds.toFixed(2)} s, ${m.bytesPerEvent} B/event)`)
      }
    }
  } finally {
    proc.kill('SIGTERM')
    await new Promise((r) => proc.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }

  // Each door's share of NDJSON's rate is taken round by round (the same machine state), then the median.
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  }
  const baseline = (round: number): number => measured.find((m) => m.round === round && m.door === doors[0]!.name)!.eventsPerSec
  const rows = ['| Door | Events/s (median) | Server CPU µs/event | Of HTTP NDJSON | Target ≥ 50% | Bytes/event |', '|---|---|---|---|---|---|']
  for (const door of doors) {
    const mine = measured.filter((m) => m.door === door.name)
    const share = median(mine.map((m) => m.eventsPerSec / baseline(m.round)))
    rows.push(`| ${door.name} | ${fmt(median(mine.map((m) => m.eventsPerSec)))} | ${median(mine.map((m) => m.serverCpuUsPerEvent)).toFixed(1)} | ${(share * 100).toFixed(0)}% | ${door === doors[0] ? '—' : share >= 0.5 ? 'met' : 'missed'} | ${door.bytesPerEvent} |`)
  }
  const table = `${rows.join('\n')}\n`
  console.log(`\n${table}`)
  const at = new Date().toISOString()
  writeFileSync(join(out, 'doors.md'), `bench:doors ${at}: ${JSON.stringify(opts)}, ${cpus().length} CPUs\n\n${table}`)
  for (const m of measured) appendFileSync(join(out, 'doors.jsonl'), `${JSON.stringify({ at, ...opts, ...m })}\n`)
  console.log(`results in ${out}`)
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

await main()
