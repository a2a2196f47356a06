// Consumer group soak: `npm run soak:group`, or after a build `node dist/benchmarks/soak-group.js`.
//
// Runs the deterministic simulation of test/consumers/simulation.test.ts (a real group on real
// logs and a real metadata store, a virtual clock, random publish/fetch/ack/nack/timeout/crash/
// tail-cut steps checked against a model) over many more seeds and longer scenarios than
// `npm test` does, bounded in count and in time, and prints totals. Exits 1 if a seed failed.
//
// Options:
//   --seeds=N          seeds to run (default 3000)
//   --from=S           first seed (default 1)
//   --steps=N          steps per seed (default 100)
//   --max-seconds=T    stop starting seeds after T seconds (default 600)
//   --strict=a,b|all   fail on these known issues too (see knownIssues in test/consumers/sim/model.ts)
//   --shrink           shrink each failing seed to a smaller scenario and print it as JSON
//   --known            run the smallest scenario of every known issue, strictly, and say which still fail
//   --dir=PATH         parent of the data dirs (default /dev/shm when there is one, else the OS temp dir)
// Replay one seed: SIM_SEED=1234 SIM_STEPS=100 npx vitest run test/consumers/simulation.test.ts

import { knownScenarios } from '../test/consumers/sim/known-issues.js'
import { knownIssues, type KnownIssue } from '../test/consumers/sim/model.js'
import { defaultRoot, report, runScenario, shrink } from '../test/consumers/sim/run.js'
import { formatStep, scenarioFor } from '../test/consumers/sim/scenario.js'

function option(name: string): string | undefined {
  const arg = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (arg === undefined) return undefined
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : 'true'
}

function count(name: string, fallback: number): number {
  const v = option(name)
  const n = v === undefined ? fallback : Number(v)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a whole number, got ${v}`)
  return n
}

async function runKnown(root: string): Promise<number> {
  let reproduced = 0
  for (const issue of Object.keys(knownIssues) as KnownIssue[]) {
    const scenario = knownScenarios[issue]
    if (scenario === undefined) {
      console.log(`${issue}: no scenario`)
      continue
    }
    const r = await runScenario(scenario, { strict: new Set([issue]), root })
    if (r.ok) console.log(`${issue}: no longer reproduces (${scenario.steps.length} steps): remove it from knownIssues`)
    else {
      reproduced++
      console.log(`${issue}: reproduces at step ${r.failure?.step}: ${r.failure?.message}`)
    }
  }
  console.log(`${reproduced} of ${Object.keys(knownIssues).length} known issues still reproduce`)
  return 0
}

async function main(): Promise<number> {
  const root = option('dir') ?? defaultRoot()
  if (option('known') !== undefined) return runKnown(root)
  const seeds = count('seeds', 3000)
  const from = count('from', 1)
  const steps = count('steps', 100)
  const maxMs = count('max-seconds', 600) * 1000
  const strict = new Set((option('strict') ?? '').split(',').filter((s) => s !== ''))
  const wantShrink = option('shrink') !== undefined
  const started = Date.now()
  const totals = { seeds: 0, passed: 0, failed: 0, stopped: 0, steps: 0, published: 0, deliveries: 0, deaths: 0, reopens: 0, cuts: 0 }
  const tolerated = new Map<string, number>()
  const stoppedBy = new Map<string, number>()
  const failed: number[] = []
  let slowest = 0
  console.log(`soak: seeds ${from}..${from + seeds - 1}, ${steps} steps each, at most ${maxMs / 1000} s, data under ${root}${strict.size > 0 ? `, strict on ${[...strict].join(',')}` : ''}`)
  for (let seed = from; seed < from + seeds; seed++) {
    if (Date.now() - started > maxMs) {
      console.log(`time bound reached after ${totals.seeds} seeds`)
      break
    }
    const scenario = scenarioFor(seed, steps)
    const r = await runScenario(scenario, { strict, root })
    totals.seeds++
    slowest = Math.max(slowest, r.ms)
    for (const [k, v] of Object.entries(r.totals)) totals[k as keyof typeof r.totals] += v
    for (const [k, v] of r.tolerated) tolerated.set(k, (tolerated.get(k) ?? 0) + v)
    if (r.stopped !== undefined) {
      totals.stopped++
      stoppedBy.set(r.stopped.issue, (stoppedBy.get(r.stopped.issue) ?? 0) + 1)
    }
    if (r.ok) totals.passed++
    else {
      totals.failed++
      failed.push(seed)
      if (failed.length <= 3) console.log(`\n${report(r, scenario)}\n`)
      else console.log(`seed ${seed} failed at step ${r.failure?.step}: ${r.failure?.message}`)
      if (wantShrink && r.failure?.simFailure === true) {
        const small = await shrink(scenario, r, { strict, root })
        console.log(`seed ${seed} shrunk to ${small.scenario.steps.length} steps, failing at step ${small.result.failure?.step}: ${small.result.failure?.message}`)
        for (const [i, s] of small.scenario.steps.entries()) console.log(`  ${i}: ${formatStep(s)}`)
        console.log(JSON.stringify(small.scenario))
      }
    }
    if (totals.seeds % 250 === 0) console.log(`… ${totals.seeds} seeds, ${totals.failed} failed, ${Math.round((Date.now() - started) / 1000)} s`)
  }
  const seconds = (Date.now() - started) / 1000
  console.log('')
  console.log(`seeds run        ${totals.seeds} (${totals.passed} passed, ${totals.failed} failed; ${totals.stopped} stopped early at a known issue)`)
  console.log(`steps            ${totals.steps}`)
  console.log(`events published ${totals.published}`)
  console.log(`deliveries       ${totals.deliveries}`)
  console.log(`deaths           ${totals.deaths}`)
  console.log(`reopens          ${totals.reopens} (${totals.cuts} with a tail cut)`)
  console.log(`known issues     ${tolerated.size === 0 ? 'none met' : [...tolerated].map(([k, v]) => `${k} ×${v}`).join(', ')}`)
  if (stoppedBy.size > 0) console.log(`stopped by       ${[...stoppedBy].map(([k, v]) => `${k} ×${v}`).join(', ')}`)
  console.log(`time             ${seconds.toFixed(1)} s (${((seconds * 1000) / Math.max(1, totals.seeds)).toFixed(0)} ms a seed, slowest ${slowest} ms)`)
  if (failed.length > 0) console.log(`failed seeds     ${failed.join(' ')}`)
  return failed.length > 0 ? 1 : 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  },
)
