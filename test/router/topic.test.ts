import { describe, expect, test } from 'vitest'
import { Router, type BindingDef } from '../../src/router/index.js'

function topicRouter(patterns: ReadonlyArray<readonly [key: string, stream: string]>): Router {
  return new Router(
    [{ name: 't', type: 'topic' }],
    patterns.map(([key, stream]) => ({ exchange: 't', stream, key })),
  )
}

const sorted = (streams: readonly string[]) => [...streams].sort()

// The binding set and expectations of RabbitMQ's own topic exchange test (bindings_SUITE /
// unit_access_control topic1), minus its binding-arguments aliasing case, which headers
// exchanges cover here.
const rabbitBindings: ReadonlyArray<readonly [string, string]> = [
  ['a.b.c', 't1'], ['a.*.c', 't2'], ['a.#.b', 't3'], ['a.b.b.c', 't4'], ['#', 't5'], ['#.#', 't6'],
  ['#.b', 't7'], ['*.*', 't8'], ['a.*', 't9'], ['*.b.c', 't10'], ['a.#', 't11'], ['a.#.#', 't12'],
  ['b.b.c', 't13'], ['a.b.b', 't14'], ['a.b', 't15'], ['b.c', 't16'], ['', 't17'], ['*.*.*', 't18'],
  ['vodka.martini', 't19'], ['a.b.c', 't20'], ['*.#', 't21'], ['#.*.#', 't22'], ['*.#.#', 't23'],
  ['#.#.#', 't24'], ['*', 't25'], ['#.b.#', 't26'], ['args-test', 't27'],
]

describe('topic exchange: RabbitMQ topic suite', () => {
  const router = topicRouter(rabbitBindings)

  test.each<[string, string[]]>([
    ['a.b.c', ['t1', 't2', 't5', 't6', 't10', 't11', 't12', 't18', 't20', 't21', 't22', 't23', 't24', 't26']],
    ['a.b', ['t3', 't5', 't6', 't7', 't8', 't9', 't11', 't12', 't15', 't21', 't22', 't23', 't24', 't26']],
    ['a.b.b', ['t3', 't5', 't6', 't7', 't11', 't12', 't14', 't18', 't21', 't22', 't23', 't24', 't26']],
    ['', ['t5', 't6', 't17', 't24']],
    ['b.c.c', ['t5', 't6', 't18', 't21', 't22', 't23', 't24', 't26']],
    ['a.a.a.a.a', ['t5', 't6', 't11', 't12', 't21', 't22', 't23', 't24']],
    ['vodka.gin', ['t5', 't6', 't8', 't21', 't22', 't23', 't24']],
    ['vodka.martini', ['t5', 't6', 't8', 't19', 't21', 't22', 't23', 't24']],
    ['b.b.c', ['t5', 't6', 't10', 't13', 't18', 't21', 't22', 't23', 't24', 't26']],
    ['nothing.here.at.all', ['t5', 't6', 't21', 't22', 't23', 't24']],
    ['oneword', ['t5', 't6', 't21', 't22', 't23', 't24', 't25']],
    ['args-test', ['t5', 't6', 't21', 't22', 't23', 't24', 't25', 't27']],
  ])('key %j', (key, expected) => {
    expect(sorted(router.route('t', key).streams)).toEqual(sorted(expected))
  })

  test('after removing a.b.c (t1), #, a.#, vodka.martini and *.#', () => {
    const r = topicRouter(rabbitBindings)
    for (const [key, stream] of [['a.b.c', 't1'], ['#', 't5'], ['a.#', 't11'], ['vodka.martini', 't19'], ['*.#', 't21']] as const) {
      expect(r.unbind({ exchange: 't', stream, key })).toBe(true)
    }
    const expectations: Array<[string, string[]]> = [
      ['a.b.c', ['t2', 't6', 't10', 't12', 't18', 't20', 't22', 't23', 't24', 't26']],
      ['a.b', ['t3', 't6', 't7', 't8', 't9', 't12', 't15', 't22', 't23', 't24', 't26']],
      ['a.b.b', ['t3', 't6', 't7', 't12', 't14', 't18', 't22', 't23', 't24', 't26']],
      ['', ['t6', 't17', 't24']],
      ['b.c.c', ['t6', 't18', 't22', 't23', 't24', 't26']],
      ['a.a.a.a.a', ['t6', 't12', 't22', 't23', 't24']],
      ['vodka.gin', ['t6', 't8', 't22', 't23', 't24']],
      ['vodka.martini', ['t6', 't8', 't22', 't23', 't24']],
      ['b.b.c', ['t6', 't10', 't13', 't18', 't22', 't23', 't24', 't26']],
      ['nothing.here.at.all', ['t6', 't22', 't23', 't24']],
      ['oneword', ['t6', 't22', 't23', 't24', 't25']],
    ]
    for (const [key, expected] of expectations) expect(sorted(r.route('t', key).streams), key).toEqual(sorted(expected))
  })
})

