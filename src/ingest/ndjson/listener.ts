import type { Socket } from 'node:net'
import type { NdjsonListenerConfig } from '../../config/index.js'
import type { RateLimiter } from '../../flow/rate-limiter.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { compileTemplate, type RoutingKeyTemplate } from '../../router/index.js'
import type { Publisher } from '../../streams/publisher.js'
import type { IngestErrors } from '../ingest-errors.js'
import { LineSplitter } from '../tcp/lines.js'
import { refuseConnection, type DoorAccess } from '../door-access.js'
import { doorPipeline } from '../tcp/pipeline.js'
import { streamDoorOptions, TcpListener, type ConnectionBudget, type DoorShared } from '../tcp/server.js'

/**
 * One JSON value a line over TCP (Vector, Fluent Bit, pino-socket, `nc`). Each line is an event
 * body published to the configured exchange; a malformed line goes to ingest-errors with its
 * line number and the connection goes on.
 */
export function ndjsonListener(config: NdjsonListenerConfig, exchange: string, publisher: Publisher, errors: IngestErrors, limiter: RateLimiter, logger: Logger, budget?: ConnectionBudget, shared: DoorShared = {}, access?: DoorAccess): TcpListener {
  // Without its own template the listener leaves the key to the exchange's template.
  const template: RoutingKeyTemplate | undefined = config.routingKey === null ? undefined : compileTemplate(config.routingKey)
  const listener: TcpListener = new TcpListener({
    ...streamDoorOptions('ndjson', config, logger, budget, shared, access),
    onConnection: (socket: Socket, remote: string, peer) => {
      const counters = listener.counters
      const identity = access?.identity(socket.remoteAddress, peer)
      if (access !== undefined && identity === undefined) return refuseConnection(socket)
      const pipeline = doorPipeline(socket, remote, { listener: 'ndjson', exchange, user: identity?.username, publisher, errors, limiter, logger, maxPendingBytes: config.maxPendingBytes })
      const lines = new LineSplitter(
        config.maxLineBytes,
        (line, lineNo) => {
          if (isBlank(line)) return
          counters.messages++
          let value: unknown
          try {
            value = JSON.parse(line.toString('utf8'))
          } catch (err) {
            counters.parseErrors++
            errors.record({ listener: 'ndjson', remote, reason: `invalid JSON (${(err as Error).message})`, raw: line, line: lineNo })
            return
          }
          // The line's own bytes are the stored body; it is copied because the chunk is reused.
          pipeline.add({ body: Buffer.from(line), value, json: true, routingKey: template?.(value) })
        },
        (prefix, bytes, lineNo) => {
          counters.parseErrors++
          hitLimit('ndjson.maxLineSize')
          errors.record({ listener: 'ndjson', remote, reason: `line of ${bytes} bytes is over server.ndjson.maxLineSize (${config.maxLineBytes} bytes)`, raw: prefix, bytes, line: lineNo })
        },
      )
      socket.on('data', (chunk: Buffer) => {
        counters.bytes += chunk.length
        lines.push(chunk)
        pipeline.flush()
      })
      socket.on('end', () => {
        lines.end()
        void pipeline.end()
      })
      return {
        end: () => {
          lines.end()
          return pipeline.end()
        },
      }
    },
  })
  return listener
}

function isBlank(line: Buffer): boolean {
  for (const c of line) if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false
  return true
}
