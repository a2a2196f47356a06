import { expect } from 'vitest'
import { startTestServer } from './server.js'

/** A server holding 25 events in app-logs whose timestamps are 2024-01-01T00:00:00Z plus i seconds; its URL. */
export async function serverWithEvents(): Promise<string> {
  const s = await startTestServer()
  const lines = Array.from({ length: 25 }, (_, i) => ({ body: { service: 'api', level: 'info', i }, timestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString() }))
  const res = await fetch(`${s.url}/v1/exchanges/logs/publish?envelope=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.map((l) => JSON.stringify(l)).join('\n') })
  expect(res.status).toBe(200)
  return s.url
}
