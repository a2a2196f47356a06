import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig, summarizeConfig, validateConfigText } from '../../src/config/index.js'
import { makePki, tlsYaml, type Pki } from '../helpers/pki.js'

let pki: Pki
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-tls-config-'))
  pki = await makePki(dir)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const problemsOf = (text: string): readonly string[] => {
  const result = validateConfigText(text, { env: {} })
  return result.ok ? [] : result.problems
}

describe('a listener key holding a list of entries', () => {
  it('gives one entry per item, the first standing for the key as with one mapping', () => {
    const config = parseConfig(
      `server:
  amqp:
    - { port: 5672 }
    - { port: 5671, tls: ${tlsYaml(pki.server)} }
  syslog:
    - { port: 5514, exchange: logs }
    - { port: 6514, exchange: logs, tls: ${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })} }
exchanges: { logs: {} }
`,
      { env: {} },
    )
    const { amqp, syslog, http } = config.server.listeners
    expect(amqp.map((e) => [e.port, e.tls?.cert ?? null])).toEqual([
      [5672, null],
      [5671, pki.server.cert],
    ])
    expect(amqp[1]!.tls).toEqual({ cert: pki.server.cert, key: pki.server.key, ca: null, clientAuth: 'none', minVersion: 'TLSv1.2' })
    expect(config.server.amqp).toBe(amqp[0])
    // Each entry has every key at its default unless it says otherwise.
    expect(amqp[1]!.heartbeatMs).toBe(60_000)
    expect(syslog[1]!.tls).toMatchObject({ ca: pki.ca, clientAuth: 'required' })
    expect(http).toEqual([config.server.http])
    expect(summarizeConfig(config)).toContain('amqp 127.0.0.1:5672, amqp 127.0.0.1:5671 tls, syslog 127.0.0.1:5514 tcp+udp → logs, syslog 127.0.0.1:6514 tls (client certificate required) → logs')
  })

  it('keeps the default with no TLS anywhere', () => {
    const config = parseConfig('', { env: {} })
    for (const entries of Object.values(config.server.listeners)) {
      expect(entries).toHaveLength(1)
      expect(entries[0]!.tls).toBeNull()
    }
  })

  it('refuses an empty list and an item that is not a mapping', () => {
    expect(problemsOf('server:\n  amqp: []\n')).toEqual(['server.amqp (line 2, col 9): an empty list has no listener to start; write one mapping, or set `enabled: false` to turn the listener off'])
    expect(problemsOf('server:\n  http:\n    - { port: 1 }\n    - 7400\n')).toEqual([expect.stringMatching(/^server\.http\[1\] \(line 4, col 7\): expected a mapping of enabled, host, port, tls, .*, got 7400$/)])
  })

  it('reports a problem in an item by its index', () => {
    expect(problemsOf('server:\n  ndjson:\n    - { port: 1 }\n    - { port: 70000 }\n')).toEqual(['server.ndjson[1].port (line 4, col 15): 70000 is above the maximum of 65535'])
  })

  it('makes AMQP entries agree on the bounds of their one virtual host', () => {
    expect(problemsOf('server:\n  amqp:\n    - { maxQueuesPerConnection: 10 }\n    - { port: 5671 }\n')).toEqual([
      'server.amqp[1].maxQueuesPerConnection (line 4, col 7): every AMQP entry serves one virtual host, so maxQueuesPerConnection must be the same in each: 10 in server.amqp[0]',
    ])
  })
})

