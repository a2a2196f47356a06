import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { GelfListenerConfig } from '../../config/index.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { compileTemplate, type RoutingKeyTemplate } from '../../router/index.js'
import type { Publisher } from '../../streams/publisher.js'
import { refuseConnection, type DoorAccess } from '../door-access.js'
import type { IngestErrors } from '../ingest-errors.js'
import { LineSplitter } from '../tcp/lines.js'
import { doorPipeline } from '../tcp/pipeline.js'
import { newCounters, streamDoorOptions, TcpListener, type ConnectionBudget, type DoorShared, type ListenerCounters } from '../tcp/server.js'
import { UdpListener } from '../udp/listener.js'
import { DatagramQueue } from '../udp/queue.js'
import { ChunkReassembler, isChunk } from './chunks.js'
import { gelfEvent, gelfPayload, isGelfRefusal } from './message.js'

const templateOf = (config: GelfListenerConfig): RoutingKeyTemplate | undefined => (config.routingKey === null ? undefined : compileTemplate(config.routingKey))

/** Whitespace only: what some senders put after the NUL (a newline), not a message. */
function isBlank(frame: Buffer): boolean {
  for (const c of frame) if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return false
  return true
}

/**
 * GELF over TCP: one uncompressed JSON message a frame, each ending in a NUL byte (Graylog's GELF
 * TCP input; compressed data could hold a NUL, so TCP carries none). Published in order per
 * connection with the TCP door's backpressure.
 */
export function gelfTcpListener(config: GelfListenerConfig, exchange: string, publisher: Publisher, errors: IngestErrors, limiter: RateLimiter, logger: Logger, budget?: ConnectionBudget, shared: DoorShared = {}, access?: DoorAccess): TcpListener {
  const template = templateOf(config)
  const listener: TcpListener = new TcpListener({
    ...streamDoorOptions('gelf', config, logger, budget, shared, access),
    onConnection: (socket: Socket, remote: string, peer) => {
      const counters = listener.counters
      const identity = access?.identity(socket.remoteAddress, peer)
      if (access !== undefined && identity === undefined) return refuseConnection(socket)
      const pipeline = doorPipeline(socket, remote, { listener: 'gelf', exchange, user: identity?.username, publisher, errors, limiter, logger, maxPendingBytes: config.maxPendingBytes })
      const frames = new LineSplitter(
        config.maxMessageBytes,
        (frame, frameNo) => {
          if (isBlank(frame)) return
          counters.messages++
          const ev = gelfEvent(frame, Date.now(), template)
          if (isGelfRefusal(ev)) {
            counters.parseErrors++
            errors.record({ listener: 'gelf', remote, reason: ev.error, raw: frame, line: frameNo })
            return
          }
          pipeline.add(ev)
        },
        (prefix, bytes, frameNo) => {
          counters.parseErrors++
          hitLimit('gelf.maxMessageSize')
          errors.record({ listener: 'gelf', remote, reason: `frame of ${bytes} bytes is over server.gelf.maxMessageSize (${config.maxMessageBytes} bytes)`, raw: prefix, bytes, line: frameNo })
        },
        0x00,
      )
      socket.on('data', (chunk: Buffer) => {
        counters.bytes += chunk.length
        frames.push(chunk)
        pipeline.flush()
      })
      const finish = (): Promise<void> => {
        frames.end()
        return pipeline.end()
      }
      socket.on('end', () => void finish())
      return { end: finish }
    },
  })
  return listener
}

/**
 * GELF over UDP: a datagram is a whole message or one chunk of one (chunks.ts), compressed with
 * zlib or gzip or not at all. UDP has no backpressure: incomplete messages are bounded in time
 * and memory, and whole ones queue up to `udpQueueSize`; what is dropped is counted.
 */
export function gelfUdpListener(config: GelfListenerConfig, exchange: string, publisher: Publisher, errors: IngestErrors, logger: Logger, access?: DoorAccess, counters: ListenerCounters = newCounters(), now: () => number = () => performance.now()): UdpListener {
  const template = templateOf(config)
  const queue = new DatagramQueue({ listener: 'gelf-udp', source: 'gelf', exchange, user: access?.user, publisher, errors, logger, counters, queueSize: config.udpQueueSize, queueLimit: 'gelf.udpQueueSize' })
  const chunks = new ChunkReassembler({ maxChunks: config.maxChunks, timeoutMs: config.chunkTimeoutMs, maxBytes: config.maxReassemblyBytes }, now, (n) => {
    counters.dropped += n
    hitLimit('gelf.chunkTimeout', n)
  })
  // One coarse timer per listener, not one per message: a message is dropped between one and
  // one and a half timeouts after its first chunk.
  const sweep = setInterval(() => chunks.expire(), Math.max(50, config.chunkTimeoutMs / 2))
  sweep.unref()
  const refuse = (remote: string, reason: string, raw: Buffer, limit?: string): void => {
    counters.parseErrors++
    if (limit !== undefined) hitLimit(limit)
    errors.record({ listener: 'gelf-udp', remote, reason, raw })
  }
  return new UdpListener({
    name: 'gelf-udp',
    host: config.host,
    port: config.port,
    receiveBufferBytes: config.udpReceiveBufferBytes,
    logger,
    access,
    counters,
    onMessage: (msg, rinfo) => {
      const remote = `${rinfo.address}:${rinfo.port}`
      let payload = msg
      if (isChunk(msg)) {
        const outcome = chunks.add(msg, rinfo.address)
        if (outcome.kind === 'pending') return
        if (outcome.kind === 'invalid') return refuse(remote, outcome.reason, msg, outcome.limit)
        if (outcome.kind === 'over-memory') {
          counters.dropped++
          hitLimit('gelf.maxReassemblySize')
          return
        }
        payload = outcome.payload
      }
      counters.messages++
      if (!queue.room()) return
      const json = gelfPayload(payload, config.maxMessageBytes)
      if (isGelfRefusal(json)) return refuse(remote, json.error, payload, json.limit)
      const ev = gelfEvent(json, Date.now(), template)
      if (isGelfRefusal(ev)) return refuse(remote, ev.error, json)
      queue.push(ev)
    },
    onClose: () => {
      clearInterval(sweep)
      chunks.clear()
      return queue.idle()
    },
  })
}
