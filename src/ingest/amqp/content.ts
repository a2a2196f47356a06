import { CLASS_BASIC, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, FRAME_OVERHEAD } from './constants.js'
import { type FieldTable, fieldTableSize, isFieldTable, readFieldTable, writeFieldTable } from './field-table.js'
import { type MethodInit, methodDefByName, methodPayloadSize, writeMethodPayload } from './methods.js'
import { AmqpProtocolError, protocolErrors } from './protocol-error.js'
import { checkUint, Reader, shortstrLength, U16_MAX, U64_MAX_NUMBER, U8_MAX, writeShortstr, writeU16, writeU32, writeU64 } from './wire.js'

// Content header frame payload:
//   u16 class-id (60) | u16 weight (0) | u64 body-size | u16 property-flags | properties
// Property flags: bit 15 is the first property below, bit 2 the fourteenth; bit 0 set means
// another flags word follows (basic has only 14, so any further word must be zero). Only the
// properties whose flag is set are present, in this order:
//
//   flag  property          type
//   15    content-type      shortstr
//   14    content-encoding  shortstr
//   13    headers           table
//   12    delivery-mode     octet (1 transient, 2 persistent)
//   11    priority          octet
//   10    correlation-id    shortstr
//    9    reply-to          shortstr
//    8    expiration        shortstr
//    7    message-id        shortstr
//    6    timestamp         u64 seconds (a JS number; see the 64-bit rule in wire.ts)
//    5    type              shortstr
//    4    user-id           shortstr
//    3    app-id            shortstr
//    2    cluster-id        shortstr
//
// Body frames carry the body's bytes in order, each at most frame-max - 8 bytes; a body of 0
// bytes has no body frames.

export interface BasicProperties {
  contentType?: string | undefined
  contentEncoding?: string | undefined
  headers?: FieldTable | undefined
  deliveryMode?: number | undefined
  priority?: number | undefined
  correlationId?: string | undefined
  replyTo?: string | undefined
  expiration?: string | undefined
  messageId?: string | undefined
  timestamp?: number | undefined
  type?: string | undefined
  userId?: string | undefined
  appId?: string | undefined
  clusterId?: string | undefined
}

export interface ContentHeader {
  classId: number
  bodySize: number
  properties: BasicProperties
}

const P_SHORTSTR = 0
const P_TABLE = 1
const P_OCTET = 2
const P_TIMESTAMP = 3
const propertyDefs: readonly (readonly [keyof BasicProperties, number])[] = [
  ['contentType', P_SHORTSTR],
  ['contentEncoding', P_SHORTSTR],
  ['headers', P_TABLE],
  ['deliveryMode', P_OCTET],
  ['priority', P_OCTET],
  ['correlationId', P_SHORTSTR],
  ['replyTo', P_SHORTSTR],
  ['expiration', P_SHORTSTR],
  ['messageId', P_SHORTSTR],
  ['timestamp', P_TIMESTAMP],
  ['type', P_SHORTSTR],
  ['userId', P_SHORTSTR],
  ['appId', P_SHORTSTR],
  ['clusterId', P_SHORTSTR],
]

// ---------------------------------------------------------------------------------------------
// Properties

/** Bytes of the property flags and the property list. Validates; throws TypeError/RangeError. */
export function propertiesSize(p: BasicProperties): number {
  let size = 2
  for (let i = 0; i < propertyDefs.length; i++) {
    const [name, type] = propertyDefs[i]!
    const v = p[name]
    if (v === undefined) continue
    switch (type) {
      case P_SHORTSTR:
        if (typeof v !== 'string') throw new TypeError(`property ${name} must be a string`)
        size += 1 + shortstrLength(v, `property ${name}`)
        break
      case P_TABLE:
        if (!isFieldTable(v as FieldTable)) throw new TypeError(`property ${name} must be a field table`)
        size += fieldTableSize(v as FieldTable)
        break
      case P_OCTET:
        checkUint(v as number, U8_MAX, `property ${name}`)
        size += 1
        break
      default:
        checkUint(v as number, U64_MAX_NUMBER, `property ${name}`)
        size += 8
    }
  }
  return size
}

