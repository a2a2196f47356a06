import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { renderPermissionTable } from '../../src/auth/index.js'

describe('docs/security.md', () => {
  it('holds the permission table exactly as the code has it', async () => {
    const docs = await readFile(new URL('../../docs/security.md', import.meta.url), 'utf8')
    const start = docs.indexOf('<!-- permission-table -->')
    const end = docs.indexOf('<!-- /permission-table -->')
    expect(start).toBeGreaterThan(0)
    // On failure: paste renderPermissionTable() (src/auth/operations.ts) between the markers.
    expect(docs.slice(start + '<!-- permission-table -->'.length, end).trim()).toBe(renderPermissionTable())
  })
})
