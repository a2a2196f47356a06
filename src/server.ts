import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Server as NetServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config/index.js'
import type { HttpListenerConfig, ListenerConfig, ServerConfig, StreamConfig } from './config/index.js'
import { GroupRegistry, Redriver } from './consumers/index.js'
import { shielded } from './background.js'
import { Authenticator, Authorizer } from './auth/index.js'
import { Alarms } from './flow/alarms.js'
import { RateLimiter } from './flow/rate-limiter.js'
import { Metrics } from './metrics/index.js'
import { IngestErrors, ingestErrorsStream, ingestErrorsStreamConfig } from './ingest/ingest-errors.js'
import { amqpListener, startAmqpVhost } from './ingest/amqp/server.js'
import { queueAdmin } from './ingest/amqp/queue-admin.js'
import type { QueueAdmin } from './ingest/http/definitions.js'
import { builtinExchanges, defaultExchangeName } from './ingest/amqp/vhost.js'
import { DoorAccess } from './ingest/door-access.js'
import { forwardListener } from './ingest/forward/listener.js'
import { OtlpHttpListener } from './ingest/otlp/http.js'
import { gelfTcpListener, gelfUdpListener } from './ingest/gelf/listener.js'
import { ndjsonListener } from './ingest/ndjson/listener.js'
import { syslogTcpListener, syslogUdpListener } from './ingest/syslog/listener.js'
import { listenIpv6Loopback, primaryHost } from './ingest/tcp/loopback.js'
import { ConnectionBudget, newCounters, oneByName, type IngestListener } from './ingest/tcp/server.js'
import { TlsReloader, type TlsReloadResult } from './ingest/tcp/tls.js'
import { errors } from './errors.js'
import { hitLimit } from './limits.js'
import { buildHttpApp, httpListenerView } from './ingest/http/app.js'
import type { BrokerView } from './ingest/http/routes.js'
import { Lifecycle, type Part } from './lifecycle.js'
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
import type { Cluster } from './cluster/index.js'
import { sluiceVersion } from './version.js'

const retentionCheckMs = 30_000
const dedupExpireEveryMs = 30_000
const dedupExpireBatch = 100_000

