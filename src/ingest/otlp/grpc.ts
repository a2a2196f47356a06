// OTLP/gRPC: opentelemetry.proto.collector.logs.v1.LogsService/Export on a listener of its own
// (server.otlp.grpc, 4317). The request is decoded with the official schema (src/ingest/protos.ts)
// and mapped and published exactly as OTLP/HTTP's (logs.ts, export.ts); only the answer differs:
// a gRPC status instead of an HTTP one.

import { Metadata, Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData, type ServiceDefinition } from '@grpc/grpc-js'
import type { OtlpDoorConfig } from '../../config/index.js'
import { SluiceError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import { compileTemplate, type RoutingKeyTemplate } from '../../router/index.js'
import type { Publisher } from '../../streams/publisher.js'
import type { DoorAccess } from '../door-access.js'
import type { IngestErrors } from '../ingest-errors.js'
import { otlpTypes } from '../protos.js'
import { newCounters, type IngestListener, type ListenerCounters } from '../tcp/server.js'
import { publishOtlp } from './export.js'
import { grpcCode, otlpEvents } from './logs.js'

const exportPath = '/opentelemetry.proto.collector.logs.v1.LogsService/Export'

// The request stays bytes until the handler decodes it, so a malformed one is answered
// INVALID_ARGUMENT (and kept in ingest-errors) rather than grpc-js's INTERNAL.
const logsService: ServiceDefinition = {
  Export: {
    path: exportPath,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    responseDeserialize: (b: Buffer) => b,
    originalName: 'export',
  },
}

/** The client's address from grpc-js's peer string: `127.0.0.1:5000`, `[::1]:5000` or with an `ipv4:` prefix. */
export function peerAddress(peer: string): string | undefined {
  const m = /^(?:ipv[46]:)?(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(peer)
  return m?.[1] ?? m?.[2]
}

interface GrpcFailure {
  readonly code: number
  readonly details: string
  readonly metadata?: Metadata
}

/** A SluiceError as a gRPC status; a Retry-After travels as metadata, as OTLP/HTTP's header does. */
function failure(err: unknown): GrpcFailure {
  if (!(err instanceof SluiceError)) return { code: status.INTERNAL, details: 'internal error' }
  const retryAfterMs = err.details?.retryAfterMs
  const metadata = new Metadata()
  if (typeof retryAfterMs === 'number') metadata.set('retry-after', String(Math.ceil(retryAfterMs / 1000)))
  return { code: grpcCode(err.status), details: err.message, metadata }
}

export interface OtlpGrpcDeps {
  readonly config: OtlpDoorConfig
  readonly exchange: string
  readonly publisher: Publisher
  readonly ingestErrors: IngestErrors
  readonly logger: Logger
  readonly maxEventDepth: number
  readonly access?: DoorAccess | undefined
}

export class OtlpGrpcListener implements IngestListener {
  readonly options = { name: 'otlp-grpc' }
  readonly counters: ListenerCounters = newCounters()
  readonly #server: Server
  readonly #template: RoutingKeyTemplate | undefined
  #port = 0

  constructor(private readonly deps: OtlpGrpcDeps) {
    const { grpc } = deps.config
    this.#template = deps.config.routingKey === null ? undefined : compileTemplate(deps.config.routingKey)
    this.#server = new Server({ 'grpc.max_receive_message_length': grpc.maxMessageBytes })
    this.#server.addService(logsService, { Export: (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => void this.#export(call, callback) })
  }

  async #export(call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): Promise<void> {
    const { config, exchange, publisher, ingestErrors, access } = this.deps
    const address = peerAddress(call.getPeer())
    const remote = call.getPeer()
    // No credentials in the calls Sluice takes: the allow list and the listener's user, as on the stream doors.
    const identity = access === undefined || !access.admit(address) ? undefined : access.identity(address)
    if (access !== undefined && identity === undefined) return callback({ code: status.PERMISSION_DENIED, details: 'refused: see the listener\'s allow and user' })
    const body = call.request
    this.counters.messages++
    this.counters.bytes += body.length
    let mapped: ReturnType<typeof otlpEvents>
    try {
      const request = otlpTypes().exportLogsRequest.decode(body)
      mapped = otlpEvents(request, { maxRecords: config.maxRecordsPerRequest, maxDepth: this.deps.maxEventDepth, routingKey: this.#template })
    } catch (err) {
      this.counters.parseErrors++
      const reason = err instanceof SluiceError ? `${err.wireCode}: ${err.message}` : `the body is not an ExportLogsServiceRequest: ${(err as Error).message}`
      ingestErrors.record({ listener: 'otlp-grpc', remote, reason, raw: body })
      return callback(err instanceof SluiceError ? failure(err) : { code: status.INVALID_ARGUMENT, details: reason })
    }
    try {
      const outcome = await publishOtlp(mapped, { publisher, ingestErrors, exchange, remote, from: { listener: 'otlp-grpc', remote: address, user: identity?.username } })
      const t = otlpTypes().exportLogsResponse
      const partial = outcome.rejected > 0 ? { partialSuccess: { rejectedLogRecords: outcome.rejected, errorMessage: outcome.message } } : {}
      callback(null, t.encode(partial).finish())
    } catch (err) {
      // Alarms, rate limits, a full backlog: UNAVAILABLE or RESOURCE_EXHAUSTED, which exporters retry.
      callback(failure(err))
    }
  }

  get port(): number {
    return this.#port
  }

  async listen(): Promise<void> {
    const { host, port } = this.deps.config.grpc
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    this.#port = await new Promise<number>((resolve, reject) => this.#server.bindAsync(target, ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err))))
    this.deps.logger.info({ listener: 'otlp-grpc', address: `${host}:${this.#port}` }, 'listener up')
  }

  /** Lets calls under way finish (their publishes are already admitted), then stops. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()))
  }
}
