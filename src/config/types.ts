// The typed, frozen configuration that core modules receive. Units live in field names
// (`intervalMs`, `segmentBytes`) while YAML keys stay as designed (`interval`, `segmentSize`).
// Enumerations are derived from the key table so a new value is added in one place.

import type { authSpec, exchangeSpec, groupSpec, rateLimitSpec, serverSpec, streamSpec, bindingSpec } from './keys.js'
import type { StartPosition } from './spec.js'

export type { StartPosition }

type Values<S> = S extends { readonly values: readonly (infer V)[] } ? V : never

export type FsyncPolicy = Values<typeof serverSpec.keys.durability.keys.fsync>
export type LogLevel = Values<typeof serverSpec.keys.log.keys.level>
export type ExchangeType = Values<typeof exchangeSpec.keys.type>
export type UnroutablePolicy = Values<typeof exchangeSpec.keys.unroutable>
export type RetentionPolicy = Values<typeof streamSpec.keys.retention.keys.policy>
export type HeadersMatch = Values<typeof bindingSpec.keys.match>
export type DispatchMode = Values<typeof groupSpec.keys.dispatch>
export type AckMode = Values<typeof groupSpec.keys.ackMode>
export type OverflowPolicy = Values<typeof groupSpec.keys.overflow>
export type ListenerName = Values<typeof rateLimitSpec.keys.match.keys.listener>
export type RateLimitPer = Values<typeof rateLimitSpec.keys.per>
export type ClientAuth = Values<typeof serverSpec.keys.amqp.keys.tls.keys.clientAuth>
export type TlsVersion = Values<typeof serverSpec.keys.amqp.keys.tls.keys.minVersion>

/** A listener entry's TLS: paths of PEM files, read at start and again on SIGHUP. */
export interface TlsConfig {
  readonly cert: string
  readonly key: string
  /** CA bundle client certificates must chain to; set whenever clientAuth is not none (validated). */
  readonly ca: string | null
  readonly clientAuth: ClientAuth
  readonly minVersion: TlsVersion
}

export interface ListenerConfig {
  readonly enabled: boolean
  readonly host: string
  readonly port: number
  /** null: plain TCP. Set: this entry serves TLS only. */
  readonly tls: TlsConfig | null
}

export interface NdjsonListenerConfig extends ListenerConfig {
  /** The listener starts only when an exchange is set. */
  readonly exchange: string | null
  /** null: the exchange's own routingKey template. */
  readonly routingKey: string | null
  /** The user the events are published as; null: guest, for loopback clients under anonymous: loopback. */
  readonly user: string | null
  /** IP addresses and CIDR blocks clients may connect from. */
  readonly allow: readonly string[]
  readonly maxLineBytes: number
  readonly idleTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  /** Read and not yet stored, per connection, before its socket is paused. */
  readonly maxPendingBytes: number
}

export interface AmqpListenerConfig extends ListenerConfig {
  readonly frameMaxBytes: number
  readonly channelMax: number
  /** 0 disables heartbeats. */
  readonly heartbeatMs: number
  readonly handshakeTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  readonly maxQueuesPerConnection: number
  readonly maxConsumersPerChannel: number
  /** Publishes read and not yet stored, per connection, before its socket is paused. */
  readonly maxPendingPublishBytes: number
  readonly maxMessageBytes: number
}

export interface SyslogListenerConfig extends ListenerConfig {
  readonly udp: boolean
  /** The listener starts only when an exchange is set. */
  readonly exchange: string | null
  readonly routingKey: string
  /** The user the events are published as; null: guest, for loopback clients under anonymous: loopback. */
  readonly user: string | null
  /** IP addresses and CIDR blocks clients may connect (TCP) or send (UDP) from. */
  readonly allow: readonly string[]
  readonly maxMessageBytes: number
  readonly idleTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  /** Read and not yet stored, per TCP connection, before its socket is paused. */
  readonly maxPendingBytes: number
  /** SO_RCVBUF asked for the UDP socket. */
  readonly udpReceiveBufferBytes: number
  readonly udpQueueSize: number
}

export interface GelfListenerConfig extends ListenerConfig {
  readonly udp: boolean
  /** The listener starts only when an exchange is set. */
  readonly exchange: string | null
  /** null: the exchange's own routingKey template. */
  readonly routingKey: string | null
  /** The user the events are published as; null: guest, for loopback clients under anonymous: loopback. */
  readonly user: string | null
  /** IP addresses and CIDR blocks clients may connect (TCP) or send (UDP) from. */
  readonly allow: readonly string[]
  /** A TCP frame, or a UDP message joined and decompressed. */
  readonly maxMessageBytes: number
  readonly maxChunks: number
  readonly chunkTimeoutMs: number
  /** Chunks held for incomplete UDP messages, across senders. */
  readonly maxReassemblyBytes: number
  readonly idleTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  /** Read and not yet stored, per TCP connection, before its socket is paused. */
  readonly maxPendingBytes: number
  /** SO_RCVBUF asked for the UDP socket. */
  readonly udpReceiveBufferBytes: number
  readonly udpQueueSize: number
}