describe('tls', () => {
  const amqpTls = (tls: string): string => `server:\n  amqp:\n    port: 5671\n    tls: ${tls}\n`

  it('needs cert and key', () => {
    expect(problemsOf(amqpTls('{ cert: a.pem }'))).toEqual(['server.amqp.tls.key (line 4, col 5): is required but missing'])
  })

  it('names a missing certificate file', () => {
    const missing = join(dir, 'nope.pem')
    expect(problemsOf(amqpTls(`{ cert: ${missing}, key: ${pki.server.key} }`))).toEqual([`server.amqp.tls.cert (line 4, col 18): ${missing} does not exist`])
  })

  it('names a key that cannot be read, is not PEM, is encrypted or is not the certificate’s', async () => {
    const sub = join(dir, 'keys')
    await mkdir(sub, { recursive: true })
    expect(problemsOf(amqpTls(`{ cert: ${pki.server.cert}, key: ${sub} }`))).toEqual([expect.stringMatching(/^server\.amqp\.tls\.key \(line 4, col \d+\): .*keys is a directory, not a PEM file$/)])
    const garbage = join(sub, 'garbage.key')
    await writeFile(garbage, 'not a key\n')
    expect(problemsOf(amqpTls(`{ cert: ${pki.server.cert}, key: ${garbage} }`))).toEqual([expect.stringContaining(`${garbage} is not an unencrypted PEM private key`)])
    const encrypted = join(sub, 'encrypted.key')
    await promisify(execFile)('openssl', ['pkey', '-in', pki.server.key, '-out', encrypted, '-aes256', '-passout', 'pass:secret'])
    expect(problemsOf(amqpTls(`{ cert: ${pki.server.cert}, key: ${encrypted} }`))).toEqual([expect.stringContaining('it is encrypted; decrypt it')])
    expect(problemsOf(amqpTls(`{ cert: ${pki.server.cert}, key: ${pki.client.key} }`))).toEqual([expect.stringContaining(`${pki.client.key} is not the private key of the certificate in ${pki.server.cert}`)])
  })

  it('refuses a certificate file that holds no certificate', () => {
    expect(problemsOf(amqpTls(`{ cert: ${pki.server.key}, key: ${pki.server.key} }`))).toEqual([expect.stringContaining(`${pki.server.key} is not a PEM certificate`)])
  })

  it('needs a ca to check client certificates, and a ca only for that', () => {
    expect(problemsOf(amqpTls(`${tlsYaml(pki.server, { clientAuth: 'required' })}`))).toEqual([
      expect.stringMatching(/^server\.amqp\.tls\.clientAuth \(line 4, col \d+\): clientAuth: required needs `ca`, the CA certificates that client certificates must chain to$/),
    ])
    expect(problemsOf(amqpTls(`${tlsYaml(pki.server, { clientAuth: 'optional' })}`))).toEqual([expect.stringContaining('clientAuth: optional needs `ca`')])
    expect(problemsOf(amqpTls(`${tlsYaml(pki.server, { ca: pki.ca })}`))).toEqual([expect.stringContaining('server.amqp.tls.ca (line 4, col')])
    expect(problemsOf(amqpTls(`${tlsYaml(pki.server, { ca: pki.server.key, clientAuth: 'required' })}`))).toEqual([expect.stringContaining(`${pki.server.key} holds no PEM certificate`)])
    expect(problemsOf(amqpTls(`${tlsYaml(pki.server, { ca: pki.ca, clientAuth: 'required' })}`))).toEqual([])
  })

  it('takes TLS 1.2 or 1.3 as the oldest version, nothing older', () => {
    expect(problemsOf(amqpTls(`${tlsYaml(pki.server, { minVersion: 'TLSv1.3' })}`))).toEqual([])
    expect(problemsOf(amqpTls(`{ cert: ${pki.server.cert}, key: ${pki.server.key}, minVersion: TLSv1 }`))).toEqual([expect.stringContaining('"TLSv1" is not one of TLSv1.2, TLSv1.3')])
  })

  it('is checked in every entry of a list, each reported by its index', () => {
    const missing = join(dir, 'gone.key')
    const problems = problemsOf(`server:\n  syslog:\n    - { port: 5514 }\n    - { port: 6514, tls: { cert: ${pki.server.cert}, key: ${missing} } }\n  http:\n    - { port: 7400 }\n    - { port: 7443, tls: ${tlsYaml(pki.server, { clientAuth: 'required' })} }\n`)
    expect(problems).toEqual([expect.stringMatching(/^server\.syslog\[1\]\.tls\.key \(line 4, col \d+\): .*gone\.key does not exist$/), expect.stringMatching(/^server\.http\[1\]\.tls\.clientAuth \(line 7, col \d+\): clientAuth: required needs `ca`/)])
  })

  it("is checked on OTLP's own listeners, server.otlp.http and server.otlp.grpc", () => {
    const missing = join(dir, 'otlp-gone.pem')
    const problems = problemsOf(`server:\n  otlp:\n    http: { enabled: true, tls: { cert: ${missing}, key: ${pki.server.key} } }\n    grpc: { enabled: true, tls: ${tlsYaml(pki.server, { clientAuth: 'optional' })} }\n`)
    expect(problems).toEqual([expect.stringMatching(/^server\.otlp\.http\.tls\.cert \(line 3, col \d+\): .*otlp-gone\.pem does not exist$/), expect.stringMatching(/^server\.otlp\.grpc\.tls\.clientAuth \(line 4, col \d+\): clientAuth: optional needs `ca`/)])
    expect(problemsOf(`server:\n  otlp:\n    grpc: { enabled: true, tls: ${tlsYaml(pki.server)} }\n`)).toEqual([])
  })
})
