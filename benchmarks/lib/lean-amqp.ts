// An AMQP 0-9-1 client without a library, for benchmarks: frames built and parsed by hand, so the
// figures measure the server rather than amqplib (whose per-message cost is above the server's).
// It speaks just enough: the PLAIN handshake, one channel, and whatever the caller sends.

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
