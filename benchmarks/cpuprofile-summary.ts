// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, top functions
// of our own code (src/) by total (inclusive) time, and self time by area (our code, fastify,
// other dependencies, Node internals, GC). Positions in dist/ are mapped back to the .ts source
// through the build's source maps.
//
//   node dist/benchmarks/cpuprofile-summary.js FILE.cpuprofile [--top=N] [--root=DIR]

import { existsSync, readFileSync } from 'node:fs'
import { SourceMap, type SourceMapPayload } from 'node:module'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly hitCount?: number
  readonly children?: readonly number[]
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export type Area = 'src' | 'fastify' | 'deps' | 'node' | 'gc' | 'program' | 'idle' | 'other'

export interface FnStat {
  readonly name: string
  readonly where: string
  readonly area: Area
  /** share of busy (non-idle) samples, in % */
  readonly pct: number
  readonly ms: number
}

export interface ProfileSummary {
  readonly file: string
  readonly wallMs: number
  readonly samples: number
  /** share of all samples in which the main thread was idle (waiting in the event loop), in % */
  readonly idlePct: number
  readonly busyMs: number
  readonly areas: Record<Area, number>
  readonly topSelf: readonly FnStat[]
  readonly topSrcTotal: readonly FnStat[]
}

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, '..', '..')

const sourceMaps = new Map<string, SourceMap | undefined>()

function mapPosition(file: string, line: number, column: number): { file: string; line: number } {
  let sm = sourceMaps.get(file)
  if (!sourceMaps.has(file)) {
    const mapFile = `${file}.map`
    sm = existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload) : undefined
    sourceMaps.set(file, sm)
  }
  if (sm === undefined) return { file, line: line + 1 }
  const e = sm.findEntry(line, column) as { originalSource?: string; originalLine?: number }
  if (e.originalSource === undefined || e.originalLine === undefined) return { file, line: line + 1 }
  const src = e.originalSource.startsWith('file:') ? fileURLToPath(e.originalSource) : resolve(dirname(file), e.originalSource)
  return { file: src, line: e.originalLine + 1 }
}

/** fastify and the packages it is built from: the HTTP framework's own share. */
const fastifyPackages = new Set(['fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'fast-querystring', 'fast-uri', 'secure-json-parse', 'process-warning', 'abstract-logging', 'toad-cache', 'rfdc', 'json-schema-ref-resolver', 'fast-decode-uri-component', 'safe-regex2', 'ret'])

function classify(cf: CallFrame, root: string): { area: Area; where: string } {
  const name = cf.functionName
  if (name === '(idle)') return { area: 'idle', where: '' }
  if (name === '(garbage collector)') return { area: 'gc', where: '' }
  if (name === '(program)') return { area: 'program', where: '' }
  const url = cf.url
  if (url === '') return { area: 'node', where: '(native)' }
  if (url.startsWith('node:')) return { area: 'node', where: `${url}:${cf.lineNumber + 1}` }
  if (!url.startsWith('file:')) return { area: 'other', where: url }
  const path = fileURLToPath(url)
  // Dependencies may sit behind a symlinked node_modules: name them by what follows it.
  const nm = path.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length)
    const parts = rest.split('/')
    const pkg = parts.slice(0, parts[0]!.startsWith('@') ? 2 : 1).join('/')
    const area: Area = fastifyPackages.has(pkg) || pkg.startsWith('@fastify/') ? 'fastify' : 'deps'
    return { area, where: `node_modules/${rest}:${cf.lineNumber + 1}` }
  }
  const rel = relative(root, path)
  if (rel.startsWith('dist/src/')) {
    const m = mapPosition(path, cf.lineNumber, cf.columnNumber)
    return { area: 'src', where: `${relative(root, m.file)}:${m.line}` }
  }
  return { area: 'other', where: `${rel}:${cf.lineNumber + 1}` }
}

/**
 * `root` is the directory holding the dist/ (and node_modules/) the profiled process ran from:
 * the repository, or a copy of its build.
 */
