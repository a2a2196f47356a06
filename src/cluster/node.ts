// One node's part in the cluster (docs/cluster.md): its membership under an etcd lease, its view of
// the cluster from one watch on the prefix, and, when elected, the controller's work of placing
// streams. etcd is the only judge of who is a member and who the controller is; nothing here
// decides by timing except fencing, which is this node's own conservative reading of its lease.
//
// Fencing: the lease is alive at etcd until at least `TTL` after the keepalive etcd last answered
// was sent. A node that cannot renew stops acting for the cluster before that moment passes, so
// there is no instant at which etcd has let its lease go while it still acts on it. It then
// rejoins with a new lease once etcd answers again.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Lease, Watcher } from 'etcd3'
import type { ClusterConfig } from '../config/index.js'
import type { Logger } from '../logger.js'
import { EtcdSession, type EtcdRoundTrips, type EtcdOp } from './etcd.js'
import { ClusterKeys, parseController, parseDefinition, parseNode, parsePlacement, parseStream, replicasOf, type ControllerRecord, type MoveRecord, type NodeRecord, type PlacementRecord, type StreamRecord } from './layout.js'
import { chooseFollowers, placeStreams } from './placement.js'
import { definitionKey, definitionOrder, type DefinitionChange, type HeldDefinitions, type LoadedDefinitions } from './definitions.js'

export type MemberState = 'joining' | 'member' | 'fenced' | 'stopped'

/** Where a stream can be written and consumed now, as this node sees the cluster. */
export type StreamReach =
  /** Here: placed on this node, or not a stream the cluster places (a node's own ingest-errors). */
  | { readonly here: true }
  /** On another node, reached at its record's addresses. */
  | { readonly here: false; readonly home: NodeRecord }
  /** Nowhere now, and why; `node` names the home when there is one. */
  | { readonly here: false; readonly home: undefined; readonly why: string; readonly node?: string | undefined }

export interface ClusterNodeOptions {
  readonly config: ClusterConfig
  readonly version: string
  readonly logger: Logger
  /** The ports clients reach this node on, once its listeners are bound. */
  readonly ports: () => { readonly http: number | null; readonly httpTls: boolean; readonly amqp: number | null; readonly internal: number }
  /** The streams this node's configuration file declares: the cluster's seed. */
  /** The configuration file's streams, with the copies each asks for (null: the cluster's factor). */
  readonly fileStreams: () => ReadonlyArray<{ readonly name: string; readonly replicas: number | null }>
  /** Bytes this node stores, for placement's tie-break. */
  readonly storedBytes: () => number
  /** Told when this node fences itself (true) and when it is a member again (false). */
  readonly onFenced: (fenced: boolean) => void
  /** Monotonic milliseconds; tests inject their own. */
  readonly now?: () => number
  /** Told of every run-time definition: all of them at each (re)load of the view, then each change. */
  readonly onDefinition?: (change: DefinitionChange) => void
  /**
   * Read before a (re)load's etcd read (so a declaration made here meanwhile, claimed in etcd before
   * it is stored here, is never held without being loaded), then given back after the load's
   * definitions went to onDefinition, with all of them and the etcd cluster's id.
   */
  readonly definitionsHeld?: () => Promise<HeldDefinitions>
  readonly onDefinitionsLoaded?: (held: HeldDefinitions, loaded: LoadedDefinitions) => void
  /** Told after every change to the view (and after each full read), for waits on placement. */
  readonly onView?: () => void
}

export interface ClusterStatus {
  readonly enabled: true
  readonly node: string
  readonly state: MemberState
  readonly lease: { readonly id: string | null; readonly ttlMs: number; readonly remainingMs: number | null; readonly sinceKeepaliveMs: number | null }
  readonly controller: { readonly node: string; readonly epoch: number; readonly since: string; readonly self: boolean } | null
  readonly nodes: ReadonlyArray<NodeRecord & { readonly streams: number }>
  readonly placement: ReadonlyArray<PlacementRecord & { readonly stream: string; readonly live: boolean }>
  readonly unplaced: readonly string[]
  /** Placement waits for this many live nodes (cluster.minNodes). */
  readonly minNodes: number
  readonly etcd: { readonly endpoints: readonly string[]; readonly prefix: string; readonly revision: number }
}

