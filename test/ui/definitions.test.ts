// GET and POST /v1/definitions over real sockets: the export in the configuration file's shape
// (and that `sluice validate` takes it), the import declaring what is missing, a dry run, and
// refusals that declare nothing.

import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'yaml'
import { beforeAll, describe, expect, it } from 'vitest'
import { call } from '../helpers/consume.js'
import { connect, startAmqpServer } from '../helpers/amqp.js'
import { requireBuiltCli, runCli } from '../helpers/cli.js'
import { startTestServer } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

beforeAll(requireBuiltCli)

const importDoc = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}", alternate: unrouted, dedup: id }
  audit: { type: topic, routingKey: "audit.{action}", alternate: audit-missed, dedupWindow: 5m }
  audit-missed: { type: fanout }
streams:
  audit: { retention: { maxAge: 1d, maxBytes: 10mb }, segmentSize: 1mb }
  audit-missed: {}
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: logs, toExchange: audit, key: "audit.#" }
  - { exchange: audit, stream: audit, key: "#" }
  - { exchange: audit-missed, stream: audit-missed }
groups:
  auditor: { stream: audit, ackTimeout: 2m, maxDeliveries: 3, deadLetter: { stream: audit-missed }, start: latest }
`

async function postDefinitions(url: string, body: string, query = '', type = 'application/yaml'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/definitions${query}`, { method: 'POST', headers: { 'content-type': type }, body })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

