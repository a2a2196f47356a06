// Configuration text that is not what an operator writes: deep nesting, alias bombs, many keys,
// long keys, sections of the wrong type. Each gets problems listed, in bounded time and memory,
// and nothing thrown. Found by fuzzing (benchmarks/fuzz.ts, target config-yaml) and by hand.

import { describe, expect, it } from 'vitest'
import { parseConfig, validateConfigText } from '../../src/config/index.js'
import { SluiceError } from '../../src/errors.js'

function problemsOf(text: string): string[] {
  const r = validateConfigText(text, { env: {} })
  if (r.ok) throw new Error('expected problems')
  return [...r.problems]
}

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = performance.now()
  const value = f()
  return { value, ms: performance.now() - t0 }
}

describe('hostile configuration text', () => {
  it('deep flow and block nesting is refused before the YAML composer recurses (it overflowed, or aborted V8)', () => {
    const flow = `streams: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`
    expect(problemsOf(flow)).toEqual(['line 1, col 73: YAML syntax: mappings and lists nested more than 64 levels deep'])
    const flowMap = `streams: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}\n`
    expect(problemsOf(flowMap)).toEqual([expect.stringMatching(/nested more than 64 levels deep/)])
    let block = ''
    for (let i = 0; i < 2000; i++) block += `${' '.repeat(i)}k${i}:\n`
    expect(problemsOf(block)).toEqual([expect.stringMatching(/^line 65, col 65: YAML syntax: mappings and lists nested more than 64 levels deep/)])
    // 64 levels are fine as YAML (the schema then says what it thinks of them).
    const ok = `streams:\n  s: { retention: ${'['.repeat(60)}${']'.repeat(60)} }\n`
    expect(problemsOf(ok).join('\n')).not.toMatch(/nested/)
  })

  it('aliases nested through each other cannot build a deeper tree than the text', () => {
    let chain = 'a0: &a0 [x]\n'
    for (let i = 1; i < 200; i++) chain += `a${i}: &a${i} [*a${i - 1}]\n`
    const { value, ms } = timed(() => problemsOf(chain))
    expect(value).toEqual([expect.stringMatching(/^a63(\[0\]){63} \(line 1, col 9\): mappings and lists nested more than 64 levels deep through aliases$/)])
    expect(ms).toBeLessThan(5000) // each use of an alias walked the document to resolve it: 4.9 s
  })

  it('a billion-laughs alias bomb is refused, not expanded', () => {
    let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'
    for (let i = 1; i < 9; i++) bomb += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`
    const { value, ms } = timed(() => problemsOf(bomb))
    expect(value).toEqual([expect.stringMatching(/aliases expand the configuration by more than 100000 nodes/)])
    expect(ms).toBeLessThan(5000) // 10^9 nodes when expanded
  })

  it('shared settings through aliases still work', () => {
    const r = validateConfigText('streams:\n  a: &s { retention: { maxAge: 7d } }\n  b: *s\n', { env: {} })
    expect(r.ok).toBe(true)
  })

  it('40,000 keys take linear time: duplicate keys are still found, with the same message', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join('\n')
    const { value, ms } = timed(() => problemsOf(keys))
    expect(value).toHaveLength(40_000)
    expect(ms).toBeLessThan(15_000) // the quadratic duplicate check took about 33 s
    expect(problemsOf('streams:\n  app-logs: {}\n  app-logs: {}\n')).toEqual(['line 3, col 3: YAML syntax: Map keys must be unique'])
    expect(problemsOf('streams: { a: {}, b: {}, a: {} }\n')).toEqual(['line 1, col 26: YAML syntax: Map keys must be unique'])
  })

  it('a long unknown key gets no edit-distance table as large as the key, and is not echoed whole', () => {
    for (const text of [`{ "${'x'.repeat(1_000_000)}": 1 }\n`, `? ${'x'.repeat(1_000_000)}\n: 1\n`, `streams: { "${'y'.repeat(100_000)}": {} }\n`]) {
      const { value, ms } = timed(() => problemsOf(text))
      expect(value).toHaveLength(1)
      expect(value[0]!.length).toBeLessThan(2200)
      expect(value[0]).toMatch(/…/)
      expect(ms).toBeLessThan(5000)
    }
  })

  it('a section of the wrong type is a problem, not a TypeError (auth: 5 threw)', () => {
    expect(problemsOf('auth: 5\n')).toEqual(['auth (line 1, col 7): expected a mapping of anonymous, users, apiKeys, maxFailureDelay, maxPendingLoginsPerAddress, maxTrackedAddresses, got 5'])
    expect(() => parseConfig('auth: [1]\n', { env: {} })).toThrow(SluiceError)
  })

  it('two YAML documents are a problem', () => {
    expect(problemsOf('streams: {}\n---\nstreams: {}\n')).toEqual([expect.stringMatching(/YAML syntax: the file holds more than one YAML document/)])
  })
})
