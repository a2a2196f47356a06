// Top functions by self time in a V8 .cpuprofile (as written by `node --cpu-prof`).
// Usage: node dist/benchmarks/cpuprofile-top.js <file.cpuprofile> [topN=25]

import { readFileSync } from 'node:fs'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

interface Profile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
  readonly startTime: number
  readonly endTime: number
}

const [file, topArg] = process.argv.slice(2)
if (file === undefined) {
  console.error('usage: cpuprofile-top <file.cpuprofile> [topN]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const selfUs = new Map<string, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  // The delta that follows a sample is the time spent in it.
  const dt = profile.timeDeltas[i + 1] ?? 0
  const node = byId.get(profile.samples[i]!)
  if (node === undefined) continue
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : ` ${url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`
  const key = `${functionName === '' ? '(anonymous)' : functionName}${where}`
  selfUs.set(key, (selfUs.get(key) ?? 0) + dt)
  total += dt
}
const busy = total - (selfUs.get('(idle)') ?? 0)
console.log(`profile ${file}: ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms not idle`)
console.log('self ms  % total  % busy  function')
for (const [key, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  const busyPct = key === '(idle)' ? '' : ((us / busy) * 100).toFixed(1)
  console.log(`${(us / 1000).toFixed(1).padStart(7)}  ${((us / total) * 100).toFixed(1).padStart(7)}  ${busyPct.padStart(6)}  ${key}`)
}
