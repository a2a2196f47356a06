// AMQP 0-9-1 constants, from the "constants" section of the RabbitMQ spec
// (rabbitmq-codegen amqp-rabbitmq-0.9.1.json). Numbers only; no behaviour here.

/** The 8 bytes a client sends before its first frame: "AMQP" 0 0 9 1. */
export const PROTOCOL_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x00, 0x09, 0x01])

export const FRAME_METHOD = 1
export const FRAME_HEADER = 2
export const FRAME_BODY = 3
export const FRAME_HEARTBEAT = 8
export type FrameType = typeof FRAME_METHOD | typeof FRAME_HEADER | typeof FRAME_BODY | typeof FRAME_HEARTBEAT

/** Every frame ends with this octet; anything else means the stream is out of step. */
export const FRAME_END = 0xce
/** Bytes a frame adds around its payload: u8 type, u16 channel, u32 size before it, the end octet after. */
export const FRAME_OVERHEAD = 8
/** The smallest frame-max a peer may negotiate; either side may always send frames up to this size. */
export const FRAME_MIN_SIZE = 4096
/** RabbitMQ's default frame_max, used here before connection.tune-ok has set one. */
export const FRAME_MAX_DEFAULT = 131_072

/** The only class that carries content (basic.publish, return, deliver, get-ok). */
export const CLASS_BASIC = 60

/** Reply codes for connection.close / channel.close. Hard errors close the connection. */
export const ReplyCode = {
  SUCCESS: 200,
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const
export type ReplyCode = (typeof ReplyCode)[keyof typeof ReplyCode]