export interface ClusterCounters {
  /** Times this node fenced itself. */
  fences: number
  /** Times it joined (the first time and after each fence). */
  joins: number
  /** Elections it won. */
  elections: number
  /** Placements it wrote as controller. */
  placements: number
  /** Leaders it replaced from the in-sync set as controller. */
  failovers: number
  /** Leaders it made from outside the in-sync set (cluster.replication.uncleanElection). */
  uncleanElections: number
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from etcd within ${ms} ms`)), ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}

// etcd leases are granted in whole seconds.
const leaseSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))
/** Margin before the lease's earliest end at which the node fences: clock rates differ a little. */
const fenceMarginMs = 250
const checkEveryMs = 100
const rejoinEveryMs = 500
const bytesRefreshMs = 15_000
const nudgeEveryMs = 1000
/** Placements per transaction; etcd allows 128 operations in one. */
const placementBatch = 100

export class ClusterNode {
  readonly counters: ClusterCounters = { fences: 0, joins: 0, elections: 0, placements: 0, failovers: 0, uncleanElections: 0 }
  readonly #opts: ClusterNodeOptions
  readonly #cfg: ClusterConfig
  readonly #keys: ClusterKeys
  readonly #etcd: EtcdSession
  readonly #log: Logger
  readonly #now: () => number
  #state: MemberState = 'joining'
  #lease: Lease | undefined
  #leaseId: string | undefined
  /** Lease ids this process held before, whose records it may find again after a fence. */
  readonly #ownLeases = new Set<string>()
  #validUntil = 0
  #lastKeepalive: number | undefined
  #record: NodeRecord | undefined
  /** Set while this node is the controller: the create revision of the controller key. */
  #controllerEpoch: number | undefined
  #timer: NodeJS.Timeout | undefined
  #bytesTimer: NodeJS.Timeout | undefined
  #watcher: Watcher | undefined
  #revision = 0
  /** The revision of the last full read: the watch's events up to it are already in the view. */
  #loadedAt = 0
  /** The view holds what etcd held at join (or at the last rejoin); until then no stream's home is known. */
  #viewReady = false
  /** When the controller's absence or unplaced streams were last acted on from the timer. */
  #lastNudge = 0
  /** Send times of the keepalives not answered yet, oldest first: each answer is credited to its own. */
  readonly #fired: number[] = []
  #reconciling: Promise<void> | undefined
  #reconcileAgain = false
  #rejoining: Promise<void> | undefined
  #reloading: Promise<void> | undefined
  /** Per stream, who waits for its placement (waitPlaced). */
  readonly #placedWaiters = new Map<string, Set<() => void>>()
  readonly #view = {
    nodes: new Map<string, NodeRecord>(),
    controller: undefined as { record: ControllerRecord; epoch: number } | undefined,
    streams: new Map<string, StreamRecord>(),
    placements: new Map<string, PlacementRecord>(),
    /** Each stream key's create revision: the stream's incarnation, which a deletion names. */
    incarnations: new Map<string, number>(),
    /** The cluster once had minNodes nodes (its formed key exists): placing no longer waits for them. */
    formed: false,
  }

  constructor(opts: ClusterNodeOptions) {
    this.#opts = opts
    this.#cfg = opts.config
    this.#keys = new ClusterKeys(opts.config.etcd.prefix)
    this.#etcd = new EtcdSession({ endpoints: opts.config.etcd.endpoints, requestTimeoutMs: opts.config.etcd.requestTimeoutMs })
    this.#log = opts.logger.child({ component: 'cluster', node: opts.config.nodeId })
    this.#now = opts.now ?? (() => performance.now())
  }

  /** A member is `joining` until its view is loaded, after a fence as at start: it cannot place a stream before. */
  get state(): MemberState {
    return this.#state === 'member' && !this.#viewReady ? 'joining' : this.#state
  }

  get isController(): boolean {
    return this.#controllerEpoch !== undefined
  }

  /** Whether the view has been loaded since the node (re)joined: until then, `home` is not to be trusted. */
  get viewReady(): boolean {
    return this.#viewReady
  }

  /**
   * The one answer to "where does this stream live" for every caller (publish forwarding, HTTP and
   * AMQP consumers): until its view is loaded (joining, or rejoining after a fence) a node cannot
   * tell a stream of its own from one placed elsewhere, and once stopped it acts for no stream.
   */
  reach(stream: string): StreamReach {
    const nowhere = (why: string, node?: string): StreamReach => ({ here: false, home: undefined, why, node })
    if (this.#state === 'stopped') return nowhere('this node is stopping')
    if (!this.#viewReady) return nowhere(this.counters.fences === 0 ? 'this node is still joining the cluster' : 'this node is cut off from etcd and rejoining')
    const v = this.#view
    const p = v.placements.get(stream)
    if (p === undefined) {
      if (!v.streams.has(stream)) return { here: true }
      return nowhere(!this.#mayPlace() ? `the cluster places streams once ${this.#cfg.minNodes} nodes are up (cluster.minNodes)` : 'the controller has not placed it yet')
    }
    if (p.node === this.#cfg.nodeId) return { here: true }
    const rec = v.nodes.get(p.node)
    return rec === undefined ? nowhere(`its home node ${p.node} holds no lease now (down, or cut off from etcd)`, p.node) : { here: false, home: rec }
  }

  /** The etcd session and key layout, for the definitions mirror (definitions.ts). */
  get etcd(): EtcdSession {
    return this.#etcd
  }

  get keys(): ClusterKeys {
    return this.#keys
  }

  etcdRoundTrips(): ReadonlyMap<EtcdOp, EtcdRoundTrips> {
    return this.#etcd.roundTrips()
  }

