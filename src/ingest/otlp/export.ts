import type { Publisher, PublishRequest } from '../../streams/publisher.js'
import type { IngestErrors } from '../ingest-errors.js'
import type { OtlpEvents } from './logs.js'

export interface OtlpExportContext {
  readonly publisher: Publisher
  readonly ingestErrors: IngestErrors
  readonly exchange: string
  /** The client's address, for ingest-errors. */
  readonly remote: string | undefined
  /** Who publishes, for the rate limits. */
  readonly from: PublishRequest['from']
}

/** What an export answers: how many records were not stored, and why (OTLP's partialSuccess). */
export interface OtlpExportOutcome {
  readonly rejected: number
  readonly message: string
}

/**
 * Publishes the records of one export request, mapped, the same over OTLP/HTTP and OTLP/gRPC.
 * Records refused while mapping or by the publish path go to ingest-errors and are named in the
 * outcome; the client must not retry them, as they would be refused again. Admission refusals
 * (rate limits, alarms) are thrown, for the door to answer in its protocol's terms.
 */
export async function publishOtlp(mapped: OtlpEvents, ctx: OtlpExportContext): Promise<OtlpExportOutcome> {
  const reasons = mapped.refused.map((r) => r.reason)
  for (const r of mapped.refused) ctx.ingestErrors.record({ listener: 'otlp', remote: ctx.remote, reason: r.reason, raw: Buffer.alloc(0) })
  if (mapped.events.length > 0) {
    const result = await ctx.publisher.publish({ exchange: ctx.exchange, events: mapped.events, source: 'otlp', from: ctx.from, invalid: 'event' })
    for (const { index, error } of result.refused ?? []) {
      ctx.ingestErrors.record({ listener: 'otlp', remote: ctx.remote, reason: `${error.wireCode}: ${error.message}`, raw: mapped.events[index]!.body })
      reasons.push(`log record ${mapped.index[index]}: ${error.message}`)
    }
  }
  const message = reasons.length === 0 ? '' : `${reasons.length} of ${mapped.total} log records were not stored (kept in the ingest-errors stream): ${reasons.slice(0, 3).join('; ')}${reasons.length > 3 ? '; …' : ''}`
  return { rejected: reasons.length, message }
}
