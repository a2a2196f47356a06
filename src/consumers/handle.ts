import type { Delivery } from './dispatcher.js'
import type { SettleAs, TagResult } from './group.js'

/**
 * What a door's consumer does with a group: a ConsumerGroup here, or (cluster mode) the same
 * operations carried to the node that holds the group. The AMQP channel speaks only this.
 */
export interface ConsumeHandle {
  readonly name: string
  readonly stream: string
  /**
   * Pushes deliveries to `deliver`, up to `prefetch` unacked. `lost`: called if the group can no
   * longer be reached (a remote home gone), so the door can cancel its consumer.
   */
  subscribe(consumer: string, prefetch: number, deliver: (deliveries: Delivery[]) => void, priority?: number, user?: string, lost?: () => void): void
  unsubscribe(consumer: string, release: boolean): void
  setPrefetch(consumer: string, prefetch: number): void
  admitMember(consumer: string): void
  returnUndelivered(tags: readonly unknown[]): number
  fetch(consumer: string, max: number, waitMs: number): Promise<Delivery[]>
  ack(tags: readonly unknown[], as?: SettleAs): Promise<TagResult[]>
  ackThrough(to: unknown, from: unknown, as?: SettleAs): Promise<{ settled: number; failed: TagResult[] }>
  nack(tags: readonly unknown[], opts: { requeue: boolean; delayMs?: number | undefined; reason?: string | undefined }, as?: SettleAs): Promise<TagResult[]>
}
