// Who may use a door whose protocol has no credentials (NDJSON, syslog over TCP and UDP): clients
// from the listener's `allow` list of addresses, publishing as the listener's `user`
// (docs/security.md, "Stream doors").

import { BlockList, isIP, type Socket } from 'node:net'
import { isLoopback, type Authenticator, type Authorizer, type Denial, type Identity } from '../auth/index.js'
import type { Logger } from '../logger.js'

/** What a door knows of a TLS client's verified certificate (src/ingest/tcp/tls.ts has the whole of it). */
export interface ClientCertificate {
  /** RFC 4514 distinguished name, most specific first: `CN=shipper,O=Acme`. */
  readonly subject: string
  /** The subject's CN: the user the client publishes as. */
  readonly commonName?: string | undefined
}

export interface DoorAccessOptions {
  /** The door as sluice_auth_failures_total and the logs name it: ndjson, syslog, syslog-udp. */
  readonly door: string
  readonly exchange: string
  /** The listener's `user`; null: guest, for loopback clients under `auth.anonymous: loopback`. */
  readonly user: string | null
  /** The listener's user is `loopbackOnly`: clients from other addresses may not act as it either. */
  readonly userLoopbackOnly?: boolean | undefined
  /** The listener's `allow`: IP addresses and CIDR blocks (validated). */
  readonly allow: readonly string[]
  readonly authenticator: Authenticator
  readonly authorizer: Authorizer
  readonly logger: Logger
  readonly now?: () => number
}

const refusalMessages: Readonly<Record<string, string>> = {
  address: "client address not in the listener's allow list: refused",
  no_credentials: "no user to publish as (the listener names no user, and the client is not on loopback): refused",
  loopback_only: "the listener's user is loopbackOnly and the client is not on loopback: refused",
  forbidden: "user may not publish to the listener's exchange: refused",
}

/** At most one log line per door this often about refused clients; the rest are counted in it. */
const refusalLogEveryMs = 10_000

const v4Mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/**
 * The allow list and the identity of a stream door. Refusals are counted by the authenticator
 * (sluice_auth_failures_total{door, reason}) and logged a line at a time: a scan of the port or a
 * flood of datagrams from a wrong address would otherwise write a line for each.
 */
export class DoorAccess {
  readonly #opts: DoorAccessOptions
  readonly #allow = new BlockList()
  readonly #now: () => number
  /** Whether each identity may publish to the exchange, decided once: identities are made once per user. */
  readonly #mayPublish = new Map<Identity, Denial | null>()
  #log = { at: -Infinity, suppressed: 0 }

  constructor(opts: DoorAccessOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    for (const entry of opts.allow) {
      const [address, bits] = entry.split('/') as [string, string | undefined]
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
      if (bits === undefined) this.#allow.addAddress(address, family)
      else this.#allow.addSubnet(address, Number(bits), family)
    }
  }

  /** The user events are published as when no certificate chooses one: for the rate limits' `user`. */
  get user(): string {
    return this.#opts.user ?? 'guest'
  }

  /**
   * Whether a client address is in the allow list. An IPv4 client of a dual-stack socket shows as
   * `::ffff:a.b.c.d`; it matches the IPv4 entries (and any IPv6 entry written for that form).
   */
  allowed(address: string | undefined): boolean {
    if (address === undefined) return false
    const v4 = v4Mapped.exec(address)?.[1]
    if (v4 !== undefined && this.#allow.check(v4, 'ipv4')) return true
    const family = isIP(address)
    if (family === 0) return false
    return this.#allow.check(address, family === 6 ? 'ipv6' : 'ipv4')
  }

  /** At accept (or for each datagram): whether the address may go on; a refusal is counted and logged. */
  admit(address: string | undefined): boolean {
    if (this.allowed(address)) return true
    this.#refuse(address, 'address')
    return false
  }

  /**
   * The one place a stream door's client gets its identity, once per connection (per datagram over
   * UDP). The listener's `user` when it names one: the configuration said who its clients are, and
   * a certificate then only lets the client in. Otherwise a verified client certificate (TLS
   * `clientAuth`) chooses the user by its subject's CN, as AMQP's EXTERNAL does, and a client
   * without one is guest when on loopback. undefined: the client may not publish here; the refusal
   * is counted and logged.
   */
  identity(address: string | undefined, certificate?: ClientCertificate): Identity | undefined {
    const { authenticator, user, door } = this.#opts
    if (user === null && certificate !== undefined) {
      const login = authenticator.authenticateCertificate(certificate.commonName, { door, remote: address ?? '' })
      return login.ok ? (this.#may(login.identity, address) ? login.identity : undefined) : undefined
    }
    if (user !== null && this.#opts.userLoopbackOnly === true && !isLoopback(address)) {
      this.#refuse(address, 'loopback_only')
      return undefined
    }
    const identity = user !== null ? authenticator.identityFor(user, 'listener') : authenticator.anonymous({ door, remote: address ?? '' })
    if (identity === undefined) {
      this.#refuse(address, 'no_credentials')
      return undefined
    }
    return this.#may(identity, address) ? identity : undefined
  }

  // Not a failed login but a refused operation (sluice_auth_denials_total). It cannot happen with a
  // listener's own user (checked at start); it can once a certificate chooses the user.
  #may(identity: Identity, address: string | undefined): boolean {
    let denial = this.#mayPublish.get(identity)
    if (denial === undefined) {
      denial = this.#opts.authorizer.authorize(identity, 'publish', { exchange: { kind: 'exchange', name: this.#opts.exchange } }) ?? null
      this.#mayPublish.set(identity, denial)
    }
    if (denial === null) return true
    this.#opts.authorizer.refused(this.#opts.door, denial)
    this.#logRefusal(address, 'forbidden', identity.username)
    return false
  }

  #refuse(address: string | undefined, reason: 'address' | 'no_credentials' | 'loopback_only'): void {
    this.#opts.authenticator.refuse({ door: this.#opts.door, remote: address ?? '' }, reason)
    this.#logRefusal(address, reason)
  }

  #logRefusal(address: string | undefined, reason: string, user?: string): void {
    const now = this.#now()
    if (now - this.#log.at < refusalLogEveryMs) {
      this.#log.suppressed++
      return
    }
    const suppressed = this.#log.suppressed
    this.#log = { at: now, suppressed: 0 }
    const { door, exchange } = this.#opts
    this.#opts.logger.warn(
      { listener: door, remote: address, reason, ...(user !== undefined ? { user, exchange } : {}), ...(suppressed > 0 ? { alsoRefusedSinceLastLine: suppressed } : {}) },
      refusalMessages[reason] ?? 'refused',
    )
  }
}

/** For a connection a door takes no event from: closed at once, nothing to finish at a stop. */
export function refuseConnection(socket: Socket): { end(): Promise<void> } {
  socket.destroy()
  return { end: () => Promise.resolve() }
}
