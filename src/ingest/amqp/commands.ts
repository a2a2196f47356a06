import { FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT } from './constants.js'
import type { ContentHeader } from './content.js'
import type { Frame } from './frames.js'
import { type ContentMethod, type Method, methodDef } from './methods.js'
import { type AmqpProtocolError, protocolErrors } from './protocol-error.js'

// Commands: a method, or a content method followed by its content on the same channel:
//   METHOD (basic.publish | return | deliver | get-ok) · HEADER · BODY* (until body-size bytes)
// Frames of other channels may interleave; on one channel nothing else may come between a
// content method and its last body frame. The rules and reply codes follow RabbitMQ's
// rabbit_command_assembler: a frame out of order is 505 UNEXPECTED_FRAME, a body past its
// declared size (or a declared size over the limit) is 501 FRAME_ERROR.
//
// This is framing, not channel state: it does not know whether a channel is open or which methods
// are allowed; the channel state machine decides that from the commands it gets.

export interface MethodCommand {
  readonly channel: number
  readonly method: Method
  readonly header?: undefined
  readonly body?: undefined
}
export interface ContentCommand {
  readonly channel: number
  readonly method: ContentMethod
  readonly header: ContentHeader
  /** The whole body: a view of the only body frame, or one copy of several. */
  readonly body: Buffer
}
export type Command = MethodCommand | ContentCommand

interface Pending {
  method: ContentMethod
  header: ContentHeader | undefined
  remaining: number
  chunks: Buffer[]
}

const EMPTY = Buffer.alloc(0)

export class CommandAssembler {
  readonly #bodySizeMax: number
  readonly #pending = new Map<number, Pending>()

  /** `bodySizeMax`: a content header declaring more is refused before any body is buffered. */
  constructor(options: { bodySizeMax: number }) {
    this.#bodySizeMax = options.bodySizeMax
  }

  /**
   * One frame in; a command out when one is complete, undefined when more frames are needed (or
   * for a heartbeat), an AmqpProtocolError when the frame is out of order (close the connection).
   */
  push(frame: Frame): Command | AmqpProtocolError | undefined {
    if (frame.type === FRAME_HEARTBEAT) return undefined
    const channel = frame.channel
    const pending = this.#pending.get(channel)
    if (frame.type === FRAME_HEADER) return this.#header(channel, pending, frame.header)
    if (frame.type === FRAME_BODY) return this.#body(channel, pending, frame.body)
    const method = frame.method
    if (pending) {
      return protocolErrors.unexpectedFrame(`expected content ${pending.header ? 'body' : 'header'} for ${pending.method.name} on channel ${channel}, got ${method.name}`, where(channel, pending.method))
    }
    if (methodDef(method.classId, method.methodId)?.content) {
      this.#pending.set(channel, { method: method as ContentMethod, header: undefined, remaining: 0, chunks: [] })
      return undefined
    }
    return { channel, method }
  }

  /** Forgets a half-received content on a channel (the channel was closed). */
  reset(channel: number): void {
    this.#pending.delete(channel)
  }

  /** Channels with a content method still waiting for its header or body. */
  get pendingChannels(): number {
    return this.#pending.size
  }

  #header(channel: number, pending: Pending | undefined, header: ContentHeader): Command | AmqpProtocolError | undefined {
    if (!pending || pending.header) {
      return protocolErrors.unexpectedFrame(pending ? `expected content body for ${pending.method.name} on channel ${channel}, got a content header` : `content header on channel ${channel} with no content method before it`, where(channel, pending?.method))
    }
    if (header.bodySize > this.#bodySizeMax) {
      return protocolErrors.contentSize(`content body size ${header.bodySize} exceeds the maximum of ${this.#bodySizeMax} bytes`, where(channel, pending.method))
    }
    if (header.bodySize === 0) {
      this.#pending.delete(channel)
      return { channel, method: pending.method, header, body: EMPTY }
    }
    pending.header = header
    pending.remaining = header.bodySize
    return undefined
  }

  #body(channel: number, pending: Pending | undefined, body: Buffer): Command | AmqpProtocolError | undefined {
    if (!pending || !pending.header) {
      return protocolErrors.unexpectedFrame(pending ? `expected content header for ${pending.method.name} on channel ${channel}, got a content body` : `content body on channel ${channel} with no content method before it`, where(channel, pending?.method))
    }
    if (body.length > pending.remaining) {
      return protocolErrors.contentSize(`content body frame of ${body.length} bytes exceeds the ${pending.remaining} bytes remaining`, where(channel, pending.method))
    }
    pending.remaining -= body.length
    if (pending.remaining > 0) {
      pending.chunks.push(body)
      return undefined
    }
    this.#pending.delete(channel)
    const whole = pending.chunks.length === 0 ? body : Buffer.concat([...pending.chunks, body], pending.header.bodySize)
    return { channel, method: pending.method, header: pending.header, body: whole }
  }
}

function where(channel: number, method: Method | undefined): { channel: number; classId?: number; methodId?: number } {
  return method ? { channel, classId: method.classId, methodId: method.methodId } : { channel }
}
