// Moving a stream to another node (`sluice cluster move`, docs/cluster.md "Moving a stream"). The
// controller runs it, the stream's home hands the stream over, and the new node receives it:
//
//  1. The controller reads the placement and its revision, records the move in etcd under its
//     own lease (the record's create revision is the move's id), and asks the home to hand over.
//  2. The home holds publishes to the stream (they wait, they do not fail), closes its groups on
//     it (consumers are cancelled; what they held goes back as delivered), and sends the target
//     the log's batches as stored, then the groups' saved state and the remembered ids. The
//     target holds its own publishes to the stream and closes its groups too, starts its copy
//     empty at the home's first offset, and appends each batch after checking its CRC and offset,
//     durably before it answers.
//  3. The controller switches the placement to the target at epoch + 1 and deletes the move
//     record, in one transaction that passes only while it still holds the controller key at its
//     epoch, the placement is still at the revision it read, and the move record is still there.
//  4. Each end finishes when its own view shows the new placement: the new home opens its groups
//     and lets its held publishes in; the old one empties its copy and sends its held publishes to
//     the new home.
//
// Calling a move off is deleting its record (compared on the move's id): once that passed, the
// switch cannot. Only then may an end treat the move as off, so whoever decides (the controller
// after an error or the timeout, an end at its deadline, an end that saw the controller change)
// first deletes the record, or finds it gone and reads the placement. A controller that dies takes
// the record with its lease, which calls its moves off.

import type { ClusterConfig } from '../config/index.js'
import type { GroupRegistry } from '../consumers/index.js'
import type { GroupState } from '../consumers/registry.js'
import { errors, SluiceError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ScopeIds } from '../streams/dedup-window.js'
import type { BrokerPublisher } from '../streams/publisher.js'
import type { StreamRegistry } from '../streams/registry.js'
import { callPeer, type PeerAddress } from './internal.js'
import type { PlacementRecord } from './layout.js'
import type { ClusterNode } from './node.js'
import type { PeerTransport } from './transport.js'

export interface MoveResult {
  readonly stream: string
  readonly from: string
  readonly to: string
  /** The placement epoch the stream has on its new node. */
  readonly epoch: number
  /** Events copied, their bytes as stored, groups and remembered ids handed over. */
  readonly events: number
  readonly bytes: number
  readonly groups: number
  readonly ids: number
  readonly durationMs: number
}

/** What the old home answers once the target holds everything. */
interface HandoffAnswer {
  readonly events: number
  readonly bytes: number
  readonly groups: number
  readonly ids: number
}

interface ReceivedState {
  readonly end: number
  readonly groups: readonly GroupState[]
  readonly ids: ScopeIds
}

export type MoveRoute = 'move' | 'handoff' | 'receive' | 'end'

export type HandoverOutcome = 'moved' | 'off'

/** A handover this node takes part in, until its view shows how it ended. */
interface Handover {
  readonly role: 'source' | 'target'
  readonly stream: string
  /** The other end. */
  readonly peer: string
  readonly controllerEpoch: number
  /** The move record's create revision: every message of the move names it. */
  readonly moveId: number
  /** The placement epoch before the move: a larger one in the view means it switched. */
  readonly fromEpoch: number
  readonly since: number
  timer: NodeJS.Timeout | undefined
  /** Asking etcd how the move ended (at the deadline, or once the controller changed). */
  settling: boolean
  ending: Promise<void> | undefined
}

/** What every message of a move between its two ends names. */
interface MoveIds {
  readonly controllerEpoch: number
  readonly moveId: number
  readonly fromEpoch: number
}

export interface MoveCounters {
  moved: number
  failed: number
  /** Events copied to other nodes by moves this node handed over. */
  events: number
}

export interface MoverOptions {
  readonly node: ClusterNode
  readonly config: ClusterConfig
  readonly streams: StreamRegistry
  readonly groups: GroupRegistry
  readonly publisher: BrokerPublisher
  readonly secret: string
  readonly transport: PeerTransport
  readonly logger: Logger
}

/** Log batches per request to the target: well under cluster.replication.maxBodySize. */
const chunkBytesMax = 4 * 1024 * 1024

