// A validator that walks the key table and the positioned YAML tree together. Hand-written
// rather than a JSON Schema engine because every message must carry the YAML line and column,
// and because every problem is collected instead of stopping at the first.

import assert from 'node:assert/strict'
import { isIP } from 'node:net'
import type { ConfigSpec } from './keys.js'
import { childPath, didYouMean, type Pos, type Problems } from './problems.js'
import type { KeySpec, LeafSpec, ListSpec, NameKind, NamedSpec, ObjectSpec, Raw, StartPosition } from './spec.js'
import { parseByteRate, parseDuration, parseEventRate, parseSize } from './units.js'
import type { Scalar, TreeNode } from './yaml-tree.js'

/** A name written somewhere in the file, with where it was written. */
export interface NameUse {
  readonly kind: NameKind
  readonly name: string
  readonly path: string
  readonly pos: Pos
}

export interface Validated {
  readonly raw: Raw<ConfigSpec>
  /** Where each path is in the file (or where its parent is, for a defaulted key). */
  readonly positions: ReadonlyMap<string, Pos>
  readonly declared: readonly NameUse[]
  readonly references: readonly NameUse[]
}

// Names become directory names (streams) and metric labels, so only a conservative alphabet is
// allowed, and no leading dot or dash: `.`, `..` and `-rf` must never be a name.
// '@' because Celery names its queues <worker>@<host>.celery.pidbox.
export const namePattern = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,199}$/
export const nameRule = 'use letters, digits, ".", "_", "-" and "@", at most 200 characters, not starting with ".", "-" or "@"'

class Walker {
  readonly positions = new Map<string, Pos>()
  readonly declared: NameUse[] = []
  readonly references: NameUse[] = []

  constructor(readonly problems: Problems) {}

  key(spec: KeySpec, node: TreeNode | undefined, path: string, parentPos: Pos): unknown {
    this.positions.set(path, node?.pos ?? parentPos)
    switch (spec.type) {
      case 'object':
        return spec.orList ? this.entries(spec, node, path, parentPos) : this.object(spec, node, path, parentPos)
      case 'named':
        return this.named(spec, node, path)
      case 'list':
        return this.list(spec, node, path)
      default:
        return this.leaf(spec, node, path, parentPos)
    }
  }

  object(spec: ObjectSpec, node: TreeNode | undefined, path: string, parentPos: Pos): Record<string, unknown> | null {
    const absent = node === undefined || (node.kind === 'scalar' && node.value === null)
    if (absent && spec.optional) return null
    if (node !== undefined && !absent && node.kind !== 'map') {
      this.problems.add(path, node.pos, `expected a mapping${spec.orList ? ' (or a list of them)' : ''} of ${Object.keys(spec.keys).join(', ')}, got ${describe(node)}`)
      return null
    }
    const entries = node?.kind === 'map' ? node.entries : []
    const known = Object.keys(spec.keys)
    for (const entry of entries) {
      if (!Object.hasOwn(spec.keys, entry.key)) {
        const hint = didYouMean(entry.key, known)
        this.problems.add(childPath(path, entry.key), entry.keyPos, hint === '' ? `unknown key; expected one of ${known.join(', ')}` : `unknown key${hint}`)
      }
    }
    const out: Record<string, unknown> = {}
    // Missing keys are reported where their parent's key is written, not at its first child.
    const here = parentPos
    for (const [key, child] of Object.entries(spec.keys)) {
      const entry = entries.find((e) => e.key === key)
      out[key] = this.key(child, entry?.value, childPath(path, key), entry?.keyPos ?? here)
    }
    return out
  }

  /** One mapping or a list of them, always given back as a list (one mapping is a list of one). */
  entries(spec: ObjectSpec, node: TreeNode | undefined, path: string, parentPos: Pos): (Record<string, unknown> | null)[] {
    if (node?.kind !== 'list') return [this.object(spec, node, path, parentPos)]
    if (node.items.length === 0) {
      this.problems.add(path, node.pos, 'an empty list has no listener to start; write one mapping, or set `enabled: false` to turn the listener off')
      return []
    }
    return node.items.map((item, i) => {
      const itemPath = childPath(path, i)
      this.positions.set(itemPath, item.pos)
      if (item.kind !== 'map') {
        this.problems.add(itemPath, item.pos, `expected a mapping of ${Object.keys(spec.keys).join(', ')}, got ${describe(item)}`)
        return null
      }
      return this.object(spec, item, itemPath, item.pos)
    })
  }

