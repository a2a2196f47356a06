import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { openApiDocument, openApiPath, renderApiMarkdown, routeDocs } from '../../src/ingest/http/openapi.js'
import { sluiceVersion } from '../../src/version.js'
import { bareHttpApp, registeredRoutes } from '../helpers/routes.js'
import { startTestServer } from '../helpers/server.js'

const root = new URL('../../', import.meta.url)

interface Operation {
  readonly parameters?: ReadonlyArray<{ readonly name: string; readonly in: string }>
  readonly responses: Readonly<Record<string, unknown>>
  readonly security?: readonly unknown[]
}

/** Every `$ref` in a value. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, out)
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v)
      else refs(v, out)
    }
  }
  return out
}

describe('the OpenAPI document', () => {
  it('describes exactly the routes the HTTP listener registers', async () => {
    const routes = registeredRoutes(await bareHttpApp())
    expect(routes).toContain('GET /v1/openapi.json')
    expect(Object.keys(routeDocs).sort()).toEqual(routes)
  })

  it('is well formed: OpenAPI 3.1, every path parameter declared, every $ref resolves, every operation but the template probes answers a success', () => {
    const doc = openApiDocument('1.2.3') as { openapi: string; info: { version: string }; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } }
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info.version).toBe('1.2.3')
    const problems: string[] = []
    for (const [path, methods] of Object.entries(doc.paths)) {
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!)
      for (const [method, op] of Object.entries(methods)) {
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)
        if (declared.join() !== inPath.join()) problems.push(`${method} ${path}: path parameters ${declared.join()} for ${inPath.join()}`)
        // The template probes answer 404 on purpose: no template is kept, so agents go on.
        const probe = path.endsWith('template/{name}') && method === 'get'
        if (!probe && !Object.keys(op.responses).some((s) => s.startsWith('2'))) problems.push(`${method} ${path}: no 2xx answer`)
      }
    }
    for (const r of refs(doc)) {
      const name = /^#\/components\/schemas\/(\w+)$/.exec(r)?.[1]
      if (name === undefined || doc.components.schemas[name] === undefined) problems.push(`dangling ${r}`)
    }
    expect(problems).toEqual([])
    expect(Object.keys(doc.paths)).toContain(openApiPath('/v1/streams/:stream/events'))
  })

  it('is served at /v1/openapi.json without a login, with the package version', async () => {
    const s = await startTestServer({ server: 'auth:\n  anonymous: none\n  users:\n    - { username: admin, password: a, tags: [administrator] }' })
    const res = await fetch(`${s.url}/v1/openapi.json`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const served = (await res.json()) as Record<string, unknown>
    expect(served).toEqual(openApiDocument(sluiceVersion()))
    expect((served.info as { version: string }).version).toMatch(/^\d+\.\d+\.\d+/)
    // The routes it lists still need their login.
    expect((await fetch(`${s.url}/v1/streams`)).status).toBe(401)
  })

  it('docs/api.md is the document rendered (node dist/src/ingest/http/render-api.js > docs/api.md)', async () => {
    expect(await readFile(new URL('docs/api.md', root), 'utf8')).toBe(renderApiMarkdown())
  })
})
