import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { errors, SluiceError } from '../errors.js'
import { GroupCommit, type CommitStats, type MetaOp } from './group-commit.js'
import { keyCodec, oneOf, str, type KeyOf, type KeyPart } from './key-codec.js'
import { LevelKeyspace, type Keyspace, type KeyspaceHost, type WriteOptions } from './keyspace.js'
import { keyspaceTable, type KeyspaceName } from './namespaces.js'
import { ensureReserve, releaseReserve, reservePath } from './reserve.js'
import { jsonCodec, u32Codec, type JsonValue, type ValueCodec } from './value-codec.js'

export type MetaState = 'open' | 'closing' | 'closed'

export const definitionKinds = ['exchange', 'stream', 'binding', 'group'] as const
export type DefinitionKind = (typeof definitionKinds)[number]

// Bumped when a key layout changes incompatibly; value layouts carry their own version byte.
export const metaFormatVersion = 1

export interface MetaOptions {
  /** Ops per LevelDB batch. */
  readonly batchOpsMax?: number
  /** Ops waiting for a batch before writes fail with SLUICE_ERR_META_OVERLOADED. */
  readonly queuedOpsMax?: number
  /** Default bound for Keyspace.range() and scan(). */
  readonly rangeEntriesMax?: number
  /** LevelDB block cache. */
  readonly cacheSizeBytes?: number
  /**
   * Disk space held in `<dir>.reserve` and given back at open when the disk is short, so the
   * store can start on a full disk (see reserve.ts); 0: none. The server holds metaReserveBytes.
   */
  readonly reserveBytes?: number
  /**
   * While open, how often a missing reserve is put back (when the disk has room for it). A start
   * on a full disk spends the reserve; were it only put back at the next start, a second full
   * disk before then would leave the store unable to open.
   */
  readonly reserveCheckMs?: number
}

export const metaDefaults = {
  batchOpsMax: 10_000,
  queuedOpsMax: 1_000_000,
  rangeEntriesMax: 100_000,
  cacheSizeBytes: 8 * 1024 * 1024,
  reserveBytes: 0,
  reserveCheckMs: 5_000,
} as const satisfies Required<MetaOptions>

export interface MetaStore {
  readonly dir: string
  readonly state: MetaState
  /** Write counters; syncedBatches / writes shows how well group commit coalesces. */
  readonly stats: Readonly<CommitStats>
  /** Runtime-declared exchanges, streams, bindings and groups, as JSON. */
  readonly definitions: Keyspace<[DefinitionKind, string], JsonValue>
  /**
   * Registers a keyspace listed in namespaces.ts, once: its owner holds the returned handle, and
   * a second registration of the same name fails.
   */
  keyspace<const Parts extends readonly KeyPart[], V>(name: KeyspaceName, parts: Parts, values: ValueCodec<V>): Keyspace<KeyOf<Parts>, V>
  /** Applies ops from any keyspaces atomically: all are visible, or none. */
  write(ops: readonly MetaOp[], opts?: WriteOptions): Promise<void>
  /** Resolves once every write submitted so far has settled: what a read after it sees. */
  drained(): Promise<void>
  /** Waits for queued writes, then closes. Later calls reject with SLUICE_ERR_META_CLOSED. */
  close(): Promise<void>
}

/**
 * The store with its writes handed to `write` (which stores them, and may do more: journal them
 * for replicas, or watch them in a test); everything else is the store's own.
 */
export function withWrites(inner: MetaStore, write: MetaStore['write']): MetaStore {
  return {
    get dir() {
      return inner.dir
    },
    get state() {
      return inner.state
    },
    get stats() {
      return inner.stats
    },
    definitions: inner.definitions,
    keyspace: inner.keyspace.bind(inner),
    write,
    drained: () => inner.drained(),
    close: () => inner.close(),
  }
}

/** Where the store lives under a data dir. */
export const metaDir = (dataDir: string): string => join(dataDir, 'meta')

