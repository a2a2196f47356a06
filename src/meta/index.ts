// The metadata store: group cursors, settled ranges, deliveries, dedup ids and runtime
// definitions in one classic-level database. Codecs and the group-commit queue stay private.
export {
  openMeta,
  metaDir,
  metaDefaults,
  metaFormatVersion,
  namespaces,
  definitionKinds,
  type MetaStore,
  type MetaState,
  type MetaOptions,
  type DefinitionKind,
  type ClampResult,
} from './store.js'
export type { Keyspace, KeyRange, Entry, WriteOptions } from './keyspace.js'
export type { MetaOp, CommitStats } from './group-commit.js'
export type { DedupTable } from './dedup.js'
export { str, u64, oneOf, type KeyPart, type KeyOf, type KeyPrefix } from './key-codec.js'
export {
  jsonCodec,
  emptyCodec,
  type ValueCodec,
  type JsonValue,
  type GroupState,
  type SettledRange,
  type DeliveryState,
  type DedupRecord,
} from './value-codec.js'
