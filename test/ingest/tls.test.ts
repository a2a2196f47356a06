// TLS on every door, proven with real clients: curl, openssl s_client, amqplib over amqps://,
// Node's tls.connect speaking NDJSON and RFC 5425 syslog, and a certificate reload that new
// connections see while old ones carry on.

import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { connect as amqpConnect, collect, until } from '../helpers/amqp.js'
import { makePki, tlsYaml, type Pki } from '../helpers/pki.js'
import { requireProgram } from '../helpers/programs.js'
import { readStream, startTestServer, type TestServer } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

let pki: Pki
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-tls-'))
  pki = await makePki(dir)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a program to its end; a non-zero exit is a result here, not an error. */
async function runProgram(program: string, args: readonly string[], input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(program, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
    child.stdin?.end(input ?? '')
  })
}

const curl = (args: readonly string[]): Promise<Ran> => runProgram(requireProgram('curl', 'curl'), ['-sS', '--max-time', '10', ...args])

const portsOf = (s: TestServer, name: string): { plain: number[]; tls: number[] } => {
  const ls = s.server.listeners.filter((l) => l.options.name === name)
  return { plain: ls.filter((l) => l.tls !== true).map((l) => l.port), tls: ls.filter((l) => l.tls === true).map((l) => l.port) }
}

/** A TLS connection to a door, once its handshake is done. */
function dial(port: number, opts: { cert?: string; key?: string } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(pki.ca),
      servername: 'localhost',
      ...(opts.cert === undefined ? {} : { cert: readFileSync(opts.cert) }),
      ...(opts.key === undefined ? {} : { key: readFileSync(opts.key) }),
    })
    onTestFinished(() => void socket.destroy())
    socket.once('secureConnect', () => resolve(socket))
    socket.once('error', reject)
  })
}

const streamCount = async (url: string, stream: string): Promise<number> => ((await (await fetch(`${url}/v1/streams/${stream}`)).json()) as { events: number }).events

