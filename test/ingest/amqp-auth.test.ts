import amqplib from 'amqplib'
import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../src/auth/index.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'
import { connect, startAmqpServer } from '../helpers/amqp.js'

// The AMQP door logs in through the same authenticator as HTTP: the same users, hashes, counts.
describe('AMQP door: logins', () => {
  it('a passwordHash user logs in with PLAIN; a wrong password is refused 403 and counted under door amqp', async () => {
    const hash = await hashPassword('s3cret', { N: 1024, r: 8, p: 1 })
    const s = await startAmqpServer({
      pipeline: `${amqpPipeline}\nauth:\n  users:\n    - { username: app, passwordHash: "${hash}" }\n    - { username: ops, password: ops-pw, tags: [monitoring] }\n`,
    })
    const conn = await connect(`amqp://app:s3cret@127.0.0.1:${s.amqpPort}`)
    await (await conn.createChannel()).assertQueue('hashed-ok')
    await expect(amqplib.connect(`amqp://app:wrong@127.0.0.1:${s.amqpPort}`)).rejects.toThrow(/ACCESS_REFUSED|403/)
    await expect(amqplib.connect(`amqp://nobody:s3cret@127.0.0.1:${s.amqpPort}`)).rejects.toThrow(/ACCESS_REFUSED|403/)
    const auth = `Basic ${Buffer.from('ops:ops-pw').toString('base64')}`
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { authorization: auth } })).text()
    expect(metrics).toContain('sluice_auth_failures_total{door="amqp",reason="bad_password"} 1')
    expect(metrics).toContain('sluice_auth_failures_total{door="amqp",reason="unknown_user"} 1')
  })

  it('AMQPLAIN logs in as PLAIN does', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    // amqplib sends AMQPLAIN when asked for it by a credentials object.
    const credentials = { mechanism: 'AMQPLAIN', response: () => Buffer.concat([Buffer.from([5]), Buffer.from('LOGIN'), Buffer.from('S'), u32(5), Buffer.from('guest'), Buffer.from([8]), Buffer.from('PASSWORD'), Buffer.from('S'), u32(5), Buffer.from('guest')]) }
    const conn = await connect(`amqp://127.0.0.1:${s.amqpPort}`, { credentials })
    await (await conn.createChannel()).assertQueue('amqplain-ok')
    const bad = { mechanism: 'AMQPLAIN', response: () => Buffer.concat([Buffer.from([5]), Buffer.from('LOGIN'), Buffer.from('S'), u32(5), Buffer.from('guest'), Buffer.from([8]), Buffer.from('PASSWORD'), Buffer.from('S'), u32(4), Buffer.from('gues')]) }
    await expect(amqplib.connect(`amqp://127.0.0.1:${s.amqpPort}`, { credentials: bad })).rejects.toThrow(/ACCESS_REFUSED|403/)
  })
})

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
