import { createServer, type Server, type Socket } from 'node:net'
import type { Logger } from '../../logger.js'

/** Hosts that mean "this machine only": a listener on one of them also listens on ::1. */
const ipv4Loopback = new Set(['127.0.0.1', 'localhost'])

/**
 * The address a listener's host is bound to first. `localhost` is bound as 127.0.0.1, so that the
 * IPv6 twin below is the only socket on ::1, whichever way the resolver orders the two.
 */
export function primaryHost(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host
}

/**
 * A loopback listener is bound on 127.0.0.1 and ::1 alike: clients resolve `localhost` to either
 * (Node 17+ keeps the resolver's order, which often puts ::1 first), and `amqp://[::1]` is how
 * amqplib's own suite checks IPv6. The second socket hands each connection to `primary`, which
 * then treats it exactly as its own (caps, TLS, counting, a clean stop).
 *
 * A machine without IPv6 (or with ::1 on that port taken) keeps the IPv4 listener: the failure is
 * logged and resolves undefined, never failing the start.
 */
export async function listenIpv6Loopback(primary: Server, opts: { readonly host: string; readonly port: number; readonly name: string; readonly logger: Logger }): Promise<Server | undefined> {
  if (!ipv4Loopback.has(opts.host)) return undefined
  const twin = createServer({ noDelay: true }, (socket: Socket) => primary.emit('connection', socket))
  twin.maxConnections = primary.maxConnections
  // Past maxConnections Node drops at accept; the primary's handler counts those.
  twin.on('drop', (data) => primary.emit('drop', data))
  try {
    await new Promise<void>((resolve, reject) => {
      twin.once('error', reject)
      twin.listen({ host: '::1', port: opts.port, ipv6Only: true }, () => {
        twin.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    opts.logger.info({ listener: opts.name, err }, `not listening on [::1]:${opts.port} too; IPv4 loopback only`)
    return undefined
  }
  return twin
}
