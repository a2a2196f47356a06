import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'

const root = new URL('../..', import.meta.url)

describe('docs/amqp.md', () => {
  it('lists every method the AMQP door handles', async () => {
    const code = (await readFile(new URL('src/ingest/amqp/channel.ts', root), 'utf8')) + (await readFile(new URL('src/ingest/amqp/connection.ts', root), 'utf8'))
    const handled = new Set([...code.matchAll(/case '([a-z]+\.[a-z-]+)':/g)].map((m) => m[1]!.replace(/-ok$/, '')))
    expect(handled.size).toBeGreaterThan(30)
    const docs = await readFile(new URL('docs/amqp.md', root), 'utf8')
    const lines = docs.split('\n').filter((l) => l.startsWith('| `'))
    const missing = [...handled].filter((name) => {
      const [cls, method] = name.split('.') as [string, string]
      // `class.method`, or `class.x` / `method` in one row.
      return !lines.some((l) => l.includes(`\`${name}\``) || (l.includes(`\`${cls}.`) && l.includes(`\`${method}\``)))
    })
    expect(missing).toEqual([])
  })
})
