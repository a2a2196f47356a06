import { validateConfigText, type Config, type GroupConfig } from '../config/index.js'
import { errors } from '../errors.js'
import { storedRecordBytes, type AppendRecord, type LogLogger } from '../log/index.js'
import { withWrites, type DeliveryState, type JsonValue, type MetaOp, type MetaStore, type WriteOptions } from '../meta/index.js'
import { eventOfRecord, type Publisher } from '../streams/publisher.js'
import type { DeclareOptions, DefinitionsMirror } from '../streams/catalog.js'
import { KeyedSerial } from '../streams/keyed-serial.js'
import type { StreamRegistry } from '../streams/registry.js'
import type { DeadLetterSink } from './dead-letter.js'
import { ConsumerGroup, groupKeyspaces, MemberBudget, type GroupKeyspaces, type ParkedEvent } from './group.js'
import type { GroupRecord } from './cursor-state.js'

/** Groups: those the YAML declares and those created at run time (kept in the metadata store). */
export class GroupRegistry {
  readonly #groups = new Map<string, ConsumerGroup>()
  readonly #streams: StreamRegistry
  readonly #meta: MetaStore
  readonly #publisher: Publisher
  readonly #ks: GroupKeyspaces
  readonly #logger: LogLogger | undefined
  readonly #exchanges: () => Iterable<{ readonly name: string; readonly type: string }>
  readonly #maxGroups: number
  /** The configuration file's groups: never removed by a cluster's deletion of a run-time namesake. */
  readonly #configured: ReadonlySet<string>
  /** Declarations between their limit check and their group being open. */
  #declaring = 0
  /** server.limits.maxConsumers: members across every group here. */
  readonly members: MemberBudget
  /** Cluster mode: where run-time groups are claimed and released (the catalog's mirror). */
  mirror: DefinitionsMirror | undefined
  /** One declaration or deletion at a time per group name. */
  readonly #serial = new KeyedSerial()
  /**
   * Cluster mode with replicas: where the groups' metadata writes go, so they reach the stream's
   * replicas as well (set before any group opens; undefined: the store alone).
   */
  journal: GroupJournal | undefined
  /** Streams whose groups are suspended (a handover, a follower's copy): a group declared meanwhile opens closed. */
  readonly #suspended = new Set<string>()

  private constructor(config: Config, streams: StreamRegistry, meta: MetaStore, publisher: Publisher, logger?: LogLogger, exchanges?: () => Iterable<{ readonly name: string; readonly type: string }>) {
    this.#maxGroups = config.server.limits.maxGroups
    this.#configured = new Set(Object.keys(config.groups))
    this.members = new MemberBudget(config.server.limits.maxConsumers)
    this.#streams = streams
    this.#meta = meta
    this.#publisher = publisher
    this.#ks = groupKeyspaces(meta)
    this.#logger = logger
    this.#exchanges = exchanges ?? (() => Object.values(config.exchanges))
  }

