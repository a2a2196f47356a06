import type { Collector, CompiledBinding } from './target.js'
import type { HeaderValue } from './types.js'

// Headers exchange semantics, after RabbitMQ's rabbit_exchange_type_headers:
// - `all` (the default) needs every binding header to match, `any` at least one;
// - a binding header with a value matches an attribute strictly equal to it (so "500" is not 500,
//   as an AMQP longstr never equals an integer); a `null` value only needs the attribute present;
// - binding headers whose name starts with `x-` take no part in matching;
// - so an `all` binding left with no headers matches every event, an `any` one matches none.
//
// An event's attributes are its explicit headers over its body's top-level scalar fields. They are
// looked up lazily, one name at a time, so no merged object is built per event.

const absent: unique symbol = Symbol('absent')
type Attribute = unknown

export function attribute(headers: Readonly<Record<string, unknown>> | undefined, body: unknown, name: string): Attribute | typeof absent {
  if (headers !== undefined && Object.hasOwn(headers, name)) {
    const value = headers[name]
    if (value !== undefined) return value
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.hasOwn(body, name)) {
    const value = (body as Record<string, unknown>)[name]
    if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value
  }
  return absent
}

interface HeadersBinding {
  readonly binding: CompiledBinding
  readonly any: boolean
  readonly names: readonly string[]
  /** Parallel to names; `null` asks only for presence. */
  readonly values: readonly HeaderValue[]
}

/** Every binding reachable through one attribute name. */
interface NameEntry {
  readonly name: string
  readonly byValue: Map<HeaderValue, HeadersBinding[]>
  readonly present: HeadersBinding[]
  size: number
}

function matchesAll(h: HeadersBinding, headers: Readonly<Record<string, unknown>> | undefined, body: unknown): boolean {
  for (let i = 0; i < h.names.length; i++) {
    const got = attribute(headers, body, h.names[i]!)
    if (got === absent) return false
    const want = h.values[i]!
    if (want !== null && got !== want) return false
  }
  return true
}

function removeFrom<T>(list: T[], item: T): boolean {
  const i = list.indexOf(item)
  if (i < 0) return false
  list.splice(i, 1)
  return true
}

/**
 * Bindings are indexed by attribute name, and within a name by wanted value. An `any` binding is
 * filed under each of its headers (any hit is a match); an `all` binding under one of them, its
 * anchor, preferring a header with a value (a hash lookup rejects most events before the full
 * check). A route looks up each indexed name once, so its cost follows the number of distinct
 * header names in bindings, not the number of bindings.
 */
export class HeadersTable {
  readonly type = 'headers'
  readonly #byName = new Map<string, NameEntry>()
  /** Dense copy of #byName's values, rebuilt when a name comes or goes: iterating a Map allocates. */
  #entries: NameEntry[] = []
  readonly #always: CompiledBinding[] = []
  readonly #compiled = new Map<CompiledBinding, HeadersBinding>()

  add(binding: CompiledBinding, any: boolean, headers: Readonly<Record<string, HeaderValue>> | undefined): void {
    const names: string[] = []
    const values: HeaderValue[] = []
    for (const name of Object.keys(headers ?? {}).sort()) {
      if (name.startsWith('x-')) continue
      names.push(name)
      values.push(headers![name]!)
    }
    const h: HeadersBinding = { binding, any, names, values }
    this.#compiled.set(binding, h)
    if (names.length === 0) {
      if (!any) this.#always.push(binding)
      return
    }
    if (any) {
      for (let i = 0; i < names.length; i++) this.#file(h, names[i]!, values[i]!)
      return
    }
    const anchor = Math.max(0, values.findIndex((v) => v !== null))
    this.#file(h, names[anchor]!, values[anchor]!)
  }

  remove(binding: CompiledBinding): void {
    const h = this.#compiled.get(binding)
    if (h === undefined) return
    this.#compiled.delete(binding)
    if (h.names.length === 0) {
      removeFrom(this.#always, binding)
      return
    }
    for (let i = 0; i < h.names.length; i++) this.#unfile(h, h.names[i]!, h.values[i]!)
  }

  collect(headers: Readonly<Record<string, unknown>> | undefined, body: unknown, c: Collector): void {
    if (this.#always.length > 0) c.addAll(this.#always)
    const entries = this.#entries
    for (let e = 0; e < entries.length; e++) {
      const entry = entries[e]!
      const got = attribute(headers, body, entry.name)
      if (got === absent) continue
      if (entry.present.length > 0) this.#check(entry.present, headers, body, c)
      if (entry.byValue.size > 0) {
        const list = entry.byValue.get(got as HeaderValue)
        if (list !== undefined) this.#check(list, headers, body, c)
      }
    }
  }

  #check(list: readonly HeadersBinding[], headers: Readonly<Record<string, unknown>> | undefined, body: unknown, c: Collector): void {
    for (let i = 0; i < list.length; i++) {
      const h = list[i]!
      if (h.any || matchesAll(h, headers, body)) c.add(h.binding.target)
    }
  }

  #file(h: HeadersBinding, name: string, value: HeaderValue): void {
    let entry = this.#byName.get(name)
    if (entry === undefined) {
      entry = { name, byValue: new Map(), present: [], size: 0 }
      this.#byName.set(name, entry)
      this.#entries = [...this.#byName.values()]
    }
    entry.size++
    if (value === null) {
      entry.present.push(h)
      return
    }
    let list = entry.byValue.get(value)
    if (list === undefined) entry.byValue.set(value, (list = []))
    list.push(h)
  }

  #unfile(h: HeadersBinding, name: string, value: HeaderValue): void {
    const entry = this.#byName.get(name)
    if (entry === undefined) return
    let removed: boolean
    if (value === null) removed = removeFrom(entry.present, h)
    else {
      const list = entry.byValue.get(value)
      removed = list !== undefined && removeFrom(list, h)
      if (list !== undefined && list.length === 0) entry.byValue.delete(value)
    }
    // An `all` binding is filed under its anchor only, so most of its names find nothing here.
    if (!removed) return
    if (--entry.size === 0) {
      this.#byName.delete(name)
      this.#entries = [...this.#byName.values()]
    }
  }
}
