import { spawn, spawnSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { makePki, tlsYaml } from '../helpers/pki.js'
import { freePort, requireProgram, waitFor, waitForTcpPort } from '../helpers/programs.js'
import { startTestServer } from '../helpers/server.js'
import { allEvents, syslogPipeline, waitCount } from '../helpers/syslog.js'
import { tempDir } from '../helpers/temp.js'

describe('interop with rsyslog over TLS (gtls, RFC 5425)', () => {
  it('rsyslog forwards over mutual TLS with octet counting; every message arrives once, in order', async () => {
    const rsyslogd = requireProgram('rsyslogd', 'rsyslog')
    const logger = requireProgram('logger', 'bsdutils')
    const dir = await tempDir()
    // rsyslog loads lmnsd_gtls only when it forwards over TLS: check the package is there, so a
    // missing one says so rather than showing as a connection that never comes up.
    const gtls = spawnSync('sh', ['-c', 'ls /usr/lib/*/rsyslog/lmnsd_gtls.so /usr/lib/rsyslog/lmnsd_gtls.so 2>/dev/null'], { encoding: 'utf8' })
    if (gtls.stdout.trim() === '') throw new Error('rsyslog has no gtls driver: install the Debian package "rsyslog-gnutls" (.ci/run does this with apt-get)')
    const pki = await makePki(dir)
    // TLS only, and a client certificate required: the port of RFC 5425 (6514) as Sluice serves it.
    // The listener names its user, so the certificate (CN=shipper) only decides who gets in.
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: `[ { port: 0, exchange: logs, user: guest, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    const tlsPort = s.server.listeners.find((l) => l.options.name === 'syslog' && l.tls === true)!.port
    await mkdir(join(dir, 'work'))
    const inPort = await freePort()
    const conf = join(dir, 'rsyslog.conf')
    const n = 2000
    // Plain TCP in (from logger), TLS out: the driver and its files are the action's own. The
    // server's certificate is checked against the CA and its name (x509/name).
    await writeFile(
      conf,
      `global(workDirectory="${join(dir, 'work')}"
       DefaultNetstreamDriverCAFile="${pki.ca}"
       DefaultNetstreamDriverCertFile="${pki.client.cert}"
       DefaultNetstreamDriverKeyFile="${pki.client.key}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${inPort}" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="${tlsPort}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
         template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted"
         queue.type="LinkedList" queue.size="100000" action.resumeRetryCount="-1" action.resumeInterval="1")
}
`,
    )
    const check = spawnSync(rsyslogd, ['-N1', '-f', conf], { encoding: 'utf8' })
    expect(check.status, check.stderr).toBe(0)
    const pidFile = join(dir, 'rsyslog.pid')
    const proc = spawn(rsyslogd, ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    onTestFinished(async () => {
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
    })
    await waitFor('rsyslog to write its pid file', async () => (await readFile(pidFile, 'utf8')).trim() || undefined, 15_000)
    await waitForTcpPort('rsyslog to accept on its input port', inPort)
    const feed = spawn(logger, ['-n', '127.0.0.1', '-P', String(inPort), '-T', '--octet-count', '--rfc5424', '-t', 'web', '-p', 'local3.notice'], { stdio: ['pipe', 'ignore', 'pipe'] })
    feed.stdin.end(`${Array.from({ length: n }, (_, i) => `rsyslog tls message ${i}`).join('\n')}\n`)
    expect(await new Promise<number | null>((r) => feed.once('exit', r))).toBe(0)
    expect(await waitCount(s.url, 'syslog', n, 60_000), `rsyslog said: ${stderr}`).toBe(n)
    await new Promise((r) => setTimeout(r, 300)) // anything extra would show up now
    const got = await allEvents(s.url, 'syslog')
    expect(got.map((e) => e.body.message)).toEqual(Array.from({ length: n }, (_, i) => `rsyslog tls message ${i}`))
    expect(got[0]!.body).toMatchObject({ app: 'web', facility: 'local3', severity: 'notice' })
  })
})
