import { jsonCodec, str, u64, type Keyspace, type MetaOp, type MetaStore, type ValueCodec } from '../meta/index.js'
import { hitLimit } from '../limits.js'
import type { Log } from '../log/index.js'

type IdKey = [scope: string, expiresAtMs: number, id: string]

/**
 * What a remembered id points at, so start-up can forget ids whose events a cut log tail lost:
 * an event id, the stream offset it was stored at; an idempotency key, the last offset of its
 * request in each stream. Ids written before offsets were kept decode as null and are trusted.
 */
export type IdTarget = { readonly offset: number } | { readonly streams: Readonly<Record<string, number>>; readonly fingerprint?: string } | null

const idTargetCodec: ValueCodec<IdTarget> = {
  name: 'dedupIdTarget',
  encode: (v) => (v === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(v), 'utf8')),
  decode: (b) => (b.length === 0 ? null : (JSON.parse(b.toString('utf8')) as IdTarget)),
}

/** An id as the publish path commits it: `offset` for an event id, omitted for an idempotency key. */
export interface CommittedId {
  readonly id: string
  readonly offset?: number | undefined
}

/** A stream's remembered ids as one node hands them to another: [expiresAtMs, id, offset]. */
export interface ScopeIds {
  readonly ids: ReadonlyArray<readonly [number, string, number | null]>
  readonly checkpoint: number | null
}

/** Marks idempotency keys apart from event ids in the same scope. */
export const requestKeyPrefix = '\u0001req:'

/** Ids restored from the log are persisted this many to a metadata write. */
const restoreOpsPerWrite = 10_000

/**
 * Dedup windows. Event ids are kept per stream: an id already stored in a stream is not stored
 * there again, whichever exchange it came through. Idempotency keys are kept per exchange.
 *
 * The window is fixed, not sliding: an id is remembered for `dedupWindow` from when it was first
 * stored, and a duplicate does not extend it (as JetStream's duplicate window). Membership is
 * answered from memory. The metadata store keeps ids across restarts, keyed by expiry so start-up
 * loads only live ones; it is written after the log's fsync. A crash between the two would forget
 * ids, so each stream also has a checkpoint: the offset below which every id is persisted. At
 * open, the records from the checkpoint to the log's end are read back and their ids restored:
 * the log, not the metadata, is the truth for what was stored.
 */
export class DedupWindow {
  readonly #ids = new Map<string, number>() // `${scope}\0${id}` → expiresAtMs, insertion order
  /** Idempotency keys only: a digest of the request they stored, so a reuse with another body is told apart. */
  readonly #fingerprints = new Map<string, string>()
  readonly #pending = new Map<string, Promise<boolean>>()
  readonly #keyspace: Keyspace<IdKey, IdTarget>
  readonly #checkpoints: Keyspace<[string], number>
  /** Per stream: base offsets of appends whose ids are not yet persisted, and the end so far. */
  readonly #unpersisted = new Map<string, { bases: Set<number>; end: number }>()
  readonly #maxIds: number
  readonly #meta: MetaStore
  evicted = 0

  constructor(meta: MetaStore, maxIds: number) {
    this.#meta = meta
    this.#keyspace = meta.keyspace('dedupIds', [str(), u64(), str()] as const, idTargetCodec)
    this.#checkpoints = meta.keyspace('dedupCheckpoints', [str()] as const, jsonCodec<number>())
    this.#maxIds = maxIds
  }

  get size(): number {
    return this.#ids.size
  }

