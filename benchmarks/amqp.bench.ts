// AMQP 0-9-1 side by side with RabbitMQ (issue 7): `npm run bench:amqp`, or after a build
// `node dist/benchmarks/amqp.bench.js [--count=N] [--runs=N] [--only=publish,consume,lean,celery,java,rabbitmq]
// [--celery-count=N] [--java-count=N] [--program-timeout=S] [--profile] [--profile-only] [--sluice-interval=5ms]`.
//
// Servers, ONE AT A TIME, on 127.0.0.1 (the order alternates between rounds):
//   - RabbitMQ from Debian (`rabbitmq-server`, installed with apt-get if missing), started here in
//     the foreground as a child: temp RABBITMQ_MNESIA_BASE / RABBITMQ_LOG_BASE / HOME (its Erlang
//     cookie), a free port via RABBITMQ_NODE_IP_ADDRESS / RABBITMQ_NODE_PORT, a unique
//     RABBITMQ_NODENAME, no plugins; ready once `rabbitmq-diagnostics -q ping` succeeds.
//     Two queues: a classic durable queue, and a stream queue (`x-queue-type: stream`).
//   - Sluice (`node dist/src/cli.js serve`), `fsync: batch` (5 ms, Sluice's default; other values
//     with --sluice-interval, for experiments only), AMQP door on a free port;
//     a queue is a stream plus a consumer group.
// Workloads, each from a client process of its own (this file with `client ...`), amqplib:
//   publish  persistent messages (delivery-mode 2) of 250 bytes to the queue via the default
//            exchange on a confirm channel, at most 1,000 unconfirmed; messages/s from the first
//            publish to the last confirm.
//   consume  the same queue after it: prefetch 500, an ack per message (stream queue:
//            x-stream-offset first); messages/s from basic.consume to the last message.
//   lean     (Sluice only) a pipelined publisher without amqplib: pre-encoded frames (protocol
//            header, handshake, channel.open, confirm.select, then basic.publish + header + body
//            written 100 messages at a time, at most 1,000 unconfirmed, counting basic.ack
//            multiple: LeanAmqpPublisher in lib/lean-amqp.ts); confirmed messages/s.
//   celery   (issue 13) Debian's Celery (python3-celery): a worker started as users start it
//            (`celery -A tasks worker`, prefork, concurrency 1), tasks acks_late, `--celery-count`
//            tasks (default 2,000) sent with .delay() after a warm-up task; tasks/s from the first
//            .delay() to the last execution (each task once, checked) — see lib/amqp-programs.ts.
//   java     (issue 13) the RabbitMQ Java client (librabbitmq-client-java, compiled here with
//            javac): `--java-count` persistent messages (default 50,000) published with batch
//            confirms of 1,000 (tutorial 7), then consumed with prefetch 500 and an ack each.
//   Both run against Sluice and RabbitMQ's classic queue in the same round, each bounded by
//   `--program-timeout` seconds (default 300).
// `--count` messages per run (default 200,000), `--runs` rounds (default 3); medians.
// Targets: Sluice ≥ 2× RabbitMQ classic and ≥ 1× its stream queue on publish and consume; lean ≥
// 250,000 msgs/s; Celery tasks/s and the Java client's publish and consume ≥ 1× RabbitMQ classic. With --profile (or any MISS), Sluice runs once more under `node --cpu-prof` for
// the workloads that missed and the profile's top functions are printed.
// The markdown goes to stdout and benchmarks/results/amqp-latest.md, every run to
// benchmarks/results/amqp.jsonl.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import amqp from 'amqplib'
import { formatProfile, summarizeProfile } from './cpuprofile-summary.js'
import { compileJava, runCelery, runJava } from './lib/amqp-programs.js'
import { recordRequested, resultsDir } from './lib/results.js'
import { freePort } from './lib/proc.js'
import { LeanAmqpPublisher } from './lib/lean-amqp.js'

