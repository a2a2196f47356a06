import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { formatDuration, formatSize, parseByteRate, parseDuration, parseEventRate, parseSize } from '../../src/config/units.js'

describe('sizes', () => {
  it.each([
    ['100b', 100],
    ['512kb', 512 * 1024],
    ['64mb', 64 * 1024 * 1024],
    ['1gb', 1024 ** 3],
    ['10GB', 10 * 1024 ** 3],
    ['2tb', 2 * 1024 ** 4],
    ['1.5kb', 1536],
    ['4 MiB', 4 * 1024 * 1024],
    ['1234', 1234],
    [1234, 1234],
    [0, 0],
  ] as const)('%s is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes)
  })

  it.each(['', 'mb', '64 megabytes', '-1mb', '1.5', '64m', 'ten', '1e3', -5, 1.5, true, null])('%s is not a size', (input) => {
    expect(parseSize(input)).toBeUndefined()
  })
})

describe('durations', () => {
  it.each([
    ['5ms', 5],
    ['30s', 30_000],
    ['1m', 60_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1.5s', 1500],
    ['250', 250],
    [250, 250],
  ] as const)('%s is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each(['7 days', '1w', 's', '-1s', '1h30m', 'PT1S', -1, 2.5])('%s is not a duration', (input) => {
    expect(parseDuration(input)).toBeUndefined()
  })
})

describe('rates', () => {
  it.each([
    ['5000/s', 5000],
    ['100/m', 100 / 60],
    ['3600/h', 1],
    ['10/sec', 10],
    ['60/min', 1],
    ['250', 250],
    [250, 250],
  ] as const)('event rate %s is %d per second', (input, perSecond) => {
    expect(parseEventRate(input)).toBe(perSecond)
  })

  it.each([
    ['50mb/s', 50 * 1024 * 1024],
    ['1gb/m', 1024 ** 3 / 60],
    ['100b/s', 100],
    ['1024', 1024],
  ] as const)('byte rate %s is %d bytes per second', (input, perSecond) => {
    expect(parseByteRate(input)).toBe(perSecond)
  })

  it.each(['10/fortnight', '0/s', '/s', 'fast', '5mb/s'])('%s is not an event rate', (input) => {
    expect(parseEventRate(input)).toBeUndefined()
  })

  it.each(['50 megs/s', '0mb/s', '50mb/d', 'mb/s'])('%s is not a byte rate', (input) => {
    expect(parseByteRate(input)).toBeUndefined()
  })
})

describe('formatting', () => {
  it('prints the largest exact unit', () => {
    expect([formatSize(10 * 1024 ** 3), formatSize(1536), formatSize(100)]).toEqual(['10gb', '1536b', '100b'])
    expect([formatDuration(604_800_000), formatDuration(90_000), formatDuration(5)]).toEqual(['7d', '90s', '5ms'])
  })

  it('round-trips through the parsers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (n) => {
        expect(parseSize(formatSize(n))).toBe(n)
        expect(parseDuration(formatDuration(n))).toBe(n)
      }),
    )
  })
})
