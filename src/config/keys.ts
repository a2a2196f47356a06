// The key table: every configuration key is declared here once, with its type, default, bounds
// and one line of documentation. The validator, the defaults and docs/configuration.md are all
// derived from this table, so they cannot drift apart (as Kafka's LogConfig `define(...)` rows).

import type { ObjectSpec } from './spec.js'

const port = (defaultPort: number, what: string) =>
  ({ type: 'int', default: defaultPort, min: 0, max: 65535, doc: `TCP port for ${what}; 0 picks a free port (tests).` }) as const

const host = { type: 'string', default: '127.0.0.1', nonEmpty: true, doc: 'Address to listen on; 0.0.0.0 for every interface. On 127.0.0.1 or localhost a TCP listener also listens on ::1 (same port) when the machine has it.' } as const

const enabled = { type: 'bool', default: true, doc: 'Start this listener.' } as const

// Doors without credentials in their protocol (NDJSON, syslog) publish as a user the file names,
// and take clients only from the addresses it lists (docs/security.md, "Stream doors").
const streamDoorUser = {
  type: 'string',
  default: null,
  nonEmpty: true,
  doc: 'User in `auth.users` the events are published as; it needs write on `exchange` (checked at start). Unset: loopback clients publish as `guest` under `auth.anonymous: loopback`, and others are refused; under `anonymous: none` it must be set.',
} as const

const streamDoorAllow = {
  type: 'remoteList',
  default: ['127.0.0.0/8', '::1/128'],
  doc: 'Client addresses (IP or CIDR) that may connect or, over UDP, send; any other is refused at accept (a datagram dropped), counted in `sluice_auth_failures_total{reason="address"}`. `0.0.0.0/0` and `::/0` allow every address.',
} as const

