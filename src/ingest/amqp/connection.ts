import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { Authenticator, Authorizer, Identity, LoginResult, Operation, ResourcesOf } from '../../auth/index.js'
import type { AmqpListenerConfig } from '../../config/index.js'
import { hitLimit } from '../../limits.js'
import type { Logger } from '../../logger.js'
import type { ListenerCounters } from '../tcp/server.js'
import type { PeerCertificate } from '../tcp/tls.js'
import { AmqpChannel, type ChannelHost } from './channel.js'
import { type Command, CommandAssembler } from './commands.js'
import { FRAME_MIN_SIZE, PROTOCOL_HEADER, ReplyCode } from './constants.js'
import { decodeFieldTable, type FieldTable, isFieldTable, fieldString } from './field-table.js'
import { FrameParser, HEARTBEAT_FRAME, type Frame } from './frames.js'
import { encodeMethodFrame, type MethodInit } from './methods.js'
import { AmqpProtocolError } from './protocol-error.js'
import { AmqpReplyError, reply } from './reply.js'
import type { AmqpVhost } from './vhost.js'

// One AMQP connection, after RabbitMQ's rabbit_reader:
//
//   client                         server
//   "AMQP" 0 0 9 1          →
//                           ←      connection.start (PLAIN, AMQPLAIN; server properties)
//   connection.start-ok     →      (credentials checked)
//                           ←      connection.tune (channel-max, frame-max, heartbeat)
//   connection.tune-ok      →
//   connection.open "/"     →
//                           ←      connection.open-ok
//   ... channels ...
//   connection.close        →  ←   connection.close-ok
//
// A wrong protocol header is answered with ours, then the socket closes. Hard errors close the
// connection with connection.close and the reply code; soft ones close one channel.
// Heartbeats: sent when nothing else went out for an interval; the socket is closed when nothing
// came in for two.

/** How long a connection.close waits for close-ok before the socket is destroyed. */
const closeOkWaitMs = 2000
/**
 * After a client's connection.close, how long channel frames must stop arriving before close-ok,
 * when some came after the close (amqplib writes a channel's buffered publishes after it).
 */
const lateFramesQuietMs = 100

async function lateFramesQuiet(): Promise<void> {
  await new Promise((r) => setTimeout(r, lateFramesQuietMs))
  // Two more turns: a loop blocked past the timer still reads what arrived meanwhile.
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
}

export const sluiceVersion: string = (() => {
  for (const up of ['../../../package.json', '../../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'sluice' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // try the next level: src/ and dist/src/ sit at different depths
    }
  }
  return '0.0.0'
})()

export interface ConnectionDeps {
  readonly id: string
  readonly vhost: AmqpVhost
  readonly config: AmqpListenerConfig
  /** Checks PLAIN and AMQPLAIN logins: auth.users, with guest/guest from loopback only by default, as RabbitMQ. */
  readonly authenticator: Authenticator
  /** Decides each declare, bind, publish and consume for the logged-in user. */
  readonly authorizer: Authorizer
  readonly bodySizeMax: number
  readonly logger: Logger
  readonly counters: ListenerCounters
  /** Registers for alarm changes; returns the unregister function. */
  readonly onAlarm: (fn: (blocked: boolean) => void) => () => void
  /**
   * The client certificate the TLS handshake verified (a listener with `clientAuth`): SASL
   * EXTERNAL is offered, and logs in as the user its subject's CN names.
   */
  readonly peer?: PeerCertificate | undefined
  /** Set when the socket is over a connection cap: it is refused at connection.start-ok. */
  readonly refusal?: Refusal | undefined
  /** Counts a limit that refused or cut something, and logs it (rate-limited). */
  readonly limitHit: (limit: string, fields: Record<string, unknown>, message: string) => void
}

/** Why a connection is refused: the limit's metric name and the reply text naming it. */
export interface Refusal {
  readonly limit: string
  readonly text: string
}

