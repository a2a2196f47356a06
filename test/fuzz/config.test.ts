// Fuzzing the configuration parser with mutated real configuration files.

import { describe, expect, it } from 'vitest'
import { fuzz, outcomes } from './run.js'

describe('fuzz (a few thousand cases; `npm run fuzz` runs a million)', () => {
  it('config-yaml: a frozen config or a list of problems, never an exception', async () => {
    const r = await fuzz('config-yaml', 2000)
    expect(outcomes(r)).toEqual(expect.arrayContaining(['valid', 'invalid (YAML syntax)', 'invalid (schema)']))
  })
})