export function summarizeProfile(file: string, top = 15, root = repoRoot, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  // Time per sample: the delta to the next sample (the last one gets the mean).
  // Sample times are on the monotonic clock (as process.hrtime), so a window from another
  // process on this machine selects the samples taken in it.
  const hits = new Map<number, number>()
  const all = p.samples.length
  const meanUs = all > 0 ? (p.endTime - p.startTime) / all : 0
  let total = 0
  let t = p.startTime
  let first = Number.POSITIVE_INFINITY
  let last = 0
  for (let i = 0; i < all; i++) {
    t += p.timeDeltas[i]!
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) continue
    total++
    first = Math.min(first, t)
    last = Math.max(last, t)
    const us = i + 1 < all ? p.timeDeltas[i + 1]! : meanUs
    hits.set(p.samples[i]!, (hits.get(p.samples[i]!) ?? 0) + Math.max(0, us))
  }
  if (total === 0) throw new Error(`no samples of ${file} fall in the window`)
  const info = new Map<number, { key: string; name: string; area: Area; where: string }>()
  const nodeInfo = (id: number): { key: string; name: string; area: Area; where: string } => {
    let v = info.get(id)
    if (v === undefined) {
      const cf = byId.get(id)!.callFrame
      const { area, where } = classify(cf, root)
      const name = cf.functionName === '' ? '(anonymous)' : cf.functionName
      v = { key: `${name}@${where}`, name, area, where }
      info.set(id, v)
    }
    return v
  }
  const selfUs = new Map<string, number>()
  const totalUs = new Map<string, number>()
  const areas: Record<Area, number> = { src: 0, fastify: 0, deps: 0, node: 0, gc: 0, program: 0, idle: 0, other: 0 }
  let allUs = 0
  for (const [id, us] of hits) {
    const me = nodeInfo(id)
    allUs += us
    areas[me.area] += us
    selfUs.set(me.key, (selfUs.get(me.key) ?? 0) + us)
    // Inclusive time: once per distinct function on the stack (recursion is not double counted).
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = nodeInfo(cur)
      if (seen.has(k.key)) continue
      seen.add(k.key)
      totalUs.set(k.key, (totalUs.get(k.key) ?? 0) + us)
    }
  }
  const busyUs = allUs - areas.idle
  const meta = new Map<string, { name: string; area: Area; where: string }>()
  for (const v of info.values()) meta.set(v.key, v)
  const stat = (key: string, us: number): FnStat => {
    const m = meta.get(key)!
    return { name: m.name, where: m.where, area: m.area, pct: busyUs > 0 ? (us / busyUs) * 100 : 0, ms: us / 1000 }
  }
  const topSelf = [...selfUs]
    .filter(([k]) => meta.get(k)!.area !== 'idle')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => stat(k, us))
  const topSrcTotal = [...totalUs]
    .filter(([k]) => meta.get(k)!.area === 'src')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => stat(k, us))
  const areaPct = { ...areas }
  for (const k of Object.keys(areaPct) as Area[]) areaPct[k] = k === 'idle' ? 0 : busyUs > 0 ? (areas[k] / busyUs) * 100 : 0
  return {
    file,
    wallMs: window === undefined ? (p.endTime - p.startTime) / 1000 : (last - first) / 1000,
    samples: total,
    idlePct: allUs > 0 ? (areas.idle / allUs) * 100 : 0,
    busyMs: busyUs / 1000,
    areas: areaPct,
    topSelf,
    topSrcTotal,
  }
}

export function formatProfile(s: ProfileSummary): string {
  const out: string[] = []
  const pct = (x: number): string => `${x.toFixed(1)}%`
  out.push(`profile ${s.file}: ${(s.wallMs / 1000).toFixed(1)} s wall, ${s.samples} samples, main thread idle ${pct(s.idlePct)}; percentages below are of busy time (${(s.busyMs / 1000).toFixed(1)} s)`)
  out.push(
    `self time by area: ${Object.entries(s.areas)
      .filter(([k]) => k !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${pct(v)}`)
      .join(', ')}`,
  )
  out.push('', '| # | top self time | where | self |', '|---|---|---|---|')
  s.topSelf.forEach((f, i) => out.push(`| ${i + 1} | ${f.name} | ${f.where} | ${pct(f.pct)} |`))
  out.push('', '| # | our code (src/) by total time | where | total |', '|---|---|---|---|')
  s.topSrcTotal.forEach((f, i) => out.push(`| ${i + 1} | ${f.name} | ${f.where} | ${pct(f.pct)} |`))
  return out.join('\n')
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write('usage: cpuprofile-summary.js FILE.cpuprofile [--top=N]\n')
    process.exit(2)
  }
  const topArg = process.argv.find((a) => a.startsWith('--top='))
  const rootArg = process.argv.find((a) => a.startsWith('--root='))
  process.stdout.write(`${formatProfile(summarizeProfile(file, topArg === undefined ? 15 : Number(topArg.slice(6)), rootArg === undefined ? repoRoot : resolve(rootArg.slice(7))))}\n`)
}
