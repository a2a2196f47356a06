import { errors } from '../errors.js'

export type MetaOp =
  | { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer }
  | { readonly type: 'del'; readonly key: Buffer }

export interface CommitLimits {
  /** Ops carried by one LevelDB batch; a longer queue is written as several batches in order. */
  readonly batchOpsMax: number
  /** Ops waiting for a batch; past it writes fail with SLUICE_ERR_META_OVERLOADED. */
  readonly queuedOpsMax: number
}

export interface CommitStats {
  /** write() calls accepted. */
  writes: number
  ops: number
  /** LevelDB batches issued, and how many of them were synced. */
  batches: number
  syncedBatches: number
  /** The most write() calls one batch carried. */
  maxWritesPerBatch: number
  queuedOps: number
}

export type ApplyBatch = (ops: readonly MetaOp[], sync: boolean) => Promise<void>

interface Pending {
  readonly ops: readonly MetaOp[]
  readonly sync: boolean
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

/**
 * One writer in front of LevelDB, doing group commit.
 *
 * A synced LevelDB write costs one fsync whether it carries one op or ten thousand, so the
 * ack path's throughput is set by how many callers share each fsync. Writes queue while a
 * batch is in flight; when it completes, everything queued goes out as the next batch, synced
 * if any caller in it asked for sync, and each caller resolves once the batch that carried its
 * ops is applied (and synced, if it asked). Each caller's ops stay atomic because a batch is.
 *
 * Only one batch is in flight at a time, and batches carry callers in call order: classic-level
 * runs concurrent batches on libuv's thread pool in no fixed order, so two writers could
 * otherwise apply an older cursor after a newer one. A non-synced write therefore waits for a
 * synced batch already in flight; LevelDB's own writer queue would make it wait anyway.
 */
export class GroupCommit {
  readonly stats: CommitStats = { writes: 0, ops: 0, batches: 0, syncedBatches: 0, maxWritesPerBatch: 0, queuedOps: 0 }
  readonly #apply: ApplyBatch
  readonly #limits: CommitLimits
  #queue: Pending[] = []
  #draining: Promise<void> | undefined

  constructor(apply: ApplyBatch, limits: CommitLimits) {
    this.#apply = apply
    this.#limits = limits
  }

  submit(ops: readonly MetaOp[], sync: boolean): Promise<void> {
    if (ops.length === 0) return Promise.resolve()
    // An oversized single write is let through when nothing is queued, so it cannot starve.
    if (this.#queue.length > 0 && this.stats.queuedOps + ops.length > this.#limits.queuedOpsMax) {
      return Promise.reject(errors.metaOverloaded(this.stats.queuedOps, this.#limits.queuedOpsMax))
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops, sync, resolve, reject })
      this.stats.writes++
      this.stats.queuedOps += ops.length
      this.#draining ??= this.#drain()
    })
  }

  /** Resolves once every write submitted so far has settled. */
  async drained(): Promise<void> {
    while (this.#draining) await this.#draining
  }

  async #drain(): Promise<void> {
    // Let callers in the same tick join the first batch instead of it leaving with one op.
    await Promise.resolve()
    try {
      while (this.#queue.length > 0) await this.#writeNext()
    } finally {
      this.#draining = undefined
    }
  }

  async #writeNext(): Promise<void> {
    const taken = this.#take()
    const ops: MetaOp[] = []
    let sync = false
    for (const p of taken) {
      for (const op of p.ops) ops.push(op)
      sync ||= p.sync
    }
    this.stats.queuedOps -= ops.length
    this.stats.batches++
    if (sync) this.stats.syncedBatches++
    this.stats.ops += ops.length
    this.stats.maxWritesPerBatch = Math.max(this.stats.maxWritesPerBatch, taken.length)
    try {
      await this.#apply(ops, sync)
    } catch (err) {
      for (const p of taken) p.reject(err)
      return
    }
    for (const p of taken) p.resolve()
  }

  #take(): Pending[] {
    let n = 0
    let opCount = 0
    for (const p of this.#queue) {
      if (n > 0 && opCount + p.ops.length > this.#limits.batchOpsMax) break
      n++
      opCount += p.ops.length
    }
    return this.#queue.splice(0, n)
  }
}
