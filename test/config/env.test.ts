import { describe, expect, it } from 'vitest'
import { parseConfig, validateConfigText } from '../../src/config/index.js'

const problemsOf = (text: string, env: Record<string, string | undefined>): readonly string[] => {
  const result = validateConfigText(text, { env })
  return result.ok ? [] : result.problems
}

describe('environment substitution', () => {
  it('replaces a set variable, inside a longer value too', () => {
    const config = parseConfig('server:\n  dataDir: ${BASE}/sluice\n', { env: { BASE: '/var/lib' } })
    expect(config.server.dataDir).toBe('/var/lib/sluice')
  })

  it('uses the default when the variable is unset or empty, and the value when set', () => {
    const text = 'server:\n  dataDir: ${SLUICE_DATA_DIR:-./data}\n'
    expect(parseConfig(text, { env: {} }).server.dataDir).toBe('./data')
    expect(parseConfig(text, { env: { SLUICE_DATA_DIR: '' } }).server.dataDir).toBe('./data')
    expect(parseConfig(text, { env: { SLUICE_DATA_DIR: '/srv/sluice' } }).server.dataDir).toBe('/srv/sluice')
  })

  it('names the unset variable and its line', () => {
    const text = 'server:\n  http:\n    host: 127.0.0.1\n    port: ${HTTP_PORT}\n'
    expect(problemsOf(text, {})).toEqual([
      'server.http.port (line 4, col 11): environment variable HTTP_PORT is not set and has no default (write ${HTTP_PORT:-default})',
    ])
  })

  it('reports every unset variable, not only the first', () => {
    const text = 'server:\n  dataDir: ${A}\nauth:\n  users:\n    - { username: admin, password: "${ADMIN_PASSWORD}" }\n'
    expect(problemsOf(text, {})).toEqual([
      'server.dataDir (line 2, col 12): environment variable A is not set and has no default (write ${A:-default})',
      'auth.users[0].password (line 5, col 36): environment variable ADMIN_PASSWORD is not set and has no default (write ${ADMIN_PASSWORD:-default})',
    ])
  })

  it('reads a substituted value as if written in place, quoted (as flow mappings need) or not', () => {
    const text = 'server:\n  http:\n    port: ${PORT}\n  amqp: { port: "${PORT}" }\n  syslog: { udp: "${UDP:-false}" }\n  ndjson: { host: "${PORT}" }\n'
    const config = parseConfig(text, { env: { PORT: '8080' } })
    expect([config.server.http.port, config.server.amqp.port, config.server.syslog.udp, config.server.ndjson.host]).toEqual([8080, 8080, false, '8080'])
  })

  it('types a substituted value by its key', () => {
    const text = 'server:\n  http:\n    port: ${PORT}\n'
    expect(problemsOf(text, { PORT: 'eighty' })).toEqual(['server.http.port (line 3, col 11): "eighty" is not an integer'])
  })

  it('keeps a secret exactly as given, even when it looks like a number', () => {
    const text = 'auth:\n  users:\n    - username: ${USER_NAME}\n      password: "${PASSWORD}"\n'
    const config = parseConfig(text, { env: { USER_NAME: '007', PASSWORD: '0123' } })
    expect(config.auth.users).toMatchObject([{ username: '007', password: '0123' }])
  })

  it('cannot inject YAML structure through a value', () => {
    const config = parseConfig('server:\n  dataDir: ${EVIL}\n', { env: { EVIL: 'x\nexchanges: {a: {}}' } })
    expect(config.server.dataDir).toBe('x\nexchanges: {a: {}}')
    expect(Object.keys(config.exchanges)).toEqual([])
  })

  it('treats $${ as a literal ${', () => {
    const config = parseConfig('exchanges:\n  logs: { routingKey: "$${literal}" }\n', { env: {} })
    expect(config.exchanges['logs']?.routingKey).toBe('${literal}')
  })

  it('rejects malformed references', () => {
    const text = 'server:\n  dataDir: "${1BAD}"\n  log: { level: "${UNCLOSED" }\n'
    expect(problemsOf(text, {})).toEqual([
      'server.dataDir (line 2, col 12): `${1BAD}` is not a variable reference; use ${NAME} or ${NAME:-default}',
      'server.log.level (line 3, col 17): unterminated `${` in "${UNCLOSED"; write $${ for a literal ${',
    ])
  })

  it('reads process.env when no env is given', () => {
    process.env['SLUICE_CONFIG_TEST_DIR'] = '/from/process'
    try {
      expect(parseConfig('server:\n  dataDir: ${SLUICE_CONFIG_TEST_DIR}\n').server.dataDir).toBe('/from/process')
    } finally {
      delete process.env['SLUICE_CONFIG_TEST_DIR']
    }
  })
})
