// The one error catalogue. Every door answers a failure with the same code, so operators can
// search logs and dashboards by code. Codes never change once released; messages may.

export interface ErrorDetails {
  readonly [key: string]: unknown
}

export class SluiceError extends Error {
  readonly code: string
  readonly status: number
  readonly retryable: boolean
  readonly details: ErrorDetails | undefined

  constructor(code: string, message: string, status: number, retryable: boolean, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SluiceError'
    this.code = code
    this.status = status
    this.retryable = retryable
    this.details = details
  }

  /** The wire code: the catalogue name without its prefix, in snake_case (`SLUICE_ERR_NOT_READY` → `not_ready`). */
  get wireCode(): string {
    return wireCode(this.code)
  }

  /** The JSON shape every HTTP error uses: {"error": {"code", "message", "details"}}. */
  toJSON(): { error: { code: string; message: string; details?: ErrorDetails } } {
    return { error: { code: this.wireCode, message: this.message, ...(this.details ? { details: this.details } : {}) } }
  }
}

import { hitLimit } from './limits.js'

/** Counts the limit a refusal names, then returns the error: every limit error is a metric too. */
function counted<E>(name: string, e: E): E {
  hitLimit(name)
  return e
}

export const wireCode = (code: string): string => code.replace(/^SLUICE_ERR_/, '').toLowerCase()

