// The AMQP 0-9-1 method table, written from RabbitMQ's amqp-rabbitmq-0.9.1.json (class and method
// ids, argument order and domains resolved to primitive types). One row per method:
//   'class.method': [classId, methodId, [[argName, type], ...], carriesContent]
// Argument names are the spec's, camelCased, except close's class-id/method-id, which are
// failingClassId/failingMethodId so they cannot clash with the method's own classId/methodId. `methods.ts` derives the TS types and the codec from
// this table, so a method cannot be encoded one way and typed another.

export type ArgType = 'octet' | 'short' | 'long' | 'longlong' | 'shortstr' | 'longstr' | 'bit' | 'table'

export const methodSpecs = {
  'connection.start': [10, 10, [['versionMajor', 'octet'], ['versionMinor', 'octet'], ['serverProperties', 'table'], ['mechanisms', 'longstr'], ['locales', 'longstr']], false],
  'connection.start-ok': [10, 11, [['clientProperties', 'table'], ['mechanism', 'shortstr'], ['response', 'longstr'], ['locale', 'shortstr']], false],
  'connection.secure': [10, 20, [['challenge', 'longstr']], false],
  'connection.secure-ok': [10, 21, [['response', 'longstr']], false],
  'connection.tune': [10, 30, [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']], false],
  'connection.tune-ok': [10, 31, [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']], false],
  'connection.open': [10, 40, [['virtualHost', 'shortstr'], ['capabilities', 'shortstr'], ['insist', 'bit']], false],
  'connection.open-ok': [10, 41, [['knownHosts', 'shortstr']], false],
  'connection.close': [10, 50, [['replyCode', 'short'], ['replyText', 'shortstr'], ['failingClassId', 'short'], ['failingMethodId', 'short']], false],
  'connection.close-ok': [10, 51, [], false],
  'connection.blocked': [10, 60, [['reason', 'shortstr']], false],
  'connection.unblocked': [10, 61, [], false],
  'connection.update-secret': [10, 70, [['newSecret', 'longstr'], ['reason', 'shortstr']], false],
  'connection.update-secret-ok': [10, 71, [], false],

  'channel.open': [20, 10, [['outOfBand', 'shortstr']], false],
  'channel.open-ok': [20, 11, [['channelId', 'longstr']], false],
  'channel.flow': [20, 20, [['active', 'bit']], false],
  'channel.flow-ok': [20, 21, [['active', 'bit']], false],
  'channel.close': [20, 40, [['replyCode', 'short'], ['replyText', 'shortstr'], ['failingClassId', 'short'], ['failingMethodId', 'short']], false],
  'channel.close-ok': [20, 41, [], false],

  // Deprecated in 0-9-1 but still answered by RabbitMQ; old clients send access.request.
  'access.request': [30, 10, [['realm', 'shortstr'], ['exclusive', 'bit'], ['passive', 'bit'], ['active', 'bit'], ['write', 'bit'], ['read', 'bit']], false],
  'access.request-ok': [30, 11, [['ticket', 'short']], false],

  'exchange.declare': [40, 10, [['ticket', 'short'], ['exchange', 'shortstr'], ['type', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['autoDelete', 'bit'], ['internal', 'bit'], ['nowait', 'bit'], ['arguments', 'table']], false],
  'exchange.declare-ok': [40, 11, [], false],
  'exchange.delete': [40, 20, [['ticket', 'short'], ['exchange', 'shortstr'], ['ifUnused', 'bit'], ['nowait', 'bit']], false],
  'exchange.delete-ok': [40, 21, [], false],
  'exchange.bind': [40, 30, [['ticket', 'short'], ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']], false],
  'exchange.bind-ok': [40, 31, [], false],
  'exchange.unbind': [40, 40, [['ticket', 'short'], ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']], false],
  // 51, not 41: a RabbitMQ extension numbered so; clients expect 40.51.
  'exchange.unbind-ok': [40, 51, [], false],

  'queue.declare': [50, 10, [['ticket', 'short'], ['queue', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['exclusive', 'bit'], ['autoDelete', 'bit'], ['nowait', 'bit'], ['arguments', 'table']], false],
  'queue.declare-ok': [50, 11, [['queue', 'shortstr'], ['messageCount', 'long'], ['consumerCount', 'long']], false],
  'queue.bind': [50, 20, [['ticket', 'short'], ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']], false],
  'queue.bind-ok': [50, 21, [], false],
  'queue.purge': [50, 30, [['ticket', 'short'], ['queue', 'shortstr'], ['nowait', 'bit']], false],
  'queue.purge-ok': [50, 31, [['messageCount', 'long']], false],
  'queue.delete': [50, 40, [['ticket', 'short'], ['queue', 'shortstr'], ['ifUnused', 'bit'], ['ifEmpty', 'bit'], ['nowait', 'bit']], false],
  'queue.delete-ok': [50, 41, [['messageCount', 'long']], false],
  'queue.unbind': [50, 50, [['ticket', 'short'], ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['arguments', 'table']], false],
  'queue.unbind-ok': [50, 51, [], false],

  'basic.qos': [60, 10, [['prefetchSize', 'long'], ['prefetchCount', 'short'], ['global', 'bit']], false],
  'basic.qos-ok': [60, 11, [], false],
  'basic.consume': [60, 20, [['ticket', 'short'], ['queue', 'shortstr'], ['consumerTag', 'shortstr'], ['noLocal', 'bit'], ['noAck', 'bit'], ['exclusive', 'bit'], ['nowait', 'bit'], ['arguments', 'table']], false],
  'basic.consume-ok': [60, 21, [['consumerTag', 'shortstr']], false],
  'basic.cancel': [60, 30, [['consumerTag', 'shortstr'], ['nowait', 'bit']], false],
  'basic.cancel-ok': [60, 31, [['consumerTag', 'shortstr']], false],
  'basic.publish': [60, 40, [['ticket', 'short'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['mandatory', 'bit'], ['immediate', 'bit']], true],
  'basic.return': [60, 50, [['replyCode', 'short'], ['replyText', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']], true],
  'basic.deliver': [60, 60, [['consumerTag', 'shortstr'], ['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']], true],
  'basic.get': [60, 70, [['ticket', 'short'], ['queue', 'shortstr'], ['noAck', 'bit']], false],
  'basic.get-ok': [60, 71, [['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['messageCount', 'long']], true],
  'basic.get-empty': [60, 72, [['clusterId', 'shortstr']], false],
  'basic.ack': [60, 80, [['deliveryTag', 'longlong'], ['multiple', 'bit']], false],
  'basic.reject': [60, 90, [['deliveryTag', 'longlong'], ['requeue', 'bit']], false],
  'basic.recover-async': [60, 100, [['requeue', 'bit']], false],
  'basic.recover': [60, 110, [['requeue', 'bit']], false],
  'basic.recover-ok': [60, 111, [], false],
  'basic.nack': [60, 120, [['deliveryTag', 'longlong'], ['multiple', 'bit'], ['requeue', 'bit']], false],

  'confirm.select': [85, 10, [['nowait', 'bit']], false],
  'confirm.select-ok': [85, 11, [], false],

  'tx.select': [90, 10, [], false],
  'tx.select-ok': [90, 11, [], false],
  'tx.commit': [90, 20, [], false],
  'tx.commit-ok': [90, 21, [], false],
  'tx.rollback': [90, 30, [], false],
  'tx.rollback-ok': [90, 31, [], false],
} as const satisfies Record<string, readonly [number, number, readonly (readonly [string, ArgType])[], boolean]>

/**
 * Reserved ("deprecated, must be zero/empty") arguments: optional when encoding (zero or empty is
 * written), always present after decoding so a decoded method re-encodes to the same bytes.
 */
export const reservedArgs = {
  ticket: 0,
  capabilities: '',
  insist: false,
  knownHosts: '',
  outOfBand: '',
  channelId: Buffer.alloc(0),
  clusterId: '',
} as const
export type ReservedArg = keyof typeof reservedArgs
