import { execFile } from 'node:child_process'
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { RequestSlots } from '../../../src/ingest/http/slots.js'
import { startTestServer } from '../../helpers/server.js'
import { openSocket, postHead, readyzStatus, until, type WireError } from './util.js'

// Four places, so a handful of aborted requests would use them all up if any leaked.
const slots = 4
const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams:
  app-logs: {}
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs }
`
// A member has one long poll at a time (a new one ends the old), so every poll has its own member.
let members = 0
const pollBody = (): string => JSON.stringify({ consumer: `c${++members}`, max: 1, waitMs: 30_000 })

async function longPoll(url: string): Promise<Socket> {
  const s = await openSocket(url)
  const body = pollBody()
  s.write(postHead('/v1/groups/g/fetch', body.length) + body)
  return s
}

/** curl's own client timeout (-m), as a shell script or cron job would use it. */
function curlWithTimeout(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-o', '/dev/null', '-m', '1', '-X', 'POST', '-H', 'content-type: application/json', '-d', pollBody(), `${url}/v1/groups/g/fetch`], (err) => {
      if (err === null) resolve(0)
      else if ((err as { code?: unknown }).code === 'ENOENT') reject(new Error('curl is not installed; this test needs it'))
      else resolve(Number((err as { code?: unknown }).code))
    })
  })
}

async function allTaken(url: string): Promise<void> {
  await until('every place taken: /readyz answers 503', async () => (await readyzStatus(url)) === 503)
  const body = (await (await fetch(`${url}/readyz`)).json()) as WireError
  expect(body.error).toMatchObject({ code: 'overloaded', details: { inFlight: slots, limitRequests: slots } })
}

async function allFree(url: string): Promise<void> {
  await until('every place given back: /readyz answers 200', async () => (await readyzStatus(url)) === 200, 3000)
}

describe('HTTP request places are given back on every path', () => {
  it('long polls aborted by FIN, RST, a fetch timeout and curl -m leave no place behind', async () => {
    const { url } = await startTestServer({ pipeline, server: `  http: { port: 0, maxInFlightRequests: ${slots} }` })
    const aborts: Record<string, (url: string) => Promise<void>> = {
      fin: async (u) => {
        const polls = await Promise.all(Array.from({ length: slots }, () => longPoll(u)))
        await allTaken(u)
        for (const s of polls) s.end()
      },
      rst: async (u) => {
        const polls = await Promise.all(Array.from({ length: slots }, () => longPoll(u)))
        await allTaken(u)
        for (const s of polls) s.resetAndDestroy()
      },
      fetchTimeout: async (u) => {
        const polls = Array.from({ length: slots }, () =>
          fetch(`${u}/v1/groups/g/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: pollBody(), signal: AbortSignal.timeout(1000) }).then(
            (r) => `answered ${r.status}`,
            (e: Error) => e.name,
          ),
        )
        await allTaken(u)
        expect(await Promise.all(polls)).toEqual(Array(slots).fill('TimeoutError'))
      },
      curl: async (u) => {
        const runs = Array.from({ length: slots }, () => curlWithTimeout(u))
        await allTaken(u)
        expect(await Promise.all(runs)).toEqual(Array(slots).fill(28)) // 28: curl's "operation timed out"
      },
    }
    for (const [kind, abort] of Object.entries(aborts)) {
      // Twice the places per kind: one leaked place per request would lock the door out.
      for (let round = 0; round < 2; round++) {
        await abort(url)
        await allFree(url).catch((e: Error) => {
          throw new Error(`${kind}, round ${round + 1}: ${e.message}`)
        })
      }
    }
    // Exactly the configured places are free again: four are taken, the fifth is refused...
    const polls = await Promise.all(Array.from({ length: slots }, () => longPoll(url)))
    await allTaken(url)
    const fifth = await fetch(`${url}/v1/streams`)
    expect(fifth.status).toBe(503)
    expect(((await fifth.json()) as WireError).error.code).toBe('overloaded')
    // ...and once they go, ordinary requests are served.
    for (const s of polls) s.destroy()
    await allFree(url)
    const publish = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"service":"api","level":"info"}' })
    expect(await publish.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
  }, 60_000)

  it('a publish whose client resets right after sending the body gives its place back', async () => {
    const t = await startTestServer({ pipeline, server: `  http: { port: 0, maxInFlightRequests: ${slots} }` })
    const { url } = t
    // Publishes wait here, as a slow disk would make them, until the test lets them through:
    // the resets must land after the body has arrived and before the answer.
    const publisher = t.server.publisher
    const publish = publisher.publish.bind(publisher)
    let entered = 0
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    publisher.publish = async (req) => {
      entered++
      await gate
      return publish(req)
    }
    const body = '{"service":"api","level":"info"}\n'
    for (let round = 0; round < 3; round++) {
      const before = entered
      const sockets = await Promise.all(
        Array.from({ length: slots }, async () => {
          const s = await openSocket(url)
          s.write(postHead('/v1/exchanges/logs/publish', body.length, 'application/x-ndjson') + body)
          return s
        }),
      )
      await until('every publish waiting for durability', async () => entered === before + slots)
      await allTaken(url)
      for (const s of sockets) s.resetAndDestroy()
      await allFree(url)
    }
    open()
    const res = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    // The reset clients' publishes were stored all the same: they had arrived whole.
    expect((await (await fetch(`${url}/v1/streams/app-logs`)).json()) as { events: number }).toMatchObject({ events: 3 * slots + 1 })
  }, 30_000)

  it('a place is given back once, however many paths report the end', () => {
    const s = new RequestSlots(2, 2)
    const a = s.acquire('10.0.0.1')
    const b = s.acquire('10.0.0.1')
    if (a instanceof Error || b instanceof Error) throw new Error('the first two requests must get places')
    expect((s.acquire('10.0.0.2') as Error).message).toMatch(/maxInFlightRequests/)
    a.release()
    a.release()
    a.release()
    expect(s.inFlight).toBe(1)
    const c = s.acquire('10.0.0.2')
    expect(c).not.toBeInstanceOf(Error)
    // Had the triple release counted thrice, a third place would open here.
    expect(s.acquire('10.0.0.3')).toBeInstanceOf(Error)
  })
})
