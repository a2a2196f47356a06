// Definitions export and import (GET and POST /v1/definitions): the running exchanges, streams,
// bindings and groups (the configuration file's and those declared at run time) in the
// configuration file's own shape, and a document of that shape declared back through the
// catalog and the group registry, the paths AMQP and PUT /v1/groups use.
//
// The shape is the file's, not a dump of the typed config: durations and sizes are written as
// the file takes them (`30s`, `64mb`) and keys at their default are left out, so the export reads
// like a file someone wrote and validates with `sluice validate` once placed beside a server
// section. An import is validated as a file is, against what exists, and checked item by item
// against the running definitions before anything is declared: a conflict or a problem anywhere
// and nothing is applied.

import { Document, isMap, isSeq, parse, type Node } from 'yaml'
import { formatDuration, formatSize, parseConfig, validateConfigText, type BindingConfig, type Config, type ExchangeConfig, type GroupConfig, type StreamConfig } from '../config/index.js'
import type { GroupRegistry } from '../consumers/index.js'
import { errors } from '../errors.js'
import { bindingId, normalizeBinding, type BindingDef, type ExchangeType, type Router } from '../router/index.js'
import type { Catalog } from '../streams/catalog.js'
import type { StreamRegistry } from '../streams/registry.js'
import { defaultExchangeName } from './amqp/message.js'
import { ingestErrorsStream } from './ingest-errors.js'

export type DefinitionKind = 'exchange' | 'stream' | 'binding' | 'group'
/** Where a running definition comes from: the file, a run-time declaration, or the server itself. */
export type DefinitionOrigin = 'file' | 'runtime' | 'builtin'

export interface DefinitionsSource {
  readonly config: Config
  readonly catalog: Catalog
  readonly router: Router
  readonly streams: StreamRegistry
  readonly groups: GroupRegistry
}

type Yaml = Record<string, unknown>

/** The four sections, in the file's shape, and where each item comes from. */
export interface DefinitionsExport {
  readonly definitions: { exchanges: Record<string, Yaml>; streams: Record<string, Yaml>; bindings: Yaml[]; groups: Record<string, Yaml> }
  readonly origins: { exchanges: Record<string, DefinitionOrigin>; streams: Record<string, DefinitionOrigin>; bindings: DefinitionOrigin[]; groups: Record<string, DefinitionOrigin> }
}

