import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { postNdjson, readStream, startTestServer } from '../../helpers/server.js'
import { openSocket, readAll, type WireError } from './util.js'

const pipeline = 'exchanges: { logs: { type: fanout } }\nstreams: { s: {} }\nbindings: [{ exchange: logs, stream: s }]\n'

/** A gzip publish whose body arrives in `parts`, a few ms apart; the server's answer. */
async function sendInParts(url: string, parts: readonly Buffer[]): Promise<{ status: number; body: unknown }> {
  const socket = await openSocket(url)
  const reply = readAll(socket)
  const length = parts.reduce((n, p) => n + p.length, 0)
  socket.write(`POST /v1/exchanges/logs/publish HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`)
  for (const p of parts) {
    await new Promise((r) => setTimeout(r, 5))
    socket.write(p)
  }
  const text = await reply
  const at = text.indexOf('\r\n\r\n')
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: JSON.parse(text.slice(at + 4)) as unknown }
}

describe('gzip bodies with bytes after the gzip member', () => {
  // Found by `npm run fuzz` (http-gzip): zero padding ends zlib's output early, the request was
  // answered, and bytes after the padding then raised an 'error' on a gunzip nobody listened to
  // any more, which ended the process.
  it('zero padding then garbage, in separate packets: 400, nothing stored, and the server stays up', async () => {
    const { url } = await startTestServer({ pipeline })
    for (let round = 0; round < 5; round++) {
      const answer = await sendInParts(url, [gzipSync(Buffer.from('{"a":1}\n')), Buffer.alloc(16), Buffer.from('garbage')])
      expect(answer.status).toBe(400)
      expect((answer.body as WireError).error).toMatchObject({ code: 'bad_request', message: expect.stringContaining('gzip') as unknown })
    }
    expect((await readStream(url, 's')).events).toEqual([])
    // Still serving, after the decoder errors had time to surface.
    await new Promise((r) => setTimeout(r, 50))
    expect((await postNdjson(url, 'logs', [{ b: 2 }])).status).toBe(200)
  })

  it('zero padding alone, and two members back to back, are whole bodies', async () => {
    const { url } = await startTestServer({ pipeline })
    expect((await sendInParts(url, [gzipSync(Buffer.from('{"a":1}\n')), Buffer.alloc(16), Buffer.alloc(16)])).status).toBe(200)
    expect((await sendInParts(url, [gzipSync(Buffer.from('{"a":2}\n')), gzipSync(Buffer.from('{"a":3}\n'))])).status).toBe(200)
    expect((await readStream(url, 's')).events.map((e) => e.body)).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }])
  })
})
