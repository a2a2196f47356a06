// The configuration module's public surface: text or a file in, a typed and frozen Config out.

import { readFile } from 'node:fs/promises'
import { errors } from '../errors.js'
import { buildConfig } from './build.js'
import type { Env } from './env.js'
import { configSpec } from './keys.js'
import { Problems } from './problems.js'
import { checkReferences } from './references.js'
import { checkListeners } from './listeners.js'
import type { Config } from './types.js'
import { namePattern, validateTree } from './validate.js'
import { parseTree } from './yaml-tree.js'

export type * from './types.js'
export type { Env } from './env.js'
export { renderConfigDocs } from './docs.js'
export { defaultExchangeConfig, defaultStreamConfig } from './build.js'
export { summarizeConfig } from './summary.js'
export { isTlsProblem, readTlsMaterial, type TlsFileProblem, type TlsMaterial } from './listeners.js'
export { formatDuration, formatSize, parseByteRate, parseDuration, parseEventRate, parseSize } from './units.js'

export interface ParseOptions {
  /** File name for messages; a problem list is headed "invalid configuration in <source>". */
  readonly source?: string
  /** Variables for `${NAME}` substitution; defaults to process.env. */
  readonly env?: Env
}

export type ValidationResult = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly problems: readonly string[] }

/** Validates configuration text, collecting every problem instead of stopping at the first. */
export function validateConfigText(text: string, opts: ParseOptions = {}): ValidationResult {
  const problems = new Problems()
  const tree = parseTree(text, opts.env ?? process.env, problems)
  if (tree === undefined) return { ok: false, problems: problems.toArray() }
  const validated = validateTree(configSpec, tree, problems)
  checkReferences(validated, problems)
  checkListeners(validated, problems)
  if (problems.size > 0) return { ok: false, problems: problems.toArray() }
  return { ok: true, config: deepFreeze(buildConfig(validated.raw)) }
}

/** Parses and validates configuration text; throws SLUICE_ERR_CONFIG listing every problem. */
export function parseConfig(text: string, opts: ParseOptions = {}): Config {
  const result = validateConfigText(text, opts)
  if (result.ok) return result.config
  throw opts.source === undefined ? errors.config(result.problems) : errors.configFile(opts.source, result.problems)
}

/** Reads and parses a configuration file; a file that cannot be read is SLUICE_ERR_STARTUP. */
export async function loadConfig(path: string, env: Env = process.env): Promise<Config> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    throw errors.startup(`cannot read configuration file ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, cause)
  }
  return parseConfig(text, { source: path, env })
}

/**
 * Whether a name is allowed for an exchange, stream or group. Names declared at run time (AMQP
 * queue.declare) must pass the same check, since stream names become directory names.
 */
export function isValidName(name: string): boolean {
  return namePattern.test(name)
}

// Core modules share one Config; freezing it means no module can change another's view.
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
