// The fuzzing engine shared by `npm run fuzz` (benchmarks/fuzz.ts, a million cases per parser) and
// the short runs in `npm test` (test/fuzz/*.test.ts): a seeded generator, byte mutators that start
// from real inputs, and a runner that counts outcomes and records findings.
//
// Hand-written rather than fast-check, because a million cases per parser must run in minutes on
// two cores: generating and shrinking through fast-check's arbitraries cost more than the parsers.
// Every case is reproducible from (seed, case index); a finding keeps its input bytes too.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A small, fast, seedable generator (sfc32); Math.random cannot be replayed. */
export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: number) {
    this.#a = 0x9e3779b9
    this.#b = 0x243f6a88
    this.#c = 0xb7e15162
    this.#d = seed >>> 0
    for (let i = 0; i < 12; i++) this.u32()
  }

  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0
    this.#d = (this.#d + 1) | 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) | 0
    this.#c = (this.#c << 21) | (this.#c >>> 11)
    this.#c = (this.#c + t) | 0
    return t >>> 0
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.u32() % n
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1)
  }

  chance(p: number): boolean {
    return this.u32() < p * 4_294_967_296
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }

  /** Mostly small, sometimes large: lengths and counts that reach the edges. */
  size(max: number): number {
    const r = this.int(8)
    if (r < 5) return this.int(Math.min(max, 16) + 1)
    if (r < 7) return this.int(Math.min(max, 256) + 1)
    return this.int(max + 1)
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff
    return b
  }
}

// Bytes that parsers branch on, and integers at the edges of their widths.
const interestingBytes = [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x25, 0x2c, 0x2d, 0x30, 0x31, 0x39, 0x3a, 0x3c, 0x3d, 0x3e, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xbf, 0xc0, 0xce, 0xef, 0xf4, 0xfe, 0xff]
const interestingU32 = [0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0xffff, 0x10000, 0x1_0000_0, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff]

export interface MutateOptions {
  /** Largest output; mutators that grow the input stop here. */
  readonly maxBytes: number
  /** Tokens of the format (keywords, delimiters) to insert or overwrite with. */
  readonly dictionary: readonly Buffer[]
  /** Other inputs to splice from. */
  readonly corpus: readonly Buffer[]
}

/** One to several random edits of `input`: flips, interesting values, inserts, deletes, splices. */
export function mutate(rng: Rng, input: Buffer, opts: MutateOptions): Buffer {
  let b = input
  const edits = 1 + rng.int(rng.chance(0.2) ? 16 : 4)
  for (let e = 0; e < edits; e++) b = mutateOnce(rng, b, opts)
  return b.length > opts.maxBytes ? b.subarray(0, opts.maxBytes) : b
}

function mutateOnce(rng: Rng, b: Buffer, opts: MutateOptions): Buffer {
  const len = b.length
  const at = rng.int(len + 1)
  switch (rng.int(16)) {
    case 0: {
      if (len === 0) return b
      const c = Buffer.from(b)
      c[rng.int(len)]! ^= 1 << rng.int(8)
      return c
    }
    case 1: {
      if (len === 0) return b
      const c = Buffer.from(b)
      c[rng.int(len)] = rng.pick(interestingBytes)
      return c
    }
    case 2: {
      if (len === 0) return b
      const c = Buffer.from(b)
      c[rng.int(len)] = rng.u32() & 0xff
      return c
    }
    case 3:
      return Buffer.concat([b.subarray(0, at), rng.bytes(rng.size(32)), b.subarray(at)])
    case 4: {
      const n = rng.size(len - at)
      return Buffer.concat([b.subarray(0, at), b.subarray(at + n)])
    }
    case 5: {
      // Duplicate a range, sometimes many times: repeated frames, long runs of one token.
      const n = rng.size(len - at)
      const times = rng.chance(0.1) ? rng.range(2, 200) : 1
      const piece = b.subarray(at, at + n)
      const parts = [b.subarray(0, at + n)]
      for (let i = 0; i < times && parts.length * n < opts.maxBytes; i++) parts.push(piece)
      parts.push(b.subarray(at + n))
      return Buffer.concat(parts)
    }
    case 6:
    case 7: {
      const token = rng.pick(opts.dictionary)
      return Buffer.concat([b.subarray(0, at), token, b.subarray(at)])
    }
    case 8: {
      const token = rng.pick(opts.dictionary)
      return Buffer.concat([b.subarray(0, at), token, b.subarray(Math.min(len, at + token.length))])
    }
    case 9: {
      // An integer field at the edge of its width, big-endian as AMQP writes them.
      if (len < 4) return b
      const c = Buffer.from(b)
      const p = rng.int(len - 3)
      const v = rng.pick(interestingU32)
      if (rng.chance(0.5)) c.writeUInt32BE(v >>> 0, p)
      else c.writeUInt16BE(v & 0xffff, p)
      return c
    }
    case 10: {
      // Splice: a head of this input and a tail of another.
      const other = rng.pick(opts.corpus)
      return Buffer.concat([b.subarray(0, at), other.subarray(rng.int(other.length + 1))])
    }
    case 11:
      return b.subarray(0, at) // truncated
    case 12: {
      // A run of digits replaced by a large or odd number: counts, lengths, PRI, ports.
      const digits = b.subarray(at).findIndex((c) => c >= 0x30 && c <= 0x39)
      if (digits === -1) return b
      let end = at + digits
      while (end < len && b[end]! >= 0x30 && b[end]! <= 0x39) end++
      const value = rng.pick(['0', '00', '999999999', '4294967295', '18446744073709551616', '1' + '0'.repeat(rng.range(1, 400)), String(rng.u32()), '-1', '1e400'])
      return Buffer.concat([b.subarray(0, at + digits), Buffer.from(value), b.subarray(end)])
    }
    case 13: {
      // Swap two ranges.
      const n = rng.size(Math.min(64, len - at))
      const at2 = rng.int(len + 1)
      const n2 = rng.size(Math.min(64, len - at2))
      if (at + n > at2) return b
      return Buffer.concat([b.subarray(0, at), b.subarray(at2, at2 + n2), b.subarray(at + n, at2), b.subarray(at, at + n), b.subarray(at2 + n2)])
    }
    case 14: {
      // Invalid or unusual UTF-8: lone continuation bytes, overlongs, surrogates, BOM, U+FFFF.
      const seq = rng.pick([[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xef, 0xbb, 0xbf], [0xef, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x80, 0xa8], [0xf0, 0x9f, 0x92, 0xa9], [0xc3]])
      return Buffer.concat([b.subarray(0, at), Buffer.from(seq), b.subarray(at)])
    }
    default:
      return Buffer.from(rng.pick(opts.corpus)) // a seed as it is
  }
}

