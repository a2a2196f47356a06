import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import { peerAddress } from '../../../src/ingest/otlp/grpc.js'
import { otlpTypes } from '../../../src/ingest/protos.js'
import { startTestServer, type TestServer } from '../../helpers/server.js'
import { readAll, waitForEvents } from './helpers.js'

const path = '/opentelemetry.proto.collector.logs.v1.LogsService/Export'

async function startGrpc(extra = '', rest = ''): Promise<{ s: TestServer; port: number }> {
  const s = await startTestServer({ server: `  otlp: { exchange: logs, grpc: { enabled: true, port: 0${extra} } }\n${rest}` })
  return { s, port: s.server.listeners.find((l) => l.options.name === 'otlp-grpc')!.port }
}

interface Answer {
  readonly err: ServiceError | null
  readonly response: { partialSuccess?: { rejectedLogRecords?: unknown; errorMessage?: string } } | undefined
}

/** One Export call with bytes as given, the way any gRPC client sends them. */
async function exportRaw(port: number, body: Uint8Array): Promise<Answer> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure())
  try {
    return await new Promise<Answer>((resolve) =>
      client.makeUnaryRequest(
        path,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => b,
        body,
        new Metadata(),
        (err: ServiceError | null, value?: Buffer) =>
          resolve({ err, response: value === undefined ? undefined : (otlpTypes().exportLogsResponse.toObject(otlpTypes().exportLogsResponse.decode(value), { longs: Number }) as Answer['response']) }),
      ),
    )
  } finally {
    client.close()
  }
}

const request = (bodies: readonly string[]): Uint8Array =>
  otlpTypes()
    .exportLogsRequest.encode({
      resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] }, scopeLogs: [{ logRecords: bodies.map((b) => ({ severityText: 'INFO', body: { stringValue: b } })) }] }],
    })
    .finish()

describe('OTLP/gRPC door', () => {
  it('answers partialSuccess naming the records it could not store; the others are stored', async () => {
    const { s, port } = await startGrpc('', '  limits: { maxEventSize: 1kb }')
    const answer = await exportRaw(port, request(['small one', 'x'.repeat(4096), 'small two']))
    expect(answer.err).toBeNull()
    expect(answer.response?.partialSuccess?.rejectedLogRecords).toBe(1)
    expect(answer.response?.partialSuccess?.errorMessage).toContain('1 of 3 log records were not stored')
    const stored = await waitForEvents<{ body: string }>(s.url, 'app-logs', 2)
    expect(stored.map((e) => e.body.body)).toEqual(['small one', 'small two'])
    expect(stored.map((e) => e.routingKey)).toEqual(['api.INFO', 'api.INFO'])
    expect(await waitForEvents(s.url, 'ingest-errors', 1)).toHaveLength(1)
  })

  it('a request that is not an ExportLogsServiceRequest is INVALID_ARGUMENT and kept in ingest-errors', async () => {
    const { s, port } = await startGrpc()
    const answer = await exportRaw(port, Buffer.from([0x0a, 0xff, 0xff, 0xff]))
    expect(answer.err?.code).toBe(status.INVALID_ARGUMENT)
    const errors = await waitForEvents<{ listener: string; reason: string }>(s.url, 'ingest-errors', 1)
    expect(errors[0]!.body).toMatchObject({ listener: 'otlp-grpc', reason: expect.stringContaining('not an ExportLogsServiceRequest') })
    expect(await readAll(s.url, 'app-logs')).toEqual([])
  })

  it('over a rate limit: RESOURCE_EXHAUSTED with retry-after, and the refused request is not stored', async () => {
    const { s, port } = await startGrpc('', 'rateLimits:\n  - { match: { listener: otlp-grpc }, events: 1/m, burst: 2 }')
    const first = await exportRaw(port, request(['a', 'b']))
    expect(first.err).toBeNull()
    const second = await exportRaw(port, request(['c']))
    expect(second.err?.code).toBe(status.RESOURCE_EXHAUSTED)
    expect(Number(second.err?.metadata.get('retry-after')[0])).toBeGreaterThan(0)
    expect((await readAll<{ body: string }>(s.url, 'app-logs')).map((e) => e.body.body)).toEqual(['a', 'b'])
  })

  it('reads the client address from the peer strings grpc-js gives', () => {
    expect(peerAddress('127.0.0.1:5000')).toBe('127.0.0.1')
    expect(peerAddress('ipv4:10.1.2.3:443')).toBe('10.1.2.3')
    expect(peerAddress('[::1]:5000')).toBe('::1')
    expect(peerAddress('ipv6:[::ffff:127.0.0.1]:1')).toBe('::ffff:127.0.0.1')
    expect(peerAddress('unix:/tmp/x')).toBeUndefined()
  })
})
