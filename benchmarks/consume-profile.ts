// Summary of a V8 .cpuprofile (from `node --cpu-prof`) for the consume benchmark (issue 5): top
// functions by self time, our own code (src/) by total (inclusive) time, and self time by area.
// Positions in dist/ are mapped back to the .ts source through the build's source maps.
//
// The same approach as benchmarks/cpuprofile-summary.ts (the HTTP benchmark's), kept separate
// so this benchmark does not depend on a file that was still being edited when it was written.
//
//   node dist/benchmarks/consume-profile.js FILE.cpuprofile [--top=N]

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
  /** share of busy (non-idle) time, % */
  readonly pct: number
  readonly ms: number
}

export interface ProfileSummary {
  readonly file: string
  readonly wallMs: number
  readonly idlePct: number
  readonly busyMs: number
  /** self time by area, % of busy time */
  readonly areas: Record<Area, number>
  readonly topSelf: readonly FnStat[]
  readonly topSrcTotal: readonly FnStat[]
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const maps = new Map<string, SourceMap | undefined>()

function mapPosition(file: string, line: number, column: number): { file: string; line: number } {
  if (!maps.has(file)) {
    const mapFile = `${file}.map`
    maps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload) : undefined)
  }
  const sm = maps.get(file)
  if (sm === undefined) return { file, line: line + 1 }
  const e = sm.findEntry(line, column) as { originalSource?: string; originalLine?: number }
  if (e.originalSource === undefined || e.originalLine === undefined) return { file, line: line + 1 }
  const src = e.originalSource.startsWith('file:') ? fileURLToPath(e.originalSource) : resolve(dirname(file), e.originalSource)
  return { file: src, line: e.originalLine + 1 }
}

const fastifyPkgs = new Set(['fastify', 'find-my-way', 'light-my-request', 'avvio', 'fast-json-stringify', 'secure-json-parse'])

function classify(cf: CallFrame): { area: Area; where: string } {
  const name = cf.functionName
  if (name === '(idle)') return { area: 'idle', where: '' }
  if (name === '(garbage collector)') return { area: 'gc', where: '' }
  if (name === '(program)') return { area: 'program', where: '' }
  const url = cf.url
  if (url === '') return { area: 'node', where: '(native)' }
  if (url.startsWith('node:')) return { area: 'node', where: `${url}:${cf.lineNumber + 1}` }
  if (!url.startsWith('file:')) return { area: 'other', where: url }
  const path = fileURLToPath(url)
  const rel = relative(repoRoot, path)
  if (rel.startsWith('node_modules/')) {
    const parts = rel.split('/')
    const pkg = parts[1]!.startsWith('@') ? `${parts[1]}/${parts[2]}` : parts[1]!
    return { area: fastifyPkgs.has(pkg) || pkg.startsWith('@fastify/') ? 'fastify' : 'deps', where: `${rel}:${cf.lineNumber + 1}` }
  }
  if (rel.startsWith('dist/src/')) {
    const m = mapPosition(path, cf.lineNumber, cf.columnNumber)
    return { area: 'src', where: `${relative(repoRoot, m.file)}:${m.line}` }
  }
  return { area: 'other', where: `${rel}:${cf.lineNumber + 1}` }
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  // Time of a sample: the delta to the next one (the last gets the mean).
  const total = p.samples.length
  const meanUs = total > 0 ? (p.endTime - p.startTime) / total : 0
  const hits = new Map<number, number>()
  for (let i = 0; i < total; i++) {
    const us = i + 1 < total ? p.timeDeltas[i + 1]! : meanUs
    hits.set(p.samples[i]!, (hits.get(p.samples[i]!) ?? 0) + Math.max(0, us))
  }
  const info = new Map<number, { key: string; name: string; area: Area; where: string }>()
  const nodeInfo = (id: number): { key: string; name: string; area: Area; where: string } => {
    let v = info.get(id)
    if (v === undefined) {
      const cf = byId.get(id)!.callFrame
      const { area, where } = classify(cf)
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
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = nodeInfo(cur)
      if (seen.has(k.key)) continue // recursion counted once
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
  for (const k of Object.keys(areaPct) as Area[]) areaPct[k] = k === 'idle' || busyUs <= 0 ? 0 : (areas[k] / busyUs) * 100
  return { file, wallMs: (p.endTime - p.startTime) / 1000, idlePct: allUs > 0 ? (areas.idle / allUs) * 100 : 0, busyMs: busyUs / 1000, areas: areaPct, topSelf, topSrcTotal }
}

export function formatProfile(s: ProfileSummary): string {
  const pct = (x: number): string => `${x.toFixed(1)}%`
  const out: string[] = []
  out.push(`profile ${s.file}: ${(s.wallMs / 1000).toFixed(1)} s wall, main thread idle ${pct(s.idlePct)}; percentages are of busy time (${(s.busyMs / 1000).toFixed(1)} s)`)
  out.push(
    `self time by area: ${Object.entries(s.areas)
      .filter(([k]) => k !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${pct(v)}`)
      .join(', ')}`,
  )
  out.push('', '| # | top self time | where | self |', '|---|---|---|---|')
  s.topSelf.forEach((f, i) => out.push(`| ${i + 1} | ${f.name} | ${f.where} | ${pct(f.pct)} |`))
  out.push('', '| # | src/ by total time | where | total |', '|---|---|---|---|')
  s.topSrcTotal.forEach((f, i) => out.push(`| ${i + 1} | ${f.name} | ${f.where} | ${pct(f.pct)} |`))
  return out.join('\n')
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write('usage: consume-profile.js FILE.cpuprofile [--top=N]\n')
    process.exit(2)
  }
  const topArg = process.argv.find((a) => a.startsWith('--top='))
  process.stdout.write(`${formatProfile(summarizeProfile(file, topArg === undefined ? 15 : Number(topArg.slice(6))))}\n`)
}
