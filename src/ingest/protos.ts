// The protobuf schemas the doors decode with: the official .proto files in proto/ (see its
// README for where each comes from), loaded through protobufjs once, on first use.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import { errors } from '../errors.js'

/** proto/ sits beside src/ and beside dist/ (the Dockerfile copies it), at different depths from here. */
function protoDir(): string {
  for (const up of ['../../proto/', '../../../proto/']) {
    const dir = fileURLToPath(new URL(up, import.meta.url))
    if (existsSync(join(dir, 'README.md')) && existsSync(join(dir, 'loki'))) return dir
  }
  throw errors.startup(`the protobuf definitions (proto/) are not beside ${fileURLToPath(new URL('.', import.meta.url))}; they ship with Sluice`)
}

function load(files: readonly string[]): protobuf.Root {
  const dir = protoDir()
  const root = new protobuf.Root()
  // Imports are written from the root of each project's tree (opentelemetry/proto/...).
  root.resolvePath = (_origin, target) => join(dir, target)
  return root.loadSync([...files])
}

export interface OtlpTypes {
  readonly exportLogsRequest: protobuf.Type
  readonly exportLogsResponse: protobuf.Type
  /** google.rpc.Status: the body of an OTLP/HTTP error answer (details left empty), and OTLP/gRPC's `grpc-status-details-bin`. */
  readonly status: protobuf.Type
  /** google.rpc.RetryInfo, the detail that tells an OTLP/gRPC exporter when to retry. */
  readonly retryInfo: protobuf.Type
}

/** The type URL of a google.rpc.RetryInfo packed in a google.protobuf.Any. */
export const retryInfoTypeUrl = 'type.googleapis.com/google.rpc.RetryInfo'

export interface LokiTypes {
  readonly pushRequest: protobuf.Type
}

let otlp: OtlpTypes | undefined
let loki: LokiTypes | undefined

export function otlpTypes(): OtlpTypes {
  if (otlp !== undefined) return otlp
  const root = load(['opentelemetry/proto/collector/logs/v1/logs_service.proto'])
  // google/rpc/status.proto and error_details.proto are not part of opentelemetry-proto: the two
  // messages OTLP uses from them are declared here, field for field, over protobufjs's own copies
  // of google.protobuf.Any and Duration.
  for (const common of ['google/protobuf/any.proto', 'google/protobuf/duration.proto']) {
    const nested = protobuf.common.get(common)?.nested
    if (nested !== undefined) root.addJSON(nested)
  }
  const status = new protobuf.Type('Status')
    .add(new protobuf.Field('code', 1, 'int32'))
    .add(new protobuf.Field('message', 2, 'string'))
    .add(new protobuf.Field('details', 3, 'google.protobuf.Any', 'repeated'))
  const retryInfo = new protobuf.Type('RetryInfo').add(new protobuf.Field('retryDelay', 1, 'google.protobuf.Duration'))
  root.define('google.rpc').add(status).add(retryInfo)
  root.resolveAll()
  otlp = {
    exportLogsRequest: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
    exportLogsResponse: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
    status,
    retryInfo,
  }
  return otlp
}

export function lokiTypes(): LokiTypes {
  if (loki !== undefined) return loki
  const root = load(['loki/push.proto'])
  loki = { pushRequest: root.lookupType('logproto.PushRequest') }
  return loki
}
