import type { Socket } from 'node:net'
import type { SyslogListenerConfig } from '../../config/index.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { compileTemplate } from '../../router/index.js'
import type { Publisher, PublishEvent } from '../../streams/publisher.js'
import type { IngestErrors } from '../ingest-errors.js'
import { refuseConnection, type DoorAccess } from '../door-access.js'
import { doorPipeline } from '../tcp/pipeline.js'
import { newCounters, streamDoorOptions, TcpListener, type ConnectionBudget, type DoorShared, type ListenerCounters } from '../tcp/server.js'
import { DatagramQueue } from '../udp/queue.js'
import { UdpListener } from '../udp/listener.js'
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
    ...streamDoorOptions('syslog', config, logger, budget, shared, access),
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
 * Syslog over UDP: one message a datagram, published through the UDP door's queue (which counts
 * what it must drop: UDP has no backpressure).
 */
export function syslogUdpListener(config: SyslogListenerConfig, exchange: string, publisher: Publisher, errors: IngestErrors, logger: Logger, access?: DoorAccess, counters: ListenerCounters = newCounters()): UdpListener {
  const template = compileTemplate(config.routingKey)
  const queue = new DatagramQueue({ listener: 'syslog-udp', source: 'syslog', exchange, user: access?.user, publisher, errors, logger, counters, queueSize: config.udpQueueSize, queueLimit: 'syslog.udpQueueSize' })
  return new UdpListener({
    name: 'syslog-udp',
    host: config.host,
    port: config.port,
    receiveBufferBytes: config.udpReceiveBufferBytes,
    logger,
    access,
    counters,
    onMessage: (msg, rinfo) => {
      if (msg.length > config.maxMessageBytes) {
        counters.parseErrors++
        hitLimit('syslog.maxMessageSize')
        errors.record({ listener: 'syslog-udp', remote: `${rinfo.address}:${rinfo.port}`, reason: `datagram of ${msg.length} bytes is over server.syslog.maxMessageSize`, raw: msg, bytes: msg.length })
        return
      }
      if (!queue.room()) return
      const ev = makeEvent(msg, `${rinfo.address}:${rinfo.port}`, template, errors, counters, 'syslog-udp')
      if (ev !== undefined) queue.push(ev)
    },
    onClose: () => queue.idle(),
  })
}
