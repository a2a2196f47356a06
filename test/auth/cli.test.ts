import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { hashApiKey } from '../../src/auth/index.js'
import { parsePasswordHash, verifyPassword } from '../../src/auth/secrets.js'
import { startTestServer, testPipeline } from '../helpers/server.js'

// The built CLI, as `npm run sluice` runs it (npm test builds first).
const cli = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url))

function run(args: string[], input: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [cli, ...args], { env: { ...process.env, SLUICE_TOKEN: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    proc.on('error', reject)
    proc.on('close', (code) => resolve({ code, stdout, stderr }))
    proc.stdin.end(input)
  })
}

describe('sluice passwd', () => {
  it('prints a passwordHash that verifies the piped password, and nothing else', async () => {
    const { code, stdout } = await run(['passwd'], 'correct horse\n')
    expect(code).toBe(0)
    const hash = stdout.trim()
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$/)
    const parsed = parsePasswordHash(hash)
    if ('problem' in parsed) throw new Error(parsed.problem)
    expect(await verifyPassword('correct horse', parsed)).toBe(true)
    expect(await verifyPassword('correct horse\n', parsed)).toBe(false)
  })

  it('prints the keyHash of a piped API key, or makes a new key with its hash', async () => {
    expect((await run(['passwd', '--api-key'], 'k-123\n')).stdout).toBe(`${hashApiKey('k-123')}\n`)
    const made = await run(['passwd', '--api-key', '--generate'], '')
    const [, key, keyHash] = /^key: (\S+)\nkeyHash: (\S+)\n$/.exec(made.stdout) ?? []
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(keyHash).toBe(hashApiKey(key!))
  })

  it('refuses an empty password', async () => {
    const { code, stdout } = await run(['passwd'], '\n')
    expect([code, stdout]).toEqual([1, ''])
  })
})

describe('the CLI logs in', () => {
  it('publish with SLUICE_TOKEN, tail with --user; without credentials it is told 401', async () => {
    const yaml = `${testPipeline}
auth:
  anonymous: none
  users:
    - { username: shipper, password: ship-pw, permissions: { write: "^logs$", read: "^app-logs$" } }
  apiKeys:
    - { name: fleet, key: fleet-key-0123456789, user: shipper }
`
    const s = await startTestServer({ pipeline: yaml })
    const line = `${JSON.stringify({ service: 'web', level: 'info', msg: 'from the cli' })}\n`
    const refused = await run(['publish', 'logs', '--url', s.url], line)
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('401 unauthenticated')])
    const published = await run(['publish', 'logs', '--url', s.url], line, { SLUICE_TOKEN: 'fleet-key-0123456789' })
    expect([published.code, JSON.parse(published.stdout)]).toEqual([0, { lines: 1, accepted: 1, duplicates: 0, unroutable: 0 }])
    const tailed = await run(['tail', 'app-logs', '--url', s.url, '--user', 'shipper'], '', { SLUICE_PASSWORD: 'ship-pw' })
    expect(tailed.code).toBe(0)
    expect(JSON.parse(tailed.stdout.trim())).toMatchObject({ offset: 0, body: { msg: 'from the cli' } })
  })
})