  named(spec: NamedSpec, node: TreeNode | undefined, path: string): Record<string, unknown> {
    // A null prototype, because names come from users: `constructor` must not find a function.
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>
    if (node === undefined || (node.kind === 'scalar' && node.value === null)) return out
    if (node.kind !== 'map') {
      this.problems.add(path, node.pos, `expected a mapping of ${spec.declares} names to settings, got ${describe(node)}`)
      return out
    }
    for (const entry of node.entries) {
      const entryPath = childPath(path, entry.key)
      this.positions.set(entryPath, entry.keyPos)
      if (!namePattern.test(entry.key)) {
        this.problems.add(entryPath, entry.keyPos, `${JSON.stringify(entry.key)} is not a valid ${spec.declares} name: ${nameRule}`)
      } else {
        this.declared.push({ kind: spec.declares, name: entry.key, path: entryPath, pos: entry.keyPos })
      }
      out[entry.key] = this.object(spec.of, entry.value, entryPath, entry.keyPos)
    }
    return out
  }

  list(spec: ListSpec, node: TreeNode | undefined, path: string): unknown[] | null {
    if (node === undefined || (node.kind === 'scalar' && node.value === null)) return spec.whenAbsent === undefined ? [] : null
    if (node.kind !== 'list') {
      this.problems.add(path, node.pos, `expected a list, got ${describe(node)}`)
      return []
    }
    return node.items.map((item, i) => {
      const itemPath = childPath(path, i)
      this.positions.set(itemPath, item.pos)
      if (item.kind !== 'map') {
        this.problems.add(itemPath, item.pos, `expected a mapping of ${Object.keys(spec.of.keys).join(', ')}, got ${describe(item)}`)
        return null
      }
      return this.object(spec.of, item, itemPath, item.pos)
    })
  }

  leaf(spec: LeafSpec, node: TreeNode | undefined, path: string, parentPos: Pos): unknown {
    if (node === undefined) {
      if (spec.required) {
        this.problems.add(path, parentPos, 'is required but missing')
        return undefined
      }
      return defaultOf(spec)
    }
    if (node.kind === 'scalar' && node.invalid) return undefined
    const nullable = spec.nullable === true || (spec.default === null && !spec.required)
    if (node.kind === 'scalar' && isNone(node.value, spec) && nullable) return null
    const result = parseLeaf(spec, node)
    if ('problem' in result) {
      this.problems.add(path, node.pos, result.problem)
      return undefined
    }
    if (spec.type === 'name' && typeof result.value === 'string') {
      const use = { name: result.value, path, pos: node.pos }
      if (spec.ref !== undefined) this.references.push({ kind: spec.ref, ...use })
      if (spec.declares !== undefined) this.declared.push({ kind: spec.declares, ...use })
    }
    return result.value
  }
}

// `none` reads better than `~` for "no limit"; for string keys it stays a literal word.
function isNone(value: Scalar, spec: LeafSpec): boolean {
  if (value === null) return true
  return value === 'none' && spec.type !== 'string' && spec.type !== 'name' && spec.type !== 'template'
}

function describe(node: TreeNode): string {
  if (node.kind === 'map') return 'a mapping'
  if (node.kind === 'list') return 'a list'
  return node.value === null ? 'nothing' : show(node.value)
}

function show(value: Scalar): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

type Parsed = { value: unknown } | { problem: string }

function parseLeaf(spec: LeafSpec, node: TreeNode): Parsed {
  if (spec.type === 'headers') return parseHeaders(node)
  if (spec.type === 'enumList') return parseEnumList(spec, node)
  if (spec.type === 'remoteList') return parseRemoteList(node)
  if (spec.type === 'urlList') return parseUrlList(node)
  if (node.kind !== 'scalar') return { problem: `expected ${expectation(spec)}, got ${describe(node)}` }
  if (node.value === null) return { problem: `is empty; expected ${expectation(spec)}` }
  return parseScalar(spec, node.value, textOf(node))
}

// Plain scalars such as `0123` or `1e3` resolve to numbers, but a password or an id must keep
// the characters as written; the tree keeps that text.
function textOf(node: TreeNode): string {
  if (node.kind !== 'scalar') return ''
  return node.text ?? (node.value === null ? '' : String(node.value))
}

