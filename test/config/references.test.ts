import { describe, expect, it } from 'vitest'
import { parseConfig, validateConfigText } from '../../src/config/index.js'

const problemsOf = (text: string): readonly string[] => {
  const result = validateConfigText(text, { env: {} })
  return result.ok ? [] : result.problems
}

// A valid base that each case extends; its line count is fixed so positions stay readable.
const base = `exchanges:
  logs: { type: topic }
  by-attr: { type: headers }
streams:
  app-logs: {}
  errors: {}
`

describe('bindings', () => {
  it('must name an existing exchange and stream', () => {
    const text = `${base}bindings:
  - { exchange: log, stream: app-logs, key: "#" }
  - { exchange: logs, stream: erors, key: "*.error" }
  - { exchange: logs, toExchange: audit }
`
    expect(problemsOf(text)).toEqual([
      'bindings[0].exchange (line 8, col 17): no exchange named "log"; did you mean `logs`?',
      'bindings[1].stream (line 9, col 31): no stream named "erors"; did you mean `errors`?',
      'bindings[2].toExchange (line 10, col 35): no exchange named "audit"',
    ])
  })

  it('need exactly one of stream and toExchange', () => {
    const text = `${base}bindings:
  - { exchange: logs, stream: app-logs, toExchange: by-attr }
  - { exchange: logs, key: "#" }
  - { stream: errors }
`
    expect(problemsOf(text)).toEqual([
      'bindings[0] (line 8, col 5): a binding has either `stream` or `toExchange`, not both',
      'bindings[1] (line 9, col 5): a binding needs a destination: `stream` or `toExchange`',
      'bindings[2].exchange (line 10, col 5): is required but missing',
    ])
  })

  // The search starts from the alphabetically first exchange, so the cycle is reported at the
  // binding that closes it from there (audit → archive), the same on every run.
  it('reject an exchange-to-exchange cycle, naming its path', () => {
    const text = `exchanges:
  logs: { type: topic }
  audit: { type: topic }
  archive: { type: fanout }
bindings:
  - { exchange: logs, toExchange: audit, key: "audit.#" }
  - { exchange: audit, toExchange: archive, key: "#" }
  - { exchange: archive, toExchange: logs }
`
    expect(problemsOf(text)).toEqual([
      'bindings[1] (line 7, col 5): exchange-to-exchange bindings form a cycle: archive → logs → audit → archive; an event would be routed forever',
    ])
  })

  it('reject an exchange bound to itself', () => {
    expect(problemsOf('exchanges:\n  a: { type: fanout }\nbindings:\n  - { exchange: a, toExchange: a }\n')).toEqual([
      'bindings[0] (line 4, col 5): exchange-to-exchange bindings form a cycle: a → a; an event would be routed forever',
    ])
  })

  it('allow exchange-to-exchange routes that fan in without looping', () => {
    const config = parseConfig(
      `exchanges:
  a: { type: fanout }
  b: { type: fanout }
  c: { type: fanout }
streams:
  s: {}
bindings:
  - { exchange: a, toExchange: b }
  - { exchange: a, toExchange: c }
  - { exchange: b, toExchange: c }
  - { exchange: c, stream: s }
`,
      { env: {} },
    )
    expect(config.bindings.map((b) => `${b.exchange}->${b.destination.kind}:${b.destination.name}`)).toEqual([
      'a->exchange:b',
      'a->exchange:c',
      'b->exchange:c',
      'c->stream:s',
    ])
  })

  it('check topic keys and headers against the exchange type', () => {
    const text = `${base}bindings:
  - { exchange: logs, stream: errors, key: "app.err*" }
  - { exchange: logs, stream: errors, key: "*.error", headers: { level: error } }
  - { exchange: by-attr, stream: errors, match: any, headers: { level: error, code: 500 } }
`
    expect(problemsOf(text)).toEqual([
      'bindings[0].key (line 8, col 44): topic binding key "app.err*": "*" and "#" must be whole words between dots, not "err*"',
      'bindings[1].headers (line 9, col 64): exchange "logs" is topic, so these headers would be ignored; only headers exchanges match on headers',
    ])
  })
})

