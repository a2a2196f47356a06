// Run-time definitions across the cluster (docs/cluster.md, "Definitions"). A declaration on any
// node (AMQP exchange.declare, queue.declare, queue.bind, HTTP PUT /v1/groups, a definitions
// import) is first claimed in etcd with a create-if-absent transaction, so two nodes cannot
// declare one name two ways; every node then applies it from the watch, through the same catalog
// and group registry calls, marked `replicated` so it is not claimed again.
//
//   <prefix>/defs/exchange/<name>   {by, definition}     the catalog's stored exchange
//   <prefix>/defs/binding/<id>      {by, definition}     the binding; its id is its identity
//   <prefix>/defs/group/<name>      {by, definition}     the group as declared (the file's shape)
//   <prefix>/streams/<name>         {origin, by, definition?}   placed by the controller too

import type { GroupRegistry } from '../consumers/index.js'
import { errors, SluiceError } from '../errors.js'
import type { Logger } from '../logger.js'
import { jsonCodec, str, type JsonValue, type Keyspace, type MetaStore } from '../meta/index.js'
import { bindingFromId, type BindingDef, type ExchangeType } from '../router/index.js'
import type { Catalog, DefinitionKind, DefinitionsMirror, ExchangeSettings } from '../streams/catalog.js'
import type { StreamRegistry } from '../streams/registry.js'
import type { RetentionConfig } from '../config/index.js'
import type { EtcdSession } from './etcd.js'
import { parseStream, type ClusterKeys } from './layout.js'

/** A definition as the watch reports it; `definition` undefined: deleted. */
export interface DefinitionChange {
  readonly kind: DefinitionKind
  readonly name: string
  readonly definition: JsonValue | undefined
  /** A stream's incarnation: the create revision of its etcd key (for a deletion, the deleted key's). */
  readonly revision?: number | undefined
}

/** The order a whole set is applied in, so each item finds what it refers to. */
export const definitionOrder: readonly DefinitionKind[] = ['exchange', 'stream', 'binding', 'group']

export class ClusterDefinitions implements DefinitionsMirror {
  readonly #etcd: EtcdSession
  readonly #keys: ClusterKeys
  readonly #node: string

  /** Told the incarnation (its etcd key's create revision) of a stream declared here. */
  readonly #claimedStream: (name: string, incarnation: number) => Promise<void>
  /** Waits, bounded, for a stream declared here to be placed. */
  readonly #placed: (name: string) => Promise<unknown>

  constructor(etcd: EtcdSession, keys: ClusterKeys, node: string, claimedStream: (name: string, incarnation: number) => Promise<void>, placed: (name: string) => Promise<unknown>) {
    this.#etcd = etcd
    this.#keys = keys
    this.#node = node
    this.#claimedStream = claimedStream
    this.#placed = placed
  }