/** Opens (creating if missing) the store in `dir` itself; the server passes metaDir(dataDir). */
export async function openMeta(dir: string, opts: MetaOptions = {}): Promise<MetaStore> {
  const limits = { ...metaDefaults, ...opts }
  // Best effort both ways: the reserve helps a start on a full disk, and its absence never stops one.
  if (limits.reserveBytes > 0) await releaseReserve(reservePath(dir), limits.reserveBytes).catch(() => 0)
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: true, cacheSize: limits.cacheSizeBytes })
  try {
    await db.open()
  } catch (err) {
    // classic-level reports a held lock as LEVEL_DATABASE_NOT_OPEN whose cause is LEVEL_LOCKED.
    const cause = (err as { cause?: { code?: unknown } }).cause
    if (cause?.code === 'LEVEL_LOCKED') throw errors.metaLocked(dir, cause)
    throw errors.metaOpen(dir, err)
  }
  const store = new LevelMetaStore(db, dir, limits)
  try {
    await store.checkFormat()
    // Put back for the next start; on a disk too full for it, that start frees what it can.
    if (limits.reserveBytes > 0) {
      await ensureReserve(reservePath(dir), limits.reserveBytes).catch(() => false)
      store.keepReserve(reservePath(dir), limits.reserveBytes, limits.reserveCheckMs)
    }
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

class LevelMetaStore implements MetaStore, KeyspaceHost {
  readonly dir: string
  readonly db: ClassicLevel<Buffer, Buffer>
  readonly rangeEntriesMax: number
  readonly definitions: Keyspace<[DefinitionKind, string], JsonValue>
  readonly #commit: GroupCommit
  readonly #registered = new Set<KeyspaceName>()
  readonly #storeKeys: Keyspace<[string], number>
  #state: MetaState = 'open'
  #closing: Promise<void> | undefined
  #reserveTimer: NodeJS.Timeout | undefined
  #reserving: Promise<unknown> | undefined

  constructor(db: ClassicLevel<Buffer, Buffer>, dir: string, limits: Required<MetaOptions>) {
    this.db = db
    this.dir = dir
    this.rangeEntriesMax = limits.rangeEntriesMax
    this.#commit = new GroupCommit((ops, sync) => this.#applyBatch(ops, sync), limits)
    this.#storeKeys = this.keyspace('store', [str()], u32Codec)
    this.definitions = this.keyspace('definitions', [oneOf(definitionKinds), str()], jsonCodec())
  }

  get state(): MetaState {
    return this.#state
  }

  get stats(): Readonly<CommitStats> {
    return this.#commit.stats
  }

  async checkFormat(): Promise<void> {
    const found = await this.#storeKeys.get(['format'])
    if (found === undefined) await this.#storeKeys.put(['format'], metaFormatVersion, { sync: true })
    else if (found !== metaFormatVersion) throw errors.metaFormat(this.dir, found, metaFormatVersion)
  }

  keyspace<const Parts extends readonly KeyPart[], V>(name: KeyspaceName, parts: Parts, values: ValueCodec<V>): Keyspace<KeyOf<Parts>, V> {
    assert.ok(!this.#registered.has(name), `keyspace ${name} is already registered`)
    this.#registered.add(name)
    return new LevelKeyspace(this, name, keyCodec(keyspaceTable[name].namespace, parts), values)
  }

  assertOpen(): void {
    if (this.#state !== 'open') throw errors.metaClosed()
  }

  write(ops: readonly MetaOp[], opts: WriteOptions = {}): Promise<void> {
    try {
      this.#checkWritable(ops)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#commit.submit(ops, opts.sync ?? true)
  }

  /** Resolves once every write submitted so far has settled: what a read after it sees. */
  drained(): Promise<void> {
    return this.#commit.drained()
  }

  #checkWritable(ops: readonly MetaOp[]): void {
    if (this.#state !== 'open') throw errors.metaClosed()
    // Checked before queueing: a malformed op would otherwise fail the whole shared batch,
    // and with it every other caller's write.
    for (const op of ops) {
      assert.ok(Buffer.isBuffer(op.key) && op.key.length > 0, 'a MetaOp key must be a non-empty Buffer (build ops with Keyspace.putOp/delOp)')
      assert.ok(op.type === 'del' || Buffer.isBuffer(op.value), 'a put MetaOp value must be a Buffer')
    }
  }

  async #applyBatch(ops: readonly MetaOp[], sync: boolean): Promise<void> {
    try {
      await this.db.batch(ops as MetaOp[], { sync })
    } catch (err) {
      throw this.mapError(err, true)
    }
  }

  mapError(err: unknown, writing = false): unknown {
    if (err instanceof SluiceError) return err
    const code = (err as { code?: unknown }).code
    if (code === 'LEVEL_DATABASE_NOT_OPEN' || code === 'LEVEL_ITERATOR_NOT_OPEN') return errors.metaClosed()
    return writing ? errors.metaWrite(err) : err
  }

  /** Puts the reserve back, every `everyMs`, whenever it is missing (see reserveCheckMs). */
  keepReserve(path: string, bytes: number, everyMs: number): void {
    // ensureReserve writes nothing unless twice the reserve is free, so it never takes the last bytes.
    this.#reserveTimer = setInterval(() => {
      this.#reserving ??= ensureReserve(path, bytes)
        .catch(() => false)
        .finally(() => (this.#reserving = undefined))
    }, everyMs)
    this.#reserveTimer.unref()
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    // New writes are refused from here on; writes already queued still get their batch.
    this.#state = 'closing'
    clearInterval(this.#reserveTimer)
    await this.#reserving
    await this.#commit.drained()
    try {
      await this.db.close()
    } finally {
      this.#state = 'closed'
    }
  }
}
