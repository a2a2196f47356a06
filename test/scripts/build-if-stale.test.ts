import { spawnSync } from 'node:child_process'
import { mkdir, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/temp.js'

const script = fileURLToPath(new URL('../../scripts/build-if-stale.mjs', import.meta.url))

function run(root: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...process.env, SLUICE_BUILD_ROOT: root }, encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

async function file(root: string, path: string, text: string, mtimeSec?: number): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true })
  await writeFile(join(root, path), text)
  if (mtimeSec !== undefined) await utimes(join(root, path), mtimeSec, mtimeSec)
}

/**
 * A tree shaped like the repository, with a stand-in for tsc that writes the stamp and a CLI
 * that prints its arguments, so the script's decisions are seen without a real compile.
 */
async function tree(): Promise<string> {
  const root = await tempDir()
  await file(root, 'src/cli.ts', '', 1000)
  await file(root, 'src/cli/tail.ts', '', 1000)
  await file(root, 'benchmarks/log.bench.ts', '', 1000)
  await file(root, 'tsconfig.json', '{}', 1000)
  await file(root, 'tsconfig.build.json', '{}', 1000)
  await file(root, 'package-lock.json', '{}', 1000)
  await file(
    root,
    'node_modules/typescript/bin/tsc',
    `const { mkdirSync, writeFileSync } = require('node:fs')
const { join } = require('node:path')
mkdirSync(join(process.cwd(), 'dist/src'), { recursive: true })
writeFileSync(join(process.cwd(), 'dist/.tsbuildinfo'), '{}')
writeFileSync(join(process.cwd(), 'dist/src/cli.js'), 'process.stdout.write(JSON.stringify(process.argv.slice(2)))')
`,
  )
  return root
}

describe('scripts/build-if-stale.mjs (npm start, npm run sluice)', () => {
  it('a fresh clone builds first, then runs the CLI with its arguments; the next run does not build', async () => {
    const root = await tree()
    expect(run(root, '--check')).toEqual({ code: 1, stdout: 'stale: no build yet\n', stderr: '' })
    const first = run(root, '--run', 'tail', 'app-logs', '-n', '5')
    expect(first.code).toBe(0)
    expect(first.stdout).toBe('["tail","app-logs","-n","5"]')
    expect(first.stderr).toMatch(/^sluice: compiling TypeScript \(no build yet\)\.\.\.\nsluice: compiled in [\d.]+ s\n$/)
    const second = run(root, '--run', '--help')
    expect(second).toEqual({ code: 0, stdout: '["--help"]', stderr: '' })
  })

  it.each(['src/cli/tail.ts', 'benchmarks/log.bench.ts', 'tsconfig.build.json', 'package-lock.json'])('a newer %s makes the build stale', async (changed) => {
    const root = await tree()
    await file(root, 'dist/.tsbuildinfo', '{}', 2000)
    await file(root, 'dist/src/cli.js', '', 2000)
    expect(run(root, '--check')).toEqual({ code: 0, stdout: 'fresh\n', stderr: '' })
    await utimes(join(root, changed), 3000, 3000)
    expect(run(root, '--check')).toEqual({ code: 1, stdout: `stale: ${changed} changed\n`, stderr: '' })
    // A build makes it fresh again, even when tsc had nothing to write.
    expect(run(root).code).toBe(0)
    expect(run(root, '--check').stdout).toBe('fresh\n')
  })

  it('builds the management UI when src/ui changed, and only the UI', async () => {
    const root = await tree()
    await file(root, 'dist/.tsbuildinfo', '{}', 2000)
    await file(root, 'dist/src/cli.js', '', 2000)
    await file(root, 'src/ui/main.tsx', '', 1000)
    // A stand-in for scripts/build-ui.mjs that writes what the real one does.
    await file(
      root,
      'scripts/build-ui.mjs',
      `import { mkdirSync, writeFileSync } from 'node:fs'
mkdirSync('dist/ui', { recursive: true })
writeFileSync('dist/ui/app.js', '')
writeFileSync('dist/ui/index.html', '')
`,
    )
    expect(run(root, '--check')).toEqual({ code: 1, stdout: 'stale: no UI build yet\n', stderr: '' })
    const first = run(root)
    expect(first.code).toBe(0)
    expect(first.stderr).toBe('sluice: building the UI (no UI build yet)...\n')
    expect(run(root, '--check').stdout).toBe('fresh\n')
    // src/ui is the UI's own: a change there does not make tsc's build stale.
    await utimes(join(root, 'src/ui/main.tsx'), Date.now() / 1000 + 10, Date.now() / 1000 + 10)
    expect(run(root, '--check').stdout).toBe('stale: src/ui/main.tsx changed\n')
    expect(run(root).stderr).toBe('sluice: building the UI (src/ui/main.tsx changed)...\n')
  })

  it('a failed build stops, saying so, and runs nothing', async () => {
    const root = await tree()
    await file(root, 'node_modules/typescript/bin/tsc', 'process.stderr.write("src/cli.ts(1,1): error TS1005\\n"); process.exit(2)')
    const r = run(root, '--run', 'serve')
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('src/cli.ts(1,1): error TS1005')
    expect(r.stderr).toMatch(/sluice: the build failed \(tsc exited with 2\)/)
  })
})
