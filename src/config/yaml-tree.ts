// The YAML document as a small tree of maps, lists and scalars, each with its source position.
// The validator works on this tree rather than on plain JS values because every message must
// name the line and column, which plain values have forgotten. Environment substitution happens
// here, once, so the validator only ever sees final values.

import { Composer, LineCounter, Parser, YAMLParseError, isAlias, isMap, isScalar, isSeq } from 'yaml'
import type { CST, Document, Node as YamlNode } from 'yaml'
import { substitute, type Env } from './env.js'
import { childPath, type Pos, type Problems } from './problems.js'

export type Scalar = string | number | boolean | null

export interface MapEntry {
  readonly key: string
  readonly keyPos: Pos
  readonly value: TreeNode
}

export type TreeNode =
  | { readonly kind: 'map'; readonly pos: Pos; readonly entries: readonly MapEntry[] }
  | { readonly kind: 'list'; readonly pos: Pos; readonly items: readonly TreeNode[] }
  | {
      readonly kind: 'scalar'
      readonly pos: Pos
      readonly value: Scalar
      /** The characters of a plain scalar as written (after substitution): `0123`, not 123. */
      readonly text?: string
      /** Already reported (a failed substitution); the validator must not report it again. */
      readonly invalid?: true
    }

const start: Pos = { line: 1, col: 1 }

/**
 * Mappings and lists nested deeper than this are refused, in the text and after aliases are
 * expanded. The YAML composer and the validator recurse once per level, and a few hundred levels
 * overflow the stack; near the limit V8 can even abort the process (a failed regexp compile is
 * fatal), so the depth is checked on the parser's tokens, which are built without recursion.
 */
export const configNestingMax = 64
/**
 * Nodes that aliases may add to the tree, beyond the file's own: an alias of a list of aliases of
 * lists ("billion laughs") grows tenfold per level, and is refused instead of expanded.
 */
export const aliasNodesMax = 100_000

/**
 * Parses YAML text into a positioned tree. Returns undefined when the text is not well-formed
 * YAML; the syntax errors are then in `problems` and there is nothing sensible to validate.
 */
export function parseTree(text: string, env: Env, problems: Problems): TreeNode | undefined {
  const lineCounter = new LineCounter()
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text))
  const tooDeep = firstTooDeep(tokens, configNestingMax)
  if (tooDeep !== undefined) {
    problems.add('', lineCounter.linePos(tooDeep), `YAML syntax: mappings and lists nested more than ${configNestingMax} levels deep`)
    return undefined
  }
  // Keys are checked for uniqueness in convert, with a Set: the composer's own check compares
  // each key with every earlier one, and 20,000 keys took 8 s.
  const composer = new Composer({ uniqueKeys: false })
  let doc: Document.Parsed | undefined
  for (const next of composer.compose(tokens, true, text.length)) {
    if (doc === undefined) {
      doc = next
    } else {
      doc.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'the file holds more than one YAML document'))
      break
    }
  }
  if (doc === undefined) return { kind: 'map', pos: start, entries: [] }
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const at = error.linePos?.[0] ?? (error.pos[0] >= 0 ? lineCounter.linePos(error.pos[0]) : undefined)
      problems.add('', at, `YAML syntax: ${error.message.split('\n')[0] ?? ''}`)
    }
    return undefined
  }
  if (doc.contents === null) return { kind: 'map', pos: start, entries: [] }
  const ctx: Context = { lineCounter, env, problems, resolving: new Set(), aliasTargets: new Map(), aliasNodesLeft: aliasNodesMax, malformed: false }
  const tree = convert(doc.contents, doc, '', 0, ctx)
  return ctx.malformed ? undefined : tree
}

/** The offset of the first collection nested deeper than `max` in the parser's tokens, if any. */
function firstTooDeep(tokens: readonly CST.Token[], max: number): number | undefined {
  const stack: { token: CST.Token; depth: number }[] = tokens.map((token) => ({ token, depth: 0 }))
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { token, depth } = top
    if (token.type === 'document') {
      if (token.value !== undefined) stack.push({ token: token.value, depth })
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth + 1 > max) return token.offset
      for (const item of token.items) {
        if ('key' in item && item.key !== undefined && item.key !== null) stack.push({ token: item.key, depth: depth + 1 })
        if (item.value !== undefined) stack.push({ token: item.value, depth: depth + 1 })
      }
    }
  }
  return undefined
}

interface Context {
  readonly lineCounter: LineCounter
  readonly env: Env
  readonly problems: Problems
  readonly resolving: Set<YamlNode>
  readonly aliasTargets: Map<YamlNode, YamlNode | undefined>
  /** Nodes alias expansion may still produce. */
  aliasNodesLeft: number
  /** A problem that makes the tree meaningless (a duplicate key, too much nesting): nothing to validate. */
  malformed: boolean
}

