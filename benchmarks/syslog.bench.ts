// Syslog door benchmark (issue 6): `npm run bench:syslog`, or after a build
// `node dist/benchmarks/syslog.bench.js [--runs=3] [--lines=1000000]`.
//
// A prepared buffer of RFC 5424 lines (about 250 bytes each, LF-framed as rsyslog's default
// forward sends them) goes over one TCP connection from a sender process to:
//   - Sluice (a child process, fsync: batch 5 ms, syslog on 127.0.0.1): messages parsed and
//     durably stored, timed from the first byte sent until GET /v1/streams/syslog counts them all;
//   - the ceiling: a bare TCP server (a child process) that frames and parses the same lines with
//     Sluice's own SyslogFramer and parseSyslog, and also one that only splits lines and
//     JSON.parses a JSON line of the same size (the figure the issue quotes), storing nothing.
// Medians of --runs; raw results in benchmarks/results/syslog.jsonl. Two cores are shared by
// sender and server.

import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { cpus, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SyslogFramer } from '../src/ingest/syslog/framing.js'
import { parseSyslog } from '../src/ingest/syslog/parse.js'
import { recordRequested, resultsDir } from './lib/results.js'

const self = fileURLToPath(import.meta.url)
const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const httpPort = 17450
const syslogPort = 17451
const barePort = 17452

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? dflt : Number(a.split('=')[1])
}

function syslogLines(n: number): Buffer {
  const parts: string[] = []
  const pad = 'x'.repeat(120)
  for (let i = 0; i < n; i++) {
    parts.push(`<134>1 2026-11-25T15:56:32.708988+00:00 web-${i % 16} api 4242 req [meta reqId="r${i}"] GET /api/v1/items/${i} 200 12ms ${pad}\n`)
  }
  return Buffer.from(parts.join(''))
}

function jsonLines(n: number): Buffer {
  const parts: string[] = []
  const pad = 'x'.repeat(150)
  for (let i = 0; i < n; i++) parts.push(`${JSON.stringify({ ts: 1795622290220, service: 'api', level: 'info', i, msg: `GET /api/v1/items/${i} 200`, pad })}\n`)
  return Buffer.from(parts.join(''))
}

// ---- roles (child processes) ---------------------------------------------------------------------

async function senderRole(): Promise<void> {
  const [port, kind, n] = [Number(process.argv[3]), process.argv[4], Number(process.argv[5])]
  const data = kind === 'json' ? jsonLines(n) : syslogLines(n)
  process.send!({ ready: true, bytes: data.length })
  await new Promise<void>((r) => process.once('message', () => r()))
  const started = performance.now()
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise<void>((r) => socket.once('connect', () => r()))
  for (let off = 0; off < data.length; off += 1 << 20) {
    if (!socket.write(data.subarray(off, Math.min(data.length, off + (1 << 20))))) await new Promise<void>((r) => socket.once('drain', () => r()))
  }
  await new Promise<void>((r) => socket.end(() => r()))
  process.send!({ sentMs: performance.now() - started, t0: Date.now() - (performance.now() - started) })
}

function bareRole(): void {
  const kind = process.argv[3]
  const server = createServer((socket) => {
    let count = 0
    const started = Date.now()
    if (kind === 'syslog') {
      const framer = new SyslogFramer({
        maxMessageBytes: 65536,
        onFrame: (f) => {
          const ev = parseSyslog(f, { receivedAt: Date.now() })
          if (!('error' in ev)) count++
        },
        onError: () => undefined,
      })
      socket.on('data', (c: Buffer) => framer.push(c))
      socket.on('end', () => {
        framer.end()
        process.send!({ count, ms: Date.now() - started })
      })
    } else {
      let carry = ''
      socket.setEncoding('utf8')
      socket.on('data', (c: string) => {
        const text = carry + c
        let start = 0
        for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
          JSON.parse(text.slice(start, nl))
          count++
          start = nl + 1
        }
        carry = text.slice(start)
      })
      socket.on('end', () => process.send!({ count, ms: Date.now() - started }))
    }
  })
  server.listen(barePort, '127.0.0.1', () => process.send!({ ready: true }))
}

// ---- orchestration -------------------------------------------------------------------------------

