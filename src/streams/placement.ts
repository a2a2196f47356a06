// Cluster mode's seam in the publish path. The publisher asks where each target stream is
// stored; a stream stored on another node gets its records sent there, and stored through that
// node's own publish path (dedup by id, admission, durability), so there is one way into a
// stream whichever node took the publish. The core defines the seam; src/cluster fills it.

import type { AppendRecord } from '../log/index.js'
import type { PublishResult, PublishSourceName } from './publisher.js'

export interface StreamPlacement {
  /**
   * The stream's home when it is another node; undefined when it is stored here, or when the
   * cluster does not place it (a node's own ingest-errors). Throws a retryable SluiceError when
   * the stream has no reachable home now.
   */
  remote(stream: string): RemoteStream | undefined
  /** Throws a retryable SluiceError unless `stream` is stored here: a forward that reached a node no longer its home. */
  assertHome(stream: string): void
}

/** Records routed by the node that took the publish, for one stream at its home. */
export interface ForwardRequest {
  readonly stream: string
  readonly exchange: string
  readonly records: readonly AppendRecord[]
  /** Sluice's own republishing (dead-lettering, redrive): no dedup, no backlog admission. */
  readonly internal: boolean
  readonly source: PublishSourceName
}

/**
 * Cluster mode with replicas (cluster.replication.factor): a stream stored here is confirmed once
 * enough of its replicas hold it. The core asks; src/cluster answers.
 */
export interface ReplicationGate {
  /**
   * Throws a retryable SluiceError when `stream` has fewer replicas in sync than it needs, or this
   * node is not its leader now; returns what `committed` must be given for this append.
   */
  admit(stream: string): ReplicationTicket
  /**
   * Resolves once enough replicas hold every offset below `end`; rejects (retryable) when they do
   * not in time, or when this node stopped leading the stream since `ticket` was given.
   */
  committed(stream: string, end: number, ticket: ReplicationTicket): Promise<void>
}

/** What admit gave: the leadership an append was admitted under. */
export interface ReplicationTicket {
  readonly epoch: number
}

export interface RemoteStream {
  readonly node: string
  /** Resolves once the home node has them durably; `duplicateAt` indexes `records`. */
  forward(req: ForwardRequest): Promise<PublishResult>
}
