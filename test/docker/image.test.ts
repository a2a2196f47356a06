import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { validateConfigText } from '../../src/config/index.js'

const root = new URL('../../', import.meta.url)
const read = (path: string): Promise<string> => readFile(new URL(path, root), 'utf8')

/** The Dockerfile's instructions, continuation lines joined; comments dropped. */
async function instructions(): Promise<Array<{ op: string; args: string }>> {
  const text = (await read('Dockerfile')).replace(/\\\n\s*/g, ' ')
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.trim().split(/\s+/)
      return { op: op!.toUpperCase(), args: rest.join(' ') }
    })
}

describe('the Docker image', () => {
  it('passes dockerfile-utils lint', () => {
    const r = spawnSync(process.execPath, [new URL('node_modules/dockerfile-utils/bin/dockerfile-utils', root).pathname, 'lint', new URL('Dockerfile', root).pathname], { encoding: 'utf8' })
    expect([r.status, r.stdout.trim(), r.stderr.trim()]).toEqual([0, '', ''])
  })

  it('runs config/docker.yaml as a non-root user on a current Node LTS, with a health check, and ships no tests, benchmarks or dev dependencies', async () => {
    const ins = await instructions()
    const stages = ins.filter((i) => i.op === 'FROM').map((i) => i.args)
    expect(stages).toEqual(['node:24-slim AS build', 'node:24-slim'])
    const runtime = ins.slice(ins.findIndex((i, k) => i.op === 'FROM' && k > 0))
    expect(runtime.find((i) => i.op === 'CMD')?.args).toBe('["serve", "--config", "config/docker.yaml"]')
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')?.args).toBe('["node", "dist/src/cli.js"]')
    const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args
    expect(user).toBeDefined()
    expect(['root', '0']).not.toContain(user)
    expect(runtime.find((i) => i.op === 'HEALTHCHECK')?.args).toMatch(/CMD .*http:\/\/127\.0\.0\.1:7400\/healthz/)
    expect(runtime.find((i) => i.op === 'VOLUME')?.args).toBe('["/var/lib/sluice"]')
    // Only the compiled server and UI, production modules, configuration and protobuf definitions.
    const copied = runtime.filter((i) => i.op === 'COPY').map((i) => i.args)
    expect(copied).toEqual(['--from=build /app/node_modules ./node_modules', '--from=build /app/dist/src ./dist/src', '--from=build /app/dist/ui ./dist/ui', 'package.json ./', 'config ./config', 'proto ./proto'])
    const build = ins.slice(0, ins.findIndex((i, k) => i.op === 'FROM' && k > 0))
    expect(build.some((i) => i.op === 'RUN' && /npm prune --omit=dev/.test(i.args))).toBe(true)
    expect(build.filter((i) => i.op === 'COPY').map((i) => i.args.split(' ')[0])).not.toContain('benchmarks')
    const ignored = (await read('.dockerignore')).split('\n').filter((l) => l !== '' && !l.startsWith('#'))
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'data', 'test', 'benchmarks']))
  })

  it('config/docker.yaml listens on every interface, keeps data in the volume, and lets nobody in without the admin password', async () => {
    const text = await read('config/docker.yaml')
    const ok = validateConfigText(text, { source: 'config/docker.yaml', env: { SLUICE_ADMIN_PASSWORD: 'secret' } })
    if (!ok.ok) throw new Error(ok.problems.join('\n'))
    const { server, auth } = ok.config
    expect(server.dataDir).toBe('/var/lib/sluice')
    const listeners = [server.http, server.ndjson, server.amqp, server.syslog]
    expect(listeners.map((l) => [l.enabled, l.host])).toEqual(listeners.map(() => [true, '0.0.0.0']))
    expect(server.shutdownTimeoutMs).toBeLessThan(10_000)
    expect(auth.anonymous).toBe('none')
    expect(auth.users.map((u) => [u.username, u.password, u.tags])).toEqual([['admin', 'secret', ['administrator']]])
    // The pipeline is the default one.
    const local = validateConfigText(await read('config/sluice.yaml'), { env: {} })
    if (!local.ok) throw new Error(local.problems.join('\n'))
    expect([ok.config.exchanges, ok.config.streams, ok.config.bindings, ok.config.groups]).toEqual([local.config.exchanges, local.config.streams, local.config.bindings, local.config.groups])
    const doors = (c: typeof ok.config): unknown[] => [c.server.otlp.exchange, c.server.loki.exchange, c.server.elasticsearch.exchange]
    expect(doors(ok.config)).toEqual(doors(local.config))

    const missing = validateConfigText(text, { source: 'config/docker.yaml', env: {} })
    expect(missing.ok ? [] : missing.problems).toEqual([expect.stringMatching(/^auth\.users\[0\]\.password \(line \d+, col \d+\): environment variable SLUICE_ADMIN_PASSWORD is not set/)])
  })
})
