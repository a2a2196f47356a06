import { describe, expect, it } from 'vitest'
import { parseDeliveryTag } from '../../src/consumers/group.js'

// What tags were read with before the hand parser: the parser must agree with it on every input
// whose numbers fit 15 digits.
const reference = /^(\d+)-(\d+)-(\d+)(?:-([A-Za-z0-9_-]{1,64}))?$/

function viaRegex(tag: string): ReturnType<typeof parseDeliveryTag> {
  const m = reference.exec(tag)
  if (m === null || m[1]!.length > 15 || m[2]!.length > 15 || m[3]!.length > 15) return undefined
  return { generation: Number(m[1]), offset: Number(m[2]), count: Number(m[3]), token: m[4] }
}

describe('parseDeliveryTag', () => {
  it('reads generation, offset, count and token', () => {
    expect(parseDeliveryTag('3-1200-2-AbC_d-9')).toEqual({ generation: 3, offset: 1200, count: 2, token: 'AbC_d-9' })
    expect(parseDeliveryTag('0-0-1')).toEqual({ generation: 0, offset: 0, count: 1, token: undefined })
    expect(parseDeliveryTag('1-999999999999999-1-x')).toEqual({ generation: 1, offset: 999_999_999_999_999, count: 1, token: 'x' })
  })

  it.each(['', '1-2', '1-2-', '1--2-3', 'a-1-2', '1-2-3-', '1-2-3-a b', '1-2-3x', ' 1-2-3', '1-2-3-' + 'a'.repeat(65), '1-2-3-é', '1-1000000000000000-1'])('refuses %j', (tag) => {
    expect(parseDeliveryTag(tag)).toBeUndefined()
  })

  it('agrees with the regular expression it replaced on random tags', () => {
    const alphabet = '0123456789-aZ_-é '
    let seed = 12345
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    let valid = 0
    for (let i = 0; i < 20_000; i++) {
      const len = 1 + rnd(24)
      let tag = ''
      for (let j = 0; j < len; j++) tag += alphabet[rnd(alphabet.length)]
      // Half of them shaped like tags, so both branches are exercised.
      if (i % 2 === 0) tag = `${rnd(5)}-${rnd(100000)}-${1 + rnd(9)}${rnd(3) === 0 ? '' : `-${tag.replace(/[^A-Za-z0-9_-]/g, '')}`}`
      const want = viaRegex(tag)
      if (want !== undefined) valid++
      expect(parseDeliveryTag(tag), tag).toEqual(want)
    }
    expect(valid).toBeGreaterThan(5000)
  })
})
