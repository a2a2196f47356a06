import type { Config, DurabilityConfig, ExchangeConfig, RetentionConfig, StreamConfig } from '../config/index.js'
import { defaultExchangeConfig, defaultStreamConfig, isValidName } from '../config/index.js'
import { errors } from '../errors.js'
import type { LogLogger, LogObserver } from '../log/index.js'
import type { JsonValue, MetaStore } from '../meta/index.js'
import { bindingId, exchangeConflict, normalizeBinding, type BindingDef, type ExchangeType, type Router } from '../router/index.js'
import { KeyedSerial } from './keyed-serial.js'
import type { BrokerPublisher } from './publisher.js'
import type { StreamRegistry } from './registry.js'

// Run-time definitions: exchanges, streams and bindings declared after start (AMQP
// exchange.declare, queue.declare, queue.bind), next to those of the configuration file.
//
//   meta.definitions key     value
//   ['exchange', name]       {type, alternate, attributes}
//   ['stream', name]         {retention, segmentBytes, attributes}
//   ['binding', id]          the binding (BindingDef); id is its identity as JSON
//
// A declaration is written (synced) before it is applied, and restored at start before groups
// open, so a group on a run-time stream, or dead-lettering to a run-time exchange, finds it.
// `attributes` is opaque here: the door that declared it keeps what it needs to compare a
// redeclaration (AMQP's durable, auto-delete, arguments).
//
// Definitions from the configuration file, and the built-in exchanges the server asks for, are
// visible like the others but protected: redeclaring one with other settings fails with
// SLUICE_ERR_ROUTER_EXCHANGE_CONFLICT, deleting one (or unbinding a YAML binding) with
// SLUICE_ERR_DEFINITION_PROTECTED.

export interface CatalogExchange {
  readonly config: ExchangeConfig
  readonly attributes: JsonValue | undefined
  /** Declared in the YAML or built in: cannot be deleted at run time. */
  readonly protected: boolean
}

export interface CatalogStream {
  readonly config: StreamConfig
  readonly attributes: JsonValue | undefined
  readonly protected: boolean
}

/** What a configuration file's exchange says beyond its type and alternate (AMQP cannot say these). */
export type ExchangeSettings = Partial<Pick<ExchangeConfig, 'routingKey' | 'unroutable' | 'dedup' | 'dedupWindowMs'>>

export interface ExchangeDeclaration {
  readonly name: string
  readonly type: ExchangeType
  readonly alternate?: string | null | undefined
  readonly attributes?: JsonValue | undefined
  /** A definitions import (POST /v1/definitions) declares exchanges with every key of the file. */
  readonly settings?: ExchangeSettings | undefined
}

export interface StreamDeclaration {
  readonly name: string
  readonly retention?: Partial<RetentionConfig> | undefined
  readonly segmentBytes?: number | undefined
  /** Cluster mode: copies of the stream; absent: cluster.replication.factor. */
  readonly replicas?: number | undefined
  readonly attributes?: JsonValue | undefined
}

export type DefinitionKind = 'exchange' | 'stream' | 'binding' | 'group'

/**
 * Cluster mode's seam for run-time definitions (src/cluster fills it): a declaration is claimed
 * cluster-wide before it is stored here, so two nodes cannot declare one name two ways, and every
 * node applies what the others declared (with `replicated`, which skips the claim).
 */
export interface DefinitionsMirror {
  /** Resolves undefined when this claim created the definition, or with the one the cluster already holds. */
  claim(kind: DefinitionKind, name: string, definition: JsonValue): Promise<JsonValue | undefined>
  release(kind: DefinitionKind, name: string): Promise<void>
}

/** `replicated`: applying what another node of the cluster declared; not claimed again. */
export interface DeclareOptions {
  readonly replicated?: boolean | undefined
}