export const errors = {
  // Storage
  logCorrupt: (file: string, position: number, why: string) =>
    new SluiceError('SLUICE_ERR_LOG_CORRUPT', `${file} at byte ${position}: ${why}; run "sluice fsck --repair" to truncate from there`, 500, false, { file, position }),
  logClosed: (dir: string) => new SluiceError('SLUICE_ERR_LOG_CLOSED', `log ${dir} is closed`, 503, true, { dir }),
  logResetting: (dir: string) => new SluiceError('SLUICE_ERR_LOG_CLOSED', `log ${dir} is being emptied for a stream handover; retry`, 503, true, { dir }),
  logRecordTooLarge: (bytes: number, limit: number) =>
    counted('recordFieldBytes', new SluiceError('SLUICE_ERR_LOG_RECORD_TOO_LARGE', `record of ${bytes} bytes is over the ${limit}-byte field limit of the batch format`, 413, false, { bytes, limit })),
  logBatchTooLarge: (bytes: number, segmentBytes: number) =>
    counted('segmentSize', new SluiceError('SLUICE_ERR_LOG_RECORD_TOO_LARGE', `batch of ${bytes} bytes does not fit in a segment of ${segmentBytes} bytes (segmentSize)`, 413, false, { bytes, limit: segmentBytes })),
  logFailed: (dir: string, cause: unknown) =>
    new SluiceError('SLUICE_ERR_LOG_FAILED', `log ${dir} failed a write and refuses appends until reopened`, 503, true, { dir }, { cause }),
  logWriteFailed: (dir: string, errno: string, cause: unknown) =>
    new SluiceError('SLUICE_ERR_LOG_WRITE_FAILED', `a write to log ${dir} failed (${errno}); the log rolled back to its last durable batch and nothing of this request was kept`, 503, true, { dir, errno, retryAfterMs: 1000 }, { cause }),
  logOffsetOutOfRange: (offset: number, start: number, end: number) =>
    new SluiceError('SLUICE_ERR_LOG_OFFSET_OUT_OF_RANGE', `offset ${offset} is outside the log [${start}, ${end})`, 416, false, { offset, start, end }),
  metaClosed: () => new SluiceError('SLUICE_ERR_META_CLOSED', 'metadata store is closed', 503, true),
  metaLocked: (dir: string, cause: unknown) =>
    new SluiceError('SLUICE_ERR_META_LOCKED', `metadata store ${dir} is locked by another process or instance; is another Sluice running on this dataDir?`, 500, false, { dir }, { cause }),
  metaOpen: (dir: string, cause: unknown) =>
    new SluiceError('SLUICE_ERR_META_OPEN', `cannot open metadata store ${dir}`, 500, false, { dir }, { cause }),
  metaFormat: (dir: string, found: number, expected: number) =>
    new SluiceError('SLUICE_ERR_META_FORMAT', `metadata store ${dir} has format ${found}; this build reads format ${expected}`, 500, false, { dir, found, expected }),
  metaCorrupt: (what: string, why: string) =>
    new SluiceError('SLUICE_ERR_META_CORRUPT', `metadata ${what}: ${why}`, 500, false, { what }),
  metaWrite: (cause: unknown) => new SluiceError('SLUICE_ERR_META_WRITE', 'metadata write failed; nothing in its batch was applied', 503, true, undefined, { cause }),
  metaOverloaded: (queuedOps: number, limit: number) =>
    counted('meta.queuedOpsMax', new SluiceError('SLUICE_ERR_META_OVERLOADED', `metadata write queue holds ${queuedOps} ops, at its limit of ${limit} (queuedOpsMax)`, 503, true, { queuedOps, limit })),
  internal: (cause: unknown) => new SluiceError('SLUICE_ERR_INTERNAL', 'internal error', 500, true, undefined, { cause }),
  notFound: (method: string, url: string) => new SluiceError('SLUICE_ERR_NOT_FOUND', `no route ${method} ${url}`, 404, false),
  // Access: the message never says whether the user exists or which part of a login was wrong.
  unauthenticated: (why: string, retryAfterMs?: number) =>
    new SluiceError('SLUICE_ERR_UNAUTHENTICATED', why, 401, retryAfterMs !== undefined, retryAfterMs === undefined ? undefined : { retryAfterMs }),
  forbidden: (message: string, permission: string, resource: { readonly kind: string; readonly name: string }) =>
    new SluiceError('SLUICE_ERR_FORBIDDEN', message, 403, false, { permission, resource }),
  // Startup and configuration
  startup: (why: string, cause?: unknown) => new SluiceError('SLUICE_ERR_STARTUP', `cannot start: ${why}`, 500, false, undefined, { cause }),
  config: (problems: readonly string[]) =>
    new SluiceError('SLUICE_ERR_CONFIG', `invalid configuration:\n  ${problems.join('\n  ')}`, 400, false, { problems }),
  configFile: (source: string, problems: readonly string[]) =>
    new SluiceError('SLUICE_ERR_CONFIG', `invalid configuration in ${source}:\n  ${problems.join('\n  ')}`, 400, false, { source, problems }),
  // Publishing
  unroutable: (line: number, exchange: string, routingKey: string) =>
    new SluiceError('SLUICE_ERR_UNROUTABLE', `line ${line}: no binding of exchange "${exchange}" matches routing key "${routingKey}" and the exchange rejects unroutable events; nothing was stored`, 400, false, { line, exchange, routingKey }),
  unknownStream: (stream: string) => new SluiceError('SLUICE_ERR_UNKNOWN_STREAM', `stream "${stream}" does not exist`, 404, false, { stream }),
  badEvent: (line: number, why: string, unit: 'line' | 'event' = 'line') =>
    new SluiceError('SLUICE_ERR_BAD_EVENT', `${unit} ${line}: ${why}; nothing was stored`, 400, false, { [unit]: line }),
  eventTooDeep: (line: number, maxDepth: number, unit: 'line' | 'event' = 'line') =>
    counted('limits.maxEventDepth', new SluiceError('SLUICE_ERR_BAD_EVENT', `${unit} ${line}: nested more than ${maxDepth} levels deep, over server.limits.maxEventDepth; nothing was stored`, 400, false, { [unit]: line, limit: 'maxEventDepth', limitDepth: maxDepth })),
  badRequest: (why: string, details?: ErrorDetails) => new SluiceError('SLUICE_ERR_BAD_REQUEST', why, 400, false, details),
  bodyTooLarge: (bytes: number, limit: number) =>
    counted('maxBodySize', new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `request body of ${bytes} bytes or more is over server.limits.maxBodySize (${limit} bytes); nothing was stored`, 413, false, { limit: 'maxBodySize', limitBytes: limit })),
  eventTooLarge: (line: number, bytes: number, limit: number, unit: 'line' | 'event' = 'line') =>
    counted('maxEventSize', new SluiceError('SLUICE_ERR_EVENT_TOO_LARGE', `${unit} ${line}: event of ${bytes} bytes is over server.limits.maxEventSize (${limit} bytes); nothing was stored`, 413, false, { [unit]: line, limit: 'maxEventSize', limitBytes: limit })),
  unsupportedMediaType: (type: string, accepted = 'application/json or application/x-ndjson') =>
    new SluiceError('SLUICE_ERR_UNSUPPORTED_MEDIA_TYPE', `content type "${type}" is not accepted; send ${accepted}`, 415, false, { contentType: type }),
  // Cluster mode
  clusterUnavailable: (what: string, cause: unknown) =>
    new SluiceError('SLUICE_ERR_CLUSTER_UNAVAILABLE', `${what} needs the cluster's etcd, which did not answer (${(cause as Error | undefined)?.message ?? String(cause)}); nothing was changed`, 503, true, { retryAfterMs: 1000 }, { cause }),
  forwardTooLarge: (why: string) => counted('cluster.replication.maxBodySize', new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', why, 413, false, { limit: 'cluster.replication.maxBodySize' })),
  streamUnavailable: (stream: string, why: string, node?: string) =>
    new SluiceError('SLUICE_ERR_STREAM_UNAVAILABLE', `stream "${stream}" cannot be written now: ${why}; retry with the same ids (they are deduplicated at the stream's home node)`, 503, true, { stream, ...(node !== undefined ? { node } : {}), retryAfterMs: 1000 }),
  notEnoughReplicas: (stream: string, inSync: number, needed: number) =>
    new SluiceError('SLUICE_ERR_NOT_ENOUGH_REPLICAS', `stream "${stream}" has ${inSync} replica${inSync === 1 ? '' : 's'} in sync, fewer than cluster.replication.minInSync (${needed}); nothing was stored; retry`, 503, true, { stream, inSync, minInSync: needed, retryAfterMs: 1000 }),
  replicationTimeout: (stream: string, why: string) =>
    new SluiceError('SLUICE_ERR_NOT_ENOUGH_REPLICAS', `stream "${stream}": the events are stored at the leader but not confirmed by enough replicas (${why}); retry with the same ids`, 503, true, { stream, retryAfterMs: 1000 }),
  moveRefused: (stream: string, why: string) => new SluiceError('SLUICE_ERR_MOVE_REFUSED', `stream "${stream}" cannot be moved: ${why}`, 409, false, { stream }),
  moveFailed: (stream: string, why: string) =>
    new SluiceError('SLUICE_ERR_MOVE_FAILED', `moving stream "${stream}" failed and was called off (${why}); it stays where it was, with nothing lost; the move can be tried again`, 503, true, { stream, retryAfterMs: 1000 }),
  notReady: () => new SluiceError('SLUICE_ERR_NOT_READY', 'recovering: streams are still opening; retry shortly', 503, true),
  // Flow control
  rateLimited: (rule: string, retryAfterMs: number) =>
    counted('rateLimits', new SluiceError('SLUICE_ERR_RATE_LIMITED', `over the ingest rate limit ${rule}; retry after ${Math.ceil(retryAfterMs / 1000)} s; nothing was stored`, 429, true, { rule, retryAfterMs })),
  alarm: (alarms: readonly string[], retryAfterMs: number) =>
    new SluiceError('SLUICE_ERR_ALARM', `publishing is blocked while the ${alarms.join(' and ')} alarm${alarms.length > 1 ? 's are' : ' is'} up; consumers keep draining; nothing was stored`, 503, true, { alarms, retryAfterMs }),
  diskSpace: (requestBytes: number, freeBytes: number, limitBytes: number, retryAfterMs: number) =>
    new SluiceError('SLUICE_ERR_DISK_SPACE', `storing ${requestBytes} bytes would take the free disk space (about ${freeBytes} bytes) below server.alarms.diskFreeLimit (${limitBytes} bytes); nothing was stored`, 503, true, { alarms: ['disk'], requestBytes, freeBytes, limitBytes, retryAfterMs }),
  overloaded: (inFlight: number, limit: number) =>
    counted('http.maxInFlightRequests', new SluiceError('SLUICE_ERR_OVERLOADED', `${inFlight} requests are being served, at server.http.maxInFlightRequests (${limit}); retry shortly`, 503, true, { limit: 'maxInFlightRequests', limitRequests: limit, retryAfterMs: 1000 })),
  addressOverloaded: (address: string, limit: number) =>
    counted('http.maxInFlightRequestsPerAddress', new SluiceError('SLUICE_ERR_TOO_MANY_REQUESTS', `${limit} requests from ${address} are being served, at server.http.maxInFlightRequestsPerAddress; retry shortly`, 429, true, { limit: 'maxInFlightRequestsPerAddress', limitRequests: limit, address, retryAfterMs: 1000 })),
  tooManyConnections: (limit: string, max: number | undefined) =>
    counted(limit, new SluiceError('SLUICE_ERR_TOO_MANY_CONNECTIONS', `too many open connections, at server.${limit}${max === undefined ? '' : ` (${max})`}; retry shortly`, 503, true, { limit, retryAfterMs: 1000 })),
  tooManyEvents: (limit: number) =>
    counted('limits.maxEventsPerRequest', new SluiceError('SLUICE_ERR_TOO_MANY_EVENTS', `the request holds more than ${limit} events, over server.limits.maxEventsPerRequest; split it; nothing was stored`, 413, false, { limit: 'maxEventsPerRequest', limitEvents: limit })),
  /** A door's own count limit (`key` is its full name, e.g. server.otlp.maxRecordsPerRequest); the same code as tooManyEvents. */
  tooManyRecords: (door: string, what: string, key: string, limit: number) =>
    counted(key.replace(/^server\./, ''), new SluiceError('SLUICE_ERR_TOO_MANY_EVENTS', `the ${door} request holds more than ${limit} ${what}, over ${key}; split it; nothing was stored`, 413, false, { limit: key.slice(key.lastIndexOf('.') + 1), limitEvents: limit })),
  // A request field over a server.http bound (fetch max, waitMs, tags, read limit).
  overRequestLimit: (field: string, value: number, key: string, max: number) =>
    counted(`http.${key}`, new SluiceError('SLUICE_ERR_BAD_REQUEST', `${field} ${value} is over server.http.${key} (${max})`, 400, false, { [field]: value, limit: key, limitValue: max })),
  // The HTTP door's own answers for what Node and fastify refuse before a route runs.
  requestTimeout: (what: 'headers' | 'body' | 'request', limit: string, limitMs: number) =>
    counted(`http.${limit}`, new SluiceError('SLUICE_ERR_REQUEST_TIMEOUT', `the request ${what} did not arrive within server.http.${limit} (${limitMs} ms); nothing was stored`, 408, true, { limit, limitMs })),
  uriTooLong: (limitChars: number) =>
    new SluiceError('SLUICE_ERR_URI_TOO_LONG', `a path segment is longer than ${limitChars} characters; names are at most 200`, 414, false, { limitChars }),
  headersTooLarge: (limitBytes: number) =>
    new SluiceError('SLUICE_ERR_HEADERS_TOO_LARGE', `the request line and headers are larger than ${limitBytes} bytes`, 431, false, { limitBytes }),
  // Consumer groups
  unknownGroup: (group: string) => new SluiceError('SLUICE_ERR_UNKNOWN_GROUP', `group "${group}" does not exist`, 404, false, { group }),
  groupClosed: (group: string) => new SluiceError('SLUICE_ERR_GROUP_CLOSED', `group "${group}" is closing`, 503, true, { group }),
  consumerNotYours: (group: string, consumer: string) =>
    new SluiceError('SLUICE_ERR_CONSUMER_IN_USE', `consumer "${consumer}" of group "${group}" fetches as another user; pick a consumer name of your own`, 409, false, { group, consumer }),
  consumerBusy: (group: string, consumer: string) =>
    new SluiceError('SLUICE_ERR_CONSUMER_IN_USE', `consumer "${consumer}" of group "${group}" is already receiving (a consume stream or a fetch); a member has one receiver at a time, pick another consumer name`, 409, false, { group, consumer }),
  idempotencyKeyReused: (key: string) =>
    new SluiceError('SLUICE_ERR_IDEMPOTENCY_KEY_REUSED', `idempotency key "${key}" was used for a different request within the dedup window; nothing was stored`, 409, false, { idempotencyKey: key }),
  notDeadLetters: (stream: string) =>
    new SluiceError('SLUICE_ERR_NOT_DEAD_LETTERS', `stream "${stream}" holds no dead-lettered events (none carries x-death) and no group dead-letters into it; redrive takes a dead-letter stream, such as a group's deadLetter.stream`, 409, false, { stream }),
  groupExists: (group: string) => new SluiceError('SLUICE_ERR_GROUP_EXISTS', `group "${group}" already exists with other settings`, 409, false, { group }),
  // Counts of things: past them nothing new is made until something goes; what exists goes on.
  tooManyStreams: (stream: string, limit: number) =>
    counted('limits.maxStreams', new SluiceError('SLUICE_ERR_TOO_MANY_STREAMS', `cannot declare stream "${stream}": the stream limit (${limit}) is reached (server.limits.maxStreams)`, 409, false, { stream, limit: 'maxStreams', limitStreams: limit })),
  tooManyGroups: (group: string, limit: number) =>
    counted('limits.maxGroups', new SluiceError('SLUICE_ERR_TOO_MANY_GROUPS', `cannot declare group "${group}": the group limit (${limit}) is reached (server.limits.maxGroups)`, 409, false, { group, limit: 'maxGroups', limitGroups: limit })),
  tooManyConsumers: (group: string, limit: number) =>
    counted('limits.maxConsumers', new SluiceError('SLUICE_ERR_TOO_MANY_CONSUMERS', `group "${group}" cannot take a new consumer: ${limit} consumers are registered across all groups, at server.limits.maxConsumers; retry once some have left`, 503, true, { group, limit: 'maxConsumers', limitConsumers: limit, retryAfterMs: 1000 })),
  backlogFull: (stream: string, group: string, backlog: number, limit: number) =>
    counted('maxBacklog', new SluiceError('SLUICE_ERR_BACKLOG_FULL', `stream "${stream}": group "${group}" holds ${backlog} unsettled events, at its maxBacklog of ${limit} (overflow: reject-publish); nothing was stored`, 429, true, { stream, group, backlog, limit: 'maxBacklog', limitEvents: limit })),
  backlogBytesFull: (stream: string, group: string, bytes: number, incoming: number, limit: number) =>
    counted('maxBacklogBytes', new SluiceError('SLUICE_ERR_BACKLOG_FULL', `stream "${stream}": group "${group}" holds ${bytes} bytes of unsettled events; ${incoming} more would pass its maxBacklogBytes of ${limit} (overflow: reject-publish); nothing was stored`, 429, true, { stream, group, backlogBytes: bytes, limit: 'maxBacklogBytes', limitBytes: limit })),
  // Routing
  routerUnknownExchange: (exchange: string) =>
    new SluiceError('SLUICE_ERR_UNKNOWN_EXCHANGE', `exchange "${exchange}" does not exist`, 404, false, { exchange }),
  routerBadExchange: (exchange: string, why: string) =>
    new SluiceError('SLUICE_ERR_ROUTER_BAD_EXCHANGE', `exchange "${exchange}": ${why}`, 400, false, { exchange }),
  // A redeclare with other settings; the AMQP door answers it with 406 PRECONDITION_FAILED.
  routerExchangeConflict: (exchange: string, why: string) =>
    new SluiceError('SLUICE_ERR_ROUTER_EXCHANGE_CONFLICT', `exchange "${exchange}" already exists ${why}`, 409, false, { exchange }),
  // Run-time definitions (AMQP declarations): the YAML's own are read-only at run time.
  definitionProtected: (kind: 'exchange' | 'stream' | 'binding' | 'group', name: string) =>
    new SluiceError('SLUICE_ERR_DEFINITION_PROTECTED', `${kind} "${name}" is declared in the configuration file; change it there, not at run time`, 403, false, { kind, name }),
  definitionInUse: (kind: 'exchange' | 'stream' | 'group', name: string, why: string) =>
    new SluiceError('SLUICE_ERR_DEFINITION_IN_USE', `${kind} "${name}" ${why}`, 409, false, { kind, name }),
  definitionsConflict: (conflicts: ReadonlyArray<{ readonly kind: string; readonly name: string; readonly message: string }>) =>
    new SluiceError('SLUICE_ERR_DEFINITIONS_CONFLICT', `the definitions conflict with what runs, so none was declared: ${conflicts.map((c) => c.message).join('; ')}`, 409, false, { conflicts: conflicts.map((c) => ({ ...c })) }),
  routerBadBinding: (exchange: string, why: string) =>
    new SluiceError('SLUICE_ERR_ROUTER_BAD_BINDING', `binding on exchange "${exchange}": ${why}`, 400, false, { exchange }),
  routerBadTemplate: (template: string, position: number, why: string) =>
    new SluiceError('SLUICE_ERR_ROUTER_BAD_TEMPLATE', `routing key template ${JSON.stringify(template)} at character ${position}: ${why}`, 400, false, { template, position }),
} as const

export type ErrorCode = ReturnType<(typeof errors)[keyof typeof errors]>['code']
