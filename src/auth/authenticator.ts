import { createHmac, randomBytes } from 'node:crypto'
import type { AuthConfig, UserConfig } from '../config/index.js'
import type { Logger } from '../logger.js'
import { isLoopback, throttleKey } from './address.js'
import { identityOf, type AuthMethod, type Identity } from './identity.js'
import { parseKeyHash, parsePasswordHash, sameDigest, sha256, verifyPassword, type ScryptHash } from './secrets.js'
import { LoginThrottle } from './throttle.js'

/** Where a login comes from. `door` is a fixed word per door (http, amqp, …): a metric label. */
export interface LoginContext {
  readonly door: string
  /** The client's address as its socket reports it. */
  readonly remote: string
}

/** Why a login failed: the `reason` label of sluice_auth_failures_total. Clients only ever hear "refused". */
export type FailureReason = 'unknown_user' | 'bad_password' | 'bad_api_key' | 'loopback_only' | 'throttled' | 'malformed' | 'no_credentials' | 'address'

export type LoginResult =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: FailureReason; /** Set when refused unchecked: when to try again. */ readonly retryAfterMs?: number }

interface UserEntry {
  readonly config: UserConfig
  readonly identity: Identity
  /** sha256 of a plain password: equal-length digests compare in constant time. */
  readonly passwordDigest: Buffer | undefined
  readonly hash: ScryptHash | undefined
}

interface KeyEntry {
  readonly name: string
  readonly digest: Buffer
  readonly user: UserEntry
  readonly identity: Identity
}

export interface AuthenticatorOptions {
  readonly logger?: Logger | undefined
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
}

/**
 * Checks credentials against auth.users and auth.apiKeys, the same way for every door. Secrets are
 * compared in constant time (digests, timingSafeEqual) and never logged; failures are counted by
 * door and reason, logged without the secret (and without the username when it is not a user's,
 * since people type passwords into the user field), and slowed per address (throttle.ts).
 *
 * A passwordHash costs one scrypt (tens of milliseconds) the first time a password is checked;
 * then the password's keyed fingerprint is kept per user, so HTTP Basic, which sends it with every
 * request, does not pay it on every request.
 */
export class Authenticator {
  readonly #config: AuthConfig
  readonly #users = new Map<string, UserEntry>()
  readonly #keys: KeyEntry[] = []
  readonly #throttle: LoginThrottle
  readonly #logger: Logger | undefined
  // Fingerprints are keyed with a secret of this process, so they are useless outside it.
  readonly #fingerprintKey = randomBytes(32)
  /** Per passwordHash user: the fingerprint of the password scrypt last accepted. */
  readonly #hashVerified = new Map<string, Buffer>()
  /** A hash to spend the same time on when the username is unknown, so timing does not tell. */
  readonly #decoy: ScryptHash | undefined
  /** Identities without a login (anonymous, listener, certificate), made once per user and method. */
  readonly #byMethod = new Map<string, Identity>()
  readonly #failures = new Map<string, { door: string; reason: FailureReason; count: number }>()