/** Writes what `propertiesSize` measured; returns the offset after it. */
export function writeProperties(buf: Buffer, off: number, p: BasicProperties): number {
  const flagsAt = off
  let flags = 0
  off += 2
  for (let i = 0; i < propertyDefs.length; i++) {
    const [name, type] = propertyDefs[i]!
    const v = p[name]
    if (v === undefined) continue
    flags |= 1 << (15 - i)
    switch (type) {
      case P_SHORTSTR:
        off = writeShortstr(buf, off, v as string, shortstrLength(v as string, name))
        break
      case P_TABLE:
        off = writeFieldTable(buf, off, v as FieldTable)
        break
      case P_OCTET:
        buf[off++] = v as number
        break
      default:
        off = writeU64(buf, off, v as number)
    }
  }
  writeU16(buf, flagsAt, flags)
  return off
}

/**
 * Property flags and list, encoded once. Pass the result to `encodeDeliver` instead of the object
 * when the same event goes to many consumers (fanout, redelivery) to skip re-encoding its headers.
 */
export function encodeProperties(p: BasicProperties): Buffer {
  const buf = Buffer.allocUnsafe(propertiesSize(p))
  writeProperties(buf, 0, p)
  return buf
}

function readProperties(r: Reader): BasicProperties {
  const flags = r.u16('property flags')
  if (flags & 1) {
    // Continuation words may follow; basic defines no property past the first word.
    let more = 1
    while (more & 1) {
      more = r.u16('property flags')
      if (more & ~1) throw protocolErrors.syntax(`property flags word 0x${more.toString(16)} sets properties basic does not have`)
    }
  }
  if (flags & 2) throw protocolErrors.syntax(`property flags 0x${flags.toString(16)} set bit 1, which basic does not define`)
  const p: BasicProperties = {}
  if (flags === 0) return p
  for (let i = 0; i < propertyDefs.length; i++) {
    if ((flags & (1 << (15 - i))) === 0) continue
    const [name, type] = propertyDefs[i]!
    switch (type) {
      case P_SHORTSTR:
        ;(p as Record<string, unknown>)[name] = r.shortstr(name)
        break
      case P_TABLE:
        p.headers = readFieldTable(r)
        break
      case P_OCTET:
        ;(p as Record<string, unknown>)[name] = r.u8(name)
        break
      default:
        p.timestamp = r.u64(name)
    }
  }
  return p
}

/** Decodes property flags and list from `buf[start, end)`; throws AmqpProtocolError (502) when malformed. */
export function decodeProperties(buf: Buffer, start = 0, end = buf.length): BasicProperties {
  const r = new Reader(buf, start, end)
  const p = readProperties(r)
  if (r.pos !== end) throw protocolErrors.syntax(`${end - r.pos} bytes after the last property`)
  return p
}

// ---------------------------------------------------------------------------------------------
// Content header

/**
 * Decodes a content header payload. Throws AmqpProtocolError: 505 UNEXPECTED_FRAME for a class
 * other than basic or a non-zero weight (as RabbitMQ answers both), 502 SYNTAX_ERROR when the
 * properties are malformed.
 */
export function decodeContentHeader(payload: Buffer, channel = 0, start = 0, end = payload.length): ContentHeader {
  if (end - start < 14) throw protocolErrors.syntax(`content header of ${end - start} bytes, shorter than its 14 fixed bytes`, { channel })
  const classId = (payload[start]! << 8) | payload[start + 1]!
  const weight = (payload[start + 2]! << 8) | payload[start + 3]!
  if (classId !== CLASS_BASIC) throw protocolErrors.unexpectedFrame(`content header for class ${classId}; only basic (60) carries content`, { channel })
  if (weight !== 0) throw protocolErrors.unexpectedFrame(`content header with weight ${weight}; it must be 0`, { channel })
  const bodySize = payload.readUInt32BE(start + 4) * 4_294_967_296 + payload.readUInt32BE(start + 8)
  try {
    return { classId, bodySize, properties: decodeProperties(payload, start + 12, end) }
  } catch (err) {
    throw protocolErrors.syntax(`content header: ${err instanceof AmqpProtocolError ? err.message : String(err)}`, { channel, classId })
  }
}

/** A content header frame on its own. */
export function encodeContentHeaderFrame(channel: number, bodySize: number, properties: BasicProperties | Buffer): Buffer {
  checkUint(channel, U16_MAX, 'channel')
  const propsSize = properties instanceof Uint8Array ? properties.length : propertiesSize(properties)
  const buf = Buffer.allocUnsafe(FRAME_OVERHEAD + 12 + propsSize)
  writeHeaderFrame(buf, 0, channel, bodySize, properties, propsSize)
  return buf
}