export interface ForwardListenerConfig extends ListenerConfig {
  /** The listener starts only when an exchange is set. */
  readonly exchange: string | null
  /** null: the exchange's own routingKey template. */
  readonly routingKey: string | null
  /** The user the events are published as; null: guest, for loopback clients under anonymous: loopback. */
  readonly user: string | null
  /** IP addresses and CIDR blocks clients may connect from. */
  readonly allow: readonly string[]
  /** null: no handshake. */
  readonly sharedKey: string | null
  /** null: the machine's host name. */
  readonly selfHostname: string | null
  readonly maxFrameBytes: number
  readonly maxEntriesPerFrame: number
  readonly idleTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  /** Read and not yet stored, per connection, before its socket is paused. */
  readonly maxPendingBytes: number
}

/** A door on the HTTP listener (docs/doors/): it answers only when enabled and given an exchange. */
export interface HttpDoorConfig {
  readonly enabled: boolean
  /** null: the door's paths answer 404. */
  readonly exchange: string | null
}

export interface OtlpDoorConfig extends HttpDoorConfig {
  /** null: the exchange's own routingKey template. */
  readonly routingKey: string | null
  readonly maxRecordsPerRequest: number
  readonly http: OtlpHttpConfig
  readonly grpc: OtlpGrpcConfig
}

/**
 * OTLP/HTTP's own listener (4318): only `POST /v1/logs`, for the otlp door's exchange; its
 * timeouts and connection and request bounds are server.http's.
 */
export interface OtlpHttpConfig extends ListenerConfig {
  /** A request without credentials publishes as this user; null: a client certificate's, else guest on loopback. */
  readonly user: string | null
  /** IP addresses and CIDR blocks clients may connect from. */
  readonly allow: readonly string[]
}

/** OTLP/gRPC's own listener; it serves the otlp door's exchange. */
export interface OtlpGrpcConfig extends ListenerConfig {
  /** The user the events are published as; null: guest, for loopback clients under anonymous: loopback. */
  readonly user: string | null
  /** IP addresses and CIDR blocks clients may call from. */
  readonly allow: readonly string[]
  readonly maxMessageBytes: number
}

export interface LokiDoorConfig extends HttpDoorConfig {
  /** null: the exchange's own routingKey template. */
  readonly routingKey: string | null
  readonly maxEntriesPerRequest: number
}

export interface ElasticsearchDoorConfig extends HttpDoorConfig {
  readonly maxDocumentsPerRequest: number
}

export interface DurabilityConfig {
  readonly fsync: FsyncPolicy
  readonly intervalMs: number
  readonly maxBatchBytes: number
}

export interface LimitsConfig {
  readonly maxBodyBytes: number
  readonly maxEventBytes: number
  readonly maxConnections: number
  /** Read handles on sealed segment files, across all streams. */
  readonly maxOpenSegmentFiles: number
  readonly maxEventsPerRequest: number
  readonly maxEventDepth: number
  /** Streams of the file and of run time together (not the built-in ingest-errors). */
  readonly maxStreams: number
  /** Groups of the file and of run time together. */
  readonly maxGroups: number
  /** Members across all groups at once, every door. */
  readonly maxConsumers: number
  /** Ids held in memory across all dedup windows. */
  readonly maxDedupIds: number
}

export interface IngestErrorsConfig {
  /** Records waiting to be appended, at most. */
  readonly maxQueued: number
  /** Bytes of an unparseable frame kept in its record. */
  readonly maxRawBytes: number
  /** retention.maxBytes of the built-in stream (not of one declared in `streams`). */
  readonly maxBytes: number
}

export interface AlarmsConfig {
  /** Fraction (0..1) of the machine's memory. */
  readonly memoryHighWatermark: number
  /** null: use the fraction. */
  readonly memoryLimitBytes: number | null
  readonly diskFreeLimitBytes: number
}

