// Fuzzing the HTTP door's bodies: JSON, NDJSON, envelopes, gzip.

import { describe, expect, it } from 'vitest'
import { fuzz, outcomes } from './run.js'

describe('fuzz (a few thousand cases; `npm run fuzz` runs a million)', () => {
  it('http-json, http-ndjson, http-envelope: events within the limits, or a 400/413 with a message', async () => {
    for (const name of ['http-json', 'http-ndjson', 'http-envelope']) {
      const r = await fuzz(name, 2500)
      expect(outcomes(r)).toEqual(expect.arrayContaining(['refused bad_event', 'refused too_many_events']))
      expect(outcomes(r).some((o) => o.startsWith('accepted'))).toBe(true)
    }
  })

  it('http-gzip: a gzip body never expands past maxBodySize, and a broken one is a 400', async () => {
    const r = await fuzz('http-gzip', 1500)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['body refused bad_request', 'body refused body_too_large', 'gunzipped, accepted']))
  })
})
