// The management UI's files (src/ui, built by scripts/build-ui.mjs into dist/ui), served by the
// HTTP listener. They hold no data and are the same for everyone, so they need no login: the page
// logs in to the /v1 API itself. A browser gets a login form, never the browser's own Basic dialog.
//
// `GET /` is also the Elasticsearch handshake (doors.ts), which agents make before a bulk. The rule:
// a request whose Accept names text/html gets the UI. Every browser sends that when it opens a
// page; no Elasticsearch client does (they ask for application/json or Elastic's vendor types).
// The files themselves are under /ui/, a path no API, door or Elasticsearch index route uses for
// GET (an index named "ui" is only ever HEAD /ui or POST /ui/_bulk).
//
// This runs as an onRequest hook, before the login checks, rather than as routes: the UI's paths
// are not API routes (no permission, not in docs/http-api.md), and `GET /` must stay the door's.

import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** The directory holding package.json: the repository, or /app in the container image. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  // From src/ingest/http (tests run the sources) or dist/src/ingest/http (the build).
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) return process.cwd()
    dir = up
  }
  return dir
}

const root = packageRoot()

/** Where `npm run build` puts the UI. */
export const uiDir = join(root, 'dist', 'ui')

/** The version in package.json, for the overview. */
export const serverVersion: string = (() => {
  try {
    const v = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown }).version
    return typeof v === 'string' ? v : 'unknown'
  } catch {
    return 'unknown'
  }
})()

const types: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
}

// Only the page's own files: no CDN, no inline script. Styles may be inline because uPlot and the
// charts size elements through style attributes.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/** The rule for `GET /`: the UI when the client asks for HTML (a browser opening the page). */
export function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept
  return typeof accept === 'string' && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept)
}

const fileName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

async function send(reply: FastifyReply, name: string, head: boolean): Promise<FastifyReply> {
  const ext = name.slice(name.lastIndexOf('.'))
  const type = types[ext]
  let body: Buffer
  try {
    if (type === undefined) throw new Error('not a UI file type')
    body = await readFile(join(uiDir, name))
  } catch {
    const missing = name === 'index.html' ? 'The management UI is not built: run `npm run build` (it writes dist/ui).' : `No UI file ${name}.`
    return reply.status(404).type('text/plain; charset=utf-8').send(missing)
  }
  void reply
    .type(type)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', contentSecurityPolicy)
  return head ? reply.header('content-length', body.length).send() : reply.send(body)
}

/** Serves the UI's files when `enabled` (server.http.ui); call before the login checks (installAccess). */
export function installUi(app: FastifyInstance, enabled: boolean): void {
  if (!enabled) return
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return
    const path = req.url.split('?', 1)[0] ?? ''
    const head = req.method === 'HEAD'
    if (path === '/' && wantsHtml(req)) return send(reply, 'index.html', head)
    if (!path.startsWith('/ui/')) return
    const name = path.slice('/ui/'.length)
    if (!fileName.test(name)) return reply.status(404).type('text/plain; charset=utf-8').send(`No UI file ${name}.`)
    return send(reply, name, head)
  })
}
