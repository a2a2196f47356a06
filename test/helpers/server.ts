import { onTestFinished } from 'vitest'
import { parseConfig, type Config } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import { startServer, type SluiceServer } from '../../src/server.js'
import { tempDir } from './temp.js'

/** A pipeline like the default one, on ephemeral ports, for HTTP tests. */
export const testPipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}", alternate: unrouted, dedup: id }
  unrouted: { type: fanout }
  strict: { type: direct, unroutable: reject }
  by-attr: { type: headers }
streams:
  app-logs: {}
  errors: {}
  unrouted: {}
  strict-a: {}
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
  - { exchange: logs, stream: errors, key: "*.error" }
  - { exchange: unrouted, stream: unrouted }
  - { exchange: strict, stream: strict-a, key: a }
  - { exchange: by-attr, stream: errors, match: all, headers: { level: error } }
`

export interface ListenerYaml {
  /** Flow maps replacing `{ enabled: false }` for a listener, e.g. `{ port: 0, exchange: logs }`. */
  readonly ndjson?: string
  readonly syslog?: string
  readonly amqp?: string
}

export function testConfig(dataDir: string, pipeline = testPipeline, server = '', listeners: ListenerYaml = {}): Config {
  const off = '{ enabled: false }'
  const text = [
    'server:',
    `  dataDir: ${JSON.stringify(dataDir)}`,
    ...(server.trimStart().startsWith('http:') ? [] : ['  http: { port: 0 }']),
    `  ndjson: ${listeners.ndjson ?? off}`,
    `  amqp: ${listeners.amqp ?? off}`,
    `  syslog: ${listeners.syslog ?? off}`,
    server,
    pipeline,
  ].join('\n')
  return parseConfig(text, { env: {} })
}

export interface TestServer {
  readonly url: string
  readonly dataDir: string
  readonly server: SluiceServer
  stop(): Promise<void>
}

/** A real server on an ephemeral port over a fresh temp data dir, stopped when the test ends. */
export async function startTestServer(opts: { dataDir?: string; pipeline?: string; server?: string } & ListenerYaml = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await tempDir())
  const server = await startServer(testConfig(dataDir, opts.pipeline, opts.server, opts), createLogger('silent'))
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await server.stop()
  }
  onTestFinished(stop)
  return { url: server.httpUrl, dataDir, server, stop }
}

export async function postNdjson(url: string, exchange: string, lines: readonly unknown[], headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/exchanges/${exchange}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    body: lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'),
  })
}

export async function readStream(url: string, stream: string, from = 0, limit = 10_000): Promise<{ events: Array<{ offset: number; routingKey: string; id: string | null; body: unknown; headers: Record<string, unknown> }>; nextOffset: number }> {
  const res = await fetch(`${url}/v1/streams/${stream}/events?from=${from}&limit=${limit}`)
  if (res.status !== 200) throw new Error(`read ${stream}: ${res.status} ${await res.text()}`)
  return (await res.json()) as never
}