/** `bytes` cut into random chunks: whole, byte by byte, or at random places. */
export function randomChunks(rng: Rng, bytes: Buffer): Buffer[] {
  const mode = rng.int(8)
  if (mode === 0 || bytes.length === 0) return [bytes]
  if (mode === 1 && bytes.length <= 4096) {
    const out: Buffer[] = []
    for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1))
    return out
  }
  const out: Buffer[] = []
  let from = 0
  while (from < bytes.length) {
    const n = 1 + rng.size(mode < 5 ? 64 : bytes.length)
    out.push(bytes.subarray(from, from + n))
    from += n
  }
  return out
}

/** A property a parser broke; the runner records it with the input that broke it. */
export class Finding extends Error {
  constructor(
    readonly kind: FindingKind,
    message: string,
  ) {
    super(message)
    this.name = 'Finding'
  }
}

/**
 * crash: an exception other than the parser's documented error type. hang: a case took longer
 * than the time bound. memory: more held or produced than the input and limits allow. unclear:
 * an error without a usable message. wrong: an answer that contradicts the format or a second
 * way of computing it (the same bytes cut into other chunks, or encoded back).
 */
export type FindingKind = 'crash' | 'hang' | 'memory' | 'unclear' | 'wrong'

export function check(condition: boolean, kind: FindingKind, message: () => string): void {
  if (!condition) throw new Finding(kind, message())
}

/** An error message operators can act on: some words, not the whole input echoed back. */
export function checkMessage(message: unknown, what: string, maxChars = 2048): void {
  check(typeof message === 'string' && message.trim().length >= 8, 'unclear', () => `${what}: empty or missing message ${JSON.stringify(message)}`)
  check((message as string).length <= maxChars, 'unclear', () => `${what}: message of ${(message as string).length} chars (over ${maxChars}): ${(message as string).slice(0, 120)}…`)
}

export interface FuzzTarget {
  readonly name: string
  /** What is fuzzed, for the report. */
  readonly what: string
  /** Time one case may take at most, in ms (checked twice before it counts as a hang). */
  readonly caseTimeMs: number
  /** A new input for case `i`. */
  generate(rng: Rng): Buffer
  /** Runs one input through the parser and checks it; returns an outcome label for the counts. */
  run(input: Buffer): string | Promise<string>
}

export interface FindingRecord {
  readonly target: string
  readonly kind: FindingKind
  readonly message: string
  readonly caseIndex: number
  /** The input, base64 (cut at 4 KiB). */
  readonly input: string
  readonly inputBytes: number
}

export interface RunReport {
  readonly target: string
  readonly cases: number
  readonly ms: number
  readonly outcomes: ReadonlyMap<string, number>
  readonly findings: readonly FindingRecord[]
  /** Findings by kind and first line of message, with how many cases hit each. */
  readonly findingCounts: ReadonlyMap<string, number>
  readonly slowestMs: number
  readonly heapMaxBytes: number
  readonly rssMaxBytes: number
  readonly inputBytes: number
  /** True when the time bound stopped the run before `cases`. */
  readonly stoppedEarly: boolean
}

