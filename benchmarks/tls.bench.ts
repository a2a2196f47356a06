// TLS against plain (issue 20): `npm run build && node dist/benchmarks/tls.bench.js [--runs=N]
// [--duration=S] [--count=N] [--only=http,amqp] [--no-record]`.
//
// One Sluice process (`node dist/src/cli.js serve`), `fsync: batch` (5 ms), with a plain and a TLS
// entry on each of its HTTP and AMQP listeners (same process, same streams, same settings; the
// certificate is EC P-256 from a CA made here with the openssl CLI). Each workload runs in a
// client process of its own (this file with `client ...`), plain and TLS alternating, --runs
// rounds (default 3), medians:
//   http  4 keep-alive connections, each posting NDJSON batches of 1,000 events (250 B, from
//         benchmarks/http-payload.ts as the HTTP benchmark sends them) one
//         request at a time for --duration seconds (default 10); confirmed events/s (a 200 whose
//         body accepts all 1,000). TLS: node:https with the CA.
//   amqp  amqplib on a confirm channel, persistent 250-byte messages to a queue through the
//         default exchange, at most 1,000 unconfirmed, --count messages (default 100,000);
//         confirmed messages/s from the first publish to the last confirm. TLS: amqps:// with the CA.
// Target: TLS ≥ 70% of plain on both. The markdown goes to stdout, every run to
// benchmarks/results/tls.jsonl. The machine has 2 cores: client and server share them.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import amqp from 'amqplib'
import { ndjsonBody } from './http-payload.js'
import { recordRequested, resultsDir } from './lib/results.js'
import { freePort } from './lib/proc.js'

const self = fileURLToPath(import.meta.url)
const repo = resolve(self, '../../..')
const BODY = Buffer.alloc(250, 'x')
const WINDOW = 1000
const BATCH = 1000
const CONNECTIONS = 4
const TARGET = 0.7

// ---------------------------------------------------------------- client side

async function clientHttp(url: string, ca: string | undefined, durationS: number): Promise<number> {
  const body = ndjsonBody(BATCH)
  const secure = url.startsWith('https:')
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: CONNECTIONS, ca: ca === undefined ? undefined : readFileSync(ca) }) : new HttpAgent({ keepAlive: true, maxSockets: CONNECTIONS })
  const target = new URL('/v1/exchanges/logs/publish', url)
  const post = (): Promise<number> =>
    new Promise((res, rej) => {
      const req = (secure ? httpsRequest : httpRequest)(target, { method: 'POST', agent, headers: { 'content-type': 'application/x-ndjson', 'content-length': body.length } }, (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('end', () => {
          if (r.statusCode !== 200) return res(0)
          const accepted = (JSON.parse(Buffer.concat(chunks).toString()) as { accepted?: number }).accepted ?? 0
          res(accepted === BATCH ? BATCH : 0)
        })
        r.on('error', rej)
      })
      req.on('error', rej)
      req.end(body)
    })
  const run = async (seconds: number): Promise<number> => {
    const end = performance.now() + seconds * 1000
    let confirmed = 0
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < end) confirmed += await post()
      }),
    )
    return confirmed
  }
  await run(2) // warm-up: connections, handshakes, JIT
  const t0 = performance.now()
  const confirmed = await run(durationS)
  const s = (performance.now() - t0) / 1000
  agent.destroy()
  return confirmed / s
}

async function clientAmqp(url: string, ca: string | undefined, queue: string, count: number): Promise<number> {
  const conn = await amqp.connect(url, ca === undefined ? {} : { ca: [readFileSync(ca)] })
  const ch = await conn.createConfirmChannel()
  await ch.assertQueue(queue, { durable: true })
  let inFlight = 0
  let done = 0
  let wake: (() => void) | undefined
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    while (inFlight >= WINDOW) await new Promise<void>((r) => (wake = r))
    inFlight++
    ch.sendToQueue(queue, BODY, { persistent: true }, (err) => {
      if (err !== null && err !== undefined) throw new Error(`nack: ${String(err)}`)
      inFlight--
      done++
      const w = wake
      wake = undefined
      w?.()
    })
  }
  while (done < count) await new Promise<void>((r) => (wake = r))
  const ms = performance.now() - t0
  await conn.close()
  return (count / ms) * 1000
}

