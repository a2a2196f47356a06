import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { freePort, requireProgram, waitForTcpPort } from '../helpers/programs.js'
import { startTestServer, type TestServer } from '../helpers/server.js'
import { runSyslogNg, type SyslogNg } from '../helpers/syslog-ng.js'
import { allEvents, waitCount } from '../helpers/syslog.js'
import { tempDir } from '../helpers/temp.js'

const pipeline = `
exchanges:
  logs: { type: topic }
streams: { doors: {} }
bindings:
  - { exchange: logs, stream: doors, key: "#" }
`

const n = 1000
const text = (i: number): string => `syslog-ng door message ${i} é ✓`

/**
 * syslog-ng taking RFC 5424 from logger on a TCP port of its own and sending it on through
 * `destination`; flow control, so nothing is dropped on the way.
 */
async function feedThroughSyslogNg(dir: string, destination: string): Promise<SyslogNg> {
  const logger = requireProgram('logger', 'bsdutils')
  const inPort = await freePort()
  const sng = await runSyslogNg(
    dir,
    // The two destinations are blocks of syslog-ng's configuration library (SCL), loaded by name.
    `@include "scl/graylog2/plugin.conf"
@include "scl/elasticsearch/elastic-http.conf"
options { keep_hostname(yes); chain_hostnames(no); use_dns(no); stats_freq(0); time_reopen(1); log_fifo_size(100000); };
source s_in { syslog(ip("127.0.0.1") port(${inPort}) transport("tcp") log-iw-size(100000) max-connections(2)); };
destination d_out { ${destination} };
log { source(s_in); destination(d_out); flags(flow-control); };
`,
  )
  await waitForTcpPort('syslog-ng to accept on its input port', inPort).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; syslog-ng said: ${sng.stderr()}`)
  })
  const feed = spawn(logger, ['-n', '127.0.0.1', '-P', String(inPort), '-T', '--octet-count', '--rfc5424', '--id=4242', '-t', 'web', '-p', 'local3.notice'], { stdio: ['pipe', 'ignore', 'pipe'] })
  feed.stdin.end(`${Array.from({ length: n }, (_, i) => text(i)).join('\n')}\n`)
  expect(await new Promise<number | null>((r) => feed.once('exit', r))).toBe(0)
  return sng
}

async function arrived(s: TestServer, sng: SyslogNg): Promise<Array<{ body: Record<string, unknown>; routingKey: string }>> {
  expect(await waitCount(s.url, 'doors', n, 30_000), `syslog-ng said: ${sng.stderr()}`).toBe(n)
  await new Promise((r) => setTimeout(r, 500)) // anything sent twice would show up now
  return allEvents(s.url, 'doors')
}

describe('interop with syslog-ng on the GELF and Elasticsearch doors', () => {
  it("syslog-ng graylog2() over TCP to the GELF door: every message once, in order, with GELF's fields and syslog-ng's extras", async () => {
    const dir = await tempDir()
    const s = await startTestServer({ pipeline, server: '  gelf: { port: 0, exchange: logs, udp: false }' })
    const port = s.server.listeners.find((l) => l.options.name === 'gelf')!.port
    const before = Math.floor(Date.now() / 1000)
    const sng = await feedThroughSyslogNg(dir, `graylog2(host("127.0.0.1") port(${port}) transport(tcp));`)
    const got = await arrived(s, sng)
    expect(got.map((e) => e.body.short_message)).toEqual(Array.from({ length: n }, (_, i) => text(i)))
    const host = got[0]!.body.host
    expect(typeof host).toBe('string')
    for (const e of got) {
      // format-gelf: version 1.1, level the syslog severity (notice, 5), timestamp in whole seconds.
      expect(e.body).toMatchObject({ version: '1.1', host, level: 5, _program: 'web', _pid: 4242, _facility: 'local3' })
      expect(e.body.timestamp).toBeGreaterThanOrEqual(before)
      expect(e.body.timestamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000))
      // The door's default routing key, {host}.{level}.
      expect(e.routingKey).toBe(`${String(host)}.5`)
    }
    expect(await allEvents(s.url, 'ingest-errors')).toEqual([])
  })

  it('syslog-ng elasticsearch-http() to the bulk door: every message once, in order, as the document syslog-ng writes, routed by its index', async () => {
    const dir = await tempDir()
    const s = await startTestServer({ pipeline, server: '  elasticsearch: { exchange: logs }' })
    // One worker keeps the batches in order; a batch of 100 lines is one bulk request.
    const sng = await feedThroughSyslogNg(dir, `elasticsearch-http(url("${s.url}/_bulk") index("syslog-ng") type("") workers(1) batch-lines(100) batch-timeout(100));`)
    const got = await arrived(s, sng)
    expect(got.map((e) => e.body.MESSAGE)).toEqual(Array.from({ length: n }, (_, i) => text(i)))
    for (const e of got) {
      expect(e.routingKey).toBe('syslog-ng')
      // --scope rfc5424 with ISODATE as @timestamp: the syslog header's fields, named as syslog-ng names them.
      expect(e.body).toMatchObject({ PROGRAM: 'web', PID: '4242', FACILITY: 'local3', PRIORITY: 'notice', HOST: expect.any(String) })
      expect(Number.isNaN(Date.parse(String(e.body['@timestamp'])))).toBe(false)
    }
    expect(await allEvents(s.url, 'ingest-errors')).toEqual([])
  })
})
