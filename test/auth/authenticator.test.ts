import { describe, expect, it } from 'vitest'
import { Authenticator, hashApiKey, hashPassword, type LoginResult } from '../../src/auth/index.js'
import { failureMemoryMs } from '../../src/auth/throttle.js'
import { parseConfig } from '../../src/config/index.js'

const cheap = { N: 1024, r: 8, p: 1 }

/** An authenticator over a config, with a clock the test moves and sleeps that only record. */
async function setup(authYaml: string, opts: { hold?: boolean } = {}) {
  const config = parseConfig(authYaml, { env: {} })
  let now = 1_000_000
  const sleeps: number[] = []
  const held: Array<() => void> = []
  const auth = new Authenticator(config.auth, {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
      if (opts.hold === true) await new Promise<void>((resolve) => held.push(resolve))
      now += ms
    },
  })
  return { auth, sleeps, held, advance: (ms: number) => (now += ms) }
}

const users = async () => `
auth:
  users:
    - { username: app, password: s3cret, permissions: { write: "^logs$" } }
    - { username: hashed, passwordHash: "${await hashPassword('h4sh', cheap)}" }
    - { username: local, password: l0cal, loopbackOnly: true, tags: [monitoring] }
  apiKeys:
    - { name: fleet, key: key-one-0123456789, user: app }
    - { name: ci, keyHash: "${hashApiKey('key-two-0123456789')}", user: local }
`

const from = (remote: string) => ({ door: 'test', remote })
const reason = (r: LoginResult): string => (r.ok ? `ok:${r.identity.username}:${r.identity.method}` : r.reason)

describe('Authenticator: credentials', () => {
  it('checks plain passwords, scrypt hashes and API keys (plain and hashed)', async () => {
    const { auth } = await setup(await users())
    const results = [
      await auth.authenticatePassword('app', 's3cret', from('10.0.0.1')),
      await auth.authenticatePassword('hashed', 'h4sh', from('10.0.0.2')),
      await auth.authenticatePassword('hashed', 'h4sh', from('10.0.0.2')),
      await auth.authenticateApiKey('key-one-0123456789', from('10.0.0.3')),
      await auth.authenticateApiKey('key-two-0123456789', from('127.0.0.1')),
    ]
    expect(results.map(reason)).toEqual(['ok:app:password', 'ok:hashed:password', 'ok:hashed:password', 'ok:app:apiKey', 'ok:local:apiKey'])
    expect(results[3]?.ok === true && results[3].identity.apiKey).toBe('fleet')
  })

  it('refuses with a reason only the metrics and the log see, and counts by door and reason', async () => {
    const { auth } = await setup(await users())
    const results = [
      await auth.authenticatePassword('app', 'wrong', from('10.0.1.1')),
      await auth.authenticatePassword('nobody', 's3cret', from('10.0.1.2')),
      await auth.authenticatePassword('hashed', 'h4sh!', from('10.0.1.3')),
      await auth.authenticateApiKey('key-three', from('10.0.1.4')),
      // loopbackOnly holds for a key acting as the user too.
      await auth.authenticateApiKey('key-two-0123456789', from('192.0.2.7')),
      await auth.authenticatePassword('local', 'l0cal', from('192.0.2.7')),
      await auth.authenticatePassword('local', 'l0cal', from('::ffff:127.0.0.1')),
    ]
    expect(results.map(reason)).toEqual(['bad_password', 'unknown_user', 'bad_password', 'bad_api_key', 'loopback_only', 'loopback_only', 'ok:local:password'])
    expect(new Map([...auth.failureCounts()].map((f) => [`${f.door}/${f.reason}`, f.count]))).toEqual(
      new Map([
        ['test/bad_password', 2],
        ['test/unknown_user', 1],
        ['test/bad_api_key', 1],
        ['test/loopback_only', 2],
      ]),
    )
  })

  it('a verified certificate logs in as the user its CN names, if that user exists and may log in from there', async () => {
    const { auth, sleeps } = await setup(await users())
    const results = [
      auth.authenticateCertificate('app', from('10.0.2.1')),
      auth.authenticateCertificate('local', from('127.0.0.1')),
      auth.authenticateCertificate('nobody', from('10.0.2.2')),
      auth.authenticateCertificate('local', from('10.0.2.3')),
      auth.authenticateCertificate(undefined, from('10.0.2.4')),
    ]
    expect(results.map(reason)).toEqual(['ok:app:certificate', 'ok:local:certificate', 'unknown_user', 'loopback_only', 'malformed'])
    expect(results[0]?.ok === true && results[0].identity.patterns.write?.test('logs')).toBe(true)
    // Nothing to guess behind a verified certificate: no slowdown after its failures.
    expect(sleeps).toEqual([])
    expect(new Map([...auth.failureCounts()].map((f) => [`${f.door}/${f.reason}`, f.count]))).toEqual(
      new Map([
        ['test/unknown_user', 1],
        ['test/loopback_only', 1],
        ['test/malformed', 1],
      ]),
    )
  })

  it('lets anonymous loopback clients in as guest only under anonymous: loopback, and only if guest exists', async () => {
    const byDefault = (await setup('')).auth
    expect(byDefault.anonymous(from('127.0.0.1'))?.username).toBe('guest')
    expect(byDefault.anonymous(from('::1'))?.method).toBe('anonymous')
    expect(byDefault.anonymous(from('::ffff:127.0.0.1'))?.tags.has('administrator')).toBe(true)
    // A listener bound beyond loopback never lets an anonymous remote client in.
    expect(byDefault.anonymous(from('192.0.2.7'))).toBeUndefined()
    expect(byDefault.anonymous(from('fd00::2'))).toBeUndefined()
    expect((await setup('auth:\n  anonymous: none\n')).auth.anonymous(from('127.0.0.1'))).toBeUndefined()
    expect((await setup('auth:\n  users:\n    - { username: app, password: x }\n')).auth.anonymous(from('127.0.0.1'))).toBeUndefined()
    // guest/guest logs in from loopback, not from elsewhere, as RabbitMQ's guest.
    expect(reason(await byDefault.authenticatePassword('guest', 'guest', from('127.0.0.1')))).toBe('ok:guest:password')
    expect(reason(await byDefault.authenticatePassword('guest', 'guest', from('192.0.2.7')))).toBe('loopback_only')
  })

  it('gives a configured user to listener and certificate doors, without a credential check', async () => {
    const { auth } = await setup(await users())
    expect(auth.identityFor('app', 'listener')).toMatchObject({ username: 'app', method: 'listener' })
    expect(auth.identityFor('nobody', 'certificate')).toBeUndefined()
  })
})