export class Mover {
  readonly counters: MoveCounters = { moved: 0, failed: 0, events: 0 }
  readonly #o: MoverOptions
  readonly #log: Logger
  readonly #auth: string
  readonly #handovers = new Map<string, Handover>()
  /** Streams the controller is moving now. */
  readonly #moving = new Set<string>()

  constructor(o: MoverOptions) {
    this.#o = o
    this.#log = o.logger.child({ component: 'cluster-move' })
    this.#auth = `Bearer ${o.secret}`
  }

  /** Handovers in progress here, for the status. */
  handovers(): Array<{ readonly stream: string; readonly role: 'source' | 'target'; readonly peer: string; readonly sinceMs: number }> {
    const now = performance.now()
    return [...this.#handovers.values()].map((h) => ({ stream: h.stream, role: h.role, peer: h.peer, sinceMs: Math.round(now - h.since) }))
  }

  // ---- the controller ----------------------------------------------------------------------------

  /** Moves `stream` to node `to`, from any node: the controller runs it. */
  async request(stream: string, to: string): Promise<MoveResult> {
    const node = this.#o.node
    if (node.controllerEpoch !== undefined) return this.move(stream, to)
    const epoch = node.viewControllerEpoch
    const status = node.status()
    const controller = status.controller === null ? undefined : node.nodeRecord(status.controller.node)
    if (epoch === undefined || controller === undefined) throw errors.moveFailed(stream, 'the cluster has no controller now')
    const answer = await this.#call(controller, '/internal/v1/move', { stream, to }, this.#o.config.replication.moveTimeoutMs + 30_000, (why) => errors.moveFailed(stream, `the controller ${controller.id} could not be reached (${why})`))
    return JSON.parse(answer.toString('utf8')) as MoveResult
  }

  /** As controller: moves `stream` to node `to` (the steps at the top of this file). */
  async move(stream: string, to: string): Promise<MoveResult> {
    const node = this.#o.node
    const epoch = node.controllerEpoch
    if (epoch === undefined) throw errors.moveFailed(stream, 'this node is no longer the controller')
    if (this.#moving.has(stream)) throw errors.moveRefused(stream, 'a move of it is under way')
    const t0 = performance.now()
    this.#moving.add(stream)
    try {
      const cur = await node.readPlacement(stream).catch((err: unknown) => {
        throw errors.clusterUnavailable(`moving stream "${stream}"`, err)
      })
      if (cur === undefined) throw errors.moveRefused(stream, node.status().unplaced.includes(stream) ? 'it is not placed yet' : 'the cluster places no stream of that name')
      const from = cur.record.node
      if (from === to) throw errors.moveRefused(stream, `it already lives on node ${to}`)
      const target = node.nodeRecord(to)
      if (target === undefined) throw errors.moveRefused(stream, `node ${to} holds no lease (it is not a member now)`)
      const source = node.nodeRecord(from)
      if (source === undefined) throw errors.moveFailed(stream, `its home node ${from} holds no lease now`)
      const timeoutMs = this.#o.config.replication.moveTimeoutMs
      const moveId = await node.beginMove(stream, { from, to, controllerEpoch: epoch, since: new Date().toISOString() }).catch((err: unknown) => {
        throw errors.clusterUnavailable(`moving stream "${stream}"`, err)
      })
      if (moveId === undefined) throw errors.moveRefused(stream, 'a move of it is recorded in etcd already, or this node stopped being the controller')
      const ids: MoveIds = { controllerEpoch: epoch, moveId, fromEpoch: cur.record.epoch }
      const failed = (err: unknown, outcome: HandoverOutcome | 'unknown'): SluiceError =>
        outcome === 'unknown' ? errors.moveFailed(stream, `${(err as Error).message}; etcd did not answer the call-off, so whether it switched is not known: see sluice cluster status`) : asMoveFailure(stream, err)
      let handed: HandoffAnswer
      try {
        const answer = await this.#call(source, `/internal/v1/streams/${encodeURIComponent(stream)}/handoff`, { to, ...ids }, timeoutMs, (why) => errors.moveFailed(stream, `its home node ${from} could not be reached (${why})`))
        handed = JSON.parse(answer.toString('utf8')) as HandoffAnswer
        if (performance.now() - t0 > timeoutMs) throw errors.moveFailed(stream, `it took longer than cluster.replication.moveTimeout (${timeoutMs} ms)`)
      } catch (err) {
        // The home never said the copy is whole: nothing switched, so "moved" cannot come back.
        throw failed(err, await this.#callOff(stream, ids, [source, target]))
      }
      // The new home takes the old one's place among the replicas; the followers' copies stay
      // (the copy is byte for byte the old home's), the old home's is emptied.
      const replicas = cur.record.replicas.includes(to) ? [to, ...cur.record.replicas.filter((n) => n !== to)] : [to, ...cur.record.replicas.filter((n) => n !== from)]
      const isr = [to, ...cur.record.isr.filter((n) => n !== to && n !== from)]
      const next: PlacementRecord = { node: to, epoch: cur.record.epoch + 1, controllerEpoch: epoch, since: new Date().toISOString(), replicas, isr }
      const switched = await node.switchMove(stream, moveId, cur.modRevision, next).catch(() => false)
      if (!switched) {
        // Not switched, or its answer lost: the call-off settles which.
        const outcome = await this.#callOff(stream, ids, [source, target])
        if (outcome !== 'moved') throw failed(new Error('its placement changed while it was copied, or this node stopped being the controller'), outcome)
      }
      this.counters.moved++
      const result: MoveResult = { stream, from, to, epoch: next.epoch, ...handed, durationMs: Math.round(performance.now() - t0) }
      this.#log.info(result, 'stream moved')
      return result
    } catch (err) {
      this.counters.failed++
      throw err
    } finally {
      this.#moving.delete(stream)
    }
  }

  /**
   * Calls a move off by deleting its record, which its switch requires. 'moved' when the switch
   * had landed after all, 'unknown' when etcd did not answer (the ends then ask it themselves).
   */
  async #callOff(stream: string, ids: MoveIds, ends: readonly PeerAddressOf[]): Promise<HandoverOutcome | 'unknown'> {
    const outcome = await this.#settleInEtcd(stream, ids).catch(() => 'unknown' as const)
    if (outcome === 'off') {
      for (const end of ends) {
        void this.#call(end, `/internal/v1/streams/${encodeURIComponent(stream)}/end`, ids, 10_000, (why) => errors.moveFailed(stream, why)).catch((err: unknown) =>
          this.#log.warn({ err, stream, node: end.id }, 'could not tell a node the move was called off; it finds out at its deadline'),
        )
      }
    }
    return outcome
  }

  /** How the move ended, making sure it has: calls it off unless it switched. Throws when etcd does not answer. */
  async #settleInEtcd(stream: string, ids: MoveIds): Promise<HandoverOutcome> {
    const node = this.#o.node
    if (await node.endMove(stream, ids.moveId)) return 'off'
    // The record is gone: switched (in the same transaction), or called off by someone else.
    const p = await node.readPlacement(stream)
    return p !== undefined && p.record.epoch > ids.fromEpoch ? 'moved' : 'off'
  }

