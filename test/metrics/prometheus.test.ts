import { spawn, spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { fetchEvents } from '../helpers/consume.js'
import { freePort, requireProgram, waitFor } from '../helpers/programs.js'
import { postNdjson, startTestServer } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {}, dlq: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  indexer: { stream: app-logs, deadLetter: { stream: dlq } }
`

describe('metrics', () => {
  it('a live scrape passes promtool check metrics and carries the sluice families', async () => {
    const promtool = requireProgram('promtool', 'prometheus')
    const s = await startTestServer({ pipeline })
    await postNdjson(s.url, 'logs', [{ service: 'a', level: 'info' }, { service: 'a', level: 'error' }])
    await fetchEvents(s.url, 'indexer', 'm1', 1)
    const res = await fetch(`${s.url}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' })
    expect(check.stdout + check.stderr).toBe('')
    expect(check.status).toBe(0)
    expect(text).toMatch(/^sluice_ingest_events_total\{listener="http",exchange="logs"\} 2$/m)
    expect(text).toMatch(/^sluice_published_events_total\{exchange="logs",outcome="confirmed"\} 2$/m)
    expect(text).toMatch(/^sluice_stream_events\{stream="app-logs"\} 2$/m)
    expect(text).toMatch(/^sluice_group_backlog_events\{group="indexer",stream="app-logs"\} 2$/m)
    expect(text).toMatch(/^sluice_group_in_flight\{group="indexer"\} 1$/m)
    expect(text).toMatch(/^sluice_stream_fsync_seconds_count\{stream="app-logs"\} [1-9]/m)
    expect(text).not.toMatch(/nodejs_active_\w+_total/)
  })

  it('a real Prometheus scrapes Sluice and its query API returns sluice_group_lag_seconds for a group with a backlog', async () => {
    const prometheus = requireProgram('prometheus', 'prometheus')
    const s = await startTestServer({ pipeline })
    await postNdjson(s.url, 'logs', [{ service: 'a', level: 'info', n: 1 }])
    const dir = await tempDir()
    const port = await freePort()
    const target = new URL(s.url).host
    await writeFile(join(dir, 'prom.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: sluice\n    static_configs: [ { targets: ['${target}'] } ]\n`)
    const proc = spawn(prometheus, [`--config.file=${join(dir, 'prom.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' })
    onTestFinished(async () => {
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
    })
    const api = `http://127.0.0.1:${port}/api/v1`
    await waitFor(
      'the sluice target to be up',
      async () => {
        const t = (await (await fetch(`${api}/targets`)).json()) as { data: { activeTargets: Array<{ health: string }> } }
        return t.data.activeTargets.some((x) => x.health === 'up') ? true : undefined
      },
      30_000,
    )
    const result = await waitFor(
      'sluice_group_lag_seconds in Prometheus',
      async () => {
        const q = (await (await fetch(`${api}/query?query=${encodeURIComponent('sluice_group_lag_seconds{group="indexer"}')}`)).json()) as {
          data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> }
        }
        const r = q.data.result[0]
        return r !== undefined && Number(r.value[1]) > 0 ? r : undefined
      },
      30_000,
    )
    expect(result.metric).toMatchObject({ __name__: 'sluice_group_lag_seconds', group: 'indexer', stream: 'app-logs', job: 'sluice' })
    expect(Number(result.value[1])).toBeGreaterThan(0)
  })
})

describe('docs/alerts.yml', () => {
  it('is a valid Prometheus rule file', () => {
    const promtool = requireProgram('promtool', 'prometheus')
    const r = spawnSync(promtool, ['check', 'rules', new URL('../../docs/alerts.yml', import.meta.url).pathname], { encoding: 'utf8' })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/)
  })
})
