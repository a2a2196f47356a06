import { FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_MAX_DEFAULT, FRAME_METHOD, FRAME_MIN_SIZE, FRAME_OVERHEAD, PROTOCOL_HEADER, ReplyCode } from './constants.js'
import { type ContentHeader, decodeContentHeader } from './content.js'
import { decodeMethod, type Method } from './methods.js'
import { AmqpProtocolError, protocolErrors } from './protocol-error.js'
import { checkUint, U16_MAX, U32_MAX, writeU16, writeU32 } from './wire.js'

// Connection byte stream, client to server:
//   "AMQP" 0 0 9 1                     protocol header, once, before anything else
//   then frames:
//   u8 type | u16 channel | u32 size | payload (size bytes) | u8 0xCE
//
//   type 1 METHOD     payload: u16 class | u16 method | arguments    → methods.ts
//   type 2 HEADER     payload: u16 class | u16 weight | u64 body size | properties → content.ts
//   type 3 BODY       payload: body bytes, passed on as a view
//   type 8 HEARTBEAT  payload: empty, channel 0
//
// The parser checks the protocol header itself (it is the first thing on the stream, and a wrong
// one must be answered before any frame is read): pass `protocolHeader: false` to start at frames.
// Frame type and size are checked as soon as the 7 header bytes are in, before any payload is
// buffered, so a peer cannot make the server hold more than frame-max bytes.

export interface MethodFrame {
  readonly type: typeof FRAME_METHOD
  readonly channel: number
  readonly method: Method
}
export interface HeaderFrame {
  readonly type: typeof FRAME_HEADER
  readonly channel: number
  readonly header: ContentHeader
}
export interface BodyFrame {
  readonly type: typeof FRAME_BODY
  readonly channel: number
  /** A view into the received chunk (or into one buffer assembled across chunks): no copy. */
  readonly body: Buffer
}
export interface HeartbeatFrame {
  readonly type: typeof FRAME_HEARTBEAT
  readonly channel: 0
}
export type Frame = MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame

export interface FrameParserOptions {
  /** Largest whole frame accepted (8 bytes of framing included). Set `parser.frameMax` after tune-ok. */
  readonly frameMax?: number
  /** Expect the 8-byte protocol header before the first frame (default true). */
  readonly protocolHeader?: boolean
  /** Called once the protocol header has arrived: the server now sends connection.start. */
  readonly onProtocolHeader?: () => void
  /** Called for every frame, in order. Must not throw; if it does the parser fails with 541. */
  readonly onFrame: (frame: Frame) => void
}

const HEARTBEAT: HeartbeatFrame = Object.freeze({ type: FRAME_HEARTBEAT, channel: 0 })

/**
 * A streaming AMQP frame parser. Feed it socket chunks as they come; frames split anywhere (even
 * byte by byte) come out the same as whole ones. Whole frames inside a chunk are decoded in place;
 * only a frame that spans chunks is copied, once, into a buffer of exactly its size. Bodies, longstr
 * arguments and 'x' field values are views into the fed chunks, so the caller must not reuse a
 * chunk's memory after feeding it (socket chunks are never reused).
 *
 * `feed` never throws. It returns an AmqpProtocolError the first time the stream is bad (and the
 * same error on every later call): the connection must then send connection.close with
 * `replyCode` (or, for kind 'protocol-header', write PROTOCOL_HEADER) and close the socket.
 */
export class FrameParser {
  #frameMax: number
  #onFrame: (frame: Frame) => void
  #onProtocolHeader: (() => void) | undefined
  /** Bytes of the protocol header still expected (8, then 0 for good). */
  #headerLeft: number
  /** The 7-byte frame header when it arrives split; #headFill bytes of it are in. */
  #head = Buffer.alloc(7)
  #headFill = 0
  /** A frame spanning chunks, sized exactly; #partialFill bytes of it are in. */
  #partial: Buffer | undefined
  #partialFill = 0
  #failed: AmqpProtocolError | undefined

  constructor(options: FrameParserOptions) {
    this.#frameMax = FRAME_MAX_DEFAULT
    if (options.frameMax !== undefined) this.frameMax = options.frameMax
    this.#onFrame = options.onFrame
    this.#onProtocolHeader = options.onProtocolHeader
    this.#headerLeft = options.protocolHeader === false ? 0 : PROTOCOL_HEADER.length
  }

  get frameMax(): number {
    return this.#frameMax
  }

  /** The negotiated frame-max (connection.tune-ok), at least 4096; map a negotiated 0 to your own cap. */
  set frameMax(bytes: number) {
    if (!Number.isInteger(bytes) || bytes < FRAME_MIN_SIZE || bytes > U32_MAX + FRAME_OVERHEAD) {
      throw new RangeError(`frameMax must be an integer in [${FRAME_MIN_SIZE}, ${U32_MAX + FRAME_OVERHEAD}], got ${bytes}`)
    }
    this.#frameMax = bytes
  }

  get failed(): AmqpProtocolError | undefined {
    return this.#failed
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.#partial ? this.#partialFill : this.#headFill
  }

