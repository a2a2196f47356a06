import { randomBytes } from 'node:crypto'
import type { Authenticator, Authorizer } from '../../auth/index.js'
import type { AmqpListenerConfig } from '../../config/index.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import { TcpListener, type ConnectionBudget, type DoorShared } from '../tcp/server.js'
import { tlsSetupFor } from '../tcp/tls.js'
import { AmqpConnection, type Refusal } from './connection.js'
import { AmqpVhost, type VhostDeps } from './vhost.js'

export interface AmqpListenerOptions {
  readonly config: AmqpListenerConfig
  readonly authenticator: Authenticator
  /** Decides every declare, bind, publish and consume, from the one table (src/auth/operations.ts). */
  readonly authorizer: Authorizer
  /** server.limits.maxConnections: sockets past it are closed at accept, before any AMQP. */
  readonly maxConnections: number
  /** The count shared with the other TCP doors. */
  readonly budget?: ConnectionBudget | undefined
  /** Largest message body accepted (server.limits.maxEventSize). */
  readonly bodySizeMax: number
  readonly logger: Logger
  readonly vhost: VhostDeps
  /** Registers for alarm changes (true: raised); returns the unregister function. */
  readonly onAlarm: (fn: (blocked: boolean) => void) => () => void
  /** What the door's entries share when `server.amqp` lists several (plain and amqps ports). */
  readonly shared?: AmqpShared | undefined
}

export interface AmqpShared extends DoorShared {
  /** The one virtual host every entry serves (exclusive queues, consumers); made here when absent. */
  readonly vhost?: AmqpVhost | undefined
}

/**
 * The virtual host, started: exclusive and server-named queues of an earlier run are deleted.
 * Once per process, whatever the number of AMQP entries.
 */
export async function startAmqpVhost(deps: VhostDeps, config: AmqpListenerConfig): Promise<AmqpVhost> {
  const vhost = new AmqpVhost(deps, { maxQueuesPerConnection: config.maxQueuesPerConnection, maxConsumersPerChannel: config.maxConsumersPerChannel })
  await vhost.start()
  return vhost
}

/** At most one log line a second per limit, so a flood of refused sockets cannot flood the log. */
const limitLogEveryMs = 1000

/**
 * The AMQP 0-9-1 door: a TCP listener whose connections speak RabbitMQ's protocol onto the one
 * publish path and the consumer groups. Heartbeats replace the idle timeout; the handshake has a
 * deadline of its own.
 *
 * Connection caps (in total and per client address) count every socket from accept, so silent
 * ones count too. A socket over a cap is not dropped blind: it is answered up to
 * connection.start-ok and then closed with 530 NOT_ALLOWED naming the limit, as RabbitMQ refuses
 * over its connection limits, so the client's error says why.
 */
export async function amqpListener(opts: AmqpListenerOptions): Promise<TcpListener> {
  const vhost = opts.shared?.vhost ?? (await startAmqpVhost(opts.vhost, opts.config))
  const prefix = randomBytes(3).toString('hex')
  let seq = 0
  const cfg = opts.config
  let admitted = 0
  const perAddress = new Map<string, number>()
  const lastLogged = new Map<string, { at: number; suppressed: number }>()
  const limitHit = (limit: string, fields: Record<string, unknown>, message: string): void => {
    hitLimit(limit)
    const now = Date.now()
    const last = lastLogged.get(limit)
    if (last !== undefined && now - last.at < limitLogEveryMs) {
      last.suppressed++
      return
    }
    lastLogged.set(limit, { at: now, suppressed: 0 })
    opts.logger.warn({ listener: 'amqp', limit, ...fields, ...(last !== undefined && last.suppressed > 0 ? { alsoSinceLastLine: last.suppressed } : {}) }, message)
  }
  const refusal = (address: string): Refusal | undefined => {
    if (admitted >= cfg.maxConnections) {
      return { limit: 'amqp.maxConnections', text: `connection refused: connection limit (${cfg.maxConnections}) is reached (server.amqp.maxConnections)` }
    }
    if ((perAddress.get(address) ?? 0) >= cfg.maxConnectionsPerAddress) {
      return {
        limit: 'amqp.maxConnectionsPerAddress',
        text: `connection refused: connection limit per client address (${cfg.maxConnectionsPerAddress}) is reached for ${address} (server.amqp.maxConnectionsPerAddress)`,
      }
    }
    return undefined
  }
  const listener: TcpListener = new TcpListener({
    name: 'amqp',
    host: cfg.host,
    port: cfg.port,
    maxConnections: opts.maxConnections,
    budget: opts.budget,
    idleTimeoutMs: 0,
    logger: opts.logger,
    // amqps: TLS first, then the same protocol; the TLS handshake is held to the AMQP one's deadline.
    tls: tlsSetupFor('amqp', cfg, opts.shared?.tlsReloader),
    counters: opts.shared?.counters,
    tlsHandshakeTimeoutMs: cfg.handshakeTimeoutMs,
    onConnection: (socket, remote, peer) => {
      const address = socket.remoteAddress ?? remote
      const refused = refusal(address)
      if (refused === undefined) {
        admitted++
        perAddress.set(address, (perAddress.get(address) ?? 0) + 1)
        socket.once('close', () => {
          admitted--
          const left = (perAddress.get(address) ?? 1) - 1
          if (left > 0) perAddress.set(address, left)
          else perAddress.delete(address)
        })
      } else {
        listener.counters.connectionsRefused++
        limitHit(refused.limit, { remote }, `AMQP connection refused: ${refused.text}`)
      }
      const conn = new AmqpConnection(socket, remote, {
        id: `${prefix}-${++seq}`,
        vhost,
        config: cfg,
        authenticator: opts.authenticator,
        authorizer: opts.authorizer,
        peer,
        bodySizeMax: opts.bodySizeMax,
        logger: opts.logger,
        counters: listener.counters,
        onAlarm: opts.onAlarm,
        refusal: refused,
        limitHit,
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