export interface HttpListenerConfig extends ListenerConfig {
  readonly requestTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly maxInFlightRequests: number
  readonly maxInFlightRequestsPerAddress: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  readonly bodyTimeoutMs: number
  readonly maxDrainBytes: number
  /** Largest `max` of a group fetch. */
  readonly maxFetchEvents: number
  /** Largest `waitMs` of a group fetch. */
  readonly maxFetchWaitMs: number
  /** Most tags in one ack, nack or extend. */
  readonly maxTagsPerRequest: number
  /** Largest `limit` of a stream read. */
  readonly maxReadEvents: number
  /** Largest `waitMs` of a stream read. */
  readonly maxReadWaitMs: number
  /** /metrics without credentials; otherwise it needs the monitoring or administrator tag. */
  readonly openMetrics: boolean
  /** The management UI at `/` (browsers) and `/ui/`. */
  readonly ui: boolean
  /** Server-sent event feeds (live tails) open at once. */
  readonly maxLiveFeeds: number
  /** Events one stream search or dead-letter summary reads at most. */
  readonly maxScanEvents: number
  /** How long the per-second rate samples are kept. */
  readonly rateHistoryMs: number
  /** Most offsets one redrive or dead-letter count may name. */
  readonly maxRedriveOffsets: number
  /** Groups whose lag history is kept. */
  readonly maxLagHistoryGroups: number
}

export interface ServerConfig {
  readonly dataDir: string
  /** The first entry of `listeners.http` (the only one unless the file lists several); so for the others. */
  readonly http: HttpListenerConfig
  readonly ndjson: NdjsonListenerConfig
  readonly amqp: AmqpListenerConfig
  readonly syslog: SyslogListenerConfig
  readonly gelf: GelfListenerConfig
  readonly forward: ForwardListenerConfig
  /** Every entry of each listener key, in file order: one mapping is one entry, a list is one entry an item. */
  readonly listeners: {
    readonly http: readonly HttpListenerConfig[]
    readonly ndjson: readonly NdjsonListenerConfig[]
    readonly amqp: readonly AmqpListenerConfig[]
    readonly syslog: readonly SyslogListenerConfig[]
    readonly gelf: readonly GelfListenerConfig[]
    readonly forward: readonly ForwardListenerConfig[]
  }
  /** The doors on the HTTP listener for other ecosystems' agents. */
  readonly otlp: OtlpDoorConfig
  readonly loki: LokiDoorConfig
  readonly elasticsearch: ElasticsearchDoorConfig
  readonly durability: DurabilityConfig
  readonly limits: LimitsConfig
  readonly ingestErrors: IngestErrorsConfig
  readonly alarms: AlarmsConfig
  readonly log: { readonly level: LogLevel }
  /** server.shutdownTimeout: the longest a stop may take. */
  readonly shutdownTimeoutMs: number
}

export type UserTag = Values<typeof authSpec.keys.users.of.keys.tags>
export type AnonymousPolicy = Values<typeof authSpec.keys.anonymous>

/** Regular expressions over names, as written (src/auth anchors them); null matches nothing. */
export interface PermissionsConfig {
  readonly configure: string | null
  readonly write: string | null
  readonly read: string | null
}

export interface UserConfig {
  readonly username: string
  /** Exactly one of password and passwordHash is set (validated). */
  readonly password: string | null
  /** `scrypt$N$r$p$salt$hash`, salt and hash in base64url. */
  readonly passwordHash: string | null
  readonly tags: readonly UserTag[]
  readonly permissions: PermissionsConfig
  readonly loopbackOnly: boolean
}

export interface ApiKeyConfig {
  readonly name: string
  /** Exactly one of key and keyHash is set (validated). */
  readonly key: string | null
  /** `sha256:<hex>`. */
  readonly keyHash: string | null
  /** The username the key acts as; it exists (validated). */
  readonly user: string
}

export interface AuthConfig {
  readonly anonymous: AnonymousPolicy
  readonly users: readonly UserConfig[]
  readonly apiKeys: readonly ApiKeyConfig[]
  /** 0: no slowdown of logins after failures. */
  readonly maxFailureDelayMs: number
  readonly maxPendingLoginsPerAddress: number
  readonly maxTrackedAddresses: number
}

export interface ExchangeConfig {
  readonly name: string
  readonly type: ExchangeType
  /** Template such as `{service}.{level}`; null: events need an explicit routing key. */
  readonly routingKey: string | null
  readonly alternate: string | null
  readonly unroutable: UnroutablePolicy
  /** Body field holding the event id; null: no dedup by id. */
  readonly dedup: string | null
  readonly dedupWindowMs: number
}

export interface RetentionConfig {
  /** null: no age limit. */
  readonly maxAgeMs: number | null
  /** null: no size limit. */
  readonly maxBytes: number | null
  readonly policy: RetentionPolicy
}

