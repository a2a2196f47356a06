import { describe, expect, it } from 'vitest'
import { collect, connect, startAmqpServer } from '../helpers/amqp.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'

// RabbitMQ's delay-queue pattern: messages wait in a queue nobody consumes, and its TTL and
// dead-letter exchange move them on to the work queue.
describe('AMQP TTL with no consumer', () => {
  it('x-message-ttl: the wait queue moves its messages on by itself', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createChannel()
    await ch.assertQueue('work')
    await ch.assertQueue('wait', { arguments: { 'x-message-ttl': 300, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'work' } })
    const sent = Date.now()
    for (let i = 0; i < 20; i++) ch.sendToQueue('wait', Buffer.from(`m${i}`))
    const got = await collect(ch, 'work', 20)
    expect(Date.now() - sent).toBeGreaterThanOrEqual(290)
    expect(got.map((m) => m.content.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
    expect((got[0]!.properties.headers?.['x-death'] as Array<{ reason: string }>)[0]!.reason).toBe('expired')
  })

  it('the expiration property: per-message TTL, counted from when the message is stored', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const ch = await (await connect(s.amqpUrl)).createConfirmChannel()
    await ch.assertQueue('work')
    await ch.assertQueue('wait', { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'work' } })
    ch.sendToQueue('wait', Buffer.from('soon'), { expiration: '200' })
    ch.sendToQueue('wait', Buffer.from('later'), { expiration: '400' })
    await ch.waitForConfirms()
    const got = await collect(ch, 'work', 2)
    expect(got.map((m) => m.content.toString())).toEqual(['soon', 'later'])
    // An expiration that is not whole milliseconds is refused, as RabbitMQ refuses it.
    ch.sendToQueue('wait', Buffer.from('bad'), { expiration: '1.5' })
    await expect(ch.waitForConfirms()).rejects.toThrow()
  })
})
