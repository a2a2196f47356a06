// OTLP/gRPC: opentelemetry.proto.collector.logs.v1.LogsService/Export on a listener of its own
// (server.otlp.grpc, 4317). The request is decoded with the official schema (src/ingest/protos.ts)
// and mapped and published exactly as OTLP/HTTP's (logs.ts, export.ts); only the answer differs:
// a gRPC status instead of an HTTP one.

import { createSecureContext, type PeerCertificate as LegacyPeerCertificate, type SecureContextOptions, type TlsOptions } from 'node:tls'
import { Metadata, Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData, type ServiceDefinition } from '@grpc/grpc-js'
import { isTlsProblem, readTlsMaterial, type OtlpDoorConfig, type TlsConfig } from '../../config/index.js'
import { SluiceError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import { compileTemplate, type RoutingKeyTemplate } from '../../router/index.js'
import type { Publisher } from '../../streams/publisher.js'
import type { ClientCertificate, DoorAccess } from '../door-access.js'
import type { IngestErrors } from '../ingest-errors.js'
import { otlpTypes, retryInfoTypeUrl } from '../protos.js'
import { newCounters, type IngestListener, type ListenerCounters } from '../tcp/server.js'
import { tlsServerOptions, type TlsReloader } from '../tcp/tls.js'
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

/** How long a flow-control refusal that computed no wait asks the client to wait, as HTTP's Retry-After: 1. */
const defaultRetryAfterMs = 1000

/**
 * google.rpc.Status with a google.rpc.RetryInfo detail, for `grpc-status-details-bin`: OTLP/gRPC
 * exporters retry RESOURCE_EXHAUSTED only when it carries one, and wait the delay it gives.
 */
export function retryStatusDetails(code: number, message: string, retryAfterMs: number): Buffer {
  const t = otlpTypes()
  const ms = Math.max(0, Math.ceil(retryAfterMs))
  const retryInfo = t.retryInfo.encode({ retryDelay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 } }).finish()
  return Buffer.from(t.status.encode({ code, message, details: [{ type_url: retryInfoTypeUrl, value: retryInfo }] }).finish())
}

/**
 * A SluiceError as a gRPC status. Flow control (RESOURCE_EXHAUSTED, UNAVAILABLE) says when to
 * retry twice: a RetryInfo detail, as the OTLP specification asks, and a `retry-after` entry in
 * seconds, as OTLP/HTTP's header.
 */
function failure(err: unknown): GrpcFailure {
  if (!(err instanceof SluiceError)) return { code: status.INTERNAL, details: 'internal error' }
  const code = grpcCode(err.status)
  const metadata = new Metadata()
  if (code === status.RESOURCE_EXHAUSTED || code === status.UNAVAILABLE) {
    const given = err.details?.retryAfterMs
    const retryAfterMs = typeof given === 'number' ? given : defaultRetryAfterMs
    metadata.set('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))))
    metadata.set('grpc-status-details-bin', retryStatusDetails(code, err.message, retryAfterMs))
  }
  return { code, details: err.message, metadata }
}

/** The verified client certificate of a call, as the stream doors see one (RFC 4514 subject, CN). */
function callCertificate(peer: LegacyPeerCertificate | undefined): ClientCertificate | undefined {
  if (peer === undefined) return undefined
  const attributes = Object.entries(peer.subject ?? {}).flatMap(([k, v]) => [v].flat().map((one) => `${k}=${String(one)}`))
  const cn = [peer.subject?.CN].flat()[0]
  // Certificate order is least specific first; RFC 4514 writes the most specific first.
  return { subject: attributes.reverse().join(','), commonName: cn }
}

/**
 * Server credentials whose certificate can be swapped on SIGHUP: grpc-js hands new context options
 * to its servers' setSecureContext. They are tried on a throwaway context first, since grpc-js
 * would otherwise drop every new connection after a context it cannot use.
 */
class ReloadableCredentials extends ServerCredentials {
  constructor(options: TlsOptions) {
    super(options, contextOptions(options))
  }

  setSecureContext(options: TlsOptions): void {
    const context = contextOptions(options)
    createSecureContext(context)
    this.updateSecureContextOptions(context)
  }

  _equals(other: ServerCredentials): boolean {
    return other === this
  }
}

function contextOptions(o: TlsOptions): SecureContextOptions {
  return { cert: o.cert, key: o.key, ...(o.ca === undefined ? {} : { ca: o.ca }), minVersion: o.minVersion }
}

function credentialsFor(tls: TlsConfig | null): ServerCredentials {
  if (tls === null) return ServerCredentials.createInsecure()
  const material = readTlsMaterial(tls)
  if (isTlsProblem(material)) throw new Error(`tls.${material.file}: ${material.problem}`)
  return new ReloadableCredentials(tlsServerOptions(tls, material))
}

export interface OtlpGrpcDeps {
  readonly config: OtlpDoorConfig
  readonly exchange: string
  readonly publisher: Publisher
  readonly ingestErrors: IngestErrors
  readonly logger: Logger
  readonly maxEventDepth: number
  readonly access?: DoorAccess | undefined
  /** Where a TLS listener's certificate is registered for reload on SIGHUP. */
  readonly tlsReloader?: TlsReloader | undefined
}

export class OtlpGrpcListener implements IngestListener {
  readonly options = { name: 'otlp-grpc' }
  readonly counters: ListenerCounters = newCounters()
  readonly tls: boolean
  readonly #server: Server
  readonly #credentials: ServerCredentials
  readonly #template: RoutingKeyTemplate | undefined
  #unregisterTls: (() => void) | undefined
  #port = 0

  constructor(private readonly deps: OtlpGrpcDeps) {
    const { grpc } = deps.config
    this.#template = deps.config.routingKey === null ? undefined : compileTemplate(deps.config.routingKey)
    // Read now, so a TLS file gone bad since validation stops the start naming the listener.
    this.#credentials = credentialsFor(grpc.tls)
    this.tls = grpc.tls !== null
    this.#server = new Server({ 'grpc.max_receive_message_length': grpc.maxMessageBytes })
    this.#server.addService(logsService, { Export: (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => void this.#export(call, callback) })
  }

  async #export(call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): Promise<void> {
    const { config, exchange, publisher, ingestErrors, access } = this.deps
    const address = peerAddress(call.getPeer())
    const remote = call.getPeer()
    // No credentials in the calls Sluice takes: the allow list and the listener's user, as on the stream doors.
    // With TLS clientAuth, grpc-js shows only a certificate that verified: one that did not (under
    // `optional`) counts as none, and gives the call no user of its own.
    const identity = access === undefined || !access.admit(address) ? undefined : access.identity(address, callCertificate(call.getAuthContext().sslPeerCertificate))
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
    const credentials = this.#credentials
    this.#port = await new Promise<number>((resolve, reject) => this.#server.bindAsync(target, credentials, (err, bound) => (err === null ? resolve(bound) : reject(err))))
    const tls = this.deps.config.grpc.tls
    if (tls !== null && credentials instanceof ReloadableCredentials) this.#unregisterTls = this.deps.tlsReloader?.add({ config: tls, label: `otlp-grpc ${host}:${this.#port}` }, credentials)
    this.deps.logger.info({ listener: 'otlp-grpc', address: `${host}:${this.#port}`, tls: this.tls }, 'listener up')
  }

  /** Lets calls under way finish (their publishes are already admitted), then stops. */
  async close(): Promise<void> {
    this.#unregisterTls?.()
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()))
  }
}
