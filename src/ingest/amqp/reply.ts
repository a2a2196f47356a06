import { SluiceError } from '../../errors.js'
import { ReplyCode } from './constants.js'

// Channel and connection exceptions, with RabbitMQ's reply texts so that client code matching on
// them (and people searching for them) find what they know. Soft errors close the channel
// (channel.close); hard ones the connection (connection.close):
//
//   soft: 311 CONTENT_TOO_LARGE, 312 NO_ROUTE, 313 NO_CONSUMERS, 403 ACCESS_REFUSED,
//         404 NOT_FOUND, 405 RESOURCE_LOCKED, 406 PRECONDITION_FAILED
//   hard: everything else (320, 402, 501-506, 530, 540, 541)

const names: Record<number, string> = Object.fromEntries(Object.entries(ReplyCode).map(([k, v]) => [v, k]))
const softCodes: ReadonlySet<number> = new Set([311, 312, 313, 403, 404, 405, 406])

export class AmqpReplyError extends Error {
  readonly replyCode: number
  readonly classId: number
  readonly methodId: number

  constructor(replyCode: number, text: string, where: { classId?: number; methodId?: number } = {}, options?: { cause?: unknown }) {
    // The reply text carries the code's name first, as RabbitMQ writes it.
    super(`${names[replyCode] ?? 'ERROR'} - ${text}`, options)
    this.name = 'AmqpReplyError'
    this.replyCode = replyCode
    this.classId = where.classId ?? 0
    this.methodId = where.methodId ?? 0
  }

  get hard(): boolean {
    return !softCodes.has(this.replyCode)
  }

  /** The reply text, at most a shortstr. */
  get replyText(): string {
    const t = this.message
    return Buffer.byteLength(t) <= 255 ? t : Buffer.from(t).subarray(0, 255).toString('utf8').replace(/\uFFFD$/, '')
  }

  at(classId: number, methodId: number): AmqpReplyError {
    if (this.classId !== 0) return this
    const e = new AmqpReplyError(this.replyCode, '', { classId, methodId }, { cause: this.cause })
    e.message = this.message
    return e
  }
}

const vhost = "in vhost '/'"