  constructor(config: AuthConfig, opts: AuthenticatorOptions = {}) {
    this.#config = config
    this.#logger = opts.logger
    this.#throttle = new LoginThrottle({
      maxDelayMs: config.maxFailureDelayMs,
      maxPendingPerAddress: config.maxPendingLoginsPerAddress,
      maxTrackedAddresses: config.maxTrackedAddresses,
      ...(opts.now !== undefined ? { now: opts.now } : {}),
      ...(opts.sleep !== undefined ? { sleep: opts.sleep } : {}),
    })
    for (const user of config.users) {
      const hash = user.passwordHash === null ? undefined : parsePasswordHash(user.passwordHash)
      if (hash !== undefined && 'problem' in hash) throw new Error(`auth.users ${user.username}: passwordHash ${hash.problem}`)
      this.#users.set(user.username, {
        config: user,
        identity: identityOf(user, 'password'),
        passwordDigest: user.password === null ? undefined : sha256(user.password),
        hash,
      })
    }
    this.#decoy = [...this.#users.values()].find((u) => u.hash !== undefined)?.hash
    for (const k of config.apiKeys) {
      const user = this.#users.get(k.user)
      if (user === undefined) throw new Error(`auth.apiKeys ${k.name}: no user ${k.user}`)
      const digest = k.key !== null ? sha256(k.key) : parseKeyHash(k.keyHash ?? '')
      if (!Buffer.isBuffer(digest)) throw new Error(`auth.apiKeys ${k.name}: keyHash ${digest.problem}`)
      this.#keys.push({ name: k.name, digest, user, identity: identityOf(user.config, 'apiKey', k.name) })
    }
  }

  /** What a client sending no credentials is: guest, from loopback, under `anonymous: loopback`; else undefined. */
  anonymous(ctx: LoginContext): Identity | undefined {
    if (this.#config.anonymous !== 'loopback' || !isLoopback(ctx.remote)) return undefined
    return this.#identity('guest', 'anonymous')
  }

  /**
   * A configured user's identity without a credential check, for doors that name their user in
   * the configuration (a stream listener's `user`) or take it from a verified client certificate.
   */
  identityFor(username: string, method: Extract<AuthMethod, 'listener' | 'certificate' | 'cluster'>): Identity | undefined {
    return this.#identity(username, method)
  }

  #identity(username: string, method: 'anonymous' | 'listener' | 'certificate' | 'cluster'): Identity | undefined {
    const user = this.#users.get(username)
    if (user === undefined) return undefined
    const id = `${method}\0${username}`
    let identity = this.#byMethod.get(id)
    if (identity === undefined) {
      identity = identityOf(user.config, method)
      this.#byMethod.set(id, identity)
    }
    return identity
  }

  /** A username and password (HTTP Basic, AMQP PLAIN and AMQPLAIN). */
  async authenticatePassword(username: string, password: string, ctx: LoginContext): Promise<LoginResult> {
    const address = throttleKey(ctx.remote)
    const fingerprint = this.#fingerprint('password', username, password)
    const known = this.#users.get(username)
    if (known !== undefined && this.#throttle.verified(address, fingerprint) && this.#remoteAllowed(known, ctx)) return { ok: true, identity: known.identity }
    const turn = await this.#throttle.turn(address)
    if (turn.refused) return this.#fail(ctx, 'throttled', known?.config.username, turn.retryAfterMs)
    let ok = false
    try {
      const user = this.#users.get(username)
      if (user === undefined) {
        if (this.#decoy !== undefined) await verifyPassword(password, this.#decoy)
        return this.#fail(ctx, 'unknown_user', undefined)
      }
      if (!(await this.#checkPassword(user, password, fingerprint))) return this.#fail(ctx, 'bad_password', username)
      if (!this.#remoteAllowed(user, ctx)) return this.#fail(ctx, 'loopback_only', username)
      ok = true
      return { ok: true, identity: user.identity }
    } finally {
      turn.done(ok, fingerprint)
    }
  }

  /**
   * A verified TLS client certificate naming a user by its subject's CN (AMQP's SASL EXTERNAL).
   * The handshake proved the key, so there is nothing to guess and no slowdown: only whether the
   * user exists and may log in from this address. A certificate without a CN is `malformed`.
   */
  authenticateCertificate(commonName: string | undefined, ctx: LoginContext): LoginResult {
    if (commonName === undefined || commonName === '') return this.#fail(ctx, 'malformed', undefined)
    const user = this.#users.get(commonName)
    // A certificate's name is no secret, unlike a mistyped username: it is logged.
    if (user === undefined) return this.#fail(ctx, 'unknown_user', commonName)
    if (!this.#remoteAllowed(user, ctx)) return this.#fail(ctx, 'loopback_only', commonName)
    const identity = this.#identity(commonName, 'certificate')
    return identity === undefined ? this.#fail(ctx, 'unknown_user', commonName) : { ok: true, identity }
  }

  /** An API key (HTTP `Authorization: Bearer <key>`); it acts as its user. */
  async authenticateApiKey(key: string, ctx: LoginContext): Promise<LoginResult> {
    const address = throttleKey(ctx.remote)
    const fingerprint = this.#fingerprint('apiKey', '', key)
    const digest = sha256(key)
    const known = this.#findKey(digest)
    if (known !== undefined && this.#throttle.verified(address, fingerprint) && this.#remoteAllowed(known.user, ctx)) return { ok: true, identity: known.identity }
    const turn = await this.#throttle.turn(address)
    if (turn.refused) return this.#fail(ctx, 'throttled', undefined, turn.retryAfterMs)
    let ok = false
    try {
      const entry = this.#findKey(digest)
      if (entry === undefined) return this.#fail(ctx, 'bad_api_key', undefined)
      if (!this.#remoteAllowed(entry.user, ctx)) return this.#fail(ctx, 'loopback_only', entry.user.config.username, undefined, entry.name)
      ok = true
      return { ok: true, identity: entry.identity }
    } finally {
      turn.done(ok, fingerprint)
    }
  }

  /**
   * Counts and logs a refusal a door decided itself (a malformed header, no credentials where some
   * are needed, a client address outside a listener's `allow` list, a stream listener's
   * `loopbackOnly` user from another address). An `address` refusal is not
   * logged here: a door refusing a flood of them logs them itself, a line at a time.
   */
  refuse(ctx: LoginContext, reason: Extract<FailureReason, 'malformed' | 'no_credentials' | 'address' | 'loopback_only'>): LoginResult {
    return this.#fail(ctx, reason, undefined)
  }

  /** Failed logins so far, by door and reason: sluice_auth_failures_total. */
  failureCounts(): Iterable<{ readonly door: string; readonly reason: FailureReason; readonly count: number }> {
    return this.#failures.values()
  }

  get trackedAddresses(): number {
    return this.#throttle.trackedAddresses
  }

  #findKey(digest: Buffer): KeyEntry | undefined {
    // Every key is compared, so the time taken does not depend on which one (if any) matched.
    let found: KeyEntry | undefined
    for (const entry of this.#keys) if (sameDigest(entry.digest, digest)) found ??= entry
    return found
  }

  async #checkPassword(user: UserEntry, password: string, fingerprint: string): Promise<boolean> {
    if (user.passwordDigest !== undefined) return sameDigest(user.passwordDigest, sha256(password))
    if (user.hash === undefined) return false
    const print = Buffer.from(fingerprint, 'hex')
    const cached = this.#hashVerified.get(user.config.username)
    if (cached !== undefined && sameDigest(cached, print)) return true
    const ok = await verifyPassword(password, user.hash)
    if (ok) this.#hashVerified.set(user.config.username, print)
    return ok
  }

  #remoteAllowed(user: UserEntry, ctx: LoginContext): boolean {
    return !user.config.loopbackOnly || isLoopback(ctx.remote)
  }

  #fingerprint(kind: string, username: string, secret: string): string {
    return createHmac('sha256', this.#fingerprintKey).update(`${kind}\0${username}\0${secret}`, 'utf8').digest('hex')
  }

  #fail(ctx: LoginContext, reason: FailureReason, username: string | undefined, retryAfterMs?: number, apiKey?: string): LoginResult {
    const id = `${ctx.door}\0${reason}`
    const entry = this.#failures.get(id)
    if (entry === undefined) this.#failures.set(id, { door: ctx.door, reason, count: 1 })
    else entry.count++
    // A throttled login is one of a flood already logged by its first failures; no line each.
    if (reason !== 'throttled' && reason !== 'no_credentials' && reason !== 'address') {
      this.#logger?.warn({ door: ctx.door, remote: ctx.remote, user: username, apiKey, reason }, 'login refused')
    }
    return retryAfterMs === undefined ? { ok: false, reason } : { ok: false, reason, retryAfterMs }
  }
}
