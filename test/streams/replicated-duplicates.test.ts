// The publisher's side of replication: an event answered as a duplicate is confirmed by that
// answer, so where a stream has replicas the answer waits until they hold it. And a retry that
// waited on a first try's ids finds what that try stored, even when the first try failed for
// another stream. A real server and streams; the replicas are a gate the test moves by hand.

import { describe, expect, it } from 'vitest'
import { errors } from '../../src/errors.js'
import type { PublishEvent } from '../../src/streams/publisher.js'
import type { ReplicationGate, ReplicationTicket } from '../../src/streams/placement.js'
import { startTestServer } from '../helpers/server.js'

const ev = (id: string): PublishEvent => ({ body: Buffer.from(JSON.stringify({ id })), value: { id }, json: true, id, routingKey: 'k' })
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20))

/** Replicas by hand: `held` is each stream's high watermark; `failNext` times out the next wait on a stream. */
class HandGate implements ReplicationGate {
  readonly held = new Map<string, number>()
  readonly failNext = new Set<string>()
  readonly asked: Array<[stream: string, end: number]> = []
  #waiting: Array<{ stream: string; end: number; resolve: () => void; reject: (err: Error) => void }> = []

  admit(): ReplicationTicket {
    return { epoch: 1 }
  }

  committed(stream: string, end: number): Promise<void> {
    this.asked.push([stream, end])
    return new Promise((resolve, reject) => {
      this.#waiting.push({ stream, end, resolve, reject })
      this.move()
    })
  }

  /** Answers every wait the watermarks and failures now decide. */
  move(): void {
    this.#waiting = this.#waiting.filter((w) => {
      if (this.failNext.delete(w.stream)) {
        w.reject(errors.replicationTimeout(w.stream, 'the test said so'))
        return false
      }
      if ((this.held.get(w.stream) ?? 0) < w.end) return true
      w.resolve()
      return false
    })
  }
}

describe('duplicates of a replicated stream', () => {
  it('a retry of an event stored but never confirmed is answered once the replicas hold it, and stores nothing', async () => {
    const { server } = await startTestServer({ pipeline: 'exchanges:\n  x: { type: fanout, dedup: id }\nstreams: { s: {} }\nbindings:\n  - { exchange: x, stream: s }' })
    const p = server.publisher
    const gate = new HandGate()
    p.replication = gate
    gate.failNext.add('s')
    await expect(p.publish({ exchange: 'x', events: [ev('X')] })).rejects.toMatchObject({ code: 'SLUICE_ERR_NOT_ENOUGH_REPLICAS' })
    expect(server.streams.get('s')!.log.endOffset).toBe(1)
    let answered = false
    const retry = p.publish({ exchange: 'x', events: [ev('X')] }).finally(() => (answered = true))
    await tick()
    // Stored, not held by the replicas: no answer yet.
    expect(answered).toBe(false)
    expect(gate.asked.at(-1)).toEqual(['s', 1])
    gate.held.set('s', 1)
    gate.move()
    expect(await retry).toMatchObject({ accepted: 0, duplicates: 1 })
    expect(server.streams.get('s')!.log.endOffset).toBe(1)
    // Refused while the replicas cannot hold it, and still not stored twice.
    gate.failNext.add('s')
    await expect(p.publish({ exchange: 'x', events: [ev('X')] })).rejects.toMatchObject({ code: 'SLUICE_ERR_NOT_ENOUGH_REPLICAS' })
    expect(server.streams.get('s')!.log.endOffset).toBe(1)
  })

  it('a twin that waited on a first try failed for one stream finds the id in both streams it stored it in', async () => {
    const { server } = await startTestServer({ pipeline: 'exchanges:\n  x: { type: fanout, dedup: id }\nstreams: { a: {}, b: {} }\nbindings:\n  - { exchange: x, stream: a }\n  - { exchange: x, stream: b }' })
    const p = server.publisher
    const gate = new HandGate()
    p.replication = gate
    gate.held.set('a', 100)
    // The first try is stored in both streams; b's replicas hold it only later, past its timeout.
    const first = p.publish({ exchange: 'x', events: [ev('X')] })
    await tick()
    // The twin plans while the first still holds X's reservation in both streams.
    const twin = p.publish({ exchange: 'x', events: [ev('X')] })
    await tick()
    gate.failNext.add('b')
    gate.move()
    await expect(first).rejects.toMatchObject({ code: 'SLUICE_ERR_NOT_ENOUGH_REPLICAS' })
    await tick()
    gate.held.set('b', 100)
    gate.move()
    expect(await twin).toMatchObject({ accepted: 0, duplicates: 1 })
    // Once in each stream: the twin did not store X again where the first had.
    expect(server.streams.get('a')!.log.endOffset).toBe(1)
    expect(server.streams.get('b')!.log.endOffset).toBe(1)
  })
})