async function exportYaml(url: string): Promise<string> {
  const res = await fetch(`${url}/v1/definitions`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('application/yaml; charset=utf-8')
  return res.text()
}

describe('definitions export and import', () => {
  it('a dry run says what would change and declares nothing; the import then declares it through the catalog', async () => {
    const s = await startTestServer()
    const dry = await postDefinitions(s.url, importDoc, '?dryRun=true')
    expect(dry.status).toBe(200)
    expect(dry.body.applied).toBe(false)
    expect(dry.body.conflicts).toEqual([])
    expect(dry.body.changes).toEqual([
      { kind: 'exchange', name: 'logs', action: 'unchanged' },
      { kind: 'exchange', name: 'audit', action: 'create' },
      { kind: 'exchange', name: 'audit-missed', action: 'create' },
      { kind: 'stream', name: 'audit', action: 'create' },
      { kind: 'stream', name: 'audit-missed', action: 'create' },
      { kind: 'binding', name: 'logs → stream app-logs (key "#")', action: 'unchanged' },
      { kind: 'binding', name: 'logs → exchange audit (key "audit.#")', action: 'create' },
      { kind: 'binding', name: 'audit → stream audit (key "#")', action: 'create' },
      { kind: 'binding', name: 'audit-missed → stream audit-missed', action: 'create' },
      { kind: 'group', name: 'auditor', action: 'create' },
    ])
    expect((await call(s.url, 'GET', '/v1/streams/audit')).status).toBe(404)

    const done = await postDefinitions(s.url, importDoc)
    expect(done.status).toBe(200)
    expect(done.body.applied).toBe(true)
    const stream = await call<{ retention: Record<string, unknown> }>(s.url, 'GET', '/v1/streams/audit')
    expect(stream.body.retention).toEqual({ maxAgeMs: 86_400_000, maxBytes: 10 * 1024 * 1024, policy: 'limits' })
    // The new exchange has the template and alternate the document gave it, and routes.
    const route = await call(s.url, 'POST', '/v1/exchanges/audit/route', { body: { action: 'login' } })
    expect(route.body).toEqual({ exchange: 'audit', routingKey: 'audit.login', streams: ['audit'], unroutable: false })
    const viaLogs = await call(s.url, 'POST', '/v1/exchanges/logs/route', { routingKey: 'audit.logout' })
    expect(viaLogs.body).toMatchObject({ streams: ['app-logs', 'audit'] })
    const group = await call<{ config: Record<string, unknown> }>(s.url, 'GET', '/v1/groups/auditor')
    expect(group.body.config).toMatchObject({ stream: 'audit', ackTimeoutMs: 120_000, maxDeliveries: 3, deadLetter: { kind: 'stream', stream: 'audit-missed' }, start: { kind: 'latest' } })

    // After a restart the run-time declarations are back, the exchange's template and all, and
    // the same document again finds everything as it says.
    await s.stop()
    const restarted = await startTestServer({ dataDir: s.dataDir })
    expect((await call(restarted.url, 'POST', '/v1/exchanges/audit/route', { body: { action: 'login' } })).body).toMatchObject({ routingKey: 'audit.login', streams: ['audit'] })
    const again = await postDefinitions(restarted.url, importDoc)
    expect((again.body.changes as Array<{ action: string }>).every((c) => c.action === 'unchanged')).toBe(true)
  })

  it('exports the file\'s and the run-time definitions in the file\'s shape, marked, and `sluice validate` takes them beside a server section', async () => {
    const s = await startTestServer()
    expect((await postDefinitions(s.url, importDoc)).status).toBe(200)
    expect((await call(s.url, 'PUT', '/v1/groups/late', { stream: 'app-logs', ackTimeout: '45s', retryBackoff: { initial: '500ms' }, deliveryRate: '100/s' })).status).toBe(201)
    const text = await exportYaml(s.url)
    expect(text).toMatch(/^# Sluice .* definitions, exported /)
    expect(text).toContain('  logs: { type: topic, routingKey: "{service}.{level}", alternate: unrouted, dedup: id } # from the configuration file\n')
    expect(text).toContain('  audit: { type: topic, routingKey: "audit.{action}", alternate: audit-missed, dedupWindow: 5m } # declared at run time\n')
    expect(text).toContain('  audit: { retention: { maxAge: 1d, maxBytes: 10mb }, segmentSize: 1mb } # declared at run time\n')
    expect(text).toContain('  - { exchange: logs, stream: app-logs, key: "#" } # from the configuration file\n')
    expect(text).toContain('  - { exchange: logs, toExchange: audit, key: audit.# } # declared at run time\n')
    const doc = parse(text) as { groups: Record<string, unknown>; streams: Record<string, unknown> }
    expect(doc.groups.late).toEqual({ stream: 'app-logs', ackTimeout: '45s', retryBackoff: { initial: '500ms' }, deliveryRate: '100/s' })
    expect(doc.groups.auditor).toEqual({ stream: 'audit', ackTimeout: '2m', maxDeliveries: 3, deadLetter: { stream: 'audit-missed' }, start: 'latest' })
    // The built-in ingest-errors stream is not written: nothing names it.
    expect(Object.keys(doc.streams).sort()).toEqual(['app-logs', 'audit', 'audit-missed', 'errors', 'strict-a', 'unrouted'])

    const json = await call<{ origins: { groups: Record<string, string>; streams: Record<string, string> } }>(s.url, 'GET', '/v1/definitions?format=json')
    expect(json.body.origins.groups).toEqual({ auditor: 'runtime', late: 'runtime' })
    expect(json.body.origins.streams['app-logs']).toBe('file')

    const dir = await tempDir()
    const file = join(dir, 'sluice.yaml')
    await writeFile(file, `server:\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n${text}`)
    const validated = await runCli(['validate', file])
    expect(validated.stderr).toBe('')
    expect(validated.code).toBe(0)

    // Imported into another server, the export rebuilds the same definitions.
    const other = await startTestServer()
    const imported = await postDefinitions(other.url, text)
    expect(imported.status).toBe(200)
    expect(await exportYaml(other.url).then((t) => (parse(t) as { groups: unknown }).groups)).toEqual(doc.groups)
  })

  it("exports what AMQP clients declared (a queue, an exchange, a binding from a built-in exchange) so that `sluice validate` takes it", async () => {
    const s = await startAmqpServer()
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createChannel()
    await ch.assertExchange('events', 'fanout', { durable: true })
    await ch.assertQueue('jobs', { durable: true, arguments: { 'x-dead-letter-exchange': 'events' } })
    await ch.bindQueue('jobs', 'amq.topic', 'jobs.#')
    await ch.bindQueue('jobs', 'events', '')
    const text = await exportYaml(s.url)
    // The default exchange's bindings are implied by every stream: not written.
    expect(text).not.toContain('amq.default')
    expect(text).toContain('  amq.topic: { type: topic } # built in\n')
    expect(text).toContain('  events: { type: fanout } # declared at run time\n')
    expect(text).toContain('  - { exchange: amq.topic, stream: jobs, key: jobs.# } # declared at run time\n')
    const doc = parse(text) as { streams: Record<string, unknown>; groups: Record<string, unknown> }
    expect(doc.streams.jobs).toEqual({ retention: { maxAge: 'none', policy: 'interest' } })
    expect(doc.groups.jobs).toMatchObject({ stream: 'jobs', deadLetter: { exchange: 'events' } })
    const dir = await tempDir()
    const file = join(dir, 'sluice.yaml')
    await writeFile(file, `server:\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n${text}`)
    const validated = await runCli(['validate', file])
    expect(validated.stderr).toBe('')
    expect(validated.code).toBe(0)
  })

  it('refuses a conflict item by item and declares nothing, not even what had no conflict', async () => {
    const s = await startTestServer()
    const r = await postDefinitions(s.url, JSON.stringify({ exchanges: { logs: { type: 'fanout' }, fresh: { type: 'direct' } }, streams: { errors: { retention: { maxAge: '1h' } }, fresh: {} } }), '', 'application/json')
    expect(r.status).toBe(409)
    const error = r.body.error as { code: string; details: { conflicts: Array<{ kind: string; name: string; message: string }> } }
    expect(error.code).toBe('definitions_conflict')
    expect(error.details.conflicts).toEqual([
      { kind: 'exchange', name: 'logs', message: 'exchange "logs" exists with type "topic", not "fanout", routingKey "{service}.{level}", not null, alternate "unrouted", not null, dedup "id", not null' },
      { kind: 'stream', name: 'errors', message: 'stream "errors" exists with retention.maxAgeMs 604800000, not 3600000' },
    ])
    expect((await call(s.url, 'GET', '/v1/streams/fresh')).status).toBe(404)
    expect((await call(s.url, 'POST', '/v1/exchanges/fresh/route', {})).status).toBe(404)
    // A dry run shows the same conflicts with a 200, for a page to show before applying.
    const dry = await postDefinitions(s.url, JSON.stringify({ exchanges: { logs: { type: 'fanout' } } }), '?dryRun=true', 'application/json')
    expect(dry.status).toBe(200)
    expect((dry.body.conflicts as unknown[]).length).toBe(1)
  })

  it('refuses a document that is not valid as the configuration file would be, naming each problem, and declares nothing', async () => {
    const s = await startTestServer()
    const r = await postDefinitions(s.url, 'streams:\n  fresh: {}\nbindings:\n  - { exchange: logs, stream: nowhere }\ngroups:\n  g: { stream: fresh, ackTimeout: soon }\n')
    expect(r.status).toBe(400)
    const problems = (r.body.error as { details: { problems: string[] } }).details.problems
    expect(problems).toHaveLength(2)
    expect(problems.join('\n')).toContain('bindings[0].stream')
    expect(problems.join('\n')).toContain('groups.g.ackTimeout')
    expect((await call(s.url, 'GET', '/v1/streams/fresh')).status).toBe(404)
    const other = await postDefinitions(s.url, 'server: { http: { port: 1 } }\n')
    expect(other.status).toBe(400)
    expect((other.body.error as { message: string }).message).toContain('not server')
    expect((await postDefinitions(s.url, 'exchanges: [', '')).status).toBe(400)
  })
})
