// Fuzzing the AMQP 0-9-1 codec: frame streams, method payloads, field tables.

import { describe, expect, it } from 'vitest'
import { decodeMethod, encodeMethod } from '../../src/ingest/amqp/methods.js'
import type { AmqpProtocolError } from '../../src/ingest/amqp/protocol-error.js'
import { fuzz, outcomes } from './run.js'

describe('fuzz (a few thousand cases; `npm run fuzz` runs a million)', () => {
  it('amqp-frames: a protocol error or frames, the same across chunkings, never more held than frame-max', async () => {
    const r = await fuzz('amqp-frames', 1500)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['frames, no error', 'error frame', 'error syntax']))
  })

  it('amqp-methods: decoded methods encode back to themselves', async () => {
    const r = await fuzz('amqp-methods', 5000)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['decoded', 'error syntax', 'error not-implemented']))
  })

  it('a shortstr that is not UTF-8 is a syntax error naming it, not a name changed to U+FFFD', () => {
    // Found by `npm run fuzz` (amqp-methods, amqp-field-table): invalid bytes decoded as U+FFFD, a
    // 255-byte name became one too long to encode back, and two names could become one.
    const publish = encodeMethod({ name: 'basic.publish', ticket: 0, exchange: 'logs', routingKey: 'api.zz', mandatory: false, immediate: false })
    const declare = encodeMethod({ name: 'queue.declare', ticket: 0, queue: 'q-zz', passive: false, durable: false, exclusive: false, autoDelete: false, nowait: false, arguments: { 'x-zz': 1 } })
    const broken = (b: Buffer, at: number): Buffer => {
      const c = Buffer.from(b)
      c[at] = 0xff
      return c
    }
    const errorOf = (f: () => unknown): string => {
      try {
        f()
        return 'decoded'
      } catch (err) {
        return `${(err as AmqpProtocolError).kind}: ${(err as Error).message}`
      }
    }
    expect(errorOf(() => decodeMethod(broken(publish, publish.indexOf('zz'))))).toBe('syntax: basic.publish: routing-key is not valid UTF-8')
    expect(errorOf(() => decodeMethod(broken(publish, publish.indexOf('logs'))))).toBe('syntax: basic.publish: exchange is not valid UTF-8')
    expect(errorOf(() => decodeMethod(broken(declare, declare.indexOf('q-zz') + 2)))).toBe('syntax: queue.declare: queue is not valid UTF-8')
    expect(errorOf(() => decodeMethod(broken(declare, declare.indexOf('x-zz') + 2)))).toMatch(/^syntax: queue\.declare: .*field table key is not valid UTF-8$/)
    // U+FFFD sent as UTF-8 is a character like any other.
    const replacement = encodeMethod({ name: 'basic.publish', ticket: 0, exchange: 'logs', routingKey: 'api.\uFFFD', mandatory: false, immediate: false })
    expect(decodeMethod(replacement)).toMatchObject({ routingKey: 'api.\uFFFD' })
  })

  it('amqp-field-table: decoded tables encode back to themselves', async () => {
    const r = await fuzz('amqp-field-table', 5000)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['decoded, same bytes back', 'error syntax']))
  })
})