  // ---- the internal port -------------------------------------------------------------------------

  /** One request on the internal port; resolves with the JSON answer. */
  async handle(route: MoveRoute, stream: string, query: URLSearchParams, body: Buffer): Promise<unknown> {
    const phase = query.get('phase') ?? ''
    switch (route) {
      case 'move': {
        const b = json<{ stream?: unknown; to?: unknown }>(body)
        if (typeof b.stream !== 'string' || typeof b.to !== 'string') throw errors.badRequest('a move names its stream and target node')
        return this.move(b.stream, b.to)
      }
      case 'handoff': {
        const b = json<{ to?: unknown }>(body)
        if (typeof b.to !== 'string') throw errors.badRequest('a handoff names its target node')
        return this.#handOff(stream, b.to, moveIds(body))
      }
      case 'receive':
        return this.#receive(stream, phase, body, query)
      case 'end': {
        // A word that the move is off is checked with etcd, never taken on trust: only a deleted
        // move record makes it so. "Moved" is never said: it is read from the view.
        const h = this.#handovers.get(stream)
        if (h !== undefined && h.moveId === moveIds(body).moveId) this.#settle(h)
        return {}
      }
    }
  }

  async #handOff(stream: string, to: string, ids: MoveIds): Promise<HandoffAnswer> {
    const node = this.#o.node
    const self = this.#o.config.nodeId
    if (!node.reach(stream).here || node.placement(stream)?.node !== self) throw errors.moveRefused(stream, `it does not live on node ${self}`)
    const target = node.nodeRecord(to)
    if (target === undefined) throw errors.moveRefused(stream, `node ${to} holds no lease`)
    const s = this.#o.streams.get(stream)
    if (s === undefined) throw errors.unknownStream(stream)
    const h = this.#begin('source', stream, to, ids)
    // Every await can outlive the handover (called off meanwhile): nothing goes on after that.
    const live = (): void => {
      if (h.ending !== undefined) throw errors.moveFailed(stream, 'the move was called off while its stream was copied')
    }
    try {
      await this.#o.publisher.hold(stream)
      live()
      const groups = await this.#o.groups.suspend(stream)
      live()
      const log = s.log
      const base = log.startOffset
      const end = log.endOffset
      const path = (phase: string): string => `/internal/v1/streams/${encodeURIComponent(stream)}/receive?phase=${phase}`
      const fail = (why: string): SluiceError => errors.moveFailed(stream, `the target node ${to} could not be reached (${why})`)
      const timeout = this.#o.config.replication.forwardTimeoutMs
      await this.#call(target, path('begin'), { base, from: self, ...ids }, timeout, fail)
      live()
      let bytes = 0
      const chunk = Math.min(chunkBytesMax, Math.floor(this.#o.config.replication.maxBodyBytes / 2))
      for (let from = base; from < end; ) {
        const { batches, nextOffset } = await log.readBatches(from, chunk)
        if (batches.length === 0) throw new Error(`the log read nothing at offset ${from}, below its end ${end}`)
        const payload = Buffer.concat(batches)
        bytes += payload.length
        await this.#call(target, `${path('batches')}&move=${ids.moveId}`, payload, timeout, fail)
        live()
        from = nextOffset
      }
      const state: ReceivedState = { end, groups: await this.#o.groups.exportState(stream), ids: await this.#o.publisher.exportIds(stream) }
      await this.#call(target, path('state'), { ...state, ...ids }, timeout, fail)
      live()
      this.counters.events += end - base
      this.#log.info({ stream, to, events: end - base, bytes, groups: groups.length }, 'stream copied to its new node; waiting for the placement to switch')
      return { events: end - base, bytes, groups: groups.length, ids: state.ids.ids.length }
    } catch (err) {
      // This end never answered that the copy is whole, so the controller cannot switch: the
      // stream stays here. The target checks with etcd before it drops its copy.
      void this.#call(target, `/internal/v1/streams/${encodeURIComponent(stream)}/end`, ids, 10_000, (why) => errors.moveFailed(stream, why)).catch(() => undefined)
      await this.#end(h, 'off')
      throw err
    }
  }

  async #receive(stream: string, phase: string, body: Buffer, query: URLSearchParams): Promise<unknown> {
    const s = this.#o.streams.get(stream)
    if (s === undefined) throw errors.unknownStream(stream)
    if (phase === 'begin') {
      const b = json<{ base?: unknown; from?: unknown }>(body)
      if (typeof b.base !== 'number' || !Number.isSafeInteger(b.base) || b.base < 0 || typeof b.from !== 'string') throw errors.badRequest('a receive names its base offset and source node')
      if (this.#o.node.placement(stream)?.node === this.#o.config.nodeId) throw errors.moveRefused(stream, 'it already lives here')
      const h = this.#begin('target', stream, b.from, moveIds(body))
      const live = (): void => {
        if (h.ending !== undefined) throw errors.moveFailed(stream, 'the move was called off')
      }
      await this.#o.publisher.hold(stream)
      live()
      await this.#o.groups.suspend(stream)
      live()
      await s.log.reset(b.base)
      live()
      return {}
    }
    const h = this.#handovers.get(stream)
    const moveId = phase === 'batches' ? Number(query.get('move')) : moveIds(body).moveId
    if (h?.role !== 'target' || h.ending !== undefined || h.moveId !== moveId) throw errors.moveFailed(stream, 'no handover of it is under way here')
    if (phase === 'batches') {
      const batches: Buffer[] = []
      for (let at = 0; at < body.length; ) {
        const len = at + 4 <= body.length ? body.readUInt32BE(at) : 0
        if (len < 4 || at + len > body.length) throw errors.badRequest(`batches cut at byte ${at}`)
        batches.push(body.subarray(at, at + len))
        at += len
      }
      await s.log.appendStored(batches)
      return { end: s.log.endOffset }
    }
    if (phase === 'state') {
      const b = receivedState(body)
      if (s.log.endOffset !== b.end) throw errors.moveFailed(stream, `the copy ends at ${s.log.endOffset}, not at ${b.end}`)
      // Durable before the switch, whatever the stream's fsync policy: the old home drops its copy then.
      await s.log.sync()
      await this.#o.groups.replaceState(stream, b.groups)
      await this.#o.publisher.replaceIds(stream, b.ids)
      return {}
    }
    throw errors.badRequest(`unknown receive phase "${phase}"`)
  }

  #begin(role: 'source' | 'target', stream: string, peer: string, ids: MoveIds): Handover {
    if (this.#handovers.has(stream)) throw errors.moveRefused(stream, 'a handover of it is under way here')
    const h: Handover = { role, stream, peer, ...ids, since: performance.now(), timer: undefined, settling: false, ending: undefined }
    this.#handovers.set(stream, h)
    // Past the longest a move may take, the controller tries no switch: this end asks etcd.
    h.timer = setTimeout(() => this.#settle(h), this.#o.config.replication.moveTimeoutMs + this.#o.config.etcd.requestTimeoutMs + 5000)
    h.timer.unref()
    return h
  }

  /**
   * Ends the handover as etcd has the move: off only once its record is deleted (by this call or
   * another), moved once the view shows the switch. Unreachable, it asks again a second later.
   */
  #settle(h: Handover): void {
    if (h.settling || h.ending !== undefined) return
    h.settling = true
    this.#settleInEtcd(h.stream, h).then(
      (outcome) => {
        h.settling = false
        if (outcome === 'off') void this.#end(h, 'off')
        else this.onView() // switched: finished when the view shows it, as it routes publishes
      },
      (err: unknown) => {
        h.settling = false
        this.#log.warn({ err, stream: h.stream }, 'could not learn from etcd how a move ended; asking again')
        clearTimeout(h.timer)
        h.timer = setTimeout(() => this.#settle(h), 1000)
        h.timer.unref()
      },
    )
  }

  /** Called on every change of the view: a handover ends when the view shows how. */
  onView(): void {
    const node = this.#o.node
    if (!node.viewReady) return
    for (const h of this.#handovers.values()) {
      if (h.ending !== undefined) continue
      const p = node.placement(h.stream)
      // Switched: the placement's epoch went past the one the move started from.
      if (p !== undefined && p.epoch > h.fromEpoch) void this.#end(h, h.role === 'source' || p.node === this.#o.config.nodeId ? 'moved' : 'off')
      // The controller that ran it is gone: its record went with its lease, or will; etcd says.
      else if (node.viewControllerEpoch !== h.controllerEpoch) this.#settle(h)
    }
  }

  /** Ends a handover here, once: the groups open again and the held publishes go on. */
  #end(h: Handover, outcome: HandoverOutcome): Promise<void> {
    h.ending ??= (async () => {
      clearTimeout(h.timer)
      const { stream } = h
      const s = this.#o.streams.get(stream)
      // A copy this node no longer serves is emptied: the old home's after a move, the target's
      // partial one after a move called off. A failure here leaves a stale copy on a node that is
      // not the home, which a later move to it resets.
      const drop = (h.role === 'source') === (outcome === 'moved')
      if (drop && s !== undefined) {
        try {
          // From offset 0: a follower's copy starts over from the leader's start.
          await s.log.reset(0)
          await this.#o.groups.replaceState(stream, [])
          await this.#o.publisher.replaceIds(stream, { ids: [], checkpoint: null })
        } catch (err) {
          this.#log.error({ err, stream, role: h.role, outcome }, 'could not empty the copy of a stream this node no longer serves')
        }
      }
      // The groups must open again whatever failed before: a few tries, then a loud log line.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#o.groups.resume(stream)
          break
        } catch (err) {
          if (attempt >= 3) {
            this.#log.error({ err, stream }, 'could not open the groups of a stream after its handover; they stay closed until a restart')
            break
          }
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
        }
      }
      this.#handovers.delete(stream)
      this.#o.publisher.release(stream)
      this.#log.info({ stream, role: h.role, peer: h.peer, outcome, ms: Math.round(performance.now() - h.since) }, outcome === 'moved' ? 'handover ended: moved' : 'handover called off')
    })()
    return h.ending
  }

  /** On stop: publishes held for a handover go on (refused, as the node is stopping). */
  stop(): void {
    for (const h of this.#handovers.values()) {
      clearTimeout(h.timer)
      this.#o.publisher.release(h.stream)
    }
  }

  #call(peer: PeerAddressOf, path: string, body: unknown, timeoutMs: number, unreachable: (why: string) => SluiceError): Promise<Buffer> {
    const binary = Buffer.isBuffer(body)
    const address: PeerAddress = { node: peer.id, host: peer.host, port: peer.internalPort }
    return callPeer({ peer: address, path, body: binary ? body : Buffer.from(JSON.stringify(body)), contentType: binary ? 'application/octet-stream' : 'application/json', auth: this.#auth, transport: this.#o.transport, timeoutMs, unreachable })
  }
}

