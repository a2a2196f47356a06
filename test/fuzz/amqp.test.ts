// Fuzzing the AMQP 0-9-1 codec: frame streams, method payloads, field tables.

import { describe, expect, it } from 'vitest'
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

  it('amqp-field-table: decoded tables encode back to themselves', async () => {
    const r = await fuzz('amqp-field-table', 5000)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['decoded, same bytes back', 'error syntax']))
  })
})