export interface SluiceServer {
  /** Base URL of the HTTP API once listening, e.g. http://127.0.0.1:7400. */
  readonly httpUrl: string
  /** Every HTTP entry's base URL, in file order (https:// for a TLS entry); the first is httpUrl. */
  readonly httpUrls: readonly string[]
  readonly streams: StreamRegistry
  readonly meta: MetaStore
  readonly publisher: BrokerPublisher
  readonly groups: GroupRegistry
  readonly listeners: readonly IngestListener[]
  readonly alarms: Alarms
  /** Reads every TLS listener's files again (what SIGHUP does); one that fails keeps its certificate. */
  reloadTls(): TlsReloadResult[]
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
  out[ingestErrorsStream] ??= ingestErrorsStreamConfig(config.server)
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

/** A part that hands something to the parts after it. */
type Opened<T> = Part & T

/** The metadata store; its close releases the store's lock on the data dir. */
async function openMetaStore(dataDir: string): Promise<Opened<{ meta: MetaStore }>> {
  await checkWritable(dataDir)
  // The store keeps a reserve beside it so it can start on a full disk.
  const meta = await openMeta(metaDir(dataDir), { reserveBytes: metaReserveBytes })
  return { meta, close: () => meta.close() }
}

interface StreamDeps {
  readonly logger: Logger
  readonly metrics: Metrics
  readonly onWriteError: (err: unknown, stream: string) => void
}

async function openStreams(config: Config, deps: StreamDeps): Promise<Opened<{ streams: StreamRegistry }>> {
  const { server } = config
  // Every stream's sealed segments share one bounded pool of read handles.
  const files = new SegmentFilePool(server.limits.maxOpenSegmentFiles)
  const streams = await StreamRegistry.open(server.dataDir, streamConfigs(config), server.durability, deps.logger, (name) => deps.metrics.logObserver(name), {
    files,
    onWriteError: deps.onWriteError,
  })
  return { streams, close: () => streams.close() }
}

interface Catalogued {
  readonly router: Router
  readonly dedup: DedupWindow
  readonly publisher: BrokerPublisher
  readonly catalog: Catalog
  readonly redriver: Redriver
}

/** Routing, the dedup window, run-time definitions and redrive marks: memory only, nothing to close. */
async function openCatalog(config: Config, deps: { meta: MetaStore; streams: StreamRegistry; logger: Logger; metrics: Metrics }): Promise<Opened<Catalogued>> {
  const { meta, streams, logger, metrics } = deps
  const router = routerFromConfig(config)
  const dedup = new DedupWindow(meta, config.server.limits.maxDedupIds)
  const publisher = new BrokerPublisher(config, router, streams, meta, dedup)
  // Run-time definitions (AMQP declarations) come back before the dedup window loads and
  // before groups open, so groups on run-time streams and exchanges find them.
  const catalog = await Catalog.open({
    config,
    router,
    publisher,
    streams,
    meta,
    logger,
    observer: (name) => metrics.logObserver(name),
    ...(config.server.listeners.amqp.some((e) => e.enabled) ? { builtins: builtinExchanges, defaultExchange: defaultExchangeName } : {}),
  })
  const windowMs = Math.max(0, ...publisher.exchangeConfigs().map((e) => e.dedupWindowMs))
  const logs = new Map(streams.all().map((s) => [s.name, s.log]))
  const loaded = await dedup.load(dedupScopes(streams, publisher), logs, windowMs, Date.now())
  logger.info(loaded, 'dedup window loaded')
  // Before groups open: a group may dead-letter as soon as it opens, at offsets the clamp must
  // not mistake for redriven ones.
  const redriver = new Redriver(meta, publisher)
  const droppedRedriven = await redriver.load((name) => streams.get(name)?.log.endOffset)
  if (droppedRedriven > 0) logger.warn({ dropped: droppedRedriven }, 'redrive marks past the end of their logs dropped')
  return { router, dedup, publisher, catalog, redriver, close: () => undefined }
}

async function openGroups(config: Config, deps: { streams: StreamRegistry; meta: MetaStore; publisher: BrokerPublisher; catalog: Catalog; logger: Logger }): Promise<Opened<{ groups: GroupRegistry }>> {
  const { streams, meta, publisher, catalog, logger } = deps
  const groups = await GroupRegistry.open(config, streams, meta, publisher, logger, () => catalog.exchanges().map((e) => e.config))
  publisher.admission = (stream, records) => groups.admit(stream, records)
  return { groups, close: () => groups.close() }
}

/** Stream rates, retention and dedup expiry: timers, all cleared at close. */
function openBackground(deps: { streams: StreamRegistry; groups: GroupRegistry; meta: MetaStore; dedup: DedupWindow; publisher: BrokerPublisher; logger: Logger }): Opened<{ rates: StreamRates }> {
  const { streams, groups, meta, dedup, publisher, logger } = deps
  const rates = new StreamRates(streams)
  rates.start()
  streams.startRetention(
    retentionCheckMs,
    (err, stream) => logger.error({ err, stream }, 'retention failed'),
    (stream) => groups.settledFloor(stream),
  )
  const expireTimer = setInterval(
    shielded(
      'dedup.expire',
      () => dedup.expire(dedupScopes(streams, publisher), Date.now(), dedupExpireBatch, (ops) => meta.write(ops, { sync: false })),
      (err) => logger.error({ err }, 'dedup expiry failed'),
    ),
    dedupExpireEveryMs,
  )
  expireTimer.unref()
  return {
    rates,
    close: () => {
      clearInterval(expireTimer)
      streams.stopRetention()
      rates.stop()
    },
  }
}

/** Memory and disk alarms, and the gate they put on every publish. */
async function openAlarms(server: ServerConfig, deps: { publisher: BrokerPublisher; logger: Logger }): Promise<Opened<{ alarms: Alarms; onAlarm: (fn: (blocked: boolean) => void) => () => void }>> {
  const { publisher, logger } = deps
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
  const onAlarm = (fn: (blocked: boolean) => void): (() => void) => {
    alarmWatchers.add(fn)
    return () => alarmWatchers.delete(fn)
  }
  return { alarms, onAlarm, close: () => alarms.stop() }
}

/** One door: made, then listening. A door that cannot listen lets go of what it took and says where. */
async function openDoor(name: string, at: ListenerConfig, make: () => IngestListener | Promise<IngestListener>): Promise<Opened<{ listener: IngestListener }>> {
  let listener: IngestListener
  try {
    listener = await make()
  } catch (err) {
    // A TLS file gone bad since validation, most likely.
    throw errors.startup(`${name} listener on ${at.host}:${at.port}: ${(err as Error).message}`, err)
  }
  try {
    await listener.listen()
  } catch (err) {
    await listener.close().catch(() => undefined)
    throw errors.startup(`${name} listener on ${at.host}:${at.port}: ${(err as Error).message}`, err)
  }
  return { listener, close: () => listener.close() }
}

/**
 * Composition root: Config in, running broker out, as a stack of parts (src/lifecycle.ts), each
 * opened with its slice of the configuration. The HTTP door listens first so /healthz answers and
 * /readyz says "recovering" while the logs open; its data routes come up last, once every other
 * door listens. Parts close in reverse order, on a failed start as on a stop: the data routes
 * first (long polls answered while their groups are still open), then the other doors, alarms and
 * timers, the groups, the logs, the store and its lock, and at last the HTTP listener.
 */
export async function startServer(config: Config, logger: Logger): Promise<SluiceServer> {
  const parts = new Lifecycle(logger)
  try {
    return await openParts(config, logger, parts)
  } catch (err) {
    // Everything opened is let go, so this process can start again on the same data dir.
    await parts.close()
    throw err
  }
}

async function openParts(config: Config, logger: Logger, parts: Lifecycle): Promise<SluiceServer> {
  let broker: BrokerView | undefined
  const { server } = config
  const metrics = new Metrics()
  // One authenticator and one authorizer for every door, so a user means the same everywhere.
  const authenticator = new Authenticator(config.auth, { logger })
  const authorizer = new Authorizer()
  // server.limits.maxConnections: one count of open connections across every door, HTTP included.
  const tcpBudget = new ConnectionBudget(server.limits.maxConnections)
  // Every TLS listener registers here, so one SIGHUP reloads every certificate.
  const tlsReloader = new TlsReloader(logger)
  // Each HTTP entry is an app of its own (its own limits, its own certificate); the first is
  // server.http, as with one entry. The routes read their bounds from the configuration's
  // server.http, so each other entry's app sees a configuration whose server.http is its entry.
  const httpEntries: readonly HttpListenerConfig[] = [server.http, ...server.listeners.http.slice(1).filter((e) => e.enabled)]
  const entryBrokers = new Map<HttpListenerConfig, BrokerView>()
  const httpCounters = newCounters()
  const apps: FastifyInstance[] = []
  /** The ::1 sockets of loopback entries, which hand their connections to the apps' servers. */
  const ipv6Twins: NetServer[] = []
  // Both HTTP parts close the apps: the data routes' close on a stop, the listener's when a start
  // fails before the routes came up.
  let appsClosed: Promise<void> | undefined
  const closeApp = (): Promise<void> =>
    (appsClosed ??= Promise.all([...ipv6Twins.map((t) => new Promise<void>((r) => t.close(() => r()))), ...apps.map((a) => a.close())]).then(() => undefined))
  const httpUrls: string[] = []
  await parts.open('http listener', async () => {
    for (const http of httpEntries) {
      try {
        const app = buildHttpApp(
          {
            getBroker: () => (broker === undefined ? undefined : (entryBrokers.get(http) ?? broker)),
            metrics,
            http,
            limits: server.limits,
            budget: tcpBudget,
            access: { authenticator, authorizer, openMetrics: http.openMetrics, clusterSecret: config.cluster?.secret },
            tlsReloader,
            counters: httpCounters,
          },
          (err) => logger.error({ err }, 'internal error in an HTTP request'),
        )
        apps.push(app)
        await app.listen({ host: primaryHost(http.host), port: http.port })
        const a = app.server.address()
        const twin = await listenIpv6Loopback(app.server, { host: http.host, port: typeof a === 'object' && a !== null ? a.port : http.port, name: 'http', logger })
        if (twin !== undefined) ipv6Twins.push(twin)
        const scheme = http.tls === null ? 'http' : 'https'
        httpUrls.push(typeof a === 'object' && a !== null ? `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a))
      } catch (err) {
        await closeApp().catch(() => undefined)
        throw errors.startup(`HTTP listener on ${http.host}:${http.port}: ${(err as Error).message}`, err)
      }
    }
    return { close: closeApp }
  })
  const app = apps[0]!
  const httpUrl = httpUrls[0]!
  for (const url of httpUrls) logger.info({ url }, 'http listener up')

  const dataPart = <P extends Part>(name: string, open: () => Promise<P>): Promise<P> =>
    parts.open(name, open).catch((err: unknown) => {
      throw errors.startup(`opening data dir ${server.dataDir}: ${(err as Error).message}`, err)
    })
  // Until the alarms exist (they start after recovery), a failed write is only logged by its log.
  let onStreamWriteError: (err: unknown, stream: string) => void = () => undefined
  const { meta } = await dataPart('meta store', () => openMetaStore(server.dataDir))
  const { streams } = await dataPart('streams', () => openStreams(config, { logger, metrics, onWriteError: (err, stream) => onStreamWriteError(err, stream) }))
  const { router, dedup, publisher, catalog, redriver } = await dataPart('catalog', () => openCatalog(config, { meta, streams, logger, metrics }))
  const { groups } = await dataPart('groups', () => openGroups(config, { streams, meta, publisher, catalog, logger }))
  const { rates } = await parts.open('background', () => openBackground({ streams, groups, meta, dedup, publisher, logger }))
  const limiter = new RateLimiter(config.rateLimits)
  publisher.limiter = limiter
  const { alarms, onAlarm } = await parts.open('alarms', () => openAlarms(server, { publisher, logger }))
  // A stream that found the disk full raises the disk alarm at once; its log has rolled back.
  onStreamWriteError = (err) => alarms.noteWriteError(err)
  // What the doors set aside is written before the streams close.
  const ingestErrors = new IngestErrors(streams.get(ingestErrorsStream), server.ingestErrors)
  await parts.open('ingest errors', () => ({ close: () => ingestErrors.drain() }))

  // Cluster mode: made now, so what the doors take while the node joins waits for placement
  // (refused, retryable); joined once every door listens, so the node record names their ports;
  // left first on a stop, so the lease is revoked while the node can still say so.
  let cluster: Cluster | undefined
  const clusterConfig = config.cluster
  let amqpPort: number | null = null
  if (clusterConfig !== null) {
    // Loaded only in cluster mode: etcd's client and its protocol definitions are a large part of a
    // single node's start-up otherwise.
    const { Cluster } = await import('./cluster/index.js')
    ;({ cluster } = await parts.open('cluster', () => {
      const made = Cluster.create({
        config: clusterConfig,
        version: sluiceVersion(),
        logger,
        ports: () => ({ http: Number(new URL(httpUrl).port), httpTls: httpUrl.startsWith('https:'), amqp: amqpPort }),
        fileStreams: () => Object.values(config.streams).map((s) => ({ name: s.name, replicas: s.replicas })),
        storedBytes: () => streams.all().reduce((sum, s) => sum + s.log.stats().bytes, 0),
        onFenced: (fenced) => alarms.fence(fenced),
        store: (req) => publisher.publishForwarded(req),
        observeForward: metrics.forwardObserver(),
        catalog,
        groups,
        streams,
        publisher,
        meta,
        tlsReloader,
      })
      // The placement stays after the stop: the forwarder then refuses (retryable), so what the
      // groups dead-letter while closing is not stored in this node's copy of another's stream.
      publisher.placement = made.forwarder
      publisher.replication = made.replicator
      // Groups' state travels with their streams' copies, and reads stop at the watermark; both
      // pass straight through for a stream of one copy (the factor, or its own replicas).
      groups.journal = made.replicator
      streams.visibility = made.replicator
      catalog.mirror = made.definitions
      groups.mirror = made.definitions
      return {
        cluster: made,
        close: () => {
          catalog.mirror = undefined
          groups.mirror = undefined
          groups.journal = undefined
          streams.visibility = undefined
          return made.stop()
        },
      }
    }))
  }

  const listeners: IngestListener[] = []
  // The stream doors have no credentials in their protocols: each listener's `allow` and `user`.
  const doorAccess = (name: string, entry: { readonly user: string | null; readonly allow: readonly string[] }, exchange: string): DoorAccess =>
    new DoorAccess({ door: name, exchange, user: entry.user, userLoopbackOnly: config.auth.users.find((u) => u.username === entry.user)?.loopbackOnly, allow: entry.allow, authenticator, authorizer, logger })
  const door = async (name: string, at: ListenerConfig, make: () => IngestListener | Promise<IngestListener>): Promise<void> => {
    const { listener } = await parts.open(name, () => openDoor(name, at, make))
    listeners.push(listener)
  }
  // A listener key may list several entries (plain and TLS ports): a listener each, the entries
  // of one door sharing their counters (so /metrics shows the door once) and the TLS reloader.
  const ndjsonShared = { counters: newCounters(), tlsReloader }
  for (const entry of server.listeners.ndjson) {
    if (!entry.enabled || entry.exchange === null) continue
    const exchange = entry.exchange
    await door('NDJSON', entry, () => ndjsonListener(entry, exchange, publisher, ingestErrors, limiter, logger, tcpBudget, ndjsonShared, doorAccess('ndjson', entry, exchange)))
  }
  const syslogShared = { counters: newCounters(), tlsReloader }
  const syslogUdpCounters = newCounters()
  for (const entry of server.listeners.syslog) {
    if (!entry.enabled || entry.exchange === null) continue
    const exchange = entry.exchange
    await door('syslog TCP', entry, () => syslogTcpListener(entry, exchange, publisher, ingestErrors, limiter, logger, tcpBudget, syslogShared, doorAccess('syslog', entry, exchange)))
    // A TLS entry's port is TLS only: no plain UDP beside it.
    if (entry.udp && entry.tls === null) {
      await door('syslog UDP', entry, () => syslogUdpListener(entry, exchange, publisher, ingestErrors, logger, doorAccess('syslog-udp', entry, exchange), syslogUdpCounters))
    }
  }
  const gelfShared = { counters: newCounters(), tlsReloader }
  const gelfUdpCounters = newCounters()
  for (const entry of server.listeners.gelf) {
    if (!entry.enabled || entry.exchange === null) continue
    const exchange = entry.exchange
    await door('GELF TCP', entry, () => gelfTcpListener(entry, exchange, publisher, ingestErrors, limiter, logger, tcpBudget, gelfShared, doorAccess('gelf', entry, exchange)))
    // A TLS entry's port is TLS only: no plain UDP beside it.
    if (entry.udp && entry.tls === null) {
      await door('GELF UDP', entry, () => gelfUdpListener(entry, exchange, publisher, ingestErrors, logger, doorAccess('gelf-udp', entry, exchange), gelfUdpCounters))
    }
  }
  const forwardShared = { counters: newCounters(), tlsReloader }
  for (const entry of server.listeners.forward) {
    if (!entry.enabled || entry.exchange === null) continue
    const exchange = entry.exchange
    await door('Forward', entry, () => forwardListener(entry, exchange, publisher, ingestErrors, limiter, logger, server.limits.maxEventDepth, tcpBudget, forwardShared, doorAccess('forward', entry, exchange)))
  }
  const otlp = server.otlp
  if (otlp.enabled && otlp.http.enabled && otlp.exchange !== null) {
    const exchange = otlp.exchange
    await door('OTLP/HTTP', otlp.http, () =>
      new OtlpHttpListener({
        config: otlp.http,
        http: server.http,
        limits: server.limits,
        // The door's route answers 503 until the broker is handed to the HTTP routes, as on the API's listener.
        getBroker: () => broker,
        access: { authenticator, authorizer },
        doorAccess: doorAccess('otlp-http', otlp.http, exchange),
        logger,
        budget: tcpBudget,
        tlsReloader,
        onInternalError: (err) => logger.error({ err }, 'internal error in an OTLP/HTTP request'),
      }),
    )
  }
  if (otlp.enabled && otlp.grpc.enabled && otlp.exchange !== null) {
    const exchange = otlp.exchange
    // Loaded when enabled only: gRPC's library is a large part of start-up otherwise.
    const { OtlpGrpcListener } = await import('./ingest/otlp/grpc.js')
    await door('OTLP/gRPC', otlp.grpc, () => new OtlpGrpcListener({ config: otlp, exchange, publisher, ingestErrors, logger, maxEventDepth: server.limits.maxEventDepth, access: doorAccess('otlp-grpc', otlp.grpc, exchange), tlsReloader }))
  }
  const amqpEntries = server.listeners.amqp.filter((e) => e.enabled)
  // The HTTP door deletes AMQP queues through the AMQP door, so their consumers are cancelled.
  let queues: QueueAdmin | undefined
  if (amqpEntries.length > 0) {
    const clusterNow = cluster
    const vhostDeps = { catalog, groups, publisher, router, streams, limiter, logger, blocked: () => alarms.blocked, 
      remoteGroup: clusterNow === undefined ? undefined : (group: { readonly name: string; readonly stream: string }) => clusterNow.remoteGroup(group),
    }
    // One virtual host for every entry (validation makes their bounds on it agree).
    const { vhost } = await parts.open('AMQP virtual host', async () => {
      const v = await startAmqpVhost(vhostDeps, amqpEntries[0]!)
      // Its x-expires clocks stop before the catalog they delete from closes.
      return { vhost: v, close: () => v.close() }
    })
    const amqpShared = { counters: newCounters(), tlsReloader, vhost }
    queues = queueAdmin(amqpShared.vhost)
    for (const entry of amqpEntries) {
      await door('AMQP', entry, () =>
        amqpListener({
          config: entry,
          authenticator,
          authorizer,
          maxConnections: server.limits.maxConnections,
          budget: tcpBudget,
          bodySizeMax: entry.maxMessageBytes,
          logger,
          vhost: vhostDeps,
          onAlarm,
          shared: amqpShared,
        }),
      )
    }
  }
  // The entries of a door share their counters: one of them speaks for all.
  const doors = oneByName(listeners)

  // Cluster mode joins once every door listens, so the node record names their ports; it leaves
  // first on a stop, so the lease is revoked while the node can still say so.
  if (cluster !== undefined) {
    const c = cluster
    amqpPort = listeners.find((l) => l.options.name === 'amqp' && l.tls !== true)?.port ?? null
    await c.start().catch((err: unknown) => {
      throw errors.startup(`cluster: joining through etcd at ${c.node.status().etcd.endpoints.join(', ')}: ${(err as Error).message}`, err)
    })
  }
  await parts.open('metrics', () => {
    metrics.bind({ publisher, streams, groups, limiter, alarms, listeners: [httpListenerView(app), ...doors], ingestErrors, catalog, auth: authenticator, authz: authorizer, cluster })
    return { close: () => undefined }
  })
  // The data routes close first: new requests get our 503 not_ready with Retry-After, the door
  // stops taking connections, and long polls answer with what they have while the groups they
  // wait on are still open; requests already running hold their own reference to the broker.
  await parts.open('http routes', () => {
    const view: BrokerView = { config, publisher, streams, router, rates, groups, redriver, catalog, queues, listeners: doors, ingestErrors, limiter, alarms, cluster, startedAt: Date.now() }
    for (const http of httpEntries.slice(1)) entryBrokers.set(http, { ...view, config: { ...config, server: { ...config.server, http } } })
    broker = view
    return {
      close: () => {
        broker = undefined
        return closeApp()
      },
    }
  })
  logger.info({ dataDir: server.dataDir, streams: streams.all().map((s) => ({ name: s.name, ...s.log.stats() })) }, 'ready')

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= parts.close({ timeoutMs: server.shutdownTimeoutMs }).then((failures) => {
      if (failures.some((f) => f.timedOut === true)) hitLimit('shutdownTimeout')
      if (failures.length > 0) throw new AggregateError(failures.map((f) => f.error), `stopped, but ${failures.map((f) => f.part).join(', ')} failed to close`)
      logger.info({}, 'stopped')
    })
    return stopping
  }
  const reloadTls = (): TlsReloadResult[] => tlsReloader.reload()
  return { httpUrl, httpUrls, streams, meta, publisher, groups, listeners, alarms, reloadTls, stop }
}
