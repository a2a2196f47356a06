import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { renderConfigDocs } from '../../src/config/index.js'
import { configSpec } from '../../src/config/keys.js'
import type { KeySpec, LeafSpec } from '../../src/config/spec.js'
import { defaultOf } from '../../src/config/validate.js'

const docsPath = new URL('../../docs/configuration.md', import.meta.url)

function leaves(spec: KeySpec, path: string): [string, LeafSpec][] {
  switch (spec.type) {
    case 'object':
      return Object.entries(spec.keys).flatMap(([key, child]) => leaves(child, path === '' ? key : `${path}.${key}`))
    case 'named':
      return leaves(spec.of, `${path}.<name>`)
    case 'list':
      return leaves(spec.of, `${path}[]`)
    default:
      return [[path, spec]]
  }
}

const allLeaves = leaves(configSpec, '')

describe('docs/configuration.md', () => {
  it('is exactly what renderConfigDocs() generates from the key table', async () => {
    // On failure: npm run build && node dist/src/config/render-docs.js > docs/configuration.md
    expect(await readFile(docsPath, 'utf8')).toBe(renderConfigDocs())
  })

  it('documents every key of the table with its default', () => {
    const docs = renderConfigDocs()
    const documented = [...docs.matchAll(/^\| `([^`]+)` \|[^|]*(?:\\\|[^|]*)*\| ([^|]*) \|/gm)].map((m) => m[1])
    expect(documented).toEqual(expect.arrayContaining(allLeaves.map(([path]) => path)))
    expect(docs).toContain('| `streams.<name>.segmentSize` | size (1kb to 1gb) | `64mb` | Roll to a new segment file at this size. |')
    expect(docs).toContain('| `groups.<name>.stream` | stream name | required | Stream the group reads. |')
    expect(docs).toContain('| `bindings[].toExchange` | exchange name | none | Destination exchange (exchange-to-exchange binding). |')
  })
})

describe('the key table', () => {
  it('gives every key a default or marks it required', () => {
    const undecided = allLeaves.filter(([, spec]) => spec.default === undefined && spec.required !== true).map(([path]) => path)
    expect(undecided).toEqual([])
  })

  it('has defaults that pass its own validation', () => {
    // defaultOf asserts that each default parses and respects its bounds.
    for (const [, spec] of allLeaves) expect(() => defaultOf(spec)).not.toThrow()
  })

  it('gives every key a one-line doc', () => {
    const bad = allLeaves.filter(([, spec]) => spec.doc.trim() === '' || spec.doc.includes('\n')).map(([path]) => path)
    expect(bad).toEqual([])
  })
})
