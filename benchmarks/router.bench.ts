// Topic routing throughput with 10 and with 10,000 bindings on one exchange.
//
//   npm run build && node dist/benchmarks/router.bench.js
//
// The trie should make routing cost depend on the key, not on the number of bindings, so the two
// rates should be close (the bigger table costs some CPU cache, not a scan). Each configuration
// runs a fixed number of routes, 5 times after a warm-up, and reports the median with min–max.

import { cpus } from 'node:os'
import { Router, type BindingDef } from '../src/router/index.js'

const routesPerRun = 1_000_000
const runs = 5
const keyPoolSize = 8192
const levels = ['debug', 'info', 'warn', 'error'] as const

// A deterministic generator so every run and every machine routes the same keys.
function lcg(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/** Per service, `svc<k>.error` and `svc<k>.#`; plus two exchange-wide patterns. */
function buildRouter(bindingCount: number): { router: Router; services: number } {
  const bindings: BindingDef[] = [
    { exchange: 'logs', stream: 'errors', key: '*.error' },
    { exchange: 'logs', stream: 'audit', key: '#.audit' },
  ]
  const services = Math.max(1, (bindingCount - bindings.length) >> 1)
  for (let k = 0; bindings.length < bindingCount; k++) {
    bindings.push({ exchange: 'logs', stream: `errors-${k}`, key: `svc${k}.error` })
    if (bindings.length < bindingCount) bindings.push({ exchange: 'logs', stream: `all-${k}`, key: `svc${k}.#` })
  }
  return { router: new Router([{ name: 'logs', type: 'topic' }], bindings), services }
}

function keyPool(services: number): string[] {
  const random = lcg(42)
  const keys: string[] = []
  for (let i = 0; i < keyPoolSize; i++) {
    const service = Math.floor(random() * services)
    const level = levels[Math.floor(random() * levels.length)]!
    keys.push(`svc${service}.${level}`)
  }
  return keys
}

function runOnce(router: Router, keys: readonly string[]): { routesPerSecond: number; matched: number } {
  let matched = 0 // consumed below so the loop cannot be optimised away
  const mask = keys.length - 1
  const start = process.hrtime.bigint()
  for (let i = 0; i < routesPerRun; i++) matched += router.route('logs', keys[i & mask]!).streams.length
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return { routesPerSecond: routesPerRun / seconds, matched }
}

interface Row {
  bindings: number
  median: number
  min: number
  max: number
  matchedPerRoute: number
}

function measure(bindingCount: number): Row {
  const { router, services } = buildRouter(bindingCount)
  const keys = keyPool(services)
  runOnce(router, keys) // warm-up: let the JIT settle before timing
  const rates: number[] = []
  let matched = 0
  for (let r = 0; r < runs; r++) {
    const result = runOnce(router, keys)
    rates.push(result.routesPerSecond)
    matched = result.matched
  }
  rates.sort((a, b) => a - b)
  return { bindings: bindingCount, median: rates[runs >> 1]!, min: rates[0]!, max: rates[runs - 1]!, matchedPerRoute: matched / routesPerRun }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

const rows = [measure(10), measure(10_000)]
console.log(`router.bench: topic exchange, ${fmt(routesPerRun)} routes per run, median of ${runs} runs`)
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'}\n`)
console.log('| bindings | routes/s (median) | min – max | streams per route |')
console.log('|---:|---:|---:|---:|')
for (const row of rows) {
  console.log(`| ${fmt(row.bindings)} | ${fmt(row.median)} | ${fmt(row.min)} – ${fmt(row.max)} | ${row.matchedPerRoute.toFixed(2)} |`)
}
const [small, large] = rows as [Row, Row]
console.log(`\nratio 10 / 10,000 bindings: ${(small.median / large.median).toFixed(2)}x`)