export interface CatalogOptions {
  readonly config: Config
  readonly router: Router
  readonly publisher: BrokerPublisher
  readonly streams: StreamRegistry
  readonly meta: MetaStore
  readonly logger?: LogLogger | undefined
  readonly observer?: ((stream: string) => LogObserver) | undefined
  /** Exchanges that always exist (AMQP's amq.*), created at start when absent; protected. */
  readonly builtins?: ReadonlyArray<{ readonly name: string; readonly type: ExchangeType }> | undefined
  /**
   * A direct exchange bound to every stream with the stream's name as key (AMQP's default
   * exchange). Its bindings are implied, never stored: each stream gets one when it opens.
   */
  readonly defaultExchange?: string | undefined
}

interface StoredExchange {
  type: ExchangeType
  alternate: string | null
  attributes?: JsonValue
  settings?: ExchangeSettings
}

interface StoredStream {
  retention: RetentionConfig
  segmentBytes: number
  replicas?: number
  attributes?: JsonValue
}

export class Catalog {
  readonly #opts: CatalogOptions
  readonly #exchanges = new Map<string, CatalogExchange>()
  readonly #streamAttributes = new Map<string, JsonValue | undefined>()
  readonly #configBindings = new Set<string>()
  readonly #durability: DurabilityConfig
  /** Run-time declarations between their limit check and their stream being open. */
  #declaring = 0
  /** Cluster mode: where run-time definitions are claimed and released. */
  mirror: DefinitionsMirror | undefined
  /** One change at a time per name (bindings: per source exchange). */
  readonly #serial = new KeyedSerial()

  private constructor(opts: CatalogOptions) {
    this.#opts = opts
    this.#durability = opts.config.server.durability
  }

  /** Restores the run-time definitions of the data dir and creates the built-in exchanges. */
  static async open(opts: CatalogOptions): Promise<Catalog> {
    const c = new Catalog(opts)
    await c.#restore()
    return c
  }