// ---------------------------------------------------------------- driver side
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const o = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' })
  o(['req', '-x509', ...key, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=bench CA', '-addext', 'basicConstraints=critical,CA:TRUE'])
  o(['req', ...key, '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=localhost'])
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  o(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-set_serial', '1', '-days', '2', '-extfile', join(dir, 'server.ext'), '-out', join(dir, 'server.pem')])
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') }
}

interface Ports {
  readonly http: number
  readonly https: number
  readonly amqp: number
  readonly amqps: number
}

async function startSluice(dir: string, certs: { cert: string; key: string }): Promise<{ proc: ChildProcess; ports: Ports }> {
  const ports = { http: await freePort(), https: await freePort(), amqp: await freePort(), amqps: await freePort() }
  const tls = `{ cert: ${JSON.stringify(certs.cert)}, key: ${JSON.stringify(certs.key)} }`
  const config = join(dir, 'sluice.yaml')
  writeFileSync(
    config,
    `server:
  dataDir: ${JSON.stringify(join(dir, 'data'))}
  log: { level: warn }
  durability: { fsync: batch, interval: 5ms }
  http: [ { port: ${ports.http} }, { port: ${ports.https}, tls: ${tls} } ]
  amqp: [ { port: ${ports.amqp} }, { port: ${ports.amqps}, tls: ${tls} } ]
  ndjson: { enabled: false }
  syslog: { enabled: false }
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams:
  app-logs: {}
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
`,
  )
  const proc = spawn(process.execPath, [join(repo, 'dist/src/cli.js'), 'serve', '--config', config, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  // Ready once both HTTP entries answer (the log level is warn, so no "ready" line to wait for).
  const deadline = Date.now() + 60_000
  createInterface({ input: proc.stdout! }).on('line', (line) => process.stderr.write(`sluice: ${line}\n`))
  for (;;) {
    if (proc.exitCode !== null) throw new Error('sluice exited before it was ready')
    try {
      const r = await fetch(`http://127.0.0.1:${ports.http}/readyz`)
      if (r.status === 200) break
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('sluice not ready after 60 s')
    await new Promise((r) => setTimeout(r, 200))
  }
  void exited
  return { proc, ports }
}

function runClient(args: string[]): Promise<number> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [self, 'client', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.once('exit', (code) => {
      const m = /^RESULT (\S+)$/m.exec(out)
      if (code === 0 && m !== null) res(Number(m[1]))
      else rej(new Error(`client ${args.join(' ')} exited with ${code}: ${out}`))
    })
  })
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'client') {
    const [kind, url, ca, a, b] = argv.slice(1)
    const caPath = ca === '-' ? undefined : ca
    const value = kind === 'http' ? await clientHttp(url!, caPath, Number(a)) : await clientAmqp(url!, caPath, a!, Number(b))
    process.stdout.write(`RESULT ${value}\n`)
    return
  }
  const opt = (name: string, fallback: string): string => argv.find((x) => x.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
  const runs = Number(opt('runs', '3'))
  const durationS = Number(opt('duration', '10'))
  const count = Number(opt('count', '100000'))
  const only = opt('only', 'http,amqp').split(',')
  const out = join(resultsDir(recordRequested(argv)), 'tls.jsonl')
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-bench-'))
  const startLoad = loadavg()[0]!
  try {
    const certs = makeCerts(dir)
    mkdirSync(join(dir, 'data'))
    const { proc, ports } = await startSluice(dir, certs)
    const results: Record<string, { plain: number[]; tls: number[] }> = {}
    try {
      for (let round = 0; round < runs; round++) {
        // Alternate which goes first, so neither always gets the warmer machine.
        const order: Array<'plain' | 'tls'> = round % 2 === 0 ? ['plain', 'tls'] : ['tls', 'plain']
        for (const side of order) {
          if (only.includes('http')) {
            const url = side === 'plain' ? `http://127.0.0.1:${ports.http}` : `https://localhost:${ports.https}`
            const v = await runClient(['http', url, side === 'plain' ? '-' : certs.ca, String(durationS)])
            ;(results.http ??= { plain: [], tls: [] })[side].push(v)
            process.stderr.write(`round ${round + 1} http ${side}: ${fmt(v)} events/s\n`)
          }
          if (only.includes('amqp')) {
            const url = side === 'plain' ? `amqp://guest:guest@127.0.0.1:${ports.amqp}` : `amqps://guest:guest@localhost:${ports.amqps}`
            const v = await runClient(['amqp', url, side === 'plain' ? '-' : certs.ca, `q-${side}-${round}`, String(count)])
            ;(results.amqp ??= { plain: [], tls: [] })[side].push(v)
            process.stderr.write(`round ${round + 1} amqp ${side}: ${fmt(v)} msgs/s\n`)
          }
        }
      }
    } finally {
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
    }
    const rows: string[] = []
    for (const [workload, r] of Object.entries(results)) {
      const plain = median(r.plain)
      const tls = median(r.tls)
      const ratio = tls / plain
      const unit = workload === 'http' ? 'confirmed events/s' : 'confirmed msgs/s'
      rows.push(`| ${workload} (${unit}) | ${fmt(plain)} (${fmt(Math.min(...r.plain))}–${fmt(Math.max(...r.plain))}) | ${fmt(tls)} (${fmt(Math.min(...r.tls))}–${fmt(Math.max(...r.tls))}) | ${(ratio * 100).toFixed(0)}% | ${ratio >= TARGET ? 'PASS' : 'MISS'} |`)
      appendFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), workload, plain: r.plain, tls: r.tls, ratio, runs, durationS, count, cpus: cpus().length, loadAtStart: startLoad })}\n`)
    }
    process.stdout.write(`Load ${startLoad.toFixed(2)} at start, ${cpus().length} cores, ${runs} rounds, medians (min–max).\n\n| workload | plain | TLS | TLS / plain | ≥ 70% |\n|---|---|---|---|---|\n${rows.join('\n')}\n`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
