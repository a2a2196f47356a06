// The publisher's side of a stream handover (cluster move): publishes to a held stream wait and
// then go wherever it lives, and a stream's remembered ids move without its exchange's keys.

import { describe, expect, it } from 'vitest'
import type { PublishEvent } from '../../src/streams/publisher.js'
import type { RemoteStream, StreamPlacement } from '../../src/streams/placement.js'
import { startTestServer } from '../helpers/server.js'

const ev = (id: string): PublishEvent => ({ body: Buffer.from(JSON.stringify({ id })), value: { id }, json: true, id, routingKey: 'k' })
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20))

describe('publishes to a stream handed over', () => {
  it('wait while it is held, then go to its new home; a retry planned before the switch goes there too', async () => {
    const { server } = await startTestServer({ pipeline: 'exchanges:\n  x: { type: fanout }\nstreams: { s: {} }\nbindings:\n  - { exchange: x, stream: s }' })
    const p = server.publisher
    let home: 'here' | 'there' = 'here'
    const forwarded: string[][] = []
    let letForwardsAnswer!: () => void
    const answering = new Promise<void>((resolve) => (letForwardsAnswer = resolve))
    const remote: RemoteStream = {
      node: 'B',
      forward: async (req) => {
        forwarded.push(req.records.map((r) => String(r.id)))
        await answering
        return { accepted: req.records.length, duplicates: 0, unroutable: 0 }
      },
    }
    const placement: StreamPlacement = { remote: (s) => (home === 'there' && s === 's' ? remote : undefined), assertHome: () => undefined }
    p.placement = placement
    await p.hold('s')
    expect(p.holding('s')).toBe(true)
    const first = p.publish({ exchange: 'x', events: [ev('X')] })
    await tick()
    // A client's retry with the same id waits on the first's reservation of X while planning.
    const retry = p.publish({ exchange: 'x', events: [ev('X'), ev('Y')] })
    await tick()
    expect(forwarded).toEqual([])
    home = 'there'
    p.release('s')
    await tick()
    letForwardsAnswer()
    expect(await first).toMatchObject({ accepted: 1 })
    await retry
    // Nothing was stored on the old home; both went to the new one.
    expect(server.streams.get('s')!.log.endOffset).toBe(0)
    // X once (the retry found it stored by the first), Y once.
    expect(forwarded.flat().sort()).toEqual(['X', 'Y'])
  })

  it('hold resolves once the appends already past it are durable, and nothing is appended until release', async () => {
    const { server } = await startTestServer({ pipeline: 'exchanges:\n  x: { type: fanout }\nstreams: { s: {} }\nbindings:\n  - { exchange: x, stream: s }' })
    const p = server.publisher
    const log = server.streams.get('s')!.log
    const early = Array.from({ length: 20 }, (_, i) => p.publish({ exchange: 'x', events: [ev(`a-${i}`)] }))
    await tick() // some are appending now
    const late = Array.from({ length: 20 }, (_, i) => p.publish({ exchange: 'x', events: [ev(`b-${i}`)] }))
    await p.hold('s')
    // Nothing is pending in the log: what got past the hold is durable; the rest waits.
    const atHold = log.endOffset
    expect(log.nextOffset).toBe(atHold)
    await tick()
    expect(log.endOffset).toBe(atHold)
    p.release('s')
    await Promise.all([...early, ...late])
    expect(log.endOffset).toBe(40)
  })
})

describe('a stream\'s remembered ids handed over', () => {
  it('leave the idempotency keys of an exchange of the same name where they are', async () => {
    const { server } = await startTestServer({ pipeline: 'exchanges:\n  orders: { type: fanout, dedup: id }\nstreams: { orders: {}, side: {} }\nbindings:\n  - { exchange: orders, stream: orders }' })
    const p = server.publisher
    expect(await p.publish({ exchange: 'orders', events: [ev('e1')], idempotencyKey: 'K' })).toMatchObject({ accepted: 1 })
    const exported = await p.exportIds('orders')
    expect(exported.ids.map((i) => i[1])).toEqual(['e1'])
    await p.replaceIds('orders', { ids: [], checkpoint: null })
    // The key is still known; the event id is read back from the log (no checkpoint was given).
    expect(await p.publish({ exchange: 'orders', events: [ev('e1')], idempotencyKey: 'K' })).toMatchObject({ accepted: 0, duplicates: 1 })
    expect(await p.publish({ exchange: 'orders', events: [ev('e3')] })).toMatchObject({ accepted: 1 })
    expect(await p.publish({ exchange: 'orders', events: [ev('e1')] })).toMatchObject({ accepted: 0, duplicates: 1 })
  })
})
