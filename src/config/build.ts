// Shapes the validated values (keyed as in YAML) into the public Config (units in field names,
// references as discriminated unions). Runs only when validation found no problem, so every
// value here is present and well-typed.

import type { ConfigSpec, authSpec, bindingSpec, clusterSpec, groupSpec, rateLimitSpec, serverSpec } from './keys.js'
import { exchangeSpec, streamSpec } from './keys.js'
import type { ObjectSpec, Raw } from './spec.js'
import type {
  AmqpListenerConfig,
  AuthConfig,
  BindingConfig,
  ClusterConfig,
  Config,
  DeadLetterConfig,
  ExchangeConfig,
  ExchangeType,
  ForwardListenerConfig,
  FsyncPolicy,
  GelfListenerConfig,
  GroupConfig,
  HttpListenerConfig,
  NdjsonListenerConfig,
  RateLimitConfig,
  ServerConfig,
  StreamConfig,
  SyslogListenerConfig,
  UserConfig,
} from './types.js'
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
    cluster: raw.cluster === null ? null : buildCluster(raw.cluster),
  }
}

function buildCluster(c: NonNullable<Raw<typeof clusterSpec>>): ClusterConfig {
  return {
    nodeId: c.nodeId,
    etcd: { endpoints: [...c.etcd.endpoints], prefix: c.etcd.prefix, leaseTtlMs: c.etcd.leaseTtl, requestTimeoutMs: c.etcd.requestTimeout },
    minNodes: c.minNodes,
    advertise: { host: c.advertise.host, internalPort: c.advertise.internalPort },
    secret: c.secret,
    replication: { host: c.replication.host, port: c.replication.port, forwardTimeoutMs: c.replication.forwardTimeout, maxBodyBytes: c.replication.maxBodySize, moveTimeoutMs: c.replication.moveTimeout, factor: c.replication.factor, minInSync: c.replication.minInSync, replicaLagMaxMs: c.replication.replicaLagMax, uncleanElection: c.replication.uncleanElection, tls: c.replication.tls === null ? null : { cert: c.replication.tls.cert, key: c.replication.tls.key, ca: c.replication.tls.ca } },
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
    if (child.type === 'object') out[k] = child.optional === true ? null : child.orList === true ? [defaultsOf(child)] : defaultsOf(child)
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

// A listener key holds at least one entry (the validator refuses an empty list).
function entries<R, T>(raw: readonly [R, ...R[]], build: (entry: R) => T): readonly [T, ...T[]] {
  return [build(raw[0]), ...raw.slice(1).map(build)]
}

function buildServer(s: Raw<typeof serverSpec>): ServerConfig {
  const listeners = { http: entries(s.http, buildHttpListener), ndjson: entries(s.ndjson, buildNdjsonListener), amqp: entries(s.amqp, buildAmqpListener), syslog: entries(s.syslog, buildSyslogListener), gelf: entries(s.gelf, buildGelfListener), forward: entries(s.forward, buildForwardListener) }
  return {
    dataDir: s.dataDir,
    http: listeners.http[0],
    ndjson: listeners.ndjson[0],
    amqp: listeners.amqp[0],
    syslog: listeners.syslog[0],
    gelf: listeners.gelf[0],
    forward: listeners.forward[0],
    listeners,
    otlp: {
      enabled: s.otlp.enabled,
      exchange: s.otlp.exchange,
      routingKey: s.otlp.routingKey,
      maxRecordsPerRequest: s.otlp.maxRecordsPerRequest,
      http: { enabled: s.otlp.http.enabled, host: s.otlp.http.host, port: s.otlp.http.port, tls: s.otlp.http.tls === null ? null : { ...s.otlp.http.tls }, user: s.otlp.http.user, allow: [...s.otlp.http.allow] },
      grpc: { enabled: s.otlp.grpc.enabled, host: s.otlp.grpc.host, port: s.otlp.grpc.port, tls: s.otlp.grpc.tls === null ? null : { ...s.otlp.grpc.tls }, user: s.otlp.grpc.user, allow: [...s.otlp.grpc.allow], maxMessageBytes: s.otlp.grpc.maxMessageSize },
    },
    loki: { ...s.loki },
    elasticsearch: { ...s.elasticsearch },
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
    shutdownTimeoutMs: s.shutdownTimeout,
  }
}

function buildHttpListener(e: Raw<typeof serverSpec.keys.http>[number]): HttpListenerConfig {
  return {
    enabled: e.enabled,
    host: e.host,
    port: e.port,
    tls: e.tls === null ? null : { ...e.tls },
    requestTimeoutMs: e.requestTimeout,
    headersTimeoutMs: e.headersTimeout,
    keepAliveTimeoutMs: e.keepAliveTimeout,
    maxInFlightRequests: e.maxInFlightRequests,
    maxInFlightRequestsPerAddress: e.maxInFlightRequestsPerAddress,
    maxConnections: e.maxConnections,
    maxConnectionsPerAddress: e.maxConnectionsPerAddress,
    bodyTimeoutMs: e.bodyTimeout,
    maxDrainBytes: e.maxDrainSize,
    maxFetchEvents: e.maxFetchEvents,
    maxFetchWaitMs: e.maxFetchWait,
    maxTagsPerRequest: e.maxTagsPerRequest,
    maxReadEvents: e.maxReadEvents,
    maxReadWaitMs: e.maxReadWait,
    openMetrics: e.openMetrics,
    ui: e.ui,
    maxLiveFeeds: e.maxLiveFeeds,
    maxScanEvents: e.maxScanEvents,
    rateHistoryMs: e.rateHistory,
    maxRedriveOffsets: e.maxRedriveOffsets,
    maxLagHistoryGroups: e.maxLagHistoryGroups,
  }
}

function buildNdjsonListener(e: Raw<typeof serverSpec.keys.ndjson>[number]): NdjsonListenerConfig {
  return {
    enabled: e.enabled,
    host: e.host,
    port: e.port,
    tls: e.tls === null ? null : { ...e.tls },
    exchange: e.exchange,
    routingKey: e.routingKey,
    user: e.user,
    allow: [...e.allow],
    maxLineBytes: e.maxLineSize,
    idleTimeoutMs: e.idleTimeout,
    maxConnections: e.maxConnections,
    maxConnectionsPerAddress: e.maxConnectionsPerAddress,
    maxPendingBytes: e.maxPendingSize,
  }
}

function buildAmqpListener(e: Raw<typeof serverSpec.keys.amqp>[number]): AmqpListenerConfig {
  return {
    enabled: e.enabled,
    host: e.host,
    port: e.port,
    tls: e.tls === null ? null : { ...e.tls },
    frameMaxBytes: e.frameMax,
    channelMax: e.channelMax,
    heartbeatMs: e.heartbeat,
    handshakeTimeoutMs: e.handshakeTimeout,
    maxConnections: e.maxConnections,
    maxConnectionsPerAddress: e.maxConnectionsPerAddress,
    maxQueuesPerConnection: e.maxQueuesPerConnection,
    maxConsumersPerChannel: e.maxConsumersPerChannel,
    maxPendingPublishBytes: e.maxPendingPublishSize,
    maxMessageBytes: e.maxMessageSize,
  }
}

function buildSyslogListener(e: Raw<typeof serverSpec.keys.syslog>[number]): SyslogListenerConfig {
  return {
    enabled: e.enabled,
    host: e.host,
    port: e.port,
    tls: e.tls === null ? null : { ...e.tls },
    udp: e.udp,
    exchange: e.exchange,
    routingKey: e.routingKey,
    user: e.user,
    allow: [...e.allow],
    maxMessageBytes: e.maxMessageSize,
    idleTimeoutMs: e.idleTimeout,
    maxConnections: e.maxConnections,
    maxConnectionsPerAddress: e.maxConnectionsPerAddress,
    maxPendingBytes: e.maxPendingSize,
    udpReceiveBufferBytes: e.udpReceiveBufferSize,
    udpQueueSize: e.udpQueueSize,
  }
}

function buildGelfListener(e: Raw<typeof serverSpec.keys.gelf>[number]): GelfListenerConfig {
  return {
    enabled: e.enabled,
    host: e.host,
    port: e.port,
    tls: e.tls === null ? null : { ...e.tls },
    udp: e.udp,
    exchange: e.exchange,
    routingKey: e.routingKey,
    user: e.user,
    allow: [...e.allow],
    maxMessageBytes: e.maxMessageSize,
    maxChunks: e.maxChunks,
    chunkTimeoutMs: e.chunkTimeout,
    maxReassemblyBytes: e.maxReassemblySize,
    idleTimeoutMs: e.idleTimeout,
    maxConnections: e.maxConnections,
    maxConnectionsPerAddress: e.maxConnectionsPerAddress,
    maxPendingBytes: e.maxPendingSize,
    udpReceiveBufferBytes: e.udpReceiveBufferSize,
    udpQueueSize: e.udpQueueSize,
  }
}

function buildForwardListener(e: Raw<typeof serverSpec.keys.forward>[number]): ForwardListenerConfig {
  return {
    enabled: e.enabled,
    host: e.host,
    port: e.port,
    tls: e.tls === null ? null : { ...e.tls },
    exchange: e.exchange,
    routingKey: e.routingKey,
    user: e.user,
    allow: [...e.allow],
    sharedKey: e.sharedKey,
    selfHostname: e.selfHostname,
    maxFrameBytes: e.maxFrameSize,
    maxEntriesPerFrame: e.maxEntriesPerFrame,
    idleTimeoutMs: e.idleTimeout,
    maxConnections: e.maxConnections,
    maxConnectionsPerAddress: e.maxConnectionsPerAddress,
    maxPendingBytes: e.maxPendingSize,
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
    replicas: s.replicas,
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
    maxBacklogBytes: g.maxBacklogBytes,
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
    per: r.per,
    maxSources: r.maxSources,
  }
}
