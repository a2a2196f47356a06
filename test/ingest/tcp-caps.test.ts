import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { startTestServer, type TestServer } from '../helpers/server.js'
import { limitHits } from '../../src/limits.js'

const port = (s: TestServer, name: string): number => s.server.listeners.find((l) => l.options.name === name)!.port

/** Opens a connection and reports, after a moment, whether the server kept it open. */
async function openKept(p: number, localAddress = '127.0.0.1'): Promise<{ socket: Socket; kept: boolean }> {
  const socket = connect({ host: '127.0.0.1', port: p, localAddress })
  let closed = false
  socket.on('error', () => undefined)
  socket.on('close', () => (closed = true))
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  await sleep(100)
  return { socket, kept: !closed }
}

describe('TCP door connection caps', () => {
  it('maxConnectionsPerAddress: one address is capped, another still gets in', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs, maxConnectionsPerAddress: 3 }' })
    const before = limitHits.get('ndjson.maxConnectionsPerAddress') ?? 0
    const mine = [] as Array<{ socket: Socket; kept: boolean }>
    for (let i = 0; i < 5; i++) mine.push(await openKept(port(s, 'ndjson')))
    expect(mine.map((c) => c.kept)).toEqual([true, true, true, false, false])
    expect((limitHits.get('ndjson.maxConnectionsPerAddress') ?? 0) - before).toBe(2)
    const other = await openKept(port(s, 'ndjson'), '127.0.0.2')
    expect(other.kept).toBe(true)
    // A closed one gives its place back.
    mine[0]!.socket.destroy()
    await sleep(100)
    expect((await openKept(port(s, 'ndjson'))).kept).toBe(true)
    for (const c of [...mine, other]) c.socket.destroy()
  })

  it('server.limits.maxConnections is one count across the TCP doors', async () => {
    const s = await startTestServer({
      server: '  limits: { maxConnections: 4 }',
      ndjson: '{ port: 0, exchange: logs }',
      syslog: '{ port: 0, udp: false, exchange: logs }',
    })
    const got = [] as Array<{ socket: Socket; kept: boolean }>
    for (let i = 0; i < 3; i++) got.push(await openKept(port(s, 'ndjson')))
    for (let i = 0; i < 2; i++) got.push(await openKept(port(s, 'syslog')))
    expect(got.map((c) => c.kept)).toEqual([true, true, true, true, false])
    for (const c of got) c.socket.destroy()
  })
})