export interface StreamConfig {
  readonly name: string
  readonly retention: RetentionConfig
  readonly segmentBytes: number
  readonly segmentAgeMs: number
  /** Effective policy: the stream's override, else `server.durability.fsync`. */
  readonly fsync: FsyncPolicy
  /** Cluster mode: copies of the stream; null: `cluster.replication.factor`. */
  readonly replicas: number | null
}

export type BindingDestination = { readonly kind: 'stream'; readonly name: string } | { readonly kind: 'exchange'; readonly name: string }

export interface BindingConfig {
  readonly exchange: string
  readonly destination: BindingDestination
  readonly key: string
  readonly match: HeadersMatch
  readonly headers: Readonly<Record<string, string>>
}

export type DeadLetterConfig =
  | { readonly kind: 'stream'; readonly stream: string }
  | { readonly kind: 'exchange'; readonly exchange: string; /** null: keep the event's own key. */ readonly routingKey: string | null }

export interface RetryBackoffConfig {
  readonly initialMs: number
  readonly maxMs: number
  readonly multiplier: number
  /** Fraction (0..1) of the delay added or removed at random. */
  readonly jitter: number
}

export interface GroupConfig {
  readonly name: string
  readonly stream: string
  readonly dispatch: DispatchMode
  readonly ackMode: AckMode
  readonly prefetch: number
  /** Bytes one read of the stream takes for the next deliveries (at least one batch). */
  readonly readAheadBytes: number
  readonly ackTimeoutMs: number
  /** 0: unlimited. */
  readonly maxDeliveries: number
  readonly retryBackoff: RetryBackoffConfig
  readonly messageTtlMs: number | null
  readonly maxBacklog: number | null
  /** Stored bytes (storedRecordBytes) of the unsettled events. */
  readonly maxBacklogBytes: number | null
  readonly overflow: OverflowPolicy
  /** null: poison events are parked in the group, never dropped. */
  readonly deadLetter: DeadLetterConfig | null
  readonly start: StartPosition
  readonly deliveryRatePerSec: number | null
  readonly sessionTimeoutMs: number
}

export interface RateLimitMatch {
  readonly listener: ListenerName | null
  readonly remote: string | null
  readonly apiKey: string | null
  /** A username in auth.users (validated). */
  readonly user: string | null
  readonly exchange: string | null
}

export interface RateLimitConfig {
  /** null fields match everything. */
  readonly match: RateLimitMatch
  readonly eventsPerSec: number | null
  readonly bytesPerSec: number | null
  /** Events allowed at once above the rate: as written, else one second of `eventsPerSec`. */
  readonly burstEvents: number | null
  /** null: one pair of buckets for everyone matched; else a pair per distinct user, API key or address. */
  readonly per: RateLimitPer | null
  /** With `per`: sources holding buckets at most, least recently used forgotten first. */
  readonly maxSources: number
}

/** Cluster mode (docs/cluster.md). */
export interface ClusterConfig {
  readonly nodeId: string
  readonly etcd: {
    readonly endpoints: readonly string[]
    /** Starts with `/`, no trailing `/` (validated). */
    readonly prefix: string
    readonly leaseTtlMs: number
    readonly requestTimeoutMs: number
  }
  /** The controller places nothing while fewer nodes than this hold a lease. */
  readonly minNodes: number
  readonly advertise: { readonly host: string; readonly internalPort: number | null }
  readonly secret: string
  readonly replication: {
    readonly host: string
    readonly port: number
    readonly forwardTimeoutMs: number
    readonly maxBodyBytes: number
    readonly moveTimeoutMs: number
    /** Copies of each stream, the leader included. */
    readonly factor: number
    /** Replicas that must hold an event before its publish is confirmed. */
    readonly minInSync: number
    readonly replicaLagMaxMs: number
    /** Elect a leader from outside the in-sync set when none of it lives. */
    readonly uncleanElection: boolean
    /** Mutual TLS on the internal port: PEM file paths. */
    readonly tls: { readonly cert: string; readonly key: string; readonly ca: string } | null
  }
}

export interface Config {
  readonly server: ServerConfig
  readonly auth: AuthConfig
  /** By name, with a null prototype: a lookup of `constructor` finds nothing. */
  readonly exchanges: Readonly<Record<string, ExchangeConfig>>
  readonly streams: Readonly<Record<string, StreamConfig>>
  readonly bindings: readonly BindingConfig[]
  readonly groups: Readonly<Record<string, GroupConfig>>
  readonly rateLimits: readonly RateLimitConfig[]
  /** null: a single node. */
  readonly cluster: ClusterConfig | null
}
