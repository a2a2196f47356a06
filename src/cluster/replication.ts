// Replicated streams (cluster.replication.factor, docs/cluster.md "Replication"). Each placed
// stream has a leader (its home) and followers. A follower fetches the leader's batches as stored,
// from its own end, over the internal port; it appends them after checking each CRC and offset
// (Log.appendStored), durably under the stream's fsync policy, and its next fetch names its new
// end, which is how the leader learns what it holds. The leader's high watermark is the smallest
// end among the in-sync replicas; a publish to the stream is confirmed once the watermark passes
// it, so a confirmed event is on every in-sync replica, at least minInSync of them, and a stream
// with fewer in sync refuses publishes.
//
// The in-sync set lives in the placement record in etcd. The leader asks the controller to change
// it (a follower that has not reached the leader's end for replicaLagMax leaves; one that has
// caught up comes back); the controller writes it compared on the placement's revision and the
// leader epoch, and every node learns it from its watch.
//
// When a leader dies the controller makes an in-sync follower the leader at the next epoch
// (node.ts). Every replica keeps its stream's leader-epoch history, the first offset of each
// epoch (Kafka's KIP-101): a leader adds its epoch when it takes over, a follower takes the
// leader's entries for what it has fetched. A follower of a new leader first asks where its own
// last epoch ends in the leader's history; a copy that goes past that point holds events the new
// leader never had, and starts again from the leader's first offset.
//
// Group state goes with its stream: every metadata write of a group (an ack, a nack's retry time,
// a parked event, the delivered mark) is stored at the leader and put in the stream's journal,
// which followers fetch with the batches and apply to their own store; a synced write (an ack)
// resolves, and is answered, once the in-sync followers have applied it. A follower's groups stay
// closed while it follows; a promoted leader opens them from the state it holds, so an acked
// event is not delivered again and one in flight comes again as redelivered. A follower that is
// new to the leader's journal, or too far behind it, gets the groups' whole state first.
//
// Not yet (docs/cluster.md, "Replication"): reads held below the watermark.

import { setTimeout as sleep } from 'node:timers/promises'
import type { ClusterConfig } from '../config/index.js'
import { randomBytes } from 'node:crypto'
import type { GroupRegistry } from '../consumers/index.js'
import type { GroupJournal, GroupState } from '../consumers/registry.js'
import type { MetaOp, WriteOptions } from '../meta/index.js'
import { keyspaceTable } from '../meta/index.js'
import { errors, SluiceError } from '../errors.js'
import type { Logger } from '../logger.js'
import { u64, jsonCodec, str, type Keyspace, type MetaStore } from '../meta/index.js'
import type { ReplicationGate, ReplicationTicket } from '../streams/placement.js'
import type { StreamRegistry, Visibility } from '../streams/registry.js'
import { callPeer } from './internal.js'
import type { PlacementRecord } from './layout.js'
import type { ClusterNode } from './node.js'
import type { PeerTransport } from './transport.js'

/** A follower as its leader sees it. */
interface FollowerState {
  /** Its end as its last fetch named it (-1: not heard from at this epoch). */
  end: number
  /** The next journal entry it wants, in this leader's journal (0: none applied yet). */
  jnext: number
  /**
   * When it last had everything the leader had when its previous fetch was answered (Kafka's
   * rule): under a steady load a follower is never at the leader's very end, yet it keeps up.
   */
  caughtUpAt: number
  /** The leader's end when its previous fetch was answered. */
  answeredEnd: number
}

interface Waiter {
  readonly end: number
  readonly resolve: () => void
  readonly reject: (err: SluiceError) => void
}

interface Leading {
  readonly epoch: number
  readonly followers: Map<string, FollowerState>
  hw: number
  waiters: Waiter[]
  /** An in-sync change asked of the controller and not yet seen in the view. */
  proposing: boolean
  /**
   * The set asked for while it is pending: the watermark counts the union of it and the set in
   * the view, so a follower being added already holds what is confirmed if it is elected.
   */
  pendingIsr: readonly string[]
  /** Its epoch is in the history and its ids are restored: it takes appends. */
  ready: boolean
  /** The log's end when it took over: a follower back in sync holds at least this much. */
  startEnd: number
  /** The in-sync set as the view last had it. */
  seenIsr: string
  readonly journal: Journal
  /** Fetches waiting for the log or the journal to grow. */
  wake: Array<() => void>
  /** Writes waiting for the take-over to finish. */
  onReady: Array<() => void>
}

/** The groups' metadata writes of a stream led here, in order, until every follower has them. */
interface Journal {
  /** Names this leadership's journal: a follower that knows another starts from a snapshot. */
  readonly id: string
  /** The last entry's number (0: none yet). */
  seq: number
  /** Each with the log's end when it was written: a follower gets it once it holds that much. */
  entries: Array<{ readonly seq: number; readonly ops: readonly MetaOp[]; readonly end: number }>
  waiters: Array<{ readonly seq: number; readonly resolve: () => void; readonly reject: (err: SluiceError) => void }>
}

interface Following {
  readonly leader: string
  readonly epoch: number
  stopped: boolean
  /** The fetch loop, ended once `stopped` is seen. */
  done: Promise<void>
  /** The leader's journal this follower applies, and the next entry it wants. */
  jid: string
  jnext: number
  /** The leader's watermark as its last answer gave it. */
  leaderHw: number
  end: number
}

/** What a fetch answer carries before the batches. */
interface FetchHead {
  readonly epoch: number
  readonly start: number
  readonly end: number
  readonly hw: number
  /** The leader's epoch history: [epoch, first offset], oldest first. */
  readonly epochs: ReadonlyArray<readonly [number, number]>
  readonly journal: {
    readonly id: string
    /** The groups' whole state, as of entry `next` − 1, when the follower's journal is not this one or too old. */
    readonly snapshot?: readonly GroupState[]
    readonly next: number
    /** [seq, ops]: ops as [type, key base64, value base64]. */
    readonly entries: ReadonlyArray<readonly [number, ReadonlyArray<readonly [string, string, string?]>]>
  }
}

