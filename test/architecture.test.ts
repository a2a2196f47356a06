import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = new URL('..', import.meta.url).pathname
// The broker core; config may use node:net's address parsing, which opens no socket.
const coreDirs = ['src/log', 'src/meta', 'src/router', 'src/streams', 'src/consumers', 'src/flow']

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  let entries
  try {
    entries = await readdir(join(root, dir), { withFileTypes: true })
  } catch {
    return out
  }
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p)))
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

describe('architecture', () => {
  it('the broker core never imports HTTP, sockets or an ingest adapter', async () => {
    const offenders: string[] = []
    for (const dir of coreDirs) {
      for (const file of await filesUnder(dir)) {
        const text = await readFile(join(root, file), 'utf8')
        for (const m of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
          const spec = m[1]!
          if (/^(node:)?(net|dgram|http|https|http2|tls)$/.test(spec) || spec === 'fastify' || spec.startsWith('@fastify/') || spec.includes('/ingest/')) {
            offenders.push(`${relative(root, join(root, file))} imports ${spec}`)
          }
        }
      }
    }
    expect(offenders).toEqual([])
  })

  it('the checker would see an offending import', async () => {
    // Guards the guard: the pattern must match the forms used in this codebase.
    const sample = "import { fastify } from 'fastify'\nimport net from 'node:net'"
    expect([...sample.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1])).toEqual(['fastify', 'node:net'])
  })
})