describe('HTTP and HTTPS side by side', () => {
  it('serves plain HTTP and HTTPS from one file; curl --cacert publishes over HTTPS, and curl without the CA is refused', async () => {
    const s = await startTestServer({ server: `  http: [ { port: 0 }, { port: 0, tls: ${tlsYaml(pki.server)} } ]` })
    const [plainUrl, httpsUrl] = s.server.httpUrls
    expect(plainUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(httpsUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect((await curl([`${plainUrl}/healthz`])).stdout).toBe('{"status":"ok"}')

    const published = await curl(['--cacert', pki.ca, '-H', 'content-type: application/x-ndjson', '--data-binary', '{"service":"web","level":"info","msg":"over https"}', `${httpsUrl}/v1/exchanges/logs/publish`])
    expect(published.code, published.stderr).toBe(0)
    expect(JSON.parse(published.stdout)).toMatchObject({ accepted: 1 })
    const { events } = await readStream(s.url, 'app-logs')
    expect(events.map((e) => e.body)).toEqual([{ service: 'web', level: 'info', msg: 'over https' }])

    // Without the CA curl cannot trust the certificate: exit 60, nothing sent.
    const untrusted = await curl([`${httpsUrl}/healthz`])
    expect(untrusted.code).toBe(60)
    // Plain HTTP spoken to the HTTPS port gets no answer of ours.
    const plainToTls = await curl([`${httpsUrl!.replace('https:', 'http:')}/healthz`])
    expect(plainToTls.code).not.toBe(0)
  })

  it('with clientAuth required, refuses curl without a client certificate and serves it with one', async () => {
    const s = await startTestServer({ server: `  http: [ { port: 0 }, { port: 0, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    const httpsUrl = s.server.httpUrls[1]!
    const without = await curl(['--cacert', pki.ca, `${httpsUrl}/healthz`])
    expect(without.code).not.toBe(0)
    expect(without.stdout).toBe('')
    const rogue = await curl(['--cacert', pki.ca, '--cert', pki.rogue.cert, '--key', pki.rogue.key, `${httpsUrl}/healthz`])
    expect(rogue.code).not.toBe(0)
    const withCert = await curl(['--cacert', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key, `${httpsUrl}/healthz`])
    expect(withCert.code, withCert.stderr).toBe(0)
    expect(withCert.stdout).toBe('{"status":"ok"}')
    // Both refusals are counted, once, under the one HTTP door.
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain('sluice_tls_handshake_failures_total{listener="http"} 2')
  })

  it('closes an HTTPS connection that sends no request within headersTimeout, as it does over plain HTTP', async () => {
    const s = await startTestServer({ server: `  http: [ { port: 0 }, { port: 0, headersTimeout: 1s, tls: ${tlsYaml(pki.server)} } ]` })
    const socket = await dial(Number(new URL(s.server.httpUrls[1]!).port))
    const started = Date.now()
    await new Promise((resolve) => {
      socket.on('error', () => undefined)
      socket.once('close', resolve)
    })
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('holds HTTPS connections to the entry’s maxConnectionsPerAddress at accept, the plain entry unaffected', async () => {
    const s = await startTestServer({ server: `  http: [ { port: 0 }, { port: 0, maxConnectionsPerAddress: 2, tls: ${tlsYaml(pki.server)} } ]` })
    const port = Number(new URL(s.server.httpUrls[1]!).port)
    await dial(port)
    await dial(port)
    await expect(dial(port)).rejects.toThrow()
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
  })
})

describe('openssl s_client', () => {
  const sClient = (port: number, args: readonly string[]): Promise<Ran> =>
    runProgram(requireProgram('openssl', 'openssl'), ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', pki.ca, '-verify_return_error', ...args], 'Q\n')

  it('completes TLS 1.2 and TLS 1.3 handshakes with a verified certificate, and refuses TLS 1.0', async () => {
    const s = await startTestServer({ amqp: `[ { port: 0, tls: ${tlsYaml(pki.server)} } ]` })
    const port = portsOf(s, 'amqp').tls[0]!
    const v12 = await sClient(port, ['-tls1_2'])
    expect(v12.code, v12.stderr).toBe(0)
    expect(v12.stdout).toMatch(/Protocol\s*:\s*TLSv1\.2/)
    expect(v12.stdout).toContain('Verify return code: 0 (ok)')
    const v13 = await sClient(port, ['-tls1_3'])
    expect(v13.code, v13.stderr).toBe(0)
    expect(v13.stdout).toMatch(/TLSv1\.3/)
    expect(v13.stdout).toContain('Verify return code: 0 (ok)')
    // OpenSSL 3 offers TLS 1.0 only at security level 0; the server answers with an alert.
    const listener = s.server.listeners.find((l) => l.options.name === 'amqp' && l.tls === true)!
    const failures = listener.counters.tlsHandshakeFailures
    const v10 = await sClient(port, ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0'])
    expect(v10.code).not.toBe(0)
    expect(v10.stderr).toMatch(/tlsv1 alert protocol version/)
    expect(listener.counters.tlsHandshakeFailures).toBe(failures + 1)
  })

  it('refuses TLS 1.2 under minVersion TLSv1.3', async () => {
    const s = await startTestServer({ server: `  http: [ { port: 0 }, { port: 0, tls: ${tlsYaml(pki.server, { minVersion: 'TLSv1.3' })} } ]` })
    const port = Number(new URL(s.server.httpUrls[1]!).port)
    expect((await sClient(port, ['-tls1_2'])).code).not.toBe(0)
    expect((await sClient(port, ['-tls1_3'])).code).toBe(0)
  })
})

describe('amqps', () => {
  it('amqplib publishes and consumes over amqps:// with the CA, beside a plain AMQP port', async () => {
    const s = await startTestServer({ amqp: `[ { port: 0 }, { port: 0, tls: ${tlsYaml(pki.server)} } ]` })
    const { plain, tls } = portsOf(s, 'amqp')
    expect(plain).toHaveLength(1)
    expect(tls).toHaveLength(1)
    const secure = await amqpConnect(`amqps://guest:guest@localhost:${tls[0]}`, { ca: [readFileSync(pki.ca)] })
    const ch = await secure.createConfirmChannel()
    await ch.assertQueue('tls-q', { durable: true })
    await ch.bindQueue('tls-q', 'logs', '#')
    for (let i = 0; i < 50; i++) ch.publish('logs', 'web.info', Buffer.from(JSON.stringify({ i })), { contentType: 'application/json' })
    await ch.waitForConfirms()
    const got = await collect(ch, 'tls-q', 50)
    expect(got.map((m) => (JSON.parse(m.content.toString()) as { i: number }).i)).toEqual(Array.from({ length: 50 }, (_, i) => i))

    // The plain port serves the same virtual host: it sees the queue declared over TLS.
    const plainConn = await amqpConnect(`amqp://guest:guest@127.0.0.1:${plain[0]}`)
    const plainCh = await plainConn.createChannel()
    expect(await plainCh.checkQueue('tls-q')).toMatchObject({ queue: 'tls-q' })
  })

  it('pika publishes with confirms and gets the messages back over TLS (ssl_options with the CA and a client certificate)', async () => {
    const python = requireProgram('/usr/bin/python3', 'python3')
    const s = await startTestServer({ amqp: `{ port: 0, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} }` })
    const script = `
import ssl, sys, pika
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
params = pika.ConnectionParameters(host='127.0.0.1', port=port, credentials=pika.PlainCredentials('guest', 'guest'),
                                   ssl_options=pika.SSLOptions(context, 'localhost'))
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
ch.queue_declare(queue='pika-tls', durable=True)
for n in range(20):
    ch.basic_publish(exchange='', routing_key='pika-tls', body=('{"n": %d}' % n).encode(),
                     properties=pika.BasicProperties(content_type='application/json'))
got = []
while len(got) < 20:
    method, props, body = ch.basic_get('pika-tls', auto_ack=True)
    if method is not None:
        got.append(body.decode())
print(conn._impl.params.ssl_options is not None, ' '.join(got))
conn.close()
`
    const ran = await runProgram(python, ['-c', script, String(portsOf(s, 'amqp').tls[0]), pki.ca, pki.client.cert, pki.client.key])
    expect(ran.code, ran.stderr).toBe(0)
    expect(ran.stdout.trim()).toBe(`True ${Array.from({ length: 20 }, (_, n) => `{"n": ${n}}`).join(' ')}`)
  })

  it('refuses an amqps client that does not trust the certificate', async () => {
    const s = await startTestServer({ amqp: `{ port: 0, tls: ${tlsYaml(pki.server)} }` })
    await expect(amqpConnect(`amqps://guest:guest@localhost:${portsOf(s, 'amqp').tls[0]}`)).rejects.toThrow(/self.signed|unable to (get|verify)/i)
  })
})

describe('stream doors over TLS', () => {
  it('NDJSON over TLS stores every line, in order', async () => {
    const s = await startTestServer({ ndjson: `[ { port: 0, exchange: logs }, { port: 0, exchange: logs, tls: ${tlsYaml(pki.server)} } ]` })
    const socket = await dial(portsOf(s, 'ndjson').tls[0]!)
    const n = 500
    socket.end(Array.from({ length: n }, (_, i) => `${JSON.stringify({ service: 'web', level: 'info', i })}\n`).join(''))
    await until(async () => (await streamCount(s.url, 'app-logs')) === n, 10_000, 'every line')
    const { events } = await readStream(s.url, 'app-logs')
    expect(events.map((e) => (e.body as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i))
  })

  // The listener names its user, so the certificate (CN=shipper, no such user) only lets the client in.
  it('syslog over TLS with octet counting (RFC 5425) stores every message, and opens no UDP beside the TLS port', async () => {
    const pipeline = `
exchanges:
  logs: { type: topic }
streams: { syslog: {} }
bindings:
  - { exchange: logs, stream: syslog, key: "syslog.#" }
`
    const s = await startTestServer({ pipeline, syslog: `[ { port: 0, exchange: logs, udp: false }, { port: 0, exchange: logs, user: guest, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} } ]` })
    expect(s.server.listeners.filter((l) => l.options.name === 'syslog-udp')).toHaveLength(0)
    const socket = await dial(portsOf(s, 'syslog').tls[0]!, pki.client)
    const n = 200
    const frames = Array.from({ length: n }, (_, i) => {
      const msg = `<165>1 2024-05-01T12:00:00.000Z host1 web 42 ID7 - message ${i} with a newline\ninside`
      return `${Buffer.byteLength(msg)} ${msg}`
    })
    socket.end(frames.join(''))
    await until(async () => (await streamCount(s.url, 'syslog')) === n, 10_000, 'every message')
    const { events } = await readStream(s.url, 'syslog')
    expect(events.map((e) => (e.body as { message: string }).message)).toEqual(Array.from({ length: n }, (_, i) => `message ${i} with a newline\ninside`))
    expect(events[0]!.body).toMatchObject({ host: 'host1', app: 'web', facility: 'local4', severity: 'notice' })
  })
  it("a client certificate chooses the user: its CN publishes, a CN without write and an unknown CN are refused and counted", async () => {
    const users = `
auth:
  anonymous: none
  users:
    - { username: admin, password: admin-pw, tags: [administrator, monitoring] }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
    - { username: reader, password: read-pw, permissions: { read: ".*" } }
`
    const admin = { authorization: `Basic ${Buffer.from('admin:admin-pw').toString('base64')}` }
    // No listener user: without a certificate, a client here would have no one to publish as.
    const s = await startTestServer({ server: users, ndjson: `{ port: 0, exchange: logs, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} }` })
    const port = portsOf(s, 'ndjson').tls[0]!
    const reader = await pki.issue('reader', '/O=Acme/CN=reader', 'client')
    const stranger = await pki.issue('stranger', '/O=Acme/CN=stranger', 'client')

    const shipper = await dial(port, pki.client)
    shipper.end(`${JSON.stringify({ service: 'web', level: 'info', from: 'shipper' })}\n`)
    for (const pair of [reader, stranger]) {
      const refused = await dial(port, pair)
      const closed = new Promise<void>((resolve) => refused.once('close', () => resolve()))
      refused.on('error', () => undefined)
      refused.write(`${JSON.stringify({ service: 'web', level: 'info', from: 'refused' })}\n`)
      await closed
    }
    await until(async () => ((await (await fetch(`${s.url}/v1/streams/app-logs`, { headers: admin })).json()) as { events: number }).events === 1, 10_000, 'the shipper event')
    const { events } = (await (await fetch(`${s.url}/v1/streams/app-logs/events?from=0`, { headers: admin })).json()) as { events: Array<{ body: unknown }> }
    expect(events.map((e) => e.body)).toEqual([{ service: 'web', level: 'info', from: 'shipper' }])
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: admin })).text()
    expect(metrics).toMatch(/^sluice_auth_denials_total\{door="ndjson",operation="publish"\} 1$/m)
    expect(metrics).toMatch(/^sluice_auth_failures_total\{door="ndjson",reason="unknown_user"\} 1$/m)
  })
})

describe('certificate reload', () => {
  it('a reload gives new connections the new certificate while an open one carries on, and a bad file keeps the one in use', async () => {
    const certDir = await tempDir()
    const live = { cert: join(certDir, 'live.pem'), key: join(certDir, 'live.key') }
    await copyFile(pki.server.cert, live.cert)
    await copyFile(pki.server.key, live.key)
    const s = await startTestServer({ amqp: `[ { port: 0, tls: ${tlsYaml(live)} } ]`, ndjson: `{ port: 0, exchange: logs, tls: ${tlsYaml(live)} }` })
    const amqpsPort = portsOf(s, 'amqp').tls[0]!
    const ndjsonPort = portsOf(s, 'ndjson').tls[0]!
    const fingerprint = (socket: TLSSocket): string => socket.getPeerX509Certificate()!.fingerprint256
    const first = fingerprint(await dial(ndjsonPort))

    // Open before the reload: an AMQP connection and an NDJSON connection.
    const conn = await amqpConnect(`amqps://guest:guest@localhost:${amqpsPort}`, { ca: [readFileSync(pki.ca)] })
    const ch = await conn.createConfirmChannel()
    await ch.assertQueue('reload-q')
    await ch.bindQueue('reload-q', 'logs', '#')
    const oldNdjson = await dial(ndjsonPort)
    oldNdjson.write('{"service":"web","level":"info","when":"before"}\n')

    const renewed = await pki.issue('renewed', '/O=Renewed/CN=localhost', 'server')
    await copyFile(renewed.cert, live.cert)
    await copyFile(renewed.key, live.key)
    const results = s.server.reloadTls()
    expect(results.map((r) => r.ok)).toEqual([true, true])
    expect(results[0]).toMatchObject({ ok: true, subject: expect.stringContaining('O=Renewed') })

    const after = await dial(ndjsonPort)
    const second = fingerprint(after)
    expect(second).not.toBe(first)
    expect(second).toBe(new (await import('node:crypto')).X509Certificate(readFileSync(renewed.cert)).fingerprint256)
    expect(fingerprint(await dial(amqpsPort))).toBe(second)

    // The connections opened before still work, on their old session.
    expect(fingerprint(oldNdjson)).toBe(first)
    oldNdjson.end('{"service":"web","level":"info","when":"after"}\n')
    ch.publish('logs', 'web.info', Buffer.from('{"via":"amqps"}'), { contentType: 'application/json' })
    await ch.waitForConfirms()
    await until(async () => (await streamCount(s.url, 'app-logs')) === 3, 10_000, 'three events')
    // The queue is bound to every event of `logs`, the NDJSON ones included.
    const got = await collect(ch, 'reload-q', 3)
    expect(got.map((m) => JSON.parse(m.content.toString()) as unknown)).toEqual(expect.arrayContaining([{ via: 'amqps' }, { service: 'web', level: 'info', when: 'after' }]))

    // A half-written certificate: nothing changes, and the result says which file and why.
    await writeFile(live.cert, '-----BEGIN CERTIFICATE-----\ntruncated')
    const bad = s.server.reloadTls()
    expect(bad.map((r) => r.ok)).toEqual([false, false])
    expect(bad[0]).toMatchObject({ ok: false, file: live.cert, problem: expect.stringContaining('is not a PEM certificate') })
    expect(fingerprint(await dial(ndjsonPort))).toBe(second)
    // And a key of another certificate: refused too.
    await copyFile(pki.server.cert, live.cert)
    expect(s.server.reloadTls()[0]).toMatchObject({ ok: false, problem: expect.stringContaining('is not the private key of the certificate') })
    expect(fingerprint(await dial(amqpsPort))).toBe(second)
  })
})
