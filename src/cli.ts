#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { loadConfig, summarizeConfig, validateConfigText } from './config/index.js'
import { SluiceError } from './errors.js'
import { fsck, formatFsckReport } from './log/index.js'
import { createLogger } from './logger.js'
import { startServer } from './server.js'
import { readFile } from 'node:fs/promises'

const usage = `usage: sluice <command> [options]

commands:
  serve [--config FILE]        run the broker (default config: config/sluice.yaml)
  validate <FILE>              check a configuration file; prints every error, or a summary
  fsck <DATA_DIR> [--repair]   check every segment and index; --repair truncates and rebuilds
`

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
  return new Promise<number>(() => {}) // runs until a signal
}

async function validate(args: string[]): Promise<number> {
  const file = args[0]
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'validate':
      return validate(rest)
    case 'fsck':
      return fsckCommand(rest)
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
