// An AMQP 0-9-1 client without a library, for benchmarks: frames built and parsed by hand, so the
// figures measure the server rather than amqplib (whose per-message cost is above the server's).
// It speaks just enough: the PLAIN handshake, one channel, and whatever the caller sends; and, on
// top of it, a publisher in confirm mode (LeanAmqpPublisher).

import { connect as netConnect, type Socket } from 'node:net'

export const FRAME_METHOD = 1
export const FRAME_HEADER = 2
export const FRAME_BODY = 3
const FRAME_END = 0xce

export interface Frame {
  readonly type: number
  readonly channel: number
  /** A view into the read buffer: valid until the handler returns. */
  readonly payload: Buffer
}

export function frame(type: number, channel: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(8 + payload.length)
  b[0] = type
  b.writeUInt16BE(channel, 1)
  b.writeUInt32BE(payload.length, 3)
  payload.copy(b, 7)
  b[7 + payload.length] = FRAME_END
  return b
}

export const shortstr = (s: string): Buffer => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)])
export const longstr = (s: Buffer): Buffer => Buffer.concat([u32(s.length), s])
export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
export const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}
const emptyTable = u32(0)

export function method(channel: number, classId: number, methodId: number, ...args: Buffer[]): Buffer {
  return frame(FRAME_METHOD, channel, Buffer.concat([u16(classId), u16(methodId), ...args]))
}

/** basic.ack of `tag` on `channel`, `multiple`: every unacked delivery up to it. */
export function basicAck(channel: number, tag: number, multiple: boolean): Buffer {
  return method(channel, 60, 80, u64(tag), Buffer.from([multiple ? 1 : 0]))
}

export class LeanAmqp {
  readonly sock: Socket
  #buf: Buffer = Buffer.alloc(0)
  /** Every frame goes here once the handshake is done; set by the caller. */
  onFrame: (f: Frame) => void = () => undefined
  /** After each read's frames: where what they called for goes out in one write. */
  onReadEnd: () => void = () => undefined
  onClose: (why: string) => void = () => undefined

  private constructor(sock: Socket) {
    this.sock = sock
    sock.on('data', (d: Buffer) => this.#read(d))
    sock.on('close', () => this.onClose('socket closed'))
    sock.on('error', (err) => this.onClose(err.message))
  }

  /** Connects to 127.0.0.1:port, logs in with PLAIN and opens channel 1. */
  static async open(port: number, user = 'guest', password = 'guest'): Promise<LeanAmqp> {
    const sock = netConnect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j))
    const c = new LeanAmqp(sock)
    const started = c.expect(10, 10)
    sock.write(Buffer.from([65, 77, 81, 80, 0, 0, 9, 1]))
    await started
    const tune = c.expect(10, 30)
    sock.write(method(0, 10, 11, emptyTable, shortstr('PLAIN'), longstr(Buffer.from(`\0${user}\0${password}`)), shortstr('en_US')))
    const t = await tune
    const opened = c.expect(10, 41)
    sock.write(Buffer.concat([method(0, 10, 31, u16(t.readUInt16BE(0)), u32(t.readUInt32BE(2)), u16(0)), method(0, 10, 40, shortstr('/'), shortstr(''), Buffer.from([0]))]))
    await opened
    const chan = c.expect(20, 11)
    sock.write(method(1, 20, 10, shortstr('')))
    await chan
    return c
  }

  #read(d: Buffer): void {
    let buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d])
    let off = 0
    while (buf.length - off >= 8) {
      const size = buf.readUInt32BE(off + 3)
      if (buf.length - off < size + 8) break
      this.onFrame({ type: buf[off]!, channel: buf.readUInt16BE(off + 1), payload: buf.subarray(off + 7, off + 7 + size) })
      off += size + 8
    }
    buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off)
    this.#buf = buf
    this.onReadEnd()
  }

  /** The next method frame's arguments, which must be class.method; anything else rejects. */
  expect(classId: number, methodId: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.onFrame = (f) => {
        if (f.type !== FRAME_METHOD) return
        const c = f.payload.readUInt16BE(0)
        const m = f.payload.readUInt16BE(2)
        if (c === classId && m === methodId) resolve(Buffer.from(f.payload.subarray(4)))
        else reject(new Error(`expected ${classId}.${methodId}, got ${c}.${m}: ${f.payload.subarray(4).toString('latin1')}`))
      }
    })
  }

  /**
   * basic.qos then basic.consume on channel 1; resolves at consume-ok. `onFrame` takes over from
   * consume-ok on, in the same read: deliveries can follow it in one chunk.
   */
  async consume(queue: string, prefetch: number, onFrame: (f: Frame) => void): Promise<void> {
    const qos = this.expect(60, 11)
    this.sock.write(method(1, 60, 10, u32(0), u16(prefetch), Buffer.from([0])))
    await qos
    const ok = this.expect(60, 21)
    const expecting = this.onFrame
    this.onFrame = (f) => {
      expecting(f)
      if (f.type === FRAME_METHOD && f.payload.readUInt16BE(0) === 60 && f.payload.readUInt16BE(2) === 21) this.onFrame = onFrame
    }
    this.sock.write(method(1, 60, 20, u16(0), shortstr(queue), shortstr(''), Buffer.from([0]), emptyTable))
    await ok
  }

  /** connection.close, resolved at close-ok: the server has taken in everything sent before. */
  async close(): Promise<void> {
    // Deliveries may still arrive before close-ok: only close-ok ends the wait.
    const ok = new Promise<void>((resolve) => {
      this.onFrame = (f) => {
        if (f.type === FRAME_METHOD && f.payload.readUInt16BE(0) === 10 && f.payload.readUInt16BE(2) === 51) resolve()
      }
    })
    this.sock.write(method(0, 10, 50, u16(200), shortstr('bye'), u16(0), u16(0)))
    await Promise.race([ok, new Promise((r) => setTimeout(r, 10_000))])
    this.sock.destroy()
  }
}

