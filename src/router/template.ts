import { errors } from '../errors.js'

// Routing key templates, e.g. "{service}.{level}" or "http.{http.status}". For users:
// docs/routing.md, which must say the same as this.
//
// Syntax: `{path}` is replaced by the body field at `path`, where dots step into nested objects.
// `{{` and `}}` stand for a literal `{` and `}` (as in Python's str.format), so a literal brace is
// always doubled and a single one is always syntax. A path is one or more non-empty segments of
// any characters except braces, dots and whitespace; whitespace is refused because `{ level }`
// is far more likely a typo than a field really named " level ".
//
// Keys that hold dots themselves, as OpenTelemetry's attribute names do (`service.name`), are
// found too: `{resource.service.name}` reads `{"resource": {"service.name": "api"}}`. Nested
// objects are tried first; only when they do not lead to a value is a dotted key looked for (the
// shortest first), so a template that works today reads the same field tomorrow.
//
// Values: strings are used as they are, numbers and booleans as their JSON text. A missing field,
// `null`, an object or an array yields `_`: a placeholder then still fills exactly one word, so a
// binding such as `*.error` keeps seeing a two-word key, and `_` is easy to spot and to bind
// (`_.#`). An empty string is kept; it is still one (empty) word. A dot inside a value is kept
// too, so it adds words; bind with `#` where values may contain dots.

/** A compiled template: the key of a body, and whether any of its placeholders found no value. */
export type RoutingKeyTemplate = ((body: unknown) => string) & { readonly misses: (body: unknown) => boolean }

export const missingFieldWord = '_'

function render(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value)
    default:
      return missingFieldWord
  }
}

/** Whether a value fills a placeholder itself rather than becoming `_`. */
function present(value: unknown): boolean {
  const t = typeof value
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint'
}

/**
 * Whether a key a template made may hold a placeholder that found nothing: it has `_` as a whole
 * word. Cheap, so a publisher asks `misses` (which looks the fields up again) only then.
 */
export function mayMiss(key: string): boolean {
  return key === missingFieldWord || key.startsWith('_.') || key.endsWith('._') || key.includes('._.')
}

function lookup(body: unknown, path: readonly string[]): unknown {
  let current = body
  for (let i = 0; i < path.length; i++) {
    // Own properties only: `{constructor.name}` must not find Object.prototype's members.
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, path[i]!)) return path.length > 1 ? lookupDotted(body, path, 0) : undefined
    current = (current as Record<string, unknown>)[path[i]!]
  }
  return current
}

/**
 * The slow path, taken only when the nested walk misses: at each level, the segments from `i` on
 * joined with dots are tried as one key too, with backtracking. Paths are a few segments long and
 * written in the configuration, so the 2^(n-1) ways to split one stay few.
 */
function lookupDotted(current: unknown, path: readonly string[], i: number): unknown {
  if (i === path.length) return current
  if (typeof current !== 'object' || current === null) return undefined
  let key = path[i]!
  for (let j = i; j < path.length; j++) {
    if (j > i) key += '.' + path[j]!
    if (!Object.hasOwn(current, key)) continue
    const v = lookupDotted((current as Record<string, unknown>)[key], path, j + 1)
    if (v !== undefined) return v
  }
  return undefined
}

interface Parsed {
  /** One more literal than paths: literal, path, literal, ..., literal. */
  literals: string[]
  paths: string[][]
}

function parse(template: string): Parsed {
  const literals: string[] = []
  const paths: string[][] = []
  let literal = ''
  let i = 0
  while (i < template.length) {
    const ch = template[i]!
    if (ch === '}') {
      if (template[i + 1] !== '}') throw errors.routerBadTemplate(template, i, 'a lone "}"; write "}}" for a literal brace')
      literal += '}'
      i += 2
      continue
    }
    if (ch !== '{') {
      literal += ch
      i++
      continue
    }
    if (template[i + 1] === '{') {
      literal += '{'
      i += 2
      continue
    }
    const close = template.indexOf('}', i + 1)
    if (close < 0) throw errors.routerBadTemplate(template, i, 'a "{" with no closing "}"; write "{{" for a literal brace')
    const body = template.slice(i + 1, close)
    if (body.includes('{')) throw errors.routerBadTemplate(template, i, 'a "{" inside a placeholder')
    if (body === '') throw errors.routerBadTemplate(template, i, 'an empty placeholder "{}"')
    if (/\s/.test(body)) throw errors.routerBadTemplate(template, i, `whitespace in placeholder "{${body}}"`)
    const path = body.split('.')
    if (path.includes('')) throw errors.routerBadTemplate(template, i, `an empty field name in "{${body}}"`)
    literals.push(literal)
    paths.push(path)
    literal = ''
    i = close + 1
  }
  literals.push(literal)
  return { literals, paths }
}

/**
 * Compiles a routing key template once; the returned function does no parsing, only field lookups
 * and concatenation. Throws SLUICE_ERR_ROUTER_BAD_TEMPLATE on invalid syntax.
 */
export function compileTemplate(template: string): RoutingKeyTemplate {
  const { literals, paths } = parse(template)
  const head = literals[0]!
  const misses = (body: unknown): boolean => paths.some((path) => !present(lookup(body, path)))
  if (paths.length === 0) return Object.assign(() => head, { misses })
  if (paths.length === 1) {
    const path = paths[0]!
    const tail = literals[1]!
    return Object.assign((body: unknown) => head + render(lookup(body, path)) + tail, { misses })
  }
  return Object.assign(
    (body: unknown) => {
      let key = head
      for (let i = 0; i < paths.length; i++) key += render(lookup(body, paths[i]!)) + literals[i + 1]!
      return key
    },
    { misses },
  )
}
