// Where a benchmark writes what it measured. The tracked files (benchmarks/results/*, the
// RESULTS.md sections, peak.svg) change only when a run is asked to (`--record`), so running a
// benchmark to look at a figure leaves `git status` clean; otherwise the same files go to a
// directory under the system's temp dir, which the run prints.

import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The checkout: the nearest directory above this file whose package.json is Sluice's. */
export function findRepoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const pkg = join(d, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sluice') return d
    d = dirname(d)
  }
  return process.cwd()
}

/** Whether the run was asked to update the tracked results. */
export function recordRequested(argv: readonly string[] = process.argv): boolean {
  return argv.includes('--record')
}

/** The directory results go to, made if missing: benchmarks/results with --record, else a temp one. */
export function resultsDir(record: boolean): string {
  const dir = record ? join(findRepoRoot(), 'benchmarks', 'results') : join(tmpdir(), 'sluice-bench-results')
  mkdirSync(dir, { recursive: true })
  return dir
}
