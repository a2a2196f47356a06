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
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { jsonCodec, str, type JsonValue, type Keyspace, type MetaStore } from '../meta/index.js'
import { bindingFromId, type BindingDef, type ExchangeType } from '../router/index.js'
import type { Catalog, DefinitionKind, DefinitionsMirror, ExchangeSettings } from '../streams/catalog.js'
import type { RetentionConfig } from '../config/index.js'
import type { EtcdSession } from './etcd.js'
import { parseStream, type ClusterKeys } from './layout.js'

/** A definition as the watch reports it; `definition` undefined: deleted. */
export interface DefinitionChange {
  readonly kind: DefinitionKind
  readonly name: string
  readonly definition: JsonValue | undefined
}

/** The order a whole set is applied in, so each item finds what it refers to. */
export const definitionOrder: readonly DefinitionKind[] = ['exchange', 'stream', 'binding', 'group']

export class ClusterDefinitions implements DefinitionsMirror {
  readonly #etcd: EtcdSession
  readonly #keys: ClusterKeys
  readonly #node: string

  constructor(etcd: EtcdSession, keys: ClusterKeys, node: string) {
    this.#etcd = etcd
    this.#keys = keys
    this.#node = node
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
    if (res.succeeded) return undefined
    const held = res.responses[0]?.response_range?.kvs?.[0]?.value?.toString()
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

/** What a data dir remembers of the etcd cluster it joined. */
type JoinRecord = {
  readonly etcdCluster: string
  /** `kind\0name` of the run-time definitions it held that the cluster did not: its own, kept. */
  readonly preCluster: readonly string[]
}

const definitionKey = (kind: DefinitionKind, name: string): string => `${kind}\0${name}`

/**
 * Applies what other nodes declared, one change at a time in watch order, through the catalog and
 * the group registry. A change this node cannot apply (it conflicts with a definition of its own
 * from before it joined) is logged, not fatal: the cluster's is the one the others route by.
 *
 * At each (re)join it also removes what the cluster deleted while the node was away: a run-time
 * definition it holds that etcd does not. Two kinds are kept: what it held when it first joined
 * this etcd cluster (its own from before), and streams, whose files are data: those are reported
 * (`staleStreams`) for an operator to delete. An etcd cluster of another id is a new cluster, whose
 * empty keyspace says nothing was deleted: nothing is removed then.
 */
export class DefinitionsApplier {
  readonly #catalog: Catalog
  readonly #groups: GroupRegistry
  readonly #meta: MetaStore
  readonly #joins: Keyspace<[string], JoinRecord>
  readonly #log: Logger
  #queue: Promise<void> = Promise.resolve()
  applied = 0
  failed = 0
  /** Definitions removed at a join because the cluster had deleted them. */
  removedAtJoin = 0
  readonly #stale = new Set<string>()

  constructor(catalog: Catalog, groups: GroupRegistry, meta: MetaStore, logger: Logger) {
    this.#catalog = catalog
    this.#groups = groups
    this.#meta = meta
    this.#joins = meta.keyspace('clusterJoin', [str()] as const, jsonCodec<JoinRecord>())
    this.#log = logger
  }

  /** Run-time streams the cluster deleted while this node was away, still here (their files are data). */
  get staleStreams(): string[] {
    return [...this.#stale].filter((name) => this.#catalog.stream(name) !== undefined)
  }

  /** The run-time definitions stored here, read before the cluster's (see ClusterNode's definitionsHeld). */
  async held(): Promise<HeldDefinitions> {
    return (await this.#meta.definitions.scan([])).map((e) => ({ kind: e.key[0], name: e.key[1] }))
  }

  /** After a load's definitions: removes what the cluster deleted while this node was away (queued behind them). */
  reconcile(held: HeldDefinitions, all: readonly DefinitionChange[], etcdCluster: string): void {
    this.#queue = this.#queue.then(() =>
      this.#reconcile(held, new Set(all.map((d) => definitionKey(d.kind, d.name))), etcdCluster).catch((err: unknown) => {
        this.#log.error({ err }, 'could not compare the definitions held here with the cluster’s')
      }),
    )
  }

  async #reconcile(local: HeldDefinitions, present: ReadonlySet<string>, etcdCluster: string): Promise<void> {
    const absent = local.filter((d) => !present.has(definitionKey(d.kind, d.name)))
    const joined = await this.#joins.get(['join'])
    if (joined === undefined || joined.etcdCluster !== etcdCluster) {
      if (joined !== undefined) this.#log.warn({ was: joined.etcdCluster, now: etcdCluster }, 'this data dir joins another etcd cluster: the definitions it holds are kept as its own')
      await this.#joins.put(['join'], { etcdCluster, preCluster: absent.map((d) => definitionKey(d.kind, d.name)) }, { sync: true })
      return
    }
    const own = new Set(joined.preCluster)
    const gone = absent.filter((d) => !own.has(definitionKey(d.kind, d.name)))
    // What refers to others goes first: groups, bindings, then exchanges.
    gone.sort((a, b) => definitionOrder.indexOf(b.kind) - definitionOrder.indexOf(a.kind))
    this.#stale.clear()
    for (const d of gone) {
      if (d.kind === 'stream') {
        this.#stale.add(d.name)
        this.#log.warn({ stream: d.name }, 'stream deleted in the cluster while this node was away; its files stay here until it is deleted on this node (DELETE /v1/streams/<name>)')
        continue
      }
      try {
        await this.#apply({ kind: d.kind, name: d.name, definition: undefined })
        this.removedAtJoin++
        this.#log.info({ kind: d.kind, name: d.name }, 'removed a definition the cluster deleted while this node was away')
      } catch (err) {
        this.failed++
        this.#log.warn({ err, kind: d.kind, name: d.name }, 'could not remove a definition the cluster deleted while this node was away')
      }
    }
    // What was its own and has gone since is forgotten, so a later cluster definition of that name is not mistaken for it.
    const stillOwn = joined.preCluster.filter((k) => absent.some((d) => definitionKey(d.kind, d.name) === k))
    if (stillOwn.length !== joined.preCluster.length) await this.#joins.put(['join'], { etcdCluster, preCluster: stillOwn }, { sync: true })
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

  async #apply({ kind, name, definition: d }: DefinitionChange): Promise<void> {
    const replicated = { replicated: true }
    if (d === undefined) {
      if (kind === 'exchange') await this.#catalog.deleteExchange(name, replicated)
      else if (kind === 'binding') {
        // A deleted key has no value left: the binding is read back from its id, the key's name.
        const binding = bindingFromId(name)
        if (binding === undefined) throw new Error(`not a binding id: ${name}`)
        await this.#catalog.unbind(binding, replicated)
      }
      else if (kind === 'group') await this.#groups.delete(name, replicated)
      else if (this.#catalog.stream(name)?.protected === false) {
        for (const g of this.#groups.all()) if (g.stream === name) await this.#groups.delete(g.name, replicated)
        await this.#catalog.deleteStream(name, replicated)
      }
      return
    }
    if (kind === 'exchange') {
      const e = d as unknown as StoredExchangeShape
      await this.#catalog.declareExchange({ name, type: e.type, alternate: e.alternate, attributes: e.attributes, settings: e.settings }, replicated)
    } else if (kind === 'stream') {
      const s = d as unknown as StoredStreamShape
      await this.#catalog.declareStream({ name, retention: s.retention, segmentBytes: s.segmentBytes, replicas: s.replicas, attributes: s.attributes }, replicated)
    } else if (kind === 'binding') {
      await this.#catalog.bind(d as unknown as BindingDef, replicated)
    } else {
      await this.#groups.declare(name, d, replicated)
    }
  }
}
