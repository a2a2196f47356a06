import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RateLimiter } from '../../src/flow/rate-limiter.js'
import { TokenBucket } from '../../src/flow/token-bucket.js'
import { parseConfig } from '../../src/config/index.js'

describe('token bucket', () => {
  it('matches a simple model over random takes and clock steps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 1, max: 6_000 })), { maxLength: 60 }),
        (rate, capacity, steps) => {
          const b = new TokenBucket(rate, capacity, 0)
          let model = capacity
          let now = 0
          for (const [dt, n] of steps) {
            now += dt
            model = Math.min(capacity, model + (dt * rate) / 1000)
            const wait = b.wait(n, now)
            const need = Math.min(n, capacity)
            if (model >= need) {
              expect(wait).toBe(0)
              b.take(n, now)
              model -= n
            } else {
              expect(wait).toBe(Math.ceil(((need - model) * 1000) / rate))
              // Waiting exactly that long is enough: the model refills to at least the need.
              expect(model + (wait * rate) / 1000).toBeGreaterThanOrEqual(need - 1e-9)
            }
            expect(b.tokens(now)).toBeCloseTo(model, 6)
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  it('holds a steady rate and a burst', () => {
    const b = new TokenBucket(100, 50, 0)
    let admitted = 0
    // 10 s of one-event takes every millisecond: the burst, then 100 a second.
    for (let t = 0; t < 10_000; t++) {
      if (b.wait(1, t) === 0) {
        b.take(1, t)
        admitted++
      }
    }
    expect(admitted).toBeGreaterThanOrEqual(50 + 999 - 1)
    expect(admitted).toBeLessThanOrEqual(50 + 1000 + 1)
  })
})

describe('rate limiter', () => {
  const config = parseConfig(
    `
exchanges: { logs: { type: fanout }, audit: { type: fanout } }
streams: { s: {} }
bindings: [ { exchange: logs, stream: s } ]
rateLimits:
  - { match: { listener: http }, events: 1000/s, burst: 1000 }
  - { match: { listener: http, exchange: audit }, events: 10/s, burst: 10 }
  - { match: { remote: 10.1.0.0/16 }, bytes: 1kb/s }
`,
    { env: {} },
  )

  it('applies every matching rule, the strictest wins, and a refusal takes no tokens', () => {
    const rl = new RateLimiter(config.rateLimits, 0)
    expect(rl.check({ listener: 'http', exchange: 'audit' }, 10, 100, 0).retryAfterMs).toBe(0)
    const refused = rl.check({ listener: 'http', exchange: 'audit' }, 1, 10, 0)
    expect(refused).toEqual({ retryAfterMs: 100, rule: 'rateLimits[1]' })
    // The loose http rule was not charged for the refused event: 990 left, not 989.
    expect(rl.check({ listener: 'http', exchange: 'logs' }, 990, 0, 0).retryAfterMs).toBe(0)
    expect(rl.check({ listener: 'http', exchange: 'logs' }, 1, 0, 0)).toEqual({ retryAfterMs: 1, rule: 'rateLimits[0]' })
    expect(rl.check({ listener: 'ndjson', exchange: 'audit' }, 500, 0, 0).retryAfterMs).toBe(0) // no rule for ndjson
    expect(rl.refusedByRule.get('rateLimits[1]')).toBe(1)
  })

  it('grants a TCP batch only what the buckets hold, so one big write is still held to the rate', () => {
    const rl = new RateLimiter(config.rateLimits, 0)
    expect(rl.grant({ listener: 'http', exchange: 'audit' }, 25, 250, 0)).toEqual({ granted: 10, retryAfterMs: 100, rule: 'rateLimits[1]' })
    expect(rl.grant({ listener: 'http', exchange: 'audit' }, 15, 150, 0)).toMatchObject({ granted: 0, retryAfterMs: 100 })
    expect(rl.grant({ listener: 'http', exchange: 'audit' }, 15, 150, 500)).toMatchObject({ granted: 5 })
    expect(rl.grant({ listener: 'ndjson', exchange: 'audit' }, 5000, 1, 0)).toEqual({ granted: 5000, retryAfterMs: 0 })
  })

  it('matches remote addresses by CIDR, IPv4-mapped IPv6 included', () => {
    const rl = new RateLimiter(config.rateLimits, 0)
    expect(rl.check({ listener: 'ndjson', exchange: 'logs', remote: '::ffff:10.1.2.3' }, 1, 1024, 0).retryAfterMs).toBe(0)
    expect(rl.check({ listener: 'ndjson', exchange: 'logs', remote: '10.1.9.9' }, 1, 512, 0)).toEqual({ retryAfterMs: 500, rule: 'rateLimits[2]' })
    expect(rl.check({ listener: 'ndjson', exchange: 'logs', remote: '10.2.0.1' }, 1, 100_000, 0).retryAfterMs).toBe(0)
  })
})