  /**
   * A stream a configuration file declares (on any node) is the cluster's already: a run-time
   * declaration of it takes it as it is, and never owns it (release leaves it alone).
   */
  async claim(kind: DefinitionKind, name: string, definition: JsonValue): Promise<JsonValue | undefined> {
    const key = this.#keys.definition(kind, name)
    const value = kind === 'stream' ? { origin: 'runtime', by: this.#node, definition } : { by: this.#node, definition }
    const c = this.#etcd.client
    let res
    try {
      res = await this.#etcd.timed('txn', () => c.if(key, 'Version', '==', 0).then(c.put(key).value(JSON.stringify(value))).else(c.get(key)).commit())
    } catch (err) {
      throw errors.clusterUnavailable(`declaring ${kind} "${name}"`, err)
    }
    const kv = res.responses[0]?.response_range?.kvs?.[0]
    // Known before the stream opens here: the watch's late events of an earlier namesake are told from it.
    if (kind === 'stream') {
      await this.#claimedStream(name, res.succeeded ? Number(res.header.revision) : Number(kv?.create_revision))
      // The declaration is answered once the controller placed the stream, so a publish right
      // after it is taken rather than refused (bounded: past it, publishes are refused, retryable).
      await this.#placed(name)
    }
    if (res.succeeded) return undefined
    const held = kv?.value?.toString()
    const parsed = held === undefined ? undefined : (JSON.parse(held) as { definition?: JsonValue })
    // A stream some node's file declares has no definition here: the proposed one stands.
    return parsed?.definition ?? definition
  }

  async release(kind: DefinitionKind, name: string): Promise<void> {
    const c = this.#etcd.client
    const key = this.#keys.definition(kind, name)
    try {
      if (kind !== 'stream') {
        await this.#etcd.timed('delete', () => c.delete().key(key).exec())
        return
      }
      // Only a run-time stream goes, with its placement, and only as read: a file's stream stays
      // placed for the nodes whose files declare it.
      const got = await this.#etcd.timed('get', () => c.get(key).exec())
      const kv = got.kvs[0]
      if (kv === undefined || parseStream(kv.value.toString())?.origin !== 'runtime') return
      await this.#etcd.timed('txn', () => c.if(key, 'Mod', '==', Number(kv.mod_revision)).then(c.delete().key(key), c.delete().key(this.#keys.placement(name))).commit())
    } catch (err) {
      throw errors.clusterUnavailable(`deleting ${kind} "${name}"`, err)
    }
  }
}

interface StoredExchangeShape {
  readonly type: ExchangeType
  readonly alternate: string | null
  readonly attributes?: JsonValue
  readonly settings?: ExchangeSettings
}

interface StoredStreamShape {
  readonly retention: RetentionConfig
  readonly segmentBytes: number
  readonly replicas?: number
  readonly attributes?: JsonValue
}

/** A node's run-time definitions, as its metadata store holds them. */
export type HeldDefinitions = ReadonlyArray<{ readonly kind: DefinitionKind; readonly name: string }>

/** What a (re)load read from etcd: which definitions exist, and which etcd cluster and prefix hold them. */
export interface LoadedDefinitions {
  /** `kind\0name` of every definition key under the prefix (a file's streams and unreadable values included). */
  readonly present: ReadonlySet<string>
  /** etcd's cluster id and the cluster's key prefix: together, which Sluice cluster this is. */
  readonly cluster: string
}

/** What a data dir remembers of the cluster it joined. */
type JoinRecord = {
  readonly cluster: string
  /** `kind\0name` of the run-time definitions it held that the cluster did not: its own, kept. */
  readonly preCluster: readonly string[]
}

export const definitionKey = (kind: DefinitionKind, name: string): string => `${kind}\0${name}`

const replicated = { replicated: true } as const

/**
 * Applies what other nodes declared, one change at a time in watch order, through the catalog and
 * the group registry. A change this node cannot apply (it conflicts with a definition of its own
 * from before it joined) is logged, not fatal: the cluster's is the one the others route by.
 *
 * At each (re)join it also removes what the cluster deleted while the node was away: a run-time
 * definition it holds that etcd does not, streams and their files included (as the cluster
 * deleted them everywhere else). Kept: what it held when it first joined this cluster (its own from
 * before), and anything a configuration file declares. Another etcd cluster id or another prefix is
 * another cluster, whose keyspace says nothing about what was deleted: nothing is removed then.
 *
 * A stream is also recognised by its incarnation, the create revision of its etcd key: a stream
 * deleted and declared again while the node was away is another stream under the same name, so
 * the copy held here is dropped before the new one is declared.
 */
export class DefinitionsApplier {
  readonly #catalog: Catalog
  readonly #groups: GroupRegistry
  readonly #meta: MetaStore
  readonly #joins: Keyspace<[string], JoinRecord>
  readonly #incarnations: Keyspace<[string], number>
  readonly #log: Logger
  #queue: Promise<void> = Promise.resolve()
  applied = 0
  failed = 0
  /** Definitions removed at a join, or streams dropped for a newer incarnation, because the cluster had deleted them. */
  removedAtJoin = 0

  constructor(catalog: Catalog, groups: GroupRegistry, streams: StreamRegistry, meta: MetaStore, logger: Logger) {
    this.#catalog = catalog
    this.#groups = groups
    this.#meta = meta
    this.#joins = meta.keyspace('clusterJoin', [str()] as const, jsonCodec<JoinRecord>())
    this.#incarnations = meta.keyspace('streamIncarnations', [str()] as const, jsonCodec<number>())
    this.#log = logger
    // A stream gone here, however, takes its incarnation along: one declared again adopts the cluster's.
    streams.onRemove((name) => this.#incarnations.del([name], { sync: true }))
  }

  /** A stream declared here: its incarnation, as its claim in etcd made (or found) it. */
  recordIncarnation(name: string, incarnation: number): Promise<void> {
    return this.#incarnations.put([name], incarnation, { sync: true })
  }

  /**
   * The run-time definitions stored here, read before the cluster's (see ClusterNode's
   * definitionsHeld), once the changes handed over before are applied.
   */
  async held(): Promise<HeldDefinitions> {
    await this.idle()
    return (await this.#meta.definitions.scan([])).map((e) => ({ kind: e.key[0], name: e.key[1] }))
  }

  /** After a load's definitions: removes what the cluster deleted while this node was away (queued behind them). */
  reconcile(held: HeldDefinitions, loaded: LoadedDefinitions): void {
    this.#queue = this.#queue.then(() =>
      this.#reconcile(held, loaded).catch((err: unknown) => {
        this.#log.error({ err }, 'could not compare the definitions held here with the cluster’s')
      }),
    )
  }

