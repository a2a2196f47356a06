import { readFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc'
import { OTLPLogExporter as HttpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http'
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto'
import { describe, expect, it } from 'vitest'
import { otlpTypes } from '../../../src/ingest/protos.js'
import { startTestServer, testPipeline } from '../../helpers/server.js'
import { readAll, startDoors, waitForEvents } from './helpers.js'
import { checkArrived, exportThrough, records, type OtlpEvent } from './otlp-sdk.js'

describe('OTLP door: the OpenTelemetry SDK exporters', () => {
  it('exporter-logs-otlp-http (JSON): 1,000 records, each once, attributes and trace ids intact', async () => {
    const s = await startDoors()
    await exportThrough(new HttpJsonExporter({ url: `${s.url}/v1/logs` }))
    checkArrived(await waitForEvents<OtlpEvent>(s.url, 'app-logs', records))
  })

  it('exporter-logs-otlp-proto (protobuf, gzip): 1,000 records, each once, attributes and trace ids intact', async () => {
    const s = await startDoors()
    await exportThrough(new ProtoExporter({ url: `${s.url}/v1/logs`, compression: 'gzip' as never }))
    checkArrived(await waitForEvents<OtlpEvent>(s.url, 'app-logs', records))
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain(`sluice_ingest_events_total{listener="otlp",exchange="logs"} ${records}`)
  })

  it('exporter-logs-otlp-grpc (LogsService/Export on server.otlp.grpc): 1,000 records, each once, attributes and trace ids intact', async () => {
    const s = await startTestServer({ server: '  otlp: { exchange: logs, grpc: { enabled: true, port: 0 } }' })
    const port = s.server.listeners.find((l) => l.options.name === 'otlp-grpc')!.port
    await exportThrough(new GrpcExporter({ url: `http://127.0.0.1:${port}` }))
    checkArrived(await waitForEvents<OtlpEvent>(s.url, 'app-logs', records))
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain(`sluice_ingest_events_total{listener="otlp",exchange="logs"} ${records}`)
  })
})

const post = (url: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> =>
  fetch(`${url}/v1/logs`, { method: 'POST', headers, body })

/** One request in OTLP's JSON mapping, as other SDKs write it (int64s as strings, uppercase hex). */
const handWritten = {
  resourceLogs: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'billing' } }, { key: 'host.cores', value: { intValue: '8' } }] },
      scopeLogs: [
        {
          scope: { name: 'billing.jobs', attributes: [{ key: 'lib.flag', value: { boolValue: true } }] },
          logRecords: [
            {
              timeUnixNano: '1544712660300000000',
              observedTimeUnixNano: '1544712660300000001',
              severityNumber: 10,
              severityText: 'Information',
              traceId: '5B8EFFF798038103D269B633813FC60C',
              spanId: 'EEE19B7EC3C1B174',
              body: { kvlistValue: { values: [{ key: 'msg', value: { stringValue: 'paid' } }, { key: 'amounts', value: { arrayValue: { values: [{ doubleValue: 1.5 }, { intValue: 2 }] } } }] } },
              attributes: [
                { key: 'big', value: { intValue: '9007199254740993' } },
                { key: 'raw', value: { bytesValue: 'AQID' } },
                { key: 'nan', value: { doubleValue: 'NaN' } },
                { key: 'empty', value: {} },
                { key: 'map.attribute', value: { kvlistValue: { values: [{ key: 'some.map.key', value: { stringValue: 'some value' } }] } } },
              ],
              droppedAttributesCount: 2,
              flags: 257,
              eventName: 'payment.done',
              unknownFutureField: { ignored: true },
            },
            { severityText: 'WARN' },
          ],
        },
      ],
    },
  ],
}