const self = fileURLToPath(import.meta.url)
const repo = resolve(self, '../../..')
const BODY = Buffer.alloc(250, 'x')
const WINDOW = 1000
const PREFETCH = 500

// ---------------------------------------------------------------- client side

async function clientPublish(url: string, queue: string, args: Record<string, unknown>, count: number): Promise<number> {
  const conn = await amqp.connect(url)
  const ch = await conn.createConfirmChannel()
  await ch.assertQueue(queue, { durable: true, arguments: args })
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

async function clientConsume(url: string, queue: string, args: Record<string, unknown>, consumeArgs: Record<string, unknown>, count: number): Promise<number> {
  const conn = await amqp.connect(url)
  const ch = await conn.createChannel()
  await ch.assertQueue(queue, { durable: true, arguments: args })
  await ch.prefetch(PREFETCH)
  let got = 0
  const t0 = performance.now()
  let t1 = 0
  await new Promise<void>((resolveDone) => {
    void ch.consume(
      queue,
      (msg) => {
        if (msg === null) return
        ch.ack(msg)
        if (++got === count) {
          t1 = performance.now()
          resolveDone()
        }
      },
      { noAck: false, arguments: consumeArgs },
    )
  })
  await conn.close()
  return (count / (t1 - t0)) * 1000
}

// Lean publisher: frames by hand (LeanAmqpPublisher, benchmarks/lib/lean-amqp.ts).
async function clientLean(port: number, queue: string, count: number): Promise<number> {
  // The queue exists before (declared over amqplib, as the other workloads do).
  const c = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`)
  await (await c.createChannel()).assertQueue(queue, { durable: true })
  await c.close()

  // Persistent messages (delivery-mode 2) to the queue via the default exchange.
  const pub = await LeanAmqpPublisher.open({ port, exchange: '', routingKey: queue, bodies: [BODY], props: { deliveryMode: 2 }, maxUnconfirmed: WINDOW })
  const CHUNK = 100
  let sent = 0
  let confirmed = 0
  let failed: Error | undefined
  let wake: (() => void) | undefined
  const wakeUp = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  pub.onSettled = (ok) => {
    if (!ok) failed = new Error('basic.nack')
    confirmed++
  }
  pub.onReadEnd = wakeUp
  pub.onError = (why) => {
    failed = new Error(`closed: ${why}`)
    wakeUp()
  }
  const t0 = performance.now()
  const deadline = t0 + 300_000
  while (confirmed < count) {
    if (failed !== undefined) throw failed
    if (performance.now() > deadline) throw new Error(`lean publisher: ${confirmed} of ${count} confirmed after 300 s`)
    const room = Math.min(WINDOW - pub.unconfirmed, count - sent)
    if (room >= CHUNK || (room > 0 && sent + room === count)) {
      const n = Math.min(room, CHUNK)
      pub.send(n)
      sent += n
      continue
    }
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((r) => {
      wake = r
      timer = setTimeout(r, 1000)
    })
    clearTimeout(timer)
  }
  const ms = performance.now() - t0
  await pub.close()
  return (count / ms) * 1000
}

async function clientMain(argv: string[]): Promise<void> {
  const [mode, portS, queue, countS, kind] = argv
  const port = Number(portS)
  const count = Number(countS)
  const url = `amqp://guest:guest@127.0.0.1:${port}`
  const args: Record<string, unknown> = kind === 'stream' ? { 'x-queue-type': 'stream' } : {}
  const fromUs = Number(process.hrtime.bigint() / 1000n)
  let rate: number
  if (mode === 'publish') rate = await clientPublish(url, queue!, args, count)
  else if (mode === 'consume') rate = await clientConsume(url, queue!, args, kind === 'stream' ? { 'x-stream-offset': 'first' } : {}, count)
  else if (mode === 'lean') rate = await clientLean(port, queue!, count)
  else throw new Error(`unknown client mode ${mode}`)
  const toUs = Number(process.hrtime.bigint() / 1000n)
  process.stdout.write(`${JSON.stringify({ rate, fromUs, toUs })}\n`)
}

// ---------------------------------------------------------------- orchestration

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
// The last client's window on the monotonic clock (µs), to cut a server profile to it.
let lastWindow: { fromUs: number; toUs: number } | undefined

function runClient(args: string[]): Promise<number> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [self, 'client', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    p.once('exit', (code) => {
      if (code !== 0) return rej(new Error(`client ${args.join(' ')} exited with ${code}`))
      const r = JSON.parse(out.trim().split('\n').pop()!) as { rate: number; fromUs: number; toUs: number }
      lastWindow = { fromUs: r.fromUs, toUs: r.toUs }
      res(r.rate)
    })
  })
}