  /**
   * Loads live ids of `scopes`, then restores the ids of records each stream stored past its
   * checkpoint. Ids and checkpoints pointing at or past a stream's end are dropped first: the
   * log lost that tail, so a retry of those events must store them again.
   */
  async load(scopes: readonly string[], streams: ReadonlyMap<string, Log>, windowMs: number, nowMs: number): Promise<{ loaded: number; restored: number; dropped: number }> {
    let loaded = 0
    const clamp: MetaOp[] = []
    const lost = (stream: string, offset: number): boolean => {
      const log = streams.get(stream)
      return log !== undefined && offset >= log.endOffset
    }
    for (const scope of scopes) {
      for await (const { key, value } of this.#keyspace.iterate({ prefix: [scope], gte: [scope, nowMs + 1] })) {
        const gone =
          value !== null && ('offset' in value ? lost(scope, value.offset) : Object.entries(value.streams).some(([stream, last]) => lost(stream, last)))
        if (gone) {
          clamp.push(this.#keyspace.delOp(key))
          continue
        }
        if (this.#ids.size >= this.#maxIds) continue
        this.#ids.set(`${scope}\0${key[2]}`, key[1])
        if (value !== null && 'streams' in value && value.fingerprint !== undefined) this.#fingerprints.set(`${scope}\0${key[2]}`, value.fingerprint)
        loaded++
      }
    }
    let restored = 0
    const persist: MetaOp[] = []
    for (const [name, log] of streams) restored += await this.#restoreTail(name, log, await this.#checkpoints.get([name]), windowMs, nowMs, persist, clamp)
    await this.#writeSliced(persist)
    if (clamp.length > 0) await this.#meta.write(clamp, { sync: true })
    return { loaded, restored, dropped: clamp.length }
  }

  /** Restores the ids of the records `log` stored from `saved` (its checkpoint) on; returns how many. */
  async #restoreTail(name: string, log: Log, saved: number | undefined, windowMs: number, nowMs: number, persist: MetaOp[], clamp: MetaOp[]): Promise<number> {
    if (saved !== undefined && saved > log.endOffset) clamp.push(this.#checkpoints.putOp([name], log.endOffset))
    let next = Math.max(Math.min(saved ?? log.startOffset, log.endOffset), log.startOffset)
    let found = 0
    while (next < log.endOffset) {
      const { records, nextOffset } = await log.read(next)
      if (records.length === 0) break
      for (const r of records) {
        if (r.id === undefined) continue
        this.#ids.set(`${name}\0${r.id}`, nowMs + windowMs)
        persist.push(this.#keyspace.putOp([name, nowMs + windowMs, r.id], { offset: r.offset }))
        found++
      }
      next = nextOffset
    }
    // Nothing to restore (a stream without ids, say): the next start need not read it again.
    if (found === 0 && saved !== log.endOffset && log.endOffset > log.startOffset) clamp.push(this.#checkpoints.putOp([name], log.endOffset))
    // Restored ids are persisted, and only then the checkpoint moved to the end: the next commit
    // would move it past these records anyway, and a second crash must not forget them.
    else if (found > 0) persist.push(this.#checkpoints.putOp([name], log.endOffset))
    this.#unpersisted.set(name, { bases: new Set(), end: log.endOffset })
    return found
  }

  /**
   * In slices, so a long tail stays under the store's queue bound; a crash between two slices
   * leaves the checkpoints where they were, and the next start reads the same records again.
   */
  async #writeSliced(ops: readonly MetaOp[]): Promise<void> {
    for (let i = 0; i < ops.length; i += restoreOpsPerWrite) await this.#meta.write(ops.slice(i, i + restoreOpsPerWrite), { sync: true })
  }

  /** The live ids a stream remembers and its checkpoint, as the node it is handed to imports them. */
  async exportScope(stream: string, nowMs: number): Promise<ScopeIds> {
    const ids: Array<[number, string, number | null]> = []
    for await (const { key, value } of this.#keyspace.iterate({ prefix: [stream], gte: [stream, nowMs + 1] })) {
      // An exchange of the same name keeps its idempotency keys in this scope: they stay here.
      if (key[2].startsWith(requestKeyPrefix)) continue
      ids.push([key[1], key[2], value !== null && 'offset' in value ? value.offset : null])
    }
    return { ids, checkpoint: (await this.#checkpoints.get([stream])) ?? null }
  }

  /**
   * Replaces what a stream remembers with `from` (another node's export, or nothing), then
   * restores the ids of `log`'s records past its checkpoint, as a start does.
   */
  async replaceScope(stream: string, from: ScopeIds, log: Log, windowMs: number, nowMs: number): Promise<void> {
    const prefix = `${stream}\0`
    for (const k of [...this.#ids.keys()]) {
      if (!k.startsWith(prefix) || k.startsWith(prefix + requestKeyPrefix)) continue
      this.#ids.delete(k)
      this.#fingerprints.delete(k)
    }
    const ops: MetaOp[] = []
    for await (const { key } of this.#keyspace.iterate({ prefix: [stream] })) if (!key[2].startsWith(requestKeyPrefix)) ops.push(this.#keyspace.delOp(key))
    await this.#writeSliced(ops)
    ops.length = 0
    for (const [expiresAt, id, offset] of from.ids) {
      if (expiresAt <= nowMs || id.startsWith(requestKeyPrefix)) continue
      this.#ids.set(prefix + id, expiresAt)
      ops.push(this.#keyspace.putOp([stream, expiresAt, id], offset === null ? null : { offset }))
    }
    // No checkpoint sent: every id the copied log holds is read back, as a first start does.
    const checkpoint = from.checkpoint ?? log.startOffset
    ops.push(this.#checkpoints.putOp([stream], checkpoint))
    await this.#writeSliced(ops)
    const persist: MetaOp[] = []
    const clamp: MetaOp[] = []
    await this.#restoreTail(stream, log, checkpoint, windowMs, nowMs, persist, clamp)
    await this.#writeSliced([...persist, ...clamp])
    this.#trim(nowMs)
  }

  /**
   * 'new' when unseen, 'duplicate' when in the window, or a promise when a concurrent publish of
   * the same id has not settled yet: it resolves to whether that one stored it.
   */
  check(scope: string, id: string, nowMs: number): 'new' | 'duplicate' | Promise<boolean> {
    const k = `${scope}\0${id}`
    const exp = this.#ids.get(k)
    if (exp !== undefined && exp > nowMs) return 'duplicate'
    return this.#pending.get(k) ?? 'new'
  }

  /** The digest of the request an idempotency key stored, when known. */
  fingerprint(scope: string, id: string): string | undefined {
    return this.#fingerprints.get(`${scope}\0${id}`)
  }

  reserve(scope: string, id: string, outcome: Promise<boolean>): void {
    this.#pending.set(`${scope}\0${id}`, outcome)
  }

  release(scope: string, ids: readonly string[]): void {
    for (const id of ids) this.#pending.delete(`${scope}\0${id}`)
  }

  /** Called before an append whose records carry ids, with the offset the append will start at. */
  appending(stream: string, baseOffset: number): void {
    let u = this.#unpersisted.get(stream)
    if (u === undefined) this.#unpersisted.set(stream, (u = { bases: new Set(), end: baseOffset }))
    u.bases.add(baseOffset)
  }

  /**
   * The metadata write of a committed append failed: its ids stay known in memory, and the
   * stream's checkpoint stays below it until the next start, which reads its ids back from the
   * log and persists them.
   */
  notPersisted(stream: string, baseOffset: number): void {
    this.#unpersisted.get(stream)?.bases.add(baseOffset)
  }

  /** An append that will not be committed (it failed): its ids need no checkpoint. */
  abandon(stream: string, baseOffset: number): void {
    this.#unpersisted.get(stream)?.bases.delete(baseOffset)
  }

  /**
   * After the events are durable: remember the ids, and add the ops that persist them together
   * with the stream's new checkpoint (the lowest append whose ids are still unpersisted).
   * `target` is where an idempotency key's request was stored; event ids carry their own offset.
   */
  commit(
    scope: string,
    ids: readonly CommittedId[],
    nowMs: number,
    windowMs: number,
    ops: MetaOp[],
    append?: { baseOffset: number; endOffset: number },
    target?: Readonly<Record<string, number>>,
    fingerprint?: string,
  ): void {
    const expiresAt = nowMs + windowMs
    for (const { id, offset } of ids) {
      const k = `${scope}\0${id}`
      this.#pending.delete(k)
      this.#ids.delete(k) // re-insert, so the map stays in expiry order
      this.#ids.set(k, expiresAt)
      if (fingerprint !== undefined) this.#fingerprints.set(k, fingerprint)
      const value: IdTarget = offset !== undefined ? { offset } : target !== undefined ? { streams: target, ...(fingerprint !== undefined ? { fingerprint } : {}) } : null
      ops.push(this.#keyspace.putOp([scope, expiresAt, id], value))
    }
    if (append !== undefined) {
      const u = this.#unpersisted.get(scope)
      if (u !== undefined) {
        u.bases.delete(append.baseOffset)
        if (append.endOffset > u.end) u.end = append.endOffset
        let checkpoint = u.end
        for (const b of u.bases) if (b < checkpoint) checkpoint = b
        ops.push(this.#checkpoints.putOp([scope], checkpoint))
      }
    }
    this.#trim(nowMs)
  }

  #trim(nowMs: number): void {
    // Insertion order is expiry order for one window length; mixed windows only delay a delete.
    for (const [k, exp] of this.#ids) {
      if (exp > nowMs && this.#ids.size <= this.#maxIds) break
      if (exp > nowMs) {
        this.evicted++
        hitLimit('limits.maxDedupIds')
      }
      this.#ids.delete(k)
      this.#fingerprints.delete(k)
    }
  }

  /** Deletes persisted ids that expired, at most `limit` a call. */
  async expire(scopes: readonly string[], nowMs: number, limit: number, write: (ops: MetaOp[]) => Promise<void>): Promise<number> {
    const ops: MetaOp[] = []
    for (const scope of scopes) {
      if (ops.length >= limit) break
      for await (const { key } of this.#keyspace.iterate({ prefix: [scope], lt: [scope, nowMs + 1], limit: limit - ops.length })) ops.push(this.#keyspace.delOp(key))
    }
    this.#trim(nowMs)
    if (ops.length > 0) await write(ops)
    return ops.length
  }
}