describe('OTLP door: the mapping, field by field', () => {
  it('stores opentelemetry-proto\'s example request as docs/doors/otlp.md shows it', async () => {
    const s = await startDoors()
    const example = await readFile(new URL('../../fixtures/otlp/example-logs.json', import.meta.url))
    expect((await post(s.url, example)).status).toBe(200)
    const doc = await readFile(new URL('../../../docs/doors/otlp.md', import.meta.url), 'utf8')
    const shown = /request \(`examples\/logs.json` in opentelemetry-proto\) stores\n\n```json\n(.*)\n```/.exec(doc)
    const [event] = await readAll<OtlpEvent>(s.url, 'app-logs')
    expect(JSON.stringify(event!.body)).toBe(shown![1])
    expect(event!.routingKey).toBe('my.service.Information')
  })

  it('maps each LogRecord as docs/doors/otlp.md says, from JSON and from protobuf alike', async () => {
    const s = await startDoors()
    const res = await post(s.url, JSON.stringify(handWritten))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toEqual({})
    const [full, bare] = await readAll<OtlpEvent>(s.url, 'app-logs')
    expect(full!.routingKey).toBe('billing.Information')
    expect(full!.body).toEqual({
      timeUnixNano: '1544712660300000000',
      observedTimeUnixNano: '1544712660300000001',
      severityNumber: 10,
      severityText: 'Information',
      eventName: 'payment.done',
      body: { msg: 'paid', amounts: [1.5, 2] },
      attributes: { big: '9007199254740993', raw: 'AQID', nan: 'NaN', empty: null, 'map.attribute': { 'some.map.key': 'some value' } },
      droppedAttributesCount: 2,
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      flags: 257,
      resource: { 'service.name': 'billing', 'host.cores': 8 },
      scope: { name: 'billing.jobs', attributes: { 'lib.flag': true } },
    })
    // Unset fields are left out; a missing severityText routes as "_".
    expect(bare!.routingKey).toBe('billing.WARN')
    expect(bare!.body).toEqual({ severityText: 'WARN', attributes: {}, resource: { 'service.name': 'billing', 'host.cores': 8 }, scope: { name: 'billing.jobs', attributes: { 'lib.flag': true } } })

    // The same request as protobuf stores the same events.
    const t = otlpTypes()
    // protobufjs's fromObject takes bytes as base64, where OTLP's JSON has hex.
    const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64')
    const asProto = JSON.stringify(handWritten).replace('"5B8EFFF798038103D269B633813FC60C"', JSON.stringify(b64('5B8EFFF798038103D269B633813FC60C'))).replace('"EEE19B7EC3C1B174"', JSON.stringify(b64('EEE19B7EC3C1B174')))
    const message = t.exportLogsRequest.fromObject(JSON.parse(asProto) as Record<string, unknown>)
    const proto = Buffer.from(t.exportLogsRequest.encode(message).finish())
    const pres = await post(s.url, proto, { 'content-type': 'application/x-protobuf' })
    expect(pres.status).toBe(200)
    expect(pres.headers.get('content-type')).toBe('application/x-protobuf')
    expect(t.exportLogsResponse.decode(new Uint8Array(await pres.arrayBuffer())).toJSON()).toEqual({})
    const after = await readAll<OtlpEvent>(s.url, 'app-logs')
    expect(after.slice(2).map((e) => e.body)).toEqual([full!.body, bare!.body])
  })

  it('takes gzip bodies, answers an empty request with success, and counts records per request', async () => {
    const limited = await startTestServer({ server: '  otlp: { exchange: logs, maxRecordsPerRequest: 2 }' })
    const gz = await post(limited.url, gzipSync(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityText: 'A' }, { severityText: 'B' }] }] }] })), { 'content-type': 'application/json', 'content-encoding': 'gzip' })
    expect(gz.status).toBe(200)
    expect((await readAll<OtlpEvent>(limited.url, 'app-logs')).map((e) => e.routingKey)).toEqual(['_.A', '_.B'])
    expect((await post(limited.url, '')).status).toBe(200)
    const three = await post(limited.url, JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}, {}, {}] }] }] }))
    expect(three.status).toBe(413)
    expect(await three.json()).toEqual({ code: 3, message: expect.stringContaining('server.otlp.maxRecordsPerRequest') })
  })
})