export const reply = {
  noQueue: (q: string) => new AmqpReplyError(ReplyCode.NOT_FOUND, `no queue '${q}' ${vhost}`),
  noPreviousQueue: () => new AmqpReplyError(ReplyCode.NOT_FOUND, 'no previously declared queue'),
  noExchange: (x: string) => new AmqpReplyError(ReplyCode.NOT_FOUND, `no exchange '${x}' ${vhost}`),
  inequivalent: (arg: string, kind: 'queue' | 'exchange', name: string, received: string, current: string) =>
    new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, `inequivalent arg '${arg}' for ${kind} '${name}' ${vhost}: received ${received} but current is ${current}`),
  invalidArg: (arg: string, kind: 'queue' | 'exchange', name: string, why: string) =>
    new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, `invalid arg '${arg}' for ${kind} '${name}' ${vhost}: ${why}`),
  locked: (q: string) =>
    new AmqpReplyError(
      ReplyCode.RESOURCE_LOCKED,
      `cannot obtain exclusive access to locked queue '${q}' ${vhost}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
    ),
  exclusiveUse: (q: string) => new AmqpReplyError(ReplyCode.ACCESS_REFUSED, `queue '${q}' ${vhost} in exclusive use`),
  reservedName: (kind: 'queue' | 'exchange', name: string) => new AmqpReplyError(ReplyCode.ACCESS_REFUSED, `${kind} name '${name}' contains reserved prefix 'amq.*'`),
  /**
   * An operation the user may not do, in RabbitMQ's words: `write access to exchange 'x' in vhost
   * '/' refused for user 'bob'`. A stream or a group is the queue of that name to an AMQP client.
   */
  accessRefused: (permission: string, resource: { readonly kind: string; readonly name: string }, user: string) =>
    new AmqpReplyError(ReplyCode.ACCESS_REFUSED, `${permission} access to ${resource.kind === 'exchange' ? 'exchange' : 'queue'} '${resource.name}' ${vhost} refused for user '${user}'`),
  defaultExchange: () => new AmqpReplyError(ReplyCode.ACCESS_REFUSED, 'operation not permitted on the default exchange'),
  internalExchange: (x: string) => new AmqpReplyError(ReplyCode.ACCESS_REFUSED, `cannot publish to internal exchange '${x}' ${vhost}`),
  protectedDefinition: (kind: string, name: string) =>
    new AmqpReplyError(ReplyCode.ACCESS_REFUSED, `${kind} '${name}' ${vhost} is declared in Sluice's configuration file and cannot be changed over AMQP`),
  inUse: (kind: 'queue' | 'exchange', name: string) => new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, `${kind} '${name}' ${vhost} in use`),
  notEmpty: (q: string) => new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, `queue '${q}' ${vhost} not empty`),
  unknownDeliveryTag: (tag: number) => new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, `unknown delivery tag ${tag}`),
  precondition: (why: string) => new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, why),
  unknownExchangeType: (type: string) => new AmqpReplyError(ReplyCode.COMMAND_INVALID, `unknown exchange type '${type}'`),
  reuseConsumerTag: (tag: string) => new AmqpReplyError(ReplyCode.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`),
  notImplemented: (what: string) => new AmqpReplyError(ReplyCode.NOT_IMPLEMENTED, what),
  channelError: (why: string) => new AmqpReplyError(ReplyCode.CHANNEL_ERROR, why),
  commandInvalid: (why: string) => new AmqpReplyError(ReplyCode.COMMAND_INVALID, why),
  notAllowed: (why: string) => new AmqpReplyError(ReplyCode.NOT_ALLOWED, why),
  internal: (why: string, cause?: unknown) => new AmqpReplyError(ReplyCode.INTERNAL_ERROR, why, {}, { cause }),
}

/**
 * A core failure as an AMQP exception: what a client did wrong closes its channel with the
 * matching soft code; anything else is 541 INTERNAL_ERROR and closes the connection.
 */
export function replyFor(err: unknown, names: { queue?: string; exchange?: string } = {}): AmqpReplyError {
  if (err instanceof AmqpReplyError) return err
  if (!(err instanceof SluiceError)) return reply.internal(err instanceof Error ? err.message : String(err), err)
  const details = err.details ?? {}
  switch (err.code) {
    case 'SLUICE_ERR_UNKNOWN_EXCHANGE':
      return reply.noExchange(String(details.exchange ?? names.exchange ?? ''))
    case 'SLUICE_ERR_UNKNOWN_STREAM':
    case 'SLUICE_ERR_UNKNOWN_GROUP':
      return reply.noQueue(names.queue ?? String(details.stream ?? details.group ?? ''))
    case 'SLUICE_ERR_DEFINITION_PROTECTED':
      return new AmqpReplyError(ReplyCode.ACCESS_REFUSED, err.message, {}, { cause: err })
    // RabbitMQ's queue limits close the channel with 406 and say which limit; so do these.
    case 'SLUICE_ERR_TOO_MANY_STREAMS':
      return reply.precondition(`cannot declare queue '${names.queue ?? String(details.stream ?? '')}' ${vhost}: stream limit (${String(details.limitStreams)}) is reached (server.limits.maxStreams)`)
    case 'SLUICE_ERR_TOO_MANY_GROUPS':
      return reply.precondition(`cannot declare queue '${names.queue ?? String(details.group ?? '')}' ${vhost}: group limit (${String(details.limitGroups)}) is reached (server.limits.maxGroups)`)
    // As RabbitMQ's consumer_max_per_channel and channel_max_per_node: 530, closing the connection.
    case 'SLUICE_ERR_TOO_MANY_CONSUMERS':
      return reply.notAllowed(`reached maximum (${String(details.limitConsumers)}) of consumers across all queues (server.limits.maxConsumers)`)
    case 'SLUICE_ERR_ROUTER_EXCHANGE_CONFLICT':
    case 'SLUICE_ERR_DEFINITION_IN_USE':
    case 'SLUICE_ERR_GROUP_EXISTS':
    case 'SLUICE_ERR_BAD_REQUEST':
    case 'SLUICE_ERR_ROUTER_BAD_EXCHANGE':
    case 'SLUICE_ERR_ROUTER_BAD_BINDING':
      return new AmqpReplyError(ReplyCode.PRECONDITION_FAILED, err.message, {}, { cause: err })
    default:
      return reply.internal(err.message, err)
  }
}
