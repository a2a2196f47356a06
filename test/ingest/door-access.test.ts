import { createSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { Authenticator, Authorizer } from '../../src/auth/index.js'
import { parseConfig, validateConfigText } from '../../src/config/index.js'
import { DoorAccess } from '../../src/ingest/door-access.js'
import { createLogger } from '../../src/logger.js'
import { sleep } from '../helpers/consume.js'
import { readStream, startTestServer, type TestServer } from '../helpers/server.js'
import { syslogPipeline, udpPort, waitCount } from '../helpers/syslog.js'

const ndjsonPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'ndjson')!.port

/** Connects from a chosen loopback address (Linux routes all of 127/8 to lo) and resolves once the socket is closed. */
function connectFrom(localAddress: string, port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => undefined) // a reset is one way a refusal looks
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, closed }))
    socket.once('error', reject)
  })
}

async function failures(url: string, door: string, reason: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text()
  const m = new RegExp(`^sluice_auth_failures_total\\{door="${door}",reason="${reason}"\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

async function eventsOf(url: string, stream: string, n: number, timeoutMs = 5000): Promise<unknown[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { events } = await readStream(url, stream)
    if (events.length >= n || Date.now() > deadline) return events.map((e) => e.body)
    await sleep(20)
  }
}

describe('stream doors: the allow list', () => {
  it('NDJSON refuses a connection from outside the list at accept, counts it, and takes one from inside', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs, allow: [127.0.0.1/32] }' })
    const port = ndjsonPort(s)
    const outside = await connectFrom('127.0.0.2', port)
    outside.socket.write(`${JSON.stringify({ service: 'evil', level: 'info' })}\n`)
    await outside.closed // closed by the server, not by us

    const inside = await connectFrom('127.0.0.1', port)
    inside.socket.end(`${JSON.stringify({ service: 'web', level: 'info', n: 1 })}\n`)
    await inside.closed
    expect(await eventsOf(s.url, 'app-logs', 1)).toEqual([{ service: 'web', level: 'info', n: 1 }])
    expect(await failures(s.url, 'ndjson', 'address')).toBe(1)
    const listener = s.server.listeners.find((l) => l.options.name === 'ndjson')!
    expect(listener.counters.connectionsTotal).toBe(1) // the refused one never counted as a connection
    expect(listener.counters.connectionsRefused).toBe(1)
  })

  it('a dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d, and they match the IPv4 entries', async () => {
    const s = await startTestServer({ ndjson: '{ host: "::", port: 0, exchange: logs, allow: [127.0.0.1/32] }' })
    const port = ndjsonPort(s)
    const outside = await connectFrom('127.0.0.2', port)
    await outside.closed
    const inside = await connectFrom('127.0.0.1', port)
    inside.socket.end(`${JSON.stringify({ service: 'web', level: 'info' })}\n`)
    await inside.closed
    expect(await eventsOf(s.url, 'app-logs', 1)).toHaveLength(1)
    expect(await failures(s.url, 'ndjson', 'address')).toBe(1)
  })

  it('by default takes loopback clients only: all of 127/8', async () => {
    const s = await startTestServer({ ndjson: '{ port: 0, exchange: logs }' })
    const c = await connectFrom('127.0.0.9', ndjsonPort(s))
    c.socket.end(`${JSON.stringify({ service: 'web', level: 'info' })}\n`)
    await c.closed
    expect(await eventsOf(s.url, 'app-logs', 1)).toHaveLength(1)
    expect(await failures(s.url, 'ndjson', 'address')).toBe(0)
  })

  it('syslog over UDP drops a datagram from outside the list and counts it', async () => {
    const s = await startTestServer({ pipeline: syslogPipeline, syslog: '{ port: 0, exchange: logs, allow: [127.0.0.1/32] }' })
    const send = async (from: string, text: string): Promise<void> => {
      const client = createSocket('udp4')
      await new Promise<void>((resolve) => client.bind(0, from, () => resolve()))
      await new Promise<void>((resolve, reject) => client.send(Buffer.from(text), udpPort(s), '127.0.0.1', (err) => (err ? reject(err) : resolve())))
      client.close()
    }
    await send('127.0.0.2', '<13>1 2024-05-01T12:00:00Z host app - - - from the wrong address')
    // The refusal is counted before anything else happens to the datagram.
    for (let i = 0; i < 100 && (await failures(s.url, 'syslog-udp', 'address')) === 0; i++) await sleep(20)
    await send('127.0.0.1', '<13>1 2024-05-01T12:00:01Z host app - - - from the right one')
    expect(await waitCount(s.url, 'syslog', 1)).toBe(1)
    await sleep(50)
    const bodies = (await eventsOf(s.url, 'syslog', 1)) as Array<{ message: string }>
    expect(bodies.map((b) => b.message)).toEqual(['from the right one'])
    expect(await failures(s.url, 'syslog-udp', 'address')).toBe(1)
  })
})

describe('stream doors: the user', () => {
  const users = `
auth:
  anonymous: none
  users:
    - { username: admin, password: admin-pw, tags: [administrator] }
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$" } }
`
  const admin = { authorization: `Basic ${Buffer.from('admin:admin-pw').toString('base64')}` }

  it('publishes as the listener user, under anonymous: none too', async () => {
    const s = await startTestServer({ server: users, ndjson: '{ port: 0, exchange: logs, user: shipper }' })
    const c = await connectFrom('127.0.0.1', ndjsonPort(s))
    c.socket.end(`${JSON.stringify({ service: 'web', level: 'info' })}\n`)
    await c.closed
    const deadline = Date.now() + 5000
    let count = 0
    while (count < 1 && Date.now() < deadline) {
      count = ((await (await fetch(`${s.url}/v1/streams/app-logs`, { headers: admin })).json()) as { events: number }).events
      if (count < 1) await sleep(20)
    }
    expect(count).toBe(1)
  })

  it('with no user and users of its own, refuses a client that is not on loopback as guest would be', () => {
    const config = parseConfig(`auth:\n  users:\n    - { username: guest, password: g, permissions: { write: "^logs$" } }\nexchanges: { logs: {} }\n`, { env: {} })
    const authenticator = new Authenticator(config.auth)
    const access = new DoorAccess({ door: 'ndjson', exchange: 'logs', user: null, allow: ['0.0.0.0/0'], authenticator, authorizer: new Authorizer(), logger: createLogger('silent') })
    expect(access.identity('127.0.0.1')?.username).toBe('guest')
    expect(access.identity('::ffff:127.0.0.1')?.username).toBe('guest')
    expect(access.identity('10.1.2.3')).toBeUndefined()
    expect([...authenticator.failureCounts()]).toEqual([{ door: 'ndjson', reason: 'no_credentials', count: 1 }])
  })
})

describe('stream doors: a loopbackOnly user', () => {
  it('acts only for loopback clients, whatever the allow list lets in', () => {
    const config = parseConfig('exchanges: { logs: {} }\n', { env: {} })
    const authenticator = new Authenticator(config.auth)
    const access = new DoorAccess({ door: 'syslog', exchange: 'logs', user: 'guest', userLoopbackOnly: true, allow: ['0.0.0.0/0'], authenticator, authorizer: new Authorizer(), logger: createLogger('silent') })
    expect(access.identity('127.0.0.1')?.username).toBe('guest')
    expect(access.identity('::ffff:127.0.0.3')?.username).toBe('guest')
    expect(access.identity('192.0.2.7')).toBeUndefined()
    expect([...authenticator.failureCounts()]).toEqual([{ door: 'syslog', reason: 'loopback_only', count: 1 }])
  })
})

describe('stream doors: addresses', () => {
  const access = (allow: string[]): DoorAccess =>
    new DoorAccess({ door: 'syslog', exchange: 'logs', user: null, allow, authenticator: new Authenticator(parseConfig('', { env: {} }).auth), authorizer: new Authorizer(), logger: createLogger('silent') })

  it('matches IPv4-mapped IPv6 addresses against the IPv4 entries', () => {
    const a = access(['127.0.0.1/32', '10.0.0.0/8'])
    expect(a.allowed('127.0.0.1')).toBe(true)
    expect(a.allowed('::ffff:127.0.0.1')).toBe(true)
    expect(a.allowed('::FFFF:10.20.30.40')).toBe(true)
    expect(a.allowed('::ffff:127.0.0.2')).toBe(false)
    expect(a.allowed('127.0.0.2')).toBe(false)
    expect(a.allowed('::1')).toBe(false)
    expect(a.allowed(undefined)).toBe(false)
  })

  it('the default list is 127/8 and ::1', () => {
    const a = access(['127.0.0.0/8', '::1/128'])
    for (const ok of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.5']) expect(a.allowed(ok)).toBe(true)
    for (const no of ['10.0.0.1', '::2', '::ffff:10.0.0.1', 'fe80::1', '0.0.0.0']) expect(a.allowed(no)).toBe(false)
  })

  it('0.0.0.0/0 and ::/0 let everyone in', () => {
    const a = access(['0.0.0.0/0', '::/0'])
    for (const ok of ['10.0.0.1', '::ffff:192.168.1.1', '2001:db8::1']) expect(a.allowed(ok)).toBe(true)
  })

  it('logs refusals a line at a time, counting the rest', () => {
    const lines: Array<Record<string, unknown>> = []
    let now = 0
    const logger = { ...createLogger('silent'), warn: (obj: Record<string, unknown>) => void lines.push(obj) } as unknown as ReturnType<typeof createLogger>
    const authenticator = new Authenticator(parseConfig('', { env: {} }).auth)
    const a = new DoorAccess({ door: 'syslog-udp', exchange: 'logs', user: null, allow: ['127.0.0.1'], authenticator, authorizer: new Authorizer(), logger, now: () => now })
    for (let i = 0; i < 1000; i++) expect(a.admit(`10.0.${i >> 8}.${i & 255}`)).toBe(false)
    now = 10_000
    expect(a.admit('10.9.9.9')).toBe(false)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ listener: 'syslog-udp', remote: '10.0.0.0', reason: 'address' })
    expect(lines[1]).toMatchObject({ remote: '10.9.9.9', alsoRefusedSinceLastLine: 999 })
    expect([...authenticator.failureCounts()]).toEqual([{ door: 'syslog-udp', reason: 'address', count: 1001 }])
  })
})

describe('stream doors: checked at start', () => {
  const problems = (text: string): string[] => {
    const r = validateConfigText(text, { env: {} })
    return r.ok ? [] : [...r.problems]
  }
  const base = `
exchanges: { logs: {}, audit: {} }
auth:
  anonymous: ANON
  users:
    - { username: admin, password: a, tags: [administrator] }
    - { username: shipper, password: s, permissions: { write: "^logs$" } }
    - { username: reader, password: r, permissions: { read: ".*" } }
`

  it('refuses a listener whose user may not write to its exchange', () => {
    const found = problems(`${base.replace('ANON', 'loopback')}server:\n  ndjson: { exchange: audit, user: shipper }\n  syslog: { exchange: logs, user: reader }\n`)
    expect(found).toEqual([
      expect.stringMatching(/^server\.ndjson\.user \(line \d+, col \d+\): user "shipper" may not write to exchange "audit"/),
      expect.stringMatching(/^server\.syslog\.user \(line \d+, col \d+\): user "reader" may not write to exchange "logs"/),
    ])
  })

  it('takes a user that may write, and an administrator', () => {
    expect(problems(`${base.replace('ANON', 'none')}server:\n  ndjson: { exchange: logs, user: shipper }\n  syslog: { exchange: audit, user: admin }\n`)).toEqual([])
  })

  it('refuses anonymous: none with a stream listener and no user', () => {
    const found = problems(`${base.replace('ANON', 'none')}server:\n  syslog: { exchange: logs }\n`)
    expect(found).toEqual([expect.stringMatching(/^server\.syslog\.user \(line \d+, col \d+\): the syslog protocol carries no credentials, and auth\.anonymous is none: name the `user`/)])
    // A listener that does not start needs no user.
    expect(problems(`${base.replace('ANON', 'none')}server:\n  syslog: { exchange: logs, enabled: false }\n  ndjson: {}\n`)).toEqual([])
  })

  it('refuses anonymous: none with an OTLP/gRPC listener and no user; OTLP/HTTP takes logins, so it needs none', () => {
    const grpc = problems(`${base.replace('ANON', 'none')}server:\n  otlp: { exchange: logs, grpc: { enabled: true } }\n`)
    expect(grpc).toEqual([expect.stringMatching(/^server\.otlp\.grpc\.user \(line \d+, col \d+\): the OTLP\/gRPC protocol carries no credentials, and auth\.anonymous is none: name the `user`/)])
    expect(problems(`${base.replace('ANON', 'none')}server:\n  otlp: { exchange: logs, grpc: { enabled: true, user: shipper }, http: { enabled: true } }\n`)).toEqual([])
    // A listener that does not start (off, or the door has no exchange) needs no user.
    expect(problems(`${base.replace('ANON', 'none')}server:\n  otlp: { grpc: { enabled: true } }\n`)).toEqual([])
    expect(problems(`${base.replace('ANON', 'none')}server:\n  otlp: { exchange: logs, enabled: false, grpc: { enabled: true } }\n`)).toEqual([])
    // Under clientAuth required each certificate names the user.
    const tls = '{ cert: /etc/sluice/server.pem, key: /etc/sluice/server.key, ca: /etc/sluice/ca.pem, clientAuth: required }'
    expect(problems(`${base.replace('ANON', 'none')}server:\n  otlp: { exchange: logs, grpc: { enabled: true, tls: ${tls} } }\n`).filter((p) => p.includes('.user'))).toEqual([])
  })

  it("refuses an OTLP listener user that is unknown or may not write to the door's exchange", () => {
    expect(problems(`${base.replace('ANON', 'loopback')}server:\n  otlp: { exchange: audit, grpc: { enabled: true, user: shipper }, http: { enabled: true, user: shiper } }\n`)).toEqual([
      expect.stringMatching(/^server\.otlp\.grpc\.user .*user "shipper" may not write to exchange "audit", so every event of this OTLP\/gRPC listener would be refused/),
      expect.stringMatching(/^server\.otlp\.http\.user .*no user named "shiper" in auth\.users; did you mean `shipper`\?$/),
    ])
  })

  it('under TLS clientAuth required, takes a listener with no user: each certificate names one', () => {
    const tls = '{ cert: /etc/sluice/server.pem, key: /etc/sluice/server.key, ca: /etc/sluice/ca.pem, clientAuth: CLIENT_AUTH }'
    const at = (clientAuth: string): string[] => problems(`${base.replace('ANON', 'none')}server:\n  ndjson: { exchange: logs, tls: ${tls.replace('CLIENT_AUTH', clientAuth)} }\n`).filter((p) => p.startsWith('server.ndjson.user'))
    expect(at('required')).toEqual([])
    // Under optional, a client without a certificate would still have nobody to publish as.
    expect(at('optional')).toEqual([expect.stringMatching(/the NDJSON protocol carries no credentials/)])
  })

  it('refuses an unknown user, and no user when loopback clients would be a guest that does not exist', () => {
    expect(problems(`${base.replace('ANON', 'loopback')}server:\n  ndjson: { exchange: logs, user: shiper }\n`)).toEqual([
      expect.stringMatching(/^server\.ndjson\.user .*no user named "shiper" in auth\.users; did you mean `shipper`\?$/),
    ])
    expect(problems(`${base.replace('ANON', 'loopback')}server:\n  ndjson: { exchange: logs }\n`)).toEqual([expect.stringMatching(/there is no user guest in auth\.users/)])
  })

  it('the default configuration needs no user: guest is an administrator', () => {
    expect(problems('exchanges: { logs: {} }\nserver:\n  ndjson: { exchange: logs }\n  syslog: { exchange: logs }\n')).toEqual([])
  })

  it('checks the allow list', () => {
    expect(problems('server:\n  ndjson: { allow: [] }\n')).toEqual([expect.stringMatching(/^server\.ndjson\.allow .*an empty list lets no client in/)])
    expect(problems('server:\n  syslog: { allow: [10.0.0.0/33] }\n')).toEqual([expect.stringMatching(/"10\.0\.0\.0\/33" is not an IP address or CIDR block/)])
    expect(problems('server:\n  syslog: { allow: 10.0.0.0/8 }\n')).toEqual([expect.stringMatching(/expected a list of IP addresses or CIDR blocks/)])
    expect(parseConfig('server:\n  syslog: { allow: [10.0.0.0/8, "::ffff:0:0/96", 192.168.1.7] }\n', { env: {} }).server.syslog.allow).toEqual(['10.0.0.0/8', '::ffff:0:0/96', '192.168.1.7'])
  })

  it('checks that a rate limit names a user that exists', () => {
    expect(problems('rateLimits:\n  - { match: { user: nobody }, events: 10/s }\n')).toEqual([expect.stringMatching(/^rateLimits\[0\]\.match\.user .*no user named "nobody" \(with auth\.users left out, the only user is guest\)/)])
  })
})