/** A node as move.ts reaches it: its record's id and internal port. */
interface PeerAddressOf {
  readonly id: string
  readonly host: string
  readonly internalPort: number
}

function json<T>(body: Buffer): Partial<T> {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'))
    if (typeof v === 'object' && v !== null) return v as Partial<T>
  } catch {
    // answered below
  }
  throw errors.badRequest('the body is not a JSON object')
}

function moveIds(body: Buffer): MoveIds {
  const b = json<MoveIds>(body)
  const n = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0
  if (!n(b.controllerEpoch) || !n(b.moveId) || !n(b.fromEpoch)) throw errors.badRequest('a move message names its controller epoch, move id and placement epoch')
  return { controllerEpoch: b.controllerEpoch, moveId: b.moveId, fromEpoch: b.fromEpoch }
}

/** A state phase's body, checked whole before anything is replaced with it. */
function receivedState(body: Buffer): ReceivedState {
  const b = json<ReceivedState>(body)
  const n = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  const pair = (v: unknown): boolean => Array.isArray(v) && v.length === 2 && n(v[0]) && n(v[1])
  const delivery = (v: unknown): boolean => {
    if (!Array.isArray(v) || v.length !== 2 || !n(v[0])) return false
    const d = v[1] as Record<string, unknown> | null
    return typeof d === 'object' && d !== null && n(d.count) && (d.dueAtMs === null || typeof d.dueAtMs === 'number') && typeof d.parked === 'boolean'
  }
  const group = (g: unknown): boolean => {
    if (typeof g !== 'object' || g === null) return false
    const o = g as Record<string, unknown>
    const r = o.record as Record<string, unknown> | null
    return (
      typeof o.name === 'string' &&
      typeof r === 'object' && r !== null && n(r.cursor) && n(r.generation) && n(r.delivered) &&
      Array.isArray(o.settled) && o.settled.every(pair) &&
      Array.isArray(o.deliveries) && o.deliveries.every(delivery) &&
      Array.isArray(o.parked) && o.parked.every((p) => typeof p === 'object' && p !== null && n((p as { offset?: unknown }).offset))
    )
  }
  const id = (v: unknown): boolean => Array.isArray(v) && v.length === 3 && typeof v[0] === 'number' && typeof v[1] === 'string' && (v[2] === null || n(v[2]))
  const ids = b.ids as { ids?: unknown; checkpoint?: unknown } | undefined
  if (!n(b.end) || !Array.isArray(b.groups) || !b.groups.every(group) || typeof ids !== 'object' || ids === null || !Array.isArray(ids.ids) || !ids.ids.every(id) || !(ids.checkpoint === null || n(ids.checkpoint))) {
    throw errors.badRequest('a state names its end offset, its groups\' saved state and its remembered ids')
  }
  return b as ReceivedState
}

function asMoveFailure(stream: string, err: unknown): SluiceError {
  if (err instanceof SluiceError && (err.code === 'SLUICE_ERR_MOVE_FAILED' || err.code === 'SLUICE_ERR_MOVE_REFUSED')) return err
  return errors.moveFailed(stream, err instanceof Error ? err.message : String(err))
}
