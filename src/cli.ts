#!/usr/bin/env node
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { hashApiKey, hashPassword } from './auth/index.js'
import { loadConfig, summarizeConfig, validateConfigText } from './config/index.js'
import { SluiceError } from './errors.js'
import { fsck, formatFsckReport } from './log/index.js'
import { createLogger } from './logger.js'
import { startServer } from './server.js'
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { createInterface } from 'node:readline'

const usage = `usage: sluice <command> [options]

commands:
  serve [--config FILE]            run the broker (default config: config/sluice.yaml)
  validate [FILE | --config FILE]  check a configuration file; prints every error, or a summary
  publish <EXCHANGE> [--key K]     publish NDJSON from stdin, 1,000 lines a request
  tail <STREAM> [--from F] [--follow] [--limit N]
                                   print a stream's events as NDJSON (from: offset, ISO time,
                                   earliest, latest; default earliest)
  redrive <STREAM> [--limit N] [--reason R] [--group G]
                                   republish dead-lettered events to their original exchange
  fsck <DATA_DIR> [--repair]       check every segment and index; --repair truncates and rebuilds
  passwd [--api-key [--generate]]  print a passwordHash (scrypt) for auth.users, or a keyHash for
                                   auth.apiKeys, of a secret typed at the prompt or piped to stdin;
                                   --generate makes a random API key and prints it with its hash

publish, tail and redrive talk to a running server: --url (default http://127.0.0.1:7400, or SLUICE_URL).
Credentials: --user U (password from --password or SLUICE_PASSWORD), or an API key in SLUICE_TOKEN;
none: a loopback client acts as guest when the server allows it (auth.anonymous: loopback).
`
const defaultUrl = process.env.SLUICE_URL ?? 'http://127.0.0.1:7400'
const credentialOptions = { user: { type: 'string', short: 'u' }, password: { type: 'string' } } as const

/** Basic for --user, Bearer for SLUICE_TOKEN, nothing otherwise (anonymous). */
function authHeaders(values: { user?: string | undefined; password?: string | undefined }): Record<string, string> {
  if (values.user !== undefined) {
    const password = values.password ?? process.env.SLUICE_PASSWORD ?? ''
    return { authorization: `Basic ${Buffer.from(`${values.user}:${password}`, 'utf8').toString('base64')}` }
  }
  const token = process.env.SLUICE_TOKEN
  return token !== undefined && token !== '' ? { authorization: `Bearer ${token}` } : {}
}

const publishBatchLines = 1000
const publishBatchBytes = 4 * 1024 * 1024

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c', default: 'config/sluice.yaml' } } })
  let config
  try {
    config = await loadConfig(values.config)
  } catch (err) {
    const logger = createLogger('info')
    logger.error({ file: values.config, problems: err instanceof SluiceError ? err.details?.problems : undefined }, err instanceof Error ? err.message : String(err))
    return 1
  }
  const logger = createLogger(config.server.log.level)
  logger.info({ config: values.config, dataDir: config.server.dataDir, node: process.version, pid: process.pid }, 'starting')
  const server = await startServer(config, logger).catch((err: unknown) => {
    logger.error({ err }, 'start failed')
    return undefined
  })
  if (server === undefined) return 1
  let signals = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(130)
    }
    logger.info({ signal }, 'stopping')
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // SIGHUP reloads the TLS certificates and keys (the configuration file itself is not re-read);
  // open connections keep theirs. Each listener logs whether it took the new files.
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading TLS certificates')
    server.reloadTls()
  })
  return new Promise<number>(() => {}) // runs until a signal
}

async function validate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } })
  const file = values.config ?? positionals[0]
  if (file === undefined) {
    process.stderr.write(usage)
    return 2
  }
  const text = await readFile(file, 'utf8')
  const result = validateConfigText(text, { source: file, env: process.env })
  if (!result.ok) {
    process.stdout.write(`${file}: ${result.problems.length} error${result.problems.length === 1 ? '' : 's'}\n`)
    for (const p of result.problems) process.stdout.write(`  ${p}\n`)
    return 1
  }
  process.stdout.write(`${file}: ok\n${summarizeConfig(result.config)}\n`)
  return 0
}