/** Journal entries kept at most; a follower further behind gets a snapshot. */
const journalEntriesMax = 50_000
/** Journal entries in one fetch answer at most. */
const journalEntriesPerFetch = 2000
/** The namespace bytes of the groups' keyspaces: a journal entry may write nothing else. */
const groupNamespaces: ReadonlySet<number> = new Set([keyspaceTable.groupRecord.namespace, keyspaceTable.settled.namespace, keyspaceTable.deliveries.namespace, keyspaceTable.groupParked.namespace])

type History = Array<[epoch: number, start: number]>

export interface ReplicationCounters {
  /** Bytes this node fetched as a follower. */
  bytes: number
  shrinks: number
  expands: number
}

export interface ReplicatorOptions {
  readonly node: ClusterNode
  readonly meta: MetaStore
  /** Closed while this node follows a stream, opened when it leads it; their state travels in the journal. */
  readonly groups: GroupRegistry
  /** Restores the ids a stream's log holds into the dedup window: a new leader's retries must find them. */
  readonly adoptIds: (stream: string) => Promise<void>
  readonly config: ClusterConfig
  readonly streams: StreamRegistry
  readonly transport: PeerTransport
  readonly secret: string
  readonly logger: Logger
  readonly now?: () => number
}

/** The ticket of an append to a stream the cluster does not place: confirmed once stored. */
const unplaced: ReplicationTicket = { epoch: 0 }

/** A fetch with nothing new waits this long for the leader's log to grow. */
const fetchWaitMs = 500
const fetchBytes = 1024 * 1024
const checkEveryMs = 250

export class Replicator implements ReplicationGate, GroupJournal, Visibility {
  readonly counters: ReplicationCounters = { bytes: 0, shrinks: 0, expands: 0 }
  readonly #o: ReplicatorOptions
  readonly #log: Logger
  readonly #auth: string
  readonly #now: () => number
  readonly #leading = new Map<string, Leading>()
  readonly #following = new Map<string, Following>()
  readonly #epochs: Keyspace<[string, number], number>
  /** Per stream, the history as loaded and kept: the keyspace's one reader and writer is here. */
  readonly #history = new Map<string, Promise<History>>()
  /** Per stream, the reads waiting for its visible end to move (woken to look again). */
  readonly #readers = new Map<string, Set<() => void>>()
  #timer: NodeJS.Timeout | undefined
  #unhook: (() => void) | undefined

  constructor(o: ReplicatorOptions) {
    this.#o = o
    this.#epochs = o.meta.keyspace('leaderEpochs', [str(), u64()] as const, jsonCodec<number>())
    this.#log = o.logger.child({ component: 'replication' })
    this.#auth = `Bearer ${o.secret}`
    this.#now = o.now ?? (() => performance.now())
  }