  /**
   * Joins: the node's record under a new lease, the file's streams seeded, the view loaded and
   * watched, and a campaign for controller. Fails when etcd cannot be reached within the request
   * timeout, or when another live node holds this nodeId.
   */
  async start(): Promise<void> {
    await this.#join(true)
    await this.#seedStreams()
    await this.#loadView()
    this.#timer = setInterval(() => this.#check(), checkEveryMs)
    this.#timer.unref()
    this.#bytesTimer = setInterval(() => void this.#refreshRecord(), bytesRefreshMs)
    this.#bytesTimer.unref()
    await this.#campaign()
  }

  /** Leaves cleanly: the controller key and the node's record go with the revoked lease at once. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return
    const wasMember = this.#state === 'member'
    this.#state = 'stopped'
    clearInterval(this.#timer)
    clearInterval(this.#bytesTimer)
    this.#controllerEpoch = undefined
    // A rejoin or reload in flight ends at its next step (a lease just granted is revoked; a
    // watch just made is cancelled); each waits at most one etcd request timeout.
    await this.#rejoining
    await this.#reloading
    await this.#watcher?.cancel().catch(() => undefined)
    if (wasMember && this.#lease !== undefined) {
      const lease = this.#lease
      await this.#etcd.timed('revoke', () => lease.revoke()).catch((err: unknown) => this.#log.warn({ err }, 'could not revoke the lease on stop; the node record ends with it'))
    }
    this.#lease?.release()
    this.#etcd.close()
  }

  // ---- membership ------------------------------------------------------------------------------

  async #join(first: boolean): Promise<void> {
    const ttlMs = this.#cfg.etcd.leaseTtlMs
    const lease = this.#etcd.client.lease(leaseSeconds(ttlMs))
    const sent = this.#now()
    let id: string
    try {
      id = await this.#etcd.timed('grant', () => lease.grant())
    } catch (err) {
      lease.release()
      throw err
    }
    // Keepalives go out every TTL/3 without waiting for the last answer, and answers come back in
    // order: each answer renews the lease from its own keepalive's send time, never a later one's.
    this.#fired.length = 0
    lease.on('keepaliveFired', () => {
      if (lease === this.#lease) this.#fired.push(this.#now())
    })
    lease.on('keepaliveFailed', () => {
      if (lease === this.#lease) this.#fired.length = 0
    })
    lease.on('keepaliveSucceeded', (res) => {
      if (lease !== this.#lease) return
      const sentAt = this.#fired.shift()
      if (sentAt === undefined) return
      this.#lastKeepalive = this.#now()
      this.#validUntil = Math.max(this.#validUntil, sentAt + Number(res.TTL) * 1000)
    })
    lease.on('lost', (err) => {
      if (lease === this.#lease) this.#fence(`lease lost: ${err.message}`)
    })
    const key = this.#keys.node(this.#cfg.nodeId)
    const ports = this.#opts.ports()
    const record: NodeRecord = {
      id: this.#cfg.nodeId,
      host: this.#cfg.advertise.host,
      httpPort: ports.http,
      httpTls: ports.httpTls,
      amqpPort: ports.amqp,
      internalPort: ports.internal,
      lease: id,
      startedAt: new Date().toISOString(),
      version: this.#opts.version,
      storedBytes: this.#opts.storedBytes(),
    }
    // A record of this nodeId under another lease is this process before a fence, or this node
    // before a crash whose lease has not run out yet: waited for up to one TTL. Still there after
    // that, it is another live node using the same id.
    const waitUntil = this.#now() + (first ? ttlMs + 1000 : ttlMs)
    for (;;) {
      const c = this.#etcd.client
      const res = await this.#etcd
        .timed('txn', () => c.if(key, 'Version', '==', 0).then(c.put(key).value(JSON.stringify(record)).lease(id)).else(c.get(key)).commit())
        .catch((err: unknown) => {
          lease.release()
          throw err
        })
      if (res.succeeded) break
      const holder = res.responses[0]?.response_range?.kvs?.[0]?.lease
      if (holder !== undefined && this.#ownLeases.has(String(holder))) {
        // Ours from before a fence: let it go now rather than wait for it to expire.
        await this.#etcd.timed('revoke', () => c.leaseClient.leaseRevoke({ ID: holder })).catch(() => undefined)
        this.#ownLeases.delete(String(holder))
        continue
      }
      if (this.#now() >= waitUntil) {
        await lease.revoke().catch(() => lease.release())
        throw new Error(`cluster.nodeId "${this.#cfg.nodeId}" is held by another live node (lease ${String(holder)}) under ${this.#keys.nodes}; give each node its own nodeId`)
      }
      if (first) this.#log.info({ holder: String(holder) }, 'waiting for the previous record of this nodeId to expire')
      await sleep(rejoinEveryMs)
    }
    if (this.#state === 'stopped') {
      await lease.revoke().catch(() => lease.release())
      return
    }
    this.#lease = lease
    this.#leaseId = id
    this.#ownLeases.add(id)
    this.#record = record
    this.#validUntil = sent + leaseSeconds(ttlMs) * 1000
    this.#lastKeepalive = this.#now()
    this.#state = 'member'
    this.counters.joins++
    this.#log.info({ lease: id, ttlMs }, first ? 'joined the cluster' : 'rejoined the cluster')
  }

  #check(): void {
    if (this.#state !== 'member') return
    const now = this.#now()
    if (now >= this.#validUntil - fenceMarginMs) {
      this.#fence('could not renew the lease with etcd in time')
      return
    }
    // A campaign or a placement that failed (an etcd timeout) is not left to the next change of
    // some key: once a second, stand for controller when there is none, and place what is unplaced.
    if (now - this.#lastNudge < nudgeEveryMs || !this.#viewReady) return
    this.#lastNudge = now
    if (this.#view.controller === undefined) void this.#campaign()
    else this.#reconcile()
  }

  #fence(why: string): void {
    if (this.#state !== 'member') return
    this.#state = 'fenced'
    this.counters.fences++
    this.#controllerEpoch = undefined
    this.#viewReady = false
    // Released, not revoked: etcd cannot be reached, and the lease ends there on its own.
    this.#lease?.release()
    this.#lease = undefined
    this.#log.warn({ why }, 'fenced: this node stops acting for the cluster until it rejoins')
    this.#notifyFenced(true)
    this.#rejoining ??= this.#rejoin().finally(() => (this.#rejoining = undefined))
  }

  async #rejoin(): Promise<void> {
    while (this.#state === 'fenced') {
      try {
        await this.#join(false)
      } catch (err) {
        this.#log.debug({ err }, 'rejoin failed; trying again')
        await sleep(rejoinEveryMs)
        continue
      }
      if ((this.#state as MemberState) !== 'member') return
      // The watch may have missed events while cut off: everything is read again before the node
      // acts for the cluster (publishes forwarded by a stale view would go to the wrong home).
      try {
        await this.#loadView()
      } catch (err) {
        this.#log.warn({ err }, 'could not reload the cluster view; fencing again')
        this.#fence('could not reload the cluster view after rejoining')
        await sleep(rejoinEveryMs)
        continue
      }
      this.#notifyFenced(false)
      await this.#campaign()
    }
  }

  #notifyFenced(fenced: boolean): void {
    try {
      this.#opts.onFenced(fenced)
    } catch (err) {
      this.#log.error({ err }, 'fence listener failed')
    }
  }

  async #refreshRecord(): Promise<void> {
    const r = this.#record
    const id = this.#leaseId
    if (this.#state !== 'member' || r === undefined || id === undefined) return
    const bytes = this.#opts.storedBytes()
    if (Math.abs(bytes - r.storedBytes) <= r.storedBytes / 100) return
    const next = { ...r, storedBytes: bytes }
    const c = this.#etcd.client
    const key = this.#keys.node(this.#cfg.nodeId)
    // Only over our own record: a fenced-and-replaced one is not ours to write.
    const res = await this.#etcd.timed('txn', () => c.if(key, 'Lease', '==', id).then(c.put(key).value(JSON.stringify(next)).lease(id)).commit()).catch(() => undefined)
    if (res?.succeeded === true) this.#record = next
  }

  async #seedStreams(): Promise<void> {
    const c = this.#etcd.client
    await Promise.all(
      this.#opts.fileStreams().map(({ name, replicas }) => {
        const key = this.#keys.stream(name)
        // The first node to start writes it; what another node's file says later changes nothing.
        const value = JSON.stringify({ origin: 'file', by: this.#cfg.nodeId, ...(replicas !== null ? { replicas } : {}) } satisfies StreamRecord)
        return this.#etcd.timed('txn', () => c.if(key, 'Version', '==', 0).then(c.put(key).value(value)).commit())
      }),
    )
  }

  // ---- view --------------------------------------------------------------------------------------

  async #loadView(): Promise<void> {
    const c = this.#etcd.client
    const held = await this.#opts.definitionsHeld?.()
    const res = await this.#etcd.timed('get', () => c.getAll().prefix(this.#keys.root).exec())
    const v = this.#view
    v.nodes.clear()
    v.streams.clear()
    v.incarnations.clear()
    v.formed = false
    v.placements.clear()
    v.controller = undefined
    const defs: DefinitionChange[] = []
    for (const kv of res.kvs) {
      const change = this.#apply('put', kv.key.toString(), kv.value.toString(), Number(kv.create_revision))
      if (change !== undefined) defs.push(change)
    }
    this.#revision = Number(res.header.revision)
    this.#loadedAt = this.#revision
    // Exchanges before the streams, bindings and groups that name them.
    defs.sort((a, b) => definitionOrder.indexOf(a.kind) - definitionOrder.indexOf(b.kind))
    for (const d of defs) this.#opts.onDefinition?.(d)
    if (held !== undefined) this.#opts.onDefinitionsLoaded?.(held, { present: this.#definitionKeys(res.kvs.map((kv) => kv.key.toString())), cluster: `${res.header.cluster_id} ${this.#keys.root}` })
    const old = this.#watcher
    this.#watcher = undefined
    await old?.cancel().catch(() => undefined)
    // Creating a watch waits for etcd with no deadline of its own: a stop or a fence must not hang on it.
    const creating = c.watch().prefix(this.#keys.root).startRevision(String(this.#revision + 1)).create()
    const w = await withDeadline(creating, this.#cfg.etcd.requestTimeoutMs, 'creating the cluster watch').catch((err: unknown) => {
      // One that comes up after all is let go, not leaked.
      void creating.then((late) => late.cancel()).catch(() => undefined)
      throw err
    })
    if (this.#state === 'stopped') {
      await w.cancel().catch(() => undefined)
      return
    }
    this.#watcher = w
    // Only the current watcher's events count, and only past what the view was read at: an old
    // watcher reconnecting after a partition replays history that must not undo the fresh read.
    w.on('put', (kv) => {
      if (w === this.#watcher) this.#changed('put', kv.key.toString(), kv.value.toString(), Number(kv.create_revision), Number(kv.mod_revision))
    })
    w.on('delete', (kv) => {
      if (w === this.#watcher) this.#changed('delete', kv.key.toString(), '', 0, Number(kv.mod_revision))
    })
    w.on('error', (err) => {
      if (w !== this.#watcher) return
      // A compacted revision or a closed stream: start over from a fresh read.
      this.#log.warn({ err }, 'cluster watch failed; reloading the view')
      if (this.#state === 'member') this.#reload()
    })
    this.#viewReady = true
    this.#viewChanged()
    this.#reconcile()
  }

  #viewChanged(): void {
    for (const [stream, waiters] of this.#placedWaiters) {
      if (!this.#view.placements.has(stream)) continue
      this.#placedWaiters.delete(stream)
      for (const w of waiters) w()
    }
    try {
      this.#opts.onView?.()
    } catch (err) {
      this.#log.error({ err }, 'view listener failed')
    }
  }

  /**
   * Resolves once `stream` is placed, as this node sees it, or after `timeoutMs` (at once when
   * the cluster does not place streams yet): a queue declared here takes publishes on its
   * declare-ok instead of refusing them until the controller's placement arrives.
   */
  async waitPlaced(stream: string, timeoutMs: number): Promise<boolean> {
    if (this.#view.placements.has(stream)) return true
    if (!this.#viewReady || !this.#mayPlace()) return false
    return new Promise<boolean>((resolve) => {
      let list = this.#placedWaiters.get(stream)
      if (list === undefined) this.#placedWaiters.set(stream, (list = new Set()))
      const waiters = list
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        // A wait that timed out leaves no empty set behind for a stream never placed.
        if (waiters.size === 0 && this.#placedWaiters.get(stream) === waiters) this.#placedWaiters.delete(stream)
        resolve(this.#view.placements.has(stream))
      }
      const timer = setTimeout(done, timeoutMs)
      timer.unref()
      waiters.add(done)
    })
  }

  /** One reload at a time; a failed one fences the node, whose rejoin reads everything again. */
  #reload(): void {
    this.#reloading ??= this.#loadView()
      .catch((err: unknown) => {
        this.#log.warn({ err }, 'could not reload the cluster view')
        this.#fence('could not reload the cluster view')
      })
      .finally(() => (this.#reloading = undefined))
  }

  #changed(kind: 'put' | 'delete', key: string, value: string, createRevision: number, modRevision: number): void {
    // One transaction's events share a revision: compare with the read, not with the last event.
    if (modRevision <= this.#loadedAt) return
    if (modRevision > this.#revision) this.#revision = modRevision
    const change = this.#apply(kind, key, value, createRevision)
    if (change !== undefined) this.#opts.onDefinition?.(change)
    if (key === this.#keys.controller && kind === 'delete') void this.#campaign()
    this.#viewChanged()
    this.#reconcile()
  }

  /** `kind\0name` of every definition among `keys`, whatever its value (a file's streams too). */
  #definitionKeys(keys: readonly string[]): Set<string> {
    const k = this.#keys
    const out = new Set<string>()
    for (const key of keys) {
      if (key.startsWith(k.streams)) out.add(definitionKey('stream', key.slice(k.streams.length)))
      const def = k.definitionOf(key)
      if (def !== undefined) out.add(definitionKey(def.kind, def.name))
    }
    return out
  }

  /** Applies one key to the view; returns the run-time definition it changes, if it is one. */
  #apply(kind: 'put' | 'delete', key: string, value: string, createRevision: number): DefinitionChange | undefined {
    const k = this.#keys
    const v = this.#view
    const named = <T>(prefix: string, map: Map<string, T>, parse: (text: string) => T | undefined): void => {
      const name = key.slice(prefix.length)
      if (kind === 'delete') {
        map.delete(name)
        return
      }
      const rec = parse(value)
      if (rec === undefined) this.#log.warn({ key }, 'ignoring a cluster key whose value is not valid')
      else map.set(name, rec)
    }
    if (key === k.formed) v.formed = kind === 'put'
    else if (key === k.controller) {
      const rec = kind === 'put' ? parseController(value) : undefined
      v.controller = rec === undefined ? undefined : { record: rec, epoch: createRevision }
      // Another controller at a newer epoch, or none: this node is not the controller.
      if (this.#controllerEpoch !== undefined && v.controller?.epoch !== this.#controllerEpoch) {
        this.#log.warn({ epoch: this.#controllerEpoch }, 'no longer the controller')
        this.#controllerEpoch = undefined
      }
    } else if (key.startsWith(k.nodes)) named(k.nodes, v.nodes, parseNode)
    else if (key.startsWith(k.streams)) {
      const name = key.slice(k.streams.length)
      const before = v.streams.get(name)
      named(k.streams, v.streams, parseStream)
      const after = v.streams.get(name)
      const incarnation = v.incarnations.get(name)
      if (kind === 'delete') v.incarnations.delete(name)
      else v.incarnations.set(name, createRevision)
      // A file's streams are every node's own; only run-time ones are applied from here.
      if (kind === 'delete') return before?.origin === 'runtime' ? { kind: 'stream', name, definition: undefined, revision: incarnation } : undefined
      return after?.origin === 'runtime' && after.definition !== undefined ? { kind: 'stream', name, definition: after.definition, revision: createRevision } : undefined
    } else if (key.startsWith(k.placements)) named(k.placements, v.placements, parsePlacement)
    else if (key.startsWith(k.defs)) {
      const def = k.definitionOf(key)
      if (def === undefined) return undefined
      if (kind === 'delete') return { ...def, definition: undefined }
      const definition = parseDefinition(value)
      if (definition === undefined) this.#log.warn({ key }, 'ignoring a cluster key whose value is not valid')
      return definition === undefined ? undefined : { ...def, definition }
    }
    return undefined
  }

  // ---- controller ------------------------------------------------------------------------------

  /** Tries to become the controller when there is none. */
  async #campaign(): Promise<void> {
    const lease = this.#leaseId
    if (this.#state !== 'member' || this.#controllerEpoch !== undefined || lease === undefined) return
    const c = this.#etcd.client
    const key = this.#keys.controller
    const value = JSON.stringify({ node: this.#cfg.nodeId, since: new Date().toISOString() } satisfies ControllerRecord)
    try {
      const res = await this.#etcd.timed('txn', () => c.if(key, 'Version', '==', 0).then(c.put(key).value(value).lease(lease)).commit())
      if (!res.succeeded || this.#state !== 'member' || lease !== this.#leaseId) return
      // The key was created by this transaction, so its create revision is the header's.
      this.#controllerEpoch = Number(res.header.revision)
      this.counters.elections++
      this.#log.info({ epoch: this.#controllerEpoch }, 'elected controller')
      this.#reconcile()
    } catch (err) {
      this.#log.warn({ err }, 'controller campaign failed; trying again on the next change')
    }
  }

  /** As controller, places every stream without a home; runs once more if asked while running. */
  #reconcile(): void {
    if (this.#controllerEpoch === undefined) return
    if (this.#reconciling !== undefined) {
      this.#reconcileAgain = true
      return
    }
    this.#reconciling = this.#place()
      .catch((err: unknown) => this.#log.warn({ err }, 'placement failed; trying again on the next change'))
      .finally(() => {
        this.#reconciling = undefined
        if (this.#reconcileAgain) {
          this.#reconcileAgain = false
          this.#reconcile()
        }
      })
  }

  /** Placing waits for minNodes nodes until the cluster first had them (a cold start spreads the streams). */
  #mayPlace(): boolean {
    return this.#view.formed || this.#view.nodes.size >= this.#cfg.minNodes
  }

  async #place(): Promise<void> {
    const epoch = this.#controllerEpoch
    if (epoch === undefined) return
    const v = this.#view
    // A dead leader's streams go to an in-sync follower whatever minNodes says: it is for placing.
    await this.#failover(epoch)
    const unplaced = [...v.streams.keys()].filter((s) => !v.placements.has(s))
    if (!this.#mayPlace()) return
    if (!v.formed) {
      // Said once in etcd, under this controller's epoch: a node down later does not stop new
      // streams being placed on those that are up (minNodes is for the cold start's spread).
      const c = this.#etcd.client
      const record = JSON.stringify({ at: new Date().toISOString(), nodes: [...v.nodes.keys()].sort() })
      const res = await this.#etcd.timed('txn', () => c.if(this.#keys.controller, 'Create', '==', epoch).and(this.#keys.formed, 'Version', '==', 0).then(c.put(this.#keys.formed).value(record)).commit())
      if (res.succeeded) this.#log.info({ nodes: v.nodes.size, minNodes: this.#cfg.minNodes }, 'cluster formed: streams are placed on the nodes that are up from now on')
    }
    if (unplaced.length === 0) return this.#fillReplicas(epoch)
    const placed = new Map([...v.placements].map(([s, p]) => [s, p.node]))
    const homes = [...placeStreams(unplaced, [...v.nodes.values()], placed)]
    const copies = this.#copies()
    const live = [...v.nodes.keys()]
    const c = this.#etcd.client
    const since = new Date().toISOString()
    for (let i = 0; i < homes.length; i += placementBatch) {
      const batch = homes.slice(i, i + placementBatch)
      // Written only while this node's controller key is the one etcd holds (its create revision
      // is the epoch) and only where no placement exists: a deposed controller writes nothing.
      let txn = c.if(this.#keys.controller, 'Create', '==', epoch)
      for (const [stream] of batch) txn = txn.and(this.#keys.placement(stream), 'Version', '==', 0)
      const puts = batch.map(([stream, node]) => {
        const replicas = [node, ...chooseFollowers(node, [], live, this.replicasOf(stream), copies)]
        // A new stream is empty everywhere: every replica starts in sync.
        return c.put(this.#keys.placement(stream)).value(JSON.stringify({ node, epoch: 1, controllerEpoch: epoch, since, replicas, isr: replicas } satisfies PlacementRecord))
      })
      const res = await this.#etcd.timed('txn', () => txn.then(...puts).commit())
      if (!res.succeeded) return // the view is behind; the watch brings the change and another pass
      this.counters.placements += batch.length
      for (const [stream, node] of batch) this.#log.info({ stream, node, controllerEpoch: epoch }, 'stream placed')
    }
  }

  /**
   * As controller, gives each stream whose leader holds no lease a new leader: the first live
   * member of its in-sync set, at the next epoch, the dead leader out of the set (it follows when
   * it is back). With no live in-sync member the stream waits, unless uncleanElection allows a
   * live follower that is not in sync. Each write compared on the placement's revision.
   */
  async #failover(epoch: number): Promise<void> {
    const v = this.#view
    for (const [stream, p] of v.placements) {
      if (v.nodes.has(p.node) || p.replicas.length <= 1) continue
      // Chosen from the placement as etcd has it now, not as the view had it a moment ago.
      const cur = await this.readPlacement(stream)
      if (cur === undefined || cur.record.node !== p.node || cur.record.epoch !== p.epoch || v.nodes.has(cur.record.node)) continue
      let leader = cur.record.isr.find((n) => n !== p.node && v.nodes.has(n))
      const unclean = leader === undefined
      if (unclean) {
        if (!this.#cfg.replication.uncleanElection) continue
        leader = cur.record.replicas.find((n) => n !== p.node && v.nodes.has(n))
        if (leader === undefined) continue
      }
      const chosen = leader!
      const next: PlacementRecord = {
        node: chosen,
        epoch: cur.record.epoch + 1,
        controllerEpoch: epoch,
        since: new Date().toISOString(),
        replicas: [chosen, ...cur.record.replicas.filter((n) => n !== chosen)],
        isr: unclean ? [chosen] : [chosen, ...cur.record.isr.filter((n) => n !== chosen && n !== p.node)],
      }
      if ((await this.casPlacement(stream, cur.modRevision, next)) === undefined) continue
      if (unclean) {
        this.counters.uncleanElections++
        this.#log.error({ stream, dead: p.node, leader: chosen, epoch: next.epoch }, 'UNCLEAN leader election: no in-sync replica lives; confirmed events the new leader lacks are lost (cluster.replication.uncleanElection)')
      } else {
        this.counters.failovers++
        this.#log.warn({ stream, dead: p.node, leader: chosen, epoch: next.epoch, isr: next.isr }, 'leader failed over to an in-sync follower')
      }
    }
  }

  /** The copies `stream` wants: its own `replicas`, else cluster.replication.factor. */
  replicasOf(stream: string): number {
    return replicasOf(this.#view.streams.get(stream), this.#cfg.replication.factor)
  }

  /** Copies each node holds, as placed. */
  #copies(): Map<string, number> {
    const copies = new Map<string, number>()
    for (const p of this.#view.placements.values()) for (const n of p.replicas) copies.set(n, (copies.get(n) ?? 0) + 1)
    return copies
  }

  /**
   * As controller, gives placed streams the followers they lack (a factor raised, nodes that
   * joined after placement); each write compared on the placement's revision. A follower added
   * is not in sync until it has caught up.
   */
  async #fillReplicas(epoch: number): Promise<void> {
    const v = this.#view
    const live = [...v.nodes.keys()]
    const copies = this.#copies()
    for (const [stream, p] of v.placements) {
      const followers = chooseFollowers(p.node, p.replicas, live, this.replicasOf(stream), copies)
      if (followers.length + 1 <= p.replicas.length) continue
      const cur = await this.readPlacement(stream)
      if (cur === undefined || cur.record.node !== p.node || cur.record.epoch !== p.epoch) continue
      const next: PlacementRecord = { ...cur.record, replicas: [p.node, ...followers] }
      if ((await this.casPlacement(stream, cur.modRevision, next)) !== undefined) this.#log.info({ stream, replicas: next.replicas, controllerEpoch: epoch }, 'followers added')
    }
  }

  /**
   * As controller, writes `next` over the stream's placement only while it is at `modRevision`
   * and this node still holds the controller key at its epoch. Returns the revision written, or
   * undefined when a compare failed.
   */
  async casPlacement(stream: string, modRevision: number, next: PlacementRecord): Promise<number | undefined> {
    const epoch = this.#controllerEpoch
    if (epoch === undefined) return undefined
    const c = this.#etcd.client
    const key = this.#keys.placement(stream)
    const res = await this.#etcd.timed('txn', () => c.if(this.#keys.controller, 'Create', '==', epoch).and(key, 'Mod', '==', modRevision).then(c.put(key).value(JSON.stringify(next))).commit())
    return res.succeeded ? Number(res.header.revision) : undefined
  }

  // ---- moving a stream (move.ts) -----------------------------------------------------------------

  /** The stream's placement as the view holds it. */
  placement(stream: string): PlacementRecord | undefined {
    return this.#view.placements.get(stream)
  }

  /** The controller epoch the view holds (undefined: no controller now). */
  get viewControllerEpoch(): number | undefined {
    return this.#view.controller?.epoch
  }

  /** This node's epoch while it is the controller. */
  get controllerEpoch(): number | undefined {
    return this.#controllerEpoch
  }

  /** Whether `node` holds a lease now, as the view has it. */
  isLive(node: string): boolean {
    return this.#view.nodes.has(node)
  }

  /** The record of a live node. */
  nodeRecord(node: string): NodeRecord | undefined {
    return this.#view.nodes.get(node)
  }

  /** The stream's placement as etcd holds it now, with the revision a compare-and-set names. */
  async readPlacement(stream: string): Promise<{ readonly record: PlacementRecord; readonly modRevision: number } | undefined> {
    const c = this.#etcd.client
    const res = await this.#etcd.timed('get', () => c.get(this.#keys.placement(stream)).exec())
    const kv = res.kvs[0]
    const record = kv === undefined ? undefined : parsePlacement(kv.value.toString())
    return record === undefined ? undefined : { record, modRevision: Number(kv!.mod_revision) }
  }

  /**
   * As controller, records that `stream` is moving, under the controller's lease (a dead
   * controller's moves end with it). Returns the record's create revision, the move's id; undefined
   * when a move of the stream is recorded already, or this node is no longer the controller.
   */
  async beginMove(stream: string, move: MoveRecord): Promise<number | undefined> {
    const epoch = this.#controllerEpoch
    const lease = this.#leaseId
    if (epoch === undefined || lease === undefined) return undefined
    const c = this.#etcd.client
    const key = this.#keys.move(stream)
    const res = await this.#etcd.timed('txn', () => c.if(this.#keys.controller, 'Create', '==', epoch).and(key, 'Version', '==', 0).then(c.put(key).value(JSON.stringify(move)).lease(lease)).commit())
    return res.succeeded ? Number(res.header.revision) : undefined
  }

  /**
   * As controller, switches the placement to `next` and ends the move, in one transaction that
   * passes only while this node holds the controller key at its epoch, the placement is still at
   * `modRevision`, and the move `moveId` has not been called off. True when it passed.
   */
  async switchMove(stream: string, moveId: number, modRevision: number, next: PlacementRecord): Promise<boolean> {
    const epoch = this.#controllerEpoch
    if (epoch === undefined) return false
    const c = this.#etcd.client
    const placement = this.#keys.placement(stream)
    const move = this.#keys.move(stream)
    const res = await this.#etcd.timed('txn', () =>
      c.if(this.#keys.controller, 'Create', '==', epoch).and(placement, 'Mod', '==', modRevision).and(move, 'Create', '==', moveId).then(c.put(placement).value(JSON.stringify(next)), c.delete().key(move)).commit(),
    )
    return res.succeeded
  }

  /**
   * Calls the move `moveId` off, from any node: once this passes, its switch cannot. False when the
   * move is recorded no more (switched, or called off already): read the placement to know which.
   */
  async endMove(stream: string, moveId: number): Promise<boolean> {
    const c = this.#etcd.client
    const move = this.#keys.move(stream)
    const res = await this.#etcd.timed('txn', () => c.if(move, 'Create', '==', moveId).then(c.delete().key(move)).commit())
    return res.succeeded
  }

  // ---- status ----------------------------------------------------------------------------------

  status(): ClusterStatus {
    const v = this.#view
    const now = this.#now()
    const counts = new Map<string, number>()
    for (const p of v.placements.values()) counts.set(p.node, (counts.get(p.node) ?? 0) + 1)
    const member = this.#state === 'member'
    return {
      enabled: true,
      node: this.#cfg.nodeId,
      state: this.state,
      lease: {
        id: member ? (this.#leaseId ?? null) : null,
        ttlMs: leaseSeconds(this.#cfg.etcd.leaseTtlMs) * 1000,
        remainingMs: member ? Math.max(0, Math.round(this.#validUntil - now)) : null,
        sinceKeepaliveMs: this.#lastKeepalive === undefined ? null : Math.round(now - this.#lastKeepalive),
      },
      controller: v.controller === undefined ? null : { node: v.controller.record.node, epoch: v.controller.epoch, since: v.controller.record.since, self: v.controller.epoch === this.#controllerEpoch },
      nodes: [...v.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => ({ ...n, streams: counts.get(n.id) ?? 0 })),
      placement: [...v.placements].sort(([a], [b]) => (a < b ? -1 : 1)).map(([stream, p]) => ({ stream, ...p, live: v.nodes.has(p.node) })),
      unplaced: [...v.streams.keys()].filter((s) => !v.placements.has(s)).sort(),
      minNodes: this.#cfg.minNodes,
      etcd: { endpoints: this.#cfg.etcd.endpoints, prefix: this.#cfg.etcd.prefix, revision: this.#revision },
    }
  }
}
