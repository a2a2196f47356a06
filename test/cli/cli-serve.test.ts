// The CLI's tail and serve commands, run as a user runs them (split from cli.test.ts so the two run side by side).

import { writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { postNdjson } from '../helpers/server.js'
import { logEntries, requireBuiltCli, runCli, spawnCli } from '../helpers/cli.js'
import { tempDir } from '../helpers/temp.js'
import { serverWithEvents } from '../helpers/tail-events.js'

/** A TCP port on 127.0.0.1 held by someone else until the test ends. */
async function takenPort(): Promise<number> {
  const blocker: Server = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  return (blocker.address() as { port: number }).port
}

async function configFile(text: string): Promise<string> {
  const file = join(await tempDir(), 'sluice.yaml')
  await writeFile(file, text)
  return file
}

const offsets = (stdout: string): number[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { offset: number }).offset)


describe('sluice CLI', () => {
  beforeAll(requireBuiltCli)

  describe('tail reads as Unix tail does', () => {
    it('the last 10 by default, the last N with --limit, and --from starts elsewhere', async () => {
      const url = await serverWithEvents()
      const tail = async (...args: string[]): Promise<number[]> => {
        const r = await runCli(['tail', 'app-logs', '--url', url, ...args])
        expect([r.code, r.stderr]).toEqual([0, ''])
        return offsets(r.stdout)
      }
      expect(await tail()).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24])
      expect(await tail('--limit', '3')).toEqual([22, 23, 24])
      expect(await tail('-n', '100')).toEqual(Array.from({ length: 25 }, (_, i) => i))
      expect(await tail('--from', 'earliest', '-n', '3')).toEqual([0, 1, 2])
      expect(await tail('--from', '20')).toEqual([20, 21, 22, 23, 24])
      expect(await tail('--from', '2024-01-01T00:00:18Z', '-n', '2')).toEqual([18, 19])
    })

    it('--from latest without --follow says there is nothing to print', async () => {
      const url = await serverWithEvents()
      const r = await runCli(['tail', 'app-logs', '--from', 'latest', '--url', url])
      expect([r.code, r.stdout, r.stderr]).toEqual([0, '', 'sluice tail: nothing to print: --from latest starts after the last event; add --follow to wait for new ones\n'])
    })

    it('--follow prints the last N, then what arrives', async () => {
      const url = await serverWithEvents()
      const run = spawnCli(['tail', 'app-logs', '-n', '2', '-f', '--url', url])
      await run.line((l) => l.includes('"offset":24'))
      const res = await postNdjson(url, 'logs', [{ service: 'api', level: 'info', i: 25 }])
      expect(res.status).toBe(200)
      await run.line((l) => l.includes('"offset":25'))
      run.proc.kill('SIGINT')
      expect((await run.done).code).toBe(0)
      expect(offsets(run.lines.join('\n'))).toEqual([23, 24, 25])
    })
  })

  describe('serve', () => {
    it('prints an invalid configuration as validate does, one problem a line with its path and line, and exits with 2', async () => {
      const file = await configFile('server:\n  dataDir: /tmp/x\n  http: { port: 99999 }\nstreams:\n  app-logs: { retention: { maxAge: "7 days" } }\n')
      const served = await runCli(['serve', '--config', file])
      const validated = await runCli(['validate', file])
      expect(served.code).toBe(2)
      expect(validated.code).toBe(1)
      expect(served.stderr).toBe(validated.stdout)
      const lines = served.stderr.split('\n')
      expect(lines[0]).toBe(`${file}: 2 errors`)
      expect(lines[1]).toMatch(/^ {2}server\.http\.port \(line 3, col \d+\): /)
      expect(lines[2]).toMatch(/^ {2}streams\.app-logs\.retention\.maxAge \(line 5, col \d+\): "7 days" is not a duration/)
      expect(served.stdout).toBe('')
    })

    it.each([
      ['HTTP', 'server.http.port', (port: number) => `  http: { port: ${port} }\n  amqp: { enabled: false }`],
      ['AMQP', 'server.amqp.port', (port: number) => `  http: { port: 0 }\n  amqp: { port: ${port} }`],
    ])('a taken %s port is said once, naming the listener and the key to change', async (door, key, listeners) => {
      const port = await takenPort()
      const dir = await tempDir()
      const file = await configFile(`server:\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n${listeners(port)}\n  ndjson: { enabled: false }\n  syslog: { enabled: false }\n`)
      const r = await runCli(['serve', '--config', file])
      expect(r.code).toBe(1)
      expect(r.stderr).toBe(`sluice serve: cannot start: the ${door} listener cannot listen on 127.0.0.1:${port}: another program is using that port (EADDRINUSE); stop it, or change ${key} in ${file}\n`)
      expect(`${r.stdout}${r.stderr}`.match(/EADDRINUSE/g)).toHaveLength(1)
      expect(logEntries(r.stdout.split('\n')).filter((e) => (e.level as number) >= 50)).toEqual([])
    })

    it.each([
      ['--log-format pretty', ['--log-format', 'pretty'], false],
      ['no --log-format, stdout not a terminal', [], true],
    ])('the log with %s', async (_what, args, json) => {
      const dir = await tempDir()
      const file = await configFile(`server:\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n  http: { port: 0 }\n  ndjson: { enabled: false }\n  amqp: { enabled: false }\n  syslog: { enabled: false }\n`)
      const run = spawnCli(['serve', '--config', file, ...args])
      const ready = await run.line((l) => l.includes('ready'))
      run.proc.kill('SIGTERM')
      expect((await run.done).code).toBe(0)
      if (json) {
        expect(JSON.parse(ready)).toMatchObject({ level: 30, msg: 'ready', service: 'sluice' })
        expect(logEntries(run.lines)).toHaveLength(run.lines.length)
      } else {
        expect(ready).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: ready/)
        expect(logEntries(run.lines)).toEqual([])
        expect(run.lines.at(-1)).toMatch(/INFO: stopped$/)
      }
    })

    it('pretty-prints the log when stdout is a terminal', async () => {
      const dir = await tempDir()
      const file = await configFile(`server:\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n  http: { port: 0 }\n  ndjson: { enabled: false }\n  amqp: { enabled: false }\n  syslog: { enabled: false }\n`)
      // script(1) gives the server a pseudo-terminal for its stdout.
      const { spawn } = await import('node:child_process')
      const { cliPath } = await import('../helpers/cli.js')
      const proc = spawn('script', ['-qfec', `${process.execPath} ${cliPath} serve --config ${file}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
      onTestFinished(() => void proc.kill('SIGKILL'))
      let out = ''
      proc.stdout.setEncoding('utf8')
      await new Promise<void>((resolve) =>
        proc.stdout.on('data', (chunk: string) => {
          out += chunk
          if (/INFO.*ready/.test(out)) resolve()
        }),
      )
      // Ctrl-C, as a person at the terminal would.
      proc.stdin.write('\u0003')
      await new Promise((resolve) => proc.once('close', resolve))
      // eslint-disable-next-line no-control-regex
      const plain = out.replace(/\u001b\[[0-9;]*m/g, '')
      expect(plain).not.toMatch(/"msg":"ready"/)
      expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: ready/m)
      // Colours, for a terminal that shows them.
      expect(out).toContain('\u001b[32mINFO')
    })
  })
})