// Every TCP listener entry may serve TLS instead of plain TCP; a list of entries puts both side by
// side (AMQP 5672 and 5671, syslog 5514 and 6514 as RFC 5425 has it).
const tls = {
  type: 'object',
  optional: true,
  doc: 'Serve TLS on this entry, and only TLS (docs/security.md, section TLS); the files are read again on SIGHUP.',
  keys: {
    cert: { type: 'string', required: true, nonEmpty: true, doc: 'PEM file: the server certificate, then any intermediate certificates.' },
    key: { type: 'string', required: true, nonEmpty: true, doc: "PEM file: the certificate's private key, unencrypted (readable by the server's user only)." },
    ca: { type: 'string', default: null, nonEmpty: true, doc: 'PEM file: the CA certificates client certificates must chain to; needed, and only allowed, when clientAuth is optional or required.' },
    clientAuth: {
      type: 'enum',
      values: ['none', 'optional', 'required'],
      default: 'none',
      doc: 'none: no client certificate asked for; optional: a client may send one, and one it sends must chain to `ca`; required: a client without such a certificate is refused in the handshake.',
    },
    minVersion: { type: 'enum', values: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2', doc: 'Oldest TLS version accepted; an older client is refused in the handshake.' },
  },
} as const

const fsyncValues = ['always', 'batch', 'never'] as const

export const serverSpec = {
  type: 'object',
  doc: 'Where data lives, the listeners, durability, limits and alarms.',
  keys: {
    dataDir: { type: 'string', default: './data', nonEmpty: true, doc: 'Directory for stream segments and the metadata store.' },
    shutdownTimeout: {
      type: 'duration',
      default: '5s',
      min: '100ms',
      max: '10m',
      doc: "A stop (SIGINT, SIGTERM) takes this long at most: long polls are answered at once, then the listeners, groups, logs and store close in turn; past it the part still closing is logged and the process exits with code 1. Keep it below the orchestrator's grace period (Docker's is 10s).",
    },
    http: {
      type: 'object',
      orList: true,
      doc: 'HTTP API, publish and consume endpoints, /metrics; a list of such mappings opens one listener each (plain and TLS ports side by side).',
      keys: {
        enabled,
        host,
        port: port(7400, 'the HTTP API'),
        tls,
        requestTimeout: { type: 'duration', default: '30s', min: '1s', max: '1h', doc: 'A request must arrive whole within this; a slow sender (slow-loris) is cut off with 408.' },
        headersTimeout: { type: 'duration', default: '10s', min: '1s', max: '10m', doc: 'The request headers must arrive within this.' },
        keepAliveTimeout: { type: 'duration', default: '72s', min: '1s', max: '1h', doc: 'An idle keep-alive connection is closed after this.' },
        maxInFlightRequests: { type: 'int', default: 1024, min: 1, max: 1000000, doc: 'Publish and consume requests being served at once at most, waiting long polls (group fetches and stream reads with waitMs) included; past it they get 503 overloaded.' },
        maxInFlightRequestsPerAddress: { type: 'int', default: 256, min: 1, max: 1000000, doc: 'Requests being served at once for one client address at most; past it that address gets 429 too_many_requests.' },
        maxConnections: { type: 'int', default: 4096, min: 1, max: 1000000, doc: 'Open HTTP connections at most (they count toward server.limits.maxConnections too); more get 503 too_many_connections at accept.' },
        maxConnectionsPerAddress: { type: 'int', default: 1024, min: 1, max: 1000000, doc: 'Open HTTP connections from one client address at most; more get 503 too_many_connections at accept.' },
        bodyTimeout: { type: 'duration', default: '10s', min: '100ms', max: '1h', doc: 'A request body must arrive whole within this of its headers, else 408; the shorter of it and requestTimeout applies.' },
        maxDrainSize: { type: 'size', default: '64mb', min: '0b', max: '1gb', doc: 'After an early answer (413, 429, 503) the rest of the body is read and discarded up to this, so the client reads the answer, not a reset.' },
        maxFetchEvents: { type: 'int', default: 10000, min: 1, max: 1000000, doc: 'Most events one group fetch may ask for (`max`); more is refused with 400 naming this key.' },
        maxFetchWait: { type: 'duration', default: '30s', min: '0ms', max: '10m', doc: 'Longest long poll one group fetch may ask for (`waitMs`); longer is refused with 400 naming this key.' },
        maxTagsPerRequest: { type: 'int', default: 10000, min: 1, max: 1000000, doc: 'Most delivery tags in one ack, nack or extend request; more is refused with 400 naming this key.' },
        maxReadEvents: { type: 'int', default: 10000, min: 1, max: 1000000, doc: 'Most events one stream read may ask for (`limit`); more is refused with 400 naming this key.' },
        maxReadWait: { type: 'duration', default: '30s', min: '0ms', max: '10m', doc: 'Longest wait for new events one stream read may ask for (`waitMs`); longer is refused with 400 naming this key.' },
        ui: { type: 'bool', default: true, doc: 'Serve the management UI: `GET /` to a browser (a request whose Accept names text/html) and its files under `/ui/`. Off, `GET /` is only the Elasticsearch handshake.' },
        maxLiveFeeds: { type: 'int', default: 64, min: 0, max: 100000, doc: 'Server-sent event feeds (live stream tails, `GET /v1/streams/{stream}/tail`) open at once on this listener; past it 503 too_many_connections. Each also holds a request place (maxInFlightRequests) while open.' },
        maxScanEvents: { type: 'int', default: 100000, min: 100, max: 100000000, doc: 'Events one stream search or dead-letter summary reads at most; it then answers where it stopped (`nextOffset`, `complete: false`) and the client goes on from there.' },
        maxLagHistoryGroups: { type: 'int', default: 100, min: 0, max: 100000, doc: 'Groups whose lag (events and seconds) is sampled every second for `GET /v1/groups/{group}/lag` and the group page\'s charts, kept as long as `rateHistory`; groups past it are not charted (`tracked: false`). Each costs about 22 KB with the default 15 minutes.' },
        maxRedriveOffsets: { type: 'int', default: 1000, min: 1, max: 100000, doc: 'Most offsets one redrive may pick by hand (`offsets` of `POST /v1/streams/{stream}/redrive`, `GET /v1/streams/{stream}/dead-letters?offsets=`); more is refused with 400 naming this key.' },
        rateHistory: { type: 'duration', default: '15m', min: '1m', max: '1h', doc: 'How far back `GET /v1/overview/rates` reaches: one sample of the ingest and delivery counters a second, kept this long.' },
        openMetrics: { type: 'bool', default: false, doc: 'Serve /metrics to every client; otherwise it needs a user tagged monitoring or administrator (Prometheus sends Basic or a bearer token).' },
      },
    },
    ndjson: {
      type: 'object',
      orList: true,
      doc: 'TCP listener taking one JSON event a line; a list of such mappings opens one listener each (plain and TLS ports side by side).',
      keys: {
        enabled,
        host,
        port: port(7401, 'NDJSON ingest'),
        tls,
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange every line is published to; the listener starts only when this is set.' },
        user: streamDoorUser,
        allow: streamDoorAllow,
        routingKey: { type: 'template', default: null, doc: "Routing-key template over the event's fields; unset uses the exchange's template." },
        maxLineSize: { type: 'size', default: '1mb', min: '1kb', max: '64mb', doc: 'Longest line; a longer one goes to the ingest-errors stream and the connection goes on.' },
        idleTimeout: { type: 'duration', default: '5m', min: '1s', max: '7d', doc: 'A connection that sends nothing for this long is closed.' },
        maxConnections: { type: 'int', default: 1000, min: 1, max: 1000000, doc: 'Open connections at most; more are refused at accept.' },
        maxConnectionsPerAddress: { type: 'int', default: 256, min: 1, max: 1000000, doc: 'Open connections from one client address at most; more are closed at accept.' },
        maxPendingSize: { type: 'size', default: '4mb', min: '1kb', max: '1gb', doc: 'Bytes read from one connection and not yet stored; at this the socket is paused until a publish completes (TCP backpressure; nothing is dropped).' },
      },
    },
    amqp: {
      type: 'object',
      orList: true,
      doc: 'AMQP 0-9-1 listener for RabbitMQ clients; a list of such mappings opens one listener each (plain and TLS ports side by side).',
      keys: {
        enabled,
        host,
        port: port(5672, 'AMQP 0-9-1'),
        tls,
        frameMax: { type: 'size', default: '128kb', min: '4kb', max: '16mb', doc: 'Largest frame offered in connection.tune.' },
        channelMax: { type: 'int', default: 2047, min: 1, max: 65535, doc: 'Most channels per connection offered in connection.tune.' },
        heartbeat: { type: 'duration', default: '60s', min: '0ms', max: '1h', doc: 'Heartbeat interval offered in connection.tune; 0 disables.' },
        handshakeTimeout: { type: 'duration', default: '10s', min: '100ms', max: '1h', doc: 'A connection must get from its protocol header to connection.open within this, or it is closed (RabbitMQ\'s handshake_timeout).' },
        maxConnections: { type: 'int', default: 4096, min: 1, max: 1000000, doc: 'Open AMQP connections at most (server.limits.maxConnections caps it too); more are refused with 530 NOT_ALLOWED.' },
        maxConnectionsPerAddress: { type: 'int', default: 1024, min: 1, max: 1000000, doc: 'Open AMQP connections from one client address at most; more are refused with 530 NOT_ALLOWED.' },
        maxQueuesPerConnection: { type: 'int', default: 1024, min: 1, max: 1000000, doc: 'Exclusive and server-named queues one connection may hold at once; one more is refused with 406 PRECONDITION_FAILED.' },
        maxConsumersPerChannel: { type: 'int', default: 4096, min: 8, max: 1000000, doc: "Consumers (basic.consume) one channel may hold at once, as RabbitMQ's consumer_max_per_channel; one more closes the connection with 530 NOT_ALLOWED." },
        maxMessageSize: { type: 'size', default: '16mb', min: '4kb', max: '512mb', doc: "Largest message body a client may send, as RabbitMQ's max_message_size: a content header declaring more closes the connection with 501 FRAME_ERROR before any of the body is read. A message under it but over server.limits.maxEventSize is nacked on its own." },
        maxPendingPublishSize: { type: 'size', default: '8mb', min: '1kb', max: '1gb', doc: 'Bytes of publishes read from one connection and not yet stored; at this the socket is paused until they are (TCP backpressure; nothing is dropped).' },
      },
    },
    syslog: {
      type: 'object',
      orList: true,
      doc: 'Syslog listener (RFC 5424 and RFC 3164) over TCP and, optionally, UDP; a list of such mappings opens one listener each (plain and TLS ports side by side).',
      keys: {
        enabled,
        host,
        port: port(5514, 'syslog (TCP and UDP)'),
        tls,
        udp: { type: 'bool', default: true, doc: 'Also listen on UDP, on the same port; never for an entry with `tls`.' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange every message is published to; the listener starts only when this is set.' },
        user: streamDoorUser,
        allow: streamDoorAllow,
        routingKey: { type: 'template', default: 'syslog.{facility}.{severity}', doc: "Routing-key template over the message's fields." },
        maxMessageSize: { type: 'size', default: '64kb', min: '480b', max: '16mb', doc: 'Longest message; a longer one goes to the ingest-errors stream and the connection goes on.' },
        idleTimeout: { type: 'duration', default: '5m', min: '1s', max: '7d', doc: 'A TCP connection that sends nothing for this long is closed.' },
        maxConnections: { type: 'int', default: 1000, min: 1, max: 1000000, doc: 'Open TCP connections at most; more are refused at accept.' },
        maxConnectionsPerAddress: { type: 'int', default: 256, min: 1, max: 1000000, doc: 'Open TCP connections from one client address at most; more are closed at accept.' },
        maxPendingSize: { type: 'size', default: '4mb', min: '1kb', max: '1gb', doc: 'Bytes read from one TCP connection and not yet stored; at this the socket is paused until a publish completes (TCP backpressure; nothing is dropped).' },
        udpReceiveBufferSize: { type: 'size', default: '4mb', min: '64kb', max: '1gb', doc: "Kernel receive buffer asked for the UDP socket (SO_RCVBUF), absorbing bursts while the event loop is busy; Linux caps it at net.core.rmem_max." },
        udpQueueSize: { type: 'int', default: 10000, min: 1, max: 10000000, doc: 'UDP messages waiting to be stored at most; past it datagrams are dropped and counted (UDP has no backpressure).' },
      },
    },
    gelf: {
      type: 'object',
      orList: true,
      doc: 'GELF listener for Graylog senders and Docker\'s gelf log driver (docs/doors/gelf.md): TCP frames ending in a NUL byte and, optionally, UDP datagrams, chunked or not, zlib, gzip or plain; a list of such mappings opens one listener each.',
      keys: {
        enabled,
        host,
        port: port(12201, 'GELF (TCP and UDP)'),
        tls,
        udp: { type: 'bool', default: true, doc: 'Also listen on UDP, on the same port; never for an entry with `tls`.' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange every message is published to; the listener starts only when this is set.' },
        user: streamDoorUser,
        allow: streamDoorAllow,
        routingKey: {
          type: 'template',
          default: '{host}.{level}',
          nullable: true,
          doc: "Routing-key template over the message's GELF fields, `_` extras included (`{_service}`); `none` uses the exchange's template.",
        },
        maxMessageSize: { type: 'size', default: '1mb', min: '1kb', max: '64mb', doc: 'Longest GELF message: a TCP frame, or a UDP message once its chunks are joined and it is decompressed; a longer one goes to the ingest-errors stream and the connection goes on.' },
        maxChunks: { type: 'int', default: 128, min: 1, max: 128, doc: 'Most chunks one chunked UDP message may declare (GELF allows 128); a chunk declaring more goes to the ingest-errors stream.' },
        chunkTimeout: { type: 'duration', default: '5s', min: '100ms', max: '1m', doc: 'A chunked UDP message must have all its chunks within this of its first; an incomplete one is then dropped and counted.' },
        maxReassemblySize: { type: 'size', default: '64mb', min: '64kb', max: '1gb', doc: 'Bytes of chunks held for incomplete UDP messages at most, across senders (each message also counts 1 kb of bookkeeping); a chunk that would go over it is dropped with its message and counted.' },
        idleTimeout: { type: 'duration', default: '5m', min: '1s', max: '7d', doc: 'A TCP connection that sends nothing for this long is closed.' },
        maxConnections: { type: 'int', default: 1000, min: 1, max: 1000000, doc: 'Open TCP connections at most; more are refused at accept.' },
        maxConnectionsPerAddress: { type: 'int', default: 256, min: 1, max: 1000000, doc: 'Open TCP connections from one client address at most; more are closed at accept.' },
        maxPendingSize: { type: 'size', default: '4mb', min: '1kb', max: '1gb', doc: 'Bytes read from one TCP connection and not yet stored; at this the socket is paused until a publish completes (TCP backpressure; nothing is dropped).' },
        udpReceiveBufferSize: { type: 'size', default: '4mb', min: '64kb', max: '1gb', doc: "Kernel receive buffer asked for the UDP socket (SO_RCVBUF), absorbing bursts while the event loop is busy; Linux caps it at net.core.rmem_max." },
        udpQueueSize: { type: 'int', default: 10000, min: 1, max: 10000000, doc: 'UDP messages waiting to be stored at most; past it messages are dropped and counted (UDP has no backpressure).' },
      },
    },
    forward: {
      type: 'object',
      orList: true,
      doc: 'Fluent Forward listener for Fluentd, Fluent Bit and the fluent-logger libraries (docs/doors/forward.md): msgpack over TCP in the Message, Forward, PackedForward and CompressedPackedForward modes, `ack` once durable; a list of such mappings opens one listener each.',
      keys: {
        enabled,
        host,
        port: port(24224, 'Fluent Forward'),
        tls,
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange every record is published to; the listener starts only when this is set.' },
        user: streamDoorUser,
        allow: streamDoorAllow,
        routingKey: { type: 'template', default: '{tag}', nullable: true, doc: "Routing-key template over the event's fields (`tag`, `time`, `record`); `none` uses the exchange's template." },
        sharedKey: { type: 'string', default: null, nonEmpty: true, doc: "Require Forward's handshake (HELO, PING, PONG) with this shared key before any event, as Fluentd's `<security> shared_key`; use ${ENV} rather than writing it in the file." },
        selfHostname: { type: 'string', default: null, nonEmpty: true, doc: "The server's name in the handshake's PONG; unset: the machine's host name. It must differ from the client's own hostname, which clients check." },
        maxFrameSize: { type: 'size', default: '16mb', min: '1kb', max: '1gb', doc: 'Largest msgpack message, and largest PackedForward stream once decompressed; a larger one goes to the ingest-errors stream and the connection is closed (msgpack cannot resynchronise).' },
        maxEntriesPerFrame: { type: 'int', default: 100000, min: 1, max: 10000000, doc: 'Most entries in one Forward or PackedForward message; a message with more goes to the ingest-errors stream whole (and is acked: resending it would not help).' },
        idleTimeout: { type: 'duration', default: '5m', min: '1s', max: '7d', doc: 'A connection that sends nothing for this long (the handshake included) is closed.' },
        maxConnections: { type: 'int', default: 1000, min: 1, max: 1000000, doc: 'Open connections at most; more are refused at accept.' },
        maxConnectionsPerAddress: { type: 'int', default: 256, min: 1, max: 1000000, doc: 'Open connections from one client address at most; more are closed at accept.' },
        maxPendingSize: { type: 'size', default: '4mb', min: '1kb', max: '1gb', doc: 'Bytes of events read from one connection and not yet stored; at this the socket is paused until a publish completes (TCP backpressure; nothing is dropped).' },
      },
    },
    otlp: {
      type: 'object',
      doc: 'OpenTelemetry logs over OTLP/HTTP, JSON or protobuf: `POST /v1/logs` on the HTTP listener and, with `http`, on a listener of its own; over OTLP/gRPC with `grpc` (docs/doors/otlp.md).',
      keys: {
        enabled: { type: 'bool', default: true, doc: 'Serve the door; it also needs `exchange`.' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange every log record is published to; unset, `POST /v1/logs` answers 404 as a path with no route.' },
        routingKey: {
          type: 'template',
          default: '{resource.service.name}.{severityText}',
          nullable: true,
          doc: "Routing-key template over the event's fields (docs/doors/otlp.md); `none` uses the exchange's template.",
        },
        maxRecordsPerRequest: { type: 'int', default: 100000, min: 1, max: 10000000, doc: 'Most log records in one export request; more is refused whole with 413 too_many_events.' },
        http: {
          type: 'object',
          doc: "OTLP/HTTP on a listener of its own (docs/doors/otlp.md): only `POST /v1/logs`, anything else 404, with the same exchange, routing key and limits; its timeouts and connection and request bounds are `server.http`'s.",
          keys: {
            enabled: { type: 'bool', default: false, doc: 'Open the OTLP/HTTP listener; it also needs `server.otlp.exchange`.' },
            host,
            port: port(4318, 'OTLP/HTTP'),
            tls,
            user: {
              type: 'string',
              default: null,
              nonEmpty: true,
              doc: 'User in `auth.users` a request without credentials publishes as; it needs write on `server.otlp.exchange` (checked at start). A request with HTTP Basic or a Bearer API key publishes as its login. Unset: as the user a verified TLS client certificate names, else as `guest` for loopback clients under `auth.anonymous: loopback`.',
            },
            allow: streamDoorAllow,
          },
        },
        grpc: {
          type: 'object',
          doc: 'OTLP/gRPC: `LogsService/Export` on a listener of its own (docs/doors/otlp.md), with the same exchange, routing key and limits.',
          keys: {
            enabled: { type: 'bool', default: false, doc: 'Open the gRPC listener; it also needs `server.otlp.exchange`.' },
            host,
            port: port(4317, 'OTLP/gRPC'),
            tls,
            user: streamDoorUser,
            allow: streamDoorAllow,
            maxMessageSize: { type: 'size', default: '4mb', min: '1kb', max: '64mb', doc: 'Largest export request; a larger one is refused by gRPC with RESOURCE_EXHAUSTED before it is read.' },
          },
        },
      },
    },
    loki: {
      type: 'object',
      doc: 'Grafana Loki push, JSON or snappy protobuf: `POST /loki/api/v1/push` on the HTTP listener (docs/doors/loki.md).',
      keys: {
        enabled: { type: 'bool', default: true, doc: 'Serve the door; it also needs `exchange`.' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange every log entry is published to; unset, the push path answers 404 as a path with no route.' },
        routingKey: {
          type: 'template',
          default: '{labels.service_name}.{labels.level}',
          nullable: true,
          doc: "Routing-key template over the event's fields, the stream's labels under `labels` (docs/doors/loki.md); `none` uses the exchange's template.",
        },
        maxEntriesPerRequest: { type: 'int', default: 100000, min: 1, max: 10000000, doc: 'Most log entries in one push; more is refused whole with 413 too_many_events.' },
      },
    },
    elasticsearch: {
      type: 'object',
      doc: 'Elasticsearch bulk for Beats, Logstash, Fluent Bit, Vector and the Elasticsearch clients: `POST /_bulk`, `POST /{index}/_bulk` and the calls they make first, on the HTTP listener (docs/doors/elasticsearch.md).',
      keys: {
        enabled: { type: 'bool', default: true, doc: 'Serve the door; it also needs `exchange`.' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: "Exchange every document is published to, with its index as the routing key; unset, the door's paths answer 404 as paths with no route." },
        maxDocumentsPerRequest: { type: 'int', default: 100000, min: 1, max: 10000000, doc: 'Most actions in one bulk request; more is refused whole with 413 too_many_events.' },
      },
    },
    durability: {
      type: 'object',
      doc: 'When a publish is confirmed relative to fsync.',
      keys: {
        fsync: {
          type: 'enum',
          values: fsyncValues,
          default: 'batch',
          doc: 'always: fsync each write; batch: group commit every `interval`; never: leave it to the OS (a power cut loses what the OS had not written).',
        },
        interval: { type: 'duration', default: '5ms', min: '0ms', max: '10s', doc: 'Longest wait before a group commit under `fsync: batch`.' },
        maxBatchBytes: { type: 'size', default: '1mb', min: '1kb', max: '1gb', doc: 'A group commit starts early once this much is buffered.' },
      },
    },
    limits: {
      type: 'object',
      doc: 'Ceilings on what clients may send.',
      keys: {
        maxBodySize: { type: 'size', default: '16mb', min: '1kb', max: '1gb', doc: 'Largest HTTP request body (413 above it).' },
        maxEventSize: { type: 'size', default: '1mb', min: '64b', max: '1gb', doc: 'Largest single event, on every listener.' },
        maxConnections: { type: 'int', default: 10000, min: 1, max: 1000000, doc: 'Most open connections across the TCP listeners.' },
        maxDedupIds: { type: 'int', default: 1000000, min: 1, max: 100000000, doc: 'Event ids and idempotency keys held in memory for all dedup windows at most; past it the oldest are forgotten before their window ends, so a later copy would be stored.' },
        maxOpenSegmentFiles: { type: 'int', default: 64, min: 1, max: 1000000, doc: 'Read handles on sealed segment files open at once across all streams (least recently used closed first, idle ones after 30 s); more readers wait.' },
        maxEventsPerRequest: { type: 'int', default: 10000, min: 1, max: 10000000, doc: 'Most events in one HTTP publish request; more is refused whole with 413 too_many_events.' },
        maxEventDepth: { type: 'int', default: 64, min: 1, max: 1000, doc: 'Deepest nesting of objects and arrays in a JSON event body, and in each header value, on every listener; deeper is refused (HTTP 400 bad_event, AMQP basic.nack, the stream listeners set it aside in ingest-errors).' },
        maxStreams: { type: 'int', default: 10000, min: 1, max: 1000000, doc: "Streams at most, the file's and those declared at run time (each AMQP queue is one) together; the built-in ingest-errors is not counted. A file with more is refused at start; one more at run time is refused (AMQP queue.declare: 406 PRECONDITION_FAILED)." },
        maxGroups: { type: 'int', default: 10000, min: 1, max: 1000000, doc: "Consumer groups at most, the file's and those declared at run time together (each AMQP classic queue has one, each consumer of a stream queue one of its own). A file with more is refused at start; one more at run time is refused (HTTP 409 too_many_groups, AMQP 406 PRECONDITION_FAILED)." },
        maxConsumers: { type: 'int', default: 100000, min: 1, max: 10000000, doc: 'Consumers across all groups at once: AMQP consumers and basic.get users until their channel closes, HTTP fetch consumers until their sessionTimeout ends. One more is refused (HTTP 503 too_many_consumers, AMQP 530 NOT_ALLOWED).' },
      },
    },
    ingestErrors: {
      type: 'object',
      doc: 'The built-in ingest-errors stream, where the stream doors set aside what they cannot parse.',
      keys: {
        maxQueued: { type: 'int', default: 10000, min: 1, max: 10000000, doc: 'Records waiting to be stored at most; past it new ones are dropped and counted, and the door goes on.' },
        maxRawSize: { type: 'size', default: '64kb', min: '64b', max: '16mb', doc: 'How much of an unparseable line or frame a record keeps; the rest is cut and the record says `truncated: true`.' },
        maxBytes: { type: 'size', default: '1gb', min: '1mb', doc: "The stream's retention.maxBytes (its other settings are a stream's defaults); unused when `streams` declares ingest-errors." },
      },
    },
    alarms: {
      type: 'object',
      doc: 'Resource alarms that block publishers until they clear.',
      keys: {
        memoryHighWatermark: { type: 'number', default: 0.6, min: 0, max: 1, doc: "Fraction of the memory available (the machine's, or the container's limit when lower: cgroup, as `docker run --memory` sets) the process may hold (resident) before publishers are blocked." },
        memoryLimit: { type: 'size', default: null, min: '16mb', doc: 'Absolute resident-memory limit; overrides memoryHighWatermark when set.' },
        diskFreeLimit: { type: 'size', default: '1gb', min: '0b', doc: 'Free disk space in dataDir below which publishers are blocked.' },
      },
    },
    log: {
      type: 'object',
      doc: "The broker's own log.",
      keys: {
        level: { type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', doc: 'Lowest level written.' },
      },
    },
  },
} as const satisfies ObjectSpec

const permissionPattern = (what: string) =>
  ({ type: 'string', default: null, doc: `Regular expression over the names this user may ${what}, matched against the whole name; unset matches nothing.` }) as const

export const authSpec = {
  type: 'object',
  doc: 'Who may connect and what each user may do (docs/security.md): users with tags and permission patterns, as RabbitMQ has them, and API keys acting as a user.',
  keys: {
    anonymous: {
      type: 'enum',
      values: ['loopback', 'none'],
      default: 'loopback',
      doc: 'loopback: a client on 127.0.0.1 or ::1 sending no credentials acts as the user `guest` (if there is one); none: every client must log in.',
    },
    users: {
      type: 'list',
      whenAbsent: 'one `guest` user',
      doc: 'Users (HTTP Basic, AMQP PLAIN and AMQPLAIN). Left out, there is one: `guest`, password `guest`, loopbackOnly, administrator, every permission; declaring users replaces it.',
      of: {
        type: 'object',
        doc: 'One user.',
        keys: {
          username: { type: 'string', required: true, nonEmpty: true, doc: 'Login name.' },
          password: { type: 'string', default: null, nonEmpty: true, doc: 'Password; use ${ENV} rather than writing it in the file. Exactly one of password and passwordHash.' },
          passwordHash: { type: 'string', default: null, nonEmpty: true, doc: 'scrypt hash of the password, as `sluice passwd` prints it (`scrypt$N$r$p$salt$hash`).' },
          tags: { type: 'enumList', values: ['administrator', 'monitoring'], default: [], doc: 'administrator: may do everything; monitoring: may read every listing, the overview and /metrics.' },
          permissions: {
            type: 'object',
            doc: 'What the user may do to exchanges, streams and groups, by name (the table is in docs/security.md).',
            keys: {
              configure: permissionPattern('declare, delete, bind, reset and redrive'),
              write: permissionPattern('publish to (exchanges) or bind to (destinations)'),
              read: permissionPattern('consume from (groups), read (streams) or bind from (sources)'),
            },
          },
          loopbackOnly: { type: 'bool', default: false, doc: 'Refuse this user from any address but 127.0.0.1 and ::1.' },
        },
      },
    },
    apiKeys: {
      type: 'list',
      doc: 'API keys, sent as `Authorization: Bearer <key>` over HTTP; each acts as a user.',
      of: {
        type: 'object',
        doc: 'One API key.',
        keys: {
          name: { type: 'name', required: true, declares: 'apiKey', doc: 'Name used in metrics, logs and `rateLimits[].match.apiKey`.' },
          key: { type: 'string', default: null, nonEmpty: true, doc: 'The secret; use ${ENV} rather than writing it in the file. Exactly one of key and keyHash.' },
          keyHash: { type: 'string', default: null, nonEmpty: true, doc: 'SHA-256 of the key, `sha256:<hex>`, as `sluice passwd --api-key` prints it.' },
          user: { type: 'string', required: true, nonEmpty: true, doc: 'The user the key acts as: its tags and permissions apply.' },
        },
      },
    },
    maxFailureDelay: {
      type: 'duration',
      default: '5s',
      min: '0ms',
      max: '1m',
      doc: 'After a failed login from an address, its next logins wait 100 ms, doubling with each further failure up to this; 0 turns the slowdown off.',
    },
    maxPendingLoginsPerAddress: {
      type: 'int',
      default: 32,
      min: 1,
      max: 100000,
      doc: 'Logins from one slowed-down address waiting their turn at most; more are refused at once without checking their credentials.',
    },
    maxTrackedAddresses: {
      type: 'int',
      default: 10000,
      min: 1,
      max: 10000000,
      doc: 'Client addresses whose login history (failures, credentials already verified) is remembered at most; past it the least recently seen is forgotten.',
    },
  },
} as const satisfies ObjectSpec

export const exchangeSpec = {
  type: 'object',
  doc: 'One exchange.',
  keys: {
    type: { type: 'enum', values: ['direct', 'fanout', 'topic', 'headers'], default: 'direct', doc: 'Routing: exact key, every binding, `*`/`#` key patterns, or header match.' },
    routingKey: { type: 'template', default: null, doc: "Template for events published without a routing key, e.g. `{service}.{level}`." },
    alternate: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange receiving events that no binding matched.' },
    unroutable: { type: 'enum', values: ['drop', 'reject'], default: 'drop', doc: 'Without an alternate: count and drop unroutable events, or reject the publish.' },
    dedup: { type: 'string', default: null, nonEmpty: true, doc: 'Top-level body field holding the event id; repeated ids within `dedupWindow` are stored once.' },
    dedupWindow: { type: 'duration', default: '2m', min: '1s', max: '7d', doc: 'How long event ids are remembered for dedup.' },
  },
} as const satisfies ObjectSpec

export const streamSpec = {
  type: 'object',
  doc: 'One stream.',
  keys: {
    retention: {
      type: 'object',
      doc: 'When whole segments are deleted.',
      keys: {
        maxAge: { type: 'duration', default: '7d', nullable: true, min: '1s', doc: 'Delete segments whose newest event is older than this; `none` keeps them.' },
        maxBytes: { type: 'size', default: null, min: '1kb', doc: 'Delete the oldest segments while the stream is larger than this.' },
        policy: {
          type: 'enum',
          values: ['limits', 'interest'],
          default: 'limits',
          doc: 'limits: age and size only; interest: also delete segments every group has settled past.',
        },
      },
    },
    segmentSize: { type: 'size', default: '64mb', min: '1kb', max: '1gb', doc: 'Roll to a new segment file at this size.' },
    segmentAge: { type: 'duration', default: '7d', min: '1s', doc: 'Roll to a new segment file at this age, so age retention can delete it.' },
    fsync: { type: 'enum', values: fsyncValues, default: null, doc: 'Overrides `server.durability.fsync` for this stream.' },
    replicas: {
      type: 'int',
      default: null,
      min: 1,
      max: 7,
      doc: 'Cluster mode: copies of this stream, overriding `cluster.replication.factor` (1: no followers). Publishes need `min(cluster.replication.minInSync, replicas)` copies in sync. Read when the stream is first placed, and when followers are added.',
    },
  },
} as const satisfies ObjectSpec

export const bindingSpec = {
  type: 'object',
  doc: 'One binding; exactly one of `stream` and `toExchange`.',
  keys: {
    exchange: { type: 'name', ref: 'exchange', required: true, doc: 'Source exchange.' },
    stream: { type: 'name', ref: 'stream', default: null, doc: 'Destination stream.' },
    toExchange: { type: 'name', ref: 'exchange', default: null, doc: 'Destination exchange (exchange-to-exchange binding).' },
    key: { type: 'string', default: '', doc: 'Binding key: exact for direct, `*`/`#` pattern for topic, ignored by fanout and headers.' },
    match: { type: 'enum', values: ['all', 'any'], default: 'all', doc: 'headers exchanges: every header must match, or any one.' },
    headers: { type: 'headers', default: {}, doc: 'headers exchanges: attribute values to match.' },
  },
} as const satisfies ObjectSpec

export const groupSpec = {
  type: 'object',
  doc: 'One consumer group.',
  keys: {
    stream: { type: 'name', ref: 'stream', required: true, doc: 'Stream the group reads.' },
    dispatch: { type: 'enum', values: ['fair', 'round-robin'], default: 'fair', doc: 'fair: member with most free credit; round-robin: members in turn.' },
    ackMode: { type: 'enum', values: ['manual', 'auto'], default: 'manual', doc: 'manual: consumers ack; auto: settled on delivery (at most once).' },
    prefetch: { type: 'int', default: 100, min: 1, max: 65535, doc: 'Unacked deliveries one member may hold.' },
    readAheadSize: { type: 'size', default: '256kb', min: '1kb', max: '64mb', doc: 'Most bytes of the stream one read for the next deliveries takes (a larger batch is read whole); the group reads only as far as members have credit.' },
    ackTimeout: { type: 'duration', default: '30s', min: '100ms', max: '1d', doc: 'Unacked this long: redelivered to another member.' },
    maxDeliveries: { type: 'int', default: 5, min: 0, max: 1000000, doc: 'Deliveries before dead-lettering with reason `delivery_limit`; 0 = unlimited.' },
    retryBackoff: {
      type: 'object',
      doc: 'Delay before redelivering a nacked event.',
      keys: {
        initial: { type: 'duration', default: '1s', min: '0ms', doc: 'Delay after the first nack.' },
        max: { type: 'duration', default: '1m', min: '0ms', doc: 'Longest delay.' },
        multiplier: { type: 'number', default: 2, min: 1, max: 100, doc: 'Growth factor per further nack.' },
        jitter: { type: 'number', default: 0.2, min: 0, max: 1, doc: 'Random fraction added or removed, so retries do not come in waves.' },
      },
    },
    messageTtl: { type: 'duration', default: null, min: '1ms', doc: 'Events older than this when due are dead-lettered with reason `expired`.' },
    maxBacklog: { type: 'int', default: null, min: 1, doc: 'Pending events above which `overflow` applies.' },
    maxBacklogBytes: { type: 'size', default: null, min: '1b', doc: 'Stored bytes of the pending events above which `overflow` applies (each event as the log stores it: body, key, exchange, id, headers and 21 bytes of framing); with maxBacklog, whichever is reached first.' },
    overflow: {
      type: 'enum',
      values: ['dead-letter', 'reject-publish'],
      default: 'dead-letter',
      doc: 'Over maxBacklog or maxBacklogBytes: dead-letter the oldest (reason `maxlen`), or refuse publishes (429/NACK).',
    },
    deadLetter: {
      type: 'object',
      optional: true,
      doc: 'Where poison events go: `{ stream }` or `{ exchange, routingKey }`; unset parks them in the group (listed, never dropped).',
      keys: {
        stream: { type: 'name', ref: 'stream', default: null, doc: 'Dead-letter stream.' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Dead-letter exchange.' },
        routingKey: { type: 'string', default: null, doc: "Routing key at the dead-letter exchange; unset keeps the event's own." },
      },
    },
    start: { type: 'start', default: 'earliest', doc: 'Where a new group starts: earliest, latest, last (the last event stored, then what follows), an offset or an ISO time.' },
    deliveryRate: { type: 'eventRate', default: null, doc: 'Most deliveries per unit of time across members, e.g. 5000/s.' },
    sessionTimeout: { type: 'duration', default: '30s', min: '1s', max: '1h', doc: 'A member silent this long is removed and its deliveries go to others.' },
  },
} as const satisfies ObjectSpec

export const rateLimitSpec = {
  type: 'object',
  doc: 'One ingest token bucket; every rule whose match fits applies.',
  keys: {
    match: {
      type: 'object',
      doc: 'Which publishers the rule applies to; every given field must match, none = all.',
      keys: {
        listener: { type: 'enum', values: ['http', 'ndjson', 'amqp', 'syslog', 'gelf', 'forward', 'otlp-http', 'otlp-grpc'], default: null, doc: 'Listener the events arrive on.' },
        remote: { type: 'remote', default: null, doc: 'Client address or CIDR block, e.g. 10.0.0.0/8.' },
        apiKey: { type: 'name', ref: 'apiKey', default: null, doc: 'Name of an API key in `auth.apiKeys`.' },
        user: { type: 'string', default: null, nonEmpty: true, doc: 'User in `auth.users` the publisher acts as: its login, its API key\'s user, or a stream listener\'s `user` (anonymous loopback clients are `guest`).' },
        exchange: { type: 'name', ref: 'exchange', default: null, doc: 'Exchange published to.' },
      },
    },
    events: { type: 'eventRate', default: null, doc: 'Events per unit of time, e.g. 50000/s.' },
    bytes: { type: 'byteRate', default: null, doc: 'Bytes per unit of time, e.g. 50mb/s.' },
    burst: { type: 'int', default: null, min: 1, doc: 'Bucket size in events; unset = one second of `events`. The bytes bucket holds one second of `bytes`.' },
    per: {
      type: 'enum',
      values: ['user', 'apiKey', 'remote'],
      default: null,
      doc: 'Give every distinct user, API key or client address its own buckets, made on first use; unset, one pair is shared by every publisher the rule matches. A publish without that value (no API key; a syslog UDP datagram has no `remote`) is not limited by the rule.',
    },
    maxSources: { type: 'int', default: 10000, min: 1, max: 10000000, doc: 'With `per`: sources holding buckets at most; past it the least recently used is forgotten (it starts again with full buckets) and counted.' },
  },
} as const satisfies ObjectSpec

// Cluster mode (docs/cluster.md): absent, the server is one node on its own, as it always was.
export const clusterSpec = {
  type: 'object',
  optional: true,
  doc: 'Run as one node of a cluster coordinated through etcd (docs/cluster.md); absent: a single node.',
  keys: {
    nodeId: { type: 'name', required: true, doc: "This node's name in the cluster; unique among the nodes sharing `etcd.prefix`, and kept across restarts (placement names it)." },
    etcd: {
      type: 'object',
      doc: 'The etcd cluster holding membership, the controller, placement and definitions.',
      keys: {
        endpoints: { type: 'urlList', default: ['http://127.0.0.1:2379'], doc: 'Client URLs of the etcd members (etcd 3.4 or newer).' },
        prefix: { type: 'string', default: '/sluice', nonEmpty: true, doc: 'Key prefix of this cluster in etcd; clusters sharing an etcd use different prefixes. Starts with `/`, no trailing `/`.' },
        leaseTtl: {
          type: 'duration',
          default: '5s',
          min: '2s',
          max: '60s',
          doc: "How long a node that stopped answering keeps its membership: a dead node's controller role moves after this, and a node cut off from etcd this long fences itself (refuses publishes with 503).",
        },
        requestTimeout: { type: 'duration', default: '2s', min: '100ms', max: '30s', doc: 'Deadline of each etcd request; a request past it counts as failed (`sluice_cluster_etcd_requests_total{outcome="error"}`).' },
      },
    },
    minNodes: {
      type: 'int',
      default: 1,
      min: 1,
      max: 1000,
      doc: 'Nodes that must hold a lease before the controller places any stream, the first time (the cluster is then formed: later streams go to the nodes that are up). Placed streams never move on their own, so set it to the node count: a cold start then spreads the streams instead of giving them all to the first node up.',
    },
    advertise: {
      type: 'object',
      doc: 'How other nodes and redirected clients reach this node.',
      keys: {
        host: { type: 'string', default: '127.0.0.1', nonEmpty: true, doc: "Host name or address other nodes use for this node's listeners." },
        internalPort: { type: 'int', default: null, min: 1, max: 65535, doc: 'The port other nodes use for the internal port, when it is not the one it listens on (a port mapping, a proxy); by default the port it listens on.' },
      },
    },
    secret: {
      type: 'string',
      required: true,
      nonEmpty: true,
      doc: 'Shared secret every node of the cluster presents on the internal port, at least 16 characters; write `${SLUICE_CLUSTER_SECRET}` to keep it out of the file. A request without it is refused (401).',
    },
    replication: {
      type: 'object',
      doc: 'The internal port: nodes forward publishes to the home node of a stream through it (docs/cluster.md).',
      keys: {
        host: { type: 'string', default: '127.0.0.1', nonEmpty: true, doc: 'Address the internal port listens on; other nodes reach it at `advertise.host`.' },
        port: { type: 'int', default: 7410, min: 0, max: 65535, doc: 'Internal TCP port; 0 picks a free port (tests).' },
        forwardTimeout: {
          type: 'duration',
          default: '10s',
          min: '100ms',
          max: '5m',
          doc: 'Longest wait for a forwarded append to be confirmed by its home node; past it the publish fails with 503 `stream_unavailable` (retryable: a retry with the same ids is deduplicated).',
        },
        maxBodySize: { type: 'size', default: '64mb', min: '1kb', max: '1gb', doc: 'Largest forwarded batch the internal port accepts; a larger one answers 413.' },
        factor: { type: 'int', default: 1, min: 1, max: 7, doc: "Copies of each stream: its leader (the home) and `factor − 1` followers on other nodes, which fetch the leader's batches as stored (docs/cluster.md, section Replication)." },
        minInSync: {
          type: 'int',
          default: 1,
          min: 1,
          max: 7,
          doc: 'Replicas (the leader included) that must hold an event durably before its publish is confirmed; with fewer in sync, the stream refuses publishes with 503 `not_enough_replicas`. At most `factor`.',
        },
        uncleanElection: {
          type: 'bool',
          default: false,
          doc: 'When a leader dies and no follower is in sync, make a follower that is not the leader anyway, so the stream takes publishes again at the price of the confirmed events it lacks (logged loudly, counted in `sluice_cluster_unclean_elections_total`). Off: the stream waits for an in-sync replica to come back.',
        },
        replicaLagMax: { type: 'duration', default: '10s', min: '1s', max: '10m', doc: "A follower that has not reached the leader's end for this long leaves the in-sync set; it rejoins once it has caught up." },
        tls: {
          type: 'object',
          optional: true,
          doc: 'Mutual TLS on the internal port (docs/cluster.md, section The internal port): it serves TLS and refuses a peer without a certificate that chains to `ca`; each node presents its own certificate when it connects to the others and checks theirs against `ca` and `advertise.host`. The files are read at start and again on SIGHUP; connections already open keep theirs.',
          keys: {
            cert: { type: 'string', required: true, nonEmpty: true, doc: "PEM file: this node's certificate (extended key usage serverAuth and clientAuth, or none; a subjectAltName for its `advertise.host`), then any intermediates." },
            key: { type: 'string', required: true, nonEmpty: true, doc: "PEM file: the certificate's private key, unencrypted." },
            ca: { type: 'string', required: true, nonEmpty: true, doc: "PEM file: the CA certificates every node's certificate must chain to." },
          },
        },
        moveTimeout: {
          type: 'duration',
          default: '10m',
          min: '1s',
          max: '24h',
          doc: 'Longest a `sluice cluster move` may take to copy a stream to its new node; past it the move is called off (503 `move_failed`), the stream stays where it was, and the publishes held for it go on there.',
        },
      },
    },
  },
} as const satisfies ObjectSpec

export const configSpec = {
  type: 'object',
  doc: 'The configuration file.',
  keys: {
    server: serverSpec,
    auth: authSpec,
    exchanges: { type: 'named', declares: 'exchange', of: exchangeSpec, doc: 'Exchanges by name. Exchanges declared over AMQP live beside these.' },
    streams: { type: 'named', declares: 'stream', of: streamSpec, doc: 'Streams by name; each is a directory under dataDir.' },
    bindings: { type: 'list', of: bindingSpec, doc: 'Routes from exchanges to streams or to other exchanges; each has exactly one of `stream` and `toExchange`.' },
    groups: { type: 'named', declares: 'group', of: groupSpec, doc: 'Consumer groups by name.' },
    rateLimits: { type: 'list', of: rateLimitSpec, doc: 'Ingest token buckets; every rule whose match fits a publisher applies to it.' },
    cluster: clusterSpec,
  },
} as const satisfies ObjectSpec

// The table's literal type, from which the validated shape is derived (spec.ts `Raw`).
export type ConfigSpec = typeof configSpec
