// An octet count over maxMessageSize, through the real syslog door: the frame goes to
// ingest-errors and the frames after it on the same connection are stored.

import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/consume.js'
import { startTestServer } from '../helpers/server.js'
import { allEvents, syslogPipeline, tcpPort, waitCount } from '../helpers/syslog.js'

async function open(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return socket
}

const counted = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`

describe('syslog door: octet counts over maxMessageSize', () => {
  it('a count of 999999999 is set aside and the frames after it are stored, in order', async () => {
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udp: false, maxMessageSize: 64kb }' })
    const socket = await open(tcpPort(s))
    socket.write(counted('<13>1 - h app - - - before\n'))
    // A lying count, in its own write and then with the next frames in the same segment.
    socket.write('999999999 <13>1 - h app - - - the liar\n')
    await sleep(20)
    socket.write(`${counted('<13>1 - h app - - - after one\n')}<13>1 - h app - - - after two\n`)
    socket.write(`999999999 <13>1 - h app - - - liar again\n${counted('<13>1 - h app - - - last\n')}`)
    socket.end()
    expect(await waitCount(s.url, 'syslog', 4)).toBe(4)
    expect((await allEvents(s.url, 'syslog')).map((e) => e.body.message)).toEqual(['before', 'after one', 'after two', 'last'])
    expect(await waitCount(s.url, 'ingest-errors', 2)).toBe(2)
    const errors = await allEvents(s.url, 'ingest-errors')
    expect(errors.map((e) => e.body.listener)).toEqual(['syslog', 'syslog'])
    for (const e of errors) expect(String(e.body.reason)).toMatch(/999999999 bytes is over maxMessageBytes \(65536\); skipped to the next frame/)
    expect(errors.map((e) => String(e.body.raw))).toEqual(['999999999 <13>1 - h app - - - the liar\n', '999999999 <13>1 - h app - - - liar again\n'])
  })

  it('an honest over-long counted frame without LF (as logger sends) is skipped to its end', async () => {
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udp: false, maxMessageSize: 1kb }' })
    const socket = await open(tcpPort(s))
    const long = `<13>1 - h app - - - ${'x'.repeat(5000)}`
    socket.end(counted('<13>1 - h app - - - first') + counted(long) + counted('<13>1 - h app - - - second'))
    expect(await waitCount(s.url, 'syslog', 2)).toBe(2)
    expect((await allEvents(s.url, 'syslog')).map((e) => e.body.message)).toEqual(['first', 'second'])
    expect(await waitCount(s.url, 'ingest-errors', 1)).toBe(1)
    expect(String((await allEvents(s.url, 'ingest-errors'))[0]!.body.reason)).toMatch(/5020 bytes is over maxMessageBytes \(1024\)/)
  })
})
