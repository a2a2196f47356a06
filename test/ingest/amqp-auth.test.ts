import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import type amqp from 'amqplib'
import amqplib from 'amqplib'
import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../src/auth/index.js'
import { amqpPipeline } from '../helpers/amqp-pipeline.js'
import { channelError, collect, connect, startAmqpServer, type AmqpTestServer } from '../helpers/amqp.js'
import { makePki, tlsYaml, type Pair } from '../helpers/pki.js'
import { requireProgram } from '../helpers/programs.js'
import { tempDir } from '../helpers/temp.js'

// The AMQP door logs in through the same authenticator as HTTP: the same users, hashes, counts.
describe('AMQP door: logins', () => {
  it('a passwordHash user logs in with PLAIN; a wrong password is refused 403 and counted under door amqp', async () => {
    const hash = await hashPassword('s3cret', { N: 1024, r: 8, p: 1 })
    const s = await startAmqpServer({
      pipeline: `${amqpPipeline}\nauth:\n  users:\n    - { username: app, passwordHash: "${hash}", permissions: { configure: "^hashed-ok$" } }\n    - { username: ops, password: ops-pw, tags: [monitoring] }\n`,
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

// Users as in docs/security.md: each may do what its patterns say and nothing else.
const users = `
auth:
  users:
    - { username: admin, password: admin-pw, tags: [administrator] }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: reader, password: read-pw, permissions: { read: "^app-logs$" } }
    - { username: maker, password: make-pw, permissions: { configure: "^made-.*$", write: "^made-.*$" } }
    - { username: binder, password: bind-pw, permissions: { write: "^(bound-q|bound-x)$", read: "^logs$" } }
    - { username: dl, password: dl-pw, permissions: { configure: "^dl-.*$", read: "^dl-.*$", write: "^dl-x$" } }
`

interface Setup {
  readonly s: AmqpTestServer
  readonly as: (user: string, password: string) => Promise<amqp.ChannelModel>
  /** An administrator's confirm channel; `logs` (topic) routes everything to the queue `app-logs`. */
  readonly admin: amqp.ConfirmChannel
}

async function setup(): Promise<Setup> {
  const s = await startAmqpServer({ pipeline: users })
  const as = (user: string, password: string): Promise<amqp.ChannelModel> => connect(`amqp://${user}:${password}@127.0.0.1:${s.amqpPort}`)
  const admin = await (await as('admin', 'admin-pw')).createConfirmChannel()
  await admin.assertExchange('logs', 'topic')
  await admin.assertQueue('app-logs')
  await admin.bindQueue('app-logs', 'logs', '#')
  return { s, as, admin }
}

async function publishConfirmed(ch: amqp.ConfirmChannel, exchange: string, key: string, id: string): Promise<void> {
  ch.publish(exchange, key, Buffer.from(JSON.stringify({ id })), { messageId: id })
  await ch.waitForConfirms()
}

/** The ids in a stream, read over HTTP as the administrator. */
async function streamIds(s: AmqpTestServer, stream: string): Promise<Array<string | null>> {
  const res = await fetch(`${s.url}/v1/streams/${stream}/events?from=0&limit=1000`, { headers: { authorization: basic('admin', 'admin-pw') } })
  expect(res.status).toBe(200)
  return ((await res.json()) as { events: Array<{ id: string | null }> }).events.map((e) => e.id)
}

/** /metrics, with credentials or (embedded default) as the anonymous loopback guest. */
async function scrape(s: AmqpTestServer, auth?: string): Promise<string> {
  return (await fetch(`${s.url}/metrics`, auth === undefined ? {} : { headers: { authorization: auth } })).text()
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const refusal = (permission: string, kind: 'queue' | 'exchange', name: string, user: string): string =>
  `ACCESS_REFUSED - ${permission} access to ${kind} '${name}' in vhost '/' refused for user '${user}'`

// RabbitMQ's access control: every declare, bind, publish and consume asks the one authorizer; a
// refusal closes the channel with 403 ACCESS_REFUSED, and the connection carries on.
describe('AMQP door: permissions', () => {
  it('a writer on ^logs$ publishes to logs, and is refused a queue declare and a consume (403, channel only)', async () => {
    const { s, as, admin } = await setup()
    const shipper = await as('shipper', 'ship-pw')
    const pub = await shipper.createConfirmChannel()
    await publishConfirmed(pub, 'logs', 'a.info', 'm-1')
    const declare = await channelError(shipper, (ch) => ch.assertQueue('shipper-q'))
    expect(declare).toMatchObject({ code: 403 })
    expect(declare.message).toContain(refusal('configure', 'queue', 'shipper-q', 'shipper'))
    const consume = await channelError(shipper, (ch) => ch.consume('app-logs', () => undefined))
    expect(consume).toMatchObject({ code: 403 })
    expect(consume.message).toContain(refusal('read', 'queue', 'app-logs', 'shipper'))
    // Only those channels closed: the first one still publishes.
    await publishConfirmed(pub, 'logs', 'a.info', 'm-2')
    expect(await streamIds(s, 'app-logs')).toEqual(['m-1', 'm-2'])
    expect((await admin.checkQueue('app-logs')).messageCount).toBe(2)
    // Nothing was declared for the refused queue.
    expect(await channelError(await as('admin', 'admin-pw'), (ch) => ch.checkQueue('shipper-q'))).toMatchObject({ code: 404 })
    const metrics = await scrape(s, basic('admin', 'admin-pw'))
    expect(metrics).toContain('sluice_auth_denials_total{door="amqp",operation="queue.declare"} 1')
    expect(metrics).toContain('sluice_auth_denials_total{door="amqp",operation="consume"} 1')
  })

  it('a reader consumes and gets, and a publish of its is refused 403 and not stored', async () => {
    const { s, as, admin } = await setup()
    await publishConfirmed(admin, 'logs', 'a.info', 'm-1')
    await publishConfirmed(admin, 'logs', 'a.info', 'm-2')
    const reader = await as('reader', 'read-pw')
    const ch = await reader.createChannel()
    const got = await ch.get('app-logs')
    expect(got !== false && got.properties.messageId).toBe('m-1')
    if (got !== false) ch.ack(got)
    const [delivered] = await collect(ch, 'app-logs', 1)
    expect(delivered?.properties.messageId).toBe('m-2')
    // A publish, to an exchange or to the default one (checked as amq.default, as RabbitMQ).
    const toLogs = await channelError(reader, async (c) => c.publish('logs', 'a.info', Buffer.from('{}'), { messageId: 'refused-1' }))
    expect(toLogs).toMatchObject({ code: 403 })
    expect(toLogs.message).toContain(refusal('write', 'exchange', 'logs', 'reader'))
    const toDefault = await channelError(reader, async (c) => c.sendToQueue('app-logs', Buffer.from('{}'), { messageId: 'refused-2' }))
    expect(toDefault.message).toContain(refusal('write', 'exchange', 'amq.default', 'reader'))
    // In confirm mode too: the channel closes, the message is not stored.
    const confirm = await reader.createConfirmChannel()
    const closed = new Promise<{ code: number; message: string }>((resolve) => confirm.once('error', resolve))
    const confirmed = new Promise<unknown>((resolve) => confirm.publish('logs', 'a.info', Buffer.from('{}'), { messageId: 'refused-3' }, (err: unknown) => resolve(err)))
    expect((await closed).code).toBe(403)
    expect(await confirmed).toBeTruthy()
    await publishConfirmed(admin, 'logs', 'a.info', 'm-3')
    expect(await streamIds(s, 'app-logs')).toEqual(['m-1', 'm-2', 'm-3'])
    // Passive declares need no permission, as in RabbitMQ.
    const passive = await reader.createChannel()
    expect(await passive.checkQueue('app-logs')).toMatchObject({ queue: 'app-logs' })
    await passive.checkExchange('logs')
    // A reader is not a configurer: purge is read (allowed), delete is configure (refused).
    expect(await passive.purgeQueue('app-logs')).toMatchObject({ messageCount: 1 })
    const del = await channelError(reader, (c) => c.deleteQueue('app-logs'))
    expect(del.message).toContain(refusal('configure', 'queue', 'app-logs', 'reader'))
    expect(await scrape(s, basic('admin', 'admin-pw'))).toContain('sluice_auth_denials_total{door="amqp",operation="publish"} 3')
  })

  it('configure lets a user declare and delete its own queues and exchanges, and nothing else', async () => {
    const { as, admin } = await setup()
    const maker = await as('maker', 'make-pw')
    const ch = await maker.createChannel()
    await ch.assertQueue('made-q', { durable: true })
    await ch.assertQueue('made-q', { durable: true }) // a redeclare asks configure too, and has it
    await ch.assertExchange('made-x', 'fanout')
    expect(await admin.checkQueue('made-q')).toMatchObject({ queue: 'made-q' })
    const other = await channelError(maker, (c) => c.assertExchange('other-x', 'fanout'))
    expect(other.message).toContain(refusal('configure', 'exchange', 'other-x', 'maker'))
    const redeclare = await channelError(maker, (c) => c.assertQueue('app-logs'))
    expect(redeclare.message).toContain(refusal('configure', 'queue', 'app-logs', 'maker'))
    // A server-named queue is checked by the name the server gives it, as RabbitMQ does.
    const named = await channelError(maker, (c) => c.assertQueue(''))
    expect(named.message).toMatch(/ACCESS_REFUSED - configure access to queue 'amq\.gen-[\w-]+' in vhost '\/' refused for user 'maker'/)
    const ch2 = await maker.createChannel()
    await ch2.deleteQueue('made-q')
    await ch2.deleteExchange('made-x')
    expect(await channelError(await as('admin', 'admin-pw'), (c) => c.checkQueue('made-q'))).toMatchObject({ code: 404 })
    const delOther = await channelError(maker, (c) => c.deleteExchange('logs'))
    expect(delOther.message).toContain(refusal('configure', 'exchange', 'logs', 'maker'))
  })

  it('a binding needs write on its destination and read on its source', async () => {
    const { as, admin } = await setup()
    await admin.assertQueue('bound-q')
    await admin.assertExchange('bound-x', 'fanout')
    await admin.assertExchange('other-x', 'fanout')
    const binder = await as('binder', 'bind-pw')
    const ch = await binder.createChannel()
    await ch.bindQueue('bound-q', 'logs', '#')
    await ch.bindExchange('bound-x', 'logs', '#')
    await ch.unbindExchange('bound-x', 'logs', '#')
    await ch.unbindQueue('bound-q', 'logs', '#')
    await ch.bindQueue('bound-q', 'logs', '#')
    const noRead = await channelError(binder, (c) => c.bindQueue('bound-q', 'other-x', ''))
    expect(noRead.message).toContain(refusal('read', 'exchange', 'other-x', 'binder'))
    const noWrite = await channelError(binder, (c) => c.bindQueue('app-logs', 'logs', '#'))
    expect(noWrite.message).toContain(refusal('write', 'queue', 'app-logs', 'binder'))
    const exchangeNoWrite = await channelError(binder, (c) => c.bindExchange('other-x', 'logs', '#'))
    expect(exchangeNoWrite.message).toContain(refusal('write', 'exchange', 'other-x', 'binder'))
    const exchangeNoRead = await channelError(binder, (c) => c.bindExchange('bound-x', 'other-x', ''))
    expect(exchangeNoRead.message).toContain(refusal('read', 'exchange', 'other-x', 'binder'))
    // A refused binding is not made: bound-q has logs' events only.
    await publishConfirmed(admin, 'other-x', '', 'via-other')
    await publishConfirmed(admin, 'logs', 'a.info', 'via-logs')
    expect((await admin.checkQueue('bound-q')).messageCount).toBe(1)
  })

  it('a queue with a dead-letter exchange needs read on the queue and write on the exchange, as RabbitMQ', async () => {
    const { as, admin } = await setup()
    await admin.assertExchange('dl-x', 'fanout')
    const dl = await as('dl', 'dl-pw')
    const ch = await dl.createChannel()
    await ch.assertQueue('dl-q', { deadLetterExchange: 'dl-x' })
    const noWrite = await channelError(dl, (c) => c.assertQueue('dl-q2', { deadLetterExchange: 'logs' }))
    expect(noWrite.message).toContain(refusal('write', 'exchange', 'logs', 'dl'))
    const toDefault = await channelError(dl, (c) => c.assertQueue('dl-q3', { deadLetterExchange: '' }))
    expect(toDefault.message).toContain(refusal('write', 'exchange', 'amq.default', 'dl'))
    // maker may configure made-* and write made-*, but not read made-q: no draining it elsewhere.
    await admin.assertExchange('made-x', 'fanout')
    const maker = await as('maker', 'make-pw')
    const noRead = await channelError(maker, (c) => c.assertQueue('made-q', { deadLetterExchange: 'made-x', messageTtl: 0 }))
    expect(noRead.message).toContain(refusal('read', 'queue', 'made-q', 'maker'))
    expect(await channelError(await as('admin', 'admin-pw'), (c) => c.checkQueue('made-q'))).toMatchObject({ code: 404 })
  })

  it('an alternate exchange needs read on the new exchange and write on the alternate, as RabbitMQ', async () => {
    const { as } = await setup()
    const dl = await as('dl', 'dl-pw')
    const ch = await dl.createChannel()
    await ch.assertExchange('dl-x', 'fanout')
    await ch.assertExchange('dl-main', 'topic', { alternateExchange: 'dl-x' })
    const noWrite = await channelError(dl, (c) => c.assertExchange('dl-other', 'topic', { alternateExchange: 'logs' }))
    expect(noWrite.message).toContain(refusal('write', 'exchange', 'logs', 'dl'))
    // maker may configure and write made-*, but not read made-x: it could not see what the alternate gets.
    const maker = await as('maker', 'make-pw')
    await (await maker.createChannel()).assertExchange('made-ae', 'fanout')
    const noRead = await channelError(maker, (c) => c.assertExchange('made-x', 'topic', { alternateExchange: 'made-ae' }))
    expect(noRead.message).toContain(refusal('read', 'exchange', 'made-x', 'maker'))
  })

  it('the embedded default: guest, from loopback, may do everything', async () => {
    const s = await startAmqpServer({ pipeline: amqpPipeline })
    const conn = await connect(s.amqpUrl)
    const ch = await conn.createConfirmChannel()
    await ch.assertExchange('g-ae', 'fanout')
    await ch.assertExchange('g-x', 'topic', { alternateExchange: 'g-ae' })
    await ch.assertQueue('g-q', { deadLetterExchange: 'g-x' })
    await ch.bindQueue('g-q', 'g-x', '#')
    await ch.bindExchange('g-x', 'cfg-events', '#')
    await publishConfirmed(ch, 'g-x', 'k', 'g-1')
    await publishConfirmed(ch, '', 'g-q', 'g-2')
    const got = await collect(ch, 'g-q', 2)
    expect(got.map((m) => m.properties.messageId)).toEqual(['g-1', 'g-2'])
    expect(await ch.get('cfg-group')).toBe(false)
    await ch.purgeQueue('g-q')
    await ch.unbindExchange('g-x', 'cfg-events', '#')
    await ch.deleteQueue('g-q')
    await ch.deleteExchange('g-x')
    await ch.deleteExchange('g-ae')
    expect(await scrape(s)).not.toContain('sluice_auth_denials_total{')
  })

  it('a loopbackOnly user (guest) is refused from another address, and counted', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && !a.internal && a.family === 'IPv4')
    if (external === undefined) throw new Error('this test needs a non-loopback IPv4 address on the machine (any network interface)')
    const s = await startAmqpServer({ pipeline: amqpPipeline, amqp: '{ port: 0, host: 0.0.0.0 }' })
    await expect(amqplib.connect(`amqp://guest:guest@${external.address}:${s.amqpPort}`)).rejects.toThrow(/ACCESS_REFUSED/)
    const conn = await connect(`amqp://guest:guest@127.0.0.1:${s.amqpPort}`)
    await (await conn.createChannel()).assertQueue('from-loopback')
    expect(await scrape(s)).toContain('sluice_auth_failures_total{door="amqp",reason="loopback_only"} 1')
  })

  it('pika: a refused publish closes the channel with 403 ACCESS_REFUSED', async () => {
    const python = requireProgram('/usr/bin/python3', 'python3')
    const { s, admin } = await setup()
    const dir = await tempDir()
    const script = join(dir, 'refused.py')
    await writeFile(script, pikaRefused)
    const out = await runPython(python, script, [String(s.amqpPort)], 20_000)
    expect(out.trim().split('\n')).toEqual(['get m-1', "closed 403 ACCESS_REFUSED - write access to exchange 'logs' in vhost '/' refused for user 'reader'", 'connection open'])
    expect((await admin.checkQueue('app-logs')).messageCount).toBe(0)
  }, 30_000)
})

// RabbitMQ's rabbitmq_auth_mechanism_ssl: over TLS with a verified client certificate, EXTERNAL
// logs in as the user the certificate's CN names, with that user's permissions.
describe('AMQP door: SASL EXTERNAL with a TLS client certificate', () => {
  it('logs in as the user the CN names, with its permissions; an unknown CN is refused; without a certificate EXTERNAL is not offered', async () => {
    const pki = await makePki(await tempDir())
    const nobody = await pki.issue('nobody', '/O=Acme/CN=nobody', 'client')
    const s = await startAmqpServer({ pipeline: users, amqp: `[ { port: 0 }, { port: 0, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'optional' })} } ]` })
    const amqpPorts = (tls: boolean): number[] => s.server.listeners.filter((l) => l.options.name === 'amqp' && (l.tls === true) === tls).map((l) => l.port)
    const [plain] = amqpPorts(false)
    const [secure] = amqpPorts(true)
    const admin = await (await connect(`amqp://admin:admin-pw@127.0.0.1:${plain}`)).createConfirmChannel()
    await admin.assertExchange('logs', 'topic')
    await admin.assertQueue('app-logs')
    await admin.bindQueue('app-logs', 'logs', '#')
    const external = (pair?: Pair): Record<string, unknown> => ({
      credentials: amqplib.credentials.external(),
      ca: [readFileSync(pki.ca)],
      ...(pair === undefined ? {} : { cert: readFileSync(pair.cert), key: readFileSync(pair.key) }),
    })
    // pki.client is CN=shipper: write on ^logs$ and nothing else.
    const shipper = await connect(`amqps://127.0.0.1:${secure}`, external(pki.client))
    await publishConfirmed(await shipper.createConfirmChannel(), 'logs', 'a.info', 'via-cert')
    expect(await streamIds(s, 'app-logs')).toEqual(['via-cert'])
    const declare = await channelError(shipper, (ch) => ch.assertQueue('cert-q'))
    expect(declare.message).toContain(refusal('configure', 'queue', 'cert-q', 'shipper'))
    await expect(amqplib.connect(`amqps://127.0.0.1:${secure}`, external(nobody))).rejects.toThrow(/ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL/)
    // No client certificate (clientAuth optional), or plain AMQP: EXTERNAL is not offered, PLAIN is.
    await expect(amqplib.connect(`amqps://127.0.0.1:${secure}`, external())).rejects.toThrow(/SASL mechanism EXTERNAL is not provided by the server/)
    await expect(amqplib.connect(`amqp://127.0.0.1:${plain}`, { credentials: amqplib.credentials.external() })).rejects.toThrow(/SASL mechanism EXTERNAL is not provided by the server/)
    const withPassword = await connect(`amqps://reader:read-pw@127.0.0.1:${secure}`, { ca: [readFileSync(pki.ca)] })
    expect(await (await withPassword.createChannel()).checkQueue('app-logs')).toMatchObject({ queue: 'app-logs', messageCount: 1 })
    expect(await scrape(s, basic('admin', 'admin-pw'))).toContain('sluice_auth_failures_total{door="amqp",reason="unknown_user"} 1')
  })
})

// A pika reader: basic.get works; its publish is refused and closes the channel, not the connection.
const pikaRefused = `
import sys, pika
port = int(sys.argv[1])
params = pika.ConnectionParameters(host='127.0.0.1', port=port, credentials=pika.PlainCredentials('reader', 'read-pw'))
conn = pika.BlockingConnection(params)
admin = pika.BlockingConnection(pika.ConnectionParameters(host='127.0.0.1', port=port, credentials=pika.PlainCredentials('admin', 'admin-pw')))
achan = admin.channel()
achan.confirm_delivery()
achan.basic_publish(exchange='logs', routing_key='a.info', body=b'{}', properties=pika.BasicProperties(message_id='m-1'))
ch = conn.channel()
method, props, body = ch.basic_get('app-logs', auto_ack=True)
print('get %s' % props.message_id)
ch.basic_publish(exchange='logs', routing_key='a.info', body=b'{}', properties=pika.BasicProperties(message_id='refused'))
try:
    ch.basic_get('app-logs', auto_ack=True)
    print('not closed')
except pika.exceptions.ChannelClosedByBroker as e:
    print('closed %d %s' % (e.reply_code, e.reply_text))
print('connection open' if conn.is_open else 'connection closed')
conn.close()
admin.close()
`

function runPython(python: string, script: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.once('error', reject)
    p.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${script} exited with ${code ?? signal}: ${err}`))
    })
  })
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
