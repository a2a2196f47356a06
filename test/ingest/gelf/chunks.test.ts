import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ChunkReassembler, isChunk, messageOverheadBytes, type ReassemblyLimits } from '../../../src/ingest/gelf/chunks.js'

/** Cuts a payload into GELF chunks as gelf-pro and Graylog's clients do. */
function chunksOf(payload: Buffer, size: number, id = randomBytes(8), count?: number): Buffer[] {
  const parts: Buffer[] = []
  for (let i = 0; i < payload.length; i += size) parts.push(payload.subarray(i, i + size))
  const n = count ?? parts.length
  return parts.map((p, seq) => Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([seq, n]), p]))
}

function reassembler(limits: Partial<ReassemblyLimits> = {}): { r: ChunkReassembler; clock: { now: number }; expired: number[] } {
  const clock = { now: 1000 }
  const expired: number[] = []
  const r = new ChunkReassembler({ maxChunks: 128, timeoutMs: 5000, maxBytes: 1024 * 1024, ...limits }, () => clock.now, (n) => expired.push(n))
  return { r, clock, expired }
}

describe('GELF chunk reassembly', () => {
  it('joins chunks arriving in any order, ignoring repeats, and holds nothing after', () => {
    const { r } = reassembler()
    const payload = randomBytes(10_000)
    const chunks = chunksOf(payload, 1000)
    expect(chunks.every(isChunk)).toBe(true)
    const order = [3, 0, 9, 9, 1, 2, 8, 7, 0, 4, 6, 5]
    const outcomes = order.map((i) => r.add(chunks[i]!, '127.0.0.1'))
    expect(outcomes.slice(0, -1).every((o) => o.kind === 'pending')).toBe(true)
    const last = outcomes.at(-1)!
    expect(last.kind).toBe('complete')
    expect(last.kind === 'complete' && last.payload.equals(payload)).toBe(true)
    expect(r.pendingMessages).toBe(0)
    expect(r.heldBytes).toBe(0)
  })

  it('a message of one chunk is complete at once', () => {
    const { r } = reassembler()
    const [only] = chunksOf(Buffer.from('{"a":1}'), 100)
    expect(r.add(only!, 'x')).toEqual({ kind: 'complete', payload: Buffer.from('{"a":1}') })
  })

  it('keeps the messages of two senders with the same id apart', () => {
    const { r } = reassembler()
    const id = randomBytes(8)
    const a = chunksOf(Buffer.from('a'.repeat(20)), 10, id)
    const b = chunksOf(Buffer.from('b'.repeat(20)), 10, id)
    expect(r.add(a[0]!, '10.0.0.1').kind).toBe('pending')
    expect(r.add(b[1]!, '10.0.0.2').kind).toBe('pending')
    expect(r.add(a[1]!, '10.0.0.1')).toEqual({ kind: 'complete', payload: Buffer.from('a'.repeat(20)) })
    expect(r.add(b[0]!, '10.0.0.2')).toEqual({ kind: 'complete', payload: Buffer.from('b'.repeat(20)) })
  })

  it('refuses bad headers: too short, count 0, count over maxChunks, sequence past count, a changed count', () => {
    const { r } = reassembler({ maxChunks: 4 })
    expect(r.add(Buffer.from([0x1e, 0x0f, 1, 2, 3]), 'x')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('12-byte header') })
    const id = randomBytes(8)
    const header = (seq: number, count: number): Buffer => Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([seq, count]), Buffer.from('data')])
    expect(r.add(header(0, 0), 'x')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('count of 0') })
    expect(r.add(header(0, 5), 'x')).toMatchObject({ kind: 'invalid', limit: 'gelf.maxChunks' })
    expect(r.add(header(3, 3), 'x')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('numbered 3 of a message of 3') })
    expect(r.add(header(0, 3), 'x').kind).toBe('pending')
    expect(r.add(header(1, 2), 'x')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('earlier chunks declared 3') })
    // The inconsistent message is gone, nothing of it held.
    expect(r.pendingMessages).toBe(0)
    expect(r.heldBytes).toBe(0)
  })

  it('drops an incomplete message once the timeout has passed since its first chunk, by the injected clock', () => {
    const { r, clock, expired } = reassembler({ timeoutMs: 5000 })
    const first = chunksOf(Buffer.alloc(30, 1), 10)
    const second = chunksOf(Buffer.alloc(30, 2), 10)
    r.add(first[0]!, 'x')
    clock.now += 3000
    r.add(second[0]!, 'x')
    clock.now += 1999
    r.expire()
    expect(expired).toEqual([])
    clock.now += 1
    r.expire()
    expect(expired).toEqual([1])
    expect(r.pendingMessages).toBe(1)
    // The late chunks of the dropped message start a new one, which never completes.
    expect(r.add(first[1]!, 'x').kind).toBe('pending')
    expect(r.add(second[1]!, 'x').kind).toBe('pending')
    expect(r.add(second[2]!, 'x')).toEqual({ kind: 'complete', payload: Buffer.alloc(30, 2) })
    clock.now += 5000
    r.expire()
    expect(expired).toEqual([1, 1])
    expect(r.heldBytes).toBe(0)
  })

  it('holds at most maxBytes for incomplete messages: past it a chunk is dropped with its message', () => {
    const maxBytes = 2 * messageOverheadBytes + 3500
    const { r } = reassembler({ maxBytes })
    const big = chunksOf(randomBytes(4000), 1000)
    expect(r.add(big[0]!, 'x').kind).toBe('pending')
    expect(r.add(big[1]!, 'x').kind).toBe('pending')
    const other = chunksOf(randomBytes(2000), 1000)
    expect(r.add(other[0]!, 'y').kind).toBe('pending')
    expect(r.heldBytes).toBe(2 * messageOverheadBytes + 3000)
    // The next chunk of `big` would pass the bound: big is let go, `other` stays.
    expect(r.add(big[2]!, 'x')).toEqual({ kind: 'over-memory' })
    expect(r.heldBytes).toBe(messageOverheadBytes + 1000)
    expect(r.add(other[1]!, 'y').kind).toBe('complete')
    expect(r.heldBytes).toBe(0)
    // Many tiny messages are bounded by their bookkeeping alone.
    let held = 0
    for (let i = 0; i < 100; i++) if (r.add(chunksOf(Buffer.from('ab'), 1)[0]!, 'z').kind === 'pending') held++
    expect(held).toBe(5)
    expect(r.heldBytes).toBeLessThanOrEqual(maxBytes)
  })
})
