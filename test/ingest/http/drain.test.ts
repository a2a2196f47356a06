import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { readStream, startTestServer } from '../../helpers/server.js'
import { httpCall, openSocket, postHead, readAll, readyzStatus, until, type WireError } from './util.js'

/**
 * Node's fetch (undici) in a process of its own, as a shipper runs it: in the test's own process
 * client and server share one event loop, which hides the race between the server closing and
 * the client still sending. Sends `n` requests of `mb` MB, `parallel` at a time, as a stream
 * (chunked, no length) or as one buffer, and prints what each ended with.
 */
const clientScript = `
const [url, n, mb, parallel, streamed, type] = process.argv.slice(1)
const chunk = Buffer.alloc(16384, 0x20)
const outcomes = []
async function one() {
  const init = { method: 'POST', headers: { 'content-type': type } }
  if (streamed === 'stream') {
    let sent = 0
    init.body = new ReadableStream({ pull(c) { if (sent++ >= Number(mb) * 64) c.close(); else c.enqueue(chunk) } })
    init.duplex = 'half'
  } else init.body = Buffer.alloc(Number(mb) * 1048576, 0x20)
  try {
    const r = await fetch(url, init)
    const body = await r.json()
    outcomes.push(r.status + ' ' + body.error.code)
  } catch (e) {
    outcomes.push('error ' + (e.cause && e.cause.code ? e.cause.code : e.message))
  }
}
for (let i = 0; i < Number(n); i += Number(parallel)) await Promise.all(Array.from({ length: Number(parallel) }, one))
console.log(JSON.stringify(outcomes))
`

function fetchInChild(url: string, n: number, mb: number, parallel: number, mode: 'stream' | 'buffer', type = 'application/x-ndjson'): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', clientScript, url, String(n), String(mb), String(parallel), mode, type], { timeout: 60_000 }, (err, stdout) => {
      if (err !== null) reject(err)
      else resolve(JSON.parse(stdout) as string[])
    })
  })
}

describe('an early answer reaches a client that is still sending', () => {
  it('a 2 MB body over maxBodySize: 1mb gets the 413, never EPIPE or a reset (Node fetch, 20 streamed and 10 buffered)', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxBodySize: 1mb }' })
    const publish = `${url}/v1/exchanges/logs/publish`
    const streamed = await fetchInChild(publish, 20, 2, 4, 'stream')
    const buffered = await fetchInChild(publish, 10, 2, 2, 'buffer')
    expect(streamed).toEqual(Array(20).fill('413 body_too_large'))
    expect(buffered).toEqual(Array(10).fill('413 body_too_large'))
    // The connection stays usable and nothing of the refused bodies was stored.
    expect((await readStream(url, 'app-logs')).events).toEqual([])
  }, 90_000)

  it('a 503 refused before the body is read (all places taken) arrives whole too', async () => {
    const { url } = await startTestServer({ server: '  http: { port: 0, maxInFlightRequests: 1 }' })
    // One long read holds the only place.
    const holder = new AbortController()
    const hold = fetch(`${url}/v1/streams/app-logs/events?from=0&waitMs=20000`, { signal: holder.signal }).catch(() => undefined)
    await until('the long read holds the place', async () => (await readyzStatus(url)) === 503)
    const outcomes = await fetchInChild(`${url}/v1/exchanges/logs/publish`, 6, 2, 2, 'stream')
    expect(outcomes).toEqual(Array(6).fill('503 overloaded'))
    holder.abort()
    await hold
  }, 90_000)

  it('discards no more than maxDrainSize: a body declared larger is answered and the connection closed', async () => {
    const { url } = await startTestServer({ server: '  http: { port: 0, maxDrainSize: 1mb }\n  limits: { maxBodySize: 64kb }' })
    const socket = await openSocket(url)
    const reply = readAll(socket)
    // 100 MB declared: past maxBodySize, and past what the server will read to discard it.
    socket.write(postHead('/v1/exchanges/logs/publish', 100 * 1024 * 1024, 'application/x-ndjson'))
    socket.write(Buffer.alloc(64 * 1024, 0x20))
    const text = await reply
    expect(text).toMatch(/^HTTP\/1\.1 413 /)
    expect(text).toMatch(/connection: close/i)
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as WireError).toMatchObject({ error: { code: 'body_too_large' } })
  })

  it('keeps the connection after draining: the next request on it is served', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxBodySize: 64kb }' })
    const socket = await openSocket(url)
    const big = Buffer.alloc(256 * 1024, 0x20)
    const small = '{"n":1}'
    let data = ''
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')))
    // Both requests on one connection: the refused body is read and discarded, then the second is served.
    socket.write(postHead('/v1/exchanges/logs/publish', big.length, 'application/x-ndjson'))
    socket.write(big)
    socket.write(postHead('/v1/exchanges/logs/publish?routingKey=a.b', small.length, 'application/x-ndjson') + small)
    const deadline = Date.now() + 5000
    while (!data.includes('"accepted":1') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(data.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200'])
    expect((await readStream(url, 'app-logs')).events.map((e) => e.body)).toEqual([{ n: 1 }])
    // And curl, which stops sending once it sees an early answer, gets it as well.
    const curl = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-s', '-H', 'content-type: application/x-ndjson', '--data-binary', '@-', `${url}/v1/exchanges/logs/publish`], (err, stdout) => (err !== null ? reject(err) : resolve(stdout))).stdin!.end(big),
    )
    expect((JSON.parse(curl) as WireError).error.code).toBe('body_too_large')
    const plain = await httpCall(url, { method: 'POST', path: '/v1/exchanges/logs/publish', headers: { 'content-type': 'application/x-ndjson' }, body: big })
    expect(plain.status).toBe(413)
  })
})
