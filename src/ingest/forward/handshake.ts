// Forward's shared-key handshake, as Fluentd's in_forward `<security>` runs it:
//
//   server → ['HELO', {nonce, auth, keepalive}]
//   client → ['PING', client_hostname, salt, sha512_hex(salt + client_hostname + nonce + shared_key), username, password_digest]
//   server → ['PONG', ok, reason, server_hostname, sha512_hex(salt + server_hostname + nonce + shared_key)]
//
// The nonce is fresh per connection, so a recorded PING is worth nothing on another one. Sluice
// has no Forward users (`auth` is empty): the listener's `user` publishes, as on every stream door.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { encode } from '@msgpack/msgpack'

const hex512 = (...parts: ReadonlyArray<string | Uint8Array>): string => {
  const h = createHash('sha512')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

export type PingOutcome = { readonly ok: true; readonly pong: Uint8Array } | { readonly ok: false; readonly pong: Uint8Array; readonly reason: string }

export class SharedKeyHandshake {
  readonly #nonce = randomBytes(16)

  constructor(
    private readonly sharedKey: string,
    private readonly selfHostname: string,
  ) {}

  /** What the server sends first, on accept. */
  helo(): Uint8Array {
    return encode(['HELO', { nonce: this.#nonce, auth: '', keepalive: true }])
  }

  /** Checks a PING; the PONG to send either way (a failed one is followed by a close). */
  ping(message: readonly unknown[]): PingOutcome {
    const refuse = (reason: string): PingOutcome => ({ ok: false, reason, pong: encode(['PONG', false, reason, '', '']) })
    const [kind, hostname, salt, digest] = message
    if (kind !== 'PING' || message.length !== 6) return refuse('expected PING with 6 elements')
    if (typeof hostname !== 'string' || typeof digest !== 'string' || (typeof salt !== 'string' && !(salt instanceof Uint8Array))) return refuse('malformed PING')
    if (hostname === this.selfHostname) return refuse('same hostname between input and output: invalid configuration')
    const expected = Buffer.from(hex512(salt, hostname, this.#nonce, this.sharedKey))
    const given = Buffer.from(digest)
    // Constant time, so the digest cannot be found a byte at a time.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse('shared_key mismatch')
    return { ok: true, pong: encode(['PONG', true, '', this.selfHostname, hex512(salt, this.selfHostname, this.#nonce, this.sharedKey)]) }
  }
}
