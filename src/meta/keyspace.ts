import type { ClassicLevel } from 'classic-level'
import { errors } from '../errors.js'
import type { MetaOp } from './group-commit.js'
import { prefixEnd, type KeyCodec, type KeyPrefix } from './key-codec.js'
import type { ValueCodec } from './value-codec.js'

export interface WriteOptions {
  /**
   * Make the write durable (fsync) before the promise resolves. Concurrent synced writes share
   * one fsync (group commit). Default true: a caller must choose to risk losing a write.
   */
  readonly sync?: boolean
}

export interface Entry<K, V> {
  readonly key: K
  readonly value: V
}

export interface KeyRange<K extends readonly unknown[]> {
  /** Only keys starting with this sub-tuple. */
  readonly prefix?: KeyPrefix<K>
  /** Inclusive lower bound; a sub-tuple means "from the first key starting with it". */
  readonly gte?: KeyPrefix<K>
  /** Exclusive upper bound; a sub-tuple means "before the first key starting with it". */
  readonly lt?: KeyPrefix<K>
  readonly reverse?: boolean
  readonly limit?: number
}

export interface Keyspace<K extends readonly unknown[], V> {
  readonly name: string
  readonly namespace: number
  get(key: K): Promise<V | undefined>
  put(key: K, value: V, opts?: WriteOptions): Promise<void>
  del(key: K, opts?: WriteOptions): Promise<void>
  /** An op for MetaStore.write, to change several keyspaces atomically. */
  putOp(key: K, value: V): MetaOp
  delOp(key: K): MetaOp
  /**
   * Entries with from <= key < to in key order (to omitted: to the end of the keyspace), at
   * most `limit` of them (default: the store's rangeEntriesMax). Use iterate() to read more.
   */
  range(from: KeyPrefix<K>, to?: KeyPrefix<K>, opts?: { readonly limit?: number; readonly reverse?: boolean }): Promise<Array<Entry<K, V>>>
  /** Entries whose key starts with `prefix`, bounded like range(). */
  scan(prefix: KeyPrefix<K>, opts?: { readonly limit?: number; readonly reverse?: boolean }): Promise<Array<Entry<K, V>>>
  /** Streams a range without holding it in memory. */
  iterate(range?: KeyRange<K>): AsyncGenerator<Entry<K, V>>
}

/** What a keyspace needs from the store; keeps the store's internals private. */
export interface KeyspaceHost {
  readonly db: ClassicLevel<Buffer, Buffer>
  readonly rangeEntriesMax: number
  assertOpen(): void
  write(ops: readonly MetaOp[], opts?: WriteOptions): Promise<void>
  mapError(err: unknown): unknown
}

// Entries fetched per native call while iterating; one call per entry would dominate scans.
const iterateChunkEntries = 256

export class LevelKeyspace<K extends readonly unknown[], V> implements Keyspace<K, V> {
  readonly name: string
  readonly #host: KeyspaceHost
  readonly #keys: KeyCodec<K>
  readonly #values: ValueCodec<V>

  constructor(host: KeyspaceHost, name: string, keys: KeyCodec<K>, values: ValueCodec<V>) {
    this.#host = host
    this.name = name
    this.#keys = keys
    this.#values = values
  }

  get namespace(): number {
    return this.#keys.namespace
  }

  async get(key: K): Promise<V | undefined> {
    this.#host.assertOpen()
    const encoded = this.#keys.encode(key)
    let bytes: Buffer | undefined
    try {
      bytes = await this.#host.db.get(encoded)
    } catch (err) {
      throw this.#host.mapError(err)
    }
    return bytes === undefined ? undefined : this.#decodeValue(encoded, bytes)
  }

  put(key: K, value: V, opts?: WriteOptions): Promise<void> {
    try {
      return this.#host.write([this.putOp(key, value)], opts)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  del(key: K, opts?: WriteOptions): Promise<void> {
    try {
      return this.#host.write([this.delOp(key)], opts)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  putOp(key: K, value: V): MetaOp {
    return { type: 'put', key: this.#keys.encode(key), value: this.#values.encode(value) }
  }

  delOp(key: K): MetaOp {
    return { type: 'del', key: this.#keys.encode(key) }
  }

  range(from: KeyPrefix<K>, to?: KeyPrefix<K>, opts: { readonly limit?: number; readonly reverse?: boolean } = {}): Promise<Array<Entry<K, V>>> {
    return this.#collect({ gte: from, ...(to === undefined ? {} : { lt: to }), ...opts })
  }

  scan(prefix: KeyPrefix<K>, opts: { readonly limit?: number; readonly reverse?: boolean } = {}): Promise<Array<Entry<K, V>>> {
    return this.#collect({ prefix, ...opts })
  }

  async *iterate(range: KeyRange<K> = {}): AsyncGenerator<Entry<K, V>> {
    this.#host.assertOpen()
    const it = this.#host.db.iterator(this.#bounds(range))
    try {
      for (;;) {
        let chunk: Array<[Buffer, Buffer]>
        try {
          chunk = await it.nextv(iterateChunkEntries)
        } catch (err) {
          throw this.#host.mapError(err)
        }
        if (chunk.length === 0) return
        for (const [key, value] of chunk) yield { key: this.#decodeKey(key), value: this.#decodeValue(key, value) }
      }
    } finally {
      await it.close()
    }
  }

  async #collect(range: KeyRange<K>): Promise<Array<Entry<K, V>>> {
    const out: Array<Entry<K, V>> = []
    for await (const entry of this.iterate({ ...range, limit: range.limit ?? this.#host.rangeEntriesMax })) out.push(entry)
    return out
  }

  #bounds(range: KeyRange<K>): { gte: Buffer; lt?: Buffer; reverse: boolean; limit: number } {
    // Every bound is clipped to this keyspace's namespace byte, so a scan never leaks into the next one.
    const scope = this.#keys.encode((range.prefix ?? []) as KeyPrefix<K>)
    let gte = scope
    let lt = prefixEnd(scope)
    if (range.gte !== undefined) {
      const from = this.#keys.encode(range.gte)
      if (Buffer.compare(from, gte) > 0) gte = from
    }
    if (range.lt !== undefined) {
      const to = this.#keys.encode(range.lt)
      if (lt === undefined || Buffer.compare(to, lt) < 0) lt = to
    }
    return { gte, ...(lt === undefined ? {} : { lt }), reverse: range.reverse ?? false, limit: range.limit ?? -1 }
  }

  #decodeKey(key: Buffer): K {
    try {
      return this.#keys.decode(key)
    } catch (err) {
      throw errors.metaCorrupt(`${this.name} key ${key.toString('hex')}`, (err as Error).message)
    }
  }

  #decodeValue(key: Buffer, value: Buffer): V {
    try {
      return this.#values.decode(value)
    } catch (err) {
      throw errors.metaCorrupt(`${this.name} value at key ${key.toString('hex')}`, (err as Error).message)
    }
  }
}