/** A basic.deliver method frame's delivery tag (after consumer-tag). */
export function deliveryTagOf(payload: Buffer): number {
  const ctLen = payload[4]!
  return Number(payload.readBigUInt64BE(5 + ctLen))
}

/** A basic.deliver method frame's redelivered bit. */
export function redeliveredOf(payload: Buffer): boolean {
  const ctLen = payload[4]!
  return (payload[13 + ctLen]! & 1) === 1
}

/** Properties of a published message (those a benchmark sets), in the content header. */
export interface PublishProperties {
  readonly contentType?: string
  /** 2: persistent */
  readonly deliveryMode?: 1 | 2
}

/**
 * One message as it goes on the wire: basic.publish (reserved, exchange, routing key, no flags),
 * the content header (class 60, weight 0, body size, property flags and the properties set) and
 * one body frame. The body must fit one frame of frame-min-size (4,096 bytes), which every server
 * accepts whatever was tuned.
 */
export function publishFrames(channel: number, exchange: string, routingKey: string, body: Buffer, props: PublishProperties = {}): Buffer {
  if (body.length > 4096 - 8) throw new Error(`a body of ${body.length} bytes does not fit one frame of 4,096`)
  let flags = 0
  const values: Buffer[] = []
  if (props.contentType !== undefined) {
    flags |= 0x8000
    values.push(shortstr(props.contentType))
  }
  if (props.deliveryMode !== undefined) {
    flags |= 0x1000
    values.push(Buffer.from([props.deliveryMode]))
  }
  const header = Buffer.concat([u16(60), u16(0), u64(body.length), u16(flags), ...values])
  return Buffer.concat([method(channel, 60, 40, u16(0), shortstr(exchange), shortstr(routingKey), Buffer.from([0])), frame(FRAME_HEADER, channel, header), frame(FRAME_BODY, channel, body)])
}

export interface LeanAmqpPublisherOptions {
  readonly port: number
  readonly exchange: string
  readonly routingKey: string
  /** the bodies, sent in turn */
  readonly bodies: readonly Buffer[]
  readonly props?: PublishProperties
  /** most messages unconfirmed at once: send() refuses to go past it */
  readonly maxUnconfirmed: number
}

/**
 * A publisher in confirm mode on channel 1: confirm.select, then every message pre-encoded
 * (publishFrames) in a ring of at least `maxUnconfirmed` messages, so `send(n)` is one write of a
 * slice of it (two at the ring's end). basic.ack settles a delivery tag, or with `multiple` every
 * unsettled tag up to it; basic.nack the same, as failed. Each settled message calls `onSettled`
 * with its send time, and after each read `onReadEnd` runs: a closed loop refills its window there.
 */
