// Shapes the validated values (keyed as in YAML) into the public Config (units in field names,
// references as discriminated unions). Runs only when validation found no problem, so every
// value here is present and well-typed.

import type { ConfigSpec, authSpec, bindingSpec, groupSpec, rateLimitSpec, serverSpec } from './keys.js'
import { exchangeSpec, streamSpec } from './keys.js'
import type { ObjectSpec, Raw } from './spec.js'
import type { AuthConfig, BindingConfig, Config, DeadLetterConfig, ExchangeConfig, ExchangeType, FsyncPolicy, GroupConfig, RateLimitConfig, ServerConfig, StreamConfig, UserConfig } from './types.js'
import { defaultOf } from './validate.js'

export function buildConfig(raw: Raw<ConfigSpec>): Config {
  const server = buildServer(raw.server)
  return {
    server,
    auth: buildAuth(raw.auth),
    exchanges: byName(raw.exchanges, buildExchange),
    streams: byName(raw.streams, (name, s) => buildStream(name, s, server.durability.fsync)),
    bindings: raw.bindings.map(buildBinding),
    groups: byName(raw.groups, buildGroup),
    rateLimits: raw.rateLimits.map(buildRateLimit),
  }
}

/**
 * A stream declared with no settings, as `streams: { <name>: {} }` gives: what run-time (AMQP)
 * and built-in streams start from, so the key table is the one source of stream defaults.
 */
export function defaultStreamConfig(name: string, fsync: FsyncPolicy): StreamConfig {
  return buildStream(name, defaultsOf(streamSpec) as Raw<typeof streamSpec>, fsync)
}

/** An exchange declared with only a type and an alternate; every other key at its default. */
export function defaultExchangeConfig(name: string, type: ExchangeType, alternate: string | null): ExchangeConfig {
  return buildExchange(name, { ...(defaultsOf(exchangeSpec) as Raw<typeof exchangeSpec>), type, alternate })
}

// What the validator gives an object the file leaves out: each leaf's parsed default.
function defaultsOf(spec: ObjectSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, child] of Object.entries(spec.keys)) {
    if (child.type === 'object') out[k] = child.optional === true ? null : defaultsOf(child)
    else if (child.type === 'named') out[k] = {}
    else if (child.type === 'list') out[k] = []
    else out[k] = defaultOf(child)
  }
  return out
}

function byName<R, T>(raw: Readonly<Record<string, R>>, build: (name: string, value: R) => T): Readonly<Record<string, T>> {
  // A null prototype, because names come from users (see validate.ts).
  const out: Record<string, T> = Object.create(null) as Record<string, T>
  for (const [name, value] of Object.entries(raw)) out[name] = build(name, value)
  return out
}

function buildServer(s: Raw<typeof serverSpec>): ServerConfig {
  return {
    dataDir: s.dataDir,
    http: {
      enabled: s.http.enabled,
      host: s.http.host,
      port: s.http.port,
      requestTimeoutMs: s.http.requestTimeout,
      headersTimeoutMs: s.http.headersTimeout,
      keepAliveTimeoutMs: s.http.keepAliveTimeout,
      maxInFlightRequests: s.http.maxInFlightRequests,
      maxInFlightRequestsPerAddress: s.http.maxInFlightRequestsPerAddress,
      maxConnections: s.http.maxConnections,
      maxConnectionsPerAddress: s.http.maxConnectionsPerAddress,
      bodyTimeoutMs: s.http.bodyTimeout,
      maxDrainBytes: s.http.maxDrainSize,
      maxFetchEvents: s.http.maxFetchEvents,
      maxFetchWaitMs: s.http.maxFetchWait,
      maxTagsPerRequest: s.http.maxTagsPerRequest,
      maxReadEvents: s.http.maxReadEvents,
      maxReadWaitMs: s.http.maxReadWait,
      openMetrics: s.http.openMetrics,
    },
    ndjson: {
      enabled: s.ndjson.enabled,
      host: s.ndjson.host,
      port: s.ndjson.port,
      exchange: s.ndjson.exchange,
      routingKey: s.ndjson.routingKey,
      maxLineBytes: s.ndjson.maxLineSize,
      idleTimeoutMs: s.ndjson.idleTimeout,
      maxConnections: s.ndjson.maxConnections,
      maxConnectionsPerAddress: s.ndjson.maxConnectionsPerAddress,
      maxPendingBytes: s.ndjson.maxPendingSize,
    },
    amqp: {
      enabled: s.amqp.enabled,
      host: s.amqp.host,
      port: s.amqp.port,
      frameMaxBytes: s.amqp.frameMax,
      channelMax: s.amqp.channelMax,
      heartbeatMs: s.amqp.heartbeat,
      handshakeTimeoutMs: s.amqp.handshakeTimeout,
      maxConnections: s.amqp.maxConnections,
      maxConnectionsPerAddress: s.amqp.maxConnectionsPerAddress,
      maxQueuesPerConnection: s.amqp.maxQueuesPerConnection,
      maxConsumersPerChannel: s.amqp.maxConsumersPerChannel,
      maxPendingPublishBytes: s.amqp.maxPendingPublishSize,
      maxMessageBytes: s.amqp.maxMessageSize,
    },
    syslog: {
      enabled: s.syslog.enabled,
      host: s.syslog.host,
      port: s.syslog.port,
      udp: s.syslog.udp,
      exchange: s.syslog.exchange,
      routingKey: s.syslog.routingKey,
      maxMessageBytes: s.syslog.maxMessageSize,
      idleTimeoutMs: s.syslog.idleTimeout,
      maxConnections: s.syslog.maxConnections,
      maxConnectionsPerAddress: s.syslog.maxConnectionsPerAddress,
      maxPendingBytes: s.syslog.maxPendingSize,
      udpReceiveBufferBytes: s.syslog.udpReceiveBufferSize,
      udpQueueSize: s.syslog.udpQueueSize,
    },
    durability: { fsync: s.durability.fsync, intervalMs: s.durability.interval, maxBatchBytes: s.durability.maxBatchBytes },
    limits: {
      maxBodyBytes: s.limits.maxBodySize,
      maxEventBytes: s.limits.maxEventSize,
      maxConnections: s.limits.maxConnections,
      maxOpenSegmentFiles: s.limits.maxOpenSegmentFiles,
      maxEventsPerRequest: s.limits.maxEventsPerRequest,
      maxEventDepth: s.limits.maxEventDepth,
      maxStreams: s.limits.maxStreams,
      maxGroups: s.limits.maxGroups,
      maxConsumers: s.limits.maxConsumers,
      maxDedupIds: s.limits.maxDedupIds,
    },
    ingestErrors: { maxQueued: s.ingestErrors.maxQueued, maxRawBytes: s.ingestErrors.maxRawSize, maxBytes: s.ingestErrors.maxBytes },
    alarms: { memoryHighWatermark: s.alarms.memoryHighWatermark, memoryLimitBytes: s.alarms.memoryLimit, diskFreeLimitBytes: s.alarms.diskFreeLimit },
    log: { level: s.log.level },
  }
}

