import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadConfig, parseConfig, summarizeConfig, validateConfigText, type Config } from '../../src/config/index.js'

const defaultConfigPath = new URL('../../config/sluice.yaml', import.meta.url).pathname
const designExamplePath = new URL('./fixtures/design-example.yaml', import.meta.url).pathname

describe('the default config/sluice.yaml', () => {
  it('parses into the documented pipeline', async () => {
    const config = await loadConfig(defaultConfigPath, {})
    expect(config.server.dataDir).toBe('./data')
    expect(config.exchanges['logs']).toEqual({
      name: 'logs',
      type: 'topic',
      routingKey: '{service}.{level}',
      alternate: 'unrouted',
      unroutable: 'drop',
      dedup: 'id',
      dedupWindowMs: 120_000,
    })
    expect(config.exchanges['unrouted']?.type).toBe('fanout')
    expect(Object.keys(config.streams)).toEqual(['app-logs', 'errors', 'unrouted', 'app-logs-dlq'])
    expect(config.streams['app-logs']?.retention).toEqual({ maxAgeMs: 7 * 86_400_000, maxBytes: 10 * 1024 ** 3, policy: 'limits' })
    expect(config.bindings.map((b) => [b.exchange, b.key, b.destination.name])).toEqual([
      ['logs', '#', 'app-logs'],
      ['logs', '*.error', 'errors'],
      ['unrouted', '', 'unrouted'],
    ])
    expect(config.groups['indexer']?.stream).toBe('app-logs')
    expect(config.groups['indexer']?.deadLetter).toEqual({ kind: 'stream', stream: 'app-logs-dlq' })
  })

  it('takes its data dir from SLUICE_DATA_DIR', async () => {
    const config = await loadConfig(defaultConfigPath, { SLUICE_DATA_DIR: '/var/lib/sluice' })
    expect(config.server.dataDir).toBe('/var/lib/sluice')
  })

  it('summarizes the pipeline for `sluice validate`', async () => {
    expect(summarizeConfig(await loadConfig(defaultConfigPath, {}))).toBe(
      [
        'data dir ./data; fsync batch every 5ms',
        'listeners: http 127.0.0.1:7400, ndjson 127.0.0.1:7401 → logs, amqp 127.0.0.1:5672, syslog 127.0.0.1:5514 tcp+udp → logs',
        'auth: users guest (administrator, loopback only); 0 API key(s); loopback clients without credentials act as guest',
        'exchanges (2):',
        '  logs: topic, key {service}.{level}, alternate unrouted, dedup id (2m)',
        '  unrouted: fanout, unroutable drop',
        'streams (4):',
        '  app-logs: keep 7d / 10gb; fsync batch',
        '  errors: keep 7d; fsync batch',
        '  unrouted: keep 7d; fsync batch',
        '  app-logs-dlq: keep 7d; fsync batch',
        'bindings (3):',
        '  logs [#] → stream app-logs',
        '  logs [*.error] → stream errors',
        '  unrouted → stream unrouted',
        'groups (1):',
        '  indexer on app-logs: fair, manual ack, prefetch 100, max 5 deliveries, from earliest, dead-letter → stream app-logs-dlq',
      ].join('\n'),
    )
  })
})

describe('the example in DESIGN.md', () => {
  it('parses, with every field in the typed Config', async () => {
    const config = await loadConfig(designExamplePath, {})
    expect(config.server.ndjson).toMatchObject({ enabled: true, host: '127.0.0.1', port: 7401, exchange: 'logs', routingKey: '{service}.{level}' })
    expect(config.server.syslog).toMatchObject({
      enabled: true,
      host: '127.0.0.1',
      port: 5514,
      udp: true,
      exchange: 'logs',
      routingKey: 'syslog.{facility}.{severity}',
    })
    expect(config.server.limits).toEqual({ maxBodyBytes: 16 * 1024 ** 2, maxEventBytes: 1024 ** 2, maxConnections: 10_000, maxOpenSegmentFiles: 64, maxEventsPerRequest: 10_000, maxEventDepth: 64, maxStreams: 10_000, maxGroups: 10_000, maxConsumers: 100_000, maxDedupIds: 1_000_000 })
    expect(config.server.alarms).toEqual({ memoryHighWatermark: 0.6, memoryLimitBytes: null, diskFreeLimitBytes: 1024 ** 3 })
    expect(config.bindings[3]).toEqual({
      exchange: 'by-attr',
      destination: { kind: 'stream', name: 'errors' },
      key: '',
      match: 'all',
      headers: { level: 'error' },
    })
    expect(config.bindings[4]?.destination).toEqual({ kind: 'exchange', name: 'audit' })
    expect(config.groups['indexer']).toEqual({
      name: 'indexer',
      stream: 'app-logs',
      dispatch: 'fair',
      ackMode: 'manual',
      prefetch: 100,
      readAheadBytes: 256 * 1024,
      ackTimeoutMs: 30_000,
      maxDeliveries: 5,
      retryBackoff: { initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0.2 },
      messageTtlMs: 3_600_000,
      maxBacklog: 1_000_000,
      maxBacklogBytes: null,
      overflow: 'dead-letter',
      deadLetter: { kind: 'stream', stream: 'app-logs-dlq' },
      start: { kind: 'earliest' },
      deliveryRatePerSec: 5000,
      sessionTimeoutMs: 30_000,
    })
    expect(config.rateLimits).toEqual([
      {
        match: { listener: 'http', remote: null, apiKey: null, user: null, exchange: null },
        eventsPerSec: 50_000,
        bytesPerSec: 50 * 1024 ** 2,
        burstEvents: 100_000,
        per: null,
        maxSources: 10_000,
      },
    ])
  })
})

