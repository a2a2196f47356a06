// What the OTLP tests send through the OpenTelemetry SDK with a real exporter, and check on arrival.

import { ROOT_CONTEXT, SeverityNumber, TraceFlags, trace } from '@opentelemetry/api'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs'
import { expect } from 'vitest'

export const records = 1000

const traceIdOf = (i: number): string => `${'0'.repeat(24)}${(0xabc00000 + i).toString(16)}`
const spanIdOf = (i: number): string => `${'0'.repeat(8)}${(0x5a000000 + i).toString(16)}`

export interface OtlpEvent {
  timeUnixNano?: string
  observedTimeUnixNano?: string
  severityNumber?: number
  severityText?: string
  body?: unknown
  attributes: Record<string, unknown>
  traceId?: string
  spanId?: string
  flags?: number
  resource: Record<string, unknown>
  scope?: { name?: string; version?: string; attributes?: Record<string, unknown> }
}

/** 1,000 records through the OpenTelemetry SDK and a real exporter, each with attributes and a trace. */
export async function exportThrough(exporter: LogRecordExporter): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'service.version': '1.2.3', 'deployment.environment.name': 'test' }),
    processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 256, scheduledDelayMillis: 10, maxQueueSize: 4096 })],
  })
  const logger = provider.getLogger('my.library', '1.0.0')
  for (let i = 0; i < records; i++) {
    const error = i % 4 === 0
    logger.emit({
      timestamp: new Date(1_700_000_000_000 + i),
      severityNumber: error ? SeverityNumber.ERROR : SeverityNumber.INFO,
      severityText: error ? 'ERROR' : 'INFO',
      body: i % 10 === 0 ? { msg: `structured ${i}`, n: i, nested: { ok: true } } : `message ${i} é ✓`,
      attributes: { i, 'user.id': `u${i}`, 'http.response.status_code': 200 + (i % 5), ratio: i / 8 + 0.5, ok: i % 2 === 0, tags: ['a', `t${i}`] },
      context: trace.setSpanContext(ROOT_CONTEXT, { traceId: traceIdOf(i), spanId: spanIdOf(i), traceFlags: TraceFlags.SAMPLED }),
    })
  }
  await provider.shutdown()
}

export function checkArrived(events: ReadonlyArray<{ routingKey: string; body: OtlpEvent }>): void {
  expect(events).toHaveLength(records)
  const seen = new Set<number>()
  for (const { routingKey, body } of events) {
    const i = body.attributes.i as number
    expect(seen.has(i)).toBe(false)
    seen.add(i)
    const error = i % 4 === 0
    expect(routingKey).toBe(error ? 'checkout.ERROR' : 'checkout.INFO')
    expect(body.attributes).toEqual({ i, 'user.id': `u${i}`, 'http.response.status_code': 200 + (i % 5), ratio: i / 8 + 0.5, ok: i % 2 === 0, tags: ['a', `t${i}`] })
    expect(body.traceId).toBe(traceIdOf(i))
    expect(body.spanId).toBe(spanIdOf(i))
    expect(body.flags).toBe(1)
    expect(body.severityNumber).toBe(error ? 17 : 9)
    expect(body.severityText).toBe(error ? 'ERROR' : 'INFO')
    expect(body.timeUnixNano).toBe(String(BigInt(1_700_000_000_000 + i) * 1_000_000n))
    expect(body.observedTimeUnixNano).toMatch(/^\d{19}$/)
    expect(body.body).toEqual(i % 10 === 0 ? { msg: `structured ${i}`, n: i, nested: { ok: true } } : `message ${i} é ✓`)
    expect(body.resource).toMatchObject({ 'service.name': 'checkout', 'service.version': '1.2.3', 'deployment.environment.name': 'test' })
    expect(body.scope).toEqual({ name: 'my.library', version: '1.0.0' })
  }
  expect(seen.size).toBe(records)
}
