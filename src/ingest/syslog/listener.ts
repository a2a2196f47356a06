import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Socket } from 'node:net'
import type { SyslogListenerConfig } from '../../config/index.js'
import { SluiceError } from '../../errors.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { compileTemplate } from '../../router/index.js'
import type { Publisher, PublishEvent } from '../../streams/publisher.js'
import type { IngestErrors } from '../ingest-errors.js'
import { refuseConnection, type DoorAccess } from '../door-access.js'
import { doorPipeline } from '../tcp/pipeline.js'
import { newCounters, TcpListener, type ConnectionBudget, type DoorShared, type ListenerCounters } from '../tcp/server.js'
import { tlsSetupFor } from '../tcp/tls.js'
import { SyslogFramer } from './framing.js'
import { isSyslogParseError, parseSyslog, type SyslogEvent } from './parse.js'

/** Turns one frame into an event, or sets it aside in ingest-errors. */
function makeEvent(frame: Buffer, remote: string | undefined, template: (v: unknown) => string, errors: IngestErrors, counters: ListenerCounters, listener: string): PublishEvent | undefined {
  counters.messages++
  // HOSTNAME "-" stays null: the sender said it has none, and a relay's address would mislead.
  const parsed = parseSyslog(frame, { receivedAt: Date.now() })
  if (isSyslogParseError(parsed)) {
    counters.parseErrors++
    errors.record({ listener, remote, reason: parsed.error, raw: frame })
    return undefined
  }
  return { body: Buffer.from(eventJson(parsed)), value: parsed, json: true, routingKey: template(parsed) }
}

const str = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v))

/**
 * The event's JSON, same text as JSON.stringify for this fixed shape but built directly: on the
 * syslog hot path the generic stringify (walking an object of unknown shape) was the largest
 * single cost per message in a CPU profile.
 */
export function eventJson(e: SyslogEvent): string {
  return `{"timestamp":${str(e.timestamp)},"host":${str(e.host)},"app":${str(e.app)},"procid":${str(e.procid)},"msgid":${str(e.msgid)},"facility":"${e.facility}","severity":"${e.severity}","structuredData":${e.structuredData === null ? 'null' : JSON.stringify(e.structuredData)},"message":${str(e.message)}}`
}

/**
 * Syslog over TCP: RFC 5424 and RFC 3164 messages, framed by octet count or LF (detected per
 * frame), published in order per connection with the TCP door's backpressure.
 */
export function syslogTcpListener(config: SyslogListenerConfig, exchange: string, publisher: Publisher, errors: IngestErrors, limiter: RateLimiter, logger: Logger, budget?: ConnectionBudget, shared: DoorShared = {}, access?: DoorAccess): TcpListener {
  const template = compileTemplate(config.routingKey)
  const listener: TcpListener = new TcpListener({
    name: 'syslog',
    host: config.host,
    port: config.port,
    maxConnections: config.maxConnections,
    maxConnectionsPerAddress: config.maxConnectionsPerAddress,
    budget,
    idleTimeoutMs: config.idleTimeoutMs,
    logger,
    // RFC 5425: the same frames (octet counting, or LF as senders also use) inside TLS.
    tls: tlsSetupFor('syslog', config, shared.tlsReloader),
    counters: shared.counters,
    tlsHandshakeTimeoutMs: config.idleTimeoutMs,
    allow: access === undefined ? undefined : (address) => access.admit(address),
    onConnection: (socket: Socket, remote: string, peer) => {
      const counters = listener.counters
      const identity = access?.identity(socket.remoteAddress, peer)
      if (access !== undefined && identity === undefined) return refuseConnection(socket)
      const pipeline = doorPipeline(socket, remote, { listener: 'syslog', exchange, user: identity?.username, publisher, errors, limiter, logger, maxPendingBytes: config.maxPendingBytes })
      const framer = new SyslogFramer({
        maxMessageBytes: config.maxMessageBytes,
        onFrame: (frame) => {
          const ev = makeEvent(frame, remote, template, errors, counters, 'syslog')
          if (ev !== undefined) pipeline.add(ev)
        },
        onError: (reason, raw, kind) => {
          counters.parseErrors++
          if (kind === 'too-long') hitLimit('syslog.maxMessageSize')
          errors.record({ listener: 'syslog', remote, reason, raw })
        },
      })
      socket.on('data', (chunk: Buffer) => {
        counters.bytes += chunk.length
        framer.push(chunk)
        pipeline.flush()
      })
      const finish = (): Promise<void> => {
        framer.end()
        return pipeline.end()
      }
      socket.on('end', () => void finish())
      return { end: finish }
    },
  })
  return listener
}

/**
 * Syslog over UDP: one message a datagram. UDP has no backpressure, so the door queues up to
 * `udpQueueSize` messages while a publish is in flight and counts what it must drop past that.
 */
