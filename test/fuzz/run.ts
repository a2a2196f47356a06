// Runs a fuzz target from benchmarks/fuzz for a few thousand cases inside `npm test`; the full
// million-case runs are `npm run fuzz` (benchmarks/RESULTS.md, "Fuzzing").

import { expect } from 'vitest'
import { runTarget, type RunReport } from '../../benchmarks/fuzz/engine.js'
import { targetFactories } from '../../benchmarks/fuzz/targets.js'

/** Runs `cases` cases with a fixed seed and expects no finding; returns the report for more checks. */
export async function fuzz(name: string, cases: number, seed = 1): Promise<RunReport> {
  const report = await runTarget(targetFactories[name]!(), { seed, cases, maxMs: 120_000, keepFindings: 5 })
  const found = report.findings.map((f) => `${f.kind}: ${f.message.slice(0, 300)} (replay: npm run fuzz -- --replay=${f.target}:${f.input.slice(0, 400)})`)
  expect(found).toEqual([])
  expect(report.cases).toBe(cases)
  return report
}

/** The outcome labels a run saw, to show the cases reach both the accepting and the refusing paths. */
export const outcomes = (r: RunReport): string[] => [...r.outcomes.keys()]
