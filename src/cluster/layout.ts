// The cluster's keys in etcd, under `cluster.etcd.prefix` (docs/cluster.md, "Keys"):
//
//   <prefix>/nodes/<nodeId>        NodeRecord, under the node's lease: gone when the node is
//   <prefix>/controller            ControllerRecord, under the controller's lease; the key's create
//                                  revision is the controller epoch
//   <prefix>/streams/<name>        StreamRecord: a stream the cluster places (seeded from the files)
//   <prefix>/placement/<name>      PlacementRecord: the stream's home node and placement epoch
//   <prefix>/defs/<kind>/<name>    run-time exchanges, bindings and groups (definitions.ts)
//   <prefix>/moves/<name>          MoveRecord, under the controller's lease, while a stream moves:
//                                  the switch requires it, so deleting it calls the move off
//   <prefix>/formed                {at, nodes}: written once the cluster first had minNodes nodes;
//                                  from then on streams are placed on the nodes that are up
//
// Values are JSON. A value that does not parse as its record is ignored with a warning rather
// than trusted: etcd is shared, and a hand-edited key must not stop every node.

export interface NodeRecord {
  readonly id: string
  /** How other nodes and clients reach it (cluster.advertise.host). */
  readonly host: string
  readonly httpPort: number | null
  /** The HTTP listener serves HTTPS: forwarded group requests use it. */
  readonly httpTls: boolean
  readonly amqpPort: number | null
  /** The internal port (cluster.replication.port): where other nodes forward appends. */
  readonly internalPort: number
  /** The lease the record lives under, in hex as etcdctl prints it. */
  readonly lease: string
  readonly startedAt: string
  readonly version: string
  /** Bytes of the streams this node stores, refreshed now and then: placement's tie-break. */
  readonly storedBytes: number
}

export interface ControllerRecord {
  readonly node: string
  readonly since: string
}

export interface StreamRecord {
  /** `file`: a configuration file declares it; the node that wrote it first is `by`. */
  readonly origin: 'file' | 'runtime'
  readonly by: string
  /** A file stream's `replicas` (a run-time stream's is in its definition); absent: the cluster's factor. */
  readonly replicas?: number | undefined
  /** A run-time stream's settings, as the catalog stores them. */
  readonly definition?: JsonValue | undefined
}

/** The copies a stream wants: its own `replicas`, else `factor`. */
export function replicasOf(record: StreamRecord | undefined, factor: number): number {
  const own = record?.replicas ?? (record?.definition as { replicas?: unknown } | undefined)?.replicas
  return typeof own === 'number' && Number.isSafeInteger(own) && own >= 1 ? own : factor
}

export interface PlacementRecord {
  /** The home: the leader, which takes every append and serves every consumer. */
  readonly node: string
  /**
   * Starts at 1; every change of home adds one, so a stale placement is recognised. It is the
   * leader epoch too: followers fetch naming it, and a leader at another epoch is refused.
   */
  readonly epoch: number
  /** Every node holding a copy, the leader first (cluster.replication.factor of them when there are enough nodes). */
  readonly replicas: readonly string[]
  /** The replicas in sync with the leader, the leader first; publishes need minInSync of them. */
  readonly isr: readonly string[]
  /** The controller epoch that wrote it. */
  readonly controllerEpoch: number
  readonly since: string
}

export interface MoveRecord {
  readonly from: string
  readonly to: string
  readonly controllerEpoch: number
  readonly since: string
}

export class ClusterKeys {
  readonly root: string
  readonly nodes: string
  readonly controller: string
  readonly streams: string
  readonly placements: string
  readonly defs: string
  readonly moves: string
  readonly formed: string

  constructor(prefix: string) {
    this.root = `${prefix}/`
    this.nodes = `${prefix}/nodes/`
    this.controller = `${prefix}/controller`
    this.streams = `${prefix}/streams/`
    this.placements = `${prefix}/placement/`
    this.defs = `${prefix}/defs/`
    this.moves = `${prefix}/moves/`
    this.formed = `${prefix}/formed`
  }