/**
 * A refused client gets this long (at most its handshake timeout) to read why: a real client
 * sends its header and start-ok in one round trip, and a silent socket over a cap should not hold
 * a slot for the whole handshake timeout.
 */
const refusedHandshakeMs = 1000

/**
 * Refused operations logged at warn per connection; later ones go to debug (still counted), so a
 * client retrying a refused declare in a loop cannot flood the log.
 */
const deniedWarnPerConnection = 10

// draining: the client sent connection.close; its channels finish what they read, then close-ok.
// closing: we sent connection.close and wait for close-ok.
type State = 'start' | 'secure' | 'tune' | 'open-wait' | 'open' | 'draining' | 'closing' | 'closed'

export class AmqpConnection implements ChannelHost {
  readonly id: string
  readonly remote: string
  readonly vhost: AmqpVhost
  capabilities = { consumerCancelNotify: false, basicNack: false, connectionBlocked: false }
  frameMax: number
  readonly #socket: Socket
  readonly #deps: ConnectionDeps
  readonly #parser: FrameParser
  readonly #assembler: CommandAssembler
  readonly #channels = new Map<number, AmqpChannel>()
  readonly #touched = new Set<AmqpChannel>()
  #state: State = 'start'
  #channelMax: number
  #heartbeatMs = 0
  #heartbeatTimer: NodeJS.Timeout | undefined
  #handshakeTimer: NodeJS.Timeout | undefined
  #lastRead = Date.now()
  #lastWrite = Date.now()
  #pendingPublishBytes = 0
  #holds = 0
  /** Channel commands taken while draining after connection.close. */
  #framesIn = 0
  #paused = false
  #blockedSent = false
  #user = ''
  #identity: Identity | undefined
  #denied = 0
  /** Commands that arrived while the login was being checked. */
  #afterLogin: Command[] = []
  readonly #offAlarm: () => void
  /** Channels waiting to publish until an alarm clears. */
  readonly #unblockWaiters: Array<() => void> = []
  #closed: Promise<void>
  #resolveClosed!: () => void

