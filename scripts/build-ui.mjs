#!/usr/bin/env node
// Builds the management UI (src/ui) into static files: dist/ui/index.html, app.js and app.css.
// esbuild bundles Preact, uPlot and the pages into one minified script and one stylesheet; the
// page loads nothing else, so it works offline and under a strict Content-Security-Policy.
//
//   node scripts/build-ui.mjs                 build into dist/ui
//   node scripts/build-ui.mjs --outdir DIR    build into DIR (the size test builds into a temp dir)

import { copyFile, mkdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const at = process.argv.indexOf('--outdir')
const outdir = at > 0 ? process.argv[at + 1] : join(root, 'dist', 'ui')

const started = Date.now()
await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })
await build({
  entryPoints: { app: join(root, 'src', 'ui', 'main.tsx') },
  outdir,
  bundle: true,
  minify: true,
  format: 'esm',
  // Browsers of the last few years: <dialog>, fetch streams, AbortSignal, CSS nesting not needed.
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
})
await copyFile(join(root, 'src', 'ui', 'index.html'), join(outdir, 'index.html'))
process.stderr.write(`sluice: built the UI into ${outdir} in ${Date.now() - started} ms\n`)