describe('topic exchange: edge cases', () => {
  test.each<[pattern: string, key: string, matches: boolean]>([
    // `#` alone matches every key, the empty one and empty words included.
    ['#', '', true], ['#', 'a', true], ['#', 'a.b.c', true], ['#', '.', true], ['#', '..', true],
    // `*` is exactly one word; `""` has none, `"."` has two (both empty), `"a."` has two.
    ['*', '', false], ['*', 'a', true], ['*', '.', false], ['*', 'a.', false], ['*', 'a.b', false],
    ['*.*', '.', true], ['*.*', 'a.', true], ['*.*', '.b', true], ['*.*', 'a', false],
    // The empty binding key is zero words and matches only the empty routing key.
    ['', '', true], ['', '.', false], ['', 'a', false],
    ['.', '.', true], ['.', '', false], ['.', 'a.', false],
    // `#` in the middle, at the start, at the end, repeated.
    ['a.#.b', 'a.b', true], ['a.#.b', 'a.x.b', true], ['a.#.b', 'a.x.y.z.b', true], ['a.#.b', 'a.b.b', true],
    ['a.#.b', 'a.b.x', false], ['a.#.b', 'a', false], ['a.#.b', 'b', false], ['a.#.b', 'x.a.b', false],
    ['#.a', 'a', true], ['#.a', 'x.y.a', true], ['#.a', 'a.x', false], ['#.a', '', false],
    ['a.#', 'a', true], ['a.#', 'a.', true], ['a.#', 'a.b.c', true], ['a.#', 'ab', false], ['a.#', '', false], ['a.#', 'b.a', false],
    ['#.#', '', true], ['#.#', 'a.b', true], ['#.#.#', 'x', true], ['#.#.a.#.#', 'a', true], ['#.#.a.#.#', 'b', false],
    ['#.b.#', 'b', true], ['#.b.#', 'a.b.c', true], ['#.b.#', 'a.c', false],
    ['#.*', '', false], ['#.*', 'a', true], ['*.#', '', false], ['*.#', 'a', true], ['#.*.#', '', false], ['#.*.#', '.', true],
    ['*.#.*', 'a', false], ['*.#.*', 'a.b', true], ['*.#.*', 'a.b.c.d', true],
    // Empty words are words.
    ['a..b', 'a..b', true], ['a..b', 'a.b', false], ['a.*.b', 'a..b', true], ['a.#.b', 'a..b', true], ['a.b', 'a..b', false],
    ['a.', 'a.', true], ['a.', 'a', false], ['.a', '.a', true], ['*.a', '.a', true],
    // Wildcards are whole words only; inside a word they are literal characters.
    ['a*', 'a*', true], ['a*', 'ab', false], ['#a', '#a', true], ['#a', 'xa', false], ['a.*b', 'a.xb', false],
    // Matching is exact and case-sensitive.
    ['A.b', 'a.b', false], ['a.b', 'a.b ', false],
  ])('pattern %j, key %j: %s', (pattern, key, matches) => {
    const r = topicRouter([[pattern, 's']])
    expect(r.route('t', key).streams).toEqual(matches ? ['s'] : [])
  })

  test('a routing key of 100,000 words does not overflow the stack', () => {
    const r = topicRouter([['#.end', 'end'], ['a.#.b.#', 'ab'], ['*.#', 'any']])
    const key = `${'a.'.repeat(100_000)}end`
    expect(sorted(r.route('t', key).streams)).toEqual(['any', 'end'])
  })

  test('a stream bound by several matching patterns is listed once', () => {
    const r = topicRouter([['#', 's'], ['a.*', 's'], ['a.b', 's'], ['*.b', 's'], ['a.#', 'other']])
    expect(sorted(r.route('t', 'a.b').streams)).toEqual(['other', 's'])
  })

  test('unbinding prunes the trie: the other bindings on shared prefixes keep working', () => {
    const defs: BindingDef[] = [
      { exchange: 't', stream: 'x', key: 'a.b.c' },
      { exchange: 't', stream: 'y', key: 'a.b' },
      { exchange: 't', stream: 'z', key: 'a.#.c' },
    ]
    const r = new Router([{ name: 't', type: 'topic' }], defs)
    expect(r.unbind(defs[0]!)).toBe(true)
    expect(r.route('t', 'a.b.c').streams).toEqual(['z'])
    expect(r.route('t', 'a.b').streams).toEqual(['y'])
    expect(r.unbind(defs[2]!)).toBe(true)
    expect(r.route('t', 'a.b.c').unroutable).toBe(true)
    expect(r.unbind(defs[2]!)).toBe(false)
    expect(r.bind(defs[0]!)).toBe(true)
    expect(r.route('t', 'a.b.c').streams).toEqual(['x'])
  })

  test('# and #.# are different bindings with the same matches; removing one keeps the other', () => {
    const r = topicRouter([['#', 'one'], ['#.#', 'two']])
    expect(r.bindings()).toHaveLength(2)
    r.unbind({ exchange: 't', stream: 'one', key: '#' })
    expect(r.route('t', 'x.y').streams).toEqual(['two'])
  })
})