export interface RunOptions {
  readonly seed: number
  readonly cases: number
  /** Stop after this much wall time, whatever the count. */
  readonly maxMs: number
  /** Findings kept with their input (all are counted). */
  readonly keepFindings?: number
  /** Process heap above this is a memory finding. */
  readonly heapLimitBytes?: number
  /** Called every `progressEvery` cases. */
  readonly onProgress?: (done: number, ms: number) => void
  readonly progressEvery?: number
}

function describeThrown(err: unknown): { kind: FindingKind; message: string } {
  if (err instanceof Finding) return { kind: err.kind, message: err.message }
  const e = err as { name?: string; message?: string; stack?: string }
  const where = e.stack?.split('\n').slice(1, 3).map((l) => l.trim()).join(' ← ') ?? ''
  return { kind: 'crash', message: `${e.name ?? typeof err}: ${String(e.message ?? err).slice(0, 300)} ${where}` }
}

/** Runs `cases` generated inputs through a target; never throws for what the target does. */
export async function runTarget(target: FuzzTarget, opts: RunOptions): Promise<RunReport> {
  const rng = new Rng(opts.seed)
  const outcomes = new Map<string, number>()
  const findingCounts = new Map<string, number>()
  const findings: FindingRecord[] = []
  const keep = opts.keepFindings ?? 20
  const heapLimit = opts.heapLimitBytes ?? 1024 ** 3
  const started = performance.now()
  let slowest = 0
  let heapMax = 0
  let rssMax = 0
  let inputBytes = 0
  let nextProgress = opts.progressEvery ?? 100_000
  let i = 0
  const record = (kind: FindingKind, message: string, input: Buffer): void => {
    const key = `${kind}: ${message.split('\n')[0]!.replace(/\d+/g, 'N').slice(0, 160)}`
    const seen = findingCounts.get(key) ?? 0
    findingCounts.set(key, seen + 1)
    // One example of each distinct finding first, then more up to `keep`.
    if (seen === 0 || findings.length < keep) {
      if (findings.length < keep * 4) findings.push({ target: target.name, kind, message, caseIndex: i, input: input.subarray(0, 4096).toString('base64'), inputBytes: input.length })
    }
  }
  for (; i < opts.cases; i++) {
    if ((i & 1023) === 0) {
      const now = performance.now()
      if (now - started > opts.maxMs) break
      const mem = process.memoryUsage()
      heapMax = Math.max(heapMax, mem.heapUsed + mem.external)
      rssMax = Math.max(rssMax, mem.rss)
      if (mem.heapUsed + mem.external > heapLimit) record('memory', `process heap ${mem.heapUsed + mem.external} bytes over ${heapLimit}`, Buffer.alloc(0))
      if (opts.onProgress !== undefined && i >= nextProgress) {
        opts.onProgress(i, now - started)
        nextProgress += opts.progressEvery ?? 100_000
      }
    }
    const input = target.generate(rng)
    inputBytes += input.length
    const t0 = performance.now()
    let outcome: string
    try {
      const r = target.run(input)
      outcome = typeof r === 'string' ? r : await r
    } catch (err) {
      const { kind, message } = describeThrown(err)
      record(kind, message, input)
      outcome = `finding:${kind}`
    }
    const ms = performance.now() - t0
    if (ms > slowest) slowest = ms
    if (ms > target.caseTimeMs) {
      // A GC pause or a busy neighbour can stall one case: it is a hang only if it is slow again,
      // in this process's CPU as well (on a saturated machine the clock runs on while it waits).
      const t1 = performance.now()
      const cpu0 = process.cpuUsage()
      try {
        const r = target.run(input)
        if (typeof r !== 'string') await r
      } catch {
        // already recorded
      }
      const again = performance.now() - t1
      const cpu = process.cpuUsage(cpu0)
      const againCpu = (cpu.user + cpu.system) / 1000
      if (again > target.caseTimeMs && againCpu > target.caseTimeMs) {
        record('hang', `case took ${ms.toFixed(0)} ms and ${again.toFixed(0)} ms again, ${againCpu.toFixed(0)} ms of it CPU (bound ${target.caseTimeMs} ms) for ${input.length} input bytes`, input)
      }
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
  }
  const mem = process.memoryUsage()
  return {
    target: target.name,
    cases: i,
    ms: performance.now() - started,
    outcomes,
    findings,
    findingCounts,
    slowestMs: slowest,
    heapMaxBytes: Math.max(heapMax, mem.heapUsed + mem.external),
    rssMaxBytes: Math.max(rssMax, mem.rss),
    inputBytes,
    stoppedEarly: i < opts.cases,
  }
}

/** The repository root (where package.json is), from source or from dist/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sluice') return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the repository root (package.json of sluice)')
    dir = up
  }
}

/** A finding's input, for a reproduction. */
export function findingInput(f: FindingRecord): Buffer {
  return Buffer.from(f.input, 'base64')
}
