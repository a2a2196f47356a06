// The ceiling for the HTTP publish benchmark (issue 4): a bare fastify server doing only what any
// publish route must do before it can store anything. It takes the body as a buffer, like
// Sluice's route; NDJSON is split on \n and each line JSON.parsed, application/json is parsed
// whole; it answers the same shape as Sluice. Nothing is routed, stored or fsynced.
//
// Run by benchmarks/http.bench.ts as its own child process:
//   node dist/benchmarks/bare-fastify.js --port=17401
// It prints `listening <url>` on stdout once up, and exits on SIGTERM or SIGINT.

import { fastify } from 'fastify'

const bodyLimit = 16 * 1024 * 1024

function portArg(argv: readonly string[]): number {
  for (const a of argv) {
    const m = /^--port=(\d+)$/.exec(a)
    if (m !== null) return Number(m[1])
  }
  return 17401
}

function countNdjson(buf: Buffer): number {
  let n = 0
  let start = 0
  while (start < buf.length) {
    let end = buf.indexOf(0x0a, start)
    if (end === -1) end = buf.length
    if (end > start) {
      JSON.parse(buf.toString('utf8', start, end))
      n++
    }
    start = end + 1
  }
  return n
}

async function main(): Promise<void> {
  const app = fastify({ logger: false, bodyLimit })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  app.post<{ Params: { exchange: string } }>('/v1/exchanges/:exchange/publish', async (req, reply) => {
    const body = req.body
    if (!Buffer.isBuffer(body) || body.length === 0) return reply.status(400).send({ error: { code: 'bad_request', message: 'empty body' } })
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    let n: number
    try {
      if (type === 'application/json') {
        const v: unknown = JSON.parse(body.toString('utf8'))
        n = Array.isArray(v) ? v.length : 1
      } else {
        n = countNdjson(body)
      }
    } catch (err) {
      return reply.status(400).send({ error: { code: 'bad_event', message: (err as Error).message } })
    }
    return { accepted: n, duplicates: 0, unroutable: 0 }
  })
  app.get('/healthz', async () => ({ status: 'ok' }))

  const port = portArg(process.argv.slice(2))
  await app.listen({ host: '127.0.0.1', port })
  process.stdout.write(`listening http://127.0.0.1:${port}\n`)
  const stop = (): void => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().catch((err: unknown) => {
  process.stderr.write(`bare-fastify: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