export class LeanAmqpPublisher {
  /** Each message settled: ok (basic.ack) or not (basic.nack); `sentAt` is its performance.now() at send. */
  onSettled: (ok: boolean, sentAt: number) => void = () => undefined
  onReadEnd: () => void = () => undefined
  /** The server closed the channel or connection, or the socket went (not after close()). */
  onError: (why: string) => void = () => undefined
  readonly #c: LeanAmqp
  readonly #ring: Buffer
  /** where message i of the ring starts; the last entry is the ring's length */
  readonly #offsets: number[]
  readonly #max: number
  #at = 0
  #nextTag = 1
  /** every tag up to this was settled by a `multiple` */
  #floor = 0
  /** send time of each tag not yet settled */
  readonly #sentAt = new Map<number, number>()
  #closing = false

  private constructor(c: LeanAmqp, o: LeanAmqpPublisherOptions) {
    this.#c = c
    this.#max = o.maxUnconfirmed
    // A whole number of passes over the bodies, at least maxUnconfirmed messages.
    const passes = Math.max(1, Math.ceil(o.maxUnconfirmed / o.bodies.length))
    const one = o.bodies.map((b) => publishFrames(1, o.exchange, o.routingKey, b, o.props))
    const msgs = Array.from({ length: passes }, () => one).flat()
    this.#offsets = [0]
    for (const m of msgs) this.#offsets.push(this.#offsets[this.#offsets.length - 1]! + m.length)
    this.#ring = Buffer.concat(msgs)
    c.onFrame = (f) => {
      if (f.type !== FRAME_METHOD) return
      const cls = f.payload.readUInt16BE(0)
      const m = f.payload.readUInt16BE(2)
      // basic.ack (80) and basic.nack (120): delivery-tag, then a bit field with multiple first.
      if (cls === 60 && (m === 80 || m === 120)) this.#settle(Number(f.payload.readBigUInt64BE(4)), (f.payload[12]! & 1) === 1, m === 80)
      else if (cls === 10 || cls === 20) this.onError(`closed by the server: ${f.payload.subarray(4).toString('latin1')}`)
    }
    c.onReadEnd = () => this.onReadEnd()
    c.onClose = (why) => {
      if (!this.#closing) this.onError(why)
    }
  }

  /** Connects to 127.0.0.1:port (LeanAmqp.open) and puts channel 1 in confirm mode. */
  static async open(o: LeanAmqpPublisherOptions): Promise<LeanAmqpPublisher> {
    if (o.bodies.length === 0 || o.maxUnconfirmed < 1) throw new Error('LeanAmqpPublisher: no bodies, or no room for one message')
    const c = await LeanAmqp.open(o.port)
    const selected = c.expect(85, 11)
    c.sock.write(method(1, 85, 10, Buffer.from([0])))
    await selected
    return new LeanAmqpPublisher(c, o)
  }

  /** Messages sent and not yet settled. */
  get unconfirmed(): number {
    return this.#sentAt.size
  }

  /** Sends the next `n` messages of the ring; more than maxUnconfirmed unsettled is refused. */
  send(n: number): void {
    if (n <= 0) return
    if (this.#sentAt.size + n > this.#max) throw new Error(`LeanAmqpPublisher: ${this.#sentAt.size} unconfirmed + ${n} is over ${this.#max}`)
    const now = performance.now()
    for (let i = 0; i < n; i++) this.#sentAt.set(this.#nextTag++, now)
    const len = this.#offsets.length - 1
    const end = this.#at + n
    const sock = this.#c.sock
    if (end <= len) sock.write(this.#ring.subarray(this.#offsets[this.#at]!, this.#offsets[end]!))
    else {
      sock.cork()
      sock.write(this.#ring.subarray(this.#offsets[this.#at]!))
      sock.write(this.#ring.subarray(0, this.#offsets[end - len]!))
      sock.uncork()
    }
    this.#at = end % len
  }

  #settle(tag: number, multiple: boolean, ok: boolean): void {
    if (!multiple) {
      const sentAt = this.#sentAt.get(tag)
      if (sentAt === undefined) return
      this.#sentAt.delete(tag)
      this.onSettled(ok, sentAt)
      return
    }
    // Every tag above the last multiple's and up to this one (no further than the last sent) that
    // is still unsettled; the floor only rises, so each tag is looked at once however acks come.
    const upTo = Math.min(tag, this.#nextTag - 1)
    for (let t = this.#floor + 1; t <= upTo; t++) {
      const sentAt = this.#sentAt.get(t)
      if (sentAt === undefined) continue
      this.#sentAt.delete(t)
      this.onSettled(ok, sentAt)
    }
    if (upTo > this.#floor) this.#floor = upTo
  }

  /** connection.close, resolved at close-ok (at most 10 s). */
  close(): Promise<void> {
    this.#closing = true
    return this.#c.close()
  }
}