/** Parses one scalar for a leaf key; exported for checking the table's own defaults. */
export function parseScalar(spec: LeafSpec, value: Scalar, text: string): Parsed {
  const bad = (): Parsed => ({ problem: `${show(value)} is not ${expectation(spec)}` })
  switch (spec.type) {
    case 'string':
      if (typeof value === 'object') return bad()
      if (spec.nonEmpty && text === '') return { problem: 'must not be empty' }
      return { value: text }
    case 'name':
      if (typeof value !== 'string' && typeof value !== 'number') return bad()
      return namePattern.test(text) ? { value: text } : { problem: `${show(value)} is not a valid name: ${nameRule}` }
    case 'template': {
      if (typeof value !== 'string') return bad()
      const why = templateProblem(value)
      return why === undefined ? { value } : { problem: `${show(value)} is not a routing-key template: ${why}` }
    }
    case 'remote':
      return typeof value === 'string' && isRemote(value) ? { value } : bad()
    case 'bool':
      return typeof value === 'boolean' ? { value } : bad()
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return bad()
      return bounded(spec, value, value, numericBound)
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad()
      return bounded(spec, value, value, numericBound)
    case 'size': {
      const bytes = parseSize(value)
      return bytes === undefined ? bad() : bounded(spec, value, bytes, parseSize)
    }
    case 'duration': {
      const ms = parseDuration(value)
      return ms === undefined ? bad() : bounded(spec, value, ms, parseDuration)
    }
    case 'eventRate': {
      const perSecond = parseEventRate(value)
      return perSecond === undefined ? bad() : { value: perSecond }
    }
    case 'byteRate': {
      const perSecond = parseByteRate(value)
      return perSecond === undefined ? bad() : { value: perSecond }
    }
    case 'enum': {
      if (typeof value === 'string' && spec.values.includes(value)) return { value }
      return { problem: `${show(value)} is not one of ${spec.values.join(', ')}${didYouMean(String(value), spec.values)}` }
    }
    case 'start': {
      const start = parseStart(value)
      return start === undefined ? bad() : { value: start }
    }
    case 'headers':
    case 'enumList':
    case 'remoteList':
    case 'urlList':
      return bad()
  }
}

function bounded(
  spec: { readonly min?: number | string; readonly max?: number | string },
  written: Scalar,
  value: number,
  parse: (bound: string) => number | undefined,
): Parsed {
  const limit = (bound: number | string): number => {
    const parsed = typeof bound === 'number' ? bound : parse(bound)
    assert.ok(parsed !== undefined, `key table bound ${bound} does not parse`)
    return parsed
  }
  if (spec.min !== undefined && value < limit(spec.min)) return { problem: `${show(written)} is below the minimum of ${spec.min}` }
  if (spec.max !== undefined && value > limit(spec.max)) return { problem: `${show(written)} is above the maximum of ${spec.max}` }
  return { value }
}

function expectation(spec: LeafSpec): string {
  const example = (fallback: string): string => (typeof spec.default === 'string' && spec.default !== '' ? spec.default : fallback)
  switch (spec.type) {
    case 'string':
      return 'a string'
    case 'name':
      return 'a name'
    case 'template':
      return 'a routing-key template, e.g. "{service}.{level}"'
    case 'remote':
      return 'an IP address or CIDR block, e.g. 10.0.0.0/8'
    case 'bool':
      return 'true or false'
    case 'int':
      return 'an integer'
    case 'number':
      return 'a number'
    case 'size':
      return `a size, e.g. ${example('64mb')}`
    case 'duration':
      return `a duration, e.g. ${example('30s')}`
    case 'eventRate':
      return 'a rate, e.g. 5000/s'
    case 'byteRate':
      return 'a byte rate, e.g. 50mb/s'
    case 'enum':
      return `one of ${spec.values.join(', ')}`
    case 'start':
      return 'earliest, latest, last, an offset or an ISO time'
    case 'headers':
      return 'a mapping of header names to values'
    case 'enumList':
      return `a list of ${spec.values.join(', ')}`
    case 'remoteList':
      return 'a list of IP addresses or CIDR blocks, e.g. [10.0.0.0/8, 127.0.0.1]'
    case 'urlList':
      return 'a list of URLs, e.g. ["http://127.0.0.1:2379"]'
  }
}

function parseUrlList(node: TreeNode): Parsed {
  const items = node.kind === 'list' ? node.items : node.kind === 'scalar' && node.value !== null ? [node] : undefined
  if (items === undefined) return { problem: `expected a list of URLs, e.g. ["http://127.0.0.1:2379"], got ${describe(node)}` }
  if (items.length === 0) return { problem: 'must list at least one URL' }
  const out: string[] = []
  for (const item of items) {
    const text = item.kind === 'scalar' && typeof item.value === 'string' ? item.value : undefined
    let url: URL | undefined
    try {
      url = text === undefined ? undefined : new URL(text)
    } catch {
      url = undefined
    }
    if (text === undefined || url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') {
      return { problem: `${text === undefined ? describe(item) : show(text)} is not an http:// or https:// URL with a host, e.g. "http://127.0.0.1:2379"` }
    }
    if (url.pathname !== '/' || url.search !== '' || url.username !== '') return { problem: `${show(text)} must be a scheme, host and port only (no path, query or credentials)` }
    const clean = `${url.protocol}//${url.host}`
    if (!out.includes(clean)) out.push(clean)
  }
  return { value: Object.freeze(out) }
}

