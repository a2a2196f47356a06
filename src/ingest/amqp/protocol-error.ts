import { ReplyCode } from './constants.js'

// Why not a SluiceError from src/errors.ts: these failures never reach HTTP. The AMQP door answers
// each with connection.close(replyCode, message, classId, methodId) and then drops the socket, so
// the reply code is the stable identifier operators see, and the catalogue would only duplicate it.

export type AmqpProtocolErrorKind =
  /** The first 8 bytes were not "AMQP" 0 0 9 1: write PROTOCOL_HEADER back and close the socket. */
  | 'protocol-header'
  /** A frame did not end with 0xCE, had an unknown type, or a heartbeat carried a payload or a channel. */
  | 'frame'
  /** The declared frame size is over the negotiated frame-max. */
  | 'frame-too-large'
  /** Method arguments, a content header or a field table could not be parsed. */
  | 'syntax'
  /** A class or method id this codec does not know. */
  | 'not-implemented'
  /** A frame arrived out of order (a body with no header, a method while content was pending, ...). */
  | 'unexpected-frame'
  /** A content body grew past its declared size or past the body limit. */
  | 'content-size'

/**
 * A decode failure with the reply code the connection must close with. Once the parser returns one,
 * the byte stream cannot be trusted any more: the only correct reaction is connection.close.
 */
export class AmqpProtocolError extends Error {
  readonly kind: AmqpProtocolErrorKind
  readonly replyCode: ReplyCode
  /** The channel of the offending frame (0 when unknown). */
  readonly channel: number
  /** The method being decoded, for connection.close's class-id/method-id fields (0 when none). */
  readonly classId: number
  readonly methodId: number

  constructor(kind: AmqpProtocolErrorKind, replyCode: ReplyCode, message: string, where: { channel?: number; classId?: number; methodId?: number } = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AmqpProtocolError'
    this.kind = kind
    this.replyCode = replyCode
    this.channel = where.channel ?? 0
    this.classId = where.classId ?? 0
    this.methodId = where.methodId ?? 0
  }
}

export const protocolErrors = {
  protocolHeader: (got: Buffer) =>
    new AmqpProtocolError('protocol-header', ReplyCode.FRAME_ERROR, `expected protocol header "AMQP" 0 0 9 1, got ${got.toString('hex')}`),
  badFrameEnd: (channel: number, octet: number) =>
    new AmqpProtocolError('frame', ReplyCode.FRAME_ERROR, `frame on channel ${channel} ends with 0x${octet.toString(16)}, not 0xce`, { channel }),
  badFrameType: (channel: number, type: number) =>
    new AmqpProtocolError('frame', ReplyCode.FRAME_ERROR, `unknown frame type ${type} on channel ${channel}`, { channel }),
  badHeartbeat: (channel: number, size: number) =>
    new AmqpProtocolError('frame', ReplyCode.FRAME_ERROR, `heartbeat frame on channel ${channel} with ${size} payload bytes; heartbeats are empty and on channel 0`, { channel }),
  shortMethodFrame: (channel: number, size: number) =>
    new AmqpProtocolError('frame', ReplyCode.FRAME_ERROR, `method frame on channel ${channel} has ${size} payload bytes, too few for class and method ids`, { channel }),
  frameTooLarge: (channel: number, frameBytes: number, frameMax: number) =>
    new AmqpProtocolError('frame-too-large', ReplyCode.FRAME_ERROR, `frame of ${frameBytes} bytes on channel ${channel} is over the negotiated frame-max of ${frameMax} bytes`, { channel }),
  unknownMethod: (channel: number, classId: number, methodId: number) =>
    new AmqpProtocolError('not-implemented', ReplyCode.NOT_IMPLEMENTED, `unknown method ${classId}.${methodId}`, { channel, classId, methodId }),
  syntax: (why: string, where: { channel?: number; classId?: number; methodId?: number } = {}) =>
    new AmqpProtocolError('syntax', ReplyCode.SYNTAX_ERROR, why, where),
  unexpectedFrame: (why: string, where: { channel?: number; classId?: number; methodId?: number } = {}) =>
    new AmqpProtocolError('unexpected-frame', ReplyCode.UNEXPECTED_FRAME, why, where),
  contentSize: (why: string, where: { channel?: number; classId?: number; methodId?: number } = {}) =>
    new AmqpProtocolError('content-size', ReplyCode.FRAME_ERROR, why, where),
}