// Each section's defaults, from the key table through the validator itself, so a key at its
// default is recognised exactly as the file would default it.
let defaults: { exchange: ExchangeConfig; stream: StreamConfig; group: GroupConfig } | undefined
function defaultsOf(): NonNullable<typeof defaults> {
  defaults ??= (() => {
    const c = parseConfig('exchanges: { e: {} }\nstreams: { s: {} }\ngroups: { g: { stream: s } }\n', { env: {} })
    return { exchange: c.exchanges.e!, stream: c.streams.s!, group: c.groups.g! }
  })()
  return defaults
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

function exchangeYaml(c: ExchangeConfig): Yaml {
  const d = defaultsOf().exchange
  return {
    type: c.type,
    ...(c.routingKey !== null ? { routingKey: c.routingKey } : {}),
    ...(c.alternate !== null ? { alternate: c.alternate } : {}),
    ...(c.unroutable !== d.unroutable ? { unroutable: c.unroutable } : {}),
    ...(c.dedup !== null ? { dedup: c.dedup } : {}),
    ...(c.dedupWindowMs !== d.dedupWindowMs ? { dedupWindow: formatDuration(c.dedupWindowMs) } : {}),
  }
}

function streamYaml(c: StreamConfig, serverFsync: string): Yaml {
  const d = defaultsOf().stream
  const r = c.retention
  const retention: Yaml = {
    ...(r.maxAgeMs !== d.retention.maxAgeMs ? { maxAge: r.maxAgeMs === null ? 'none' : formatDuration(r.maxAgeMs) } : {}),
    ...(r.maxBytes !== null ? { maxBytes: formatSize(r.maxBytes) } : {}),
    ...(r.policy !== d.retention.policy ? { policy: r.policy } : {}),
  }
  return {
    ...(Object.keys(retention).length > 0 ? { retention } : {}),
    ...(c.segmentBytes !== d.segmentBytes ? { segmentSize: formatSize(c.segmentBytes) } : {}),
    ...(c.segmentAgeMs !== d.segmentAgeMs ? { segmentAge: formatDuration(c.segmentAgeMs) } : {}),
    // The effective policy: only an override of the server's is the stream's own.
    ...(c.fsync !== serverFsync ? { fsync: c.fsync } : {}),
    ...(c.replicas !== null ? { replicas: c.replicas } : {}),
  }
}

function bindingYaml(b: Readonly<BindingDef>, type: ExchangeType | undefined): Yaml {
  const headers = type === 'headers' && b.headers !== undefined && Object.keys(b.headers).length > 0 ? b.headers : undefined
  return {
    exchange: b.exchange,
    ...(b.stream !== undefined ? { stream: b.stream } : { toExchange: b.toExchange }),
    ...(b.key !== undefined && b.key !== '' ? { key: b.key } : {}),
    ...(type === 'headers' && b.match !== undefined && b.match !== 'all' ? { match: b.match } : {}),
    ...(headers !== undefined ? { headers } : {}),
  }
}

function groupYaml(c: GroupConfig): Yaml {
  const d = defaultsOf().group
  const rb = c.retryBackoff
  const backoff: Yaml = {
    ...(rb.initialMs !== d.retryBackoff.initialMs ? { initial: formatDuration(rb.initialMs) } : {}),
    ...(rb.maxMs !== d.retryBackoff.maxMs ? { max: formatDuration(rb.maxMs) } : {}),
    ...(rb.multiplier !== d.retryBackoff.multiplier ? { multiplier: rb.multiplier } : {}),
    ...(rb.jitter !== d.retryBackoff.jitter ? { jitter: rb.jitter } : {}),
  }
  const dl = c.deadLetter
  const start = c.start
  return {
    stream: c.stream,
    ...(c.dispatch !== d.dispatch ? { dispatch: c.dispatch } : {}),
    ...(c.ackMode !== d.ackMode ? { ackMode: c.ackMode } : {}),
    ...(c.prefetch !== d.prefetch ? { prefetch: c.prefetch } : {}),
    ...(c.readAheadBytes !== d.readAheadBytes ? { readAheadSize: formatSize(c.readAheadBytes) } : {}),
    ...(c.ackTimeoutMs !== d.ackTimeoutMs ? { ackTimeout: formatDuration(c.ackTimeoutMs) } : {}),
    ...(c.maxDeliveries !== d.maxDeliveries ? { maxDeliveries: c.maxDeliveries } : {}),
    ...(Object.keys(backoff).length > 0 ? { retryBackoff: backoff } : {}),
    ...(c.messageTtlMs !== null ? { messageTtl: formatDuration(c.messageTtlMs) } : {}),
    ...(c.maxBacklog !== null ? { maxBacklog: c.maxBacklog } : {}),
    ...(c.maxBacklogBytes !== null ? { maxBacklogBytes: formatSize(c.maxBacklogBytes) } : {}),
    ...(c.overflow !== d.overflow ? { overflow: c.overflow } : {}),
    ...(dl === null ? {} : { deadLetter: dl.kind === 'stream' ? { stream: dl.stream } : { exchange: dl.exchange, ...(dl.routingKey !== null ? { routingKey: dl.routingKey } : {}) } }),
    ...(same(start, d.start) ? {} : { start: start.kind === 'offset' ? start.offset : start.kind === 'time' ? new Date(start.timeMs).toISOString() : start.kind }),
    ...(c.deliveryRatePerSec !== null ? { deliveryRate: `${c.deliveryRatePerSec}/s` } : {}),
    ...(c.sessionTimeoutMs !== d.sessionTimeoutMs ? { sessionTimeout: formatDuration(c.sessionTimeoutMs) } : {}),
  }
}

/** A binding as the router holds it, from the file's shape (as the server builds its router). */
function bindingDef(b: BindingConfig, type: ExchangeType | undefined): BindingDef {
  return {
    exchange: b.exchange,
    ...(b.destination.kind === 'stream' ? { stream: b.destination.name } : { toExchange: b.destination.name }),
    key: b.key,
    ...(type === 'headers' ? { match: b.match, headers: b.headers } : {}),
  }
}

function bindingIdOf(b: Readonly<BindingDef>, type: ExchangeType | undefined): string {
  return bindingId(type === undefined ? b : normalizeBinding(b, type))
}

/** Everything running, in the file's shape. */
export function exportDefinitions(src: DefinitionsSource): DefinitionsExport {
  const { config, catalog } = src
  const typeOf = (name: string): ExchangeType | undefined => catalog.exchange(name)?.config.type
  const fileBindings = new Set(config.bindings.map((b) => bindingIdOf(bindingDef(b, config.exchanges[b.exchange]?.type), config.exchanges[b.exchange]?.type)))
  const out: DefinitionsExport = { definitions: { exchanges: {}, streams: {}, bindings: [], groups: {} }, origins: { exchanges: {}, streams: {}, bindings: [], groups: {} } }
  const { definitions: defs, origins } = out
  // The default exchange's bindings are implied by every stream, never declared.
  for (const b of src.router.bindings()) {
    if (b.exchange === defaultExchangeName && catalog.exchange(b.exchange)?.protected === true && config.exchanges[b.exchange] === undefined) continue
    defs.bindings.push(bindingYaml(b, typeOf(b.exchange)))
    origins.bindings.push(fileBindings.has(bindingId(b)) ? 'file' : 'runtime')
  }
  const groups = src.groups.all().sort((a, b) => (a.name < b.name ? -1 : 1))
  // A built-in exchange or stream is written only when something written names it, so the
  // document validates on its own.
  const named = new Set<string>()
  for (const b of defs.bindings) for (const k of ['exchange', 'toExchange', 'stream']) if (typeof b[k] === 'string') named.add(`${k === 'stream' ? 's' : 'e'}:${b[k] as string}`)
  for (const g of groups) {
    named.add(`s:${g.config.stream}`)
    const dl = g.config.deadLetter
    if (dl !== null) named.add(dl.kind === 'stream' ? `s:${dl.stream}` : `e:${dl.exchange}`)
  }
  for (const e of catalog.exchanges()) if (e.config.alternate !== null) named.add(`e:${e.config.alternate}`)
  for (const e of [...catalog.exchanges()].sort((a, b) => (a.config.name < b.config.name ? -1 : 1))) {
    const name = e.config.name
    const origin: DefinitionOrigin = config.exchanges[name] !== undefined ? 'file' : e.protected ? 'builtin' : 'runtime'
    if (origin === 'builtin' && !named.has(`e:${name}`)) continue
    defs.exchanges[name] = exchangeYaml(e.config)
    origins.exchanges[name] = origin
  }
  for (const s of src.streams.all().sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const entry = catalog.stream(s.name)
    const origin: DefinitionOrigin = config.streams[s.name] !== undefined ? 'file' : entry?.protected === false ? 'runtime' : 'builtin'
    if (origin === 'builtin' && !(s.name === ingestErrorsStream && named.has(`s:${s.name}`))) continue
    defs.streams[s.name] = streamYaml(s.config, config.server.durability.fsync)
    origins.streams[s.name] = origin
  }
  for (const g of groups) {
    defs.groups[g.name] = groupYaml(g.config)
    origins.groups[g.name] = config.groups[g.name] !== undefined ? 'file' : 'runtime'
  }
  return out
}

const originText: Readonly<Record<DefinitionOrigin, string>> = { file: ' from the configuration file', runtime: ' declared at run time', builtin: ' built in' }

/** The export as YAML: one flow mapping a line, each marked with where it comes from. */
export function definitionsYaml(x: DefinitionsExport, header: string): string {
  const doc = new Document(x.definitions)
  doc.commentBefore = header
  const mark = (section: 'exchanges' | 'streams' | 'groups'): void => {
    const node = doc.get(section, true)
    if (!isMap(node)) return
    for (const pair of node.items) {
      const value = pair.value as Node | null
      const key = String((pair.key as { value?: unknown }).value)
      if (value === null) continue
      if (isMap(value)) value.flow = true
      value.comment = originText[x.origins[section][key] ?? 'file']
    }
  }
  mark('exchanges')
  mark('streams')
  const bindings = doc.get('bindings', true)
  if (isSeq(bindings)) {
    bindings.items.forEach((item, i) => {
      if (!isMap(item)) return
      item.flow = true
      item.comment = originText[x.origins.bindings[i] ?? 'file']
    })
  }
  mark('groups')
  return doc.toString({ lineWidth: 0 })
}

// ---- import -----------------------------------------------------------------------------------

export interface DefinitionChange {
  readonly kind: DefinitionKind
  readonly name: string
  /** create: missing, will be declared; unchanged: exists with these settings. */
  readonly action: 'create' | 'unchanged'
}

export interface DefinitionConflict {
  readonly kind: DefinitionKind
  readonly name: string
  readonly message: string
}

export interface ImportPlan {
  readonly changes: readonly DefinitionChange[]
  readonly conflicts: readonly DefinitionConflict[]
  /** Declares every `create`; refuses (throws) when there is a conflict. */
  apply(): Promise<void>
}

const sections = ['exchanges', 'streams', 'bindings', 'groups'] as const

function bindingName(b: BindingConfig): string {
  return `${b.exchange} → ${b.destination.kind} ${b.destination.name}${b.key !== '' ? ` (key "${b.key}")` : ''}`
}

/** The fields two configs differ in, as "type fanout, not topic". */
function differences<T extends object>(have: T, want: T, keys: ReadonlyArray<keyof T & string>): string[] {
  return keys.filter((k) => !same(have[k], want[k])).map((k) => `${k} ${JSON.stringify(have[k])}, not ${JSON.stringify(want[k])}`)
}

/**
 * Reads a document of the export's shape (YAML or JSON) and plans its import: what is missing
 * and would be declared, what exists as it is, and what exists otherwise (a conflict). Problems of
 * the document itself are a 400 naming each; nothing is declared by planning.
 */
export function planImport(src: DefinitionsSource, text: string): ImportPlan {
  let doc: unknown
  try {
    doc = parse(text, { prettyErrors: false })
  } catch (err) {
    throw errors.badRequest(`the document is not valid YAML or JSON: ${(err as Error).message}`)
  }
  if (doc === null || doc === undefined) doc = {}
  if (typeof doc !== 'object' || Array.isArray(doc)) throw errors.badRequest('the document must be a mapping with exchanges, streams, bindings and groups, as GET /v1/definitions writes it')
  const given = doc as Record<string, unknown>
  const unknown = Object.keys(given).filter((k) => !(sections as readonly string[]).includes(k))
  if (unknown.length > 0) throw errors.badRequest(`the document may hold only ${sections.join(', ')}; not ${unknown.join(', ')} (server, auth and rateLimits live in the configuration file)`, { problems: unknown.map((k) => `${k}: not a definitions section`) })

  // Validated as a file is, with every running exchange and stream present so that references
  // to them resolve; the document's own entries replace those of the same name.
  const { catalog, config } = src
  const asObject = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {})
  const exchanges: Record<string, unknown> = Object.fromEntries(catalog.exchanges().map((e) => [e.config.name, { type: e.config.type }]))
  const streams: Record<string, unknown> = Object.fromEntries(src.streams.all().map((s) => [s.name, {}]))
  Object.assign(exchanges, given.exchanges ?? {})
  Object.assign(streams, given.streams ?? {})
  const groupsIn = given.groups ?? {}
  const whole = {
    server: { limits: { maxStreams: Math.max(1, Object.keys(streams).length), maxGroups: Math.max(1, Object.keys(asObject(groupsIn)).length) } },
    exchanges,
    streams,
    bindings: given.bindings ?? [],
    groups: groupsIn,
  }
  const result = validateConfigText(JSON.stringify(whole, null, 1), { env: {} })
  if (!result.ok) {
    const problems = result.problems.map((p) => p.replace(/ \(line \d+, col \d+\)/, ''))
    throw errors.badRequest(`the document is not valid: ${problems.join('; ')}`, { problems })
  }
  const want = result.config

  const changes: DefinitionChange[] = []
  const conflicts: DefinitionConflict[] = []
  const conflict = (kind: DefinitionKind, name: string, message: string): void => void conflicts.push({ kind, name, message })

  const newExchanges: ExchangeConfig[] = []
  for (const name of Object.keys(asObject(given.exchanges))) {
    const w = want.exchanges[name]!
    const have = catalog.exchange(name)?.config
    if (have === undefined) {
      newExchanges.push(w)
      changes.push({ kind: 'exchange', name, action: 'create' })
      continue
    }
    const diff = differences(have, w, ['type', 'routingKey', 'alternate', 'unroutable', 'dedup', 'dedupWindowMs'])
    if (diff.length === 0) changes.push({ kind: 'exchange', name, action: 'unchanged' })
    else conflict('exchange', name, `exchange "${name}" exists with ${diff.join(', ')}`)
  }

  const newStreams: StreamConfig[] = []
  const streamDefaults = defaultsOf().stream
  for (const name of Object.keys(asObject(given.streams))) {
    const w = want.streams[name]!
    const have = src.streams.get(name)?.config
    if (have === undefined) {
      // A run-time stream keeps its retention and segment size; its segment age and fsync are the defaults.
      const fileOnly = differences({ segmentAgeMs: streamDefaults.segmentAgeMs, fsync: config.server.durability.fsync }, { segmentAgeMs: w.segmentAgeMs, fsync: w.fsync }, ['segmentAgeMs', 'fsync'])
      if (fileOnly.length > 0) conflict('stream', name, `stream "${name}": segmentAge and fsync can be set only in the configuration file (${fileOnly.join(', ')})`)
      else {
        newStreams.push(w)
        changes.push({ kind: 'stream', name, action: 'create' })
      }
      continue
    }
    const diff = [...differences(have.retention, w.retention, ['maxAgeMs', 'maxBytes', 'policy']).map((d) => `retention.${d}`), ...differences(have, w, ['segmentBytes', 'segmentAgeMs', 'fsync', 'replicas'])]
    if (diff.length === 0) changes.push({ kind: 'stream', name, action: 'unchanged' })
    else conflict('stream', name, `stream "${name}" exists with ${diff.join(', ')}`)
  }

  const running = new Set(src.router.bindings().map((b) => bindingId(b)))
  const newBindings: BindingDef[] = []
  const planned = new Set<string>()
  for (const b of want.bindings) {
    const type = want.exchanges[b.exchange]?.type
    const def = bindingDef(b, type)
    const id = bindingIdOf(def, type)
    if (planned.has(id)) continue
    planned.add(id)
    if (running.has(id)) changes.push({ kind: 'binding', name: bindingName(b), action: 'unchanged' })
    else {
      newBindings.push(def)
      changes.push({ kind: 'binding', name: bindingName(b), action: 'create' })
    }
  }

  const newGroups: Array<[string, unknown]> = []
  for (const [name, raw] of Object.entries(asObject(groupsIn))) {
    const w = want.groups[name]!
    const have = src.groups.get(name)?.config
    if (have === undefined) {
      newGroups.push([name, raw])
      changes.push({ kind: 'group', name, action: 'create' })
      continue
    }
    const keys = Object.keys(w) as Array<keyof GroupConfig & string>
    const diff = differences(have, w, keys)
    if (diff.length === 0) changes.push({ kind: 'group', name, action: 'unchanged' })
    else conflict('group', name, `group "${name}" exists with ${diff.join(', ')}`)
  }

  // The counts the declarations would check one by one, checked for the whole document first.
  const { maxStreams, maxGroups } = config.server.limits
  if (newStreams.length > 0 && catalog.streamCount + newStreams.length > maxStreams) conflict('stream', newStreams[0]!.name, errors.tooManyStreams(newStreams[0]!.name, maxStreams).message)
  if (newGroups.length > 0 && src.groups.all().length + newGroups.length > maxGroups) conflict('group', newGroups[0]![0], errors.tooManyGroups(newGroups[0]![0], maxGroups).message)

  return {
    changes,
    conflicts,
    apply: async () => {
      if (conflicts.length > 0) throw errors.definitionsConflict(conflicts)
      // An alternate may be another new exchange: declare those it names first.
      const pending = [...newExchanges]
      while (pending.length > 0) {
        const i = pending.findIndex((e) => e.alternate === null || catalog.exchange(e.alternate) !== undefined)
        const e = pending.splice(i < 0 ? 0 : i, 1)[0]!
        await catalog.declareExchange({ name: e.name, type: e.type, alternate: e.alternate, settings: { routingKey: e.routingKey, unroutable: e.unroutable, dedup: e.dedup, dedupWindowMs: e.dedupWindowMs } })
      }
      for (const s of newStreams) await catalog.declareStream({ name: s.name, retention: s.retention, segmentBytes: s.segmentBytes, replicas: s.replicas ?? undefined })
      for (const b of newBindings) await catalog.bind(b)
      for (const [name, raw] of newGroups) await src.groups.declare(name, raw)
    },
  }
}
