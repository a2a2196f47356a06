// Fuzzing the line-oriented doors: NDJSON line splitting and syslog framing and parsing.

import { describe, expect, it } from 'vitest'
import { targetFactories } from '../../benchmarks/fuzz/targets.js'
import { fuzz, outcomes } from './run.js'

describe('fuzz (a few thousand cases; `npm run fuzz` runs a million)', () => {
  it('ndjson-lines: splitting agrees with a model and across chunkings, and holds at most a line', async () => {
    const r = await fuzz('ndjson-lines', 3000)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['too-long line', 'invalid JSON line', 'all lines JSON']))
  })

  it('syslog-framing: frames agree across chunkings, within maxMessageBytes', async () => {
    const r = await fuzz('syslog-framing', 3000)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['frames', 'frames and too-long', 'frames and bad-count']))
  })

  it('syslog-5424 and syslog-3164: every frame is an event with canonical fields, or a reason', async () => {
    for (const name of ['syslog-5424', 'syslog-3164']) {
      const r = await fuzz(name, 5000)
      expect(outcomes(r)).toEqual(expect.arrayContaining(['event', 'not syslog (error)']))
    }
  })

  it('syslog-5424: a frame of control bytes is refused with its 32-byte preview escaped (263 chars), not flagged as an unclear message', async () => {
    const target = targetFactories['syslog-5424']!()
    // Header byte 0 (receive time, no sender address), then 40 bytes of U+0001.
    expect(await target.run(Buffer.concat([Buffer.from([0]), Buffer.alloc(40, 1)]))).toBe('not syslog (error)')
  })
})
