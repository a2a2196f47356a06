// Command lines in, typed options out, and every mistake said in one line a person can act on:
// an unknown option names the closest real one, a bad value says what was expected. Nothing here
// prints; main.ts turns a CliError into its line and exit code.

import { parseArgs } from 'node:util'

/** A failure the user can fix: printed as one line, no stack, with its exit code (2 by default). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
    /** Printed after the message, e.g. where to read more. */
    readonly hint?: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  /** The value's placeholder in help, e.g. FILE or N. */
  readonly value?: string
  readonly default?: string | boolean
  readonly doc: string
}

export interface PositionalSpec {
  readonly name: string
  readonly required: boolean
  readonly doc: string
}

export interface CommandSpec {
  readonly name: string
  /** One line for `sluice --help`. */
  readonly summary: string
  readonly positionals: readonly PositionalSpec[]
  readonly options: Readonly<Record<string, OptionSpec>>
  /** Paragraphs for `sluice <command> --help`. */
  readonly description: string
  /** Command lines, each with a comment after `#`. */
  readonly examples: readonly string[]
}

export interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | undefined>>
  readonly positionals: readonly string[]
  readonly help: boolean
}

const helpOption: OptionSpec = { type: 'boolean', short: 'h', doc: 'show this help' }

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length]!
}

/** The closest candidate, if close enough to be a typo (or a prefix of it). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 3 ? 1 : distance(word, c)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

export function didYouMean(word: string, candidates: readonly string[]): string {
  const near = closest(word, candidates)
  return near === undefined ? '' : ` (did you mean ${near}?)`
}

/** Parses one command's arguments; `--help` anywhere before `--` asks for help and nothing else is checked. */
export function parseCommand(spec: CommandSpec, args: readonly string[]): Parsed {
  const end = args.indexOf('--')
  if ((end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')) return { values: {}, positionals: [], help: true }
  const options = { ...spec.options, help: helpOption }
  let parsed
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }])),
    })
  } catch (err) {
    throw usageError(spec, err, options)
  }
  const { values, positionals } = parsed
  if (positionals.length > spec.positionals.length) {
    const extra = positionals[spec.positionals.length]!
    throw new CliError(extra.startsWith('-') ? `unknown option ${extra}` : `unexpected argument "${extra}"`, 2, helpHint(spec))
  }
  const missing = spec.positionals.find((p, i) => p.required && positionals[i] === undefined)
  if (missing !== undefined) throw new CliError(`missing ${missing.name}`, 2, helpHint(spec))
  return { values: values as Parsed['values'], positionals, help: false }
}

export const helpHint = (spec: CommandSpec): string => `run \`sluice ${spec.name} --help\` for its options and examples`

function usageError(spec: CommandSpec, err: unknown, options: Readonly<Record<string, OptionSpec>>): CliError {
  const code = (err as { code?: string }).code
  const message = (err as Error).message
  const names = Object.keys(options).map((n) => `--${n}`)
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const opt = /'([^']+)'/.exec(message)?.[1] ?? message
    const long = opt.startsWith('--') ? opt.split('=')[0]! : opt
    return new CliError(`unknown option ${long}${didYouMean(long, names)}`, 2, helpHint(spec))
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    // "Option '-n, --limit <value>' argument missing", "Option '--follow' does not take an argument"
    const name = /--([\w-]+)/.exec(message)?.[1] ?? ''
    const o = options[name]
    const long = `--${name}`
    if (o?.type === 'boolean') return new CliError(`option ${long} takes no value`, 2, helpHint(spec))
    return new CliError(`option ${long} needs a value${o?.value !== undefined ? ` (${o.value})` : ''}`, 2, helpHint(spec))
  }
  return new CliError(message, 2, helpHint(spec))
}

/** A whole number given on the command line, at least `min`. */
export function wholeNumber(raw: string | boolean | undefined, option: string, min = 1): number | undefined {
  if (raw === undefined || typeof raw === 'boolean') return undefined
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw new CliError(`${option} takes a whole number from ${min} up, not "${raw}"`)
  }
  return Number(raw)
}

export function stringOption(raw: string | boolean | undefined): string | undefined {
  return typeof raw === 'string' ? raw : undefined
}

/** `sluice <command> --help`. */
export function renderCommandHelp(spec: CommandSpec): string {
  const args = spec.positionals.map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`)).join(' ')
  const lines = [`usage: sluice ${spec.name}${args === '' ? '' : ` ${args}`} [options]`, '', ...spec.description.split('\n').map((l) => (l === '' ? '' : `  ${l}`)), '']
  if (spec.positionals.length > 0) {
    lines.push('arguments:')
    for (const p of spec.positionals) lines.push(`  ${p.name.padEnd(22)}${p.doc}`)
    lines.push('')
  }
  lines.push('options:')
  for (const [name, o] of Object.entries({ ...spec.options, help: helpOption })) {
    const flag = `${o.short !== undefined ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`
    const dflt = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : ''
    lines.push(`  ${flag.padEnd(22)}${flag.length >= 22 ? `\n  ${' '.repeat(22)}` : ''}${o.doc}${dflt}`)
  }
  lines.push('', 'examples:')
  for (const e of spec.examples) lines.push(`  ${e}`)
  return `${lines.join('\n')}\n`
}