  async #reconcile(local: HeldDefinitions, { present, cluster }: LoadedDefinitions): Promise<void> {
    const absent = local.filter((d) => !present.has(definitionKey(d.kind, d.name)))
    const joined = await this.#joins.get(['join'])
    if (joined === undefined || joined.cluster !== cluster) {
      if (joined !== undefined) this.#log.warn({ was: joined.cluster, now: cluster }, 'this data dir joins another cluster (etcd cluster id and prefix): the definitions it holds are kept as its own')
      await this.#joins.put(['join'], { cluster, preCluster: absent.map((d) => definitionKey(d.kind, d.name)) }, { sync: true })
      return
    }
    const own = new Set(joined.preCluster)
    const gone = absent.filter((d) => !own.has(definitionKey(d.kind, d.name)))
    // What refers to others goes first: groups, bindings, streams, then exchanges.
    gone.sort((a, b) => definitionOrder.indexOf(b.kind) - definitionOrder.indexOf(a.kind))
    for (const d of gone) {
      try {
        if (!(await this.#remove(d.kind, d.name))) continue
        this.removedAtJoin++
        this.#log.warn({ kind: d.kind, name: d.name }, 'removed a definition the cluster deleted while this node was away')
      } catch (err) {
        this.failed++
        this.#log.warn({ err, kind: d.kind, name: d.name }, 'could not remove a definition the cluster deleted while this node was away')
      }
    }
    // What was its own and has gone since is forgotten, so a later cluster definition of that name is not mistaken for it.
    const absentKeys = new Set(absent.map((d) => definitionKey(d.kind, d.name)))
    const stillOwn = joined.preCluster.filter((k) => absentKeys.has(k))
    if (stillOwn.length !== joined.preCluster.length) await this.#joins.put(['join'], { cluster, preCluster: stillOwn }, { sync: true })
  }

  /** Removes a run-time definition here only (the cluster's is gone already); false when there was none, or a file declares it. */
  async #remove(kind: DefinitionKind, name: string): Promise<boolean> {
    if (kind === 'exchange') return this.#catalog.exchange(name)?.protected === false && (await this.#catalog.deleteExchange(name, replicated))
    if (kind === 'group') return !this.#groups.isConfigured(name) && (await this.#groups.delete(name, replicated))
    if (kind === 'binding') {
      // A deleted key has no value left: the binding is read back from its id, the key's name.
      const binding = bindingFromId(name)
      if (binding === undefined) throw new Error(`not a binding id: ${name}`)
      try {
        return await this.#catalog.unbind(binding, replicated)
      } catch (err) {
        if (err instanceof SluiceError && err.code === 'SLUICE_ERR_DEFINITION_PROTECTED') return false
        throw err
      }
    }
    if (this.#catalog.stream(name)?.protected !== false) return false
    for (const g of this.#groups.all()) if (g.stream === name && !this.#groups.isConfigured(g.name)) await this.#groups.delete(g.name, replicated)
    return this.#catalog.deleteStream(name, replicated)
  }

  apply(change: DefinitionChange): void {
    this.#queue = this.#queue.then(async () => {
      try {
        await this.#apply(change)
        this.applied++
      } catch (err) {
        this.failed++
        this.#log.warn({ err, kind: change.kind, name: change.name }, 'could not apply a definition from the cluster')
      }
    })
  }

  /** Resolves once every change handed over so far is applied. */
  idle(): Promise<void> {
    return this.#queue
  }

  async #apply({ kind, name, definition: d, revision }: DefinitionChange): Promise<void> {
    if (d === undefined) {
      // The deletion of an earlier namesake, seen after this node declared the stream again: the one here stays.
      const held = kind === 'stream' && revision !== undefined ? await this.#incarnations.get([name]) : undefined
      if (held !== undefined && held > revision!) return
      await this.#remove(kind, name)
      return
    }
    if (kind === 'exchange') {
      const e = d as unknown as StoredExchangeShape
      await this.#catalog.declareExchange({ name, type: e.type, alternate: e.alternate, attributes: e.attributes, settings: e.settings }, replicated)
    } else if (kind === 'stream') {
      const s = d as unknown as StoredStreamShape
      const held = revision === undefined ? undefined : await this.#incarnations.get([name])
      // An earlier namesake's, seen after this node declared the stream again: nothing to do.
      if (held !== undefined && revision! < held) return
      if (held !== undefined && revision! > held && this.#catalog.stream(name)?.protected === false) {
        this.#log.warn({ stream: name, held, now: revision }, 'stream deleted and declared again in the cluster while this node was away: its copy here is dropped')
        if (await this.#remove('stream', name)) this.removedAtJoin++
      }
      await this.#catalog.declareStream({ name, retention: s.retention, segmentBytes: s.segmentBytes, replicas: s.replicas, attributes: s.attributes }, replicated)
      if (revision !== undefined && this.#catalog.stream(name)?.protected === false) await this.#incarnations.put([name], revision, { sync: true })
    } else if (kind === 'binding') {
      await this.#catalog.bind(d as unknown as BindingDef, replicated)
    } else {
      await this.#groups.declare(name, d, replicated)
    }
  }
}
