#!/usr/bin/env node
// Compiles only when a source changed since the last build, so `npm start` and `npm run sluice`
// work on a fresh clone (they build first) and start at once after (no tsc run of several seconds
// to find nothing to do). A build is stale when a file under src/ or benchmarks/, a tsconfig or
// the lockfile is newer than dist/.tsbuildinfo, the stamp tsc writes (tsconfig.build.json).
// The management UI (src/ui, built by scripts/build-ui.mjs into dist/ui) has its own stamp,
// dist/ui/app.js: a change there rebuilds the UI alone, in well under a second.
//
//   node scripts/build-if-stale.mjs              build if stale
//   node scripts/build-if-stale.mjs --run ARGS   build if stale, then run `sluice ARGS` in this process
//   node scripts/build-if-stale.mjs --check      say whether it is stale (exit 1) or not (exit 0); build nothing
//
// SLUICE_BUILD_ROOT names another tree to look at (for tests).

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = process.env.SLUICE_BUILD_ROOT ?? join(dirname(fileURLToPath(import.meta.url)), '..')
const stamp = join(root, 'dist', '.tsbuildinfo')
const sourceDirs = ['src', 'benchmarks']
const sourceFiles = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json']

const uiSource = join(root, 'src', 'ui')
const uiStamp = join(root, 'dist', 'ui', 'app.js')

/** The newest source file under `dir` newer than `since`, if any; `skip` is a directory left out. */
function newerUnder(dir, since, pattern = /\.(ts|mts|json)$/, skip = uiSource) {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return undefined
  }
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) {
      if (e.name === 'node_modules' || e.name === 'results' || e.name === 'tmp' || path === skip) continue
      const found = newerUnder(path, since, pattern, skip)
      if (found !== undefined) return found
    } else if (pattern.test(e.name) && statSync(path).mtimeMs > since) return path
  }
  return undefined
}

/** Why the build is stale, or undefined when it is not. */
function staleness() {
  if (!existsSync(stamp) || !existsSync(join(root, 'dist', 'src', 'cli.js'))) return 'no build yet'
  const since = statSync(stamp).mtimeMs
  for (const f of sourceFiles) {
    const path = join(root, f)
    if (existsSync(path) && statSync(path).mtimeMs > since) return `${f} changed`
  }
  for (const d of sourceDirs) {
    const found = newerUnder(join(root, d), since)
    if (found !== undefined) return `${relative(root, found)} changed`
  }
  return undefined
}

/** Why the UI's build is stale; undefined when it is not, or when the tree has no UI. */
function uiStaleness() {
  if (!existsSync(uiSource)) return undefined
  if (!existsSync(uiStamp) || !existsSync(join(root, 'dist', 'ui', 'index.html'))) return 'no UI build yet'
  const since = statSync(uiStamp).mtimeMs
  const lock = join(root, 'package-lock.json')
  if (existsSync(lock) && statSync(lock).mtimeMs > since) return 'package-lock.json changed'
  const found = newerUnder(uiSource, since, /\.(ts|tsx|css|html|json)$/, undefined)
  return found === undefined ? undefined : `${relative(root, found)} changed`
}

const args = process.argv.slice(2)
const reason = staleness()
const uiReason = uiStaleness()
if (args[0] === '--check') {
  const why = [reason, uiReason].filter((r) => r !== undefined)
  process.stdout.write(why.length === 0 ? 'fresh\n' : `stale: ${why.join('; ')}\n`)
  process.exit(why.length === 0 ? 0 : 1)
}
if (reason !== undefined) {
  process.stderr.write(`sluice: compiling TypeScript (${reason})...\n`)
  const started = Date.now()
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) {
    process.stderr.write(`sluice: the build failed (tsc exited with ${r.status ?? r.signal}); fix the errors above, or run \`npm run build\` to see them again\n`)
    process.exit(1)
  }
  // tsc leaves its stamp alone when nothing it cares about changed (a file touched, not edited):
  // touch it, so the next start does not compile again.
  const now = new Date()
  utimesSync(stamp, now, now)
  process.stderr.write(`sluice: compiled in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
}
if (uiReason !== undefined) {
  process.stderr.write(`sluice: building the UI (${uiReason})...\n`)
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-ui.mjs')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) {
    process.stderr.write(`sluice: the UI build failed (exit ${r.status ?? r.signal}); run \`npm run build\` to see it again\n`)
    process.exit(1)
  }
}
if (args[0] === '--run') {
  // The CLI reads process.argv from index 2: drop `--run` so it sees only its own arguments.
  process.argv.splice(2, 1)
  await import(pathToFileURL(join(root, 'dist', 'src', 'cli.js')).href)
}
