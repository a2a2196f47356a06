// TLS on the GELF TCP and Forward doors, with their real clients (gelf-pro's tcp-tls adapter,
// fluent-logger and @fluent-org/logger over TLS) and certificates made by openssl at test time:
// mutual TLS, the client certificate's CN naming the user the events are published as.

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { FluentClient } from '@fluent-org/logger'
import fluentLogger from 'fluent-logger'
import gelfPro from 'gelf-pro'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makePki, tlsYaml, type Pair, type Pki } from '../helpers/pki.js'
import { startTestServer, type TestServer } from '../helpers/server.js'
import { allEvents, waitCount } from '../helpers/syslog.js'

const pipeline = `
exchanges:
  logs: { type: topic }
streams: { doors: {} }
bindings:
  - { exchange: logs, stream: doors, key: "#" }
`

// No listener user: each client certificate's CN names the user; reader may not write.
const users = `
auth:
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: reader, password: read-pw, permissions: { read: ".*" } }`

let dir: string
let pki: Pki
let reader: Pair
let pem: { ca: Buffer; cert: Buffer; key: Buffer; readerCert: Buffer; readerKey: Buffer; rogueCert: Buffer; rogueKey: Buffer }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-doors-tls-'))
  pki = await makePki(dir)
  reader = await pki.issue('reader', '/O=Acme/CN=reader', 'client')
  const [ca, cert, key, readerCert, readerKey, rogueCert, rogueKey] = await Promise.all([pki.ca, pki.client.cert, pki.client.key, reader.cert, reader.key, pki.rogue.cert, pki.rogue.key].map((f) => readFile(f)))
  pem = { ca: ca!, cert: cert!, key: key!, readerCert: readerCert!, readerKey: readerKey!, rogueCert: rogueCert!, rogueKey: rogueKey! }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const portOf = (s: TestServer, name: string): number => s.server.listeners.find((l) => l.options.name === name && l.tls === true)!.port

async function metric(s: TestServer, line: RegExp): Promise<number> {
  const m = line.exec(await (await fetch(`${s.url}/metrics`)).text())
  return m === null ? 0 : Number(m[1])
}

/**
 * What a TLS client gets from the listener with these credentials after writing `data`: `closed`
 * when the server ends the connection (a refused user), `refused: …` when the handshake or the
 * socket fails (no or a bad certificate).
 */
async function tryClient(port: number, creds: { cert?: Buffer; key?: Buffer }, data: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: pem.ca, ...creds, servername: 'localhost' })
    socket.on('error', (err) => resolve(`refused: ${err.message}`))
    socket.on('data', () => undefined)
    socket.once('secureConnect', () => socket.write(data))
    socket.once('close', () => resolve('closed'))
    setTimeout(() => {
      socket.destroy()
      resolve('still open')
    }, 3000).unref()
  })
}

