import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { fetchEvents, sleep } from '../helpers/consume.js'
import { groupStats, publish } from '../helpers/groups.js'
import { startTestServer } from '../helpers/server.js'

const pipeline = `
exchanges:
  logs: { type: topic }
streams: { work: {} }
bindings:
  - { exchange: logs, stream: work, key: "#" }
groups:
  g: { stream: work, ackTimeout: 60s }
`

/** A long poll whose client goes away (socket destroyed: FIN or RST) before anything arrives. */
async function abandonedPoll(url: string, consumer: string, reset: boolean): Promise<void> {
  const req = request(`${url}/v1/groups/g/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  req.on('error', () => undefined)
  req.end(JSON.stringify({ consumer, max: 10, waitMs: 20_000 }))
  await sleep(200)
  if (reset) req.socket?.resetAndDestroy()
  else req.destroy()
}

describe('a long poll whose client is gone', () => {
  it.each([
    ['FIN', false],
    ['RST', true],
  ])('gets nothing after its client closes (%s): the next event goes to a live member at once', async (_how, reset) => {
    const { url } = await startTestServer({ pipeline })
    await abandonedPoll(url, 'gone', reset)
    // Time for the server to see the close; before the fix the poll stayed open for 20 s and
    // took the next event, which then sat in flight until ackTimeout.
    await sleep(100)
    await publish(url, 'logs', [{ i: 1 }], 'k')
    const got = await fetchEvents(url, 'g', 'live', 10, 2000)
    expect(got.map((d) => [d.body, d.deliveryCount, d.redelivered])).toEqual([[{ i: 1 }, 1, false]])
    expect(await groupStats(url, 'g')).toMatchObject({ inFlight: 1, ackTimeouts: 0 })
  })
})