function writeHeaderFrame(buf: Buffer, off: number, channel: number, bodySize: number, properties: BasicProperties | Buffer, propsSize: number): number {
  buf[off] = FRAME_HEADER
  writeU16(buf, off + 1, channel)
  writeU32(buf, off + 3, 12 + propsSize)
  writeU16(buf, off + 7, CLASS_BASIC)
  writeU16(buf, off + 9, 0)
  writeU64(buf, off + 11, bodySize)
  let p = off + 19
  if (properties instanceof Uint8Array) {
    buf.set(properties, p)
    p += propsSize
  } else {
    p = writeProperties(buf, p, properties)
  }
  buf[p] = FRAME_END
  return p + 1
}

function bodyFramesSize(bodyBytes: number, chunkMax: number): number {
  return bodyBytes === 0 ? 0 : bodyBytes + Math.ceil(bodyBytes / chunkMax) * FRAME_OVERHEAD
}

function writeBodyFrames(buf: Buffer, off: number, channel: number, body: Uint8Array, chunkMax: number): number {
  for (let at = 0; at < body.length; at += chunkMax) {
    const n = Math.min(chunkMax, body.length - at)
    buf[off] = FRAME_BODY
    writeU16(buf, off + 1, channel)
    writeU32(buf, off + 3, n)
    buf.set(at === 0 && n === body.length ? body : body.subarray(at, at + n), off + 7)
    buf[off + 7 + n] = FRAME_END
    off += FRAME_OVERHEAD + n
  }
  return off
}

/** Largest body frame payload for a frame-max; 0 means no limit (up to what a u32 size holds). */
function bodyChunkMax(frameMax: number): number {
  if (frameMax === 0) return 0xffff_ffff
  if (!Number.isInteger(frameMax) || frameMax <= FRAME_OVERHEAD) throw new RangeError(`frameMax must be 0 or an integer above ${FRAME_OVERHEAD}, got ${frameMax}`)
  return frameMax - FRAME_OVERHEAD
}

function checkFits(frameBytes: number, frameMax: number, what: string): void {
  if (frameMax !== 0 && frameBytes > frameMax) throw new RangeError(`${what} frame of ${frameBytes} bytes is over frame-max ${frameMax}`)
}

// ---------------------------------------------------------------------------------------------
// Whole content commands

export type ContentMethodInit = Extract<MethodInit, { name: 'basic.publish' | 'basic.return' | 'basic.deliver' | 'basic.get-ok' }>

/**
 * A content-carrying method with its header and body frames, in one buffer: method frame, header
 * frame, then the body cut into frames of at most frameMax - 8 bytes. Throws RangeError when the
 * method or header frame alone is over frameMax (oversized headers: the caller must not send it).
 */
export function encodeContent(channel: number, method: ContentMethodInit, properties: BasicProperties | Buffer, body: Uint8Array, frameMax: number): Buffer {
  checkUint(channel, U16_MAX, 'channel')
  const chunkMax = bodyChunkMax(frameMax)
  const def = methodDefByName(method.name)
  const methodSize = methodPayloadSize(def, method)
  const propsSize = properties instanceof Uint8Array ? properties.length : propertiesSize(properties)
  checkFits(FRAME_OVERHEAD + methodSize, frameMax, method.name)
  checkFits(FRAME_OVERHEAD + 12 + propsSize, frameMax, 'content header')
  const buf = Buffer.allocUnsafe(FRAME_OVERHEAD * 2 + methodSize + 12 + propsSize + bodyFramesSize(body.length, chunkMax))
  buf[0] = FRAME_METHOD
  writeU16(buf, 1, channel)
  writeU32(buf, 3, methodSize)
  let off = writeMethodPayload(buf, 7, def, method)
  buf[off++] = FRAME_END
  off = writeHeaderFrame(buf, off, channel, body.length, properties, propsSize)
  writeBodyFrames(buf, off, channel, body, chunkMax)
  return buf
}

/**
 * basic.deliver + content header + body frames in one allocation: the hot path of every consumer.
 * Same result as `encodeContent` with a basic.deliver method, without the table-driven encoder.
 * `properties` may be the output of `encodeProperties` to share encoding across deliveries.
 */