interface Server {
  readonly port: number
  stop(): Promise<void>
}

const RMQ_BIN = '/usr/lib/rabbitmq/bin'

function ensureRabbit(): void {
  const have = spawnSync('dpkg', ['-s', 'rabbitmq-server'], { stdio: 'ignore' }).status === 0
  if (have) return
  console.log('installing rabbitmq-server with apt-get …')
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'rabbitmq-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  if (r.status !== 0) throw new Error('apt-get install rabbitmq-server failed')
}

const debVersion = (p: string): string => spawnSync('dpkg-query', ['-W', '-f', '${Version}', p], { encoding: 'utf8' }).stdout.trim() || '—'

function rabbitVersions(): { rabbit: string; erlang: string } {
  return { rabbit: debVersion('rabbitmq-server'), erlang: debVersion('erlang-base') }
}

async function startRabbit(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'rmq-bench-'))
  const port = await freePort()
  const dist = await freePort()
  const node = `bench${process.pid}x${port}@localhost`
  mkdirSync(join(dir, 'home'))
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n')
  const env = {
    ...process.env,
    HOME: join(dir, 'home'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_NODENAME: node,
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'), // none there: defaults
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
  }
  const proc = spawn(join(RMQ_BIN, 'rabbitmq-server'), [], { env, stdio: 'ignore' })
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  const deadline = Date.now() + 60_000
  for (;;) {
    const ping = spawnSync(join(RMQ_BIN, 'rabbitmq-diagnostics'), ['-n', node, '-q', 'ping'], { env, stdio: 'ignore' })
    if (ping.status === 0) break
    if (proc.exitCode !== null) throw new Error('rabbitmq-server exited before it was ready')
    if (Date.now() > deadline) throw new Error('rabbitmq-server not ready after 60 s')
    await sleep(500)
  }
  // The AMQP listener may come up just after the node answers pings.
  for (;;) {
    try {
      const c = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`)
      await c.close()
      break
    } catch {
      await sleep(200)
    }
  }
  return {
    port,
    stop: async () => {
      proc.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

// Sluice's group-commit interval (`server.durability.interval`); the default is Sluice's own.
let sluiceInterval = '5ms'

async function startSluice(profileDir?: string): Promise<Server & { proc: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-amqp-bench-'))
  const port = await freePort()
  const config = join(dir, 'sluice.yaml')
  writeFileSync(
    config,
    `server:
  dataDir: ${JSON.stringify(join(dir, 'data'))}
  http: { host: 127.0.0.1, port: 0 }
  ndjson: { enabled: false }
  syslog: { enabled: false }
  amqp: { host: 127.0.0.1, port: ${port} }
  durability: { fsync: batch, interval: ${sluiceInterval} }
`,
  )
  const nodeArgs = profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []
  const proc = spawn(process.execPath, [...nodeArgs, join(repo, 'dist/src/cli.js'), 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  await new Promise<void>((res, rej) => {
    const lines = createInterface({ input: proc.stdout! })
    lines.on('line', (line) => {
      if (line.includes('"msg":"ready"')) res()
    })
    void exited.then(() => rej(new Error('sluice exited before it was ready')))
  })
  proc.stdout!.resume()
  return {
    port,
    proc,
    stop: async () => {
      proc.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const KEYS = [
  'rmq-classic publish',
  'rmq-classic consume',
  'rmq-stream publish',
  'rmq-stream consume',
  'sluice publish',
  'sluice consume',
  'sluice lean publish',
  'rmq-classic celery tasks',
  'sluice celery tasks',
  'rmq-classic java publish',
  'rmq-classic java consume',
  'sluice java publish',
  'sluice java consume',
] as const
type Key = (typeof KEYS)[number]

/** The real programs' settings (celery, java), set from the command line in main. */
const programs = { celeryCount: 2000, javaCount: 50_000, timeoutMs: 300_000, javaClasses: undefined as string | undefined }

/** Celery and the Java client against one broker; `who` names its rows. */
async function runPrograms(who: 'sluice' | 'rmq-classic', port: number, results: Map<Key, number[]>, round: number, want: (k: string) => boolean): Promise<void> {
  if (want('celery')) {
    const r = await runCelery(port, programs.celeryCount, programs.timeoutMs)
    results.get(`${who} celery tasks`)!.push(r.rates['tasks']!)
    console.log(`  ${who} celery ${fmt(r.rates['tasks']!)} tasks/s (.delay() alone ${fmt(r.rates['delay']!)}/s; load ${loadavg()[0]!.toFixed(2)})`)
  }
  if (want('java') && programs.javaClasses !== undefined) {
    const r = await runJava(programs.javaClasses, port, `java-${round}`, programs.javaCount, WINDOW, PREFETCH, programs.timeoutMs)
    results.get(`${who} java publish`)!.push(r.rates['publish']!)
    results.get(`${who} java consume`)!.push(r.rates['consume']!)
    console.log(`  ${who} java publish ${fmt(r.rates['publish']!)} msgs/s, consume ${fmt(r.rates['consume']!)} msgs/s (load ${loadavg()[0]!.toFixed(2)})`)
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—')

async function runSluiceRound(count: number, results: Map<Key, number[]>, round: number, only: Set<string> | undefined, profileDir?: string): Promise<void> {
  const s = await startSluice(profileDir)
  try {
    const want = (k: string): boolean => only === undefined || only.has(k)
    if (want('publish') || want('consume')) {
      const q = `bench-${round}`
      const p = await runClient(['publish', String(s.port), q, String(count), 'classic'])
      results.get('sluice publish')!.push(p)
      console.log(`  sluice publish ${fmt(p)} msgs/s (load ${loadavg()[0]!.toFixed(2)})`)
      if (want('consume')) {
        const c = await runClient(['consume', String(s.port), q, String(count), 'classic'])
        results.get('sluice consume')!.push(c)
        console.log(`  sluice consume ${fmt(c)} msgs/s (load ${loadavg()[0]!.toFixed(2)})`)
      }
    }
    if (want('lean')) {
      const l = await runClient(['lean', String(s.port), `lean-${round}`, String(count), 'classic'])
      results.get('sluice lean publish')!.push(l)
      console.log(`  sluice lean publish ${fmt(l)} msgs/s (load ${loadavg()[0]!.toFixed(2)})`)
    }
    await runPrograms('sluice', s.port, results, round, want)
  } finally {
    await s.stop()
  }
}

async function runRabbitRound(count: number, results: Map<Key, number[]>, round: number, only: Set<string> | undefined): Promise<void> {
  const r = await startRabbit()
  const want = (k: string): boolean => only === undefined || only.has(k)
  // `--only=rabbitmq` alone keeps meaning RabbitMQ's publish and consume.
  const amqplibRows = want('publish') || want('consume') || !(want('celery') || want('java'))
  try {
    for (const kind of amqplibRows ? (['classic', 'stream'] as const) : []) {
      const q = `bench-${kind}-${round}`
      const p = await runClient(['publish', String(r.port), q, String(count), kind])
      results.get(`rmq-${kind} publish`)!.push(p)
      console.log(`  rabbitmq ${kind} publish ${fmt(p)} msgs/s (load ${loadavg()[0]!.toFixed(2)})`)
      const c = await runClient(['consume', String(r.port), q, String(count), kind])
      results.get(`rmq-${kind} consume`)!.push(c)
      console.log(`  rabbitmq ${kind} consume ${fmt(c)} msgs/s (load ${loadavg()[0]!.toFixed(2)})`)
    }
    await runPrograms('rmq-classic', r.port, results, round, want)
  } finally {
    await r.stop()
  }
}

async function main(): Promise<void> {
  const opt = (name: string, def: number): number => {
    const a = process.argv.find((x) => x.startsWith(`--${name}=`))
    return a === undefined ? def : Number(a.slice(name.length + 3))
  }
  const count = opt('count', 200_000)
  const runs = opt('runs', 3)
  const onlyArg = process.argv.find((x) => x.startsWith('--only='))
  const only = onlyArg === undefined ? undefined : new Set(onlyArg.slice(7).split(','))
  const forceProfile = process.argv.includes('--profile')
  const intervalArg = process.argv.find((x) => x.startsWith('--sluice-interval='))
  if (intervalArg !== undefined) sluiceInterval = intervalArg.slice('--sluice-interval='.length)
  const profileOnly = process.argv.includes('--profile-only') // no measurements: profile publish, consume and lean
  programs.celeryCount = opt('celery-count', programs.celeryCount)
  programs.javaCount = opt('java-count', programs.javaCount)
  programs.timeoutMs = opt('program-timeout', programs.timeoutMs / 1000) * 1000
  const results = new Map<Key, number[]>(KEYS.map((k) => [k, []]))
  if (profileOnly) {
    await profileSluice(['publish', 'consume', 'lean'], count)
    return
  }
  const withRabbit = only === undefined || only.has('rabbitmq')
  if (withRabbit) ensureRabbit()
  if (only === undefined || only.has('java')) programs.javaClasses = compileJava(BODY.length)
  console.log(`AMQP bench: ${count.toLocaleString('en-US')} messages of ${BODY.length} bytes per run, ${runs} runs; ${cpus().length} cores; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  for (let round = 0; round < runs; round++) {
    console.log(`round ${round + 1}/${runs}`)
    const sluiceFirst = round % 2 === 0
    if (sluiceFirst) await runSluiceRound(count, results, round, only)
    if (withRabbit) await runRabbitRound(count, results, round, only)
    if (!sluiceFirst) await runSluiceRound(count, results, round, only)
  }
  const m = (k: Key): number => median(results.get(k)!)
  const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS')
  const targets: Array<{ what: string; value: string; target: string; ok: boolean; profile?: string }> = []
  const ratio = (a: number, b: number): number => a / b
  for (const op of ['publish', 'consume'] as const) {
    const sl = m(`sluice ${op}`)
    const rc = ratio(sl, m(`rmq-classic ${op}`))
    const rs = ratio(sl, m(`rmq-stream ${op}`))
    targets.push({ what: `${op}: Sluice ÷ RabbitMQ classic`, value: `${rc.toFixed(2)}×`, target: '≥ 2×', ok: rc >= 2, profile: op })
    targets.push({ what: `${op}: Sluice ÷ RabbitMQ stream`, value: `${rs.toFixed(2)}×`, target: '≥ 1×', ok: rs >= 1, profile: op })
  }
  const vsRabbit = (what: string, sluice: Key, rabbit: Key, profile?: string): void => {
    const r = ratio(m(sluice), m(rabbit))
    targets.push({ what, value: `${r.toFixed(2)}×`, target: '≥ 1×', ok: r >= 1, ...(profile !== undefined ? { profile } : {}) })
  }
  vsRabbit('Celery tasks/s: Sluice ÷ RabbitMQ classic', 'sluice celery tasks', 'rmq-classic celery tasks', 'celery')
  vsRabbit('Java client publish: Sluice ÷ RabbitMQ classic', 'sluice java publish', 'rmq-classic java publish', 'java')
  vsRabbit('Java client consume: Sluice ÷ RabbitMQ classic', 'sluice java consume', 'rmq-classic java consume', 'java')
  const lean = m('sluice lean publish')
  targets.push({ what: 'lean publisher, Sluice confirmed', value: `${fmt(lean)} msgs/s`, target: '≥ 250,000', ok: lean >= 250_000, profile: 'lean' })

  const versions = withRabbit ? rabbitVersions() : { rabbit: '—', erlang: '—' }
  const amqplibVersion = (JSON.parse(readFileSync(join(repo, 'node_modules', 'amqplib', 'package.json'), 'utf8')) as { version: string }).version
  const md: string[] = []
  md.push(
    `${count.toLocaleString('en-US')} messages of ${BODY.length} bytes per run (Celery: ${programs.celeryCount.toLocaleString('en-US')} tasks, Java: ${programs.javaCount.toLocaleString('en-US')} messages), ${runs} runs, medians (min–max); ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); rabbitmq-server ${versions.rabbit}, Erlang ${versions.erlang}, amqplib ${amqplibVersion}, python3-celery ${debVersion('python3-celery')}, librabbitmq-client-java ${debVersion('librabbitmq-client-java')}, Node ${process.version}.`,
    '',
    '| workload | median msgs/s (Celery: tasks/s) | min–max |',
    '|---|---|---|',
  )
  for (const k of KEYS) {
    const xs = results.get(k)!
    if (xs.length === 0) continue
    md.push(`| ${k} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))} |`)
  }
  md.push('', '| target | value | wanted | |', '|---|---|---|---|')
  for (const t of targets) md.push(`| ${t.what} | ${t.value} | ${t.target} | ${Number.isFinite(Number.parseFloat(t.value)) ? verdict(t.ok) : '—'} |`)
  const text = md.join('\n')
  console.log(`\n${text}`)
  const out = resultsDir(recordRequested())
  writeFileSync(join(out, 'amqp-latest.md'), `${text}\n`)
  appendFileSync(join(out, 'amqp.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), count, runs, results: Object.fromEntries(results), versions })}\n`)
  console.log(`results in ${out}${recordRequested() ? '' : ' (--record writes them to benchmarks/results)'}`)

  // Profiles for the misses (or all with --profile).
  const toProfile = new Set(targets.filter((t) => (forceProfile || (!t.ok && Number.isFinite(Number.parseFloat(t.value)))) && t.profile !== undefined).map((t) => t.profile!))
  await profileSluice([...toProfile], count)
}

async function profileSluice(what: string[], count: number): Promise<void> {
  for (const w of what) {
    const dir = mkdtempSync(join(tmpdir(), `sluice-amqp-prof-${w}-`))
    console.log(`\nprofiling Sluice under ${w} …`)
    const scratch = new Map<Key, number[]>(KEYS.map((k) => [k, []]))
    await runSluiceRound(count, scratch, 99, new Set([w]), dir)
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) continue
    // Only the samples taken while the profiled workload's client ran (not start-up, not the
    // publish that fills the queue before a consume).
    console.log(formatProfile(summarizeProfile(join(dir, file), 15, repo, lastWindow)))
    console.log(`(profile kept at ${join(dir, file)})`)
  }
}

if (process.argv[2] === 'client') {
  clientMain(process.argv.slice(3)).catch((e: unknown) => {
    console.error(e)
    process.exit(1)
  })
} else {
  main().catch((e: unknown) => {
    console.error(e)
    process.exit(1)
  })
}
