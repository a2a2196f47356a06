import { spawn, spawnSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { freePort, requireProgram, waitFor, waitForTcpPort } from '../helpers/programs.js'
import { startTestServer } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'
import { allEvents, syslogPipeline, tcpPort, waitCount } from '../helpers/syslog.js'

describe('interop with rsyslog omfwd', () => {
  const n = 10_000
  for (const framing of ['octet-counted', 'traditional'] as const) {
    it(`${n} messages forwarded over TCP (${framing} framing, RFC 5424) arrive exactly once, in order`, async () => {
      const rsyslogd = requireProgram('rsyslogd', 'rsyslog')
      const logger = requireProgram('logger', 'bsdutils')
      const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, udp: false }' })
      const dir = await tempDir()
      await mkdir(join(dir, 'work'))
      const inPort = await freePort()
      const conf = join(dir, 'rsyslog.conf')
      // Its own ruleset keeps rsyslog's self-messages out of the forward; a memory queue with
      // retries so nothing is lost while the connection comes up.
      await writeFile(
        conf,
        `global(workDirectory="${join(dir, 'work')}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${inPort}" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="${tcpPort(s)}" protocol="tcp"
         template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="${framing}"
         queue.type="LinkedList" queue.size="100000" action.resumeRetryCount="-1" action.resumeInterval="1")
}
`,
      )
      const check = spawnSync(rsyslogd, ['-N1', '-f', conf], { encoding: 'utf8' })
      expect(check.status, check.stderr).toBe(0)
      const pidFile = join(dir, 'rsyslog.pid')
      const proc = spawn(rsyslogd, ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'ignore', 'pipe'] })
      onTestFinished(async () => {
        proc.kill('SIGTERM')
        await new Promise((r) => proc.once('exit', r))
      })
      await waitFor('rsyslog to write its pid file', async () => (await readFile(pidFile, 'utf8')).trim() || undefined, 15_000)
      await waitForTcpPort('rsyslog to accept on its input port', inPort)
      const feed = spawn(logger, ['-n', '127.0.0.1', '-P', String(inPort), '-T', '--octet-count', '--rfc5424', '-t', 'web', '-p', 'local3.notice'], { stdio: ['pipe', 'ignore', 'pipe'] })
      feed.stdin.end(`${Array.from({ length: n }, (_, i) => `rsyslog message ${i}`).join('\n')}\n`)
      const code = await new Promise<number | null>((r) => feed.once('exit', r))
      expect(code).toBe(0)
      expect(await waitCount(s.url, 'syslog', n, 60_000)).toBe(n)
      await new Promise((r) => setTimeout(r, 300)) // anything extra would show up now
      const got = await allEvents(s.url, 'syslog')
      expect(got).toHaveLength(n)
      expect(got.map((e) => e.body.message)).toEqual(Array.from({ length: n }, (_, i) => `rsyslog message ${i}`))
      expect(got[0]!.body).toMatchObject({ app: 'web', facility: 'local3', severity: 'notice' })
      expect(got[0]!.routingKey).toBe('syslog.local3.notice')
    })
  }
})