  feed(chunk: Buffer): AmqpProtocolError | undefined {
    if (this.#failed) return this.#failed
    let pos = 0
    const len = chunk.length
    if (this.#headerLeft > 0) {
      pos = this.#readProtocolHeader(chunk)
      if (this.#failed || this.#headerLeft > 0) return this.#failed
    }
    if (this.#partial) {
      pos = this.#fillPartial(chunk, pos)
      if (this.#failed || this.#partial) return this.#failed
    } else if (this.#headFill > 0) {
      pos = this.#fillHead(chunk, pos)
      if (this.#failed || this.#headFill > 0 || this.#partial) return this.#failed
    }
    while (len - pos >= 7) {
      const type = chunk[pos]!
      const channel = (chunk[pos + 1]! << 8) | chunk[pos + 2]!
      const size = chunk.readUInt32BE(pos + 3)
      if (!this.#checkHead(type, channel, size)) return this.#failed
      const frameBytes = size + FRAME_OVERHEAD
      if (len - pos < frameBytes) {
        this.#partial = Buffer.allocUnsafe(frameBytes)
        this.#partialFill = len - pos
        chunk.copy(this.#partial, 0, pos, len)
        return undefined
      }
      const at = pos
      pos += frameBytes // consumed before it is handled, so a failure cannot replay it
      if (!this.#frame(chunk, at, type, channel, size)) return this.#failed
    }
    if (pos < len) {
      chunk.copy(this.#head, 0, pos, len)
      this.#headFill = len - pos
    }
    return undefined
  }

  #readProtocolHeader(chunk: Buffer): number {
    const n = Math.min(this.#headerLeft, chunk.length)
    const at = PROTOCOL_HEADER.length - this.#headerLeft
    for (let i = 0; i < n; i++) {
      // Fail at the first wrong byte: an HTTP request or TLS hello gets its answer without waiting.
      if (chunk[i] !== PROTOCOL_HEADER[at + i]) {
        this.#failed = protocolErrors.protocolHeader(Buffer.concat([PROTOCOL_HEADER.subarray(0, at), chunk.subarray(0, n)]))
        return n
      }
    }
    this.#headerLeft -= n
    if (this.#headerLeft === 0 && this.#onProtocolHeader) this.#call(this.#onProtocolHeader)
    return n
  }

  #fillHead(chunk: Buffer, pos: number): number {
    const n = Math.min(7 - this.#headFill, chunk.length - pos)
    chunk.copy(this.#head, this.#headFill, pos, pos + n)
    this.#headFill += n
    pos += n
    if (this.#headFill < 7) return pos
    this.#headFill = 0
    const head = this.#head
    const type = head[0]!
    const channel = (head[1]! << 8) | head[2]!
    const size = head.readUInt32BE(3)
    if (!this.#checkHead(type, channel, size)) return pos
    this.#partial = Buffer.allocUnsafe(size + FRAME_OVERHEAD)
    head.copy(this.#partial, 0, 0, 7)
    this.#partialFill = 7
    return this.#fillPartial(chunk, pos)
  }

  #fillPartial(chunk: Buffer, pos: number): number {
    const partial = this.#partial!
    const n = Math.min(partial.length - this.#partialFill, chunk.length - pos)
    chunk.copy(partial, this.#partialFill, pos, pos + n)
    this.#partialFill += n
    pos += n
    if (this.#partialFill < partial.length) return pos
    this.#partial = undefined
    this.#partialFill = 0
    this.#frame(partial, 0, partial[0]!, (partial[1]! << 8) | partial[2]!, partial.length - FRAME_OVERHEAD)
    return pos
  }

  /** Checks a frame's type and size before its payload is buffered. */
  #checkHead(type: number, channel: number, size: number): boolean {
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY && type !== FRAME_HEARTBEAT) {
      this.#failed = protocolErrors.badFrameType(channel, type)
      return false
    }
    if (size + FRAME_OVERHEAD > this.#frameMax) {
      this.#failed = protocolErrors.frameTooLarge(channel, size + FRAME_OVERHEAD, this.#frameMax)
      return false
    }
    return true
  }

  /** Decodes and hands on one whole frame at buf[at]; false when the parser has failed. */
  #frame(buf: Buffer, at: number, type: number, channel: number, size: number): boolean {
    const start = at + 7
    const end = start + size
    const frameEnd = buf[end]!
    if (frameEnd !== FRAME_END) {
      this.#failed = protocolErrors.badFrameEnd(channel, frameEnd)
      return false
    }
    let frame: Frame
    try {
      if (type === FRAME_METHOD) frame = { type, channel, method: decodeMethod(buf, channel, start, end) }
      else if (type === FRAME_HEADER) frame = { type, channel, header: decodeContentHeader(buf, channel, start, end) }
      else if (type === FRAME_BODY) frame = { type, channel, body: buf.subarray(start, end) }
      else if (size !== 0 || channel !== 0) throw protocolErrors.badHeartbeat(channel, size)
      else frame = HEARTBEAT
    } catch (err) {
      this.#failed = err instanceof AmqpProtocolError ? err : protocolErrors.syntax(`cannot decode frame on channel ${channel}: ${String(err)}`, { channel })
      return false
    }
    return this.#call(this.#onFrame, frame)
  }

  #call<A extends unknown[]>(fn: (...args: A) => void, ...args: A): boolean {
    try {
      fn(...args)
      return true
    } catch (err) {
      this.#failed = new AmqpProtocolError('frame', ReplyCode.INTERNAL_ERROR, `frame handler failed: ${String(err)}`, {}, { cause: err })
      return false
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** `08 00 00 00 00 00 00 CE`: send one every heartbeat interval when nothing else went out. */
export const HEARTBEAT_FRAME: Buffer = Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END])

/** Any frame from its payload (copied once). */
export function encodeFrame(type: number, channel: number, payload: Uint8Array): Buffer {
  checkUint(type, 0xff, 'frame type')
  checkUint(channel, U16_MAX, 'channel')
  const buf = Buffer.allocUnsafe(payload.length + FRAME_OVERHEAD)
  buf[0] = type
  writeU16(buf, 1, channel)
  writeU32(buf, 3, payload.length)
  buf.set(payload, 7)
  buf[7 + payload.length] = FRAME_END
  return buf
}
