import { describe, expect, it } from 'vitest'
import { startChildServer, type ChildServer } from '../helpers/child-server.js'
import type { WireDelivery } from '../helpers/consume.js'
import { tempDir } from '../helpers/temp.js'

const yaml = (dataDir: string) => `
server:
  dataDir: ${JSON.stringify(dataDir)}
  http: { port: 0 }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { enabled: false }
exchanges:
  logs: { type: fanout }
streams:
  work: { segmentSize: 256kb }
bindings:
  - { exchange: logs, stream: work }
groups:
  workers: { stream: work, prefetch: 300, ackTimeout: 5s, sessionTimeout: 1s }
`

async function post(url: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

describe('consumer groups under SIGKILL', () => {
  it('after repeated crashes every event was delivered, and none came again after its ack was answered', async () => {
    const dataDir = await tempDir()
    const total = 30_000
    let server: ChildServer = await startChildServer(dataDir, yaml(dataDir))
    for (let k = 0; k < total / 1000; k++) {
      const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ n: k * 1000 + i, pad: 'x'.repeat(100) })).join('\n')
      const res = await fetch(`${server.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines })
      expect(res.status).toBe(200)
    }
    const delivered = new Set<number>()
    const ackedAt = new Map<number, number>() // offset → step at which its ack was answered
    const violations: string[] = []
    let step = 0
    const kills = 4
    let killedDuringWork = 0
    for (let round = 0; round <= kills; round++) {
      let alive = true
      const member = async (name: string): Promise<void> => {
        // Until everything was seen and a poll comes back empty: an ack made durable just before a
        // kill may never have been answered, so the answers alone need not reach the total.
        while (alive) {
          let events: WireDelivery[]
          try {
            const res = await post(server.url, '/v1/groups/workers/fetch', { consumer: name, max: 50, waitMs: 200 })
            if (res.status !== 200) return
            events = ((await res.json()) as { events: WireDelivery[] }).events
          } catch {
            return
          }
          const seenAt = ++step
          for (const e of events) {
            const answered = ackedAt.get(e.offset)
            if (answered !== undefined && answered < seenAt) violations.push(`offset ${e.offset} delivered at step ${seenAt} after its ack was answered at ${answered}`)
            delivered.add(e.offset)
          }
          if (events.length === 0) {
            if (delivered.size === total) return
            continue
          }
          try {
            const res = await post(server.url, '/v1/groups/workers/ack', { tags: events.map((e) => e.tag) })
            if (res.status !== 200) return
            const body = (await res.json()) as { failed: Array<{ tag: string }> }
            const failed = new Set(body.failed.map((f) => f.tag))
            const at = ++step
            for (const e of events) if (!failed.has(e.tag) && !ackedAt.has(e.offset)) ackedAt.set(e.offset, at)
          } catch {
            return // the server died mid-ack: the answer never came, so the ack does not count
          }
        }
      }
      const members = [member('a'), member('b')]
      if (round < kills) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 250))
        if (delivered.size === total) {
          // Done before this kill: no more crashes to survive.
          await Promise.all(members)
          break
        }
        await server.kill('SIGKILL')
        alive = false
        killedDuringWork += delivered.size < total ? 1 : 0
        await Promise.all(members)
        server = await startChildServer(dataDir, yaml(dataDir))
      } else {
        await Promise.all(members)
      }
    }
    const stats = (await (await fetch(`${server.url}/v1/groups/workers`)).json()) as { backlog: number }
    await server.kill('SIGTERM')
    expect(killedDuringWork).toBeGreaterThanOrEqual(3) // kills landed while members were still working
    expect(violations).toEqual([])
    expect(delivered.size).toBe(total)
    expect(ackedAt.size).toBeGreaterThan(total * 0.9)
    expect(stats.backlog).toBe(0)
  })
})
