// Every limit Sluice enforces, by its key in the table (keys.ts): what a client meets when it
// hits one, and the metric that counts the hits. docs/limits.md is rendered from this and the key
// table, and a test fails when a limit-like key is missing here or an entry names no key.

import { configSpec } from './keys.js'
import type { KeySpec, LeafSpec } from './spec.js'
import { defaultText, typeText } from './docs.js'

export interface LimitDoc {
  /** What the client gets: the HTTP status and code, the AMQP reply, or what a stream door does. */
  readonly error: string
  /** The `limit` label of sluice_limit_hits_total, or another metric that counts it. */
  readonly metric: string
}

const hits = (label: string): string => `\`sluice_limit_hits_total{limit="${label}"}\``

export const limitTable: Readonly<Record<string, LimitDoc>> = {
  'server.http.requestTimeout': { error: 'HTTP 408 `request_timeout`', metric: hits('http.requestTimeout') },
  'server.http.headersTimeout': { error: 'HTTP 408 `request_timeout`; the connection is closed', metric: hits('http.headersTimeout') },
  'server.http.keepAliveTimeout': { error: 'an idle keep-alive connection is closed', metric: '`sluice_listener_connections`' },
  'server.http.maxInFlightRequests': { error: 'HTTP 503 `overloaded` with Retry-After; /readyz answers 503 while every place is taken. A long poll (group fetch, stream read with `waitMs`) holds its place while it waits, so this bounds waiting long polls too', metric: hits('http.maxInFlightRequests') },
  'server.http.maxInFlightRequestsPerAddress': { error: 'HTTP 429 `too_many_requests` with Retry-After', metric: hits('http.maxInFlightRequestsPerAddress') },
  'server.http.maxConnections': { error: 'HTTP 503 `too_many_connections` at accept, then the connection is closed', metric: hits('http.maxConnections') },
  'server.http.maxConnectionsPerAddress': { error: 'HTTP 503 `too_many_connections` at accept, then the connection is closed', metric: hits('http.maxConnectionsPerAddress') },
  'server.http.bodyTimeout': { error: 'HTTP 408 `request_timeout`; the connection is closed', metric: hits('http.bodyTimeout') },
  'server.http.maxDrainSize': { error: 'the connection is closed after the early answer instead of reading the rest of the body', metric: hits('http.maxDrainSize') },
  'server.http.maxFetchEvents': { error: 'HTTP 400 `bad_request` naming the key', metric: hits('http.maxFetchEvents') },
  'server.http.maxFetchWait': { error: 'HTTP 400 `bad_request` naming the key', metric: hits('http.maxFetchWait') },
  'server.http.maxTagsPerRequest': { error: 'HTTP 400 `bad_request` naming the key', metric: hits('http.maxTagsPerRequest') },
  'server.http.maxReadEvents': { error: 'HTTP 400 `bad_request` naming the key', metric: hits('http.maxReadEvents') },
  'server.http.maxReadWait': { error: 'HTTP 400 `bad_request` naming the key', metric: hits('http.maxReadWait') },
  'server.http.maxLiveFeeds': { error: 'HTTP 503 `too_many_connections` with Retry-After', metric: hits('http.maxLiveFeeds') },
  'server.http.maxLagHistoryGroups': { error: 'none: a group past it has no lag chart; `GET /v1/groups/{group}/lag` answers `tracked: false` with the lag now', metric: hits('http.maxLagHistoryGroups') },
  'server.http.maxRedriveOffsets': { error: 'HTTP 400 `bad_request` naming the key', metric: hits('http.maxRedriveOffsets') },
  'server.http.maxScanEvents': { error: 'none: the search or summary answers what it read, `complete: false` and the `nextOffset` to go on from', metric: hits('http.maxScanEvents') },
  'server.ndjson.maxLineSize': { error: 'the line goes to `ingest-errors`; the connection goes on', metric: hits('ndjson.maxLineSize') },
  'server.ndjson.idleTimeout': { error: 'the connection is closed', metric: hits('ndjson.idleTimeout') },
  'server.ndjson.maxConnections': { error: 'the connection is refused at accept', metric: hits('ndjson.maxConnections') },
  'server.ndjson.maxConnectionsPerAddress': { error: 'the connection is closed at accept', metric: hits('ndjson.maxConnectionsPerAddress') },
  'server.ndjson.maxPendingSize': { error: 'none: the socket is paused until a publish completes; the sender is slowed by TCP', metric: hits('ndjson.maxPendingSize') },
  'server.amqp.frameMax': { error: 'a larger frame closes the connection with 501 FRAME_ERROR', metric: '`sluice_listener_parse_errors_total`' },
  'server.amqp.channelMax': { error: 'channel.open above it closes the connection with 530 NOT_ALLOWED', metric: hits('amqp.channelMax') },
  'server.amqp.handshakeTimeout': { error: 'the socket is closed', metric: hits('amqp.handshakeTimeout') },
  'server.amqp.maxConnections': { error: 'the connection is refused', metric: hits('amqp.maxConnections') },
  'server.amqp.maxConnectionsPerAddress': { error: 'the connection is refused', metric: hits('amqp.maxConnectionsPerAddress') },
  'server.amqp.maxQueuesPerConnection': { error: 'queue.declare closes the channel with 406 PRECONDITION_FAILED naming the limit', metric: hits('amqp.maxQueuesPerConnection') },
  'server.amqp.maxConsumersPerChannel': { error: "basic.consume closes the connection with 530 NOT_ALLOWED `reached maximum (N) of consumers per channel`, as RabbitMQ's consumer_max_per_channel", metric: hits('amqp.maxConsumersPerChannel') },
  'server.amqp.maxMessageSize': { error: 'a larger content header closes the connection with 501 FRAME_ERROR; under it, a message over `server.limits.maxEventSize` is nacked on its own', metric: '`sluice_listener_parse_errors_total`' },
  'server.amqp.maxPendingPublishSize': { error: 'none: the socket is paused until the publishes are stored; the sender is slowed by TCP', metric: hits('amqp.maxPendingPublishSize') },
  'server.syslog.maxMessageSize': { error: 'the message goes to `ingest-errors`; framing resyncs at the next message', metric: hits('syslog.maxMessageSize') },
  'server.syslog.idleTimeout': { error: 'the connection is closed', metric: hits('syslog.idleTimeout') },
  'server.syslog.maxConnections': { error: 'the connection is refused at accept', metric: hits('syslog.maxConnections') },
  'server.syslog.maxConnectionsPerAddress': { error: 'the connection is closed at accept', metric: hits('syslog.maxConnectionsPerAddress') },
  'server.syslog.maxPendingSize': { error: 'none: the socket is paused until a publish completes; the sender is slowed by TCP', metric: hits('syslog.maxPendingSize') },
  'server.syslog.udpReceiveBufferSize': { error: 'datagrams arriving while the kernel buffer is full are dropped by the kernel', metric: 'the kernel counts them (`RcvbufErrors` in /proc/net/snmp); Sluice never sees them' },
  'server.syslog.udpQueueSize': { error: 'datagrams past it are dropped', metric: hits('syslog.udpQueueSize') },
  'server.gelf.maxMessageSize': { error: 'the frame or message goes to `ingest-errors`; a TCP connection goes on after the next NUL', metric: hits('gelf.maxMessageSize') },
  'server.gelf.maxChunks': { error: 'the chunk goes to `ingest-errors`; the message it belongs to is never completed', metric: hits('gelf.maxChunks') },
  'server.gelf.chunkTimeout': { error: 'the incomplete message is dropped', metric: `${hits('gelf.chunkTimeout')}; \`sluice_ingest_dropped_total{listener="gelf-udp"}\`` },
  'server.gelf.maxReassemblySize': { error: 'the chunk is dropped with the chunks of its message held so far', metric: `${hits('gelf.maxReassemblySize')}; \`sluice_ingest_dropped_total{listener="gelf-udp"}\`` },
  'server.gelf.idleTimeout': { error: 'the connection is closed', metric: hits('gelf.idleTimeout') },
  'server.gelf.maxConnections': { error: 'the connection is refused at accept', metric: hits('gelf.maxConnections') },
  'server.gelf.maxConnectionsPerAddress': { error: 'the connection is closed at accept', metric: hits('gelf.maxConnectionsPerAddress') },
  'server.gelf.maxPendingSize': { error: 'none: the socket is paused until a publish completes; the sender is slowed by TCP', metric: hits('gelf.maxPendingSize') },
  'server.gelf.udpReceiveBufferSize': { error: 'datagrams arriving while the kernel buffer is full are dropped by the kernel', metric: 'the kernel counts them (`RcvbufErrors` in /proc/net/snmp); Sluice never sees them' },
  'server.gelf.udpQueueSize': { error: 'messages past it are dropped', metric: `${hits('gelf.udpQueueSize')}; \`sluice_ingest_dropped_total{listener="gelf-udp"}\`` },
  'server.forward.maxFrameSize': { error: 'the message (its first bytes) goes to `ingest-errors` and the connection is closed; a client resends what was not acked', metric: hits('forward.maxFrameSize') },
  'server.forward.maxEntriesPerFrame': { error: 'the message goes to `ingest-errors` whole and is acked', metric: hits('forward.maxEntriesPerFrame') },
  'server.forward.idleTimeout': { error: 'the connection is closed', metric: hits('forward.idleTimeout') },
  'server.forward.maxConnections': { error: 'the connection is refused at accept', metric: hits('forward.maxConnections') },
  'server.forward.maxConnectionsPerAddress': { error: 'the connection is closed at accept', metric: hits('forward.maxConnectionsPerAddress') },
  'server.forward.maxPendingSize': { error: 'none: the socket is paused until a publish completes; the sender is slowed by TCP', metric: hits('forward.maxPendingSize') },
  'server.otlp.maxRecordsPerRequest': { error: 'HTTP 413 with a google.rpc.Status body (OTLP clients do not retry it); nothing was stored', metric: hits('otlp.maxRecordsPerRequest') },
  'server.otlp.grpc.maxMessageSize': { error: 'gRPC status RESOURCE_EXHAUSTED from grpc-js, before the request reaches Sluice, without RetryInfo (so OTLP exporters do not retry it)', metric: 'not counted: grpc-js refuses it before Sluice sees it' },
  'server.loki.maxEntriesPerRequest': { error: 'HTTP 413 `too_many_events`; nothing was stored', metric: hits('loki.maxEntriesPerRequest') },
  'server.elasticsearch.maxDocumentsPerRequest': { error: 'HTTP 413 `too_many_events` in Elasticsearch\'s error shape; nothing was stored', metric: hits('elasticsearch.maxDocumentsPerRequest') },
  'server.durability.maxBatchBytes': { error: 'none: a group commit starts early', metric: '`sluice_log_append_seconds`' },
  'server.shutdownTimeout': { error: 'the stop gives up: the part still closing is logged (`stop timed out`) and `sluice serve` exits with code 1; confirmed events are already durable', metric: hits('shutdownTimeout') },
  'server.limits.maxBodySize': { error: 'HTTP 413 `body_too_large`', metric: hits('maxBodySize') },
  'server.limits.maxEventSize': { error: 'HTTP 413 `event_too_large` (whole request); stream doors: the event goes to `ingest-errors`; AMQP: that message is nacked, its neighbours are confirmed', metric: hits('maxEventSize') },
  'server.limits.maxConnections': { error: 'the connection is closed at accept (HTTP: 503 `too_many_connections` first); one count across HTTP, NDJSON, syslog and AMQP', metric: hits('limits.maxConnections') },
  'server.limits.maxEventsPerRequest': { error: 'HTTP 413 `too_many_events`', metric: hits('limits.maxEventsPerRequest') },
  'server.limits.maxEventDepth': { error: 'HTTP 400 `bad_event` naming the line or event; stream doors: the event goes to `ingest-errors`; AMQP: basic.nack', metric: hits('limits.maxEventDepth') },
  'server.limits.maxStreams': { error: 'a file with more fails validation; AMQP queue.declare closes the channel with 406 PRECONDITION_FAILED naming the limit', metric: `${hits('limits.maxStreams')}; the count: \`sluice_streams\`` },
  'server.limits.maxGroups': { error: 'a file with more fails validation; HTTP `PUT /v1/groups/{g}` 409 `too_many_groups`; AMQP queue.declare (or basic.consume on a stream queue) closes the channel with 406 PRECONDITION_FAILED naming the limit', metric: `${hits('limits.maxGroups')}; the count: \`sluice_groups\`` },
  'server.limits.maxConsumers': { error: 'HTTP fetch by a new consumer: 503 `too_many_consumers` with Retry-After; AMQP basic.consume or basic.get: the connection is closed with 530 NOT_ALLOWED naming the limit', metric: `${hits('limits.maxConsumers')}; the count: \`sluice_consumers\`` },
  'server.limits.maxDedupIds': { error: 'none: the oldest ids are forgotten early, so a later copy of their events would be stored', metric: hits('limits.maxDedupIds') },
  'server.limits.maxOpenSegmentFiles': { error: 'none: readers wait for a handle', metric: hits('maxOpenSegmentFiles') },
  'server.ingestErrors.maxQueued': { error: 'the record is dropped; the door goes on', metric: hits('ingestErrors.maxQueued') },
  'server.ingestErrors.maxRawSize': { error: 'the record keeps the first bytes and says `truncated: true`', metric: hits('ingestErrors.maxRawSize') },
  'server.ingestErrors.maxBytes': { error: 'none: the oldest segments of ingest-errors are deleted', metric: '`sluice_stream_bytes{stream="ingest-errors"}`' },
  'server.alarms.memoryLimit': { error: 'publishers blocked: HTTP 503 `alarm`, TCP paused, AMQP connection.blocked', metric: '`sluice_alarm_active{alarm="memory"}`' },
  'server.alarms.diskFreeLimit': { error: 'publishers blocked: HTTP 503 `alarm` or `disk_space`, TCP paused, AMQP connection.blocked', metric: '`sluice_alarm_active{alarm="disk"}`' },
  'auth.maxFailureDelay': { error: 'none: a login from an address with recent failures waits its turn (HTTP, AMQP), then is checked', metric: '`sluice_auth_failures_total{door,reason}`' },
  'auth.maxPendingLoginsPerAddress': { error: 'the login is refused unchecked: HTTP 401 `unauthenticated` with Retry-After; AMQP 403 ACCESS_REFUSED', metric: `${hits('auth.maxPendingLoginsPerAddress')}; \`sluice_auth_failures_total{reason="throttled"}\`` },
  'auth.maxTrackedAddresses': { error: 'none: the least recently seen address is forgotten (its slowdown with it)', metric: hits('auth.maxTrackedAddresses') },
  'streams.<name>.retention.maxAge': { error: 'none: older segments are deleted', metric: '`sluice_stream_bytes`' },
  'streams.<name>.retention.maxBytes': { error: 'none: the oldest segments are deleted', metric: '`sluice_stream_bytes`' },
  'streams.<name>.segmentSize': { error: 'a larger single event is refused with 413 `log_record_too_large`', metric: hits('segmentSize') },
  'groups.<name>.readAheadSize': { error: 'none: the group reads again for the rest', metric: hits('groups.readAheadSize') },
  'groups.<name>.ackTimeout': { error: 'the delivery is redelivered', metric: '`sluice_group_ack_timeouts_total`' },
  'groups.<name>.maxDeliveries': { error: 'dead-lettered with reason `delivery_limit`', metric: '`sluice_group_dead_lettered_total{reason="delivery_limit"}`' },
  'groups.<name>.retryBackoff.max': { error: 'none: the longest retry delay', metric: '`sluice_group_redelivered_total`' },
  'groups.<name>.maxBacklog': { error: '`overflow: dead-letter`: reason `maxlen`; `reject-publish`: HTTP 429 `backlog_full`, AMQP basic.nack', metric: hits('maxBacklog') },
  'groups.<name>.maxBacklogBytes': { error: '`overflow: dead-letter`: reason `maxlen`; `reject-publish`: HTTP 429 `backlog_full`, AMQP basic.nack', metric: `${hits('maxBacklogBytes')}; dead-lettered: \`sluice_group_dead_lettered_total{reason="maxlen"}\`` },
  'groups.<name>.sessionTimeout': { error: 'the member is removed; its deliveries go to others', metric: '`sluice_group_members`' },
  'cluster.etcd.requestTimeout': { error: 'the etcd request fails; a node that cannot renew its lease in time fences itself (below)', metric: '`sluice_cluster_etcd_requests_total{outcome="error"}`' },
  'cluster.etcd.leaseTtl': { error: 'a node that could not renew its lease for this long fences itself: publishers blocked (HTTP 503 `alarm` naming `cluster`, TCP paused, AMQP connection.blocked) until it rejoins', metric: '`sluice_cluster_fences_total`; `sluice_alarm{alarm="cluster"}`; `sluice_cluster_lease_keepalive_age_seconds`' },
  'cluster.replication.forwardTimeout': { error: 'the publish answers 503 `stream_unavailable` (AMQP: basic.nack); a retry with the same ids is deduplicated at the home node', metric: '`sluice_cluster_forwards_total{outcome="error"}`' },
  'cluster.replication.moveTimeout': { error: 'the move is called off with 503 `move_failed`; the stream stays on its node and its held publishes go on there', metric: '`sluice_cluster_moves_total{outcome="failed"}`' },
  'cluster.replication.replicaLagMax': { error: 'the follower leaves the in-sync set; below `minInSync` the stream refuses publishes with 503 `not_enough_replicas` (AMQP: basic.nack)', metric: '`sluice_cluster_isr_changes_total{change="shrink"}`; `sluice_cluster_under_replicated_streams`' },
  'cluster.replication.maxBodySize': { error: 'the forwarded batch is refused with 413; the publish answers 503 `stream_unavailable`', metric: '`sluice_cluster_forwards_total{outcome="error"}`' },
  'rateLimits[].maxSources': { error: 'none: the least recently used source is forgotten and starts again with full buckets', metric: `${hits('rateLimits.maxSources')}; by rule: \`sluice_rate_limit_evictions_total{rule}\`, held: \`sluice_rate_limit_sources{rule}\`` },
}

