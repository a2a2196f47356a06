import { describe, expect, it } from 'vitest'
import { parseConfig, validateConfigText } from '../../src/config/index.js'
import { hashApiKey, hashPassword } from '../../src/auth/index.js'

const problemsOf = (text: string): readonly string[] => {
  const result = validateConfigText(text, { env: {} })
  return result.ok ? [] : result.problems
}

describe('auth defaults', () => {
  it('no auth section: one guest user, loopback only, administrator, and anonymous loopback', () => {
    const { auth } = parseConfig('', { env: {} })
    expect(auth.anonymous).toBe('loopback')
    expect(auth.users).toEqual([{ username: 'guest', password: 'guest', passwordHash: null, tags: ['administrator'], permissions: { configure: '.*', write: '.*', read: '.*' }, loopbackOnly: true }])
    expect(auth.apiKeys).toEqual([])
  })

  it('declared users replace guest; an empty list means no users at all', () => {
    expect(parseConfig('auth:\n  users:\n    - { username: app, password: x }\n', { env: {} }).auth.users.map((u) => u.username)).toEqual(['app'])
    expect(parseConfig('auth:\n  users: []\n', { env: {} }).auth.users).toEqual([])
    // Only API keys declared: the users are still the default guest, whom a key may act as.
    expect(parseConfig('auth:\n  apiKeys:\n    - { name: k, key: abc, user: guest }\n', { env: {} }).auth.users.map((u) => u.username)).toEqual(['guest'])
  })

  it("reads the design's example: tags, permissions, hashes, keys and a password from the environment", async () => {
    const hash = await hashPassword('s3cret', { N: 1024, r: 8, p: 1 })
    const text = `auth:
  anonymous: none
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: shipper, passwordHash: "${hash}", permissions: { write: "^logs$" } }
    - { username: indexer, password: "\${INDEXER_PASSWORD}", permissions: { read: "^(app-logs|indexer)$" } }
    - { username: ops, passwordHash: "${hash}", tags: [monitoring, monitoring] }
  apiKeys:
    - { name: fleet, keyHash: "${hashApiKey('k-123')}", user: shipper }
`
    const { auth } = parseConfig(text, { env: { INDEXER_PASSWORD: 'pw' } })
    expect(auth.anonymous).toBe('none')
    expect(auth.users.map((u) => [u.username, u.tags, u.permissions, u.loopbackOnly])).toEqual([
      ['guest', ['administrator'], { configure: null, write: null, read: null }, true],
      ['shipper', [], { configure: null, write: '^logs$', read: null }, false],
      ['indexer', [], { configure: null, write: null, read: '^(app-logs|indexer)$' }, false],
      ['ops', ['monitoring'], { configure: null, write: null, read: null }, false],
    ])
    expect(auth.users[2]?.password).toBe('pw')
    expect(auth.users[1]?.passwordHash).toBe(hash)
    expect(auth.apiKeys).toEqual([{ name: 'fleet', key: null, keyHash: hashApiKey('k-123'), user: 'shipper' }])
  })
})

describe('auth problems', () => {
  it('names each mistake by path and line, and never quotes a secret or a hash', () => {
    const text = `auth:
  anonymous: some
  users:
    - { username: a, password: x, passwordHash: "scrypt$1024$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA" }
    - { username: b }
    - { username: c, passwordHash: "scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA" }
    - { username: d, passwordHash: "bcrypt-leaked-secret" }
    - { username: e, password: y, permissions: { write: "^(logs$", read: "[" }, tags: [admin] }
  apiKeys:
    - { name: k1, key: topsecret, user: shiper }
    - { name: k2, key: k, keyHash: "sha256:00" }
    - { name: k3, user: a }
    - { name: k4, keyHash: "${hashApiKey('topsecret')}", user: a }
`
    const problems = problemsOf(text)
    expect(problems).toEqual([
      'auth.anonymous (line 2, col 14): "some" is not one of loopback, none',
      'auth.users[0] (line 4, col 7): set `password` or `passwordHash`, not both',
      'auth.users[1] (line 5, col 7): needs a `password` (use ${ENV}) or a `passwordHash` (from `sluice passwd`)',
      'auth.users[2].passwordHash (line 6, col 36): scrypt N must be a power of two from 2 to 1048576',
      'auth.users[3].passwordHash (line 7, col 36): is not a passwordHash; expected scrypt$N$r$p$salt$hash as `sluice passwd` prints it',
      'auth.users[4].permissions.write (line 8, col 57): "^(logs$" is not a regular expression: Invalid regular expression: /^(logs$/: Unterminated group',
      'auth.users[4].permissions.read (line 8, col 74): "[" is not a regular expression: Invalid regular expression: /[/: Unterminated character class',
      'auth.users[4].tags (line 8, col 87): "admin" is not one of administrator, monitoring',
      'auth.apiKeys[0].user (line 10, col 41): no user named "shiper" in auth.users',
      'auth.apiKeys[1].user (line 11, col 7): is required but missing',
      'auth.apiKeys[1] (line 11, col 7): set `key` or `keyHash`, not both',
      'auth.apiKeys[2] (line 12, col 7): needs a `key` (use ${ENV}) or a `keyHash` (from `sluice passwd --api-key`)',
      'auth.apiKeys[3].keyHash (line 13, col 28): this API key is declared twice',
    ])
    for (const secret of ['topsecret', 'leaked', 'c2FsdHNhbHQ']) expect(problems.join('\n')).not.toContain(secret)
  })

  it('suggests the user an API key probably meant', () => {
    const text = 'auth:\n  users:\n    - { username: shipper, password: x }\n  apiKeys:\n    - { name: k, key: abc, user: shiper }\n'
    expect(problemsOf(text)).toEqual(['auth.apiKeys[0].user (line 5, col 34): no user named "shiper" in auth.users; did you mean `shipper`?'])
  })

  it('a key acting as guest is fine with the default users, and named when users replace guest', () => {
    expect(problemsOf('auth:\n  apiKeys:\n    - { name: k, key: abc, user: guest }\n')).toEqual([])
    expect(problemsOf('auth:\n  users: []\n  apiKeys:\n    - { name: k, key: abc, user: guest }\n')).toEqual(['auth.apiKeys[0].user (line 4, col 34): no user named "guest" in auth.users'])
  })
})
