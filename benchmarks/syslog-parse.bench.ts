// Syslog parser micro-benchmark: after a build, `node dist/benchmarks/syslog-parse.bench.js`.
//
// Parses 1,000,000 RFC 5424 lines (logger/rsyslog-shaped, with SD, ~130 bytes each) on one core
// and prints lines/s; then the same lines octet-counted in 64 KiB chunks through SyslogFramer +
// parseSyslog, and 1,000,000 RFC 3164 lines. Each pass stops early at --max-seconds (default 20)
// so the run stays bounded on a slow machine. The goal for the whole syslog door is
// ≥ 250,000 messages/s on 2 cores; the parser is one part of that cost, so it should be well above.
//
// Options: --lines=N (default 1000000), --max-seconds=S (default 20).

import { SyslogFramer } from '../src/ingest/syslog/framing.js'
import { parseSyslog } from '../src/ingest/syslog/parse.js'

const arg = (name: string, fallback: number): number => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found === undefined ? fallback : Number(found.slice(name.length + 3))
}
const lines = arg('lines', 1_000_000)
const maxMs = arg('max-seconds', 20) * 1000
const receivedAt = Date.parse('2026-11-25T15:57:00.000Z')

// 1,000 distinct lines, so the branch predictor and caches do not see one line over and over.
const apps = ['web', 'api', 'postfix/smtpd', 'cron', 'i18n', 'checkout']
const pool5424: Buffer[] = []
const pool3164: Buffer[] = []
for (let i = 0; i < 1000; i++) {
  const t = new Date(receivedAt - 60_000 + i * 37).toISOString().replace('Z', '+00:00')
  const app = apps[i % apps.length]!
  const sd = i % 3 === 0 ? '-' : `[timeQuality tzKnown="1" isSynced="0"]${i % 3 === 2 ? `[origin@32473 env="test" note="say \\"hi\\" [x\\] c:\\\\tmp"]` : ''}`
  pool5424.push(Buffer.from(`<${(16 + (i % 8)) * 8 + (i % 8)}>1 ${t} vm${i % 10} ${app} ${1000 + i} ${i % 2 === 0 ? '-' : 'REQ' + i} ${sd} GET /health/${i} 200 ${i % 97}ms`))
  pool3164.push(Buffer.from(`<${(16 + (i % 8)) * 8 + (i % 8)}>Nov ${String(1 + (i % 28)).padStart(2, ' ')} 15:56:${String(i % 60).padStart(2, '0')} vm${i % 10} ${app}[${1000 + i}]: GET /health/${i} 200 ${i % 97}ms`))
}

let sink = 0 // keeps the results alive so the JIT cannot drop the work

// Both wall time and this process's CPU time are shown: on a shared machine the CPU figure is
// the steadier one (it leaves out time spent waiting for a core).
function run(label: string, pass: () => number): void {
  const started = process.hrtime.bigint()
  const cpuStarted = process.cpuUsage()
  const done = pass()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const cpu = process.cpuUsage(cpuStarted)
  const cpuMs = (cpu.user + cpu.system) / 1000
  const rate = (n: number, t: number) => Math.round((n / t) * 1000).toLocaleString('en-US').padStart(9)
  console.log(`${label.padEnd(32)} ${done.toLocaleString('en-US').padStart(9)} lines: ${rate(done, ms)} lines/s wall (${ms.toFixed(0)} ms), ${rate(done, cpuMs)} lines/s CPU (${cpuMs.toFixed(0)} ms)`)
}

function parsePool(pool: Buffer[], count: number): number {
  const deadline = Date.now() + maxMs
  let i = 0
  for (; i < count; i++) {
    const result = parseSyslog(pool[i % pool.length]!, { receivedAt })
    sink += 'error' in result ? 1 : result.message.length
    if ((i & 0xffff) === 0 && Date.now() > deadline) break
  }
  return i
}

function frameAndParse(count: number): number {
  // One octet-counted stream of `count` lines, pushed in 64 KiB chunks as a socket would deliver it.
  const framed = pool5424.map((line) => Buffer.concat([Buffer.from(`${line.length} `), line]))
  const block = Buffer.concat(framed) // 1,000 lines
  const chunkBytes = 64 * 1024
  const deadline = Date.now() + maxMs
  let parsed = 0
  const framer = new SyslogFramer({
    maxMessageBytes: 64 * 1024,
    onFrame: (frame) => {
      const result = parseSyslog(frame, { receivedAt })
      sink += 'error' in result ? 1 : result.message.length
      parsed++
    },
    onError: () => {
      sink--
    },
  })
  const blocks = Math.ceil(count / framed.length)
  const stream = Buffer.concat(Array.from({ length: Math.min(blocks, 64) }, () => block)) // reused: ≤ 64,000 lines
  let sent = 0
  outer: while (sent < blocks) {
    for (let i = 0; i < stream.length; i += chunkBytes) framer.push(stream.subarray(i, i + chunkBytes))
    sent += Math.min(blocks, 64)
    if (Date.now() > deadline) break outer
  }
  framer.end()
  return parsed
}

parsePool(pool5424, 100_000) // warm-up
parsePool(pool3164, 100_000)
console.log(`node ${process.version}, ${lines.toLocaleString('en-US')} lines per pass, at most ${maxMs / 1000} s each`)
run('parseSyslog RFC 5424', () => parsePool(pool5424, lines))
run('SyslogFramer + parseSyslog 5424', () => frameAndParse(lines))
run('parseSyslog RFC 3164', () => parsePool(pool3164, lines))
if (sink === 42) console.log('') // never true in practice; reads sink
