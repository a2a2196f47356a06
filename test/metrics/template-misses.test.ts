import { describe, expect, test } from 'vitest'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'

describe('sluice_routing_key_missing_fields_total', () => {
  test('counts, per exchange, the published events whose key got a `_` for a missing field', async () => {
    const s = await startTestServer()
    const res = await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info' }, { service: 'web' }, { level: 'error' }, { service: 'web', level: '_' }])
    expect(res.status).toBe(200)
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toMatch(/^sluice_routing_key_missing_fields_total\{exchange="logs"\} 2$/m)
    // The events still route: `web._` and `_.error` are topic keys like any other.
    const stored = (await readStream(s.url, 'app-logs')).events.map((e) => e.routingKey)
    expect(stored).toEqual(['web.info', 'web._', '_.error', 'web._'])
  })
})
