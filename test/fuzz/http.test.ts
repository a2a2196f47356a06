// Fuzzing the HTTP door's bodies: JSON, NDJSON, envelopes, gzip.

import { describe, expect, it } from 'vitest'
import { decodeJson, decodeNdjson } from '../../src/ingest/http/decode.js'
import { fuzz, outcomes } from './run.js'

describe('fuzz (a few thousand cases; `npm run fuzz` runs a million)', () => {
  it('http-json, http-ndjson, http-envelope: events within the limits, or a 400/413 with a message', async () => {
    for (const name of ['http-json', 'http-ndjson', 'http-envelope']) {
      const r = await fuzz(name, 2500)
      expect(outcomes(r)).toEqual(expect.arrayContaining(['refused bad_event', 'refused too_many_events']))
      expect(outcomes(r).some((o) => o.startsWith('accepted'))).toBe(true)
    }
  })

  it('an unknown envelope field of any length is named in a message of bounded size', async () => {
    // Found by `npm run fuzz` (http-json, http-ndjson, http-envelope): a key repeated by mutation
    // put 1,000+ characters into the message.
    const key = `timestamp${'imestamp'.repeat(200)}`
    const opts = { envelope: true, maxEventBytes: 1 << 20, maxEvents: 10_000, maxDepth: 64, routingKey: undefined, headers: undefined }
    for (const mode of ['json', 'ndjson'] as const) {
      const body = Buffer.from(JSON.stringify({ body: { a: 1 }, [key]: 1 }))
      let message = ''
      try {
        if (mode === 'json') await decodeJson(body, opts)
        else await decodeNdjson(body, opts)
      } catch (err) {
        message = (err as Error).message
      }
      expect(message).toMatch(/^(event|line) 1: unknown envelope field "timestampimestamp.*…"; nothing was stored$/)
      expect(message.length).toBeLessThan(160)
    }
  })

  it('http-gzip: a gzip body never expands past maxBodySize, and a broken one is a 400', async () => {
    const r = await fuzz('http-gzip', 1500)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['body refused bad_request', 'body refused body_too_large', 'gunzipped, accepted']))
  })
})
