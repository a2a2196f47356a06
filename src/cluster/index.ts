// Cluster mode as the server sees it: the node's membership and view (node.ts), the internal port
// other nodes forward appends to (internal.ts), and the publish path's placement seam filled in
// (Forwarder). One object to start after the doors listen and to stop before they close.

import type { ClusterConfig } from '../config/index.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ForwardRequest, RemoteStream, StreamPlacement } from '../streams/placement.js'
import type { PublishResult } from '../streams/publisher.js'
import { InternalServer, PeerClient } from './internal.js'
import { GroupServer, RemoteGroup } from './remote-group.js'
import { ClusterNode, type ClusterStatus } from './node.js'
import { ClusterDefinitions, DefinitionsApplier } from './definitions.js'
import type { GroupRegistry } from '../consumers/index.js'
import type { Catalog } from '../streams/catalog.js'
import type { BrokerPublisher } from '../streams/publisher.js'
import type { StreamRegistry } from '../streams/registry.js'
import type { MetaStore } from '../meta/index.js'
import { Mover, type MoveResult } from './move.js'
import { PeerTransport, readPeerTls } from './transport.js'
import { Replicator } from './replication.js'
import type { TlsReloader } from '../ingest/tcp/tls.js'

export type { ClusterStatus, MemberState, StreamReach } from './node.js'
export type { MoveResult } from './move.js'
export { ClusterNode } from './node.js'

export interface ForwardStats {
  ok: number
  error: number
  events: number
  seconds: number
}

/** The publish path's view of placement: which target streams go to another node, and how. */
export class Forwarder implements StreamPlacement {
  /** Forwards by home node. */
  readonly stats = new Map<string, ForwardStats>()
  readonly #node: ClusterNode
  readonly #client: PeerClient
  readonly #observe: ((node: string, seconds: number) => void) | undefined

  constructor(node: ClusterNode, client: PeerClient, observe?: (node: string, seconds: number) => void) {
    this.#node = node
    this.#client = client
    this.#observe = observe
  }

  remote(stream: string): RemoteStream | undefined {
    const r = this.#node.reach(stream)
    if (r.here) return undefined
    if (r.home === undefined) throw errors.streamUnavailable(stream, r.why, r.node)
    const peer = { node: r.home.id, host: r.home.host, port: r.home.internalPort }
    return { node: peer.node, forward: (req) => this.#forward(peer, req) }
  }

  assertHome(stream: string): void {
    const r = this.#node.reach(stream)
    if (r.here) return
    if (r.home === undefined) throw errors.streamUnavailable(stream, r.why, r.node)
    throw errors.streamUnavailable(stream, `its home is node ${r.home.id}, not this one`, r.home.id)
  }

  async #forward(peer: { node: string; host: string; port: number }, req: ForwardRequest): Promise<PublishResult> {
    let s = this.stats.get(peer.node)
    if (s === undefined) this.stats.set(peer.node, (s = { ok: 0, error: 0, events: 0, seconds: 0 }))
    const t0 = performance.now()
    try {
      const r = await this.#client.forward(peer, req)
      s.ok++
      s.events += req.records.length
      return r
    } catch (err) {
      s.error++
      throw err
    } finally {
      const seconds = (performance.now() - t0) / 1000
      s.seconds += seconds
      this.#observe?.(peer.node, seconds)
    }
  }
}

/** A node's HTTP listener, as other nodes reach it. */
export interface HttpHome {
  readonly node: string
  readonly host: string
  readonly port: number
  readonly tls: boolean
}

export interface ClusterOptions {
  readonly config: ClusterConfig
  readonly version: string
  readonly logger: Logger
  readonly ports: () => { readonly http: number | null; readonly httpTls: boolean; readonly amqp: number | null }
  readonly fileStreams: () => ReadonlyArray<{ readonly name: string; readonly replicas: number | null }>
  readonly storedBytes: () => number
  readonly onFenced: (fenced: boolean) => void
  /** Stores records forwarded by other nodes (BrokerPublisher.publishForwarded). */
  readonly store: (req: ForwardRequest) => Promise<PublishResult>
  /** Observes each forward's duration (the forward latency histogram). */
  readonly observeForward?: (node: string, seconds: number) => void
  /** Where run-time definitions are declared here and applied from the others. */
  readonly catalog: Catalog
  readonly groups: GroupRegistry
  /** What a move hands over: the logs, and the held publishes and remembered ids. */
  readonly streams: StreamRegistry
  readonly publisher: BrokerPublisher
  /** Where replicas keep their streams' leader-epoch history. */
  readonly meta: MetaStore
  /** Where the internal port's certificate is registered for reload on SIGHUP (cluster.replication.tls). */
  readonly tlsReloader?: TlsReloader | undefined
}

