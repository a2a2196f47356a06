import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { Authenticator, Authorizer } from '../../src/auth/index.js'
import { parseConfig } from '../../src/config/index.js'
import { httpRules } from '../../src/ingest/http/access.js'
import { buildHttpApp } from '../../src/ingest/http/app.js'
import { Metrics } from '../../src/metrics/index.js'

const root = new URL('../../', import.meta.url)

/**
 * Every route the app serves, as "METHOD /pattern", read from fastify's own route tree
 * (printRoutes): a HEAD fastify adds beside a GET is not a route of its own.
 */
function registeredRoutes(app: FastifyInstance): string[] {
  const tree = app.printRoutes({ commonPrefix: false })
  const paths: string[] = []
  const routes = new Map<string, Set<string>>()
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)(?:[└├]── )(\S+)(?: \(([^)]*)\))?$/.exec(line)
    if (m === null) continue
    const depth = m[1]!.length / 4
    const path = depth === 0 ? m[2]! : `${paths[depth - 1]!.replace(/\/$/, '')}${m[2]!.startsWith('/') ? '' : '/'}${m[2]!}`
    paths[depth] = path
    paths.length = depth + 1
    const methods = (m[3] ?? '').split(',').map((s) => s.trim()).filter((s) => /^[A-Z]+$/.test(s))
    if (methods.length > 0) routes.set(path, new Set([...(routes.get(path) ?? []), ...methods]))
  }
  const out: string[] = []
  for (const [path, methods] of routes) for (const method of methods) if (!(method === 'HEAD' && methods.has('GET'))) out.push(`${method} ${path}`)
  return out.sort()
}

async function app(): Promise<FastifyInstance> {
  const config = parseConfig('', { env: {} })
  const access = { authenticator: new Authenticator(config.auth), authorizer: new Authorizer(), openMetrics: false }
  const a = buildHttpApp({ getBroker: () => undefined, metrics: new Metrics(), http: config.server.http, limits: config.server.limits, access }, () => undefined)
  await a.ready()
  return a
}

/** The reference's sections by route ("METHOD /pattern", `{name}` read as `:name`). */
async function documented(): Promise<Map<string, string>> {
  const text = await readFile(new URL('docs/http-api.md', root), 'utf8')
  const sections = new Map<string, string>()
  const heads = [...text.matchAll(/^### `([A-Z]+) (\/[^`]*)`$/gm)]
  heads.forEach((h, i) => {
    const key = `${h[1]} ${h[2]!.replace(/\{(\w+)\}/g, ':$1')}`
    expect(sections.has(key), `${key} is documented twice`).toBe(false)
    const nextChapter = text.indexOf('\n## ', h.index)
    const end = Math.min(heads[i + 1]?.index ?? text.length, nextChapter < 0 ? text.length : nextChapter)
    sections.set(key, text.slice(h.index, end))
  })
  return sections
}

describe('docs/http-api.md', () => {
  it('documents exactly the routes the HTTP listener registers', async () => {
    const routes = registeredRoutes(await app())
    // The reader of the tree must see the routes it is known to hold, or it reads nothing.
    expect(routes).toEqual(expect.arrayContaining(['GET /healthz', 'GET /v1/streams/:stream/events', 'POST /v1/groups/:group/parked/redrive', 'DELETE /v1/groups/:group']))
    expect([...(await documented()).keys()].sort()).toEqual(routes)
  })

  it("names each route's permission: the operation its rule asks, none for the probes", async () => {
    const sections = await documented()
    const wrong: string[] = []
    for (const [route, section] of sections) {
      const permission = /^- \*\*Permission\*\*: (.+?)\.?$/m.exec(section)?.[1]
      const rule = httpRules[route]
      const expected = route === 'GET /healthz' || route === 'GET /readyz' ? 'none' : route === 'GET /metrics' ? 'metrics' : rule?.operation
      if (expected === undefined) wrong.push(`${route}: no rule in httpRules`)
      else if (permission === undefined || !(permission === 'none' ? expected === 'none' : permission.startsWith(`\`${expected}\``))) wrong.push(`${route}: says ${permission ?? 'nothing'}, the rule asks \`${expected}\``)
      if (!/^- \*\*Answers\*\*: /m.test(section)) wrong.push(`${route}: no Answers`)
    }
    expect(wrong).toEqual([])
  })

  it('names only error codes of the catalogue, with their statuses', async () => {
    const catalogue = new Map<string, string>()
    for (const m of (await readFile(new URL('docs/errors.md', root), 'utf8')).matchAll(/^\| `([a-z_]+)` \| `SLUICE_ERR_\w+` \| (\d{3}) \|/gm)) catalogue.set(m[1]!, m[2]!)
    expect(catalogue.size).toBeGreaterThan(20)
    const text = await readFile(new URL('docs/http-api.md', root), 'utf8')
    const wrong: string[] = []
    for (const m of text.matchAll(/`(\d{3}) ([a-z][a-z_]+)`|(?<![\w`])(\d{3}) ([a-z]+_[a-z_]+)/g)) {
      const [status, code] = m[1] !== undefined ? [m[1], m[2]!] : [m[3]!, m[4]!]
      if (catalogue.get(code) !== status) wrong.push(`${status} ${code}${catalogue.has(code) ? ` (the catalogue says ${catalogue.get(code)})` : ' (not in the catalogue)'}`)
    }
    expect(wrong).toEqual([])
  })
})