describe('an empty file', () => {
  it.each(['', '# nothing here\n', '---\n', 'server:\nexchanges:\nstreams: {}\nbindings: []\n'])('is a valid config of defaults (%j)', (text) => {
    const config = parseConfig(text, { env: {} })
    expect(config).toEqual({
      server: {
        dataDir: './data',
        http: {
          enabled: true,
          host: '127.0.0.1',
          port: 7400,
          tls: null,
          requestTimeoutMs: 30_000,
          headersTimeoutMs: 10_000,
          keepAliveTimeoutMs: 72_000,
          maxInFlightRequests: 1024,
          maxInFlightRequestsPerAddress: 256,
          maxConnections: 4096,
          maxConnectionsPerAddress: 1024,
          bodyTimeoutMs: 10_000,
          maxDrainBytes: 64 * 1024 ** 2,
          maxFetchEvents: 10_000,
          maxFetchWaitMs: 30_000,
          maxTagsPerRequest: 10_000,
          maxReadEvents: 10_000,
          maxReadWaitMs: 30_000,
          openMetrics: false,
          ui: true,
          maxLiveFeeds: 64,
          maxScanEvents: 100_000,
          rateHistoryMs: 900_000,
          maxRedriveOffsets: 1000,
          maxLagHistoryGroups: 100,
        },
        ndjson: { enabled: true, host: '127.0.0.1', port: 7401, tls: null, exchange: null, routingKey: null, user: null, allow: ['127.0.0.0/8', '::1/128'], maxLineBytes: 1024 ** 2, idleTimeoutMs: 300_000, maxConnections: 1000, maxConnectionsPerAddress: 256, maxPendingBytes: 4 * 1024 ** 2 },
        amqp: {
          enabled: true,
          host: '127.0.0.1',
          port: 5672,
          tls: null,
          frameMaxBytes: 131_072,
          channelMax: 2047,
          heartbeatMs: 60_000,
          handshakeTimeoutMs: 10_000,
          maxConnections: 4096,
          maxConnectionsPerAddress: 1024,
          maxQueuesPerConnection: 1024,
          maxConsumersPerChannel: 4096,
          maxPendingPublishBytes: 8 * 1024 ** 2,
          maxMessageBytes: 16 * 1024 ** 2,
        },
        syslog: {
          enabled: true,
          host: '127.0.0.1',
          port: 5514,
          tls: null,
          udp: true,
          exchange: null,
          routingKey: 'syslog.{facility}.{severity}',
          user: null,
          allow: ['127.0.0.0/8', '::1/128'],
          maxMessageBytes: 64 * 1024,
          idleTimeoutMs: 300_000,
          maxConnections: 1000,
          maxConnectionsPerAddress: 256,
          maxPendingBytes: 4 * 1024 ** 2,
          udpReceiveBufferBytes: 4 * 1024 ** 2,
          udpQueueSize: 10_000,
        },
        gelf: {
          enabled: true,
          host: '127.0.0.1',
          port: 12201,
          tls: null,
          udp: true,
          exchange: null,
          routingKey: '{host}.{level}',
          user: null,
          allow: ['127.0.0.0/8', '::1/128'],
          maxMessageBytes: 1024 ** 2,
          maxChunks: 128,
          chunkTimeoutMs: 5000,
          maxReassemblyBytes: 64 * 1024 ** 2,
          idleTimeoutMs: 300_000,
          maxConnections: 1000,
          maxConnectionsPerAddress: 256,
          maxPendingBytes: 4 * 1024 ** 2,
          udpReceiveBufferBytes: 4 * 1024 ** 2,
          udpQueueSize: 10_000,
        },
        forward: {
          enabled: true,
          host: '127.0.0.1',
          port: 24224,
          tls: null,
          exchange: null,
          routingKey: '{tag}',
          user: null,
          allow: ['127.0.0.0/8', '::1/128'],
          sharedKey: null,
          selfHostname: null,
          maxFrameBytes: 16 * 1024 ** 2,
          maxEntriesPerFrame: 100_000,
          idleTimeoutMs: 300_000,
          maxConnections: 1000,
          maxConnectionsPerAddress: 256,
          maxPendingBytes: 4 * 1024 ** 2,
        },
        otlp: { enabled: true, exchange: null, routingKey: '{resource.service.name}.{severityText}', maxRecordsPerRequest: 100_000, http: { enabled: false, host: '127.0.0.1', port: 4318, tls: null, user: null, allow: ['127.0.0.0/8', '::1/128'] }, grpc: { enabled: false, host: '127.0.0.1', port: 4317, tls: null, user: null, allow: ['127.0.0.0/8', '::1/128'], maxMessageBytes: 4 * 1024 ** 2 } },
        loki: { enabled: true, exchange: null, routingKey: '{labels.service_name}.{labels.level}', maxEntriesPerRequest: 100_000 },
        elasticsearch: { enabled: true, exchange: null, maxDocumentsPerRequest: 100_000 },
        // One mapping (or none) is one entry: the one above.
        listeners: { http: [config.server.http], ndjson: [config.server.ndjson], amqp: [config.server.amqp], syslog: [config.server.syslog], gelf: [config.server.gelf], forward: [config.server.forward] },
        durability: { fsync: 'batch', intervalMs: 5, maxBatchBytes: 1024 ** 2 },
        limits: { maxBodyBytes: 16 * 1024 ** 2, maxEventBytes: 1024 ** 2, maxConnections: 10_000, maxOpenSegmentFiles: 64, maxEventsPerRequest: 10_000, maxEventDepth: 64, maxStreams: 10_000, maxGroups: 10_000, maxConsumers: 100_000, maxDedupIds: 1_000_000 },
        ingestErrors: { maxQueued: 10_000, maxRawBytes: 64 * 1024, maxBytes: 1024 ** 3 },
        alarms: { memoryHighWatermark: 0.6, memoryLimitBytes: null, diskFreeLimitBytes: 1024 ** 3 },
        log: { level: 'info' },
        shutdownTimeoutMs: 5000,
      },
      auth: {
        anonymous: 'loopback',
        users: [{ username: 'guest', password: 'guest', passwordHash: null, tags: ['administrator'], permissions: { configure: '.*', write: '.*', read: '.*' }, loopbackOnly: true }],
        apiKeys: [],
        maxFailureDelayMs: 5000,
        maxPendingLoginsPerAddress: 32,
        maxTrackedAddresses: 10_000,
      },
      exchanges: {},
      streams: {},
      bindings: [],
      groups: {},
      rateLimits: [],
      cluster: null,
    } satisfies Config)
  })
})

