import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { leafAt, limitLikeKeys, limitTable, renderLimitsDocs } from '../../src/config/limits.js'

describe('docs/limits.md', () => {
  it('is exactly what renderLimitsDocs() generates', async () => {
    // On failure: npm run build && node dist/src/config/render-docs.js limits > docs/limits.md
    expect(await readFile(new URL('../../docs/limits.md', import.meta.url), 'utf8')).toBe(renderLimitsDocs())
  })

  it('lists every limit-like key of the table, and names only real keys', () => {
    expect(limitLikeKeys().filter((k) => limitTable[k] === undefined)).toEqual([])
    expect(Object.keys(limitTable).filter((k) => leafAt(k) === undefined)).toEqual([])
  })
})
