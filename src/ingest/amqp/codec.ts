// The AMQP 0-9-1 codec: bytes in, frames/methods/commands out, and back. No sockets, no state
// beyond one connection's framing. The connection and channel state machines build on this:
//
//   socket chunk → FrameParser.feed → Frame → CommandAssembler.push → Command → channel logic
//   channel logic → encodeMethodFrame / encodeDeliver / encodeContent / HEARTBEAT_FRAME → socket
//
// Decode failures are AmqpProtocolError values (never other exceptions), each with the reply code
// for connection.close and the failing class/method ids:
//
//   kind               replyCode               when
//   protocol-header    (write PROTOCOL_HEADER) first 8 bytes are not "AMQP" 0 0 9 1
//   frame              501 FRAME_ERROR         bad frame end, unknown frame type, bad heartbeat, method frame < 4 bytes
//   frame-too-large    501 FRAME_ERROR         declared frame size over frame-max (checked before buffering)
//   content-size       501 FRAME_ERROR         body past its declared size, declared size over bodySizeMax
//   syntax             502 SYNTAX_ERROR        truncated/surplus arguments, bad field table, bad properties
//   unexpected-frame   505 UNEXPECTED_FRAME    content frames out of order, header class not basic or weight ≠ 0
//   not-implemented    540 NOT_IMPLEMENTED     unknown class or method id
//   (any)              541 INTERNAL_ERROR      an onFrame/onProtocolHeader handler threw
//
// Encoding bad arguments (a 256-byte shortstr, a short over 65535) is a programmer error and
// throws TypeError/RangeError.

export {
  CLASS_BASIC,
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_MAX_DEFAULT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  FRAME_OVERHEAD,
  type FrameType,
  PROTOCOL_HEADER,
  ReplyCode,
} from './constants.js'
export { AmqpProtocolError, type AmqpProtocolErrorKind } from './protocol-error.js'
export {
  type Decimal,
  decodeFieldTable,
  encodeFieldTable,
  type FieldArray,
  fieldNestingMax,
  fieldNumber,
  fieldString,
  type FieldTable,
  type FieldValue,
  isFieldTable,
  Typed,
  type TypedTag,
} from './field-table.js'
export {
  type ContentMethod,
  decodeMethod,
  encodeMethod,
  encodeMethodFrame,
  type Method,
  type MethodInit,
  type MethodName,
  methodNames,
  type MethodOf,
} from './methods.js'
export {
  type BasicProperties,
  type ContentHeader,
  type ContentMethodInit,
  decodeContentHeader,
  decodeProperties,
  encodeContent,
  encodeContentHeaderFrame,
  encodeDeliver,
  encodeProperties,
} from './content.js'
export { type BodyFrame, encodeFrame, type Frame, FrameParser, type FrameParserOptions, type HeaderFrame, HEARTBEAT_FRAME, type HeartbeatFrame, type MethodFrame } from './frames.js'
export { type Command, CommandAssembler, type ContentCommand, type MethodCommand } from './commands.js'
