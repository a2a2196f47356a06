import { randomBytes } from 'node:crypto'
import type { AmqpListenerConfig, UserConfig } from '../../config/index.js'
import type { Logger } from '../../logger.js'
import { TcpListener } from '../tcp/server.js'
import { AmqpConnection } from './connection.js'
import { AmqpVhost, type VhostDeps } from './vhost.js'

export interface AmqpListenerOptions {
  readonly config: AmqpListenerConfig
  readonly users: readonly UserConfig[]
  readonly maxConnections: number
  /** Largest message body accepted (server.limits.maxEventSize). */
  readonly bodySizeMax: number
  readonly logger: Logger
  readonly vhost: VhostDeps
  /** Registers for alarm changes (true: raised); returns the unregister function. */
  readonly onAlarm: (fn: (blocked: boolean) => void) => () => void
}

/**
 * The AMQP 0-9-1 door: a TCP listener whose connections speak RabbitMQ's protocol onto the one
 * publish path and the consumer groups. Heartbeats replace the idle timeout.
 */
export async function amqpListener(opts: AmqpListenerOptions): Promise<TcpListener> {
  const vhost = new AmqpVhost(opts.vhost)
  await vhost.start()
  const prefix = randomBytes(3).toString('hex')
  let seq = 0
  const listener: TcpListener = new TcpListener({
    name: 'amqp',
    host: opts.config.host,
    port: opts.config.port,
    maxConnections: opts.maxConnections,
    idleTimeoutMs: 0,
    logger: opts.logger,
    onConnection: (socket, remote) => {
      const conn = new AmqpConnection(socket, remote, {
        id: `${prefix}-${++seq}`,
        vhost,
        config: opts.config,
        users: opts.users,
        bodySizeMax: opts.bodySizeMax,
        logger: opts.logger,
        counters: listener.counters,
        onAlarm: opts.onAlarm,
      })
      return {
        end: async () => {
          await conn.end()
          // Let close-ok come back (or the socket drop) before the listener ends it.
          await Promise.race([conn.closed, new Promise((r) => setTimeout(r, 500))])
        },
      }
    },
  })
  return listener
}
