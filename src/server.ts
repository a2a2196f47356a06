import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config/index.js'
import type { StreamConfig } from './config/index.js'
import { GroupRegistry, Redriver } from './consumers/index.js'
import { shielded } from './background.js'
import { Alarms } from './flow/alarms.js'
import { RateLimiter } from './flow/rate-limiter.js'
import { Metrics } from './metrics/index.js'
import { IngestErrors, ingestErrorsStream } from './ingest/ingest-errors.js'
import { amqpListener } from './ingest/amqp/server.js'
import { builtinExchanges, defaultExchangeName } from './ingest/amqp/vhost.js'
import { ndjsonListener } from './ingest/ndjson/listener.js'
import { SyslogUdpListener, syslogTcpListener } from './ingest/syslog/listener.js'
import { ConnectionBudget, type IngestListener } from './ingest/tcp/server.js'
import { errors } from './errors.js'
import { buildHttpApp, httpListenerView } from './ingest/http/app.js'
import type { BrokerView } from './ingest/http/routes.js'
import type { Logger } from './logger.js'
import { metaDir, openMeta, type MetaStore } from './meta/index.js'
import { metaReserveBytes } from './meta/reserve.js'
import { Router, type BindingDef, type ExchangeDef } from './router/index.js'
import { Catalog } from './streams/catalog.js'
import { DedupWindow } from './streams/dedup-window.js'
import { BrokerPublisher } from './streams/publisher.js'
import { StreamRates } from './streams/rates.js'
import { StreamRegistry } from './streams/registry.js'
import { SegmentFilePool } from './log/index.js'

const retentionCheckMs = 30_000
const dedupExpireEveryMs = 30_000
const dedupExpireBatch = 100_000
/** Event ids and idempotency keys held in memory for the dedup windows of all exchanges. */
export const dedupIdsMax = 1_000_000

export interface SluiceServer {
  /** Base URL of the HTTP API once listening, e.g. http://127.0.0.1:7400. */
  readonly httpUrl: string
  readonly streams: StreamRegistry
  readonly meta: MetaStore
  readonly publisher: BrokerPublisher
  readonly groups: GroupRegistry
  readonly listeners: readonly IngestListener[]
  readonly alarms: Alarms
  stop(): Promise<void>
}

/** Event ids are kept per stream, idempotency keys per exchange; run-time ones included. */
const dedupScopes = (streams: StreamRegistry, publisher: BrokerPublisher): string[] => [...new Set([...streams.all().map((s) => s.name), ...publisher.exchangeConfigs().map((e) => e.name)])]

/**
 * The streams to open: the configured ones, plus ingest-errors (where the TCP doors set aside
 * what they cannot parse) unless the configuration declares it with its own settings.
 */
function streamConfigs(config: Config): Record<string, StreamConfig> {
  const out: Record<string, StreamConfig> = { ...config.streams }
  out[ingestErrorsStream] ??= {
    name: ingestErrorsStream,
    retention: { maxAgeMs: 7 * 24 * 3600 * 1000, maxBytes: 1024 ** 3, policy: 'limits' },
    segmentBytes: 64 * 1024 * 1024,
    segmentAgeMs: 24 * 3600 * 1000,
    fsync: config.server.durability.fsync,
  }
  return out
}

/**
 * Fails with the real reason when the data dir cannot be written: a read-only mount otherwise
 * surfaces as a misleading ENOENT from a recursive mkdir deep inside LevelDB.
 */
