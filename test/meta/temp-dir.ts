import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { openMeta, type MetaOptions, type MetaStore } from '../../src/meta/index.js'

/** A fresh directory for this test, removed when the test finishes. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-meta-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A store in a fresh directory. Stores opened through `open` are closed when the test
 * finishes, before the directory is removed (one hook, so the order is fixed).
 */
export async function tempMeta(opts?: MetaOptions): Promise<{ dir: string; meta: MetaStore; open: (o?: MetaOptions) => Promise<MetaStore> }> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-meta-'))
  const dir = join(root, 'meta')
  const opened: MetaStore[] = []
  onTestFinished(async () => {
    for (const m of opened) await m.close()
    await rm(root, { recursive: true, force: true })
  })
  const open = async (o?: MetaOptions): Promise<MetaStore> => {
    const m = await openMeta(dir, o)
    opened.push(m)
    return m
  }
  return { dir, meta: await open(opts), open }
}