export type ClusterView = ClusterStatus & {
  readonly forwarding: Readonly<Record<string, ForwardStats>>
  readonly internalPort: number
  /** Definitions from other nodes applied here, and those that could not be (logged). */
  readonly definitions: { readonly applied: number; readonly failed: number; readonly removedAtJoin: number }
  /** The streams led here (watermark, followers' ends and lag) and followed here. */
  readonly replication: { readonly factor: number; readonly minInSync: number } & ReturnType<Replicator['status']>
  /** Moves this node ran as controller, and the handovers it takes part in now. */
  readonly moves: { readonly moved: number; readonly failed: number; readonly handovers: ReturnType<Mover['handovers']> }
}

export class Cluster {
  readonly node: ClusterNode
  readonly forwarder: Forwarder
  readonly internal: InternalServer
  /** Claims run-time declarations in etcd (the catalog's and group registry's mirror). */
  readonly definitions: ClusterDefinitions
  /** Applies the other nodes' declarations here. */
  readonly applier: DefinitionsApplier
  /** `sluice cluster move`: as controller, and as either end of a handover. */
  readonly mover: Mover
  /** Followers' copies of the streams led here, and this node's copies of others'. */
  readonly replicator: Replicator
  /** Replica fetches have connections of their own: a long poll each per followed stream. */
  readonly #replication: PeerTransport
  readonly #client: PeerClient
  readonly #secret: string
  readonly #factor: number
  readonly #minInSync: number
  readonly #log: Logger
  /** Keep-alive connections for remote groups' operations and moves (forwarded appends have their own). */
  readonly #control: PeerTransport
  readonly #opts: ClusterOptions
  #unregisterTls: (() => void) | undefined

