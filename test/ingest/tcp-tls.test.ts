import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { TlsConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import { TcpListener, type TcpListenerOptions } from '../../src/ingest/tcp/server.js'
import type { PeerCertificate } from '../../src/ingest/tcp/tls.js'
import { makePki, type Pki } from '../helpers/pki.js'

let pki: Pki
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-tcp-tls-'))
  pki = await makePki(dir)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

interface Seen {
  readonly socket: Socket
  readonly peer: PeerCertificate | undefined
  readonly data: Buffer[]
}

/** A TLS door that echoes nothing and records what each connection sent and who it was. */
async function door(tls: Partial<TlsConfig>, opts: Partial<TcpListenerOptions> = {}): Promise<{ listener: TcpListener; seen: Seen[] }> {
  const seen: Seen[] = []
  const config: TlsConfig = { cert: pki.server.cert, key: pki.server.key, ca: null, clientAuth: 'none', minVersion: 'TLSv1.2', ...tls }
  const listener = new TcpListener({
    name: 'ndjson',
    host: '127.0.0.1',
    port: 0,
    maxConnections: 100,
    idleTimeoutMs: 60_000,
    logger: createLogger('silent'),
    tls: { config, label: 'ndjson test' },
    onConnection: (socket, _remote, peer) => {
      const s: Seen = { socket, peer, data: [] }
      seen.push(s)
      socket.on('data', (chunk: Buffer) => s.data.push(chunk))
      return { end: async () => undefined }
    },
    ...opts,
  })
  await listener.listen()
  onTestFinished(() => listener.close())
  return { listener, seen }
}

/** Connects; resolves once the handshake is done, or with the error that ended it. */
function dial(port: number, opts: ConnectionOptions = {}): Promise<TLSSocket | Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca), servername: 'localhost', ...opts })
    onTestFinished(() => void socket.destroy())
    socket.once('secureConnect', () => resolve(socket))
    socket.once('error', (err) => resolve(err))
  })
}

/** Whether the server ends the connection (read error, reset or close) within `ms`. */
function closedWithin(socket: TLSSocket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true)
    const t = setTimeout(() => resolve(false), ms)
    socket.on('error', () => undefined)
    socket.once('close', () => {
      clearTimeout(t)
      resolve(true)
    })
  })
}

