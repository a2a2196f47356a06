import { describe, expect, it } from 'vitest'
import { Authenticator, Authorizer, type Identity } from '../../src/auth/index.js'
import { isLoopback, throttleKey } from '../../src/auth/address.js'
import { compilePattern, hashPassword, parsePasswordHash, verifyPassword } from '../../src/auth/secrets.js'
import { parseConfig } from '../../src/config/index.js'

const config = parseConfig(
  `auth:
  users:
    - { username: root, password: x, tags: [administrator] }
    - { username: shipper, password: x, permissions: { write: "^logs$" } }
    - { username: indexer, password: x, permissions: { read: "app-logs|indexer" } }
    - { username: binder, password: x, permissions: { read: "^logs$", write: "^(errors|audit)$", configure: "^tmp-.*" } }
    - { username: ops, password: x, tags: [monitoring] }
    - { username: nobody, password: x }
`,
  { env: {} },
)
const authenticator = new Authenticator(config.auth)
const who = (name: string): Identity => authenticator.identityFor(name, 'listener')!
const authorizer = new Authorizer()
const ex = (name: string) => ({ kind: 'exchange', name }) as const
const st = (name: string) => ({ kind: 'stream', name }) as const
const gr = (name: string) => ({ kind: 'group', name }) as const

describe('Authorizer', () => {
  it('matches permission patterns against the whole name', () => {
    expect(authorizer.can(who('shipper'), 'write', ex('logs'))).toBe(true)
    expect(authorizer.can(who('shipper'), 'write', ex('logs2'))).toBe(false)
    // Anchored even without ^ and $: "app-logs|indexer" is either name whole, not a substring.
    expect(authorizer.can(who('indexer'), 'read', st('app-logs'))).toBe(true)
    expect(authorizer.can(who('indexer'), 'read', gr('indexer'))).toBe(true)
    expect(authorizer.can(who('indexer'), 'read', st('old-app-logs'))).toBe(false)
    // A missing pattern matches nothing.
    expect(authorizer.can(who('shipper'), 'read', st('logs'))).toBe(false)
    expect(authorizer.can(who('nobody'), 'configure', gr(''))).toBe(false)
    expect(authorizer.can(who('root'), 'configure', gr('anything'))).toBe(true)
  })

  it('answers each operation from the one table, naming what was missing', () => {
    expect(authorizer.authorize(who('shipper'), 'publish', { exchange: ex('logs') })).toBeUndefined()
    expect(authorizer.authorize(who('shipper'), 'consume', { group: gr('indexer') })).toMatchObject({ permission: 'read', resource: gr('indexer') })
    expect(authorizer.authorize(who('indexer'), 'consume', { group: gr('indexer') })).toBeUndefined()
    expect(authorizer.authorize(who('indexer'), 'group.reset', { group: gr('indexer') })).toMatchObject({ permission: 'configure' })
    // A binding reads its source and writes its destination, as in RabbitMQ.
    expect(authorizer.authorize(who('binder'), 'bind', { source: ex('logs'), destination: st('errors') })).toBeUndefined()
    expect(authorizer.authorize(who('binder'), 'bind', { source: ex('audit'), destination: st('errors') })).toMatchObject({ permission: 'read', resource: ex('audit') })
    expect(authorizer.authorize(who('binder'), 'bind', { source: ex('logs'), destination: ex('other') })).toMatchObject({ permission: 'write', resource: ex('other') })
    expect(authorizer.authorize(who('binder'), 'queue.declare', { queue: st('tmp-1') })).toBeUndefined()
    expect(authorizer.authorize(who('binder'), 'queue.purge', { queue: st('tmp-1') })).toMatchObject({ permission: 'read' })
  })

  it('gates listings and /metrics on tag monitoring, which also sees any stream or group', () => {
    expect(authorizer.authorize(who('ops'), 'metrics', {})).toBeUndefined()
    expect(authorizer.authorize(who('ops'), 'stream.view', { stream: st('x') })).toBeUndefined()
    expect(authorizer.authorize(who('ops'), 'stream.read', { stream: st('x') })).toMatchObject({ permission: 'read' })
    expect(authorizer.authorize(who('shipper'), 'streams.list', {})).toMatchObject({ permission: 'monitoring', resource: { kind: 'broker', name: 'streams' } })
    expect(authorizer.authorize(who('ops'), 'users.manage', {})).toMatchObject({ permission: 'administrator', resource: { kind: 'broker', name: 'users' } })
    expect(authorizer.authorize(who('root'), 'users.manage', {})).toBeUndefined()
  })

  it('counts the refusals doors report, by door and operation, and nothing it was merely asked', () => {
    const authorizer = new Authorizer()
    const denied = authorizer.authorize(who('shipper'), 'consume', { group: { kind: 'group', name: 'indexer' } })
    expect(denied).toBeDefined()
    expect([...authorizer.denialCounts()]).toEqual([])
    authorizer.refused('amqp', denied!)
    authorizer.refused('amqp', denied!)
    authorizer.refused('http', denied!)
    expect([...authorizer.denialCounts()]).toEqual([
      { door: 'amqp', operation: 'consume', count: 2 },
      { door: 'http', operation: 'consume', count: 1 },
    ])
  })
})

describe('secrets and addresses', () => {
  it('hashes a password with scrypt in the documented format and verifies it', async () => {
    const hash = await hashPassword('pw', { N: 1024, r: 8, p: 1 })
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    const parsed = parsePasswordHash(hash)
    if ('problem' in parsed) throw new Error(parsed.problem)
    expect(await verifyPassword('pw', parsed)).toBe(true)
    expect(await verifyPassword('pw ', parsed)).toBe(false)
    expect(parsePasswordHash('scrypt$1048576$64$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA')).toHaveProperty('problem')
  })

  it('anchors patterns so that a ")" cannot escape them', () => {
    expect(() => compilePattern('a)|(.*')).toThrow(SyntaxError)
    expect(compilePattern('a|b').test('ab')).toBe(false)
    expect(compilePattern('').test('x')).toBe(false)
  })

  it('knows loopback addresses, and keys IPv6 by its /64', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1'].map(isLoopback)).toEqual([true, true, true, true, true])
    expect(['192.0.2.7', '::', '::2', 'fd00::2', '::ffff:10.0.0.1', '', 'localhost'].map(isLoopback)).toEqual([false, false, false, false, false, false, false])
    expect(throttleKey('2001:db8:1:2::1')).toBe(throttleKey('2001:db8:1:2:ffff:1:2:3'))
    expect(throttleKey('::ffff:10.0.0.1')).toBe('10.0.0.1')
  })
})
