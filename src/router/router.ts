import { errors } from '../errors.js'
import { HeadersTable } from './headers-table.js'
import { DirectTable, FanoutTable, type RoutingTable } from './tables.js'
import { Collector, exchangeKind, streamKind, type CompiledBinding, type ExchangeNode, type StreamTarget, type Target } from './target.js'
import { splitTopic, TopicTrie } from './topic-trie.js'
import type { BindingDef, ExchangeDef, ExchangeType, HeaderValue, RouteResult } from './types.js'

const exchangeTypes: ReadonlySet<string> = new Set<ExchangeType>(['direct', 'fanout', 'topic', 'headers'])
const noStreams: readonly string[] = Object.freeze([])

function newTable(type: ExchangeType): RoutingTable {
  switch (type) {
    case 'direct':
      return new DirectTable()
    case 'fanout':
      return new FanoutTable()
    case 'topic':
      return new TopicTrie()
    case 'headers':
      return new HeadersTable()
  }
}

function normalizeExchange(def: ExchangeDef): Readonly<ExchangeDef> {
  const name: unknown = def.name
  if (typeof name !== 'string') throw errors.routerBadExchange(String(name), 'the name must be a string')
  if (!exchangeTypes.has(def.type)) throw errors.routerBadExchange(name, `unknown type "${String(def.type)}"; expected direct, fanout, topic or headers`)
  if (def.alternate !== undefined && typeof def.alternate !== 'string') throw errors.routerBadExchange(name, 'alternate must be an exchange name')
  if (def.unroutable !== undefined && def.unroutable !== 'drop' && def.unroutable !== 'reject') {
    throw errors.routerBadExchange(name, `unroutable must be drop or reject, not "${String(def.unroutable)}"`)
  }
  const out: ExchangeDef = { name, type: def.type }
  if (def.alternate !== undefined) out.alternate = def.alternate
  if (def.unroutable !== undefined) out.unroutable = def.unroutable
  return Object.freeze(out)
}

function isHeaderValue(v: unknown): v is HeaderValue {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
}

/** A binding in its one canonical shape (key filled, header arguments only on headers exchanges), checked; ids compare on it. */
export function normalizeBinding(def: BindingDef, type: ExchangeType): Readonly<BindingDef> {
  const exchange = def.exchange
  const bad = (why: string) => errors.routerBadBinding(exchange, why)
  const hasStream = def.stream !== undefined
  if (hasStream === (def.toExchange !== undefined)) throw bad('give exactly one of stream and toExchange')
  const dest = hasStream ? def.stream : def.toExchange
  if (typeof dest !== 'string' || dest === '') throw bad('the destination must be a non-empty name')
  if (def.key !== undefined && typeof def.key !== 'string') throw bad('key must be a string')
  const out: BindingDef = { exchange, key: def.key ?? '' }
  if (hasStream) out.stream = dest
  else out.toExchange = dest
  if (type !== 'headers') {
    if (def.match !== undefined || def.headers !== undefined) throw bad(`match and headers apply to headers exchanges, and this one is ${type}`)
    return Object.freeze(out)
  }
  let match = def.match
  const headers: Record<string, HeaderValue> = {}
  for (const [name, value] of Object.entries(def.headers ?? {})) {
    if (name === 'x-match') {
      // Lets the AMQP door pass binding arguments through as they arrive.
      if (value !== 'all' && value !== 'any') throw bad(`x-match must be all or any, not ${JSON.stringify(value)}`)
      if (match !== undefined && match !== value) throw bad(`match is ${match} but x-match is ${value}`)
      match = value
      continue
    }
    if (!isHeaderValue(value)) throw bad(`header "${name}" must be a string, a finite number, a boolean or null`)
    headers[name] = value
  }
  if (match !== undefined && match !== 'all' && match !== 'any') throw bad(`match must be all or any, not "${String(match)}"`)
  out.match = match ?? 'all'
  out.headers = Object.freeze(headers)
  return Object.freeze(out)
}

