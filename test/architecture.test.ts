import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = new URL('..', import.meta.url).pathname
// The broker core, and the config it is built from.
const coreDirs = ['src/log', 'src/meta', 'src/router', 'src/streams', 'src/consumers', 'src/flow', 'src/config', 'src/auth']

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
        for (const m of text.matchAll(/import\s+(?:type\s+)?(?:\{([^}]*)\}|[\w*\s]+)\s+from\s+['"]([^'"]+)['"]/g)) {
          const names = (m[1] ?? '*').split(',').map((n) => n.trim()).filter((n) => n !== '')
          const spec = m[2]!
          // node:net's address helpers (isIP, BlockList) parse strings and open no socket.
          if (/^(node:)?net$/.test(spec) && names.every((n) => ['isIP', 'isIPv4', 'isIPv6', 'BlockList'].includes(n))) continue
          if (/^(node:)?(net|dgram|http|https|http2|tls)$/.test(spec) || spec === 'fastify' || spec.startsWith('@fastify/') || spec.includes('/ingest/')) {
            offenders.push(`${relative(root, join(root, file))} imports ${spec}`)
          }
        }
      }
    }
    expect(offenders).toEqual([])
  })

  it('every write to a log goes through the one append path', async () => {
    // Log.append takes one batch that must fit a segment and knows nothing of chunking; a writer
    // calling it directly is how dead letters once failed forever on a small segment size.
    const allowed = new Set(['src/streams/append.ts'])
    const offenders: string[] = []
    for (const file of await filesUnder('src')) {
      if (file.startsWith('src/log/') || allowed.has(file)) continue
      const text = await readFile(join(root, file), 'utf8')
      for (const m of text.matchAll(/\blog!?\??\.append\(/g)) offenders.push(`${file}: ${m[0]}`)
    }
    expect(offenders).toEqual([])
  })

  it('the checker would see an offending import', async () => {
    // Guards the guard: the pattern must match the forms used in this codebase.
    const sample = "import { fastify } from 'fastify'\nimport net from 'node:net'\nimport { createServer, isIP } from 'node:net'"
    const found = [...sample.matchAll(/import\s+(?:type\s+)?(?:\{([^}]*)\}|[\w*\s]+)\s+from\s+['"]([^'"]+)['"]/g)].map((m) => [m[2], m[1]?.trim() ?? '*'])
    expect(found).toEqual([
      ['fastify', 'fastify'],
      ['node:net', '*'],
      ['node:net', 'createServer, isIP'],
    ])
  })
})
