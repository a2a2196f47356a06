import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { httpRules } from '../../src/ingest/http/access.js'
import { bareHttpApp, registeredRoutes } from '../helpers/routes.js'

const root = new URL('../../', import.meta.url)


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
    const routes = registeredRoutes(await bareHttpApp())
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
      const expected = route === 'GET /healthz' || route === 'GET /readyz' || route === 'GET /v1/openapi.json' ? 'none' : route === 'GET /metrics' ? 'metrics' : rule?.operation
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
