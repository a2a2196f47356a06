import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { loadConfig, parseConfig, validateConfigText } from '../../src/config/index.js'
import { SluiceError } from '../../src/errors.js'

const brokenPath = new URL('./fixtures/broken.yaml', import.meta.url)

// Every problem in fixtures/broken.yaml, in file order, with the line and column of the value
// (or key) at fault. One start must list all of them.
const expected = [
  'server.http.prot (line 4, col 28): unknown key; did you mean `port`?',
  'server.durability.fsync (line 5, col 24): "sometimes" is not one of always, batch, never',
  'server.durability.interval (line 5, col 45): "5 seconds" is not a duration, e.g. 5ms',
  'server.limits.maxBodySize (line 7, col 18): "512b" is below the minimum of 1kb',
  'server.limits.maxConnections (line 8, col 21): -1 is below the minimum of 1',
  'server.alarms.memoryHighWatermark (line 9, col 34): 1.5 is above the maximum of 1',
  'exchanges.logs.type (line 11, col 17): "topics" is not one of direct, fanout, topic, headers; did you mean `topic`?',
  'exchanges.logs.routingKey (line 11, col 37): "{service.{level}" is not a routing-key template: placeholders cannot nest',
  'exchanges.my exchange (line 12, col 3): "my exchange" is not a valid exchange name: use letters, digits, ".", "_", "-" and "@", at most 200 characters, not starting with ".", "-" or "@"',
  'streams.app-logs.retention.maxAge (line 15, col 26): "7 days" is not a duration, e.g. 7d',
  'streams.app-logs.segmentSzie (line 16, col 5): unknown key; did you mean `segmentSize`?',
  'streams.errors.segmentSize (line 17, col 26): "huge" is not a size, e.g. 64mb',
  'bindings[1].mach (line 20, col 55): unknown key; did you mean `match`?',
  'bindings[2] (line 21, col 5): expected a mapping of exchange, stream, toExchange, key, match, headers, got a list',
  'groups.indexer.dispatch (line 25, col 15): "roundrobin" is not one of fair, round-robin; did you mean `round-robin`?',
  'groups.indexer.prefetch (line 26, col 15): 0 is below the minimum of 1',
  'groups.indexer.ackTimeout (line 27, col 17): "soon" is not a duration, e.g. 30s',
  'groups.indexer.retryBackoff.multiplier (line 28, col 55): 0.5 is below the minimum of 1',
  'groups.indexer.retryBackoff.jitter (line 28, col 68): 2 is above the maximum of 1',
  'groups.indexer.deliveryRate (line 29, col 19): "fast" is not a rate, e.g. 5000/s',
  'groups.indexer.start (line 30, col 12): "yesterday" is not earliest, latest, last, an offset or an ISO time',
  'groups.reporter.stream (line 31, col 3): is required but missing',
  'rateLimits[0].match.listener (line 34, col 26): "web" is not one of http, ndjson, amqp, syslog, gelf, forward, otlp-http, otlp-grpc',
  'rateLimits[0].match.remote (line 34, col 39): "10.0.0.0/33" is not an IP address or CIDR block, e.g. 10.0.0.0/8',
  'rateLimits[0].events (line 34, col 62): "10/fortnight" is not a rate, e.g. 5000/s',
  'logging (line 35, col 1): unknown key; expected one of server, auth, exchanges, streams, bindings, groups, rateLimits, cluster',
]

const problemsOf = (text: string): readonly string[] => {
  const result = validateConfigText(text, { env: {} })
  return result.ok ? [] : result.problems
}