export function encodeDeliver(
  channel: number,
  consumerTag: string,
  deliveryTag: number,
  redelivered: boolean,
  exchange: string,
  routingKey: string,
  properties: BasicProperties | Buffer,
  body: Uint8Array,
  frameMax: number,
): Buffer {
  const w = new DeliverWriter(channel, consumerTag, frameMax)
  w.add(deliveryTag, redelivered, exchange, routingKey, properties, body)
  return w.finish()
}

interface PendingDeliver {
  readonly deliveryTag: number
  readonly redelivered: boolean
  readonly exchange: string
  readonly exLen: number
  readonly routingKey: string
  readonly rkLen: number
  readonly properties: BasicProperties | Buffer
  readonly propsSize: number
  readonly body: Uint8Array
}

/**
 * The basic.deliver commands of one dispatch to one consumer, measured as they are added and
 * written into one buffer at the end: one allocation and one socket write for the batch, where a
 * buffer and a write per delivery cost more than the encoding. `add` validates, so a delivery
 * that cannot be framed throws before anything is written.
 */
export class DeliverWriter {
  readonly #channel: number
  readonly #consumerTag: string
  readonly #ctLen: number
  readonly #frameMax: number
  readonly #chunkMax: number
  readonly #items: PendingDeliver[] = []
  #size = 0
  // Consecutive deliveries mostly share their exchange and routing key: measure them once.
  #lastEx = ''
  #lastExLen = 0
  #lastRk = ''
  #lastRkLen = 0

  constructor(channel: number, consumerTag: string, frameMax: number) {
    checkUint(channel, U16_MAX, 'channel')
    this.#channel = channel
    this.#consumerTag = consumerTag
    this.#ctLen = shortstrLength(consumerTag, 'consumerTag')
    this.#frameMax = frameMax
    this.#chunkMax = bodyChunkMax(frameMax)
  }

  get count(): number {
    return this.#items.length
  }

  add(deliveryTag: number, redelivered: boolean, exchange: string, routingKey: string, properties: BasicProperties | Buffer, body: Uint8Array): void {
    checkUint(deliveryTag, U64_MAX_NUMBER, 'deliveryTag')
    let exLen = this.#lastExLen
    if (exchange !== this.#lastEx) {
      exLen = shortstrLength(exchange, 'exchange')
      this.#lastEx = exchange
      this.#lastExLen = exLen
    }
    let rkLen = this.#lastRkLen
    if (routingKey !== this.#lastRk) {
      rkLen = shortstrLength(routingKey, 'routingKey')
      this.#lastRk = routingKey
      this.#lastRkLen = rkLen
    }
    // u16 class | u16 method | shortstr consumer-tag | u64 delivery-tag | octet redelivered | shortstr exchange | shortstr routing-key
    const methodSize = 4 + 1 + this.#ctLen + 8 + 1 + 1 + exLen + 1 + rkLen
    const propsSize = properties instanceof Uint8Array ? properties.length : propertiesSize(properties)
    checkFits(FRAME_OVERHEAD + methodSize, this.#frameMax, 'basic.deliver')
    checkFits(FRAME_OVERHEAD + 12 + propsSize, this.#frameMax, 'content header')
    this.#size += FRAME_OVERHEAD * 2 + methodSize + 12 + propsSize + bodyFramesSize(body.length, this.#chunkMax)
    this.#items.push({ deliveryTag, redelivered, exchange, exLen, routingKey, rkLen, properties, propsSize, body })
  }

  finish(): Buffer {
    const buf = Buffer.allocUnsafe(this.#size)
    const channel = this.#channel
    let off = 0
    for (const d of this.#items) {
      const methodSize = 4 + 1 + this.#ctLen + 8 + 1 + 1 + d.exLen + 1 + d.rkLen
      buf[off] = FRAME_METHOD
      writeU16(buf, off + 1, channel)
      writeU32(buf, off + 3, methodSize)
      buf[off + 7] = 0
      buf[off + 8] = 60
      buf[off + 9] = 0
      buf[off + 10] = 60
      off = writeShortstr(buf, off + 11, this.#consumerTag, this.#ctLen)
      off = writeU64(buf, off, d.deliveryTag)
      buf[off++] = d.redelivered ? 1 : 0
      off = writeShortstr(buf, off, d.exchange, d.exLen)
      off = writeShortstr(buf, off, d.routingKey, d.rkLen)
      buf[off++] = FRAME_END
      off = writeHeaderFrame(buf, off, channel, d.body.length, d.properties, d.propsSize)
      off = writeBodyFrames(buf, off, channel, d.body, this.#chunkMax)
    }
    return buf
  }
}