export class SyslogUdpListener {
  readonly options = { name: 'syslog-udp' }
  readonly #socket: UdpSocket
  #queue: PublishEvent[] = []
  #inFlight = false
  #idle: (() => void) | undefined

  constructor(
    private readonly config: SyslogListenerConfig,
    private readonly exchange: string,
    private readonly publisher: Publisher,
    private readonly errors: IngestErrors,
    private readonly logger: Logger,
    /** The allow list and user; unset (a door built alone in a test): every sender, no user. */
    private readonly access?: DoorAccess,
    /** Shared with the UDP sockets of the door's other entries (a listener key holding a list). */
    readonly counters: ListenerCounters = newCounters(),
  ) {
    // A large receive buffer absorbs bursts while the event loop is busy; the kernel caps it at
    // net.core.rmem_max. What still overflows is lost, as UDP always allows.
    this.#socket = createSocket({ type: isIPv6(config.host) ? 'udp6' : 'udp4', reuseAddr: false, recvBufferSize: config.udpReceiveBufferBytes })
    const template = compileTemplate(config.routingKey)
    this.#socket.on('message', (msg, rinfo) => {
      // A datagram from outside the allow list is dropped before any work is spent on it
      // (counted in sluice_auth_failures_total{door="syslog-udp"}).
      if (access !== undefined && (!access.admit(rinfo.address) || access.identity(rinfo.address) === undefined)) return
      this.counters.bytes += msg.length
      if (msg.length > config.maxMessageBytes) {
        this.counters.parseErrors++
        hitLimit('syslog.maxMessageSize')
        errors.record({ listener: 'syslog-udp', remote: `${rinfo.address}:${rinfo.port}`, reason: `datagram of ${msg.length} bytes is over server.syslog.maxMessageSize`, raw: msg, bytes: msg.length })
        return
      }
      if (this.#queue.length >= config.udpQueueSize) {
        this.counters.dropped++
        hitLimit('syslog.udpQueueSize')
        return
      }
      const ev = makeEvent(msg, `${rinfo.address}:${rinfo.port}`, template, errors, this.counters, 'syslog-udp')
      if (ev === undefined) return
      this.#queue.push(ev)
      if (!this.#inFlight) this.#send()
    })
  }

  get port(): number {
    return this.#socket.address().port
  }

  #send(): void {
    if (this.#queue.length === 0) {
      this.#inFlight = false
      this.#idle?.()
      return
    }
    this.#inFlight = true
    const batch = this.#queue
    this.#queue = []
    this.publisher.publish({ exchange: this.exchange, events: batch, source: 'syslog', invalid: 'event', admit: 'partial', from: { listener: 'syslog', user: this.access?.user } }).then(
      (result) => {
        if (result.deferred !== undefined) {
          // Over a rate limit: the rest waits for the refill, ahead of what came since.
          this.#queue = batch.slice(result.deferred.from).concat(this.#queue)
          this.#inFlight = true
          setTimeout(() => this.#send(), result.deferred.retryAfterMs).unref()
        }
        // Each datagram is a message of its own: an invalid one is set aside, its neighbours stored.
        for (const r of result.refused ?? []) this.errors.record({ listener: 'syslog-udp', remote: undefined, reason: `${r.error.wireCode}: ${r.error.message}`, raw: batch[r.index]!.body })
        if (result.deferred === undefined) this.#send()
      },
      (err: unknown) => {
        if (err instanceof SluiceError && !err.retryable) {
          // Refused for good (e.g. unroutable with `unroutable: reject`): set aside, go on.
          for (const e of batch) this.errors.record({ listener: 'syslog-udp', remote: undefined, reason: `${err.wireCode}: ${err.message}`, raw: e.body })
          this.#send()
          return
        }
        // Keep the batch at the front and try again shortly; the queue limit bounds the memory.
        this.logger.warn({ listener: 'syslog-udp', err }, 'publish failed; retrying')
        this.#queue = batch.concat(this.#queue)
        if (this.#queue.length > this.config.udpQueueSize) {
          const over = this.#queue.length - this.config.udpQueueSize
          this.#queue.length = this.config.udpQueueSize
          this.counters.dropped += over
          hitLimit('syslog.udpQueueSize', over)
        }
        setTimeout(() => this.#send(), 200).unref()
      },
    )
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject)
      this.#socket.bind(this.config.port, this.config.host, () => {
        this.#socket.off('error', reject)
        resolve()
      })
    })
    this.logger.info({ listener: 'syslog-udp', address: `${this.config.host}:${this.port}` }, 'listener up')
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()))
    if (this.#inFlight) await new Promise<void>((resolve) => (this.#idle = resolve))
  }
}