  constructor(socket: Socket, remote: string, deps: ConnectionDeps) {
    this.id = deps.id
    this.remote = socket.remoteAddress ?? remote
    this.vhost = deps.vhost
    this.#socket = socket
    this.#deps = deps
    this.frameMax = deps.config.frameMaxBytes
    this.#channelMax = deps.config.channelMax
    this.#closed = new Promise((r) => (this.#resolveClosed = r))
    this.#parser = new FrameParser({
      frameMax: Math.max(FRAME_MIN_SIZE, deps.config.frameMaxBytes),
      onProtocolHeader: () => this.#sendStart(),
      onFrame: (f) => this.#onFrame(f),
    })
    this.#assembler = new CommandAssembler({ bodySizeMax: deps.bodySizeMax })
    this.#offAlarm = deps.onAlarm((blocked) => {
      if (!blocked) for (const wake of this.#unblockWaiters.splice(0)) wake()
      this.#alarm(blocked)
    })
    const handshakeMs = deps.refusal === undefined ? deps.config.handshakeTimeoutMs : Math.min(deps.config.handshakeTimeoutMs, refusedHandshakeMs)
    this.#handshakeTimer = setTimeout(() => this.#handshakeTimedOut(), handshakeMs)
    this.#handshakeTimer.unref()
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.once('close', () => this.#onSocketClose())
  }

  // ---- ChannelHost -------------------------------------------------------------------------------

  write(buf: Buffer): void {
    if (this.#socket.destroyed) return
    this.#lastWrite = Date.now()
    this.#socket.write(buf)
  }

  sendMethod(channel: number, method: MethodInit): void {
    this.write(encodeMethodFrame(channel, method))
  }

  get writableNeedDrain(): boolean {
    return this.#socket.writableNeedDrain
  }

  onDrain(fn: () => void): void {
    this.#socket.once('drain', fn)
  }

  publishing(bytes: number): void {
    this.#pendingPublishBytes += bytes
    this.#flow()
  }

  unblocked(): Promise<void> {
    if (!this.vhost.deps.blocked()) return Promise.resolve()
    return new Promise((resolve) => this.#unblockWaiters.push(resolve))
  }

  hold(until: Promise<unknown>): void {
    this.#holds++
    this.#flow()
    void until.finally(() => {
      this.#holds--
      this.#flow()
    })
  }

  /** Reads the socket only while publishes in flight are under their bound and nothing holds it. */
  #flow(): void {
    const full = this.#pendingPublishBytes >= this.#deps.config.maxPendingPublishBytes
    const pause = this.#holds > 0 || full
    if (pause && !this.#paused) {
      this.#paused = true
      if (full) hitLimit('amqp.maxPendingPublishSize')
      this.#socket.pause()
    } else if (!pause && this.#paused) {
      this.#paused = false
      if (!this.#socket.destroyed) this.#socket.resume()
    }
  }

  hardError(err: AmqpReplyError): void {
    this.#close(err.replyCode, err.replyText, err.classId, err.methodId)
  }

  channelClosed(number: number): void {
    this.#channels.delete(number)
    this.#assembler.reset(number)
  }

  authorize<O extends Operation>(operation: O, resources: ResourcesOf<O>): void {
    const identity = this.#identity
    // Channels open only after connection.open, which comes after the login: never undefined here.
    if (identity === undefined) throw reply.commandInvalid(`${operation} before the login`)
    const denied = this.#deps.authorizer.authorize(identity, operation, resources)
    if (denied === undefined) return
    this.#deps.authorizer.refused('amqp', denied)
    const fields = { listener: 'amqp', remote: this.remote, user: identity.username, operation, permission: denied.permission, resource: denied.resource }
    if (++this.#denied <= deniedWarnPerConnection) this.#deps.logger.warn(fields, 'AMQP operation refused')
    else this.#deps.logger.debug(fields, 'AMQP operation refused')
    throw reply.accessRefused(denied.permission, denied.resource, identity.username)
  }

  countMessage(bytes: number): void {
    void bytes
    this.#deps.counters.messages++
  }

  // ---- input -------------------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    this.#lastRead = Date.now()
    this.#deps.counters.bytes += chunk.length
    if (this.#state === 'closed') return
    const err = this.#parser.feed(chunk)
    for (const ch of this.#touched) ch.kick()
    this.#touched.clear()
    if (err !== undefined) this.#protocolError(err)
  }

  #protocolError(err: AmqpProtocolError): void {
    this.#deps.counters.parseErrors++
    if (err.kind === 'protocol-header') {
      // Not AMQP 0-9-1: tell the client which protocol we speak, then hang up.
      this.#socket.end(PROTOCOL_HEADER)
      this.#state = 'closed'
      return
    }
    this.#close(err.replyCode, `${replyName(err.replyCode)} - ${err.message}`, err.classId, err.methodId)
  }

  #onFrame(frame: Frame): void {
    if (this.#state === 'closed') return
    const out = this.#assembler.push(frame)
    if (out === undefined) return
    if (out instanceof AmqpProtocolError) {
      this.#protocolError(out)
      return
    }
    // A client may send tune-ok, open and more right behind its start-ok without waiting; they
    // wait here, in order, until the login is decided (the socket is held meanwhile).
    if (this.#state === 'secure') {
      this.#afterLogin.push(out)
      return
    }
    this.#dispatch(out)
  }

  #dispatch(out: Command): void {
    try {
      if (out.channel === 0) this.#connectionMethod(out)
      else this.#channelCommand(out)
    } catch (err) {
      if (err instanceof AmqpReplyError) this.#close(err.replyCode, err.replyText, err.classId || out.method.classId, err.methodId || out.method.methodId)
      else throw err
    }
  }

  #connectionMethod(cmd: Command): void {
    const m = cmd.method
    if (this.#state === 'draining') return // close-ok goes out once the channels finish
    if (this.#state === 'closing') {
      if (m.name === 'connection.close-ok' || m.name === 'connection.close') {
        if (m.name === 'connection.close') this.sendMethod(0, { name: 'connection.close-ok' })
        this.#socket.end()
        this.#state = 'closed'
      }
      return
    }
    switch (m.name) {
      case 'connection.start-ok':
        if (this.#state !== 'start') throw reply.commandInvalid('connection.start-ok out of order')
        return this.#startOk(m.clientProperties, m.mechanism, m.response)
      case 'connection.secure-ok':
        throw reply.commandInvalid('connection.secure-ok: no challenge was sent')
      case 'connection.tune-ok':
        if (this.#state !== 'tune') throw reply.commandInvalid('connection.tune-ok out of order')
        return this.#tuneOk(m.channelMax, m.frameMax, m.heartbeat)
      case 'connection.open':
        if (this.#state !== 'open-wait') throw reply.commandInvalid('connection.open out of order')
        if (m.virtualHost !== '/') {
          this.#close(ReplyCode.NOT_ALLOWED, `NOT_ALLOWED - vhost ${m.virtualHost} not found`, m.classId, m.methodId)
          return
        }
        this.#state = 'open'
        clearTimeout(this.#handshakeTimer)
        this.sendMethod(0, { name: 'connection.open-ok', knownHosts: '' })
        if (this.vhost.deps.blocked()) this.#alarm(true)
        return
      case 'connection.close':
        this.#state = 'draining'
        void this.#finishChannels(true).then(() => {
          if (this.#state !== 'draining') return // the socket ended first: nobody to answer
          this.sendMethod(0, { name: 'connection.close-ok' })
          this.#state = 'closed'
          this.#socket.end()
        })
        return
      case 'connection.close-ok':
        return
      case 'connection.blocked':
      case 'connection.unblocked':
        return
      case 'connection.update-secret':
        this.sendMethod(0, { name: 'connection.update-secret-ok' })
        return
      default:
        throw reply.commandInvalid(`unexpected method ${m.name} on channel 0`)
    }
  }

  #channelCommand(cmd: Command): void {
    if (this.#state !== 'open' && this.#state !== 'draining') {
      if (this.#state === 'closing') return
      throw reply.commandInvalid(`${cmd.method.name} before connection.open`)
    }
    const n = cmd.channel
    const m = cmd.method
    const ch = this.#channels.get(n)
    if (this.#state === 'draining') {
      // After connection.close a client may send nothing, yet amqplib writes its channels' last
      // frames after it (it interleaves channels): what reaches an open channel before close-ok
      // still runs. Nothing new starts.
      if (ch === undefined || m.name === 'channel.open' || m.name === 'channel.close' || m.name === 'channel.close-ok') return
      ch.receive(cmd)
      this.#touched.add(ch)
      this.#framesIn++
      return
    }
    if (m.name === 'channel.open') {
      if (ch !== undefined) throw reply.channelError(`second 'channel.open' seen on channel ${n}`)
      if (n > this.#channelMax) throw reply.notAllowed(`channel ${n} is over the negotiated channel-max ${this.#channelMax}`)
      this.#channels.set(n, new AmqpChannel(n, this))
      this.sendMethod(n, { name: 'channel.open-ok', channelId: Buffer.alloc(0) })
      return
    }
    if (ch === undefined) throw reply.channelError(`expected 'channel.open' on channel ${n}`)
    if (m.name === 'channel.close') {
      if (ch.closing) {
        // Both sides closed at once: answer theirs, and still wait for the close-ok to ours.
        this.sendMethod(n, { name: 'channel.close-ok' })
        return
      }
      void ch.finish().then(() => {
        // The connection may have closed meanwhile; then close-ok has nobody to go to.
        if (this.#channels.get(n) !== ch || this.#state !== 'open') return
        this.sendMethod(n, { name: 'channel.close-ok' })
        this.channelClosed(n)
      })
      return
    }
    if (m.name === 'channel.close-ok') {
      ch.closeOk()
      this.channelClosed(n)
      return
    }
    if (!ch.open) return // closing: everything but close and close-ok is dropped, as the spec says
    ch.receive(cmd)
    this.#touched.add(ch)
  }

  // ---- handshake ---------------------------------------------------------------------------------

  #sendStart(): void {
    const capabilities: FieldTable = {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
    }
    this.sendMethod(0, {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: { product: 'Sluice', version: sluiceVersion, platform: `Node.js ${process.version}`, information: 'Durable log pipeline with AMQP 0-9-1 routing', capabilities },
      // EXTERNAL only where there is something to log in with, as RabbitMQ's rabbitmq_auth_mechanism_ssl.
      mechanisms: Buffer.from(this.#deps.peer === undefined ? 'PLAIN AMQPLAIN' : 'PLAIN AMQPLAIN EXTERNAL'),
      locales: Buffer.from('en_US'),
    })
  }

  #startOk(clientProperties: FieldTable, mechanism: string, response: Buffer): void {
    if (this.#deps.refusal !== undefined) {
      // Over a connection cap: refused before the credentials are even looked at.
      this.#close(ReplyCode.NOT_ALLOWED, `NOT_ALLOWED - ${this.#deps.refusal.text}`, 10, 11)
      return
    }
    const caps = clientProperties.capabilities
    if (isFieldTable(caps)) {
      this.capabilities = { consumerCancelNotify: caps.consumer_cancel_notify === true, basicNack: caps['basic.nack'] === true, connectionBlocked: caps['connection.blocked'] === true }
    }
    const ctx = { door: 'amqp', remote: this.#socket.remoteAddress ?? this.remote }
    let user: string | undefined
    let pass: string | undefined
    let check: Promise<LoginResult> | undefined
    if (mechanism === 'EXTERNAL' && this.#deps.peer !== undefined) {
      // The response (an authorization identity) is ignored, as RabbitMQ does: the certificate says who.
      check = Promise.resolve(this.#deps.authenticator.authenticateCertificate(this.#deps.peer.commonName, ctx))
    } else if (mechanism === 'PLAIN') {
      // authzid \0 authcid \0 password
      const parts = response.toString('utf8').split('\0')
      if (parts.length === 3) [, user, pass] = parts
    } else if (mechanism === 'AMQPLAIN') {
      // A field table without its length prefix: LOGIN and PASSWORD.
      try {
        const len = Buffer.alloc(4)
        len.writeUInt32BE(response.length)
        const t = decodeFieldTable(Buffer.concat([len, response]))
        user = fieldString(t.LOGIN)
        pass = fieldString(t.PASSWORD)
      } catch {
        user = undefined
      }
    } else {
      // EXTERNAL without a verified client certificate was not offered: unknown here too.
      this.#close(ReplyCode.COMMAND_INVALID, `COMMAND_INVALID - unknown authentication mechanism '${mechanism}'`, 10, 11)
      return
    }
    if (check === undefined) {
      if (user === undefined || pass === undefined) {
        this.#deps.authenticator.refuse(ctx, 'malformed')
        this.#refuseLogin(mechanism)
        return
      }
      check = this.#deps.authenticator.authenticatePassword(user, pass, ctx)
    }
    // While the credentials are checked (a scrypt hash, or a wait after failures from this
    // address) nothing else is expected from the client; a second start-ok is out of order.
    this.#state = 'secure'
    const login = check.then(
      (result) => {
        if (this.#state !== 'secure') return // closed or timed out meanwhile
        const waiting = this.#afterLogin
        this.#afterLogin = []
        if (!result.ok) {
          this.#refuseLogin(mechanism)
          return
        }
        this.#user = result.identity.username
        this.#identity = result.identity
        this.#state = 'tune'
        this.sendMethod(0, { name: 'connection.tune', channelMax: this.#deps.config.channelMax, frameMax: this.#deps.config.frameMaxBytes, heartbeat: Math.round(this.#deps.config.heartbeatMs / 1000) })
        for (const cmd of waiting) {
          // A command may close the connection; what follows it is then dropped, as the parser would.
          if ((this.#state as State) === 'closed' || (this.#state as State) === 'closing') break
          this.#dispatch(cmd)
        }
        for (const ch of this.#touched) ch.kick()
        this.#touched.clear()
      },
      (err: unknown) => {
        this.#deps.logger.error({ err, listener: 'amqp', remote: this.remote }, 'AMQP login check failed')
        this.#afterLogin = []
        if (this.#state === 'secure') this.#refuseLogin(mechanism)
      },
    )
    this.hold(login)
  }

  /** Who logged in on this connection, once connection.tune has gone out: what the channels' checks use. */
  get identity(): Identity | undefined {
    return this.#identity
  }

  #refuseLogin(mechanism: string): void {
    this.#close(ReplyCode.ACCESS_REFUSED, `ACCESS_REFUSED - Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`, 10, 11)
  }

  #tuneOk(channelMax: number, frameMax: number, heartbeat: number): void {
    const ours = this.#deps.config.frameMaxBytes
    if (frameMax !== 0 && frameMax < FRAME_MIN_SIZE) {
      this.#close(ReplyCode.NOT_ALLOWED, `NOT_ALLOWED - frame_max=${frameMax} < ${FRAME_MIN_SIZE} min size`, 10, 31)
      return
    }
    if (frameMax > ours) {
      this.#close(ReplyCode.NOT_ALLOWED, `NOT_ALLOWED - frame_max=${frameMax} > ${ours} max size`, 10, 31)
      return
    }
    this.frameMax = frameMax === 0 ? ours : frameMax
    this.#parser.frameMax = Math.max(FRAME_MIN_SIZE, this.frameMax)
    this.#channelMax = channelMax === 0 ? this.#deps.config.channelMax : Math.min(channelMax, this.#deps.config.channelMax)
    this.#heartbeatMs = heartbeat * 1000
    this.#state = 'open-wait'
    if (this.#heartbeatMs > 0) {
      this.#lastRead = Date.now()
      this.#heartbeatTimer = setInterval(() => this.#beat(), Math.max(250, this.#heartbeatMs / 2))
      this.#heartbeatTimer.unref()
    }
  }

  /** RabbitMQ's handshake_timeout: a socket that does not reach connection.open in time is closed. */
  #handshakeTimedOut(): void {
    if (this.#state === 'open' || this.#state === 'draining') return
    // 'closed' here is a socket we answered and ended (a wrong protocol header) whose peer never
    // closed its side: it goes too, without counting as a timeout.
    if (this.#state !== 'closed' && this.#deps.refusal === undefined) {
      this.#deps.limitHit(
        'amqp.handshakeTimeout',
        { remote: this.remote, state: this.#state, timeoutMs: this.#deps.config.handshakeTimeoutMs },
        'AMQP handshake timed out (server.amqp.handshakeTimeout); closing the connection',
      )
    }
    this.#state = 'closed'
    this.#socket.destroy()
  }

  #beat(): void {
    const now = Date.now()
    if (now - this.#lastRead > 2 * this.#heartbeatMs) {
      // Two intervals without a byte: the peer or the path is gone.
      this.#deps.counters.idleClosed++
      this.#deps.logger.info({ listener: 'amqp', remote: this.remote, user: this.#user }, 'AMQP heartbeat missed; closing the connection')
      this.#socket.destroy()
      return
    }
    if (now - this.#lastWrite >= this.#heartbeatMs / 2) this.write(HEARTBEAT_FRAME)
  }

  #alarm(blocked: boolean): void {
    if (this.#state !== 'open' || !this.capabilities.connectionBlocked) return
    if (blocked && !this.#blockedSent) {
      this.#blockedSent = true
      this.sendMethod(0, { name: 'connection.blocked', reason: 'low on resources' })
    } else if (!blocked && this.#blockedSent) {
      this.#blockedSent = false
      this.sendMethod(0, { name: 'connection.unblocked' })
    }
  }

  // ---- closing -----------------------------------------------------------------------------------

  /** Server-initiated connection.close: channels are released now, the socket after close-ok. */
  #close(code: number, text: string, classId = 0, methodId = 0): void {
    // While draining the client already closed: its close-ok goes out once the channels finish.
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'draining') return
    this.sendMethod(0, { name: 'connection.close', replyCode: code, replyText: text.length > 255 ? text.slice(0, 255) : text, failingClassId: classId, failingMethodId: methodId })
    this.#state = 'closing'
    this.#teardown()
    setTimeout(() => this.#socket.destroy(), closeOkWaitMs).unref()
  }

  /** After an error: what the channels read and did not run yet is dropped. */
  #teardown(): void {
    for (const ch of this.#channels.values()) ch.teardown()
    this.#channels.clear()
  }

  /**
   * After the client's close or the end of its socket: every channel runs what it read first.
   * `moreInput`: the socket is still read, so commands may keep coming; wait until a round of
   * settling saw none.
   */
  async #finishChannels(moreInput: boolean): Promise<void> {
    for (;;) {
      const seen = this.#framesIn
      await Promise.all([...this.#channels.values()].map((ch) => ch.settled()))
      if (!moreInput || this.#state !== 'draining') break
      if (this.#framesIn !== seen) continue
      // Nothing new while settling. A client that sent nothing after its close gets close-ok now
      // (after one more turn for bytes already here); one that did (amqplib) may have more on the
      // way, so it gets a short quiet period first.
      await new Promise((r) => setImmediate(r))
      if (this.#framesIn > 0) await lateFramesQuiet()
      // Quiet means nothing arrived and nothing waits to be read: a socket a channel paused (a
      // hold, the pending-bytes bound) has its bytes in the buffers, not yet counted in framesIn.
      if (this.#paused || this.#socket.readableLength > 0) {
        await lateFramesQuiet()
        continue
      }
      if (this.#framesIn === seen) break
    }
    await Promise.all([...this.#channels.values()].map((ch) => ch.finish()))
    this.#teardown()
  }

  #onSocketClose(): void {
    this.#state = 'closed'
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer)
    clearTimeout(this.#handshakeTimer)
    this.#offAlarm()
    // Whole publishes read before the socket ended (FIN, reset, heartbeat timeout) are stored,
    // even though nobody is left to be told.
    void this.#finishChannels(false)
      .then(() => this.vhost.connectionClosed(this.id))
      .catch((err: unknown) => this.#deps.logger.warn({ err, listener: 'amqp', remote: this.remote }, 'AMQP connection cleanup failed'))
      .finally(() => this.#resolveClosed())
  }

  /** The server is stopping: confirms of what was read go out, then connection.close 320. */
  async end(): Promise<void> {
    await Promise.all([...this.#channels.values()].map((ch) => ch.drained()))
    if (this.#state === 'open' || this.#state === 'open-wait' || this.#state === 'tune' || this.#state === 'start' || this.#state === 'secure') {
      this.#close(ReplyCode.CONNECTION_FORCED, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
    }
  }

  get closed(): Promise<void> {
    return this.#closed
  }
}

function replyName(code: number): string {
  for (const [k, v] of Object.entries(ReplyCode)) if (v === code) return k
  return 'ERROR'
}
