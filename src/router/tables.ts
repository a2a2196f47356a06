import type { HeadersTable } from './headers-table.js'
import type { Collector, CompiledBinding } from './target.js'
import type { TopicTrie } from './topic-trie.js'

export class DirectTable {
  readonly type = 'direct'
  readonly #byKey = new Map<string, CompiledBinding[]>()

  add(binding: CompiledBinding, key: string): void {
    const list = this.#byKey.get(key)
    if (list === undefined) this.#byKey.set(key, [binding])
    else list.push(binding)
  }

  remove(binding: CompiledBinding, key: string): void {
    const list = this.#byKey.get(key)
    if (list === undefined) return
    const i = list.indexOf(binding)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.#byKey.delete(key)
  }

  collect(key: string, c: Collector): void {
    const list = this.#byKey.get(key)
    if (list !== undefined) c.addAll(list)
  }
}

export class FanoutTable {
  readonly type = 'fanout'
  readonly #all: CompiledBinding[] = []

  add(binding: CompiledBinding): void {
    this.#all.push(binding)
  }

  remove(binding: CompiledBinding): void {
    const i = this.#all.indexOf(binding)
    if (i >= 0) this.#all.splice(i, 1)
  }

  collect(c: Collector): void {
    c.addAll(this.#all)
  }
}

export type RoutingTable = DirectTable | FanoutTable | TopicTrie | HeadersTable
