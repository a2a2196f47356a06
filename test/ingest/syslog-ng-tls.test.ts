import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { makePki, tlsYaml } from '../helpers/pki.js'
import { freePort, requireProgram, waitForTcpPort } from '../helpers/programs.js'
import { startTestServer } from '../helpers/server.js'
import { runSyslogNg } from '../helpers/syslog-ng.js'
import { allEvents, syslogPipeline, waitCount } from '../helpers/syslog.js'
import { tempDir } from '../helpers/temp.js'

describe('interop with syslog-ng over TLS', () => {
  it('syslog-ng network(transport(tls)) forwards over mutual TLS as the user its certificate names; every message arrives once, in order', async () => {
    const logger = requireProgram('logger', 'bsdutils')
    const dir = await tempDir()
    const pki = await makePki(dir)
    // No listener user: the client certificate's CN (shipper) names the user events are published as.
    const users = `
auth:
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
`
    const s = await startTestServer({ server: users, pipeline: syslogPipeline, syslog: `[ { port: 0, exchange: logs, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    const tlsPort = s.server.listeners.find((l) => l.options.name === 'syslog' && l.tls === true)!.port
    const inPort = await freePort()
    const n = 2000
    // RFC 5424 in from logger, BSD syslog with LF framing out over TLS: what network() sends. The
    // server's certificate must chain to the CA and name 127.0.0.1; syslog-ng shows its own.
    const sng = await runSyslogNg(
      dir,
      `options { keep_hostname(yes); chain_hostnames(no); use_dns(no); stats_freq(0); time_reopen(1); log_fifo_size(100000); };
source s_in { syslog(ip("127.0.0.1") port(${inPort}) transport("tcp") log-iw-size(100000) max-connections(2)); };
destination d_tls { network("127.0.0.1" port(${tlsPort}) transport("tls")
  tls(ca-file("${pki.ca}") cert-file("${pki.client.cert}") key-file("${pki.client.key}") peer-verify(required-trusted))); };
log { source(s_in); destination(d_tls); flags(flow-control); };
`,
    )
    await waitForTcpPort('syslog-ng to accept on its input port', inPort)
    const feed = spawn(logger, ['-n', '127.0.0.1', '-P', String(inPort), '-T', '--octet-count', '--rfc5424', '-t', 'web', '-p', 'local3.notice'], { stdio: ['pipe', 'ignore', 'pipe'] })
    feed.stdin.end(`${Array.from({ length: n }, (_, i) => `syslog-ng tls message ${i}`).join('\n')}\n`)
    expect(await new Promise<number | null>((r) => feed.once('exit', r))).toBe(0)
    expect(await waitCount(s.url, "syslog", n, 20_000), `syslog-ng said: ${sng.stderr()}`).toBe(n)
    await new Promise((r) => setTimeout(r, 300)) // anything extra would show up now
    const got = await allEvents(s.url, 'syslog')
    expect(got.map((e) => e.body.message)).toEqual(Array.from({ length: n }, (_, i) => `syslog-ng tls message ${i}`))
    expect(got[0]!.body).toMatchObject({ app: 'web', facility: 'local3', severity: 'notice' })
  })
})
