// `sluice <command>`: which command, its help, and how any failure is said. A CliError is a
// mistake the user can fix: one line on stderr, with a hint, and its exit code (2: the command
// line, a file or the server could not be used; 1: the command ran and failed). Anything else is
// a bug, printed with its stack.

import { SluiceError } from '../errors.js'
import { CliError, didYouMean, renderCommandHelp, type CommandSpec } from './args.js'
import { cluster, clusterSpec } from './cluster.js'
import { fsckCommand, fsckSpec, validate, validateSpec } from './files.js'
import { passwd, passwdSpec } from './passwd.js'
import { publish, publishSpec } from './publish.js'
import { redrive, redriveSpec } from './redrive.js'
import { serve, serveSpec } from './serve.js'
import { tail, tailSpec } from './tail.js'
import { sluiceVersion } from '../version.js'

interface Command {
  readonly spec: CommandSpec
  readonly run: (args: readonly string[]) => Promise<number>
}

export const commands: Readonly<Record<string, Command>> = {
  serve: { spec: serveSpec, run: serve },
  validate: { spec: validateSpec, run: validate },
  publish: { spec: publishSpec, run: publish },
  tail: { spec: tailSpec, run: tail },
  redrive: { spec: redriveSpec, run: redrive },
  fsck: { spec: fsckSpec, run: fsckCommand },
  passwd: { spec: passwdSpec, run: passwd },
  cluster: { spec: clusterSpec, run: cluster },
}

export function renderUsage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length)) + 3
  return `usage: sluice <command> [options]

Sluice, a log broker: publish over HTTP, AMQP 0-9-1, NDJSON or syslog; read streams and consumer groups.

commands:
${Object.values(commands)
  .map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`)
  .join('\n')}

options:
  -h, --help${' '.repeat(Math.max(1, width - 7))}this help; \`sluice <command> --help\` shows a command's options and examples
  --version${' '.repeat(Math.max(1, width - 6))}print the version

examples:
  sluice serve                                   # config/sluice.yaml, the HTTP API on 127.0.0.1:7400
  sluice validate config/sluice.yaml
  echo '{"service":"web","level":"info","msg":"hi"}' | sluice publish logs
  sluice tail app-logs -f

publish, tail, redrive and cluster talk to a running server: --url, or $SLUICE_URL (default http://127.0.0.1:7400).
Exit codes: 0 done; 1 the command failed; 2 a usage error, a file that cannot be read, or no server.
`
}

/** Runs one command line; resolves with the exit code and never rejects. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) {
    process.stderr.write(renderUsage())
    return 2
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const about = rest[0] === undefined ? undefined : commands[rest[0]]
    if (rest[0] !== undefined && about === undefined) return report('help', unknownCommand(rest[0]))
    process.stdout.write(about === undefined ? renderUsage() : renderCommandHelp(about.spec))
    return 0
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(`sluice ${sluiceVersion()}\n`)
    return 0
  }
  const found = commands[command]
  if (found === undefined) return report(undefined, unknownCommand(command))
  try {
    return await found.run(rest)
  } catch (err) {
    return report(command, err)
  }
}

function unknownCommand(word: string): CliError {
  const what = word.startsWith('-') ? `unknown option ${word}${didYouMean(word, ['--help', '--version'])}` : `unknown command "${word}"${didYouMean(word, Object.keys(commands))}`
  return new CliError(what, 2, 'run `sluice --help` for the commands')
}

function report(command: string | undefined, err: unknown): number {
  const who = command === undefined ? 'sluice' : `sluice ${command}`
  if (err instanceof CliError) {
    process.stderr.write(`${who}: ${err.message}\n${err.hint === undefined ? '' : `${err.hint}\n`}`)
    return err.exitCode
  }
  // The server's own errors (a corrupt segment found by fsck, a locked store) say what to do.
  if (err instanceof SluiceError) {
    process.stderr.write(`${who}: ${err.message}\n`)
    return 1
  }
  process.stderr.write(`${who}: unexpected error (a bug; please report it with what follows)\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  return 1
}