function positionOf(node: YamlNode | null | undefined, ctx: Context, fallback: Pos): Pos {
  const offset = node?.range?.[0]
  return offset === undefined ? fallback : ctx.lineCounter.linePos(offset)
}

function convert(node: YamlNode, doc: Document, path: string, depth: number, ctx: Context): TreeNode {
  const pos = positionOf(node, ctx, start)
  const none: TreeNode = { kind: 'scalar', pos, value: null }
  if (ctx.resolving.size > 0 && --ctx.aliasNodesLeft < 0) {
    if (ctx.aliasNodesLeft === -1) ctx.problems.add(path, pos, `aliases expand the configuration by more than ${aliasNodesMax} nodes; write the settings out or share fewer levels`)
    ctx.malformed = true
    return none
  }
  if (isAlias(node)) {
    // An alias is validated as the node it names, at the alias's own position, so anchors can
    // share settings between streams or groups.
    // Resolving walks the document up to the alias: once per alias node, not once per use.
    let target = ctx.aliasTargets.get(node)
    if (target === undefined && !ctx.aliasTargets.has(node)) {
      target = node.resolve(doc)
      ctx.aliasTargets.set(node, target)
    }
    if (target === undefined || ctx.resolving.has(target)) {
      // A node may not contain an alias of itself: that would be an infinite configuration.
      ctx.problems.add(path, pos, `alias *${node.source} refers to an unknown or enclosing anchor`)
      return none
    }
    ctx.resolving.add(target)
    try {
      return { ...convert(target, doc, path, depth, ctx), pos }
    } finally {
      ctx.resolving.delete(target)
    }
  }
  // The text was checked before composing; aliases of aliases can still nest deeper.
  if ((isMap(node) || isSeq(node)) && depth >= configNestingMax) {
    if (!ctx.malformed) ctx.problems.add(path, pos, `mappings and lists nested more than ${configNestingMax} levels deep through aliases`)
    ctx.malformed = true
    return none
  }
  if (isMap(node)) {
    const entries: MapEntry[] = []
    const seen = new Set<string>()
    for (const pair of node.items) {
      const keyNode = isScalar(pair.key) || isMap(pair.key) || isSeq(pair.key) ? pair.key : null
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      const keyPos = positionOf(keyNode, ctx, pos)
      if (seen.has(key)) {
        // An anchored map is reported where it is written, not again at each alias of it.
        if (ctx.resolving.size === 0) ctx.problems.add('', keyPos, 'YAML syntax: Map keys must be unique')
        ctx.malformed = true
      }
      seen.add(key)
      const value: TreeNode =
        pair.value === null || pair.value === undefined
          ? { kind: 'scalar', pos: keyPos, value: null }
          : convert(pair.value as YamlNode, doc, childPath(path, key), depth + 1, ctx)
      entries.push({ key, keyPos, value })
    }
    return { kind: 'map', pos, entries }
  }
  if (isSeq(node)) {
    const items = node.items.map((item, i) =>
      item === null || item === undefined ? { kind: 'scalar' as const, pos, value: null } : convert(item as YamlNode, doc, childPath(path, i), depth + 1, ctx),
    )
    return { kind: 'list', pos, items }
  }
  if (isScalar(node)) return scalarNode(node.value, node.type === 'PLAIN' ? node.source : undefined, path, pos, ctx)
  return none
}

function scalarNode(value: unknown, plainSource: string | undefined, path: string, pos: Pos, ctx: Context): TreeNode {
  if (typeof value !== 'string') {
    // Timestamps and binary need a custom schema; the default YAML 1.2 core schema has neither.
    const resolved = value === null || typeof value === 'number' || typeof value === 'boolean' ? value : String(value)
    return plainSource === undefined ? { kind: 'scalar', pos, value: resolved } : { kind: 'scalar', pos, value: resolved, text: plainSource }
  }
  const result = substitute(value, ctx.env)
  if (!result.ok) {
    ctx.problems.add(path, pos, result.problem)
    return { kind: 'scalar', pos, value, invalid: true }
  }
  // `port: ${PORT}` must be the number 7400, as if it had been written in place, so a value
  // with a substitution is resolved again, quoted or not: inside a flow mapping `{ ... }` the
  // reference has to be quoted, and `{ port: "${PORT}" }` must still be a port. String keys
  // read the text, so a password of 0123 stays "0123".
  if (result.changed) return { kind: 'scalar', pos, value: resolvePlain(result.value), text: result.value }
  return { kind: 'scalar', pos, value: result.value }
}

/** The YAML 1.2 core schema's resolution of a plain scalar (null, booleans, numbers). */
export function resolvePlain(text: string): Scalar {
  if (/^(?:~|null|Null|NULL|)$/.test(text)) return null
  if (/^(?:true|True|TRUE)$/.test(text)) return true
  if (/^(?:false|False|FALSE)$/.test(text)) return false
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text)) return Number(text)
  return text
}
