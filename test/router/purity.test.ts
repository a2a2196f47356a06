import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, test } from 'vitest'

// The router is core code: it must stay pure (no I/O, no adapters), so it can run in any door and
// in tests without a disk or a socket.
test('src/router imports only itself and the error catalogue', async () => {
  const dir = join(import.meta.dirname, '../../src/router')
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'))
  expect(files.length).toBeGreaterThan(0)
  for (const file of files) {
    const source = await readFile(join(dir, file), 'utf8')
    const specifiers = [...source.matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'/g)].map((m) => m[1] ?? m[2])
    for (const spec of specifiers) expect(spec, `${file} imports ${spec}`).toMatch(/^(\.\/[\w-]+\.js|\.\.\/errors\.js)$/)
  }
})
