import { writeFile } from 'node:fs/promises'
import { connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import amqp from 'amqplib'
import { beforeAll, describe, expect, it } from 'vitest'
import { logEntries, requireBuiltCli, spawnCli, stackFrame, type CliRun } from '../helpers/cli.js'
import { fetchEvents } from '../helpers/consume.js'
import { groupStats, publish, waitFor } from '../helpers/groups.js'
import { startAmqpServer } from '../helpers/amqp.js'
import { tempDir } from '../helpers/temp.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  g: { stream: app-logs, ackTimeout: 5m }
`

/** `sluice serve` in its own process on ephemeral ports; resolves once it logs "ready". */
async function serve(extra = ''): Promise<{ run: CliRun; url: string }> {
  const dir = await tempDir()
  const config = join(dir, 'sluice.yaml')
  await writeFile(config, `server:\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n  http: { port: 0 }\n  ndjson: { enabled: false }\n  amqp: { enabled: false }\n  syslog: { enabled: false }\n${extra}\n${pipeline}`)
  const run = spawnCli(['serve', '--config', config])
  await run.line((l) => l.includes('"msg":"ready"'))
  const up = logEntries(run.lines).find((e) => e.msg === 'http listener up')
  return { run, url: String(up?.url) }
}

const ev = (i: number): Record<string, unknown> => ({ service: 'api', level: 'info', i })

describe('shutdown', () => {
  beforeAll(requireBuiltCli)

  it('SIGINT with a long-polling consumer and a `tail --follow` attached: the server exits within a second, the tail says it lost the server', async () => {
    const { run: server, url } = await serve()
    await publish(url, 'logs', [ev(0)])
    // c0 holds the one event; c1 waits up to 30 s in the group, with nothing to get.
    expect((await fetchEvents(url, 'g', 'c0', 10)).map((d) => d.offset)).toEqual([0])
    const poll = fetch(`${url}/v1/groups/g/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ consumer: 'c1', max: 10, waitMs: 30_000 }) })
    await waitFor('c1 waiting in the group', async () => ((await groupStats(url, 'g')).members.some((m) => m.name === 'c1') ? true : undefined))
    // A follower that has printed what there is and waits for more.
    const tail = spawnCli(['tail', 'app-logs', '--follow', '--url', url])
    expect(JSON.parse(await tail.line(() => true))).toMatchObject({ offset: 0, body: ev(0) })

    const t0 = Date.now()
    server.proc.kill('SIGINT')
    const exited = await server.done
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(exited.code).toBe(0)
    // The poll was answered, empty, rather than cut.
    const answered = await poll
    expect([answered.status, await answered.json()]).toEqual([200, { events: [] }])
    const logged = logEntries(server.lines).map((e) => e.msg)
    expect(logged.slice(-1)).toEqual(['stopped'])
    expect(logged).toContain('stopping')

    const ended = await tail.done
    expect(ended.code).toBe(1)
    expect(ended.stderr).toMatch(new RegExp(`^sluice tail: lost the server at ${url.replace(/[.]/g, '\\.')} \\(\\w+\\); resume with: sluice tail app-logs --from 1 --follow\\n$`))
    expect(ended.stderr).not.toMatch(stackFrame)
  })

  it('Ctrl-C ends `tail --follow` at once, mid long poll', async () => {
    const { url } = await serve()
    await publish(url, 'logs', [ev(0), ev(1)])
    const tail = spawnCli(['tail', 'app-logs', '--follow', '--url', url])
    await tail.line((l) => l.includes('"offset":1'))
    const t0 = Date.now()
    tail.proc.kill('SIGINT')
    const ended = await tail.done
    // Its long poll waits 10 s: well under that is at once, with room for a busy machine's process exit.
    expect(Date.now() - t0).toBeLessThan(2000)
    expect([ended.code, ended.stderr]).toEqual([0, ''])
    expect(tail.lines.map((l) => (JSON.parse(l) as { offset: number }).offset)).toEqual([0, 1])
  })

  it('server.shutdownTimeout bounds a stop held up by a request, names what it waits for, and exits with 1', async () => {
    const { run: server, url } = await serve('  shutdownTimeout: 300ms')
    // A publish whose body never finishes: the HTTP door would wait for it up to its request timeout.
    const { port } = new URL(url)
    const socket = tcpConnect(Number(port), '127.0.0.1')
    socket.on('error', () => undefined)
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // Node answers 100 Continue once it has handed the request on to the routes.
    const continued = new Promise<void>((resolve) => socket.once('data', () => resolve()))
    socket.write('POST /v1/exchanges/logs/publish HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n')
    await continued
    socket.write('{"service":')

    const t0 = Date.now()
    server.proc.kill('SIGTERM')
    const exited = await server.done
    const took = Date.now() - t0
    socket.destroy()
    expect(exited.code).toBe(1)
    expect(took).toBeGreaterThanOrEqual(290)
    expect(took).toBeLessThan(1500)
    const entries = logEntries(server.lines)
    expect(entries.some((e) => e.msg === 'stop is waiting for http routes to close' && e.part === 'http routes')).toBe(true)
    expect(entries.find((e) => e.msg === 'stop timed out waiting for http routes to close')).toMatchObject({ part: 'http routes', timeoutMs: 300 })
  })

  it('AMQP clients get connection.close 320 CONNECTION_FORCED on shutdown', async () => {
    const s = await startAmqpServer({ pipeline })
    const conn = await amqp.connect(s.amqpUrl)
    const closed = new Promise<{ code?: number; message?: string }>((resolve) => conn.once('close', (err?: { code?: number; message?: string }) => resolve(err ?? {})))
    conn.on('error', () => undefined)
    await conn.createChannel()
    await s.stop()
    const err = await closed
    expect(err.code).toBe(320)
    expect(err.message).toMatch(/CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'/)
  })
})
