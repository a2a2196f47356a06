import { errors } from '../../errors.js'
import { ReplyCode } from './constants.js'
import { AmqpReplyError } from './reply.js'
import type { AmqpVhost } from './vhost.js'

/** The connection id the HTTP door deletes as: it owns no exclusive queue. */
const httpConnection = 'http'

/**
 * Deleting an AMQP queue from another door (HTTP `DELETE /v1/streams/{s}`): through the virtual
 * host, so the queue's consumers are cancelled and its groups go with it, as queue.delete does.
 * The vhost's AMQP refusals become the catalogue's errors.
 */
export function queueAdmin(vhost: AmqpVhost): { deleteQueue(name: string, opts: { readonly ifUnused: boolean; readonly ifEmpty: boolean }): Promise<void> } {
  return {
    deleteQueue: async (name, opts) => {
      try {
        await vhost.deleteQueue(httpConnection, name, opts)
      } catch (err) {
        if (!(err instanceof AmqpReplyError)) throw err
        switch (err.replyCode) {
          case ReplyCode.NOT_FOUND:
            throw errors.unknownStream(name)
          case ReplyCode.ACCESS_REFUSED:
            throw errors.definitionProtected('stream', name)
          case ReplyCode.RESOURCE_LOCKED:
            throw errors.definitionInUse('stream', name, 'is an exclusive queue of an open AMQP connection')
          case ReplyCode.PRECONDITION_FAILED:
            throw errors.definitionInUse('stream', name, opts.ifEmpty && /not empty/.test(err.message) ? 'is not empty (ifEmpty)' : 'has consumers (ifUnused)')
          default:
            throw err
        }
      }
    },
  }
}
