// The commands that read files rather than a server: validate (a configuration) and fsck (a data
// dir). A file that is not there is said in a line, not as Node's ENOENT.

import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { SluiceError } from '../errors.js'
import { lockMetaStore, metaDir, type DataDirLock } from '../meta/index.js'
import { summarizeConfig, validateConfigText } from '../config/index.js'
import { fsck, formatFsckReport } from '../log/index.js'
import { CliError, parseCommand, renderCommandHelp, stringOption, type CommandSpec } from './args.js'

/** A system error as words: "no such file" rather than ENOENT. */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EISDIR':
      return 'it is a directory, not a file'
    case 'ENOTDIR':
      return 'a part of the path is not a directory'
    default:
      return (err as Error).message
  }
}

/** A configuration file's text, or a CliError naming the file and why it cannot be read. */
export async function readConfigFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${fileProblem(err)}`, 2, file === 'config/sluice.yaml' ? 'run it from the repository root, or name a file with --config FILE' : undefined)
  }
}

/** What validate and serve print for an invalid file: a count, then one problem a line with its path and line. */
export function formatProblems(file: string, problems: readonly string[]): string {
  return `${file}: ${problems.length} error${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  ${p}\n`).join('')}`
}

export const validateSpec: CommandSpec = {
  name: 'validate',
  summary: 'check a configuration file without starting',
  positionals: [{ name: 'FILE', required: false, doc: 'the file to check (or --config FILE)' }],
  options: { config: { type: 'string', short: 'c', value: 'FILE', doc: 'the file to check' } },
  description: `Checks a configuration file as \`sluice serve\` would, without starting: every problem is
listed, one a line, with its YAML path and line. A valid file gets a summary of what it declares.
Exit code 0 when valid, 1 when not, 2 when the file cannot be read.`,
  examples: ['sluice validate config/sluice.yaml', 'SLUICE_DATA_DIR=/srv/sluice sluice validate --config prod.yaml   # ${VARS} are substituted'],
}

export async function validate(args: readonly string[]): Promise<number> {
  const p = parseCommand(validateSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(validateSpec))
    return 0
  }
  const file = stringOption(p.values.config) ?? p.positionals[0]
  if (file === undefined) throw new CliError('name the file to check: sluice validate FILE', 2, 'run `sluice validate --help` for its options and examples')
  const text = await readConfigFile(file)
  const result = validateConfigText(text, { source: file, env: process.env })
  if (!result.ok) {
    process.stdout.write(formatProblems(file, result.problems))
    return 1
  }
  process.stdout.write(`${file}: ok\n${summarizeConfig(result.config)}\n`)
  return 0
}

export const fsckSpec: CommandSpec = {
  name: 'fsck',
  summary: "check (and with --repair, fix) a data dir's segments and indexes",
  positionals: [{ name: 'DATA_DIR', required: true, doc: "a server's dataDir, or one stream's directory in it" }],
  options: { repair: { type: 'boolean', doc: 'truncate each damaged log at its first bad batch and rebuild its indexes' } },
  description: `Reads every segment of every stream under DATA_DIR and checks each batch's CRC, the offsets
and the indexes. Without --repair nothing is changed. --repair truncates a log at its first bad
batch (what follows it is lost) and rebuilds indexes; it refuses a data dir a running server holds.
Exit code 0 when clean (or repaired), 1 when damage is left, 2 when DATA_DIR cannot be read.`,
  examples: ['sluice fsck ./data', 'sluice fsck /var/lib/sluice --repair   # with the server stopped'],
}

export async function fsckCommand(args: readonly string[]): Promise<number> {
  const p = parseCommand(fsckSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(fsckSpec))
    return 0
  }
  const dir = p.positionals[0]!
  const found = await stat(dir).catch((err: unknown) => {
    throw new CliError(`cannot read ${dir}: ${fileProblem(err)}`)
  })
  if (!found.isDirectory()) throw new CliError(`${dir} is not a directory: name a data dir (server.dataDir) or a stream's directory in it`)
  const repair = p.values.repair === true
  // A repair truncates files a running server may be writing: it holds the server's lock meanwhile.
  const lock = repair ? await lockDataDir(dir) : undefined
  try {
    const report = await fsck(dir, { repair })
    process.stdout.write(`${formatFsckReport(report)}\n`)
    return report.ok ? 0 : 1
  } finally {
    await lock?.release()
  }
}

/** The data dir `dir` is, or holds `dir` as one stream's directory (<dataDir>/streams/<name>). */
async function dataDirOf(dir: string): Promise<string> {
  const isDir = (path: string): Promise<boolean> =>
    stat(path).then(
      (s) => s.isDirectory(),
      () => false,
    )
  if (await isDir(metaDir(dir))) return dir
  const parent = dirname(resolve(dir))
  return basename(parent) === 'streams' && (await isDir(metaDir(dirname(parent)))) ? dirname(parent) : dir
}

async function lockDataDir(dir: string): Promise<DataDirLock> {
  const dataDir = await dataDirOf(dir)
  try {
    return await lockMetaStore(metaDir(dataDir))
  } catch (err) {
    if (err instanceof SluiceError && err.code === 'SLUICE_ERR_META_LOCKED') {
      throw new CliError(`refusing to repair ${dataDir}: a running server holds it (its metadata store is locked)`, 1, 'stop the server first; without --repair, fsck only reads')
    }
    throw err
  }
}