describe('GELF over TLS (TCP)', () => {
  it('gelf-pro tcp-tls with a client certificate: every message once, in order, with its fields; no certificate, a rogue one or a user without write is refused', async () => {
    const s = await startTestServer({ pipeline: `${pipeline}${users}`, server: `  gelf: [ { port: 0, exchange: logs, udp: false, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    const port = portOf(s, 'gelf')
    const client = Object.create(gelfPro) as typeof gelfPro
    client.setConfig({ adapterName: 'tcp-tls', adapterOptions: { host: '127.0.0.1', port, ca: pem.ca, cert: pem.cert, key: pem.key, servername: 'localhost' } as never, fields: { facility: 'billing', service: 'api' } })
    const n = 300
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => client.message(`gelf over tls ${i} é ✓`, 3 + (i % 4), { request_id: `r${i}`, n: i }, (err) => (err === undefined || err === null ? resolve() : reject(err))))
    }
    expect(await waitCount(s.url, 'doors', n, 15_000)).toBe(n)
    const got = await allEvents(s.url, 'doors')
    expect(got.map((e) => e.body.short_message)).toEqual(Array.from({ length: n }, (_, i) => `gelf over tls ${i} é ✓`))
    got.forEach((e, i) => {
      expect(e.body).toMatchObject({ version: '1.1', level: 3 + (i % 4), _facility: 'billing', _service: 'api', _request_id: `r${i}`, _n: i })
      expect(e.routingKey).toBe(`${String(e.body.host)}.${3 + (i % 4)}`)
    })

    const frame = Buffer.from(`${JSON.stringify({ version: '1.1', host: 'h', short_message: 'must not be stored' })}\0`)
    expect(await tryClient(port, {}, frame)).toMatch(/^refused|^closed/)
    expect(await tryClient(port, { cert: pem.rogueCert, key: pem.rogueKey }, frame)).toMatch(/^refused|^closed/)
    expect(await tryClient(port, { cert: pem.readerCert, key: pem.readerKey }, frame)).toBe('closed')
    await new Promise((r) => setTimeout(r, 300))
    expect(await allEvents(s.url, 'doors')).toHaveLength(n)
    expect(await metric(s, /sluice_tls_handshake_failures_total\{listener="gelf"\} (\d+)/)).toBeGreaterThanOrEqual(2)
    expect(await metric(s, /sluice_auth_denials_total\{door="gelf"[^}]*\} (\d+)/)).toBe(1)
  })
})

describe('Fluent Forward over TLS', () => {
  it('fluent-logger with tls and requireAckResponse: 1,000 records, each acked once stored, once, in order', async () => {
    const s = await startTestServer({ pipeline: `${pipeline}${users}`, server: `  forward: [ { port: 0, exchange: logs, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    const port = portOf(s, 'forward')
    const sender = fluentLogger.createFluentSender<{ i: number; msg: string }>('app', {
      host: '127.0.0.1',
      port,
      tls: true,
      tlsOptions: { ca: pem.ca, cert: pem.cert, key: pem.key, servername: 'localhost' },
      requireAckResponse: true,
      ackResponseTimeout: 10_000,
    })
    const n = 1000
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => sender.emit('web', { i, msg: `forward over tls ${i} é ✓` }, (err) => (err === undefined || err === null ? resolve() : reject(err))))
    }
    // Every record was acked, and an ack is sent only once the record is stored.
    const got = await allEvents(s.url, 'doors')
    expect(got.map((e) => (e.body.record as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i))
    for (const e of got) {
      expect(e.routingKey).toBe('app.web')
      expect(e.body.tag).toBe('app.web')
      const r = e.body.record as { i: number; msg: string }
      expect(r.msg).toBe(`forward over tls ${r.i} é ✓`)
    }
    // Without a label and data, end() only closes (its types ask for both).
    await new Promise<void>((resolve) => sender.end(undefined as never, undefined as never, () => resolve()))
  })

  it('@fluent-org/logger over TLS with acks; no certificate, a rogue one or a user without write is refused', async () => {
    const s = await startTestServer({ pipeline: `${pipeline}${users}`, server: `  forward: [ { port: 0, exchange: logs, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    const port = portOf(s, 'forward')
    const client = new FluentClient('org', { socket: { host: '127.0.0.1', port, tls: { ca: pem.ca, cert: pem.cert, key: pem.key, servername: 'localhost' } }, ack: { ackTimeout: 10_000 } })
    const n = 500
    for (let i = 0; i < n; i++) await client.emit('svc', { i, msg: `org over tls ${i}` })
    await client.disconnect()
    const got = await allEvents(s.url, 'doors')
    expect(got.map((e) => [e.routingKey, (e.body.record as { i: number; msg: string }).msg])).toEqual(Array.from({ length: n }, (_, i) => ['org.svc', `org over tls ${i}`]))

    // A Message mode entry, [tag, time, record], as msgpack: 0x93 fixarray, tag, time, {"x": 1}.
    const message = Buffer.from([0x93, 0xa3, 0x62, 0x61, 0x64, 0x01, 0x81, 0xa1, 0x78, 0x01])
    expect(await tryClient(port, {}, message)).toMatch(/^refused|^closed/)
    expect(await tryClient(port, { cert: pem.rogueCert, key: pem.rogueKey }, message)).toMatch(/^refused|^closed/)
    expect(await tryClient(port, { cert: pem.readerCert, key: pem.readerKey }, message)).toBe('closed')
    await new Promise((r) => setTimeout(r, 300))
    expect(await allEvents(s.url, 'doors')).toHaveLength(n)
    expect(await metric(s, /sluice_tls_handshake_failures_total\{listener="forward"\} (\d+)/)).toBeGreaterThanOrEqual(2)
    expect(await metric(s, /sluice_auth_denials_total\{door="forward"[^}]*\} (\d+)/)).toBe(1)
  })
})
