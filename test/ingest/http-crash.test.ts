import { describe, expect, it } from 'vitest'
import { startChildServer } from '../helpers/child-server.js'
import { readStream } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

const yaml = (dataDir: string) => `
server:
  dataDir: ${JSON.stringify(dataDir)}
  http: { port: 0 }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { enabled: false }
  durability: { fsync: batch, interval: 2ms }
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}", dedup: id }
streams:
  app-logs: { segmentSize: 256kb }
  errors: {}
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: logs, stream: errors, key: "*.error" }
`

interface Pending {
  ids: string[]
  body: string
}

describe('HTTP publish under SIGKILL', () => {
  it('every confirmed event is stored exactly once, retries included, after repeated crashes', async () => {
    const dataDir = await tempDir()
    const confirmed = new Set<string>()
    let retry: Pending[] = [] // requests cut off by a kill, re-sent after restart with the same ids
    let seq = 0
    const kills = 5
    const makeRequest = (): Pending => {
      const ids: string[] = []
      const lines: string[] = []
      for (let k = 0; k < 20; k++) {
        const id = `e-${seq++}`
        ids.push(id)
        lines.push(JSON.stringify({ id, service: 'api', level: seq % 4 === 0 ? 'error' : 'info', msg: `event ${id}` }))
      }
      return { ids, body: lines.join('\n') }
    }
    for (let round = 0; round <= kills; round++) {
      const server = await startChildServer(dataDir, yaml(dataDir))
      const queue = [...retry]
      retry = []
      let stop = false
      const worker = async (): Promise<void> => {
        while (!stop) {
          const req = queue.shift() ?? makeRequest()
          try {
            const res = await fetch(`${server.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: req.body })
            if (res.status !== 200) throw new Error(`status ${res.status}`)
            await res.json()
            for (const id of req.ids) confirmed.add(id)
          } catch {
            retry.push(req)
            return
          }
        }
      }
      const workers = Array.from({ length: 4 }, worker)
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 250))
      if (round < kills) {
        await server.kill('SIGKILL')
      } else {
        stop = true
        await Promise.all(workers)
        // Send whatever a kill cut off once more, then check the whole stream.
        for (const req of retry) {
          const res = await fetch(`${server.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: req.body })
          expect(res.status).toBe(200)
          for (const id of req.ids) confirmed.add(id)
        }
      }
      await Promise.allSettled(workers)
      if (round === kills) {
        const events: Awaited<ReturnType<typeof readStream>>['events'] = []
        for (let from = 0; ; ) {
          const page = await readStream(server.url, 'app-logs', from, 10_000)
          if (page.events.length === 0) break
          events.push(...page.events)
          from = page.nextOffset
        }
        const counts = new Map<string, number>()
        for (const e of events) counts.set(e.id!, (counts.get(e.id!) ?? 0) + 1)
        const missing = [...confirmed].filter((id) => !counts.has(id))
        const twice = [...counts].filter(([, c]) => c > 1).map(([id]) => id)
        expect(missing).toEqual([])
        expect(twice).toEqual([])
        expect(confirmed.size).toBeGreaterThan(100)
        // Whole bodies only: every stored event parses and names its own id.
        for (const e of events) expect((e.body as { id: string }).id).toBe(e.id)
        await server.kill('SIGTERM')
      }
    }
  })
})