const until = async (what: string, cond: () => boolean, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('a TLS door', () => {
  it('hands the door a decrypted stream and no peer certificate under clientAuth none', async () => {
    const { listener, seen } = await door({})
    const client = await dial(listener.port)
    expect(client).not.toBeInstanceOf(Error)
    ;(client as TLSSocket).write('{"a":1}\n')
    await until('the line', () => Buffer.concat(seen[0]?.data ?? []).toString() === '{"a":1}\n')
    expect(seen[0]!.peer).toBeUndefined()
    expect(listener.tls).toBe(true)
    expect(listener.counters.connections).toBe(1)
  })

  it('under clientAuth required, refuses a client without a certificate or with one from another CA, and names the one it lets in', async () => {
    const { listener, seen } = await door({ ca: pki.ca, clientAuth: 'required' })
    const none = await dial(listener.port)
    // TLS 1.3 finishes the client's side of the handshake before the server's verdict arrives.
    if (!(none instanceof Error)) expect(await closedWithin(none, 2000)).toBe(true)
    const rogue = await dial(listener.port, { cert: readFileSync(pki.rogue.cert), key: readFileSync(pki.rogue.key) })
    if (!(rogue instanceof Error)) expect(await closedWithin(rogue, 2000)).toBe(true)
    await until('two failed handshakes counted', () => listener.counters.tlsHandshakeFailures === 2)
    expect(seen).toHaveLength(0)

    const shipper = await dial(listener.port, { cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) })
    expect(shipper).not.toBeInstanceOf(Error)
    await until('the connection', () => seen.length === 1)
    expect(seen[0]!.peer).toMatchObject({ subject: 'CN=shipper,O=Acme', commonName: 'shipper' })
    expect(seen[0]!.peer!.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    expect(await closedWithin(shipper as TLSSocket, 300)).toBe(false)
  })

  it('under clientAuth optional, lets in a client without a certificate, refuses a bad one, and names a good one', async () => {
    const { listener, seen } = await door({ ca: pki.ca, clientAuth: 'optional' })
    const anonymous = await dial(listener.port)
    expect(anonymous).not.toBeInstanceOf(Error)
    await until('the anonymous connection', () => seen.length === 1)
    expect(seen[0]!.peer).toBeUndefined()

    const rogue = await dial(listener.port, { cert: readFileSync(pki.rogue.cert), key: readFileSync(pki.rogue.key) })
    if (!(rogue instanceof Error)) expect(await closedWithin(rogue, 2000)).toBe(true)
    expect(listener.counters.tlsHandshakeFailures).toBe(1)
    expect(seen).toHaveLength(1)

    const shipper = await dial(listener.port, { cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) })
    expect(shipper).not.toBeInstanceOf(Error)
    await until('the named connection', () => seen.length === 2)
    expect(seen[1]!.peer?.subject).toBe('CN=shipper,O=Acme')
    expect(await closedWithin(anonymous as TLSSocket, 300)).toBe(false)
  })

  it('refuses TLS 1.2 when minVersion is TLSv1.3', async () => {
    const { listener, seen } = await door({ minVersion: 'TLSv1.3' })
    const old = await dial(listener.port, { maxVersion: 'TLSv1.2' })
    expect(old).toBeInstanceOf(Error)
    expect(String((old as Error & { code?: string }).code)).toMatch(/PROTOCOL_VERSION|ECONNRESET/)
    const current = await dial(listener.port)
    expect((current as TLSSocket).getProtocol()).toBe('TLSv1.3')
    await until('one handshake failure', () => listener.counters.tlsHandshakeFailures === 1)
    await until('the TLS 1.3 client served', () => seen.length === 1)
  })

  it('holds TLS connections to maxConnectionsPerAddress at accept, before their handshake', async () => {
    const { listener, seen } = await door({}, { maxConnectionsPerAddress: 2 })
    const a = await dial(listener.port)
    const b = await dial(listener.port)
    expect(a).not.toBeInstanceOf(Error)
    expect(b).not.toBeInstanceOf(Error)
    const c = await dial(listener.port)
    expect(c).toBeInstanceOf(Error)
    expect(listener.counters.connectionsRefused).toBe(1)
    expect(listener.counters.connections).toBe(2)
    ;(a as TLSSocket).destroy()
    await until('the first to go', () => listener.counters.connections === 1)
    expect(await dial(listener.port)).not.toBeInstanceOf(Error)
    await until('three served', () => seen.length === 3)
  })

  it('closes a TLS connection that stays silent past idleTimeout, and a handshake that never comes', async () => {
    const { listener } = await door({}, { idleTimeoutMs: 300, tlsHandshakeTimeoutMs: 300 })
    const quiet = await dial(listener.port)
    expect(await closedWithin(quiet as TLSSocket, 3000)).toBe(true)
    expect(listener.counters.idleClosed).toBe(1)
    // A TCP client that never starts its handshake.
    const { connect: tcpConnect } = await import('node:net')
    const raw = tcpConnect({ host: '127.0.0.1', port: listener.port })
    onTestFinished(() => void raw.destroy())
    raw.on('error', () => undefined)
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 3000)
      raw.once('close', () => {
        clearTimeout(t)
        resolve(true)
      })
    })
    expect(closed).toBe(true)
    expect(listener.counters.tlsHandshakeFailures).toBe(1)
    await until('both to be let go', () => listener.counters.connections === 0)
  })

  it('lets a stop through while a handshake is under way', async () => {
    const { listener } = await door({}, { tlsHandshakeTimeoutMs: 60_000 })
    const { connect: tcpConnect } = await import('node:net')
    const raw = tcpConnect({ host: '127.0.0.1', port: listener.port })
    raw.on('error', () => undefined)
    onTestFinished(() => void raw.destroy())
    await until('the socket to be counted', () => listener.counters.connections === 1)
    const started = Date.now()
    await listener.close()
    expect(Date.now() - started).toBeLessThan(2000)
  })
})
