import { readFileSync } from 'node:fs'

let known: string | undefined

/** The package's version (`sluice --version`, the OpenAPI document); read once. */
export function sluiceVersion(): string {
  if (known !== undefined) return known
  known = 'unknown'
  // dist/src/version.js and src/version.ts both find the package file above them.
  for (const up of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'sluice' && pkg.version !== undefined) {
        known = pkg.version
        break
      }
    } catch {
      // not here
    }
  }
  return known
}