function parseEnumList(spec: { readonly values: readonly string[] }, node: TreeNode): Parsed {
  if (node.kind === 'scalar' && node.value === null) return { value: Object.freeze([]) }
  if (node.kind !== 'list') return { problem: `expected a list of ${spec.values.join(', ')}, got ${describe(node)}` }
  const out: string[] = []
  for (const item of node.items) {
    const word = item.kind === 'scalar' ? item.value : undefined
    if (typeof word !== 'string' || !spec.values.includes(word)) {
      const shown = word === undefined ? describe(item) : show(word)
      return { problem: `${shown} is not one of ${spec.values.join(', ')}${didYouMean(String(word ?? ''), spec.values)}` }
    }
    if (!out.includes(word)) out.push(word)
  }
  return { value: Object.freeze(out) }
}

function parseRemoteList(node: TreeNode): Parsed {
  const expected = 'a list of IP addresses or CIDR blocks, e.g. [10.0.0.0/8, 127.0.0.1]'
  if (node.kind !== 'list') return { problem: `expected ${expected}, got ${describe(node)}` }
  // Nobody could connect: that is `enabled: false`, said plainly.
  if (node.items.length === 0) return { problem: 'an empty list lets no client in; list the addresses that may connect (0.0.0.0/0 and ::/0 for all), or set `enabled: false`' }
  const out: string[] = []
  for (const item of node.items) {
    const text = item.kind === 'scalar' && typeof item.value === 'string' ? item.value : undefined
    if (text === undefined || !isRemote(text)) return { problem: `${text === undefined ? describe(item) : show(text)} is not an IP address or CIDR block, e.g. 10.0.0.0/8` }
    if (!out.includes(text)) out.push(text)
  }
  return { value: Object.freeze(out) }
}

function parseHeaders(node: TreeNode): Parsed {
  if (node.kind === 'scalar' && node.value === null) return { value: {} }
  if (node.kind !== 'map') return { problem: `expected a mapping of header names to values, got ${describe(node)}` }
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (const entry of node.entries) {
    const value = entry.value
    if (value.kind !== 'scalar' || value.value === null) {
      return { problem: `header ${JSON.stringify(entry.key)} needs a single value, got ${describe(value)}` }
    }
    out[entry.key] = textOf(value)
  }
  return { value: out }
}

function parseStart(value: Scalar): StartPosition | undefined {
  if (value === 'earliest' || value === 'latest' || value === 'last') return { kind: value }
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? { kind: 'offset', offset: value } : undefined
  // A date alone is midnight UTC; an ISO time must name its zone so replays do not depend on
  // the server's local time.
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(value)) {
    const timeMs = Date.parse(value)
    return Number.isNaN(timeMs) ? undefined : { kind: 'time', timeMs }
  }
  return undefined
}

/** Why a routing-key template is malformed, or undefined if it is fine. */
export function templateProblem(template: string): string | undefined {
  let depth = 0
  let field = ''
  for (const ch of template) {
    if (ch === '{') {
      if (depth > 0) return 'placeholders cannot nest'
      depth = 1
      field = ''
    } else if (ch === '}') {
      if (depth === 0) return 'a "}" has no matching "{"'
      if (!/^[A-Za-z0-9_.-]+$/.test(field)) return `placeholder {${field}} is not a field name`
      depth = 0
    } else if (depth > 0) {
      field += ch
    }
  }
  return depth > 0 ? 'a "{" is not closed' : undefined
}

function isRemote(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

const defaults = new WeakMap<LeafSpec, unknown>()

/** The parsed default of a leaf key. The table's defaults go through the same parser as the file. */
export function defaultOf(spec: LeafSpec): unknown {
  if (defaults.has(spec)) return defaults.get(spec)
  let value: unknown = null
  if (spec.default !== undefined && spec.default !== null) {
    const written = spec.default
    const result = Array.isArray(written)
      ? { value: Object.freeze([...(written as readonly string[])]) }
      : typeof written === 'object'
        ? { value: Object.freeze({ ...written }) }
        : parseScalar(spec, written, String(written))
    assert.ok(!('problem' in result), `key table default ${String(written)} is invalid: ${'problem' in result ? result.problem : ''}`)
    value = result.value
  }
  defaults.set(spec, value)
  return value
}

/** Validates the whole tree against the table; problems are added, never thrown. */
export function validateTree(spec: ConfigSpec, root: TreeNode, problems: Problems): Validated {
  const walker = new Walker(problems)
  const raw = walker.object(spec, root, '', root.pos) ?? walker.object(spec, undefined, '', root.pos)
  return {
    // The walker builds exactly the shape the table describes; the table's derived type says so.
    raw: raw as Raw<ConfigSpec>,
    positions: walker.positions,
    declared: walker.declared,
    references: walker.references,
  }
}

// Integer and number bounds are written as numbers in the table, so there is nothing to parse.
function numericBound(): undefined {
  return undefined
}