  move(stream: string): string {
    return this.moves + stream
  }

  /** Where a run-time definition lives; a stream's is its stream record. */
  definition(kind: DefinitionKind, name: string): string {
    return kind === 'stream' ? this.stream(name) : `${this.defs}${kind}/${name}`
  }

  /** The run-time exchange, binding or group a key under `defs` names (the inverse of `definition`). */
  definitionOf(key: string): { readonly kind: 'exchange' | 'binding' | 'group'; readonly name: string } | undefined {
    if (!key.startsWith(this.defs)) return undefined
    const rest = key.slice(this.defs.length)
    const slash = rest.indexOf('/')
    const kind = rest.slice(0, slash)
    if (slash < 0 || (kind !== 'exchange' && kind !== 'binding' && kind !== 'group')) return undefined
    return { kind, name: rest.slice(slash + 1) }
  }

  node(id: string): string {
    return this.nodes + id
  }

  stream(name: string): string {
    return this.streams + name
  }

  placement(stream: string): string {
    return this.placements + stream
  }
}

import type { JsonValue } from '../meta/index.js'
import type { DefinitionKind } from '../streams/catalog.js'

type Fields = Record<string, unknown>

function object(text: string): Fields | undefined {
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Fields) : undefined
  } catch {
    return undefined
  }
}

const str = (v: unknown): v is string => typeof v === 'string' && v !== ''
const port = (v: unknown): v is number | null => v === null || (Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536)

export function parseNode(text: string): NodeRecord | undefined {
  const o = object(text)
  if (o === undefined || !str(o.id) || !str(o.host) || !port(o.httpPort) || !port(o.amqpPort) || !port(o.internalPort) || o.internalPort === null || !str(o.lease) || !str(o.startedAt) || !str(o.version)) return undefined
  const storedBytes = Number.isSafeInteger(o.storedBytes) && (o.storedBytes as number) >= 0 ? (o.storedBytes as number) : 0
  return { id: o.id, host: o.host, httpPort: o.httpPort, httpTls: o.httpTls === true, amqpPort: o.amqpPort, internalPort: o.internalPort, lease: o.lease, startedAt: o.startedAt, version: o.version, storedBytes }
}

export function parseController(text: string): ControllerRecord | undefined {
  const o = object(text)
  if (o === undefined || !str(o.node) || !str(o.since)) return undefined
  return { node: o.node, since: o.since }
}

export function parseStream(text: string): StreamRecord | undefined {
  const o = object(text)
  if (o === undefined || (o.origin !== 'file' && o.origin !== 'runtime') || !str(o.by)) return undefined
  const d = o.definition
  const r = o.replicas
  return {
    origin: o.origin,
    by: o.by,
    ...(typeof r === 'number' && Number.isSafeInteger(r) && r >= 1 ? { replicas: r } : {}),
    ...(typeof d === 'object' && d !== null && !Array.isArray(d) ? { definition: d as JsonValue } : {}),
  }
}

/** A run-time exchange, binding or group: `{by, definition}`. */
export function parseDefinition(text: string): JsonValue | undefined {
  const o = object(text)
  const d = o?.definition
  return typeof d === 'object' && d !== null && !Array.isArray(d) ? (d as JsonValue) : undefined
}

export function parsePlacement(text: string): PlacementRecord | undefined {
  const o = object(text)
  const epoch = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0
  if (o === undefined || !str(o.node) || !epoch(o.epoch) || !epoch(o.controllerEpoch) || !str(o.since)) return undefined
  const names = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every(str) ? (v as string[]) : undefined)
  // Written before replication: the home is the one replica.
  const replicas = names(o.replicas) ?? [o.node]
  const isr = names(o.isr) ?? [o.node]
  if (replicas[0] !== o.node || isr[0] !== o.node || !isr.every((n) => replicas.includes(n))) return undefined
  return { node: o.node, epoch: o.epoch, controllerEpoch: o.controllerEpoch, since: o.since, replicas, isr }
}
