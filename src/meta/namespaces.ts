// Every keyspace of the metadata store, with its namespace byte (the first byte of each of its
// keys) and the one module that reads and writes it. A keyspace is registered by name only, so a
// module cannot take a byte that is not listed here, and no two modules can share one.
// Changing a byte orphans data on disk: bytes are fixed once and retired bytes are never reused.

export const keyspaceTable = {
  /** Format version of the store. */
  store: { namespace: 0x00, owner: 'meta/store.ts' },
  /** Run-time exchanges, streams and bindings (AMQP declarations, the HTTP API) and groups. */
  definitions: { namespace: 0x01, owner: 'streams/catalog.ts (exchange, stream, binding), consumers/registry.ts (group)' },
  /** Per group and start offset: settled ranges above the cursor. */
  settled: { namespace: 0x03, owner: 'consumers/group.ts' },
  /** Per group and offset: delivery count, retry due time, parked flag. */
  deliveries: { namespace: 0x04, owner: 'consumers/group.ts' },
  /** Per scope (stream or exchange), expiry and id: a remembered event id or idempotency key. */
  dedupIds: { namespace: 0x10, owner: 'streams/dedup-window.ts' },
  /** Per stream: the offset below which every event id is in dedupIds. */
  dedupCheckpoints: { namespace: 0x11, owner: 'streams/dedup-window.ts' },
  /** Per group: cursor, generation and delivered mark. */
  groupRecord: { namespace: 0x12, owner: 'consumers/group.ts' },
  /** Per group and offset: events set aside with no dead-letter target. */
  groupParked: { namespace: 0x13, owner: 'consumers/group.ts' },
  /** Per dead-letter stream and start offset: ranges already redriven. */
  redriven: { namespace: 0x14, owner: 'consumers/redrive.ts' },
  /** Cluster mode, per replicated stream and leader epoch: the offset the epoch's first event took (KIP-101). */
  leaderEpochs: { namespace: 0x15, owner: 'cluster/replication.ts' },
  /** Cluster mode: the cluster (etcd cluster id and prefix) this data dir joined, and the definitions it held from before. */
  clusterJoin: { namespace: 0x16, owner: 'cluster/definitions.ts' },
  /** Cluster mode, per run-time stream: the create revision of its etcd key, which tells a stream declared again from the one held. */
  streamIncarnations: { namespace: 0x17, owner: 'cluster/definitions.ts' },
} as const

export type KeyspaceName = keyof typeof keyspaceTable

/** Bytes once used by keyspaces that no release writes any more; data there is ignored. */
export const retiredNamespaces: Readonly<Record<string, number>> = {
  groupState: 0x02,
  dedup: 0x05,
  dedupByOffset: 0x06,
}
