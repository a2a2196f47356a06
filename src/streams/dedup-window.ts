import { emptyCodec, str, u64, type Keyspace, type MetaOp, type MetaStore } from '../meta/index.js'

// Namespace byte of the exchange dedup keyspace in the metadata store (0x10+ are free for modules).
const dedupNamespace = 0x10

type DedupKey = [exchange: string, expiresAtMs: number, id: string]

/**
 * The dedup window of event ids and idempotency keys, per exchange. It is fixed, not sliding: an
 * id is remembered for `dedupWindow` from when it was first stored, and a duplicate does not
 * extend it (as JetStream's duplicate window). Membership is answered from memory; the metadata
 * store keeps it across restarts, keyed by expiry so start-up loads only live ids and expiry
 * deletes a key range.
 */
export class DedupWindow {
  readonly #ids = new Map<string, number>() // `${exchange}\0${id}` → expiresAtMs, in insertion order
  readonly #pending = new Map<string, Promise<boolean>>()
  readonly #keyspace: Keyspace<DedupKey, null>
  readonly #maxIds: number
  evicted = 0

  constructor(meta: MetaStore, maxIds: number) {
    this.#keyspace = meta.keyspace('exchangeDedup', dedupNamespace, [str(), u64(), str()] as const, emptyCodec)
    this.#maxIds = maxIds
  }

  get size(): number {
    return this.#ids.size
  }

  async load(exchanges: readonly string[], nowMs: number): Promise<number> {
    let loaded = 0
    for (const ex of exchanges) {
      for await (const { key } of this.#keyspace.iterate({ prefix: [ex], gte: [ex, nowMs + 1] })) {
        if (this.#ids.size >= this.#maxIds) return loaded
        this.#ids.set(`${ex}\0${key[2]}`, key[1])
        loaded++
      }
    }
    return loaded
  }

  /**
   * 'new' when the id is unseen (it is then reserved as pending until settle()), 'duplicate' when
   * it is in the window, or a promise when a concurrent publish of the same id has not settled:
   * it resolves to whether that one stored it.
   */
  check(exchange: string, id: string, nowMs: number): 'new' | 'duplicate' | Promise<boolean> {
    const k = `${exchange}\0${id}`
    const exp = this.#ids.get(k)
    if (exp !== undefined && exp > nowMs) return 'duplicate'
    const pending = this.#pending.get(k)
    if (pending !== undefined) return pending
    return 'new'
  }

  reserve(exchange: string, id: string, outcome: Promise<boolean>): void {
    this.#pending.set(`${exchange}\0${id}`, outcome)
  }

  /** After the events are durable: remember the ids, and give the ops that persist them. */
  commit(exchange: string, ids: readonly string[], nowMs: number, windowMs: number, ops: MetaOp[]): void {
    const expiresAt = nowMs + windowMs
    for (const id of ids) {
      const k = `${exchange}\0${id}`
      this.#pending.delete(k)
      this.#ids.delete(k) // re-insert so the map stays in expiry order
      this.#ids.set(k, expiresAt)
      ops.push(this.#keyspace.putOp([exchange, expiresAt, id], null))
    }
    this.#trim(nowMs)
  }

  release(exchange: string, ids: readonly string[]): void {
    for (const id of ids) this.#pending.delete(`${exchange}\0${id}`)
  }

  #trim(nowMs: number): void {
    // Insertion order is expiry order for one window length; mixed windows only delay a delete.
    for (const [k, exp] of this.#ids) {
      if (exp > nowMs && this.#ids.size <= this.#maxIds) break
      if (exp > nowMs) this.evicted++
      this.#ids.delete(k)
    }
  }

  /** Deletes persisted ids that expired, at most `limit` a call. */
  async expire(exchanges: readonly string[], nowMs: number, limit: number, write: (ops: MetaOp[]) => Promise<void>): Promise<number> {
    const ops: MetaOp[] = []
    for (const ex of exchanges) {
      for await (const { key } of this.#keyspace.iterate({ prefix: [ex], lt: [ex, nowMs + 1], limit: limit - ops.length })) ops.push(this.#keyspace.delOp(key))
      if (ops.length >= limit) break
    }
    this.#trim(nowMs)
    if (ops.length > 0) await write(ops)
    return ops.length
  }
}
