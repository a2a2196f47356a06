// Moving a stream to another node (`sluice cluster move`, docs/cluster.md "Moving a stream"). The
// controller runs it, the stream's home hands the stream over, and the new node receives it:
//
//  1. The controller reads the placement and its revision, and asks the home to hand over.
//  2. The home holds publishes to the stream (they wait, they do not fail), closes its groups on
//     it (consumers are cancelled; what they held goes back as delivered), and sends the target
//     the log's batches as stored, then the groups' saved state and the remembered ids. The
//     target holds its own publishes to the stream and closes its groups too, starts its copy
//     empty at the home's first offset, and appends each batch after checking its CRC and offset,
//     durably before it answers.
//  3. The controller switches the placement to the target at epoch + 1, in a transaction that
//     passes only while it still holds the controller key at its epoch and the placement is still
//     at the revision it read.
//  4. Each end finishes when its own view shows the outcome: the new home opens its groups and
//     lets its held publishes in; the old one empties its copy and sends its held publishes to the
//     new home. A move called off (an error, the timeout) changes nothing: the controller writes
//     the placement again unchanged, so a switch still in flight cannot land, and both ends let
//     their publishes go on where the stream was. A controller that dies mid-way calls it off too,
//     since its switch can no longer pass.

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
  readonly since: number
  timer: NodeJS.Timeout | undefined
  ending: Promise<void> | undefined
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
      let handed: HandoffAnswer
      try {
        const answer = await this.#call(source, `/internal/v1/streams/${encodeURIComponent(stream)}/handoff`, { to, controllerEpoch: epoch }, timeoutMs, (why) => errors.moveFailed(stream, `its home node ${from} could not be reached (${why})`))
        handed = JSON.parse(answer.toString('utf8')) as HandoffAnswer
        if (performance.now() - t0 > timeoutMs) throw errors.moveFailed(stream, `it took longer than cluster.replication.moveTimeout (${timeoutMs} ms)`)
      } catch (err) {
        await this.#callOff(stream, cur, epoch, [source, target])
        throw asMoveFailure(stream, err)
      }
      const next: PlacementRecord = { node: to, epoch: cur.record.epoch + 1, controllerEpoch: epoch, since: new Date().toISOString() }
      const written = await node.writePlacement(stream, cur.modRevision, next).catch(() => undefined)
      if (written === undefined && (await this.#callOff(stream, cur, epoch, [source, target])) === 'off') {
        throw errors.moveFailed(stream, 'its placement changed while it was copied, or this node stopped being the controller')
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
   * Calls a move off: the placement written again unchanged, guarded like the switch, so a switch
   * still in flight cannot land after it. Returns 'moved' when the switch landed after all.
   */
  async #callOff(stream: string, cur: { readonly record: PlacementRecord; readonly modRevision: number }, controllerEpoch: number, ends: readonly PeerAddressOf[]): Promise<HandoverOutcome> {
    const node = this.#o.node
    const rewritten = await node.writePlacement(stream, cur.modRevision, cur.record).catch(() => undefined)
    if (rewritten === undefined) {
      // Either the switch landed, or etcd did not answer: the ends then decide from their views
      // (or at their deadline from etcd), never from this.
      const now = await node.readPlacement(stream).catch(() => undefined)
      if (now !== undefined && now.record.node !== cur.record.node && now.record.epoch === cur.record.epoch + 1) return 'moved'
      return 'off'
    }
    for (const end of ends) {
      void this.#call(end, `/internal/v1/streams/${encodeURIComponent(stream)}/end`, { outcome: 'off', controllerEpoch }, 10_000, (why) => errors.moveFailed(stream, why)).catch((err: unknown) =>
        this.#log.warn({ err, stream, node: end.id }, 'could not tell a node the move was called off; it finds out at its deadline'),
      )
    }
    return 'off'
  }

  // ---- the internal port -------------------------------------------------------------------------

  /** One request on the internal port; resolves with the JSON answer. */
  async handle(route: MoveRoute, stream: string, phase: string, body: Buffer): Promise<unknown> {
    switch (route) {
      case 'move': {
        const b = json<{ stream?: unknown; to?: unknown }>(body)
        if (typeof b.stream !== 'string' || typeof b.to !== 'string') throw errors.badRequest('a move names its stream and target node')
        return this.move(b.stream, b.to)
      }
      case 'handoff': {
        const b = json<{ to?: unknown; controllerEpoch?: unknown }>(body)
        if (typeof b.to !== 'string' || typeof b.controllerEpoch !== 'number') throw errors.badRequest('a handoff names its target node and controller epoch')
        return this.#handOff(stream, b.to, b.controllerEpoch)
      }
      case 'receive':
        return this.#receive(stream, phase, body)
      case 'end': {
        const h = this.#handovers.get(stream)
        const b = json<{ outcome?: unknown; controllerEpoch?: unknown }>(body)
        // Only "off" is ever said: "moved" is read from the view, which is what routes publishes.
        if (h !== undefined && b.outcome === 'off' && b.controllerEpoch === h.controllerEpoch) await this.#end(h, 'off')
        return {}
      }
    }
  }

  async #handOff(stream: string, to: string, controllerEpoch: number): Promise<HandoffAnswer> {
    const node = this.#o.node
    const self = this.#o.config.nodeId
    if (!node.reach(stream).here || node.placement(stream)?.node !== self) throw errors.moveRefused(stream, `it does not live on node ${self}`)
    const target = node.nodeRecord(to)
    if (target === undefined) throw errors.moveRefused(stream, `node ${to} holds no lease`)
    const s = this.#o.streams.get(stream)
    if (s === undefined) throw errors.unknownStream(stream)
    const h = this.#begin('source', stream, to, controllerEpoch)
    try {
      await this.#o.publisher.hold(stream)
      const groups = await this.#o.groups.suspend(stream)
      const log = s.log
      const base = log.startOffset
      const end = log.endOffset
      const path = (phase: string): string => `/internal/v1/streams/${encodeURIComponent(stream)}/receive?phase=${phase}`
      const fail = (why: string): SluiceError => errors.moveFailed(stream, `the target node ${to} could not be reached (${why})`)
      const timeout = this.#o.config.replication.forwardTimeoutMs
      await this.#call(target, path('begin'), { base, from: self, controllerEpoch }, timeout, fail)
      let bytes = 0
      const chunk = Math.min(chunkBytesMax, Math.floor(this.#o.config.replication.maxBodyBytes / 2))
      for (let from = base; from < end; ) {
        const { batches, nextOffset } = await log.readBatches(from, chunk)
        if (batches.length === 0) throw new Error(`the log read nothing at offset ${from}, below its end ${end}`)
        const payload = Buffer.concat(batches)
        bytes += payload.length
        await this.#call(target, path('batches'), payload, timeout, fail)
        from = nextOffset
      }
      const state: ReceivedState = { end, groups: await this.#o.groups.exportState(stream), ids: await this.#o.publisher.exportIds(stream) }
      await this.#call(target, path('state'), state, timeout, fail)
      this.counters.events += end - base
      this.#log.info({ stream, to, events: end - base, bytes, groups: groups.length }, 'stream copied to its new node; waiting for the placement to switch')
      return { events: end - base, bytes, groups: groups.length, ids: state.ids.ids.length }
    } catch (err) {
      void this.#call(target, `/internal/v1/streams/${encodeURIComponent(stream)}/end`, { outcome: 'off', controllerEpoch }, 10_000, (why) => errors.moveFailed(stream, why)).catch(() => undefined)
      await this.#end(h, 'off')
      throw err
    }
  }

  async #receive(stream: string, phase: string, body: Buffer): Promise<unknown> {
    const s = this.#o.streams.get(stream)
    if (s === undefined) throw errors.unknownStream(stream)
    if (phase === 'begin') {
      const b = json<{ base?: unknown; from?: unknown; controllerEpoch?: unknown }>(body)
      if (typeof b.base !== 'number' || typeof b.from !== 'string' || typeof b.controllerEpoch !== 'number') throw errors.badRequest('a receive names its base offset, source node and controller epoch')
      if (this.#o.node.placement(stream)?.node === this.#o.config.nodeId) throw errors.moveRefused(stream, 'it already lives here')
      if (this.#handovers.has(stream)) throw errors.moveRefused(stream, 'a handover of it is under way here')
      this.#begin('target', stream, b.from, b.controllerEpoch)
      await this.#o.publisher.hold(stream)
      await this.#o.groups.suspend(stream)
      await s.log.reset(b.base)
      return {}
    }
    const h = this.#handovers.get(stream)
    if (h?.role !== 'target' || h.ending !== undefined) throw errors.moveFailed(stream, 'no handover of it is under way here')
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
      const b = json<ReceivedState>(body)
      if (!Array.isArray(b.groups) || typeof b.ids !== 'object' || b.ids === null || !Array.isArray(b.ids.ids)) throw errors.badRequest('a state names its groups and ids')
      if (s.log.endOffset !== b.end) throw errors.moveFailed(stream, `the copy ends at ${s.log.endOffset}, not at ${b.end}`)
      await this.#o.groups.replaceState(stream, b.groups)
      await this.#o.publisher.replaceIds(stream, b.ids)
      return {}
    }
    throw errors.badRequest(`unknown receive phase "${phase}"`)
  }

  #begin(role: 'source' | 'target', stream: string, peer: string, controllerEpoch: number): Handover {
    if (this.#handovers.has(stream)) throw errors.moveRefused(stream, 'a handover of it is under way here')
    const h: Handover = { role, stream, peer, controllerEpoch, since: performance.now(), timer: undefined, ending: undefined }
    this.#handovers.set(stream, h)
    this.#armDeadline(h)
    return h
  }

  /**
   * Past the longest a move may take (and its last etcd request), no switch can land any more:
   * etcd says how it ended. Unreachable, the node asks again a second later.
   */
  #armDeadline(h: Handover, ms = this.#o.config.replication.moveTimeoutMs + this.#o.config.etcd.requestTimeoutMs + 5000): void {
    h.timer = setTimeout(() => {
      void this.#o.node.readPlacement(h.stream).then(
        (p) => {
          const dest = h.role === 'source' ? h.peer : this.#o.config.nodeId
          // Moved: finished once the view shows it (onView), which is what routes publishes.
          if (p?.record.node === dest) this.onView()
          else void this.#end(h, 'off')
        },
        () => this.#armDeadline(h, 1000),
      )
    }, ms)
    h.timer.unref()
  }

  /** Called on every change of the view: a handover ends when the view shows how. */
  onView(): void {
    const node = this.#o.node
    for (const h of this.#handovers.values()) {
      if (h.ending !== undefined) continue
      const dest = h.role === 'source' ? h.peer : this.#o.config.nodeId
      if (node.viewReady && node.placement(h.stream)?.node === dest) void this.#end(h, 'moved')
      // The controller that ran it is gone before its switch showed: the switch can no longer pass.
      else if (node.viewReady && node.viewControllerEpoch !== h.controllerEpoch) void this.#end(h, 'off')
    }
  }

  /** Ends a handover here, once: the groups open again and the held publishes go on. */
  #end(h: Handover, outcome: HandoverOutcome): Promise<void> {
    h.ending ??= (async () => {
      clearTimeout(h.timer)
      const { stream } = h
      const s = this.#o.streams.get(stream)
      // A copy this node no longer serves is emptied: the old home's after a move, the target's
      // partial one after a move called off.
      const drop = (h.role === 'source') === (outcome === 'moved')
      try {
        if (drop && s !== undefined) {
          await s.log.reset(h.role === 'source' ? s.log.endOffset : 0)
          await this.#o.groups.replaceState(stream, [])
          await this.#o.publisher.replaceIds(stream, { ids: [], checkpoint: null })
        }
        await this.#o.groups.resume(stream)
      } catch (err) {
        this.#log.error({ err, stream, role: h.role, outcome }, 'ending a handover failed; the groups of the stream may stay closed until a restart')
      } finally {
        this.#handovers.delete(stream)
        this.#o.publisher.release(stream)
        this.#log.info({ stream, role: h.role, peer: h.peer, outcome, ms: Math.round(performance.now() - h.since) }, outcome === 'moved' ? 'handover ended: moved' : 'handover called off')
      }
    })()
    return h.ending
  }

  stop(): void {
    for (const h of this.#handovers.values()) clearTimeout(h.timer)
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

function asMoveFailure(stream: string, err: unknown): SluiceError {
  if (err instanceof SluiceError && (err.code === 'SLUICE_ERR_MOVE_FAILED' || err.code === 'SLUICE_ERR_MOVE_REFUSED')) return err
  return errors.moveFailed(stream, err instanceof Error ? err.message : String(err))
}
