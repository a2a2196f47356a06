import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { wireCode } from '../src/errors.js'

const root = new URL('..', import.meta.url)

describe('error catalogue', () => {
  it('docs/errors.md lists exactly the codes the catalogue defines, with their statuses', async () => {
    const source = await readFile(new URL('src/errors.ts', root), 'utf8')
    const defined = new Map<string, string>()
    for (const m of source.matchAll(/'(SLUICE_ERR_[A-Z_]+)',[\s\S]*?, (\d{3}),/g)) defined.set(m[1]!, m[2]!)
    const docs = await readFile(new URL('docs/errors.md', root), 'utf8')
    const documented = new Map<string, string>()
    for (const m of docs.matchAll(/^\| `([a-z_]+)` \| `(SLUICE_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)) {
      expect(wireCode(m[2]!)).toBe(m[1])
      documented.set(m[2]!, m[3]!)
    }
    expect(Object.fromEntries([...documented].sort())).toEqual(Object.fromEntries([...defined].sort()))
    expect(defined.size).toBeGreaterThan(20)
  })
})
