import { validateConfigText } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type { LogFormat } from '../logger.js'
import type { SluiceServer } from '../server.js'
import { CliError, parseCommand, renderCommandHelp, stringOption, type CommandSpec } from './args.js'
import { formatProblems, readConfigFile } from './files.js'

export const serveSpec: CommandSpec = {
  name: 'serve',
  summary: 'run the broker',
  positionals: [],
  options: {
    config: { type: 'string', short: 'c', value: 'FILE', default: 'config/sluice.yaml', doc: 'the configuration file' },
    'log-format': { type: 'string', value: 'json|pretty', doc: 'json: one object a line, for collectors; pretty: readable lines (default: pretty on a terminal, json otherwise)' },
  },
  description: `Runs the broker with the listeners, streams and groups of one configuration file. An invalid
file is refused with every problem listed (as \`sluice validate\` lists them), and a port that is
taken is named with the key to change. SIGINT or SIGTERM stops it: long polls are answered at
once, and the whole stop takes at most server.shutdownTimeout (5s); a second signal exits at once.
SIGHUP reloads the TLS listeners' certificates and keys (and cluster.replication.tls); open
connections keep theirs.
The log goes to stdout at server.log.level.`,
  examples: [
    'sluice serve                                   # config/sluice.yaml',
    'sluice serve --config /etc/sluice/sluice.yaml --log-format json',
    'SLUICE_DATA_DIR=/srv/sluice sluice serve       # ${SLUICE_DATA_DIR} in the file',
  ],
}

/** The listener names server.ts puts in a failed start's message, and the key that moves each. */
const portKeys: Readonly<Record<string, string>> = {
  HTTP: 'server.http.port',
  NDJSON: 'server.ndjson.port',
  AMQP: 'server.amqp.port',
  'syslog TCP': 'server.syslog.port',
  'syslog UDP': 'server.syslog.port',
}

function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code
  }
  return undefined
}

/** A failed start as one line: a taken or forbidden port names its listener and the key to change. */
export function startFailure(err: unknown, file: string): string {
  const message = err instanceof Error ? err.message : String(err)
  const door = /^cannot start: (.+?) listener on (\S+?):/.exec(message)
  const key = door === null ? undefined : portKeys[door[1]!]
  const errno = errnoOf(err)
  if (door !== null && key !== undefined) {
    const where = /^cannot start: .+? listener on (\S+): /.exec(message)?.[1] ?? door[2]!
    if (errno === 'EADDRINUSE') return `cannot start: the ${door[1]} listener cannot listen on ${where}: another program is using that port (EADDRINUSE); stop it, or change ${key} in ${file}`
    if (errno === 'EACCES') return `cannot start: the ${door[1]} listener may not listen on ${where} (EACCES): ports below 1024 need privileges; change ${key} in ${file}`
    if (errno === 'EADDRNOTAVAIL') return `cannot start: the ${door[1]} listener cannot listen on ${where}: no interface of this machine has that address (EADDRNOTAVAIL); change its host in ${file}`
  }
  return message
}

function logFormat(raw: string | undefined): LogFormat {
  if (raw === undefined) return process.stdout.isTTY ? 'pretty' : 'json'
  if (raw === 'json' || raw === 'pretty') return raw
  throw new CliError(`--log-format takes json or pretty, not "${raw}"`)
}

export async function serve(args: readonly string[]): Promise<number> {
  const p = parseCommand(serveSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(serveSpec))
    return 0
  }
  const file = stringOption(p.values.config) ?? 'config/sluice.yaml'
  const format = logFormat(stringOption(p.values['log-format']))
  const text = await readConfigFile(file)
  const result = validateConfigText(text, { source: file, env: process.env })
  if (!result.ok) {
    process.stderr.write(formatProblems(file, result.problems))
    return 2
  }
  const config = result.config
  // The server and its dependencies load only for `serve`: the other commands, help and a
  // mistake on the command line start in a fraction of the time.
  const [{ createLogger }, { startServer }] = await Promise.all([import('../logger.js'), import('../server.js')])
  const logger = createLogger(config.server.log.level, process.stdout, format)
  logger.info({ config: file, dataDir: config.server.dataDir, node: process.version, pid: process.pid }, 'starting')
  // Signals are handled from the start: one during recovery stops the server as soon as it is up.
  let server: SluiceServer | undefined
  let stopRequested = false
  let signals = 0
  const stop = (s: SluiceServer): void => {
    s.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed')
        process.exit(1)
      },
    )
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(130)
    }
    logger.info({ signal }, 'stopping')
    stopRequested = true
    if (server !== undefined) stop(server)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // SIGHUP reloads the TLS certificates and keys (the configuration file is not read again); open
  // connections keep theirs, and each listener logs whether it took the new files. Handled from
  // the start too, so one during recovery does not end the process: the files are read at start.
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, server === undefined ? 'SIGHUP while starting: the TLS files are being read now' : 'reloading TLS certificates')
    server?.reloadTls()
  })
  try {
    server = await startServer(config, logger)
  } catch (err) {
    // Said once, on stderr: a person reads it, and so does `docker logs`. A failure that is not
    // one of ours is a bug: its stack goes with it.
    process.stderr.write(`sluice serve: ${startFailure(err, file)}\n`)
    if (!(err instanceof SluiceError)) process.stderr.write(`${(err as Error).stack ?? ''}\n`)
    return 1
  }
  if (stopRequested) stop(server)
  return new Promise<number>(() => {}) // runs until a signal
}