function buildExchange(name: string, e: Raw<typeof exchangeSpec>): ExchangeConfig {
  return {
    name,
    type: e.type,
    routingKey: e.routingKey,
    alternate: e.alternate,
    unroutable: e.unroutable,
    dedup: e.dedup,
    dedupWindowMs: e.dedupWindow,
  }
}

/**
 * The user an absent `auth.users` stands for, so `npm start` and curl from the same machine work
 * with no credentials (anonymous loopback clients act as guest), as RabbitMQ's guest does.
 */
export const defaultGuest: UserConfig = {
  username: 'guest',
  password: 'guest',
  passwordHash: null,
  tags: ['administrator'],
  permissions: { configure: '.*', write: '.*', read: '.*' },
  loopbackOnly: true,
}

function buildAuth(a: Raw<typeof authSpec>): AuthConfig {
  return {
    anonymous: a.anonymous,
    users: a.users === null ? [defaultGuest] : a.users.map((u) => ({ ...u, tags: [...u.tags], permissions: { ...u.permissions } })),
    apiKeys: a.apiKeys.map((k) => ({ ...k })),
    maxFailureDelayMs: a.maxFailureDelay,
    maxPendingLoginsPerAddress: a.maxPendingLoginsPerAddress,
    maxTrackedAddresses: a.maxTrackedAddresses,
  }
}

function buildStream(name: string, s: Raw<typeof streamSpec>, fsync: FsyncPolicy): StreamConfig {
  return {
    name,
    retention: { maxAgeMs: s.retention.maxAge, maxBytes: s.retention.maxBytes, policy: s.retention.policy },
    segmentBytes: s.segmentSize,
    segmentAgeMs: s.segmentAge,
    fsync: s.fsync ?? fsync,
  }
}

function buildBinding(b: Raw<typeof bindingSpec>): BindingConfig {
  // references.ts has already ensured exactly one destination is set.
  const destination = b.stream !== null ? { kind: 'stream' as const, name: b.stream } : { kind: 'exchange' as const, name: b.toExchange ?? '' }
  return { exchange: b.exchange, destination, key: b.key, match: b.match, headers: { ...b.headers } }
}

function buildGroup(name: string, g: Raw<typeof groupSpec>): GroupConfig {
  let deadLetter: DeadLetterConfig | null = null
  if (g.deadLetter?.stream != null) deadLetter = { kind: 'stream', stream: g.deadLetter.stream }
  else if (g.deadLetter?.exchange != null) deadLetter = { kind: 'exchange', exchange: g.deadLetter.exchange, routingKey: g.deadLetter.routingKey }
  return {
    name,
    stream: g.stream,
    dispatch: g.dispatch,
    ackMode: g.ackMode,
    prefetch: g.prefetch,
    readAheadBytes: g.readAheadSize,
    ackTimeoutMs: g.ackTimeout,
    maxDeliveries: g.maxDeliveries,
    retryBackoff: {
      initialMs: g.retryBackoff.initial,
      maxMs: g.retryBackoff.max,
      multiplier: g.retryBackoff.multiplier,
      jitter: g.retryBackoff.jitter,
    },
    messageTtlMs: g.messageTtl,
    maxBacklog: g.maxBacklog,
    overflow: g.overflow,
    deadLetter,
    start: g.start,
    deliveryRatePerSec: g.deliveryRate,
    sessionTimeoutMs: g.sessionTimeout,
  }
}

function buildRateLimit(r: Raw<typeof rateLimitSpec>): RateLimitConfig {
  return {
    match: { ...r.match },
    eventsPerSec: r.events,
    bytesPerSec: r.bytes,
    burstEvents: r.burst ?? (r.events === null ? null : Math.ceil(r.events)),
  }
}