async function checkWritable(dataDir: string): Promise<void> {
  const probe = join(dataDir, `.write-check-${process.pid}`)
  try {
    await mkdir(dataDir, { recursive: true })
    await writeFile(probe, '')
    await rm(probe, { force: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'EROFS' ? 'it is on a read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOSPC' ? 'the disk is full' : (err as Error).message
    throw new Error(`it is not writable: ${why}${code === undefined ? '' : ` (${code})`}`)
  }
}

export function routerFromConfig(config: Config): Router {
  const exchanges: ExchangeDef[] = Object.values(config.exchanges).map((ex) => ({
    name: ex.name,
    type: ex.type,
    unroutable: ex.unroutable,
    ...(ex.alternate !== null ? { alternate: ex.alternate } : {}),
  }))
  const bindings: BindingDef[] = config.bindings.map((b) => {
    const isHeaders = config.exchanges[b.exchange]?.type === 'headers'
    return {
      exchange: b.exchange,
      ...(b.destination.kind === 'stream' ? { stream: b.destination.name } : { toExchange: b.destination.name }),
      key: b.key,
      ...(isHeaders ? { match: b.match, headers: b.headers } : {}),
    }
  })
  return new Router(exchanges, bindings)
}

/**
 * Composition root: Config in, running broker out. HTTP listens first so /healthz answers and
 * /readyz says "recovering" while the logs open; the data routes come up once recovery is done.
 */
export async function startServer(config: Config, logger: Logger): Promise<SluiceServer> {
  let broker: BrokerView | undefined
  const { server } = config
  const metrics = new Metrics()
  // server.limits.maxConnections: one count of open connections across every door, HTTP included.
  const tcpBudget = new ConnectionBudget(server.limits.maxConnections)
  const app: FastifyInstance = buildHttpApp(
    {
      getBroker: () => broker,
      metrics,
      http: server.http,
      limits: server.limits,
      budget: tcpBudget,
    },
    (err) => logger.error({ err }, 'internal error in an HTTP request'),
  )
  try {
    await app.listen({ host: server.http.host, port: server.http.port })
  } catch (err) {
    throw errors.startup(`HTTP listener on ${server.http.host}:${server.http.port}: ${(err as Error).message}`, err)
  }
  const address = app.server.address()
  const httpUrl = typeof address === 'object' && address !== null ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address)
  logger.info({ url: httpUrl }, 'http listener up')

  let meta: MetaStore | undefined
  let streams: StreamRegistry | undefined
  let publisher: BrokerPublisher
  let dedup: DedupWindow
  let groups: GroupRegistry
  let catalog: Catalog
  let redriver: Redriver
  const router = routerFromConfig(config)
  // Every stream's sealed segments share one bounded pool of read handles.
  const segmentFiles = new SegmentFilePool(server.limits.maxOpenSegmentFiles)
  // Until the alarms exist (they start after recovery), a failed write is only logged by its log.
  let onStreamWriteError: (err: unknown, stream: string) => void = () => undefined
  try {
    await checkWritable(server.dataDir)
    // The store keeps a reserve beside it so it can start on a full disk.
    meta = await openMeta(metaDir(server.dataDir), { reserveBytes: metaReserveBytes })
    streams = await StreamRegistry.open(server.dataDir, streamConfigs(config), server.durability, logger, (name) => metrics.logObserver(name), {
      files: segmentFiles,
      onWriteError: (err, stream) => onStreamWriteError(err, stream),
    })
    dedup = new DedupWindow(meta, dedupIdsMax)
    publisher = new BrokerPublisher(config, router, streams, meta, dedup)
    // Run-time definitions (AMQP declarations) come back before the dedup window loads and
    // before groups open, so groups on run-time streams and exchanges find them.
    catalog = await Catalog.open({
      config,
      router,
      publisher,
      streams,
      meta,
      logger,
      observer: (name) => metrics.logObserver(name),
      ...(server.amqp.enabled ? { builtins: builtinExchanges, defaultExchange: defaultExchangeName } : {}),
    })
    const windowMs = Math.max(0, ...publisher.exchangeConfigs().map((e) => e.dedupWindowMs))
    const logs = new Map(streams.all().map((s) => [s.name, s.log]))
    const loaded = await dedup.load(dedupScopes(streams, publisher), logs, windowMs, Date.now())
    logger.info(loaded, 'dedup window loaded')
    // Before groups open: a group may dead-letter as soon as it opens, at offsets the clamp must
    // not mistake for redriven ones.
    redriver = new Redriver(meta, publisher)
    const logEnds = streams
    const droppedRedriven = await redriver.load((name) => logEnds.get(name)?.log.endOffset)
    if (droppedRedriven > 0) logger.warn({ dropped: droppedRedriven }, 'redrive marks past the end of their logs dropped')
    const cat = catalog
    groups = await GroupRegistry.open(config, streams, meta, publisher, logger, () => cat.exchanges().map((e) => e.config))
    const g = groups
    publisher.admission = (stream, events) => g.admit(stream, events)
  } catch (err) {
    await app.close()
    await streams?.close()
    await meta?.close()
    throw errors.startup(`opening data dir ${server.dataDir}: ${(err as Error).message}`, err)
  }
  const rates = new StreamRates(streams)
  rates.start()
  const g2 = groups
  streams.startRetention(
    retentionCheckMs,
    (err, stream) => logger.error({ err, stream }, 'retention failed'),
    (stream) => g2.settledFloor(stream),
  )
  const m = meta
  const openStreamsForDedup = streams
  const expireTimer = setInterval(
    shielded(
      'dedup.expire',
      () => dedup.expire(dedupScopes(openStreamsForDedup, publisher), Date.now(), dedupExpireBatch, (ops) => m.write(ops, { sync: false })),
      (err) => logger.error({ err }, 'dedup expiry failed'),
    ),
    dedupExpireEveryMs,
  )
  expireTimer.unref()
  const ingestErrors = new IngestErrors(streams.get(ingestErrorsStream))
  const limiter = new RateLimiter(config.rateLimits)
  publisher.limiter = limiter
  const alarmWatchers = new Set<(blocked: boolean) => void>()
  const alarms: Alarms = new Alarms({
    ...server.alarms,
    dataDir: server.dataDir,
    onChange: (raised, state) => {
      if (raised) logger.warn(state, 'resource alarm raised: publishers blocked')
      else logger.info(state, 'resource alarm cleared')
      for (const w of alarmWatchers) w(alarms.blocked)
    },
    onError: (err, task) => logger.error({ err, task }, 'resource alarm probe failed; the alarm keeps its last state'),
  })
  await alarms.check()
  alarms.start()
  const alarmRetryMs = 5000
  publisher.gate = (bytes) => {
    if (alarms.blocked) throw errors.alarm(alarms.active().map((a) => a.name), alarmRetryMs)
    const short = alarms.admitDisk(bytes)
    if (short !== undefined) throw errors.diskSpace(short.requestBytes, short.freeBytes, short.limitBytes, alarmRetryMs)
  }
  // A stream that found the disk full raises the disk alarm at once; its log has rolled back.
  onStreamWriteError = (err) => alarms.noteWriteError(err)
  const listeners: IngestListener[] = []
  try {
    if (server.ndjson.enabled && server.ndjson.exchange !== null) listeners.push(ndjsonListener(server.ndjson, server.ndjson.exchange, publisher, ingestErrors, limiter, logger, tcpBudget))
    if (server.syslog.enabled && server.syslog.exchange !== null) {
      listeners.push(syslogTcpListener(server.syslog, server.syslog.exchange, publisher, ingestErrors, limiter, logger, tcpBudget))
      if (server.syslog.udp) listeners.push(new SyslogUdpListener(server.syslog, server.syslog.exchange, publisher, ingestErrors, logger))
    }
    if (server.amqp.enabled) {
      listeners.push(
        await amqpListener({
          config: server.amqp,
          users: config.auth.users,
          maxConnections: server.limits.maxConnections,
          budget: tcpBudget,
          bodySizeMax: server.limits.maxEventBytes,
          logger,
          vhost: { catalog, groups, publisher, router, streams, limiter, logger, blocked: () => alarms.blocked },
          onAlarm: (fn) => {
            alarmWatchers.add(fn)
            return () => alarmWatchers.delete(fn)
          },
        }),
      )
    }
    for (const l of listeners) await l.listen()
  } catch (err) {
    for (const l of listeners) await l.close().catch(() => undefined)
    alarms.stop()
    await app.close()
    await groups.close()
    await streams.close()
    await meta.close()
    throw errors.startup(`listener: ${(err as Error).message}`, err)
  }
  broker = { config, publisher, streams, router, rates, groups, redriver, listeners, ingestErrors, limiter, alarms, startedAt: Date.now() }
  metrics.bind({ publisher, streams, groups, limiter, alarms, listeners: [httpListenerView(app), ...listeners], ingestErrors })
  logger.info({ dataDir: server.dataDir, streams: streams.all().map((s) => ({ name: s.name, ...s.log.stats() })) }, 'ready')

  const openStreams = streams
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Stop taking requests and let in-flight confirms finish, then sync and close the logs.
      // New HTTP requests get our 503 not_ready with Retry-After; those already running hold
      // their own reference to the broker and finish.
      broker = undefined
      alarms.stop()
      await Promise.all(listeners.map((l) => l.close()))
      await app.close()
      await ingestErrors.drain()
      clearInterval(expireTimer)
      rates.stop()
      await groups.close()
      await openStreams.close()
      await m.close()
      logger.info({}, 'stopped')
    })()
    return stopping
  }
  return { httpUrl, streams, meta, publisher, groups, listeners, alarms, stop }
}