describe('a broken file', () => {
  it('lists every problem with its path, line and column', async () => {
    expect(problemsOf(await readFile(brokenPath, 'utf8'))).toEqual(expected)
  })

  it('throws SLUICE_ERR_CONFIG carrying the same problems', async () => {
    const text = await readFile(brokenPath, 'utf8')
    let thrown: unknown
    try {
      parseConfig(text, { env: {} })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(SluiceError)
    const error = thrown as SluiceError
    expect(error.code).toBe('SLUICE_ERR_CONFIG')
    expect(error.details).toEqual({ problems: expected })
    expect(error.message).toBe(`invalid configuration:\n  ${expected.join('\n  ')}`)
  })

  it('names the file when loaded from disk', async () => {
    const path = brokenPath.pathname
    await expect(loadConfig(path, {})).rejects.toMatchObject({
      code: 'SLUICE_ERR_CONFIG',
      message: `invalid configuration in ${path}:\n  ${expected.join('\n  ')}`,
      details: { source: path, problems: expected },
    })
  })

  it('reports a file that cannot be read as a startup error', async () => {
    await expect(loadConfig('/nonexistent/sluice.yaml', {})).rejects.toMatchObject({ code: 'SLUICE_ERR_STARTUP' })
  })
})

describe('YAML syntax', () => {
  it('reports syntax errors with their position instead of validating a half-read file', () => {
    expect(problemsOf('server:\n  http: { host: 127.0.0.1\nstreams: {}\n')).toEqual([
      'line 3, col 1: YAML syntax: Flow map in block collection must be sufficiently indented and end with a }',
    ])
  })

  it('rejects a name declared twice', () => {
    expect(problemsOf('streams:\n  app-logs: {}\n  app-logs: {}\n')).toEqual(['line 3, col 3: YAML syntax: Map keys must be unique'])
  })

  it('rejects a file that is not a mapping', () => {
    expect(problemsOf('- server\n')).toEqual([
      'line 1, col 1: expected a mapping of server, auth, exchanges, streams, bindings, groups, rateLimits, cluster, got a list',
    ])
  })

  it('rejects a section of the wrong shape', () => {
    expect(problemsOf('streams: [app-logs]\nbindings: {}\nserver: 7400\n')).toEqual([
      'streams (line 1, col 10): expected a mapping of stream names to settings, got a list',
      'bindings (line 2, col 11): expected a list, got a mapping',
      'server (line 3, col 9): expected a mapping of dataDir, shutdownTimeout, http, ndjson, amqp, syslog, gelf, forward, otlp, loki, elasticsearch, durability, limits, ingestErrors, alarms, log, got 7400',
    ])
  })
})

describe('unknown keys', () => {
  it('suggests the closest known key', () => {
    expect(problemsOf('groups:\n  g:\n    stream: s\n    ackTimout: 30s\n    maxDelivery: 3\nstreams:\n  s: {}\n')).toEqual([
      'groups.g.ackTimout (line 4, col 5): unknown key; did you mean `ackTimeout`?',
      'groups.g.maxDelivery (line 5, col 5): unknown key; did you mean `maxDeliveries`?',
    ])
  })

  it('lists the known keys when nothing is close', () => {
    expect(problemsOf('server:\n  durability: { color: blue }\n')).toEqual([
      'server.durability.color (line 2, col 17): unknown key; expected one of fsync, interval, maxBatchBytes',
    ])
  })

  it('suggests the closest value of an enumeration', () => {
    expect(problemsOf('server:\n  durability: { fsync: allways }\n')).toEqual([
      'server.durability.fsync (line 2, col 24): "allways" is not one of always, batch, never; did you mean `always`?',
    ])
  })
})

describe('names', () => {
  it('allows letters, digits, dot, underscore, dash and at (Celery names queues worker@host.celery.pidbox)', () => {
    const config = parseConfig('streams:\n  app_logs.v2-eu: {}\n  "2024": {}\n  w1@host.celery.pidbox: {}\n', { env: {} })
    expect(Object.keys(config.streams)).toEqual(['2024', 'app_logs.v2-eu', 'w1@host.celery.pidbox'])
  })

  it.each(['..', '.hidden', '-rf', '@x', 'a/b', 'x y', 'é', 'a'.repeat(201)])('rejects %j, which could not be a directory name', (name) => {
    const rule = 'use letters, digits, ".", "_", "-" and "@", at most 200 characters, not starting with ".", "-" or "@"'
    expect(problemsOf(`streams:\n  ${JSON.stringify(name)}: {}\n`)).toEqual([
      `streams.${name} (line 2, col 3): ${JSON.stringify(name)} is not a valid stream name: ${rule}`,
    ])
  })

  it('accepts the longest allowed name', () => {
    const name = 'a'.repeat(200)
    expect(Object.keys(parseConfig(`streams:\n  ${name}: {}\n`, { env: {} }).streams)).toEqual([name])
  })
})
