import { randomBytes } from 'node:crypto'
import type { BasicProperties } from './content.js'

// RabbitMQ's direct reply-to: a client consumes (no-ack) from the pseudo-queue
// `amq.rabbitmq.reply-to` and publishes requests with that as their reply-to; the property goes out
// rewritten to `amq.rabbitmq.reply-to.<token>`, and a reply published to the default exchange
// with that routing key goes straight to the consumer's channel. Replies are never stored: an RPC
// answer is worth nothing once its caller is gone, which is why RabbitMQ built the feature.

export const replyToQueue = 'amq.rabbitmq.reply-to'
const replyToPrefix = `${replyToQueue}.`

/** Where a reply goes: the reply consumer of one channel. */
export interface ReplyTarget {
  deliverReply(routingKey: string, properties: BasicProperties, body: Buffer): void
}

export const isDirectReply = (exchange: string, routingKey: string): boolean => exchange === '' && routingKey.startsWith(replyToPrefix)

/** The channels consuming from `amq.rabbitmq.reply-to`, by the address their requests carry. */
export class DirectReplies {
  readonly #targets = new Map<string, ReplyTarget>()

  /** A new reply consumer; returns the address its requests' reply-to becomes. */
  register(target: ReplyTarget): string {
    const address = `${replyToPrefix}${randomBytes(18).toString('base64url')}`
    this.#targets.set(address, target)
    return address
  }

  unregister(address: string): void {
    this.#targets.delete(address)
  }

  /** False when nobody consumes at that address any more (the reply is dropped, as in RabbitMQ). */
  deliver(routingKey: string, properties: BasicProperties, body: Buffer): boolean {
    const t = this.#targets.get(routingKey)
    if (t === undefined) return false
    t.deliverReply(routingKey, properties, body)
    return true
  }
}