  get #self(): string {
    return this.#o.config.nodeId
  }

  /** Copies that must hold an event before it is confirmed: cluster.replication.minInSync, at most the stream's own replicas. */
  #minInSync(stream: string): number {
    return Math.min(this.#o.config.replication.minInSync, this.#o.node.replicasOf(stream))
  }

  start(): void {
    this.#timer = setInterval(() => this.#checkInSync(), checkEveryMs)
    this.#timer.unref()
    // A stream deleted here takes its epochs along: one declared again under its name starts a history of its own.
    this.#unhook = this.#o.streams.onRemove((stream) => this.#clearHistory(stream))
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#unhook?.()
    for (const f of this.#following.values()) f.stopped = true
    this.#following.clear()
    for (const [stream, l] of this.#leading) {
      for (const w of [...l.waiters, ...l.journal.waiters]) w.reject(this.#notLeader(stream))
      for (const w of [...l.onReady]) w()
    }
    this.#leading.clear()
    for (const stream of [...this.#readers.keys()]) this.#wakeReaders(stream)
  }

  // ---- the publish path's gate -------------------------------------------------------------------

  admit(stream: string): ReplicationTicket {
    const p = this.#o.node.placement(stream)
    // Not placed (a node's own ingest-errors), or not here (forwarding refuses that first).
    if (p === undefined || p.node !== this.#self) return unplaced
    const need = this.#minInSync(stream)
    if (p.isr.length < need) throw errors.notEnoughReplicas(stream, p.isr.length, need)
    // One copy: stored is confirmed, as without replication.
    if (p.replicas.length <= 1) return unplaced
    const l = this.#leading.get(stream)
    if (l?.ready !== true || l.epoch !== p.epoch) throw errors.streamUnavailable(stream, `node ${this.#self} is taking over as its leader`, this.#self)
    return l
  }

  committed(stream: string, end: number, ticket: ReplicationTicket): Promise<void> {
    if (ticket === unplaced) return Promise.resolve()
    const l = this.#leading.get(stream)
    const p = this.#o.node.placement(stream)
    // Stored under a leadership that has ended (a failover while it was written): not confirmed,
    // since the new leader may not have it; a retry with the same ids goes to the new leader.
    if (l === undefined || l !== ticket || p === undefined || p.node !== this.#self || p.epoch !== l.epoch || this.#o.node.state !== 'member') return Promise.reject(this.#notLeader(stream))
    const need = this.#minInSync(stream)
    if (p.isr.length < need) return Promise.reject(this.#tooFew(stream, p))
    this.#advance(stream, l, p)
    // One copy in sync (the leader) and one needed: stored is confirmed, as without replication.
    if (p.isr.length <= 1) return Promise.resolve()
    if (l.hw >= end) return Promise.resolve()
    const timeoutMs = this.#o.config.replication.forwardTimeoutMs
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        l.waiters = l.waiters.filter((w) => w !== waiter)
        reject(errors.replicationTimeout(stream, `the in-sync replicas did not reach offset ${end - 1} within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter: Waiter = {
        end,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      l.waiters.push(waiter)
    })
  }

  /**
   * How far a stream led here may be consumed: its high watermark, for a replicated stream, so a
   * consumer never sees an event a failover could take back. No limit for one copy, or elsewhere.
   */
  end(stream: string): number | undefined {
    const p = this.#o.node.placement(stream)
    if (p === undefined || p.replicas.length <= 1 || p.node !== this.#self) return undefined
    return this.#leading.get(stream)?.hw ?? 0
  }

  /**
   * A read's long poll: true once `offset` is below the stream's visible end (its high watermark
   * where it is led and replicated, its log's end elsewhere), false after `timeoutMs` or on abort.
   */
  async waitFor(stream: string, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const log = this.#o.streams.get(stream)?.log
      if (log === undefined) return false
      const end = this.end(stream)
      const left = deadline - performance.now()
      if (end === undefined) return log.waitFor(offset, Math.max(0, left), signal)
      if (offset < Math.min(end, log.endOffset)) return true
      if (left <= 0 || signal?.aborted === true) return false
      await this.#nextChange(stream, left, signal)
    }
  }

  /** Resolves when the stream's watermark or leadership may have changed, after `ms`, or on abort. */
  #nextChange(stream: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const readers = this.#readers.get(stream) ?? new Set<() => void>()
      this.#readers.set(stream, readers)
      const wake = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', wake)
        readers.delete(wake)
        if (readers.size === 0 && this.#readers.get(stream) === readers) this.#readers.delete(stream)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      signal?.addEventListener('abort', wake, { once: true })
      readers.add(wake)
    })
  }

  #wakeReaders(stream: string): void {
    const readers = this.#readers.get(stream)
    if (readers !== undefined) for (const wake of [...readers]) wake()
  }

  // ---- the groups' journal -----------------------------------------------------------------------

  /**
   * A group's metadata write: stored here and, for a replicated stream led here, put in its
   * journal. A synced one resolves once the in-sync followers have applied it (minInSync of them).
   */
  async write(stream: string, ops: readonly MetaOp[], opts: WriteOptions, waited = false): Promise<void> {
    const l = this.#leading.get(stream)
    const p = this.#o.node.placement(stream)
    // One copy, or a node holding none of the stream's (its groups there serve nothing): as without replication.
    if (p === undefined || p.replicas.length <= 1 || !p.replicas.includes(this.#self)) return this.#o.meta.write(ops, opts)
    // A follower's groups take their state from the leader's journal alone: what its own (closed,
    // or just declared) groups would write is stale, and dropped.
    if (this.#following.has(stream)) return
    // Taking over at the epoch the view names (a stream just placed here, say): a write of a group
    // declared meanwhile waits for that, rather than failing the declaration.
    if (!waited && l !== undefined && !l.ready && p.node === this.#self && l.epoch === p.epoch) {
      await this.#ready(l)
      return this.write(stream, ops, opts, true)
    }
    if (l === undefined || !l.ready || p.node !== this.#self) {
      // Not the leader now (demoted, or not yet taken over): an ack answered here would be on no replica.
      if (opts.sync !== false) throw this.#notLeader(stream)
      return this.#o.meta.write(ops, opts)
    }
    await this.#o.meta.write(ops, opts)
    if (ops.length === 0) return
    const j = l.journal
    // Numbered once stored: the store applies writes in the order they resolve, and so do followers.
    const seq = ++j.seq
    j.entries.push({ seq, ops, end: this.#o.streams.get(stream)?.log.endOffset ?? 0 })
    if (j.entries.length > journalEntriesMax) j.entries.splice(0, j.entries.length - journalEntriesMax)
    this.#wake(l)
    if (opts.sync === false || p.isr.length <= 1) {
      if (opts.sync !== false && p.isr.length < this.#minInSync(stream)) throw this.#tooFew(stream, p)
      return
    }
    if (this.#journalled(l, p) >= seq) return
    const timeoutMs = this.#o.config.replication.forwardTimeoutMs
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        j.waiters = j.waiters.filter((w) => w !== waiter)
        reject(errors.replicationTimeout(stream, `the in-sync replicas did not apply a group's state change within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (err: SluiceError) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      j.waiters.push(waiter)
    })
  }

  /** The last journal entry every in-sync follower has applied. */
  #journalled(l: Leading, p: PlacementRecord): number {
    let done = l.journal.seq
    for (const n of new Set([...p.isr, ...l.pendingIsr])) {
      if (n === this.#self) continue
      const f = l.followers.get(n)
      done = Math.min(done, (f?.jnext ?? 0) - 1)
    }
    return done
  }

  #advanceJournal(stream: string, l: Leading, p: PlacementRecord): void {
    const j = l.journal
    if (j.waiters.length === 0) return
    if (this.#o.node.state !== 'member') return
    if (p.isr.length < this.#minInSync(stream)) {
      const err = this.#tooFew(stream, p)
      for (const w of j.waiters) w.reject(err)
      j.waiters = []
      return
    }
    const done = this.#journalled(l, p)
    const still: Journal['waiters'] = []
    for (const w of j.waiters) {
      if (w.seq <= done) w.resolve()
      else still.push(w)
    }
    j.waiters = still
  }

  #wake(l: Leading): void {
    const wake = l.wake
    l.wake = []
    for (const w of wake) w()
  }

  /** Resolves once `l` is ready, is replaced, or after forwardTimeout: the caller looks again. */
  #ready(l: Leading): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        l.onReady = l.onReady.filter((w) => w !== done)
        resolve()
      }
      const timer = setTimeout(done, this.#o.config.replication.forwardTimeoutMs)
      l.onReady.push(done)
    })
  }

  #notLeader(stream: string): SluiceError {
    return errors.replicationTimeout(stream, `node ${this.#self} stopped leading it before its replicas confirmed`)
  }

  #tooFew(stream: string, p: PlacementRecord): SluiceError {
    return errors.replicationTimeout(stream, `${p.isr.length} replica${p.isr.length === 1 ? '' : 's'} in sync, fewer than cluster.replication.minInSync (${this.#minInSync(stream)})`)
  }

  /** Moves the watermark to the smallest end among the in-sync replicas, and wakes who waited for it. */
  #advance(stream: string, l: Leading, p: PlacementRecord): void {
    const log = this.#o.streams.get(stream)?.log
    if (log === undefined) return
    // A node cut off from etcd may have been replaced already: it confirms nothing.
    if (this.#o.node.state !== 'member') return
    this.#advanceJournal(stream, l, p)
    // Fewer in sync than needed: nothing more is confirmed, and what waited is refused.
    if (p.isr.length < this.#minInSync(stream)) {
      const err = this.#tooFew(stream, p)
      for (const w of l.waiters) w.reject(err)
      l.waiters = []
      return
    }
    let hw = log.endOffset
    for (const n of new Set([...p.isr, ...l.pendingIsr])) {
      if (n === this.#self) continue
      const f = l.followers.get(n)
      hw = Math.min(hw, f === undefined || f.end < 0 ? 0 : f.end)
    }
    // Never back: a follower that fell out of sync and back in cannot take away a confirm.
    if (hw <= l.hw) return
    l.hw = hw
    this.#o.groups.wake(stream)
    this.#wakeReaders(stream)
    const still: Waiter[] = []
    for (const w of l.waiters) {
      if (w.end <= hw) w.resolve()
      else still.push(w)
    }
    l.waiters = still
  }

  // ---- the view ----------------------------------------------------------------------------------

  /** Called on every change of the view: starts and stops leading and following. */
  onView(): void {
    const node = this.#o.node
    if (!node.viewReady) return
    const led = new Set<string>()
    const followed = new Set<string>()
    for (const p of node.status().placement) {
      if (p.node === this.#self) led.add(p.stream)
      else if (p.replicas.includes(this.#self)) followed.add(p.stream)
      const l = this.#leading.get(p.stream)
      if (p.node === this.#self) {
        if (l === undefined || l.epoch !== p.epoch) {
          for (const w of [...(l?.waiters ?? []), ...(l?.journal.waiters ?? [])]) w.reject(this.#notLeader(p.stream))
          for (const w of [...(l?.onReady ?? [])]) w()
          const now = this.#now()
          // Followers get replicaLagMax from now to show up before they count as behind.
          const followers = new Map(p.replicas.filter((n) => n !== this.#self).map((n): [string, FollowerState] => [n, { end: -1, jnext: 0, caughtUpAt: now, answeredEnd: 0 }]))
          const next: Leading = { epoch: p.epoch, followers, hw: 0, waiters: [], proposing: false, pendingIsr: [], ready: false, startEnd: Number.POSITIVE_INFINITY, seenIsr: p.isr.join(','), journal: { id: randomBytes(8).toString('hex'), seq: 0, entries: [], waiters: [] }, wake: [], onReady: [] }
          this.#leading.set(p.stream, next)
          void this.#takeOver(p.stream, next, this.#following.has(p.stream))
        } else {
          // A proposal is settled once this stream's set changes (or it failed, in #checkInSync).
          if (p.isr.join(',') !== l.seenIsr) {
            l.seenIsr = p.isr.join(',')
            l.proposing = false
            l.pendingIsr = []
          }
          for (const n of p.replicas) if (n !== this.#self && !l.followers.has(n)) l.followers.set(n, { end: -1, jnext: 0, caughtUpAt: this.#now(), answeredEnd: 0 })
          this.#advance(p.stream, l, p)
        }
      }
      const f = this.#following.get(p.stream)
      if (p.node !== this.#self && p.replicas.includes(this.#self) && (f === undefined || f.epoch !== p.epoch || f.leader !== p.node)) {
        if (f !== undefined) f.stopped = true
        const next: Following = { leader: p.node, epoch: p.epoch, stopped: false, done: Promise.resolve(), jid: '', jnext: 0, leaderHw: 0, end: this.#o.streams.get(p.stream)?.log.endOffset ?? 0 }
        this.#following.set(p.stream, next)
        next.done = (f?.done ?? Promise.resolve())
          .then(() => this.#follow(p.stream, next))
          .catch((err: unknown) => this.#log.error({ err, stream: p.stream }, 'replica fetch loop ended on an error'))
      }
    }
    for (const [stream, l] of this.#leading) {
      if (led.has(stream)) continue
      // No longer the leader here: what waited is not confirmed (a retry goes to the new one).
      for (const w of [...l.waiters, ...l.journal.waiters]) w.reject(this.#notLeader(stream))
      for (const w of [...l.onReady]) w()
      this.#leading.delete(stream)
    }
    for (const [stream, f] of this.#following) {
      if (followed.has(stream)) continue
      f.stopped = true
      this.#following.delete(stream)
      // Not a replica any more, and not the leader (which opens them itself): its groups open on its copy as before.
      if (!led.has(stream)) void f.done.then(() => this.#o.groups.resume(stream)).catch((err: unknown) => this.#log.error({ err, stream }, 'could not open the groups of a stream no longer followed'))
    }
    // A leadership that came or went changes where reads end: the waiting ones look again.
    for (const stream of [...this.#readers.keys()]) this.#wakeReaders(stream)
  }

  // ---- the leader --------------------------------------------------------------------------------

  /**
   * Becoming the leader at a new epoch: the epoch goes in the history (from the log's end, or its
   * start when there is no history yet), and, for a follower promoted, the ids the log holds go
   * back in the dedup window, so a client's retry of an event the old leader stored is a duplicate
   * here. Only then are appends taken.
   */
  async #takeOver(stream: string, l: Leading, promoted: boolean): Promise<void> {
    const log = this.#o.streams.get(stream)?.log
    const following = this.#following.get(stream)
    const current = (): boolean => this.#leading.get(stream) === l
    const again = (ms: number): void => {
      setTimeout(() => {
        if (current() && !l.ready) void this.#takeOver(stream, l, promoted || following !== undefined)
      }, ms).unref()
    }
    // A stream declared at run time may be placed before its log opens here: asked again shortly.
    if (log === undefined) return again(500)
    try {
      // The follower loop applies nothing more once it has seen it is stopped.
      if (following !== undefined) {
        following.stopped = true
        await following.done
      }
      const history = await this.#historyOf(stream)
      // Epochs only grow within a stream's life: one past this leader's is from a stream of the
      // same name deleted while this node was not running, and says nothing about this one.
      if ((history.at(-1)?.[0] ?? 0) > l.epoch) await this.#clearHistory(stream)
      const last = history.at(-1)
      if (last === undefined || last[0] < l.epoch) await this.#addEpoch(stream, l.epoch, last === undefined ? log.startOffset : log.endOffset)
      const replicated = (this.#o.node.placement(stream)?.replicas.length ?? 1) > 1
      if (replicated && (promoted || following !== undefined)) {
        await this.#o.adoptIds(stream)
        // Groups opened while this node followed (declared meanwhile) wrote nothing that counts:
        // closed, then opened from what the journal brought, every event here maybe delivered.
        await this.#o.groups.suspend(stream)
        await this.#o.groups.assumeDelivered(stream, log.endOffset)
      }
      if (!current()) return
      l.startEnd = log.endOffset
      l.ready = true
      for (const w of [...l.onReady]) w()
      // Followers could not fetch from this node before now: their lag counts from here.
      const now = this.#now()
      for (const f of l.followers.values()) f.caughtUpAt = now
      this.#log.info({ stream, epoch: l.epoch, end: log.endOffset, promoted }, 'leading')
    } catch (err) {
      this.#log.error({ err, stream }, 'could not take over as leader; trying again in a second')
      return again(1000)
    }
    // Ready first, so the groups' first writes go through the journal to followers that can fetch.
    for (let attempt = 1; current(); attempt++) {
      try {
        await this.#o.groups.resume(stream)
        return
      } catch (err) {
        this.#log.warn({ err, stream, attempt }, 'could not open the groups of a stream led here; trying again')
        await sleep(Math.min(5000, 500 * attempt))
      }
    }
  }

  #historyOf(stream: string): Promise<History> {
    let h = this.#history.get(stream)
    if (h === undefined) {
      h = this.#epochs.scan([stream]).then((entries) => entries.map((e): [number, number] => [e.key[1], e.value]))
      this.#history.set(stream, h)
      h.catch(() => this.#history.delete(stream))
    }
    return h
  }

  async #addEpoch(stream: string, epoch: number, start: number): Promise<void> {
    const h = await this.#historyOf(stream)
    if (h.some(([e]) => e >= epoch)) return
    await this.#epochs.put([stream, epoch], start, { sync: true })
    h.push([epoch, start])
  }

  /** Forgets the epochs that start at or past `end`: the copy was cut there. */
  async #truncateHistory(stream: string, end: number): Promise<void> {
    const h = await this.#historyOf(stream)
    const gone = h.filter(([, start]) => start >= end)
    if (gone.length === 0) return
    await this.#o.meta.write(gone.map(([e]) => this.#epochs.delOp([stream, e])), { sync: true })
    h.splice(h.length - gone.length, gone.length)
  }

  /** Forgets a stream's history: its copy starts again from nothing. */
  async #clearHistory(stream: string): Promise<void> {
    const h = await this.#historyOf(stream)
    if (h.length > 0) await this.#o.meta.write(h.map(([e]) => this.#epochs.delOp([stream, e])), { sync: true })
    h.length = 0
  }

  /**
   * Where `epoch` ends in this leader's history (KIP-101's OffsetsForLeaderEpoch): the largest
   * epoch it knows at or below it, and the first offset of the epoch after that (its log's end
   * when that is the last). A follower's copy past that offset holds events this leader never had.
   */
  async epochEnd(stream: string, query: URLSearchParams): Promise<{ epoch: number; end: number; start: number }> {
    const asked = Number(query.get('epoch'))
    if (!Number.isSafeInteger(asked) || asked < 0) throw errors.badRequest('an epoch-end request names an epoch')
    const log = this.#o.streams.get(stream)?.log
    if (log === undefined) throw errors.unknownStream(stream)
    const p = this.#o.node.placement(stream)
    if (p === undefined || p.node !== this.#self || this.#leading.get(stream)?.ready !== true) {
      throw new SluiceError('SLUICE_ERR_NOT_LEADER', `node ${this.#self} does not lead stream "${stream}" now`, 409, true, { stream })
    }
    const h = await this.#historyOf(stream)
    let i = -1
    for (let k = 0; k < h.length; k++) if (h[k]![0] <= asked) i = k
    if (i < 0) return { epoch: 0, end: h[0]?.[1] ?? log.startOffset, start: log.startOffset }
    return { epoch: h[i]![0], end: h[i + 1]?.[1] ?? log.endOffset, start: log.startOffset }
  }

  /**
   * A follower's fetch: records the end it names, and answers with what follows it (waiting a
   * little when there is nothing yet). Refused unless this node leads the stream at that epoch.
   */
  async fetch(stream: string, query: URLSearchParams): Promise<Buffer> {
    const follower = query.get('node') ?? ''
    const from = Number(query.get('from'))
    const epoch = Number(query.get('epoch'))
    if (follower === '' || !Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(epoch)) throw errors.badRequest('a replica fetch names its node, its end offset and the leader epoch')
    const p = this.#o.node.placement(stream)
    const l = this.#leading.get(stream)
    if (p === undefined || p.node !== this.#self || l === undefined || l.epoch !== epoch || !p.replicas.includes(follower)) {
      throw new SluiceError('SLUICE_ERR_NOT_LEADER', `node ${this.#self} does not lead stream "${stream}" at epoch ${epoch}${p === undefined ? '' : ` (its leader is ${p.node} at epoch ${p.epoch})`}`, 409, true, { stream })
    }
    const log = this.#o.streams.get(stream)?.log
    if (log === undefined) throw errors.unknownStream(stream)
    const j = l.journal
    const jnext = query.get('jid') === j.id ? Number(query.get('jnext') ?? 0) : -1
    const state = l.followers.get(follower)
    if (state !== undefined && from <= log.endOffset && from >= log.startOffset) {
      state.end = from
      if (from >= state.answeredEnd) state.caughtUpAt = this.#now()
      if (jnext > 0) state.jnext = jnext
      this.#advance(stream, l, p)
    }
    if (state !== undefined) state.answeredEnd = log.endOffset
    const epochs = await this.#historyOf(stream)
    // Out of the leader's range: the follower starts its copy again from the leader's start.
    if (from > log.endOffset || from < log.startOffset) return frame({ epoch, start: log.startOffset, end: log.endOffset, hw: l.hw, epochs, journal: { id: j.id, next: jnext, entries: [] } }, [])
    const base = j.entries[0]?.seq ?? j.seq + 1
    const snapshot = jnext < 1 || jnext < base || jnext > j.seq + 1
    if (from === log.endOffset && !snapshot && jnext > j.seq) {
      // Nothing to send: wait for either to grow.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          l.wake = l.wake.filter((w) => w !== done)
          resolve()
        }
        const timer = setTimeout(done, fetchWaitMs)
        l.wake.push(done)
        void log.waitFor(from, fetchWaitMs).then(done)
      })
    }
    const next = snapshot ? j.seq + 1 : jnext
    const groups = snapshot ? await this.#o.groups.exportState(stream) : undefined
    const { batches, nextOffset } = await log.readBatches(from, fetchBytes)
    // In order, and none about events the follower will not hold after this answer: an ack must not
    // reach a copy before the event it settles.
    const entries: Journal['entries'] = []
    for (const e of j.entries) {
      if (e.seq < next) continue
      if (e.end > Math.max(nextOffset, from) || entries.length >= journalEntriesPerFetch) break
      entries.push(e)
    }
    return frame(
      { epoch, start: log.startOffset, end: log.endOffset, hw: l.hw, epochs, journal: { id: j.id, next, entries: entries.map((e) => [e.seq, e.ops.map(encodeOp)]), ...(groups !== undefined ? { snapshot: groups } : {}) } },
      batches,
    )
  }

  /** Each check: followers behind for replicaLagMax leave the in-sync set, caught-up ones come back. */
  #checkInSync(): void {
    const node = this.#o.node
    if (!node.viewReady) return
    const now = this.#now()
    const lagMax = this.#o.config.replication.replicaLagMaxMs
    for (const [stream, l] of this.#leading) {
      const p = node.placement(stream)
      if (p === undefined || p.node !== this.#self) continue
      // The watermark moves with the log when the leader is the only one in sync.
      if (l.ready) this.#advance(stream, l, p)
      if (l.proposing) continue
      const log = this.#o.streams.get(stream)?.log
      if (log === undefined) continue
      // A live follower fetches at least every fetchWaitMs, so one not caught up for replicaLagMax
      // is behind or gone, even on a quiet stream. One not heard from yet at this epoch keeps its
      // place for replicaLagMax from the start.
      const keeps = (n: string): boolean => {
        const f = l.followers.get(n)
        return f !== undefined && now - f.caughtUpAt <= lagMax
      }
      const isr = p.isr.filter((n) => n === this.#self || keeps(n))
      // Back in once it holds everything the watermark covers and keeps up.
      for (const n of p.replicas) {
        const f = l.followers.get(n)
        if (!isr.includes(n) && n !== this.#self && f !== undefined && f.end >= 0 && f.end >= Math.max(l.hw, l.startEnd) && keeps(n)) isr.push(n)
      }
      if (isr.length === p.isr.length && isr.every((n) => p.isr.includes(n))) continue
      l.proposing = true
      l.pendingIsr = isr
      void this.#propose(stream, p, isr).catch((err: unknown) => {
        l.proposing = false
        l.pendingIsr = []
        this.#log.warn({ err, stream, isr }, 'could not change the in-sync set; trying again')
      })
    }
  }

  async #propose(stream: string, p: PlacementRecord, isr: readonly string[]): Promise<void> {
    const change = isr.length < p.isr.length ? 'shrink' : 'expand'
    const body = { stream, leader: this.#self, epoch: p.epoch, isr }
    const controller = this.#o.node.status().controller
    if (controller === null) throw new Error('no controller now')
    if (controller.self) await this.changeInSync(body)
    else {
      const rec = this.#o.node.nodeRecord(controller.node)
      if (rec === undefined) throw new Error(`the controller ${controller.node} holds no lease`)
      await callPeer({
        peer: { node: rec.id, host: rec.host, port: rec.internalPort },
        path: '/internal/v1/isr',
        body: Buffer.from(JSON.stringify(body)),
        contentType: 'application/json',
        auth: this.#auth,
        transport: this.#o.transport,
        timeoutMs: this.#o.config.replication.forwardTimeoutMs,
        unreachable: (why) => errors.streamUnavailable(stream, `the controller could not be reached (${why})`),
      })
    }
    if (change === 'shrink') this.counters.shrinks++
    else this.counters.expands++
    this.#log.info({ stream, from: p.isr, to: isr, epoch: p.epoch }, change === 'shrink' ? 'in-sync set shrunk' : 'in-sync set expanded')
  }

  /** As controller: a leader's change of its in-sync set, written if it still leads at that epoch. */
  async changeInSync(b: { readonly stream?: unknown; readonly leader?: unknown; readonly epoch?: unknown; readonly isr?: unknown }): Promise<object> {
    const node = this.#o.node
    if (typeof b.stream !== 'string' || typeof b.leader !== 'string' || typeof b.epoch !== 'number' || !Array.isArray(b.isr) || !b.isr.every((n) => typeof n === 'string')) {
      throw errors.badRequest('an in-sync change names its stream, leader, epoch and set')
    }
    const isr = b.isr as string[]
    const cur = await node.readPlacement(b.stream)
    if (cur === undefined || cur.record.node !== b.leader || cur.record.epoch !== b.epoch || isr[0] !== b.leader || !isr.every((n) => cur.record.replicas.includes(n))) {
      throw new SluiceError('SLUICE_ERR_NOT_LEADER', `node ${b.leader} does not lead stream "${b.stream}" at epoch ${b.epoch}, or the set is not of its replicas`, 409, true, { stream: b.stream })
    }
    const written = await node.casPlacement(b.stream, cur.modRevision, { ...cur.record, isr })
    if (written === undefined) throw errors.streamUnavailable(b.stream, 'its placement changed meanwhile, or this node is no longer the controller')
    return {}
  }

  // ---- the follower ------------------------------------------------------------------------------

  async #follow(stream: string, f: Following): Promise<void> {
    // A stream declared at run time may be placed before its log opens here.
    let log = this.#o.streams.get(stream)?.log
    while (log === undefined && !f.stopped) {
      await sleep(100)
      log = this.#o.streams.get(stream)?.log
    }
    if (log === undefined) return
    let backoff = 100
    let checked = false
    let suspended = false
    while (!f.stopped) {
      const leader = this.#o.node.nodeRecord(f.leader)
      if (leader === undefined) {
        await sleep(50)
        continue
      }
      const call = (path: string, timeoutMs: number): Promise<Buffer> =>
        callPeer({
          peer: { node: leader.id, host: leader.host, port: leader.internalPort },
          path,
          body: Buffer.alloc(0),
          contentType: 'application/octet-stream',
          auth: this.#auth,
          transport: this.#o.transport,
          timeoutMs,
          unreachable: (why) => errors.streamUnavailable(stream, `its leader ${leader.id} could not be reached (${why})`),
        })
      try {
        if (!suspended) {
          // A follower's groups serve nothing: closed, their state comes from the leader's journal.
          await this.#o.groups.suspend(stream)
          suspended = true
        }
        if (!checked) {
          // First, at a new leader: does this copy continue its log? Past where this copy's last
          // epoch ends in the leader's history, it holds events the leader never had: cut there.
          const epochEnd = async (epoch: number): Promise<{ epoch: number; end: number; start: number }> =>
            JSON.parse((await call(`/internal/v1/streams/${encodeURIComponent(stream)}/epoch-end?epoch=${epoch}`, this.#o.config.replication.forwardTimeoutMs)).toString('utf8')) as { epoch: number; end: number; start: number }
          const history = await this.#historyOf(stream)
          // Past the leader's own epoch: the history of a stream of the same name deleted while this node was down.
          if ((history.at(-1)?.[0] ?? 0) > f.epoch) await this.#clearHistory(stream)
          if (history.length === 0) {
            // Events but no epochs (a copy from before replication, or a history lost): nothing
            // says which leader wrote them, so the copy starts again from the leader's.
            if (log.endOffset > log.startOffset) {
              const at = await epochEnd(0)
              if (f.stopped) return
              this.#log.warn({ stream, end: log.endOffset, leader: f.leader }, 'follower copy has no leader epochs; starting it again from the leader')
              await log.reset(at.start)
            }
          } else {
            // Each round asks about this copy's last epoch. The leader answers with the last epoch
            // both may share (that one, or an earlier one it knows) and where it ends there; the
            // copy is cut where either log leaves that epoch, and asks again about what is left
            // (KIP-101, with KIP-279's rounds). Every round drops an epoch, so it ends.
            for (let round = 0; history.length > 0; round++) {
              const mine = history.at(-1)![0]
              const at = await epochEnd(mine)
              if (f.stopped) return
              const ownEnd = history.find(([e]) => e > at.epoch)?.[1] ?? log.endOffset
              const cut = Math.min(at.end, ownEnd)
              if (cut < log.endOffset) {
                const end = await log.truncate(cut)
                this.#log.warn({ stream, epoch: mine, leaderEpoch: at.epoch, leaderEpochEnd: at.end, cutAt: end, leader: f.leader }, 'follower copy holds events its new leader never had; cut them')
                await this.#truncateHistory(stream, end)
              }
              if (at.epoch === mine || round > 64) break
              // This copy's epochs after the shared one hold nothing now: forgotten, and the next
              // round asks about the one before them.
              await this.#truncateHistory(stream, Math.min(cut, log.endOffset))
            }
          }
          checked = true
        }
        const q = new URLSearchParams({ node: this.#self, from: String(log.endOffset), epoch: String(f.epoch), jid: f.jid, jnext: String(f.jnext) })
        const answer = await call(`/internal/v1/streams/${encodeURIComponent(stream)}/replicate?${q.toString()}`, fetchWaitMs + this.#o.config.replication.forwardTimeoutMs)
        if (f.stopped) return
        const { head, batches } = unframe(answer)
        f.leaderHw = head.hw
        if (log.endOffset > head.end || log.endOffset < head.start) {
          // This copy does not continue the leader's: start again from the leader's start.
          this.#log.warn({ stream, end: log.endOffset, leaderStart: head.start, leaderEnd: head.end }, 'follower copy out of the leader range; starting it again')
          await this.#clearHistory(stream)
          await log.reset(head.start)
          continue
        }
        if (batches.length > 0) {
          await log.appendStored(batches)
          for (const b of batches) this.counters.bytes += b.length
        }
        // The leader's epochs this copy now reaches into are this copy's too.
        for (const [e, start] of head.epochs) if (start <= log.endOffset) await this.#addEpoch(stream, e, start)
        await this.#applyJournal(stream, f, head.journal)
        f.end = log.endOffset
        backoff = 100
      } catch (err) {
        if (f.stopped) return
        this.#log.debug({ err, stream, leader: f.leader }, 'replica fetch failed; trying again')
        // In slices: a new leader's loop waits for this one to end, so a stop must not wait out a backoff.
        for (let waited = 0; waited < backoff && !f.stopped; waited += 50) await sleep(50)
        backoff = Math.min(backoff * 2, 2000)
      }
    }
  }

  /** Applies what the leader's journal sent: its groups' whole state first when sent, then the entries in order. */
  async #applyJournal(stream: string, f: Following, j: FetchHead['journal']): Promise<void> {
    if (f.stopped) return
    if (j.snapshot !== undefined) {
      await this.#o.groups.replaceState(stream, j.snapshot)
      f.jid = j.id
      f.jnext = j.next
    }
    if (f.jid !== j.id) return
    for (const [seq, raw] of j.entries) {
      if (seq < f.jnext) continue
      if (seq !== f.jnext) break // a gap: the next fetch asks from here
      const ops = raw.map(decodeOp)
      await this.#o.meta.write(ops, { sync: true })
      f.jnext = seq + 1
    }
  }

  // ---- seeing it ---------------------------------------------------------------------------------

  status(): { readonly leading: Record<string, unknown>; readonly following: Record<string, unknown> } {
    const leading: Record<string, unknown> = {}
    for (const [stream, l] of this.#leading) {
      const end = this.#o.streams.get(stream)?.log.endOffset ?? 0
      leading[stream] = {
        epoch: l.epoch,
        end,
        highWatermark: l.hw,
        followers: Object.fromEntries([...l.followers].map(([n, f]) => [n, { end: f.end, lag: f.end < 0 ? null : end - f.end, caughtUpMsAgo: Math.round(this.#now() - f.caughtUpAt) }])),
      }
    }
    const following: Record<string, unknown> = {}
    for (const [stream, f] of this.#following) following[stream] = { leader: f.leader, epoch: f.epoch, end: f.end, leaderHighWatermark: f.leaderHw }
    return { leading, following }
  }

  /** Streams led here with fewer replicas in sync than placed. */
  underReplicated(): number {
    let n = 0
    for (const stream of this.#leading.keys()) {
      const p = this.#o.node.placement(stream)
      if (p !== undefined && p.isr.length < p.replicas.length) n++
    }
    return n
  }

  /** Per stream led here and follower: events behind the leader's end. */
  lag(): Array<{ readonly stream: string; readonly node: string; readonly events: number }> {
    const out: Array<{ stream: string; node: string; events: number }> = []
    for (const [stream, l] of this.#leading) {
      const end = this.#o.streams.get(stream)?.log.endOffset ?? 0
      for (const [node, f] of l.followers) out.push({ stream, node, events: f.end < 0 ? end : Math.max(0, end - f.end) })
    }
    return out
  }
}

// A fetch answer: u32 head length, the head as JSON, then the batches as stored.
function frame(head: FetchHead, batches: readonly Buffer[]): Buffer {
  const json = Buffer.from(JSON.stringify(head))
  const len = Buffer.allocUnsafe(4)
  len.writeUInt32BE(json.length, 0)
  return Buffer.concat([len, json, ...batches])
}

function unframe(buf: Buffer): { head: FetchHead; batches: Buffer[] } {
  if (buf.length < 4) throw new Error('a replica fetch answer shorter than its head')
  const n = buf.readUInt32BE(0)
  if (4 + n > buf.length) throw new Error('a replica fetch answer cut in its head')
  const head = JSON.parse(buf.toString('utf8', 4, 4 + n)) as FetchHead
  const batches: Buffer[] = []
  for (let at = 4 + n; at < buf.length; ) {
    const len = at + 4 <= buf.length ? buf.readUInt32BE(at) : 0
    if (len < 4 || at + len > buf.length) throw new Error(`a replica fetch answer cut at byte ${at}`)
    batches.push(buf.subarray(at, at + len))
    at += len
  }
  return { head, batches }
}

function encodeOp(op: MetaOp): readonly [string, string, string?] {
  return op.type === 'put' ? ['put', op.key.toString('base64'), op.value.toString('base64')] : ['del', op.key.toString('base64')]
}

/** An op of a journal entry; only keys of the groups' keyspaces are taken. */
function decodeOp(raw: readonly [string, string, string?]): MetaOp {
  const key = Buffer.from(raw[1], 'base64')
  if (key.length === 0 || !groupNamespaces.has(key[0]!)) throw new Error('a journal entry writes outside the groups\' keyspaces')
  if (raw[0] === 'del') return { type: 'del', key }
  if (raw[0] !== 'put' || raw[2] === undefined) throw new Error('a journal entry op is malformed')
  return { type: 'put', key, value: Buffer.from(raw[2], 'base64') }
}
