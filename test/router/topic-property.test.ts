import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Router } from '../../src/router/index.js'

// A deliberately naive matcher, written from RabbitMQ's documented rules, to check the trie against.
const split = (s: string): string[] => (s === '' ? [] : s.split('.'))

function referenceMatch(pattern: readonly string[], key: readonly string[]): boolean {
  if (pattern.length === 0) return key.length === 0
  const [head, ...rest] = pattern
  if (head === '#') return referenceMatch(rest, key) || (key.length > 0 && referenceMatch(pattern, key.slice(1)))
  if (key.length === 0) return false
  return (head === '*' || head === key[0]) && referenceMatch(rest, key.slice(1))
}

// A tiny alphabet, the empty word included, so random patterns and keys collide often.
const keyArb = fc.array(fc.constantFrom('a', 'b', ''), { maxLength: 6 }).map((words) => words.join('.'))
const patternArb = fc.array(fc.constantFrom('a', 'b', '', '*', '#'), { maxLength: 6 }).map((words) => words.join('.'))

function expected(patterns: readonly string[], key: string): string[] {
  const out: string[] = []
  patterns.forEach((p, i) => {
    if (referenceMatch(split(p), split(key))) out.push(`s${i}`)
  })
  return out
}

describe('topic trie agrees with a reference matcher', () => {
  test('one binding, one key', () => {
    fc.assert(
      fc.property(patternArb, keyArb, (pattern, key) => {
        const r = new Router([{ name: 't', type: 'topic' }], [{ exchange: 't', stream: 's', key: pattern }])
        expect(r.route('t', key).streams.length === 1).toBe(referenceMatch(split(pattern), split(key)))
      }),
      { numRuns: 3000 },
    )
  })

  test('many bindings in one trie, several keys', () => {
    fc.assert(
      fc.property(fc.array(patternArb, { maxLength: 25 }), fc.array(keyArb, { minLength: 1, maxLength: 8 }), (patterns, keys) => {
        const r = new Router([{ name: 't', type: 'topic' }], patterns.map((key, i) => ({ exchange: 't', stream: `s${i}`, key })))
        for (const key of keys) expect([...r.route('t', key).streams].sort()).toEqual(expected(patterns, key).sort())
      }),
      { numRuns: 1000 },
    )
  })

  test('after unbinding a random subset, the pruned trie still agrees', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(patternArb, fc.boolean()), { maxLength: 25 }), fc.array(keyArb, { minLength: 1, maxLength: 8 }), (entries, keys) => {
        const r = new Router([{ name: 't', type: 'topic' }], entries.map(([key], i) => ({ exchange: 't', stream: `s${i}`, key })))
        entries.forEach(([key, drop], i) => {
          if (drop) r.unbind({ exchange: 't', stream: `s${i}`, key })
        })
        const kept = entries.map(([key, drop]) => (drop ? null : key))
        for (const key of keys) {
          const want = kept.flatMap((p, i) => (p !== null && referenceMatch(split(p), split(key)) ? [`s${i}`] : []))
          expect([...r.route('t', key).streams].sort()).toEqual(want.sort())
        }
      }),
      { numRuns: 1000 },
    )
  })
})
