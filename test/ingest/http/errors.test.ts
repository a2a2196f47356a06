import { describe, expect, it } from 'vitest'
import { isValidName } from '../../../src/config/index.js'
import { maxParamChars, nameMaxChars } from '../../../src/ingest/http/app.js'
import { readStream, startTestServer } from '../../helpers/server.js'
import { httpCall, openSocket, readAll, type WireError } from './util.js'

/** Splits a raw HTTP answer into its status and its JSON body. */
function parseRaw(text: string): { status: number; body: WireError; head: string } {
  const at = text.indexOf('\r\n\r\n')
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), head: text.slice(0, at), body: JSON.parse(text.slice(at + 4)) as WireError }
}

async function rawExchange(url: string, bytes: string): Promise<{ status: number; body: WireError; head: string }> {
  const socket = await openSocket(url)
  const reply = readAll(socket)
  socket.write(bytes)
  return parseRaw(await reply)
}

function expectShape(body: unknown, code: string): void {
  expect(body).toMatchObject({ error: { code, message: expect.any(String) as unknown } })
  expect(Object.keys((body as WireError).error).filter((k) => !['code', 'message', 'details'].includes(k))).toEqual([])
}

describe('names up to 200 characters reach their routes', () => {
  it('an exchange, a stream and a group named with 200 characters are published to, read and fetched over HTTP', async () => {
    const ex = `e${'x'.repeat(nameMaxChars - 1)}`
    const st = `s${'y'.repeat(nameMaxChars - 1)}`
    const gr = `g${'z'.repeat(nameMaxChars - 1)}`
    // The door's limit is the configuration's: 200 is a valid name, 201 is not.
    expect(isValidName(ex)).toBe(true)
    expect(isValidName(`${ex}x`)).toBe(false)
    const { url } = await startTestServer({
      pipeline: `
exchanges:
  ${ex}: { type: fanout }
streams:
  ${st}: {}
bindings:
  - { exchange: ${ex}, stream: ${st} }
groups:
  ${gr}: { stream: ${st} }
`,
    })
    const pub = await fetch(`${url}/v1/exchanges/${ex}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })
    expect(await pub.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    expect((await readStream(url, st)).events.map((e) => e.body)).toEqual([{ n: 1 }])
    expect(((await (await fetch(`${url}/v1/streams/${st}`)).json()) as { events: number }).events).toBe(1)
    const got = await fetch(`${url}/v1/groups/${gr}/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"consumer":"c"}' })
    expect(((await got.json()) as { events: Array<{ body: unknown }> }).events.map((e) => e.body)).toEqual([{ n: 1 }])
    // Percent-encoded, the same name is three times as long and still arrives.
    const encoded = [...ex].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('')
    expect(encoded.length).toBe(maxParamChars)
    const pub2 = await fetch(`${url}/v1/exchanges/${encoded}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":2}' })
    expect(pub2.status).toBe(200)
    // A longer name cannot exist: it is simply unknown, in the usual shape.
    const longer = await fetch(`${url}/v1/exchanges/${ex}x/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":3}' })
    expect(longer.status).toBe(404)
    expectShape(await longer.json(), 'unknown_exchange')
  })
})

describe('every error Node or fastify produces has the contract shape', () => {
  it('414 for a path segment past what any name needs', async () => {
    const { url } = await startTestServer()
    const res = await fetch(`${url}/v1/streams/${'a'.repeat(maxParamChars + 1)}/events`)
    expect(res.status).toBe(414)
    expectShape(await res.json(), 'uri_too_long')
  })

  it('400 for a malformed URL and for what is not HTTP at all', async () => {
    const { url } = await startTestServer()
    const badUrl = await fetch(`${url}/v1/streams/%E0%A4%A/events`)
    expect(badUrl.status).toBe(400)
    const b = (await badUrl.json()) as WireError
    expectShape(b, 'bad_request')
    expect(b.error.details).toMatchObject({ reason: 'bad_url' })
    const garbage = await rawExchange(url, 'HELLO THERE\r\n\r\n')
    expect(garbage.status).toBe(400)
    expectShape(garbage.body, 'bad_request')
    expect(garbage.head).toMatch(/connection: close/i)
  })

  it('404 for no route, in any method', async () => {
    const { url } = await startTestServer()
    for (const method of ['GET', 'POST', 'DELETE']) {
      const res = await httpCall(url, { method, path: '/v2/nothing', headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined })
      expect(res.status).toBe(404)
      expectShape(JSON.parse(res.text), 'not_found')
    }
  })

  it('408 when the headers do not arrive in time', async () => {
    const { url } = await startTestServer({ server: '  http: { port: 0, headersTimeout: 1s, requestTimeout: 2s }' })
    const socket = await openSocket(url)
    const reply = readAll(socket)
    socket.write('GET /v1/streams HTTP/1.1\r\nHost: x\r\n')
    const answer = parseRaw(await reply)
    expect(answer.status).toBe(408)
    expectShape(answer.body, 'request_timeout')
    expect(answer.body.error.details).toMatchObject({ limit: 'headersTimeout', limitMs: 1000 })
  })

  it('413 for a body over maxBodySize, by its length or as it streams in', async () => {
    const { url } = await startTestServer({ server: '  limits: { maxBodySize: 1kb }' })
    const declared = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: 'x'.repeat(2048) })
    expect(declared.status).toBe(413)
    expectShape(await declared.json(), 'body_too_large')
    const chunks = [Buffer.alloc(800, 0x20), Buffer.alloc(800, 0x20)]
    const streamed = await fetch(`${url}/v1/exchanges/logs/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: new ReadableStream<Uint8Array>({
        pull: (c) => {
          const next = chunks.shift()
          if (next === undefined) c.close()
          else c.enqueue(next)
        },
      }),
      duplex: 'half',
    } as RequestInit)
    expect(streamed.status).toBe(413)
    expectShape(await streamed.json(), 'body_too_large')
  })

  it('431 for headers past Node’s limit', async () => {
    const { url } = await startTestServer()
    const answer = await rawExchange(url, `GET /v1/streams HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(answer.status).toBe(431)
    expectShape(answer.body, 'headers_too_large')
  })

  it('400 for a body that is not JSON, on the consume routes as on publish', async () => {
    const { url } = await startTestServer({ pipeline: 'exchanges: { logs: { type: fanout } }\nstreams: { s: {} }\nbindings: [{ exchange: logs, stream: s }]\ngroups: { g: { stream: s } }\n' })
    for (const path of ['/v1/groups/g/fetch', '/v1/groups/g/ack', '/v1/groups/g/nack']) {
      const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"consumer":' })
      expect(res.status).toBe(400)
      expectShape(await res.json(), 'bad_request')
    }
    const pub = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' })
    expect(pub.status).toBe(400)
    expectShape(await pub.json(), 'bad_event')
    const gz = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: 'not gzip at all' })
    expect(gz.status).toBe(400)
    expectShape(await gz.json(), 'bad_request')
    const br = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, body: '{}' })
    expect(br.status).toBe(400)
    expectShape(await br.json(), 'bad_request')
  })
})