describe('defaults and overrides', () => {
  it('fills a minimal stream, exchange and group from the key table', () => {
    const config = parseConfig('exchanges:\n  e: {}\nstreams:\n  s:\ngroups:\n  g: { stream: s }\n', { env: {} })
    expect(config.exchanges['e']).toEqual({ name: 'e', type: 'direct', routingKey: null, alternate: null, unroutable: 'drop', dedup: null, dedupWindowMs: 120_000 })
    expect(config.streams['s']).toEqual({
      name: 's',
      retention: { maxAgeMs: 604_800_000, maxBytes: null, policy: 'limits' },
      segmentBytes: 64 * 1024 ** 2,
      segmentAgeMs: 604_800_000,
      fsync: 'batch',
      replicas: null,
    })
    expect(config.groups['g']).toMatchObject({ deadLetter: null, messageTtlMs: null, maxBacklog: null, deliveryRatePerSec: null, maxDeliveries: 5 })
  })

  it('applies per-stream fsync over the server policy, and `none` switches a limit off', () => {
    const text = 'server:\n  durability: { fsync: never }\nstreams:\n  audit: { fsync: always, retention: { maxAge: none, policy: interest } }\n  bulk: {}\n'
    const config = parseConfig(text, { env: {} })
    expect(config.streams['audit']?.fsync).toBe('always')
    expect(config.streams['audit']?.retention).toEqual({ maxAgeMs: null, maxBytes: null, policy: 'interest' })
    expect(config.streams['bulk']?.fsync).toBe('never')
  })

  it('parses every form of group start and dead-letter exchange', () => {
    const text = `streams:\n  s: {}\nexchanges:\n  dlx: { type: direct }\ngroups:
  a: { stream: s, start: latest }
  b: { stream: s, start: 42 }
  c: { stream: s, start: "2024-05-01T12:00:00Z", deadLetter: { exchange: dlx, routingKey: dead } }
  d: { stream: s, start: 2024-05-01, maxDeliveries: 0, deadLetter: { exchange: dlx } }
`
    const groups = parseConfig(text, { env: {} }).groups
    expect([groups['a']?.start, groups['b']?.start, groups['c']?.start, groups['d']?.start]).toEqual([
      { kind: 'latest' },
      { kind: 'offset', offset: 42 },
      { kind: 'time', timeMs: Date.UTC(2024, 4, 1, 12) },
      { kind: 'time', timeMs: Date.UTC(2024, 4, 1) },
    ])
    expect(groups['c']?.deadLetter).toEqual({ kind: 'exchange', exchange: 'dlx', routingKey: 'dead' })
    expect(groups['d']?.deadLetter).toEqual({ kind: 'exchange', exchange: 'dlx', routingKey: null })
    expect(groups['d']?.maxDeliveries).toBe(0)
  })

  it('shares settings through YAML anchors', () => {
    const text = 'streams:\n  a: &short { retention: { maxAge: 1h } }\n  b: *short\n'
    const streams = parseConfig(text, { env: {} }).streams
    expect([streams['a']?.retention.maxAgeMs, streams['b']?.retention.maxAgeMs]).toEqual([3_600_000, 3_600_000])
  })
})

