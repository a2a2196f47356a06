import { readFile } from 'node:fs/promises'
import { Client, credentials, Metadata, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js'
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc'
import { describe, expect, it } from 'vitest'
import { peerAddress } from '../../../src/ingest/otlp/grpc.js'
import { otlpTypes, retryInfoTypeUrl } from '../../../src/ingest/protos.js'
import { makePki, tlsYaml } from '../../helpers/pki.js'
import { startTestServer, type TestServer } from '../../helpers/server.js'
import { tempDir } from '../../helpers/temp.js'
import { readAll, waitForEvents } from './helpers.js'
import { checkArrived, exportThrough, records, type OtlpEvent } from './otlp-sdk.js'

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
async function exportRaw(port: number, body: Uint8Array, channel: ChannelCredentials = credentials.createInsecure()): Promise<Answer> {
  const client = new Client(`127.0.0.1:${port}`, channel)
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

  it('over a rate limit: RESOURCE_EXHAUSTED with a RetryInfo detail and retry-after, and the refused request is not stored', async () => {
    const { s, port } = await startGrpc('', 'rateLimits:\n  - { match: { listener: otlp-grpc }, events: 1/m, burst: 2 }')
    const first = await exportRaw(port, request(['a', 'b']))
    expect(first.err).toBeNull()
    expect(first.err?.metadata.get('grpc-status-details-bin')).toBeUndefined()
    const second = await exportRaw(port, request(['c']))
    expect(second.err?.code).toBe(status.RESOURCE_EXHAUSTED)
    const retryAfterS = Number(second.err?.metadata.get('retry-after')[0])
    // One event a minute, two taken: the bucket has room again in about 60 s.
    expect(retryAfterS).toBeGreaterThan(50)
    expect(retryAfterS).toBeLessThanOrEqual(60)
    const details = statusDetails(second.err!)
    expect(details.code).toBe(status.RESOURCE_EXHAUSTED)
    expect(details.message).toContain('rate limit')
    expect(details.retryDelayMs).toBeGreaterThan(50_000)
    expect(Math.ceil(details.retryDelayMs / 1000)).toBe(retryAfterS)
    expect((await readAll<{ body: string }>(s.url, 'app-logs')).map((e) => e.body.body)).toEqual(['a', 'b'])
  })

  it('under a resource alarm: UNAVAILABLE with a RetryInfo detail of the alarm check period; nothing stored until it clears', async () => {
    const { s, port } = await startGrpc()
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 })
    const blocked = await exportRaw(port, request(['blocked']))
    expect(blocked.err?.code).toBe(status.UNAVAILABLE)
    expect(blocked.err?.metadata.get('retry-after')).toEqual(['5'])
    expect(statusDetails(blocked.err!)).toMatchObject({ code: status.UNAVAILABLE, retryDelayMs: 5000 })
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    expect((await exportRaw(port, request(['after']))).err).toBeNull()
    expect((await readAll<{ body: string }>(s.url, 'app-logs')).map((e) => e.body.body)).toEqual(['after'])
  })

  it('over TLS with clientAuth required: the gRPC exporter with a client certificate publishes as the user its CN names; no certificate, or a user without write, is refused', async () => {
    const dir = await tempDir()
    const pki = await makePki(dir)
    const reader = await pki.issue('reader', '/O=Acme/CN=reader', 'client')
    const users = `
auth:
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: reader, password: read-pw, permissions: { read: ".*" } }`
    const { s, port } = await startGrpc(`, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })}`, users)
    expect(s.server.listeners.find((l) => l.options.name === 'otlp-grpc')!.tls).toBe(true)
    const [ca, cert, key, readerCert, readerKey] = await Promise.all([pki.ca, pki.client.cert, pki.client.key, reader.cert, reader.key].map((f) => readFile(f)))
    await exportThrough(new GrpcExporter({ url: `https://127.0.0.1:${port}`, credentials: credentials.createSsl(ca, key, cert) }))
    checkArrived(await waitForEvents<OtlpEvent>(s.url, 'app-logs', records))

    const noCertificate = await exportRaw(port, request(['no certificate']), credentials.createSsl(ca))
    expect(noCertificate.err?.code).toBe(status.UNAVAILABLE)
    const plain = await exportRaw(port, request(['plain text']))
    expect(plain.err?.code).toBe(status.UNAVAILABLE)
    const asReader = await exportRaw(port, request(['as reader']), credentials.createSsl(ca, readerKey, readerCert))
    expect(asReader.err?.code).toBe(status.PERMISSION_DENIED)
    expect(await readAll(s.url, 'app-logs')).toHaveLength(records)
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toMatch(/sluice_auth_denials_total\{door="otlp-grpc"[^}]*\} 1/)

    // SIGHUP reads the certificate again; calls go on over the new context.
    const reloaded = s.server.reloadTls()
    expect(reloaded).toContainEqual(expect.objectContaining({ listener: `otlp-grpc 127.0.0.1:${port}`, ok: true }))
    expect((await exportRaw(port, request(['after reload']), credentials.createSsl(ca, key, cert))).err).toBeNull()
    expect((await readAll<{ body: unknown }>(s.url, 'app-logs')).at(-1)!.body.body).toBe('after reload')
  })

  it('reads the client address from the peer strings grpc-js gives', () => {
    expect(peerAddress('127.0.0.1:5000')).toBe('127.0.0.1')
    expect(peerAddress('ipv4:10.1.2.3:443')).toBe('10.1.2.3')
    expect(peerAddress('[::1]:5000')).toBe('::1')
    expect(peerAddress('ipv6:[::ffff:127.0.0.1]:1')).toBe('::ffff:127.0.0.1')
    expect(peerAddress('unix:/tmp/x')).toBeUndefined()
  })
})

/** The google.rpc.Status in a call's `grpc-status-details-bin`, with its RetryInfo's delay. */
function statusDetails(err: ServiceError): { code: number; message: string; retryDelayMs: number } {
  const [bin] = err.metadata.get('grpc-status-details-bin')
  expect(Buffer.isBuffer(bin)).toBe(true)
  const t = otlpTypes()
  const decoded = t.status.toObject(t.status.decode(bin as Buffer), { longs: Number }) as { code: number; message: string; details: Array<{ type_url: string; value: Uint8Array }> }
  expect(decoded.details).toHaveLength(1)
  expect(decoded.details[0]!.type_url).toBe(retryInfoTypeUrl)
  const info = t.retryInfo.toObject(t.retryInfo.decode(decoded.details[0]!.value), { longs: Number }) as { retryDelay: { seconds?: number; nanos?: number } }
  return { code: decoded.code, message: decoded.message, retryDelayMs: (info.retryDelay.seconds ?? 0) * 1000 + (info.retryDelay.nanos ?? 0) / 1e6 }
}
