import type { MetaOp } from './group-commit.js'
import type { Keyspace, WriteOptions } from './keyspace.js'
import type { DedupRecord } from './value-codec.js'

/**
 * Dedup ids per scope (a stream, or an exchange for request idempotency keys), kept in two
 * keyspaces written together: by id for the lookup on publish, and by (offset, id) so that
 * expiry and the recovery clamp can walk one scope in offset order without reading every id.
 */
export interface DedupTable {
  /** The record for `id`, or undefined if absent or expired at `nowMs`. */
  get(scope: string, id: string, nowMs: number): Promise<DedupRecord | undefined>
  /** Ops that store `id`; put them in the same MetaStore.write as nothing else, or with the rest of a publish. */
  putOps(scope: string, id: string, record: DedupRecord): MetaOp[]
  put(scope: string, id: string, record: DedupRecord, opts?: WriteOptions): Promise<void>
  /**
   * Deletes ids of `scope` expired at `nowMs`, oldest offset first, at most `limit`, in one synced
   * batch. Stops at the first live id: ids are stored in offset order with one window, so the rest
   * are younger. Returns how many were deleted.
   */
  expire(scope: string, nowMs: number, limit: number): Promise<number>
  /** Recovery clamp: deletes ids of `scope` pointing past `lastOffset` (-1: every id). */
  dropAbove(scope: string, lastOffset: number): Promise<number>
}

export type DedupKeyspace = Keyspace<[string, string], DedupRecord>
export type DedupIndexKeyspace = Keyspace<[string, number, string], null>

export function dedupTable(byId: DedupKeyspace, byOffset: DedupIndexKeyspace, write: (ops: readonly MetaOp[], opts?: WriteOptions) => Promise<void>): DedupTable {
  const putOps = (scope: string, id: string, record: DedupRecord): MetaOp[] => [
    byId.putOp([scope, id], record),
    byOffset.putOp([scope, record.offset, id], null),
  ]
  return {
    putOps,

    async get(scope, id, nowMs) {
      const record = await byId.get([scope, id])
      return record !== undefined && record.expiresAtMs > nowMs ? record : undefined
    },

    put(scope, id, record, opts) {
      try {
        return write(putOps(scope, id, record), opts)
      } catch (err) {
        return Promise.reject(err)
      }
    },

    async expire(scope, nowMs, limit) {
      const ops: MetaOp[] = []
      let dropped = 0
      for await (const { key } of byOffset.iterate({ prefix: [scope], limit })) {
        const [, offset, id] = key
        const record = await byId.get([scope, id])
        if (record !== undefined && record.offset === offset) {
          if (record.expiresAtMs > nowMs) break
          ops.push(byId.delOp([scope, id]))
          dropped++
        }
        // An index entry whose id was since stored again at another offset is stale either way.
        ops.push(byOffset.delOp(key))
      }
      await write(ops, { sync: true })
      return dropped
    },

    async dropAbove(scope, lastOffset) {
      const ops: MetaOp[] = []
      let dropped = 0
      const from: [string] | [string, number] = lastOffset < 0 ? [scope] : [scope, lastOffset + 1]
      for await (const { key } of byOffset.iterate({ prefix: [scope], gte: from })) {
        const [, offset, id] = key
        const record = await byId.get([scope, id])
        if (record !== undefined && record.offset === offset) {
          ops.push(byId.delOp([scope, id]))
          dropped++
        }
        ops.push(byOffset.delOp(key))
      }
      await write(ops, { sync: true })
      return dropped
    },
  }
}