/** Keys that look like limits; each must be in the table (checked by test/config/limits.test.ts). */
export function limitLikeKeys(): string[] {
  const out: string[] = []
  const walk = (spec: KeySpec, path: string): void => {
    switch (spec.type) {
      case 'object':
        for (const [k, child] of Object.entries(spec.keys)) walk(child, path === '' ? k : `${path}.${k}`)
        return
      case 'named':
        return walk(spec.of, `${path}.<name>`)
      case 'list':
        return walk(spec.of, `${path}[]`)
      default: {
        const key = path.slice(path.lastIndexOf('.') + 1)
        if (/^max[A-Z]|Timeout$|Limit$|Size$|^channelMax$|^frameMax$/.test(key)) out.push(path)
      }
    }
  }
  walk(configSpec, '')
  return out
}

export function leafAt(path: string): LeafSpec | undefined {
  let spec: KeySpec = configSpec
  for (const part of path.split('.')) {
    if (part === '<name>' && spec.type === 'named') {
      spec = spec.of
      continue
    }
    if (spec.type !== 'object') return undefined
    // `rateLimits[]`: the items of a list.
    const item = part.endsWith('[]')
    const next: KeySpec | undefined = spec.keys[item ? part.slice(0, -2) : part]
    if (next === undefined) return undefined
    if (item && next.type !== 'list') return undefined
    spec = item && next.type === 'list' ? next.of : next
  }
  return spec.type === 'object' || spec.type === 'named' || spec.type === 'list' ? undefined : spec
}