describe('Authenticator: slowdown of failed logins, per address', () => {
  it('waits 100 ms after a failure, doubling per failure up to maxFailureDelay; other addresses are not slowed', async () => {
    const { auth, sleeps } = await setup(`${await users()}  maxFailureDelay: 500ms\n`)
    for (let i = 0; i < 5; i++) await auth.authenticatePassword('app', `guess-${i}`, from('10.0.0.9'))
    expect(sleeps).toEqual([100, 200, 400, 500])
    // A right password from that address waits its turn too: a fast success would tell a guesser
    // who gave up waiting that the slow ones were wrong.
    expect(reason(await auth.authenticatePassword('app', 's3cret', from('10.0.0.9')))).toBe('ok:app:password')
    expect(sleeps).toEqual([100, 200, 400, 500, 500])
    await auth.authenticatePassword('app', 's3cret', from('10.0.0.10'))
    expect(sleeps).toHaveLength(5)
  })

  it('lets credentials already verified from an address skip the wait (a good agent beside a broken one)', async () => {
    const { auth, sleeps } = await setup(await users())
    expect(reason(await auth.authenticateApiKey('key-one-0123456789', from('10.0.2.1')))).toBe('ok:app:apiKey')
    for (let i = 0; i < 3; i++) await auth.authenticateApiKey(`stale-key-${i}`, from('10.0.2.1'))
    expect(sleeps).toEqual([100, 200])
    expect(reason(await auth.authenticateApiKey('key-one-0123456789', from('10.0.2.1')))).toBe('ok:app:apiKey')
    expect(sleeps).toEqual([100, 200])
  })

  it('counts an IPv6 /64 as one address', async () => {
    const { auth, sleeps } = await setup(await users())
    await auth.authenticatePassword('app', 'x', from('2001:db8:1:2::1'))
    await auth.authenticatePassword('app', 'y', from('2001:db8:1:2:ffff::9'))
    await auth.authenticatePassword('app', 'z', from('2001:db8:1:3::1'))
    expect(sleeps).toEqual([100])
  })

  it('forgets an address that has not failed for a while', async () => {
    const { auth, sleeps, advance } = await setup(await users())
    await auth.authenticatePassword('app', 'x', from('10.0.3.1'))
    await auth.authenticatePassword('app', 'y', from('10.0.3.1'))
    advance(failureMemoryMs + 1)
    await auth.authenticatePassword('app', 'z', from('10.0.3.1'))
    expect(sleeps).toEqual([100])
  })

  it('refuses logins past maxPendingLoginsPerAddress at once, without checking them', async () => {
    const { auth, held } = await setup(`${await users()}  maxPendingLoginsPerAddress: 2\n`, { hold: true })
    await auth.authenticatePassword('app', 'x', from('10.0.4.1'))
    // Two wait their turn (the first behind the delay, the second behind the first); the third is refused.
    const waiting = [auth.authenticatePassword('app', 's3cret', from('10.0.4.1')), auth.authenticatePassword('app', 's3cret', from('10.0.4.1'))]
    const third = await auth.authenticatePassword('app', 's3cret', from('10.0.4.1'))
    expect(third).toEqual({ ok: false, reason: 'throttled', retryAfterMs: 1000 })
    await new Promise((r) => setTimeout(r, 10))
    for (const release of held.splice(0)) release()
    await new Promise((r) => setTimeout(r, 10))
    for (const release of held.splice(0)) release()
    expect((await Promise.all(waiting)).map(reason)).toEqual(['ok:app:password', 'ok:app:password'])
    expect([...auth.failureCounts()].find((f) => f.reason === 'throttled')?.count).toBe(1)
  })

  it('remembers at most maxTrackedAddresses addresses', async () => {
    const { auth } = await setup(`${await users()}  maxTrackedAddresses: 3\n`)
    for (let i = 0; i < 10; i++) await auth.authenticatePassword('app', 'x', from(`10.0.5.${i}`))
    expect(auth.trackedAddresses).toBe(3)
  })
})