describe('exchanges', () => {
  it('must name an existing alternate exchange', () => {
    expect(problemsOf('exchanges:\n  logs: { type: topic, alternate: unroutd }\n  unrouted: { type: fanout }\n')).toEqual([
      'exchanges.logs.alternate (line 2, col 35): no exchange named "unroutd"; did you mean `unrouted`?',
    ])
  })

  it('must not chain alternates in a loop', () => {
    expect(problemsOf('exchanges:\n  a: { alternate: b }\n  b: { alternate: a }\n')).toEqual([
      'exchanges.b.alternate (line 3, col 19): alternate exchanges form a cycle: a → b → a; an unroutable event would never settle',
    ])
  })
})

describe('groups', () => {
  it('must read an existing stream', () => {
    expect(problemsOf(`${base}groups:\n  indexer: { stream: app-log }\n`)).toEqual([
      'groups.indexer.stream (line 8, col 22): no stream named "app-log"; did you mean `app-logs`?',
    ])
  })

  it('need a dead-letter target that exists', () => {
    const text = `${base}groups:
  a: { stream: app-logs, deadLetter: { stream: app-logs-dlq } }
  b: { stream: app-logs, deadLetter: { exchange: dlx, routingKey: dead } }
`
    expect(problemsOf(text)).toEqual([
      'groups.a.deadLetter.stream (line 8, col 48): no stream named "app-logs-dlq"',
      'groups.b.deadLetter.exchange (line 9, col 50): no exchange named "dlx"',
    ])
  })

  it('need exactly one dead-letter target, and a routing key only with an exchange', () => {
    const text = `${base}groups:
  a: { stream: app-logs, deadLetter: { stream: errors, exchange: logs } }
  b: { stream: app-logs, deadLetter: {} }
  c: { stream: app-logs, deadLetter: { stream: errors, routingKey: x } }
  d: { stream: app-logs, deadLetter: { stream: app-logs } }
`
    expect(problemsOf(text)).toEqual([
      'groups.a.deadLetter (line 8, col 38): set `stream` or `exchange` (with `routingKey`), not both',
      'groups.b.deadLetter (line 9, col 38): set a dead-letter target: `{ stream }` or `{ exchange, routingKey }`',
      'groups.c.deadLetter.routingKey (line 10, col 68): applies only to a dead-letter `exchange`; a stream takes events as they are',
      "groups.d.deadLetter.stream (line 11, col 48): is the group's own stream; dead-lettered events would come straight back to the group",
    ])
  })

  it('need a retry backoff that grows', () => {
    expect(problemsOf(`${base}groups:\n  g: { stream: errors, retryBackoff: { initial: 10s, max: 1s } }\n`)).toEqual([
      'groups.g.retryBackoff.max (line 8, col 59): is below retryBackoff.initial',
    ])
  })
})

describe('rate limits', () => {
  it('must match an existing exchange and API key, and limit something', () => {
    const text = `${base}auth:
  apiKeys:
    - { key: s3cret, name: shipper, user: guest }
rateLimits:
  - { match: { apiKey: shiper, exchange: log }, events: 100/s }
  - { match: { listener: http } }
`
    expect(problemsOf(text)).toEqual([
      'rateLimits[0].match.apiKey (line 11, col 24): no API key named "shiper" in auth.apiKeys; did you mean `shipper`?',
      'rateLimits[0].match.exchange (line 11, col 42): no exchange named "log"; did you mean `logs`?',
      'rateLimits[1] (line 12, col 5): a rate limit needs `events`, `bytes` or both',
    ])
  })
})

describe('auth', () => {
  it('rejects duplicate users, API keys and API key names without echoing secrets', () => {
    const text = `auth:
  users:
    - { username: admin, password: a }
    - { username: admin, password: b }
  apiKeys:
    - { key: k1, name: shipper, user: admin }
    - { key: k1, name: shipper, user: admin }
`
    expect(problemsOf(text)).toEqual([
      'auth.users[1].username (line 4, col 19): user "admin" is declared twice',
      'auth.apiKeys[1].key (line 7, col 14): this API key is declared twice',
      'auth.apiKeys[1].name (line 7, col 24): API key name "shipper" is already used',
    ])
  })
})
