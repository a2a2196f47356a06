import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import { afterAll } from 'vitest'

/** Debian's chromium: nothing downloads a browser (.ci/run installs the package). */
export const chromiumPath = '/usr/bin/chromium'

/**
 * One headless Chromium for a whole test file, with a fresh profile, no network of its own
 * (updates, sync, QUIC probes) and closed after the file.
 */
export async function launchBrowser(): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'sluice-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
    colorScheme: 'light',
  })
  afterAll(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  return context
}