async function fsckCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { repair: { type: 'boolean', default: false } } })
  const dir = positionals[0]
  if (dir === undefined) {
    process.stderr.write(usage)
    return 2
  }
  const report = await fsck(dir, { repair: values.repair })
  process.stdout.write(`${formatFsckReport(report)}\n`)
  return report.ok ? 0 : 1
}

async function httpError(res: Response): Promise<string> {
  const text = await res.text()
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } }
    return `${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? text}`
  } catch {
    return `${res.status}: ${text}`
  }
}

async function publish(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { key: { type: 'string', short: 'k' }, url: { type: 'string', default: defaultUrl }, ...credentialOptions } })
  const exchange = positionals[0]
  if (exchange === undefined) {
    process.stderr.write(usage)
    return 2
  }
  const endpoint = `${values.url}/v1/exchanges/${encodeURIComponent(exchange)}/publish${values.key === undefined ? '' : `?routingKey=${encodeURIComponent(values.key)}`}`
  const totals = { accepted: 0, duplicates: 0, unroutable: 0 }
  let lines: string[] = []
  let bytes = 0
  let firstLine = 1
  let lineNo = 0
  const send = async (): Promise<boolean> => {
    if (lines.length === 0) return true
    const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...authHeaders(values) }, body: lines.join('\n') })
    if (res.status !== 200) {
      process.stderr.write(`lines ${firstLine}-${firstLine + lines.length - 1}: ${await httpError(res)}\n`)
      return false
    }
    const r = (await res.json()) as typeof totals
    totals.accepted += r.accepted
    totals.duplicates += r.duplicates
    totals.unroutable += r.unroutable
    firstLine += lines.length
    lines = []
    bytes = 0
    return true
  }
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of rl) {
    lineNo++
    lines.push(line)
    bytes += line.length + 1
    if (lines.length >= publishBatchLines || bytes >= publishBatchBytes) if (!(await send())) return 1
  }
  if (!(await send())) return 1
  process.stdout.write(`${JSON.stringify({ lines: lineNo, ...totals })}\n`)
  return 0
}

/** Node's fetch failing to connect or losing its connection, with the system's reason. */
function networkReason(err: unknown): string | undefined {
  if (!(err instanceof TypeError) || err.message !== 'fetch failed') return undefined
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? 'the connection failed'
}

async function tail(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { from: { type: 'string', default: 'earliest' }, follow: { type: 'boolean', short: 'f', default: false }, limit: { type: 'string' }, url: { type: 'string', default: defaultUrl }, ...credentialOptions },
  })
  const stream = positionals[0]
  if (stream === undefined) {
    process.stderr.write(usage)
    return 2
  }
  let remaining = values.limit === undefined ? Number.POSITIVE_INFINITY : Number(values.limit)
  let from = values.from
  // Ctrl-C ends a tail at once: the long poll in flight is abandoned, not waited out.
  const interrupted = new AbortController()
  const onInterrupt = (): void => interrupted.abort()
  process.once('SIGINT', onInterrupt)
  let reached = false
  try {
    while (remaining > 0) {
      const page = Math.min(1000, remaining)
      let body: { events: unknown[]; nextOffset: number }
      try {
        const res = await fetch(`${values.url}/v1/streams/${encodeURIComponent(stream)}/events?from=${encodeURIComponent(from)}&limit=${page}${values.follow ? '&waitMs=10000' : ''}`, {
          headers: authHeaders(values),
          signal: interrupted.signal,
        })
        reached = true
        // A server starting or stopping answers 503 with Retry-After: a follower waits it out.
        if (res.status === 503 && values.follow) {
          await res.body?.cancel()
          const seconds = Number(res.headers.get('retry-after') ?? '1')
          await sleep(Math.min(Number.isFinite(seconds) ? seconds : 1, 5) * 1000, undefined, { signal: interrupted.signal })
          continue
        }
        if (res.status !== 200) {
          process.stderr.write(`${await httpError(res)}\n`)
          return 1
        }
        body = (await res.json()) as { events: unknown[]; nextOffset: number }
      } catch (err) {
        if (interrupted.signal.aborted) return 0
        const reason = networkReason(err)
        if (reason === undefined) throw err
        if (!reached) {
          process.stderr.write(`sluice tail: cannot reach ${values.url} (${reason}): is \`sluice serve\` running?\n`)
          return 2
        }
        process.stderr.write(`sluice tail: lost the server at ${values.url} (${reason}); resume with --from ${from}\n`)
        return 1
      }
      for (const e of body.events) process.stdout.write(`${JSON.stringify(e)}\n`)
      remaining -= body.events.length
      from = String(body.nextOffset)
      if (body.events.length === 0 && !values.follow) break
    }
    return 0
  } finally {
    process.off('SIGINT', onInterrupt)
  }
}