  async #restore(): Promise<void> {
    const { config, router, publisher, meta, logger } = this.#opts
    for (const ex of Object.values(config.exchanges)) this.#exchanges.set(ex.name, { config: ex, attributes: undefined, protected: true })
    for (const b of router.bindings()) this.#configBindings.add(bindingId(b))
    const builtins = [...(this.#opts.builtins ?? [])]
    if (this.#opts.defaultExchange !== undefined) builtins.push({ name: this.#opts.defaultExchange, type: 'direct' })
    for (const b of builtins) {
      if (this.#exchanges.has(b.name)) continue
      const cfg = runtimeExchange(b.name, b.type, null)
      router.addExchange({ name: b.name, type: b.type })
      publisher.addExchange(cfg)
      this.#exchanges.set(b.name, { config: cfg, attributes: undefined, protected: true })
    }

    for await (const { key, value } of meta.definitions.iterate({ prefix: ['stream'] })) {
      const name = key[1]
      if (config.streams[name] !== undefined) continue // the YAML wins over an older run-time declaration
      const v = value as unknown as StoredStream
      try {
        await this.#openStream(this.#streamConfig(name, v.retention, v.segmentBytes, v.replicas), v.attributes)
      } catch (err) {
        logger?.warn({ stream: name, err }, 'run-time stream could not be opened; skipped')
      }
    }
    const stored: Array<[string, StoredExchange]> = []
    for await (const { key, value } of meta.definitions.iterate({ prefix: ['exchange'] })) {
      if (this.#exchanges.has(key[1])) continue
      stored.push([key[1], value as unknown as StoredExchange])
    }
    // All exchanges first, so an alternate or exchange-to-exchange binding declared earlier than
    // its target still resolves.
    for (const [name, v] of stored) this.#applyExchange(name, v)
    for (const s of this.#opts.streams.all()) this.#bindDefault(s.name)
    for await (const { key, value } of meta.definitions.iterate({ prefix: ['binding'] })) {
      const def = value as unknown as BindingDef
      try {
        if (def.stream !== undefined && this.#opts.streams.get(def.stream) === undefined) throw errors.unknownStream(def.stream)
        router.bind(def)
      } catch (err) {
        logger?.warn({ binding: key[1], err }, 'run-time binding no longer valid; skipped')
      }
    }
  }

  #applyExchange(name: string, v: StoredExchange): CatalogExchange {
    const cfg: ExchangeConfig = { ...runtimeExchange(name, v.type, v.alternate), ...v.settings }
    this.#opts.router.addExchange({ name, type: v.type, unroutable: cfg.unroutable, ...(v.alternate !== null ? { alternate: v.alternate } : {}) })
    this.#opts.publisher.addExchange(cfg)
    const entry: CatalogExchange = { config: cfg, attributes: v.attributes, protected: false }
    this.#exchanges.set(name, entry)
    return entry
  }

  #streamConfig(name: string, retention: Partial<RetentionConfig> | undefined, segmentBytes: number | undefined, replicas: number | undefined): StreamConfig {
    // Segment size and age are a YAML stream's defaults (the key table's), unless declared.
    const d = defaultStreamConfig(name, this.#durability.fsync)
    return {
      ...d,
      // A queue keeps what nobody consumed: no age or size limit unless asked for.
      retention: { maxAgeMs: retention?.maxAgeMs ?? null, maxBytes: retention?.maxBytes ?? null, policy: retention?.policy ?? 'interest' },
      segmentBytes: segmentBytes ?? d.segmentBytes,
      replicas: replicas ?? null,
    }
  }

  async #openStream(config: StreamConfig, attributes: JsonValue | undefined): Promise<void> {
    await this.#opts.streams.add(config, this.#durability, this.#opts.logger, this.#opts.observer)
    this.#streamAttributes.set(config.name, attributes)
  }

  #bindDefault(stream: string): void {
    const ex = this.#opts.defaultExchange
    if (ex !== undefined) this.#opts.router.bind({ exchange: ex, stream, key: stream })
  }

  // ---- exchanges ---------------------------------------------------------------------------------

  exchange(name: string): CatalogExchange | undefined {
    return this.#exchanges.get(name)
  }

  exchanges(): CatalogExchange[] {
    return [...this.#exchanges.values()]
  }

  /** Returns true when created, false when the same exchange exists; throws on a conflict. */
  declareExchange(d: ExchangeDeclaration, opts: DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(`exchange\0${d.name}`, () => this.#declareExchange(d, opts))
  }

  async #declareExchange(d: ExchangeDeclaration, opts: DeclareOptions): Promise<boolean> {
    if (!isValidName(d.name)) throw errors.routerBadExchange(d.name, 'not a valid name: letters, digits, ".", "_", "-" and "@", at most 200')
    const alternate = d.alternate ?? null
    const existing = this.#exchanges.get(d.name)
    if (existing !== undefined) {
      const why = exchangeConflict(
        { name: d.name, type: existing.config.type, ...(existing.config.alternate !== null ? { alternate: existing.config.alternate } : {}) },
        { name: d.name, type: d.type, ...(alternate !== null ? { alternate } : {}) },
      )
      if (why !== undefined) throw errors.routerExchangeConflict(d.name, why)
      return false
    }
    let stored: StoredExchange = { type: d.type, alternate, ...(d.attributes !== undefined ? { attributes: d.attributes } : {}), ...(d.settings !== undefined ? { settings: d.settings } : {}) }
    const held = await this.#claim('exchange', d.name, stored, opts)
    if (held !== undefined) {
      // Declared on another node first: the same exchange is taken as the cluster holds it.
      const h = held as unknown as StoredExchange
      const why = exchangeConflict({ name: d.name, type: h.type, ...(h.alternate !== null ? { alternate: h.alternate } : {}) }, { name: d.name, type: d.type, ...(alternate !== null ? { alternate } : {}) })
      if (why !== undefined) throw errors.routerExchangeConflict(d.name, why)
      stored = h
    }
    await this.#opts.meta.definitions.put(['exchange', d.name], stored as unknown as JsonValue, { sync: true })
    this.#applyExchange(d.name, stored)
    return true
  }

  /** Deletes a run-time exchange and every binding from or to it. */
  deleteExchange(name: string, opts: { ifUnused?: boolean } & DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(`exchange\0${name}`, () => this.#deleteExchange(name, opts))
  }

  async #deleteExchange(name: string, opts: { ifUnused?: boolean } & DeclareOptions): Promise<boolean> {
    const ex = this.#exchanges.get(name)
    if (ex === undefined) return false
    if (ex.protected) throw errors.definitionProtected('exchange', name)
    const router = this.#opts.router
    const touching = router.bindings().filter((b) => b.exchange === name || b.toExchange === name)
    if (opts.ifUnused === true && touching.some((b) => b.exchange === name)) throw errors.definitionInUse('exchange', name, 'has bindings (if-unused)')
    await this.#release('exchange', name, opts)
    for (const b of touching) if (!this.#configBindings.has(bindingId(b))) await this.#release('binding', bindingId(b), opts)
    const meta = this.#opts.meta
    await meta.write([meta.definitions.delOp(['exchange', name]), ...touching.map((b) => meta.definitions.delOp(['binding', bindingId(b)]))], { sync: true })
    router.deleteExchange(name)
    this.#opts.publisher.removeExchange(name)
    this.#exchanges.delete(name)
    return true
  }

  // ---- streams -----------------------------------------------------------------------------------

  stream(name: string): CatalogStream | undefined {
    const s = this.#opts.streams.get(name)
    if (s === undefined) return undefined
    return { config: s.config, attributes: this.#streamAttributes.get(name), protected: !this.#streamAttributes.has(name) }
  }

  /**
   * Streams counted by server.limits.maxStreams: the file's and the run-time ones (not the
   * built-in ingest-errors, which the file does not declare).
   */
  get streamCount(): number {
    return Object.keys(this.#opts.config.streams).length + this.#streamAttributes.size
  }

  /** Returns true when created, false when a stream of that name exists (its settings are kept). */
  declareStream(d: StreamDeclaration, opts: DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(`stream\0${d.name}`, () => this.#declareStream(d, opts))
  }

  async #declareStream(d: StreamDeclaration, opts: DeclareOptions): Promise<boolean> {
    if (!isValidName(d.name)) throw errors.badRequest(`stream name "${d.name}" is not valid: letters, digits, ".", "_", "-" and "@", at most 200`)
    if (this.#opts.streams.get(d.name) !== undefined) return false
    // Restored run-time streams may already be past a limit lowered since: they stay, and
    // nothing new is made until enough of them go.
    const max = this.#opts.config.server.limits.maxStreams
    if (this.streamCount + this.#declaring >= max) throw errors.tooManyStreams(d.name, max)
    this.#declaring++
    try {
      let config = this.#streamConfig(d.name, d.retention, d.segmentBytes, d.replicas)
      let stored: StoredStream = { retention: config.retention, segmentBytes: config.segmentBytes, ...(d.replicas !== undefined ? { replicas: d.replicas } : {}), ...(d.attributes !== undefined ? { attributes: d.attributes } : {}) }
      const held = await this.#claim('stream', d.name, stored, opts)
      if (held !== undefined) {
        // Declared on another node first: its settings are the stream's, as a redeclare keeps them here.
        stored = held as unknown as StoredStream
        config = this.#streamConfig(d.name, stored.retention, stored.segmentBytes, stored.replicas)
      }
      await this.#opts.meta.definitions.put(['stream', d.name], stored as unknown as JsonValue, { sync: true })
      await this.#openStream(config, stored.attributes)
    } finally {
      this.#declaring--
    }
    this.#bindDefault(d.name)
    return true
  }

  /** Deletes a run-time stream, its bindings and its files. Groups on it must be deleted first. */
  deleteStream(name: string, opts: DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(`stream\0${name}`, () => this.#deleteStream(name, opts))
  }

  async #deleteStream(name: string, opts: DeclareOptions): Promise<boolean> {
    if (this.#opts.streams.get(name) === undefined) return false
    if (!this.#streamAttributes.has(name)) throw errors.definitionProtected('stream', name)
    const router = this.#opts.router
    const meta = this.#opts.meta
    const bound = router.bindings().filter((b) => b.stream === name)
    await this.#release('stream', name, opts)
    for (const b of bound) if (!this.#configBindings.has(bindingId(b))) await this.#release('binding', bindingId(b), opts)
    await meta.write([meta.definitions.delOp(['stream', name]), ...bound.map((b) => meta.definitions.delOp(['binding', bindingId(b)]))], { sync: true })
    for (const b of bound) router.unbind(b)
    this.#streamAttributes.delete(name)
    await this.#opts.streams.remove(name)
    return true
  }

  // ---- bindings ----------------------------------------------------------------------------------

  /** Returns true when created, false when the same binding exists. */
  bind(def: BindingDef, opts: DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(`binding\0${def.exchange}`, () => this.#bind(def, opts))
  }

  async #bind(def: BindingDef, opts: DeclareOptions): Promise<boolean> {
    const router = this.#opts.router
    const source = this.#exchanges.get(def.exchange)
    if (source === undefined) throw errors.routerUnknownExchange(def.exchange)
    if (def.toExchange !== undefined && !this.#exchanges.has(def.toExchange)) throw errors.routerUnknownExchange(def.toExchange)
    if (def.stream !== undefined && this.#opts.streams.get(def.stream) === undefined) throw errors.unknownStream(def.stream)
    const norm = normalizeBinding(def, source.config.type)
    // The router validates it before anything is stored.
    if (!router.bind(norm)) return false
    try {
      // A binding is its own identity: one held by the cluster already is this one.
      await this.#claim('binding', bindingId(norm), norm as unknown as JsonValue, opts)
      await this.#opts.meta.definitions.put(['binding', bindingId(norm)], norm as unknown as JsonValue, { sync: true })
    } catch (err) {
      router.unbind(norm)
      throw err
    }
    return true
  }

  /** Returns false when no such binding exists. */
  unbind(def: BindingDef, opts: DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(`binding\0${def.exchange}`, () => this.#unbind(def, opts))
  }

  async #unbind(def: BindingDef, opts: DeclareOptions): Promise<boolean> {
    const source = this.#exchanges.get(def.exchange)
    if (source === undefined) return false
    const norm = normalizeBinding(def, source.config.type)
    const id = bindingId(norm)
    if (!this.#opts.router.bindings().some((b) => bindingId(b) === id)) return false
    if (this.#configBindings.has(id)) throw errors.definitionProtected('binding', `${def.exchange} → ${def.stream ?? def.toExchange ?? ''}`)
    await this.#release('binding', id, opts)
    await this.#opts.meta.definitions.del(['binding', id], { sync: true })
    this.#opts.router.unbind(norm)
    return true
  }

  #claim(kind: DefinitionKind, name: string, definition: unknown, opts: DeclareOptions): Promise<JsonValue | undefined> {
    if (this.mirror === undefined || opts.replicated === true) return Promise.resolve(undefined)
    return this.mirror.claim(kind, name, definition as JsonValue)
  }

  #release(kind: DefinitionKind, name: string, opts: DeclareOptions): Promise<void> {
    if (this.mirror === undefined || opts.replicated === true) return Promise.resolve()
    return this.mirror.release(kind, name)
  }

  /** Bindings whose source is `exchange` (the default exchange's implied ones included). */
  bindingsFrom(exchange: string): readonly Readonly<BindingDef>[] {
    return this.#opts.router.bindings().filter((b) => b.exchange === exchange)
  }

  bindingsTo(stream: string): readonly Readonly<BindingDef>[] {
    return this.#opts.router.bindings().filter((b) => b.stream === stream)
  }
}

/** Run-time exchanges keep event ids for dedup (AMQP message-id) as long as a YAML exchange does. */
function runtimeExchange(name: string, type: ExchangeType, alternate: string | null): ExchangeConfig {
  return defaultExchangeConfig(name, type, alternate)
}
