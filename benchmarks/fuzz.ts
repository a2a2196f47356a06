// Fuzzes every parser that faces the network, and the configuration parser:
//   npm run fuzz                                   all targets, 1,000,000 cases each
//   npm run fuzz -- --target=syslog-framing        one target (a comma-separated list works too)
//   npm run fuzz -- --cases=100000 --seed=7 --max-seconds=300
//
// Each case is a mutated real input (captured syslog frames, amqplib-shaped AMQP frames, log
// records, the shipped configuration files), checked for: no exception but the parser's
// documented error, no case slower than the target's bound (a hang), nothing held or produced
// beyond the input and the limits (memory), a usable error message, and answers that agree with a
// second computation (the same bytes cut into other chunks, encoded back, a simple model).
// Every target stops at --max-seconds (default 3600) whatever the count, so a run is bounded; the
// slowest target, http-gzip, needs about 1,600 s for its million on two busy shared cores.
// Prints counts, rates, outcomes and findings; a finding's input is printed in base64 so that
// `--replay=<target>:<base64>` runs it again. Exit code 1 when anything was found.

import { findingInput, type RunReport, runTarget } from './fuzz/engine.js'
import { targetFactories } from './fuzz/targets.js'

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const cases = Number(arg('cases') ?? 1_000_000)
const seed = Number(arg('seed') ?? 20261125)
const maxMs = Number(arg('max-seconds') ?? 3600) * 1000
const names = (arg('target') ?? Object.keys(targetFactories).join(',')).split(',')
const replay = arg('replay')

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MB`

function print(r: RunReport, what: string): void {
  const s = r.ms / 1000
  console.log(`\n## ${r.target}: ${what}`)
  console.log(`cases ${fmt(r.cases)}${r.stoppedEarly ? ' (stopped at the time bound)' : ''} in ${s.toFixed(1)} s = ${fmt(r.cases / s)} cases/s; input ${mb(r.inputBytes)}; slowest case ${r.slowestMs.toFixed(1)} ms; heap max ${mb(r.heapMaxBytes)}, rss max ${mb(r.rssMaxBytes)}`)
  const outcomes = [...r.outcomes].sort((a, b) => b[1] - a[1])
  console.log(`outcomes: ${outcomes.map(([k, n]) => `${k} ${fmt(n)}`).join('; ')}`)
  if (r.findingCounts.size === 0) {
    console.log('findings: none')
    return
  }
  console.log(`findings: ${[...r.findingCounts.values()].reduce((a, b) => a + b, 0)} cases, ${r.findingCounts.size} distinct`)
  for (const [key, n] of r.findingCounts) console.log(`  ${fmt(n)} × ${key}`)
  const shown = new Set<string>()
  for (const f of r.findings) {
    const key = `${f.kind}:${f.message.slice(0, 60)}`
    if (shown.has(key)) continue
    shown.add(key)
    console.log(`  example (case ${f.caseIndex}, ${f.inputBytes} bytes): ${f.message.slice(0, 400)}`)
    console.log(`    --replay=${f.target}:${f.input.length > 2000 ? `${f.input.slice(0, 2000)}… (cut)` : f.input}`)
  }
}

async function main(): Promise<void> {
  if (replay !== undefined) {
    const [target, b64] = [replay.slice(0, replay.indexOf(':')), replay.slice(replay.indexOf(':') + 1)]
    const t = targetFactories[target]?.()
    if (t === undefined) throw new Error(`unknown target ${target}`)
    const input = findingInput({ target, kind: 'crash', message: '', caseIndex: 0, input: b64, inputBytes: 0 })
    console.log(`replaying ${input.length} bytes on ${target}`)
    console.log(await t.run(input))
    return
  }
  console.log(`fuzz: ${names.length} targets, ${fmt(cases)} cases each, seed ${seed}, at most ${maxMs / 1000} s each; node ${process.version}, ${new Date().toISOString()}`)
  let found = 0
  for (const name of names) {
    const factory = targetFactories[name]
    if (factory === undefined) throw new Error(`unknown target ${name}; targets: ${Object.keys(targetFactories).join(', ')}`)
    const target = factory()
    const report = await runTarget(target, {
      seed,
      cases,
      maxMs,
      keepFindings: 10,
      onProgress: (done, ms) => console.log(`  ${name}: ${fmt(done)} cases, ${(ms / 1000).toFixed(0)} s`),
      progressEvery: 200_000,
    })
    print(report, target.what)
    found += report.findingCounts.size
  }
  process.exitCode = found > 0 ? 1 : 0
}

await main()