async function redrive(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { limit: { type: 'string' }, reason: { type: 'string' }, group: { type: 'string' }, url: { type: 'string', default: defaultUrl }, ...credentialOptions },
  })
  const stream = positionals[0]
  if (stream === undefined) {
    process.stderr.write(usage)
    return 2
  }
  const filter = { ...(values.reason !== undefined ? { reason: values.reason } : {}), ...(values.group !== undefined ? { group: values.group } : {}) }
  const body = { ...(values.limit !== undefined ? { limit: Number(values.limit) } : {}), filter }
  const res = await fetch(`${values.url}/v1/streams/${encodeURIComponent(stream)}/redrive`, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(values) }, body: JSON.stringify(body) })
  if (res.status !== 200) {
    process.stderr.write(`${await httpError(res)}\n`)
    return 1
  }
  process.stdout.write(`${await res.text()}\n`)
  return 0
}

/** A secret from a prompt that does not echo it (asked twice), or the first line of piped stdin. */
async function readSecret(what: string): Promise<string> {
  const stdin = process.stdin
  if (!stdin.isTTY) {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(chunk as Buffer)
    return (Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '').replace(/\r$/, '')
  }
  const ask = (prompt: string): Promise<string> =>
    new Promise((resolve, reject) => {
      process.stderr.write(prompt)
      let typed = ''
      stdin.setRawMode(true)
      stdin.resume()
      const onData = (data: Buffer): void => {
        for (const ch of data.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            done()
            process.stderr.write('\n')
            resolve(typed)
            return
          }
          if (ch === '\u0003') {
            done()
            process.stderr.write('\n')
            reject(new Error('interrupted'))
            return
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1)
          else typed += ch
        }
      }
      const done = (): void => {
        stdin.off('data', onData)
        stdin.setRawMode(false)
        stdin.pause()
      }
      stdin.on('data', onData)
    })
  const first = await ask(`${what}: `)
  const again = await ask(`${what} again: `)
  if (first !== again) throw new Error(`the two ${what}s differ`)
  return first
}

async function passwd(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'api-key': { type: 'boolean', default: false }, generate: { type: 'boolean', default: false } } })
  if (values.generate) {
    if (!values['api-key']) {
      process.stderr.write('--generate makes API keys: sluice passwd --api-key --generate\n')
      return 2
    }
    // 32 random bytes: far beyond guessing, so one SHA-256 is enough to store it.
    const key = randomBytes(32).toString('base64url')
    process.stdout.write(`key: ${key}\nkeyHash: ${hashApiKey(key)}\n`)
    return 0
  }
  const secret = await readSecret(values['api-key'] ? 'API key' : 'Password')
  if (secret === '') {
    process.stderr.write('empty secret; nothing printed\n')
    return 1
  }
  process.stdout.write(`${values['api-key'] ? hashApiKey(secret) : await hashPassword(secret)}\n`)
  return 0
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'validate':
      return validate(rest)
    case 'fsck':
      return fsckCommand(rest)
    case 'publish':
      return publish(rest)
    case 'tail':
      return tail(rest)
    case 'redrive':
      return redrive(rest)
    case 'passwd':
      return passwd(rest)
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(usage)
      return command === undefined ? 2 : 0
    default:
      process.stderr.write(`unknown command "${command}"\n${usage}`)
      return 2
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