  /**
   * `exchanges` lists the exchanges a group may dead-letter to: by default the YAML's; pass the
   * catalog's when exchanges are declared at run time (AMQP x-dead-letter-exchange).
   */
  static async open(
    config: Config,
    streams: StreamRegistry,
    meta: MetaStore,
    publisher: Publisher,
    logger?: LogLogger,
    exchanges?: () => Iterable<{ readonly name: string; readonly type: string }>,
  ): Promise<GroupRegistry> {
    const reg = new GroupRegistry(config, streams, meta, publisher, logger, exchanges)
    try {
      for (const g of Object.values(config.groups)) await reg.#open(g)
      for await (const { key, value } of meta.definitions.iterate({ prefix: ['group'] })) {
        const name = key[1]
        if (reg.#groups.has(name)) continue // the YAML wins over an older run-time declaration
        const result = reg.#validate(name, value)
        if (!result.ok) {
          logger?.warn({ group: name, problems: result.problems }, 'run-time group no longer valid; not started')
          continue
        }
        await reg.#open(result.config)
      }
    } catch (err) {
      // The groups already open must close before the caller closes their streams: a group
      // whose log closes under it would spin waiting on it.
      await reg.close()
      throw err
    }
    return reg
  }

  /** The events of `stream` its groups may hand out grew (its high watermark moved). */
  wake(stream: string): void {
    for (const g of this.#groups.values()) if (g.stream === stream) g.wake()
  }

  /** The lowest cursor of the groups on `stream`: below it every group has settled everything. */
  settledFloor(stream: string): number | undefined {
    let floor: number | undefined
    for (const g of this.#groups.values()) if (g.stream === stream) floor = Math.min(floor ?? Number.POSITIVE_INFINITY, g.cursor)
    return floor
  }

  get(name: string): ConsumerGroup | undefined {
    return this.#groups.get(name)
  }

  all(): ConsumerGroup[] {
    return [...this.#groups.values()]
  }

  /**
   * Publish admission for `overflow: reject-publish`: refuses events bound for a stream one of
   * whose groups they would take past its maxBacklog or maxBacklogBytes, before anything is stored.
   */
  admit(stream: string, records: readonly AppendRecord[]): void {
    let incoming: number | undefined
    for (const g of this.#groups.values()) {
      if (g.stream !== stream || g.config.overflow !== 'reject-publish') continue
      const max = g.config.maxBacklog
      if (max !== null) {
        const backlog = g.backlogWithPending
        if (backlog + records.length > max) throw errors.backlogFull(stream, g.name, backlog, max)
      }
      const maxBytes = g.config.maxBacklogBytes
      if (maxBytes !== null) {
        if (incoming === undefined) {
          incoming = 0
          for (const r of records) incoming += storedRecordBytes(r)
        }
        const bytes = g.backlogBytesWithPending
        if (bytes + incoming > maxBytes) throw errors.backlogBytesFull(stream, g.name, bytes, incoming, maxBytes)
      }
    }
  }

  /** Creates a group at run time (PUT /v1/groups/{group}); the same definition again is a no-op. */
  declare(name: string, definition: unknown, opts: DeclareOptions = {}): Promise<{ created: boolean; group: ConsumerGroup }> {
    return this.#serial.run(name, () => this.#declare(name, definition, opts))
  }

  async #declare(name: string, definition: unknown, opts: DeclareOptions): Promise<{ created: boolean; group: ConsumerGroup }> {
    let result = this.#validate(name, definition)
    if (!result.ok) throw errors.badRequest(`invalid group definition: ${result.problems.join('; ')}`, { problems: result.problems })
    const existing = this.#groups.get(name)
    if (existing !== undefined) {
      if (JSON.stringify(existing.config) !== JSON.stringify(result.config)) throw errors.groupExists(name)
      return { created: false, group: existing }
    }
    // Groups restored past a limit lowered since stay; nothing new is made until enough go.
    if (this.#groups.size + this.#declaring >= this.#maxGroups) throw errors.tooManyGroups(name, this.#maxGroups)
    this.#declaring++
    try {
      let stored = definition
      if (this.mirror !== undefined && opts.replicated !== true) {
        const held = await this.mirror.claim('group', name, definition as JsonValue)
        if (held !== undefined) {
          // Declared on another node first: the same group, or a conflict, as on one node.
          const theirs = this.#validate(name, held)
          if (!theirs.ok || JSON.stringify(theirs.config) !== JSON.stringify(result.config)) throw errors.groupExists(name)
          result = theirs
          stored = held
        }
      }
      await this.#meta.definitions.put(['group', name], stored as JsonValue, { sync: true })
      return { created: true, group: await this.#open(result.config) }
    } finally {
      this.#declaring--
    }
  }

  /**
   * Validates a group definition with the configuration's own rules, against the streams and
   * exchanges that exist, so a run-time group obeys exactly what a YAML one would.
   */
  #validate(name: string, definition: unknown): { ok: true; config: GroupConfig } | { ok: false; problems: readonly string[] } {
    const streams = this.#streams.all()
    const doc = {
      // The counts are the catalog's and declare's to check; this document lists every stream
      // only so references resolve, and must not fail a file's maxStreams for it.
      server: { limits: { maxStreams: Math.max(1, streams.length) } },
      exchanges: Object.fromEntries([...this.#exchanges()].map((e) => [e.name, { type: e.type }])),
      streams: Object.fromEntries(streams.map((s) => [s.name, {}])),
      groups: { [name]: definition },
    }
    const result = validateConfigText(JSON.stringify(doc, null, 1), { env: {} })
    if (!result.ok) return { ok: false, problems: result.problems.map((p) => p.replace(/ \(line \d+, col \d+\)/, '')) }
    return { ok: true, config: result.config.groups[name]! }
  }

  async #open(config: GroupConfig): Promise<ConsumerGroup> {
    const stream = this.#streams.get(config.stream)
    if (stream === undefined) throw errors.unknownStream(config.stream)
    // Cluster mode with replicas: events are handed out only up to the stream's visible end.
    const visibleEnd = (): number => this.#streams.visibility?.end(config.stream) ?? Number.POSITIVE_INFINITY
    const group = await ConsumerGroup.open(config, { stream, meta: this.#metaFor(config.stream), keyspaces: this.#ks, deadLetter: this.#sink(config), logger: this.#logger, members: this.members, visibleEnd })
    this.#groups.set(config.name, group)
    if (this.#suspended.has(config.stream)) await group.handOff()
    return group
  }

  /** The store as a group of `stream` writes it: through the journal when there is one. */
  #metaFor(stream: string): MetaStore {
    const inner = this.#meta
    return withWrites(inner, (ops, opts) => {
      const j = this.journal
      return j === undefined ? inner.write(ops, opts) : j.write(stream, ops, opts ?? {})
    })
  }

  #sink(config: GroupConfig): DeadLetterSink | undefined {
    const dl = config.deadLetter
    if (dl === null) return undefined
    const publisher = this.#publisher
    if (dl.kind === 'stream') {
      if (this.#streams.get(dl.stream) === undefined) throw errors.unknownStream(dl.stream)
      const stream = dl.stream
      // Through the publish path, not straight into the log: in a cluster the dead-letter stream
      // may live on another node. Each record keeps the exchange it came through (redrive routes
      // back by it), so consecutive records of one exchange go as one request, in order.
      return {
        deadLetter: async (records: readonly AppendRecord[]) => {
          for (let i = 0; i < records.length; ) {
            const exchange = records[i]!.exchange ?? ''
            let j = i + 1
            while (j < records.length && (records[j]!.exchange ?? '') === exchange) j++
            await publisher.publish({ exchange, stream, internal: true, events: records.slice(i, j).map(eventOfRecord) })
            i = j
          }
        },
      }
    }
    return {
      deadLetter: async (records: readonly AppendRecord[], values: readonly unknown[]) => {
        await publisher.publish({
          exchange: dl.exchange,
          internal: true,
          events: records.map((r, i) => ({
            body: Buffer.from(r.body),
            value: values[i],
            json: r.json === true,
            routingKey: r.key,
            headers: r.headers === undefined ? undefined : (JSON.parse(Buffer.from(r.headers).toString('utf8')) as Record<string, unknown>),
            id: r.id,
            timestamp: r.timestamp,
          })),
        })
      },
    }
  }

  /** Whether the configuration file declares the group. */
  isConfigured(name: string): boolean {
    return this.#configured.has(name)
  }

  /** Deletes a group (AMQP queue.delete): its state and definition go with it. */
  delete(name: string, opts: DeclareOptions = {}): Promise<boolean> {
    return this.#serial.run(name, () => this.#delete(name, opts))
  }

  async #delete(name: string, opts: DeclareOptions): Promise<boolean> {
    const g = this.#groups.get(name)
    if (g === undefined) return false
    if (this.mirror !== undefined && opts.replicated !== true) await this.mirror.release('group', name)
    this.#groups.delete(name)
    await g.close()
    await g.purgeState()
    await this.#meta.definitions.del(['group', name], { sync: true })
    return true
  }

  async close(): Promise<void> {
    await Promise.all([...this.#groups.values()].map((g) => g.close()))
  }

  // ---- handover of a stream to another node (cluster move) ----------------------------------------

  /**
   * Closes the groups reading `stream` for a handover (ConsumerGroup.handOff): until `resume`,
   * each answers 503 group_closed, which clients retry. Returns their names.
   */
  async suspend(stream: string): Promise<string[]> {
    this.#suspended.add(stream)
    const names = [...this.#groups.values()].filter((g) => g.stream === stream).map((g) => g.name)
    await Promise.all(names.map((n) => this.#serial.run(n, () => this.#groups.get(n)!.handOff())))
    await this.#meta.drained()
    return names
  }

  /** Opens the groups of `stream` again from what the metadata store holds now. */
  async resume(stream: string): Promise<void> {
    this.#suspended.delete(stream)
    for (const g of [...this.#groups.values()]) {
      if (g.stream !== stream) continue
      await this.#serial.run(g.name, async () => {
        if (this.#groups.get(g.name) === g && g.closed) await this.#open(g.config)
      })
    }
  }

  /**
   * Before the (suspended) groups of `stream` open on a node that takes over as its leader: any
   * event below `end` may have been delivered by the old leader, whose delivered mark may not have
   * reached this node, so each shows as redelivered when it goes out again.
   */
  async assumeDelivered(stream: string, end: number): Promise<void> {
    const ops: MetaOp[] = []
    for (const g of this.#groups.values()) {
      if (g.stream !== stream) continue
      const rec = await this.#ks.record.get([g.name])
      if (rec !== undefined && rec.delivered < end) ops.push(this.#ks.record.putOp([g.name], { ...rec, delivered: end }))
    }
    if (ops.length > 0) await this.#meta.write(ops, { sync: true })
  }

  /** The saved state of the (suspended) groups of `stream`, as another node imports it. */
  async exportState(stream: string): Promise<GroupState[]> {
    const out: GroupState[] = []
    const ks = this.#ks
    for (const g of this.#groups.values()) {
      if (g.stream !== stream) continue
      const record = await ks.record.get([g.name])
      if (record === undefined) continue
      const settled: Array<[number, number]> = []
      for await (const { key, value } of ks.settled.iterate({ prefix: [g.name] })) settled.push([key[1], value.end])
      const deliveries: Array<[number, DeliveryState]> = []
      for await (const { key, value } of ks.deliveries.iterate({ prefix: [g.name] })) deliveries.push([key[1], value])
      const parked: ParkedEvent[] = []
      for await (const { value } of ks.parked.iterate({ prefix: [g.name] })) parked.push(value)
      out.push({ name: g.name, record, settled, deliveries, parked })
    }
    return out
  }

  /**
   * Replaces the saved state of the (suspended) groups of `stream` with `states` (what the node
   * handing it over exported); a group of the stream not among them starts afresh at `resume`.
   */
  async replaceState(stream: string, states: readonly GroupState[]): Promise<void> {
    const ks = this.#ks
    const byName = new Map(states.map((st) => [st.name, st]))
    for (const g of this.#groups.values()) {
      if (g.stream !== stream) continue
      await g.purgeState()
      const st = byName.get(g.name)
      if (st === undefined) continue
      const ops: MetaOp[] = [ks.record.putOp([g.name], st.record)]
      for (const [start, end] of st.settled) ops.push(ks.settled.putOp([g.name, start], { end }))
      for (const [offset, d] of st.deliveries) ops.push(ks.deliveries.putOp([g.name, offset], d))
      for (const p of st.parked) ops.push(ks.parked.putOp([g.name, p.offset], p))
      await this.#meta.write(ops, { sync: true })
    }
  }
}

/**
 * Where groups' metadata writes go in cluster mode with replicas: stored here and carried to the
 * stream's replicas; a synced write resolves once enough of them hold it (an ack answered after).
 */
export interface GroupJournal {
  write(stream: string, ops: readonly MetaOp[], opts: WriteOptions): Promise<void>
}

/** A group's saved state as one node hands it to another: every key it has in the metadata store. */
export interface GroupState {
  readonly name: string
  readonly record: GroupRecord
  /** Settled ranges above the cursor: [start, end). */
  readonly settled: ReadonlyArray<readonly [number, number]>
  readonly deliveries: ReadonlyArray<readonly [number, DeliveryState]>
  readonly parked: readonly ParkedEvent[]
}