describe('OTLP door: failures in OTLP terms', () => {
  it('a record the publish path refuses is named in partialSuccess and kept in ingest-errors; the rest is stored', async () => {
    const s = await startDoors({ server: '  limits: { maxEventSize: 2kb }' })
    const body = { resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityText: 'ok1' }, { severityText: 'big', body: { stringValue: 'x'.repeat(4096) } }, { severityText: 'ok2' }] }] }] }
    const res = await post(s.url, JSON.stringify(body))
    expect(res.status).toBe(200)
    const answer = (await res.json()) as { partialSuccess: { rejectedLogRecords: string; errorMessage: string } }
    expect(answer.partialSuccess.rejectedLogRecords).toBe('1')
    expect(answer.partialSuccess.errorMessage).toMatch(/^1 of 3 log records were not stored .*log record 1: /)
    expect((await readAll<OtlpEvent>(s.url, 'app-logs')).map((e) => e.body.severityText)).toEqual(['ok1', 'ok2'])
    const kept = await waitForEvents<{ listener: string; reason: string }>(s.url, 'ingest-errors', 1)
    expect(kept.map((e) => [e.routingKey, e.body.listener])).toEqual([['otlp.error', 'otlp']])
    expect(kept[0]!.body.reason).toMatch(/^event_too_large/)
  })

  it('bad data is a 400 with a google.rpc.Status in the request encoding, and the body goes to ingest-errors', async () => {
    const s = await startDoors()
    const bad = await post(s.url, '{"resourceLogs": [')
    expect(bad.status).toBe(400)
    expect(bad.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await bad.json()).toEqual({ code: 3, message: expect.stringContaining('not JSON') })
    const wrongShape = await post(s.url, JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId: 'abc' }] }] }] }))
    expect(wrongShape.status).toBe(400)
    expect(((await wrongShape.json()) as { message: string }).message).toContain('traceId must be 16 bytes')

    const garbage = await post(s.url, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), { 'content-type': 'application/x-protobuf' })
    expect(garbage.status).toBe(400)
    expect(garbage.headers.get('content-type')).toBe('application/x-protobuf')
    const status = otlpTypes().status.decode(new Uint8Array(await garbage.arrayBuffer())).toJSON()
    expect(status).toEqual({ code: 3, message: expect.stringContaining('not an ExportLogsServiceRequest') })

    const kept = await waitForEvents<{ listener: string; raw: string; reason: string }>(s.url, 'ingest-errors', 3)
    expect(kept.map((e) => e.body.listener)).toEqual(['otlp', 'otlp', 'otlp'])
    expect(kept[0]!.body.raw).toBe('{"resourceLogs": [')
    expect(await readAll(s.url, 'app-logs')).toEqual([])
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain('sluice_ingest_parse_errors_total{listener="http"} 3')
  })

  it('another content type is 415; a rate limit is 429 and an alarm 503, with Retry-After; a door that is off is 404', async () => {
    const s = await startDoors()
    const text = await post(s.url, 'hello', { 'content-type': 'text/plain' })
    expect(text.status).toBe(415)
    expect(await text.json()).toEqual({ code: 3, message: expect.stringContaining('application/x-protobuf or application/json') })

    const limited = await startDoors({ pipeline: `${testPipeline}\nrateLimits:\n  - { match: { listener: http }, events: 2/s, burst: 2 }\n` })
    const many = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}, {}, {}] }] }] })
    // A full bucket lets one request through whole (it goes into debt); the next waits.
    expect((await post(limited.url, many)).status).toBe(200)
    const refused = await post(limited.url, many)
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await refused.json()).toEqual({ code: 8, message: expect.stringContaining('rate limit') })
    expect(await readAll(limited.url, 'app-logs')).toHaveLength(3)

    // A resource alarm: 503 with Retry-After, which OTLP exporters retry.
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 2 ** 52 })
    const blocked = await post(s.url, many)
    expect(blocked.status).toBe(503)
    expect(blocked.headers.get('retry-after')).toBe('5')
    expect(await blocked.json()).toEqual({ code: 14, message: expect.stringContaining('alarm') })
    await s.server.alarms.setLimits({ diskFreeLimitBytes: 0 })
    expect((await post(s.url, many)).status).toBe(200)

    const off = await startTestServer()
    const res = await post(off.url, JSON.stringify(handWritten))
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ code: 5, message: 'no route POST /v1/logs' })
  })
})