function child(args: string[]): { proc: ChildProcess; next: () => Promise<Record<string, number>> } {
  const proc = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const queue: Array<Record<string, number>> = []
  const waiters: Array<(m: Record<string, number>) => void> = []
  proc.on('message', (m) => {
    const w = waiters.shift()
    if (w !== undefined) w(m as Record<string, number>)
    else queue.push(m as Record<string, number>)
  })
  return { proc, next: () => new Promise((r) => (queue.length > 0 ? r(queue.shift()!) : waiters.push(r))) }
}

async function count(): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${httpPort}/v1/streams/syslog`)
  return ((await r.json()) as { events: number }).events
}

async function runSluice(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-syslog-'))
  const conf = join(dir, 'sluice.yaml')
  writeFileSync(
    conf,
    `server:
  dataDir: ${JSON.stringify(join(dir, 'data'))}
  http: { port: ${httpPort} }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { port: ${syslogPort}, udp: false, exchange: logs }
  durability: { fsync: batch, interval: 5ms }
exchanges: { logs: { type: topic } }
streams: { syslog: {} }
bindings: [ { exchange: logs, stream: syslog, key: "syslog.#" } ]
`,
  )
  const server = spawn(process.execPath, [cli, 'serve', '--config', conf], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    await new Promise<void>((resolve) => {
      server.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('"msg":"ready"')) resolve()
      })
    })
    const sender = child(['sender', String(syslogPort), 'syslog', String(n)])
    await sender.next()
    sender.proc.send('go')
    const t0 = Date.now()
    const deadline = t0 + 120_000
    let c = 0
    while (c < n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
      c = await count()
    }
    const ms = Date.now() - t0
    await sender.next()
    if (c < n) throw new Error(`only ${c} of ${n} stored`)
    return (n * 1000) / ms
  } finally {
    server.kill('SIGTERM')
    await new Promise((r) => server.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

async function runBare(kind: 'syslog' | 'json', n: number): Promise<number> {
  const bare = child(['bare', kind])
  try {
    await bare.next()
    const sender = child(['sender', String(barePort), kind, String(n)])
    await sender.next()
    sender.proc.send('go')
    const r = await bare.next()
    await sender.next()
    if (r.count !== n) throw new Error(`bare ${kind}: ${r.count} of ${n}`)
    return (n * 1000) / r.ms!
  } finally {
    bare.proc.kill()
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US')

async function main(): Promise<void> {
  const runs = arg('runs', 3)
  const n = arg('lines', 1_000_000)
  const cells = { sluice: [] as number[], bareSyslog: [] as number[], bareJson: [] as number[] }
  for (let r = 0; r < runs; r++) {
    cells.sluice.push(await runSluice(n))
    cells.bareSyslog.push(await runBare('syslog', n))
    cells.bareJson.push(await runBare('json', n))
    console.log(`run ${r + 1}: sluice ${fmt(cells.sluice[r]!)}/s, bare frame+parse ${fmt(cells.bareSyslog[r]!)}/s, bare split+JSON.parse ${fmt(cells.bareJson[r]!)}/s`)
  }
  const row = (name: string, xs: number[]) => `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))} |`
  console.log(`\n${cpus()[0]?.model ?? '?'} x${cpus().length}, Node ${process.version}, Linux ${release()}, ${n.toLocaleString('en-US')} lines, ${runs} runs`)
  console.log('| measurement | messages/s (median) | min–max |\n|---|---:|---:|')
  console.log(row('Sluice: RFC 5424 over TCP, parsed and durably stored (fsync batch)', cells.sluice))
  console.log(row('ceiling: bare server, SyslogFramer + parseSyslog, nothing stored', cells.bareSyslog))
  console.log(row('ceiling: bare server, split lines + JSON.parse, nothing stored', cells.bareJson))
  const target = 250_000
  console.log(`\ntarget ≥ ${fmt(target)}/s: ${median(cells.sluice) >= target ? 'PASS' : 'MISS'} (${Math.round((median(cells.sluice) / target) * 100)}% of target)`)
  const out = join(resultsDir(recordRequested()), 'syslog.jsonl')
  appendFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), lines: n, runs, ...cells })}\n`)
  console.log(`raw results appended to ${out}`)
}

const role = process.argv[2]
if (role === 'sender') void senderRole()
else if (role === 'bare') bareRole()
else
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
