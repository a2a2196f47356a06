// compose.yaml, read as Docker Compose would read it (no engine runs here): every file it mounts
// exists, Sluice's ports are the ones config/docker.yaml listens on, Prometheus's configuration
// passes promtool with the files it would see in its container, and the dashboard Grafana loads
// resolves its data source without the import dialog.

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { requireProgram } from '../helpers/programs.js'
import { tempDir } from '../helpers/temp.js'

const root = new URL('../../', import.meta.url).pathname
const read = (path: string): Promise<string> => readFile(join(root, path), 'utf8')

interface Service {
  readonly image?: string
  readonly build?: string
  readonly environment?: Readonly<Record<string, string>>
  readonly ports?: readonly string[]
  readonly volumes?: readonly string[]
  readonly secrets?: readonly string[]
  readonly depends_on?: readonly string[]
}

interface Compose {
  readonly services: Readonly<Record<string, Service>>
  readonly volumes?: Readonly<Record<string, unknown>>
  readonly secrets?: Readonly<Record<string, { readonly environment?: string; readonly file?: string }>>
}

const compose = async (): Promise<Compose> => parse(await read('compose.yaml')) as Compose

/** `host:container[:ro]` of a bind mount, or undefined for a named volume. */
function bindMount(volume: string): { host: string; container: string } | undefined {
  const [host, container] = volume.split(':') as [string, string]
  return host.startsWith('./') || host.startsWith('/') ? { host, container } : undefined
}

describe('compose.yaml', () => {
  it('runs Sluice from the Dockerfile with Prometheus and Grafana, each image pinned, every mount and secret present', async () => {
    const c = await compose()
    expect(Object.keys(c.services).sort()).toEqual(['grafana', 'prometheus', 'sluice'])
    expect(c.services.sluice!.build).toBe('.')
    for (const name of ['prometheus', 'grafana']) expect(c.services[name]!.image).toMatch(/^[\w/.-]+:v?\d+\.\d+\.\d+$/)
    for (const [name, service] of Object.entries(c.services)) {
      for (const volume of service.volumes ?? []) {
        const mount = bindMount(volume)
        if (mount === undefined) expect(Object.keys(c.volumes ?? {}), `${name}: ${volume}`).toContain(volume.split(':')[0])
        else expect(existsSync(join(root, mount.host)), `${name} mounts ${mount.host}`).toBe(true)
      }
      for (const secret of service.secrets ?? []) expect(c.secrets?.[secret], `${name}: secret ${secret}`).toBeDefined()
      for (const dep of service.depends_on ?? []) expect(Object.keys(c.services)).toContain(dep)
    }
    // The password is required: compose stops with the message when it is unset.
    expect(c.services.sluice!.environment?.SLUICE_ADMIN_PASSWORD).toMatch(/^\$\{SLUICE_ADMIN_PASSWORD:\?.+\}$/)
    expect(c.secrets?.['sluice-admin-password']?.environment).toBe('SLUICE_ADMIN_PASSWORD')
  })

  it("publishes exactly the ports config/docker.yaml listens on, as the Dockerfile exposes them", async () => {
    const c = await compose()
    const published = (c.services.sluice!.ports ?? []).map((p) => {
      const [host, container] = p.split(':') as [string, string]
      expect(host).toBe(container.replace('/udp', ''))
      return container
    })
    const server = (parse(await read('config/docker.yaml')) as { server: Record<string, { port?: number; udp?: boolean }> }).server
    const listening = ['http', 'ndjson', 'amqp', 'syslog'].map((k) => String(server[k]!.port))
    if (server.syslog!.udp === true) listening.push(`${server.syslog!.port}/udp`)
    expect(published.sort()).toEqual(listening.sort())
    const exposed = /^EXPOSE (.+)$/m.exec(await read('Dockerfile'))![1]!.split(/\s+/)
    expect(published.sort()).toEqual(exposed.sort())
  })

  it('Prometheus: the configuration passes promtool with the files compose mounts, and scrapes sluice:7400 with the secret', async () => {
    const promtool = requireProgram('promtool', 'prometheus')
    const c = await compose()
    const dir = await tempDir()
    // What the container sees at each mounted path, here at a temp path.
    let config = await read('deploy/prometheus/prometheus.yml')
    for (const volume of c.services.prometheus!.volumes ?? []) {
      const mount = bindMount(volume)
      if (mount === undefined || mount.container === '/etc/prometheus/prometheus.yml') continue
      config = config.replaceAll(mount.container, join(root, mount.host))
    }
    const secret = join(dir, 'password')
    await writeFile(secret, 'change-me\n')
    expect(config).toContain('/run/secrets/sluice-admin-password')
    config = config.replaceAll('/run/secrets/sluice-admin-password', secret)
    await writeFile(join(dir, 'prometheus.yml'), config)
    const r = spawnSync(promtool, ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' })
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0)
    const scrape = (parse(config) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }>; basic_auth?: { username: string } }> }).scrape_configs
    expect(scrape.map((s) => [s.job_name, s.static_configs[0]!.targets, s.basic_auth?.username])).toEqual([['sluice', ['sluice:7400'], 'admin']])
  })

  it('Grafana: provisions the Prometheus data source and loads the dashboard, whose data source references all resolve', async () => {
    const c = await compose()
    const mounts = (c.services.grafana!.volumes ?? []).map(bindMount).filter((m) => m !== undefined)
    expect(mounts).toContainEqual({ host: './deploy/grafana/provisioning', container: '/etc/grafana/provisioning' })
    const dashboardMount = mounts.find((m) => m.host === './docs/grafana-dashboard.json')
    expect(dashboardMount).toBeDefined()
    const provider = parse(await read('deploy/grafana/provisioning/dashboards/sluice.yaml')) as { providers: Array<{ options: { path: string } }> }
    expect(dashboardMount!.container.startsWith(`${provider.providers[0]!.options.path}/`)).toBe(true)
    const sources = parse(await read('deploy/grafana/provisioning/datasources/prometheus.yaml')) as { datasources: Array<{ type: string; url: string; isDefault: boolean }> }
    expect(sources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true })])
    // A provisioned dashboard gets no import dialog to fill `${DS_PROMETHEUS}`: a data-source
    // variable of that name must resolve it, to the default Prometheus.
    const dashboard = JSON.parse(await read('docs/grafana-dashboard.json')) as { templating: { list: Array<{ name: string; type: string; query?: unknown }> } }
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]))
    const referenced = new Set([...(await read('docs/grafana-dashboard.json')).matchAll(/"uid": "\$\{(\w+)\}"/g)].map((m) => m[1]!))
    expect(referenced.size).toBeGreaterThan(0)
    for (const name of referenced) expect(variables.get(name), name).toMatchObject({ type: 'datasource', query: 'prometheus' })
  })
})