  private constructor(opts: ClusterOptions) {
    this.#opts = opts
    const c = opts.config
    const tls = readPeerTls(c.replication.tls)
    this.#control = new PeerTransport(tls)
    this.#replication = new PeerTransport(tls, 64)
    this.#secret = c.secret
    this.#factor = c.replication.factor
    this.#minInSync = c.replication.minInSync
    this.#log = opts.logger.child({ component: 'cluster' })
    const groupServer = new GroupServer(() => opts.groups)
    this.internal = new InternalServer({
      host: c.replication.host,
      port: c.replication.port,
      secret: c.secret,
      maxBodyBytes: c.replication.maxBodyBytes,
      timeoutMs: Math.max(c.replication.forwardTimeoutMs, c.replication.moveTimeoutMs),
      logger: opts.logger,
      store: (req) => this.#storeForwarded(req),
      groups: groupServer,
      moves: { handle: (route, stream, query, body) => this.mover.handle(route, stream, query, body) },
      replication: { fetch: (stream, query) => this.replicator.fetch(stream, query), epochEnd: (stream, query) => this.replicator.epochEnd(stream, query), changeInSync: (body) => this.replicator.changeInSync(body) },
      tls,
    })
    const applier = new DefinitionsApplier(opts.catalog, opts.groups, opts.streams, opts.meta, opts.logger.child({ component: 'cluster' }))
    this.applier = applier
    this.node = new ClusterNode({ ...opts, ports: () => ({ ...opts.ports(), internal: c.advertise.internalPort ?? this.internal.port }), onDefinition: (change) => applier.apply(change), definitionsHeld: () => applier.held(), onDefinitionsLoaded: (held, loaded) => applier.reconcile(held, loaded), onView: () => {
        this.mover.onView()
        this.replicator.onView()
      },
    })
    this.replicator = new Replicator({ node: this.node, meta: opts.meta, groups: opts.groups, adoptIds: (stream) => opts.publisher.replaceIds(stream, { ids: [], checkpoint: null }), config: c, streams: opts.streams, transport: this.#replication, secret: c.secret, logger: opts.logger })
    this.mover = new Mover({ node: this.node, config: c, streams: opts.streams, groups: opts.groups, publisher: opts.publisher, secret: c.secret, transport: this.#control, logger: opts.logger })
    this.definitions = new ClusterDefinitions(
      this.node.etcd,
      this.node.keys,
      c.nodeId,
      (name, incarnation) => applier.recordIncarnation(name, incarnation),
      (name) => this.node.waitPlaced(name, c.etcd.requestTimeoutMs * 2),
    )
    this.#client = new PeerClient(c.secret, c.replication.forwardTimeoutMs, tls)
    this.forwarder = new Forwarder(this.node, this.#client, opts.observeForward)
  }

  /**
   * A forwarded append can reach the home before the home's own watch brought the stream or its
   * placement (the sender saw them first): it waits for them, bounded, rather than refusing a
   * publish that a client sent right after its declare-ok.
   */
  async #storeForwarded(req: ForwardRequest): Promise<PublishResult> {
    const bound = this.#opts.config.etcd.requestTimeoutMs * 2
    if (this.node.placement(req.stream) === undefined) await this.node.waitPlaced(req.stream, bound)
    if (this.#opts.streams.get(req.stream) === undefined) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([this.applier.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, bound)))])
      clearTimeout(timer)
    }
    return this.#opts.store(req)
  }

  /** Made before the doors listen, so a publish they take while the node joins waits for placement (refused, retryable). */
  static create(opts: ClusterOptions): Cluster {
    return new Cluster(opts)
  }

  /** Listens on the internal port, then joins (the node's record names that port), and applies the cluster's definitions. */
  async start(): Promise<void> {
    await this.internal.listen()
    const tls = this.#opts.config.replication.tls
    if (tls !== null) {
      // The server first: a context it refuses leaves the connecting side unchanged too.
      this.#unregisterTls = this.#opts.tlsReloader?.add(
        { config: { ...tls, clientAuth: 'required', minVersion: 'TLSv1.2' }, label: `cluster internal ${this.#opts.config.replication.host}:${this.internal.port}` },
        {
          setSecureContext: (options) => {
            this.internal.setSecureContext(options)
            this.#control.setSecureContext(options)
            this.#replication.setSecureContext(options)
            this.#client.setSecureContext(options)
          },
        },
      )
    }
    this.replicator.start()
    await this.node.start()
    await this.applier.idle()
  }

  /** The cluster secret, which forwarded HTTP requests carry so the home node trusts the user they name. */
  get secret(): string {
    return this.#secret
  }

  /**
   * Where a group reading `stream` must be served: undefined when here. Throws a retryable
   * SluiceError when the stream has no reachable home now.
   */
  httpHome(stream: string): HttpHome | undefined {
    const r = this.node.reach(stream)
    if (r.here) return undefined
    if (r.home === undefined) throw errors.streamUnavailable(stream, r.why, r.node)
    if (r.home.httpPort === null) throw errors.streamUnavailable(stream, `its home node ${r.home.id} serves no HTTP`, r.home.id)
    return { node: r.home.id, host: r.home.host, port: r.home.httpPort, tls: r.home.httpTls }
  }

  /**
   * Cluster mode's AMQP consumers: the group as served by the node its stream lives on, when that
   * is another (undefined: here), or why it cannot be consumed now.
   */
  remoteGroup(group: { readonly name: string; readonly stream: string }): RemoteGroup | { readonly refused: string } | undefined {
    const r = this.node.reach(group.stream)
    if (r.here) return undefined
    if (r.home === undefined) return { refused: r.why }
    return new RemoteGroup(group, { node: r.home.id, host: r.home.host, port: r.home.internalPort }, this.#secret, this.#control, this.#log)
  }

  /** Moves `stream` to node `to` (`sluice cluster move`): run by the controller, asked from any node. */
  move(stream: string, to: string): Promise<MoveResult> {
    return this.mover.request(stream, to)
  }

  status(): ClusterView {
    return {
      ...this.node.status(),
      internalPort: this.internal.port,
      forwarding: Object.fromEntries(this.forwarder.stats),
      definitions: { applied: this.applier.applied, failed: this.applier.failed, removedAtJoin: this.applier.removedAtJoin },
      moves: { moved: this.mover.counters.moved, failed: this.mover.counters.failed, handovers: this.mover.handovers() },
      replication: { factor: this.#factor, minInSync: this.#minInSync, ...this.replicator.status() },
    }
  }

  async stop(): Promise<void> {
    this.#unregisterTls?.()
    this.mover.stop()
    this.replicator.stop()
    await this.node.stop()
    this.#client.close()
    this.#control.destroy()
    this.#replication.destroy()
    if (this.internal.port !== 0) await this.internal.close()
  }
}
