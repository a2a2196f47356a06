import type { FastifyInstance } from 'fastify'
import { Authenticator, Authorizer } from '../../src/auth/index.js'
import { parseConfig } from '../../src/config/index.js'
import { buildHttpApp } from '../../src/ingest/http/app.js'
import { Metrics } from '../../src/metrics/index.js'

/**
 * Every route the app serves, as "METHOD /pattern", read from fastify's own route tree
 * (printRoutes): a HEAD fastify adds beside a GET is not a route of its own.
 */
export function registeredRoutes(app: FastifyInstance): string[] {
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

/** The HTTP app on the default configuration, with no broker behind it: for its route table. */
export async function bareHttpApp(): Promise<FastifyInstance> {
  const config = parseConfig('', { env: {} })
  const access = { authenticator: new Authenticator(config.auth), authorizer: new Authorizer(), openMetrics: false }
  const a = buildHttpApp({ getBroker: () => undefined, metrics: new Metrics(), http: config.server.http, limits: config.server.limits, access }, () => undefined)
  await a.ready()
  return a
}
