// The YAML document as a small tree of maps, lists and scalars, each with its source position.
// The validator works on this tree rather than on plain JS values because every message must
// name the line and column, which plain values have forgotten. Environment substitution happens
// here, once, so the validator only ever sees final values.

import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml'
import type { Document, Node as YamlNode } from 'yaml'
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
 * Parses YAML text into a positioned tree. Returns undefined when the text is not well-formed
 * YAML; the syntax errors are then in `problems` and there is nothing sensible to validate.
 */
export function parseTree(text: string, env: Env, problems: Problems): TreeNode | undefined {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const at = error.linePos?.[0] ?? (error.pos[0] >= 0 ? lineCounter.linePos(error.pos[0]) : undefined)
      problems.add('', at, `YAML syntax: ${error.message.split('\n')[0] ?? ''}`)
    }
    return undefined
  }
  if (doc.contents === null) return { kind: 'map', pos: start, entries: [] }
  return convert(doc.contents, doc, '', { lineCounter, env, problems, resolving: new Set() })
}

interface Context {
  readonly lineCounter: LineCounter
  readonly env: Env
  readonly problems: Problems
  readonly resolving: Set<YamlNode>
}

function positionOf(node: YamlNode | null | undefined, ctx: Context, fallback: Pos): Pos {
  const offset = node?.range?.[0]
  return offset === undefined ? fallback : ctx.lineCounter.linePos(offset)
}

function convert(node: YamlNode, doc: Document, path: string, ctx: Context): TreeNode {
  const pos = positionOf(node, ctx, start)
  if (isAlias(node)) {
    // An alias is validated as the node it names, at the alias's own position, so anchors can
    // share settings between streams or groups.
    const target = node.resolve(doc)
    if (target === undefined || ctx.resolving.has(target)) {
      // A node may not contain an alias of itself: that would be an infinite configuration.
      ctx.problems.add(path, pos, `alias *${node.source} refers to an unknown or enclosing anchor`)
      return { kind: 'scalar', pos, value: null }
    }
    ctx.resolving.add(target)
    try {
      return { ...convert(target, doc, path, ctx), pos }
    } finally {
      ctx.resolving.delete(target)
    }
  }
  if (isMap(node)) {
    const entries: MapEntry[] = []
    for (const pair of node.items) {
      const keyNode = isScalar(pair.key) || isMap(pair.key) || isSeq(pair.key) ? pair.key : null
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      const keyPos = positionOf(keyNode, ctx, pos)
      const value: TreeNode =
        pair.value === null || pair.value === undefined
          ? { kind: 'scalar', pos: keyPos, value: null }
          : convert(pair.value as YamlNode, doc, childPath(path, key), ctx)
      entries.push({ key, keyPos, value })
    }
    return { kind: 'map', pos, entries }
  }
  if (isSeq(node)) {
    const items = node.items.map((item, i) =>
      item === null || item === undefined ? { kind: 'scalar' as const, pos, value: null } : convert(item as YamlNode, doc, childPath(path, i), ctx),
    )
    return { kind: 'list', pos, items }
  }
  if (isScalar(node)) return scalarNode(node.value, node.type === 'PLAIN' ? node.source : undefined, path, pos, ctx)
  return { kind: 'scalar', pos, value: null }
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
