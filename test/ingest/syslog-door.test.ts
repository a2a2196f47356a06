import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { startTestServer } from '../helpers/server.js'
import { allEvents, syslogPipeline, tcpPort, udpPort, waitCount } from '../helpers/syslog.js'

const fixture = (name: string) => readFile(new URL(`../fixtures/syslog/${name}`, import.meta.url))
const expected = async (name: string) => (await readFile(new URL(`../fixtures/syslog/${name}`, import.meta.url), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)

async function open(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return socket
}

const fields = (e: Record<string, unknown>) => ({ host: e.host, app: e.app, procid: e.procid, msgid: e.msgid, facility: e.facility, severity: e.severity, message: e.message })

describe('syslog door', () => {
  for (const name of ['logger-rfc5424-tcp-octet', 'logger-rfc3164-tcp-lf', 'rsyslog-5424-tcp-octet', 'rsyslog-traditional-tcp', 'syslog-ng-syslog-tcp']) {
    it(`stores ${name} as captured, in order, keyed syslog.<facility>.<severity>`, async () => {
      const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udp: false }' })
      const socket = await open(tcpPort(s))
      const bytes = await fixture(`${name}.bin`)
      // Split at an awkward place: mid-frame, mid-count.
      socket.write(bytes.subarray(0, 7))
      await sleep(10)
      socket.end(bytes.subarray(7))
      const want = await expected(`${name}.expected.ndjson`)
      expect(await waitCount(s.url, 'syslog', want.length)).toBe(want.length)
      const got = await allEvents(s.url, 'syslog')
      expect(got.map((e) => fields(e.body))).toEqual(want.map(fields))
      expect(got.map((e) => e.routingKey)).toEqual(want.map((w) => `syslog.${String(w.facility)}.${String(w.severity)}`))
    })
  }

  it('takes UDP datagrams, one message each', async () => {
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs }' })
    const client = createSocket('udp4')
    const msgs = ['<134>1 2026-11-25T15:56:32.708988+00:00 vm web - - - GET / 200', '<12>Nov 25 15:56:32 vm api[1436]: request slow', '<79>1 - - cron - - - tick\n']
    for (const m of msgs) await new Promise<void>((r) => client.send(Buffer.from(m), udpPort(s), '127.0.0.1', () => r()))
    client.close()
    expect(await waitCount(s.url, 'syslog', 3)).toBe(3)
    const got = await allEvents(s.url, 'syslog')
    expect(got.map((e) => [e.body.app, e.body.message, e.routingKey])).toEqual([
      ['web', 'GET / 200', 'syslog.local0.info'],
      ['api', 'request slow', 'syslog.user.warning'],
      ['cron', 'tick', 'syslog.cron.debug'],
    ])
  })

  it('sets aside a 10 MB line and binary garbage, and keeps the connection going', async () => {
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udp: false, maxMessageSize: 64kb }' })
    const socket = await open(tcpPort(s))
    socket.write('<13>1 - h app - - - before\n')
    socket.write(`<13>1 - h app - - - ${'x'.repeat(10 * 1024 * 1024)}\n`)
    socket.write(Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x02, 0x0a]))
    socket.end('<13>1 - h app - - - after\n')
    expect(await waitCount(s.url, 'syslog', 2)).toBe(2)
    expect((await allEvents(s.url, 'syslog')).map((e) => e.body.message)).toEqual(['before', 'after'])
    expect(await waitCount(s.url, 'ingest-errors', 2)).toBe(2)
    const errors = await allEvents(s.url, 'ingest-errors')
    expect(errors.map((e) => e.body.listener)).toEqual(['syslog', 'syslog'])
    expect(String(errors[0]!.body.reason)).toMatch(/maxMessageBytes|64|long/i)
  })

  it('a half-open connection delivers what it sent; a client that never reads costs nothing', async () => {
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udp: false }' })
    const half = await open(tcpPort(s))
    half.end('<13>1 - h app - - - last words without LF') // FIN after an unterminated frame
    const mute = connect({ host: '127.0.0.1', port: tcpPort(s) })
    mute.pause() // never reads: the syslog door never writes, so nothing piles up
    await new Promise<void>((r) => mute.once('connect', () => r()))
    mute.write('<13>1 - h app - - - from the mute one\n')
    expect(await waitCount(s.url, 'syslog', 2)).toBe(2)
    expect(new Set((await allEvents(s.url, 'syslog')).map((e) => e.body.message))).toEqual(new Set(['last words without LF', 'from the mute one']))
    mute.destroy()
  })
})

describe('interop with util-linux logger', () => {
  const n = 10_000
  for (const mode of [
    { name: 'RFC 5424 over TCP with octet counting', args: ['-T', '--octet-count', '--rfc5424'] },
    { name: 'RFC 3164 over TCP with LF framing', args: ['-T', '--rfc3164'] },
    { name: 'RFC 5424 over UDP', args: ['-d', '--rfc5424'] },
    { name: 'RFC 3164 over UDP', args: ['-d', '--rfc3164'] },
  ]) {
    it(`${n} messages, ${mode.name}, arrive once and in order with fields parsed`, async () => {
      const { requireProgram } = await import('../helpers/programs.js')
      const logger = requireProgram('logger', 'bsdutils')
      const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udpQueueSize: 100000 }' })
      const udp = mode.args.includes('-d')
      const port = udp ? udpPort(s) : tcpPort(s)
      const child = spawn(logger, ['-n', '127.0.0.1', '-P', String(port), ...mode.args, '-t', 'web', '-p', 'local0.info', '--id=4242'], { stdio: ['pipe', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const lines = Array.from({ length: n }, (_, i) => `message ${i} GET /health 200`).join('\n')
      if (udp) {
        // UDP has no flow control: pace the sender so the loopback buffer is not the test.
        for (let k = 0; k < n; k += 500) {
          child.stdin.write(`${lines.split('\n').slice(k, k + 500).join('\n')}\n`)
          await sleep(30)
        }
        child.stdin.end()
      } else {
        child.stdin.end(`${lines}\n`)
      }
      const code = await new Promise<number | null>((r) => child.once('exit', r))
      expect(stderr).toBe('')
      expect(code).toBe(0)
      expect(await waitCount(s.url, 'syslog', n, 30_000)).toBe(n)
      const got = await allEvents(s.url, 'syslog')
      expect(got).toHaveLength(n)
      expect(got.map((e) => e.body.message)).toEqual(Array.from({ length: n }, (_, i) => `message ${i} GET /health 200`))
      expect(got[0]!.body).toMatchObject({ app: 'web', procid: '4242', facility: 'local0', severity: 'info' })
      expect(got[0]!.routingKey).toBe('syslog.local0.info')
    })
  }
})
