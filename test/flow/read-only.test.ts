import { spawnSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.js'
import { startServer } from '../../src/server.js'
import { testConfig } from '../helpers/server.js'
import { mountTmpfs } from '../helpers/tmpfs.js'

describe('a read-only data dir', () => {
  it('stops the start with the real reason, not ENOENT', async () => {
    const dir = await mountTmpfs(1024 * 1024)
    const dataDir = join(dir, 'data')
    await mkdir(dataDir)
    const r = spawnSync('mount', ['-o', 'remount,ro', dir], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    const err = await startServer(testConfig(dataDir), createLogger('silent')).then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(err?.message).toContain(`opening data dir ${dataDir}: it is not writable: it is on a read-only file system (EROFS)`)
  })
})