/** Two definitions with the same id are the same binding, as AMQP identifies one by source, destination, key and arguments. */
export function bindingId(def: Readonly<BindingDef>): string {
  const headers = def.headers === undefined ? null : Object.entries(def.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return JSON.stringify([def.exchange, def.stream ?? null, def.toExchange ?? null, def.key, def.match ?? null, headers])
}

/** The binding an id names (the inverse of bindingId), or undefined for a string that is not one. */
export function bindingFromId(id: string): BindingDef | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(id)
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== 6) return undefined
  const [exchange, stream, toExchange, key, match, headers] = parsed as unknown[]
  if (typeof exchange !== 'string' || (stream !== null && typeof stream !== 'string') || (toExchange !== null && typeof toExchange !== 'string')) return undefined
  if ((key !== undefined && key !== null && typeof key !== 'string') || (match !== null && match !== 'all' && match !== 'any')) return undefined
  if (headers !== null && !(Array.isArray(headers) && headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string'))) return undefined
  return {
    exchange,
    ...(stream === null ? {} : { stream }),
    ...(toExchange === null ? {} : { toExchange }),
    ...(typeof key === 'string' ? { key } : {}),
    ...(match === null ? {} : { match }),
    ...(headers === null ? {} : { headers: Object.fromEntries(headers as Array<[string, HeaderValue]>) }),
  }
}

/**
 * Why declaring `b` over the existing `a` is a conflict, or undefined when it is the same exchange.
 * `unroutable` is compared only when `b` names it: AMQP's exchange.declare cannot say it.
 */
export function exchangeConflict(a: Readonly<ExchangeDef>, b: Readonly<ExchangeDef>): string | undefined {
  if (a.type !== b.type) return `as ${a.type}, not ${b.type}`
  if (a.alternate !== b.alternate) return `with alternate ${String(a.alternate ?? 'none')}, not ${String(b.alternate ?? 'none')}`
  if (b.unroutable !== undefined && (a.unroutable ?? 'drop') !== b.unroutable) return `with unroutable ${a.unroutable ?? 'drop'}, not ${b.unroutable}`
  return undefined
}

/**
 * Exchanges and bindings compiled into routing tables: a hash map for direct, a list for fanout, a
 * trie for topic, an index by header name for headers. Pure and synchronous.
 *
 * Routing follows RabbitMQ's rabbit_exchange:route: exchange-to-exchange bindings are followed
 * breadth first, each exchange at most once per event (so cycles end), and an exchange that matched
 * no binding at all hands the event to its alternate, whose own alternate applies in turn.
 */
/** Routing keys remembered per exchange (Router.#routes); past it the exchange's start again. */
const routeCacheKeys = 4096

export class Router {
  readonly #exchanges = new Map<string, ExchangeNode>()
  readonly #bindings = new Map<string, CompiledBinding>()
  readonly #streams = new Map<string, StreamTarget>()
  readonly #collector = new Collector()
  /**
   * Routes already worked out, by exchange and routing key: a publisher sends the same few keys
   * over and over, and matching each event against the tables (a topic trie walk, the key split
   * into words) was a tenth of a publish. Any change to exchanges or bindings empties it; routes
   * that passed a headers exchange depend on more than the key and are never kept.
   */
  readonly #routes = new Map<string, Map<string, RouteResult>>()

  /** Throws SLUICE_ERR_ROUTER_* on a duplicate exchange, a dangling reference or a bad binding. */
  constructor(exchanges: readonly ExchangeDef[] = [], bindings: readonly BindingDef[] = []) {
    for (const def of exchanges) {
      if (this.#exchanges.has(def.name)) throw errors.routerBadExchange(def.name, 'declared twice')
      this.addExchange(def)
    }
    // Dynamic declarations may name an alternate that comes later (AMQP allows it), but in a
    // static definition a missing one is a typo that would silently drop events.
    for (const node of this.#exchanges.values()) {
      const alternate = node.def.alternate
      if (alternate !== undefined && !this.#exchanges.has(alternate)) throw errors.routerBadExchange(node.name, `alternate exchange "${alternate}" does not exist`)
    }
    for (const def of bindings) this.bind(def)
  }

  hasExchange(name: string): boolean {
    return this.#exchanges.has(name)
  }

  exchanges(): readonly Readonly<ExchangeDef>[] {
    return [...this.#exchanges.values()].map((node) => node.def)
  }

  bindings(): readonly Readonly<BindingDef>[] {
    return [...this.#bindings.values()].map((binding) => binding.def)
  }

  /** Returns false when an identical exchange exists; throws SLUICE_ERR_ROUTER_EXCHANGE_CONFLICT when a different one does. */
  addExchange(def: ExchangeDef): boolean {
    const normalized = normalizeExchange(def)
    const existing = this.#exchanges.get(normalized.name)
    if (existing !== undefined) {
      const why = exchangeConflict(existing.def, normalized)
      if (why !== undefined) throw errors.routerExchangeConflict(normalized.name, why)
      return false
    }
    const unroutableResult: RouteResult = Object.freeze({ streams: noStreams, unroutable: true, policy: normalized.unroutable ?? 'drop' })
    this.#exchanges.set(normalized.name, { kind: exchangeKind, name: normalized.name, def: normalized, table: newTable(normalized.type), unroutableResult, mark: 0 })
    this.#routes.clear()
    return true
  }

  /** Deletes the exchange and every binding from or to it. Exchanges naming it as alternate keep the name, as in RabbitMQ. */
  deleteExchange(name: string): boolean {
    if (!this.#exchanges.has(name)) return false
    for (const binding of [...this.#bindings.values()]) {
      if (binding.def.exchange === name || binding.def.toExchange === name) this.#remove(binding)
    }
    this.#exchanges.delete(name)
    this.#routes.clear()
    return true
  }

  /** Returns false when the same binding exists already. Both exchanges must exist; streams are not checked. */
  bind(def: BindingDef): boolean {
    const source = this.#exchanges.get(def.exchange)
    if (source === undefined) throw errors.routerUnknownExchange(String(def.exchange))
    const normalized = normalizeBinding(def, source.def.type)
    const id = bindingId(normalized)
    if (this.#bindings.has(id)) return false
    let target: Target
    if (normalized.toExchange !== undefined) {
      const node = this.#exchanges.get(normalized.toExchange)
      if (node === undefined) throw errors.routerUnknownExchange(normalized.toExchange)
      target = node
    } else {
      const name = normalized.stream!
      let stream = this.#streams.get(name)
      if (stream === undefined) this.#streams.set(name, (stream = { kind: streamKind, name, mark: 0, refs: 0 }))
      stream.refs++
      target = stream
    }
    const binding: CompiledBinding = { id, def: normalized, target }
    this.#bindings.set(id, binding)
    const table = source.table
    const key = normalized.key!
    switch (table.type) {
      case 'direct':
      case 'topic':
        table.add(binding, key)
        break
      case 'fanout':
        table.add(binding)
        break
      case 'headers':
        table.add(binding, normalized.match === 'any', normalized.headers)
        break
    }
    this.#routes.clear()
    return true
  }

  /** Returns false when no such binding exists. */
  unbind(def: BindingDef): boolean {
    const source = this.#exchanges.get(def.exchange)
    if (source === undefined) return false
    const binding = this.#bindings.get(bindingId(normalizeBinding(def, source.def.type)))
    if (binding === undefined) return false
    this.#remove(binding)
    return true
  }

  /**
   * Where an event published to `exchange` goes. `headers` and `body` are read only by headers
   * exchanges. Throws SLUICE_ERR_UNKNOWN_EXCHANGE. The result must not be mutated: the
   * unroutable one is shared.
   */
  route(exchange: string, routingKey: string, headers?: Readonly<Record<string, unknown>>, body?: unknown): RouteResult {
    const known = this.#routes.get(exchange)?.get(routingKey)
    if (known !== undefined) return known
    const entry = this.#exchanges.get(exchange)
    if (entry === undefined) throw errors.routerUnknownExchange(exchange)
    let byHeaders = false
    const c = this.#collector
    const epoch = ++c.epoch
    const work = c.work
    work.length = 0
    c.streams = null
    entry.mark = epoch
    work.push(entry)
    let words: readonly string[] | undefined
    for (let w = 0; w < work.length; w++) {
      const node = work[w]!
      c.matched = false
      const table = node.table
      switch (table.type) {
        case 'direct':
          table.collect(routingKey, c)
          break
        case 'fanout':
          table.collect(c)
          break
        case 'topic':
          table.collect((words ??= splitTopic(routingKey)), c)
          break
        case 'headers':
          byHeaders = true
          table.collect(headers, body, c)
          break
      }
      const alternate = node.def.alternate
      if (!c.matched && alternate !== undefined) {
        const next = this.#exchanges.get(alternate)
        if (next !== undefined && next.mark !== epoch) {
          next.mark = epoch
          work.push(next)
        }
      }
    }
    const streams = c.streams
    c.streams = null
    const result: RouteResult = streams === null ? entry.unroutableResult : Object.freeze({ streams: Object.freeze(streams), unroutable: false, policy: undefined })
    if (!byHeaders) this.#remember(exchange, routingKey, result)
    return result
  }

  #remember(exchange: string, routingKey: string, result: RouteResult): void {
    let keys = this.#routes.get(exchange)
    if (keys === undefined) this.#routes.set(exchange, (keys = new Map()))
    // Bounded: a publisher making up a new key per event would otherwise grow it without end.
    else if (keys.size >= routeCacheKeys) keys.clear()
    keys.set(routingKey, result)
  }

  #remove(binding: CompiledBinding): void {
    this.#routes.clear()
    this.#bindings.delete(binding.id)
    const source = this.#exchanges.get(binding.def.exchange)
    if (source !== undefined) {
      const table = source.table
      switch (table.type) {
        case 'direct':
        case 'topic':
          table.remove(binding, binding.def.key!)
          break
        case 'fanout':
        case 'headers':
          table.remove(binding)
          break
      }
    }
    const target = binding.target
    if (target.kind === streamKind && --target.refs === 0) this.#streams.delete(target.name)
  }
}