/** docs/limits.md. */
export function renderLimitsDocs(): string {
  const rows = Object.entries(limitTable).map(([path, d]) => {
    const leaf = leafAt(path)
    if (leaf === undefined) throw new Error(`limits table: no key ${path}`)
    return `| \`${path}\` | ${defaultText(leaf)} | ${typeText(leaf)} | ${leaf.doc.replaceAll('|', '\\|')} | ${d.error.replaceAll('|', '\\|')} | ${d.metric} |`
  })
  return `# Limits

<!-- Generated from src/config/limits.ts and src/config/keys.ts by renderLimitsDocs(); do not edit by hand.
     Regenerate: npm run build && node dist/src/config/render-docs.js limits > docs/limits.md -->

Every limit Sluice enforces has a key in the configuration, a default, an answer a client can act
on, and a metric. \`sluice_limit_hits_total{limit}\` counts every time a limit refused, cut or
delayed something, under the label the metric column gives. A few bounds are fixed by the formats
themselves and listed at the end.

| key | default | type | what it bounds | when hit | metric |
|---|---|---|---|---|---|
${rows.join('\n')}

## Fixed by the formats

| bound | value | why |
|---|---|---|
| routing key | 65,535 bytes | u16 length in the record format (AMQP's shortstr caps it at 255) |
| event id | 65,535 bytes | u16 length in the record format |
| timestamp | 0 to 2^47 − 1 ms (year 6429) | 48-bit deltas in a batch |
| per-event TTL | 2^32 − 1 ms | as RabbitMQ's \`expiration\` |
`
}
