import { hostname } from 'node:os'
import type { Socket } from 'node:net'
import { encode } from '@msgpack/msgpack'
import type { ForwardListenerConfig } from '../../config/index.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { compileTemplate } from '../../router/index.js'
import type { Publisher } from '../../streams/publisher.js'
import { refuseConnection, type DoorAccess } from '../door-access.js'
import type { IngestErrors } from '../ingest-errors.js'
import { doorPipeline } from '../tcp/pipeline.js'
import { streamDoorOptions, TcpListener, type ConnectionBudget, type DoorShared } from '../tcp/server.js'
import { FrameSplitter } from './frames.js'
import { SharedKeyHandshake } from './handshake.js'
import { forwardMessage } from './message.js'

/**
 * Fluent Forward over TCP: msgpack messages, each a whole transport message of one tag. Events
 * are published in order per connection with the TCP door's backpressure; a message with a
 * `chunk` option is answered `{ack: chunk}` once all its events are durable (or, refused, set
 * aside in ingest-errors), in the order the messages came.
 */
export function forwardListener(config: ForwardListenerConfig, exchange: string, publisher: Publisher, errors: IngestErrors, limiter: RateLimiter, logger: Logger, maxEventDepth: number, budget?: ConnectionBudget, shared: DoorShared = {}, access?: DoorAccess): TcpListener {
  const template = config.routingKey === null ? undefined : compileTemplate(config.routingKey)
  const limits = { maxEntries: config.maxEntriesPerFrame, maxBytes: config.maxFrameBytes, maxDepth: maxEventDepth }
  const selfHostname = config.selfHostname ?? hostname()
  const listener: TcpListener = new TcpListener({
    ...streamDoorOptions('forward', config, logger, budget, shared, access),
    onConnection: (socket: Socket, remote: string, peer) => {
      const counters = listener.counters
      const identity = access?.identity(socket.remoteAddress, peer)
      if (access !== undefined && identity === undefined) return refuseConnection(socket)
      const pipeline = doorPipeline(socket, remote, { listener: 'forward', exchange, user: identity?.username, publisher, errors, limiter, logger, maxPendingBytes: config.maxPendingBytes })
      const handshake = config.sharedKey === null ? undefined : new SharedKeyHandshake(config.sharedKey, selfHostname)
      let authenticated = handshake === undefined
      if (handshake !== undefined) socket.write(handshake.helo())
      const ack = (chunk: string | undefined): void => {
        if (chunk === undefined) return
        pipeline.afterStored(() => {
          if (!socket.destroyed) socket.write(encode({ ack: chunk }))
        })
      }
      const frames = new FrameSplitter({
        maxFrameBytes: config.maxFrameBytes,
        maxDepth: maxEventDepth + 4,
        onFrame: (frame) => {
          counters.messages++
          const m = forwardMessage(frame, limits, template)
          if (m.kind === 'handshake') {
            if (handshake === undefined || authenticated) return
            const outcome = handshake.ping(m.message)
            socket.write(outcome.pong)
            if (outcome.ok) authenticated = true
            else {
              logger.warn({ listener: 'forward', remote, reason: outcome.reason }, 'Forward handshake refused')
              socket.end()
            }
            return
          }
          if (!authenticated) {
            // Events before the handshake: a client without the shared key. Nothing is kept.
            logger.warn({ listener: 'forward', remote }, 'Forward events before the shared-key handshake: connection closed')
            socket.destroy()
            return
          }
          if (m.kind === 'refused') {
            counters.parseErrors++
            if (m.limit !== undefined) hitLimit(m.limit)
            errors.record({ listener: 'forward', remote, reason: m.error, raw: frame })
            // Acked all the same: the same bytes sent again would be refused again.
            ack(m.chunk)
            return
          }
          for (const ev of m.events) pipeline.add(ev)
          ack(m.chunk)
        },
        onError: (err, prefix) => {
          counters.parseErrors++
          if (err.limit !== undefined) hitLimit(err.limit)
          errors.record({ listener: 'forward', remote, reason: `${err.error}; connection closed`, raw: prefix })
          // What came before is still stored; what was not acked the client sends again.
          void pipeline.end().then(() => socket.destroy())
          socket.pause()
        },
      })
      socket.on('data', (chunk: Buffer) => {
        counters.bytes += chunk.length
        frames.push(chunk)
        pipeline.flush()
      })
      socket.on('end', () => void pipeline.end())
      return { end: () => pipeline.end() }
    },
  })
  return listener
}