describe('the Config object', () => {
  it('is deeply frozen', async () => {
    const config = await loadConfig(defaultConfigPath, {})
    const mutable = config as unknown as {
      server: { durability: { intervalMs: number } }
      streams: Record<string, { retention: { maxAgeMs: number } }>
      bindings: unknown[]
      groups: Record<string, unknown>
    }
    expect(Object.isFrozen(config)).toBe(true)
    expect(() => {
      mutable.server.durability.intervalMs = 0
    }).toThrow(TypeError)
    expect(() => {
      const appLogs = mutable.streams['app-logs']
      if (appLogs) appLogs.retention.maxAgeMs = 0
    }).toThrow(TypeError)
    expect(() => mutable.bindings.push({})).toThrow(TypeError)
    expect(() => {
      mutable.groups['new'] = {}
    }).toThrow(TypeError)
    expect(config.server.durability.intervalMs).toBe(5)
  })

  it('looks names up without reaching Object.prototype', () => {
    const config = parseConfig('streams:\n  __proto__: {}\n', { env: {} })
    expect(config.streams['constructor']).toBeUndefined()
    expect(config.streams['toString']).toBeUndefined()
    expect(Object.keys(config.streams)).toEqual(['__proto__'])
    expect(config.streams['__proto__']?.name).toBe('__proto__')
  })
})

describe('robustness', () => {
  it('never throws on arbitrary text, only reports problems', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const result = validateConfigText(text, { env: {} })
        if (!result.ok) expect(result.problems.length).toBeGreaterThan(0)
      }),
      { numRuns: 300 },
    )
  })

  it('never throws on YAML of the right keys with arbitrary values', () => {
    const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null))
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(fc.constantFrom('stream', 'exchange', 'key', 'type'), scalar))
    const section = fc.dictionary(fc.constantFrom('app-logs', 'errors', 'logs', 'x y'), fc.dictionary(fc.constantFrom('type', 'stream', 'retention', 'deadLetter', 'start', 'alternate'), value))
    fc.assert(
      fc.property(section, section, section, (exchanges, streams, groups) => {
        const text = JSON.stringify({ exchanges, streams, groups, bindings: [{ exchange: 'logs', toExchange: 'logs' }] })
        const result = validateConfigText(text, { env: {} })
        expect(typeof result.ok).toBe('boolean')
      }),
      { numRuns: 200 },
    )
  })
})
