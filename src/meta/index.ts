// The metadata store: group cursors, settled ranges, deliveries, dedup ids and runtime
// definitions in one classic-level database. Codecs and the group-commit queue stay private.
export {
  openMeta,
  metaDir,
  metaDefaults,
  metaFormatVersion,
  definitionKinds,
  withWrites,
  type MetaStore,
  type MetaState,
  type MetaOptions,
  type DefinitionKind,
} from './store.js'
export { lockMetaStore, type DataDirLock } from './lock.js'
export type { Keyspace, KeyRange, Entry, WriteOptions } from './keyspace.js'
export type { MetaOp, CommitStats } from './group-commit.js'
export { keyspaceTable, retiredNamespaces, type KeyspaceName } from './namespaces.js'
export { str, u64, oneOf, type KeyPart, type KeyOf, type KeyPrefix } from './key-codec.js'
export {
  jsonCodec,
  emptyCodec,
  settledRangeCodec,
  deliveryStateCodec,
  type ValueCodec,
  type JsonValue,
  type SettledRange,
  type DeliveryState,
} from './value-codec.js'
