import { describe, expect, it } from 'vitest'
import { defaultExchangeConfig, defaultStreamConfig, parseConfig } from '../../src/config/index.js'

// Run-time (AMQP) and built-in definitions start from these, so they must be exactly what the
// file gives a definition that sets nothing.
describe('defaults for definitions made outside the file', () => {
  it('a default stream is what `streams: { s: {} }` gives, with the fsync passed in', () => {
    const config = parseConfig('server:\n  durability: { fsync: always }\nstreams:\n  s: {}\n', { env: {} })
    expect(defaultStreamConfig('s', 'always')).toEqual(config.streams['s'])
    expect(defaultStreamConfig('t', 'never')).toMatchObject({ name: 't', fsync: 'never' })
  })

  it('a default exchange is what the file gives one declared with only its type and alternate', () => {
    const config = parseConfig('exchanges:\n  e: { type: topic, alternate: u }\n  u: { type: fanout }\n', { env: {} })
    expect(defaultExchangeConfig('e', 'topic', 'u')).toEqual(config.exchanges['e'])
    expect(defaultExchangeConfig('u', 'fanout', null)).toEqual(config.exchanges['u'])
  })
})
