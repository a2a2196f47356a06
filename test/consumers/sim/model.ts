import type { DeathReason, TagStatus } from '../../../src/consumers/index.js'
import type { SimConfig } from './scenario.js'

/** An invariant the group broke; the driver prints it with the steps that led there. */
export class SimFailure extends Error {
  override readonly name = 'SimFailure'
}

/**
 * Departures from the documented contract that today's group is known to make, each recognised
 * by its exact signature. A run counts each it meets and goes on, or stops there when the model
 * cannot follow what the group does next (the seed passes, its remaining steps unchecked), unless
 * the issue is named in the strict set (SIM_STRICT=name,… or SIM_STRICT=all): then it fails like
 * any other broken invariant. Remove an entry once the group is fixed.
 */
export const knownIssues = {
  'parked-redelivered': 'a parked event whose earlier nack or ack timeout left a retry due time in the store is delivered again after the group reopens',
  'queued-expired-delivered': 'round-robin: an event waiting in a member queue is delivered after it expired, instead of dead-lettered',
  'queued-order': 'round-robin: events given back from the queues of members that left go to the head of the ready queue member by member, so first deliveries leave offset order',
  'overflow-parks': 'without a dead-letter target, events parked by overflow still count in the backlog, so every dispatch parks more: once the parked alone pass maxBacklog, each new event is parked on arrival and nothing is delivered',
  'count-repeat': 'after the group reopens, an event delivered since its last nack or ack timeout comes back with the same delivery count (counts are stored only at a failure), so maxDeliveries lets crashes add deliveries',
  'tag-reused': 'a tag issued before the group reopened (after a crash or a tail cut) acks a later delivery that got the same generation-offset-count tag',
} as const satisfies Record<string, string>
export type KnownIssue = keyof typeof knownIssues

/** A known issue met: the run stops here (see knownIssues). */
export class KnownIssueHit extends Error {
  override readonly name = 'KnownIssueHit'
  constructor(
    readonly issue: KnownIssue,
    message: string,
  ) {
    super(message)
  }
}

/** A delivery as the simulation saw it. */
export interface SeenDelivery {
  readonly tag: string
  readonly offset: number
  readonly count: number
  readonly redelivered: boolean
  readonly id: string | undefined
  readonly body: string
}

/** A death as seen at the target: a dead-letter record, or an event parked in the group. */
export interface SeenDeath {
  readonly id: string | undefined
  readonly reason: string
  /** The dead letter's own fields, checked against the event; parked events have none. */
  readonly body?: string | undefined
  readonly group?: unknown
  readonly stream?: unknown
  /** x-death entries, and the count of the latest: one death each, as nothing here redrives. */
  readonly entries?: number
  readonly count?: unknown
}

type Fate = 'acked' | 'dead' | 'parked' | 'purged'

interface Ev {
  readonly id: string
  readonly offset: number
  readonly body: string
  /** When it expires for the group: its own TTL or the group's messageTtl, the earlier. */
  readonly expiresAt: number
  fate: Fate | undefined
  /** A death the group must have made by the end of the current step. */
  expectDeath: DeathReason | undefined
  /**
   * Held at maxDeliveries when the group reopened: that delivery failed with nobody to say so,
   * and the group dead-letters it (delivery_limit) when it next comes up for dispatch.
   */
  diesAtDispatch: boolean
  delivered: boolean
  /** Highest delivery count seen, and in which opening of the group. */
  maxCount: number
  countIncarnation: number
  /** Parked and put back: its delivery count starts again. */
  redriven: boolean
  /** A failed delivery left a retry due time in the store that no settlement has removed yet. */
  retryStored: boolean
  /** Parked with a retry due time stored when the group reopened: the reopened group schedules it. */
  ghostRetry: boolean
}

interface Held {
  readonly tag: string
  readonly offset: number
  readonly count: number
  readonly member: string
  deadline: number
}

interface StaleTag {
  readonly tag: string
  /** Issued before a crash, restart or tail cut that the group reopened from. */
  readonly beforeReopen: boolean
}

const settledFates: ReadonlySet<Fate | undefined> = new Set<Fate | undefined>(['acked', 'dead', 'purged'])
const staleKept = 64

/**
 * What the group must do, kept as simply as it can be said: the events stored (by offset, with
 * their ids), which are settled and how, which tags are held by whom until when, and the members'
 * last activity. Every answer of the group is checked against it, and after every step the
 * group's counters must agree with it.
 */
export class Model {
  readonly config: SimConfig
  readonly strict: ReadonlySet<string>
  /** Known issues met and gone past, with how often. */
  readonly tolerated = new Map<KnownIssue, number>()
  end = 0
  incarnation = 0
  readonly #events = new Map<number, Ev>()
  readonly #byId = new Map<string, Ev>()
  readonly #held = new Map<string, Held>()
  readonly #stale: StaleTag[] = []
  /** Members and when each was last seen, as the group counts it (fetch, ack, nack, extend). */
  readonly #members = new Map<string, number>()
  #sweepBase = 0
  /** One past the highest offset ever delivered: the group's durable delivered mark. */
  #deliveredMark = 0
  /** The delivered mark at the last reopen: unsettled events below it come back as redelivered. */
  #seenMark = 0
  deliveries = 0

  constructor(config: SimConfig, strict: ReadonlySet<string>, openedAt: number) {
    this.config = config
    this.strict = strict
    this.#sweepBase = openedAt
  }

  fail(message: string): never {
    throw new SimFailure(message)
  }

  /** A known issue met: fails in a strict run, else counted; `stop` when the model cannot go on. */
  known(issue: KnownIssue, message: string, stop = false): void {
    if (this.strict.has(issue) || this.strict.has('all')) this.fail(`${message} [known issue ${issue}]`)
    this.tolerated.set(issue, (this.tolerated.get(issue) ?? 0) + 1)
    if (stop) throw new KnownIssueHit(issue, message)
  }

  // ---- what the steps do ------------------------------------------------------------------------

  stored(events: ReadonlyArray<{ offset: number; id: string; body: string; expiresAt: number }>): void {
    for (const e of events) {
      if (e.offset !== this.end) this.fail(`append stored ${e.id} at offset ${e.offset}, expected ${this.end}`)
      const ev: Ev = { ...e, fate: undefined, expectDeath: undefined, diesAtDispatch: false, delivered: false, maxCount: 0, countIncarnation: this.incarnation, redriven: false, retryStored: false, ghostRetry: false }
      this.#events.set(e.offset, ev)
      this.#byId.set(e.id, ev)
      this.end = e.offset + 1
    }
  }

  /** Tags held now, in offset order: steps pick from this list by position. */
  heldTags(): string[] {
    return [...this.#held.values()].sort((a, b) => a.offset - b.offset).map((h) => h.tag)
  }

  staleTags(): readonly StaleTag[] {
    return this.#stale
  }

  get parkedOffsets(): number[] {
    return [...this.#events.values()].filter((e) => e.fate === 'parked').map((e) => e.offset)
  }

  unsettled(): number[] {
    return [...this.#events.values()].filter((e) => e.fate === undefined).map((e) => e.offset)
  }

  beforeFetch(member: string, now: number): void {
    this.#members.set(member, now)
  }

  afterFetch(member: string, max: number, got: readonly SeenDelivery[], now: number): void {
    const c = this.config
    if (got.length > max) this.fail(`fetch of max ${max} answered ${got.length}`)
    const offsets = new Set<number>()
    let lastFirst = -1
    for (const d of got) {
      const where = `delivery ${d.tag} (offset ${d.offset}, count ${d.count}, redelivered ${d.redelivered})`
      const ev = this.#events.get(d.offset)
      if (ev === undefined) this.fail(`${where}: the log holds no event there (end ${this.end})`)
      if (d.id !== ev.id || d.body !== ev.body) this.fail(`${where}: carries ${d.id} ${d.body}, the log holds ${ev.id} ${ev.body}`)
      // The stray retry of a parked event is a second copy in the ready queue: besides a delivery
      // of a parked (or purged) event, it shows as a double one once the event is redriven.
      if (ev.ghostRetry && (ev.fate !== undefined || offsets.has(d.offset) || [...this.#held.values()].some((h) => h.offset === d.offset))) {
        this.known('parked-redelivered', `${where}: delivered ${ev.fate === undefined ? 'twice' : `though ${ev.fate}`} (parked with a retry due when the group reopened)`, true)
      }
      if (offsets.has(d.offset)) this.fail(`${where}: offset twice in one fetch`)
      offsets.add(d.offset)
      if (ev.fate === 'acked') this.fail(`${where}: delivered again after its ack was answered`)
      if (ev.fate !== undefined) this.fail(`${where}: delivered though ${ev.fate}`)
      if (ev.expectDeath !== undefined) this.fail(`${where}: delivered though due to be dead-lettered (${ev.expectDeath})`)
      const holder = [...this.#held.values()].find((h) => h.offset === d.offset)
      if (holder !== undefined) this.fail(`${where}: delivered while ${holder.member} still holds ${holder.tag}`)
      if (ev.expiresAt <= now) {
        const message = `${where}: delivered ${now - ev.expiresAt} ms after it expired`
        if (c.dispatch === 'round-robin') this.known('queued-expired-delivered', message)
        else this.fail(message)
      }
      if (c.maxDeliveries > 0 && d.count > c.maxDeliveries) this.fail(`${where}: count over maxDeliveries ${c.maxDeliveries}`)
      if (d.count < 1) this.fail(`${where}: count below 1`)
      if (d.count <= ev.maxCount) {
        const message = `${where}: count did not grow (was ${ev.maxCount})`
        if (ev.countIncarnation !== this.incarnation && d.count === ev.maxCount) this.known('count-repeat', message)
        else this.fail(message)
      }
      if (ev.delivered && !d.redelivered) this.fail(`${where}: delivered before, yet not flagged redelivered`)
      if (!ev.delivered && d.redelivered && d.offset >= this.#seenMark && !ev.redriven) this.fail(`${where}: first delivery flagged redelivered`)
      if (!d.redelivered) {
        if (d.offset < lastFirst) {
          const message = `${where}: first deliveries out of offset order in one fetch (after ${lastFirst})`
          if (c.dispatch === 'round-robin') this.known('queued-order', message)
          else this.fail(message)
        }
        lastFirst = d.offset
      }
      if (this.#held.has(d.tag)) this.fail(`${where}: tag already held`)
      ev.delivered = true
      ev.maxCount = d.count
      ev.countIncarnation = this.incarnation
      this.#deliveredMark = Math.max(this.#deliveredMark, d.offset + 1)
      this.deliveries++
      if (c.ackMode === 'auto') ev.fate = 'acked'
      else this.#held.set(d.tag, { tag: d.tag, offset: d.offset, count: d.count, member, deadline: now + c.ackTimeoutMs })
    }
    if (got.length === 0) this.#checkNothingReady(member, now)
    this.#members.set(member, now)
    if (c.ackMode === 'manual') {
      const mine = [...this.#held.values()].filter((h) => h.member === member).length
      if (mine > c.prefetch) this.fail(`${member} holds ${mine}, over prefetch ${c.prefetch}`)
    }
  }

  /**
   * An empty answer in fair mode while an event never delivered waits, unexpired, and the member
   * has credit: the group is stuck. (Round-robin may have queued it for another member, and
   * overflow may be dead-lettering it, so those are left to the drain at the end.)
   */
  #checkNothingReady(member: string, now: number): void {
    const c = this.config
    if (c.dispatch !== 'fair' || c.maxBacklog !== null) return
    if (c.ackMode === 'manual' && [...this.#held.values()].filter((h) => h.member === member).length >= c.prefetch) return
    for (const ev of this.#events.values()) {
      if (ev.fate !== undefined || ev.delivered || ev.retryStored || ev.expectDeath !== undefined || ev.expiresAt <= now) continue
      this.fail(`fetch by ${member} answered nothing while ${ev.id} at offset ${ev.offset} waits, never delivered`)
    }
  }

  /** What the group must answer for `tag` now. */
  expectStatus(tag: string, usedBefore = false): TagStatus {
    if (this.#held.has(tag)) {
      if (usedBefore && this.#stale.some((s) => s.tag === tag && s.beforeReopen)) this.known('tag-reused', `tag ${tag} from before the group reopened names a delivery made since`)
      return 'ok'
    }
    const offset = Number(tag.split('-')[1])
    const ev = this.#events.get(offset)
    if (ev !== undefined && settledFates.has(ev.fate)) return 'already_settled'
    return offset >= this.end ? 'unknown_tag' : 'stale_tag'
  }

  /** Checks the answer to an ack, nack or extend and applies it; `staleTags`: tags a consumer kept from earlier deliveries. */
  settled(kind: 'ack' | 'nack' | 'extend', tags: readonly string[], results: ReadonlyArray<{ tag: string; status: TagStatus }>, now: number, opts: { requeue?: boolean; staleTags?: boolean } = {}): void {
    const requeue = opts.requeue ?? true
    if (results.length !== tags.length) this.fail(`${kind} of ${tags.length} tags answered ${results.length} results`)
    const expected = tags.map((t) => this.expectStatus(t, opts.staleTags))
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i]!
      const r = results[i]!
      if (r.tag !== tag) this.fail(`${kind}: result ${i} names ${r.tag}, not ${tag}`)
      if (r.status !== expected[i]) this.fail(`${kind} ${tag}: answered ${r.status}, expected ${expected[i]}`)
      if (r.status !== 'ok') continue
      const h = this.#held.get(tag)!
      const ev = this.#events.get(h.offset)!
      this.#members.set(h.member, now)
      if (kind === 'extend') {
        h.deadline = now + this.config.ackTimeoutMs
        continue
      }
      this.#release(h)
      if (kind === 'ack') {
        ev.fate = 'acked'
        ev.retryStored = false
      } else if (!requeue) ev.expectDeath = 'rejected'
      else if (this.#atLimit(h.count)) ev.expectDeath = 'delivery_limit'
      else ev.retryStored = true
    }
  }

  #atLimit(count: number): boolean {
    return this.config.maxDeliveries > 0 && count >= this.config.maxDeliveries
  }

  #release(h: Held, beforeReopen = false): void {
    this.#held.delete(h.tag)
    this.#stale.push({ tag: h.tag, beforeReopen })
    if (this.#stale.length > staleKept) this.#stale.shift()
  }

  /**
   * Time moves from `from` to `to`: deliveries past their ack deadline go back, and members not
   * seen for sessionTimeout at a sweep (every second from the group's opening) are gone with what
   * they held. Either way the delivery failed, and at maxDeliveries the event is dead-lettered.
   */
  advance(to: number): void {
    const gone = new Map<string, number>()
    for (const [name, lastSeen] of this.#members) {
      const due = lastSeen + this.config.sessionTimeoutMs
      const tick = this.#sweepBase + 1000 * Math.max(1, Math.ceil((due - this.#sweepBase) / 1000))
      if (tick <= to) gone.set(name, tick)
    }
    for (const h of [...this.#held.values()].sort((a, b) => a.offset - b.offset)) {
      if (h.deadline > to && !gone.has(h.member)) continue
      this.#release(h)
      const ev = this.#events.get(h.offset)!
      if (this.#atLimit(h.count)) ev.expectDeath = 'delivery_limit'
      else ev.retryStored = true
    }
    for (const name of gone.keys()) this.#members.delete(name)
  }

  /** The group was closed (cleanly or not) and opened again from disk at `now`. */
  reopened(now: number): void {
    for (const h of [...this.#held.values()]) {
      this.#release(h, true)
      // A tail cut may have taken the event with it.
      const ev = this.#events.get(h.offset)
      if (ev !== undefined && this.#atLimit(h.count)) ev.diesAtDispatch = true
    }
    for (const s of this.#stale.splice(0)) this.#stale.push({ tag: s.tag, beforeReopen: true })
    this.#members.clear()
    for (const ev of this.#events.values()) if (ev.fate === 'parked' && ev.retryStored) ev.ghostRetry = true
    this.incarnation++
    this.#sweepBase = now
    this.#seenMark = this.#deliveredMark
  }

  /** The log's tail was cut: events at or past `newEnd` are gone, and their offsets will be reused. */
  cut(newEnd: number): void {
    if (newEnd > this.end) this.fail(`cut left the log at ${newEnd}, past its end ${this.end}`)
    for (let o = newEnd; o < this.end; o++) {
      const ev = this.#events.get(o)!
      this.#events.delete(o)
      this.#byId.delete(ev.id)
    }
    this.end = newEnd
    this.#deliveredMark = Math.min(this.#deliveredMark, newEnd)
  }

  /** Deaths seen at the target since the last step. */
  died(deaths: readonly SeenDeath[], now: number): void {
    for (const d of deaths) {
      const ev = d.id === undefined ? undefined : this.#byId.get(d.id)
      const what = `death of ${d.id} (${d.reason})`
      if (ev === undefined) this.fail(`${what}: no such event in the log`)
      if (ev.fate === 'acked') this.fail(`${what}: the event was acked`)
      if (ev.fate !== undefined) this.fail(`${what}: the event was already ${ev.fate}; one death, one dead letter`)
      const holder = [...this.#held.values()].find((h) => h.offset === ev.offset)
      if (holder !== undefined) this.fail(`${what}: ${holder.member} still holds it (${holder.tag})`)
      if (ev.expectDeath !== undefined) {
        if (d.reason !== ev.expectDeath) this.fail(`${what}: expected reason ${ev.expectDeath}`)
      } else if (d.reason === 'expired') {
        if (ev.expiresAt > now) this.fail(`${what}: expires only in ${ev.expiresAt - now} ms`)
      } else if (d.reason === 'delivery_limit' && ev.diesAtDispatch) {
        // Its last delivery failed with the crash or the close: no more deliveries.
      } else if (d.reason === 'maxlen') {
        if (this.config.maxBacklog === null) this.fail(`${what}: the group has no maxBacklog`)
      } else this.fail(`${what}: nothing called for it`)
      if (d.body !== undefined && d.body !== ev.body) this.fail(`${what}: dead letter body ${d.body}, the event's ${ev.body}`)
      if (d.group !== undefined && (d.group !== 'g' || d.stream !== 'work')) this.fail(`${what}: x-death names ${String(d.stream)}/${String(d.group)}`)
      if (d.entries !== undefined && (d.entries !== 1 || d.count !== 1)) this.fail(`${what}: ${d.entries} x-death entries, count ${String(d.count)}; it died once`)
      ev.fate = this.config.deadLetter ? 'dead' : 'parked'
      ev.expectDeath = undefined
      // A dead letter settles the event, which drops its stored retry; parking does not.
      if (ev.fate === 'dead') ev.retryStored = false
    }
    for (const ev of this.#events.values()) if (ev.expectDeath !== undefined) this.fail(`event ${ev.id} at ${ev.offset} should have died (${ev.expectDeath}) by now`)
    // Overflow dead-letters down to maxBacklog, never below: only other deaths may take what is
    // left to deliver lower.
    const max = this.config.maxBacklog
    if (max !== null && deaths.some((d) => d.reason === 'maxlen')) {
      const others = deaths.filter((d) => d.reason !== 'maxlen').length
      const live = [...this.#events.values()].filter((e) => e.fate === undefined).length
      if (live + others < max) {
        const message = `overflow left ${live} events to deliver (${others} other deaths), below maxBacklog ${max}`
        if (!this.config.deadLetter) this.known('overflow-parks', message)
        else this.fail(message)
      }
    }
  }

  /** The parked list must be exactly the events the model parked. */
  checkParked(parked: readonly number[]): void {
    const want = this.parkedOffsets.sort((a, b) => a - b)
    const got = [...parked].sort((a, b) => a - b)
    if (want.join() !== got.join()) this.fail(`parked events are [${got.join(',')}], expected [${want.join(',')}]`)
  }

  /** New parked offsets (not yet known to the model) from the group's list. */
  newlyParked(parked: ReadonlyArray<{ offset: number; reason: string }>): SeenDeath[] {
    return parked.filter((p) => this.#events.get(p.offset)?.fate !== 'parked').map((p) => ({ id: this.#events.get(p.offset)?.id ?? `?@${p.offset}`, reason: p.reason }))
  }

  redriven(limit: number, returned: number): void {
    const chosen = this.parkedOffsets.sort((a, b) => a - b).slice(0, limit)
    if (returned !== chosen.length) this.fail(`redrive of ${limit} parked answered ${returned}, expected ${chosen.length}`)
    for (const o of chosen) {
      const ev = this.#events.get(o)!
      ev.fate = undefined
      ev.redriven = true
      ev.diesAtDispatch = false
      ev.retryStored = false
      ev.maxCount = 0
      ev.countIncarnation = this.incarnation
    }
  }

  purged(limit: number, returned: number): void {
    const chosen = this.parkedOffsets.sort((a, b) => a - b).slice(0, limit)
    if (returned !== chosen.length) this.fail(`purge of ${limit} parked answered ${returned}, expected ${chosen.length}`)
    for (const o of chosen) {
      const ev = this.#events.get(o)!
      ev.fate = 'purged'
      ev.retryStored = false
    }
  }

  /** The group's own view must match: its log end, what is in flight, the backlog and the cursor. */
  checkGroup(g: { endOffset: number; inFlight: number; backlog: number; cursor: number }): void {
    if (g.endOffset !== this.end) this.fail(`log end ${g.endOffset}, expected ${this.end}`)
    if (g.inFlight !== this.#held.size) this.fail(`group has ${g.inFlight} in flight, expected ${this.#held.size} (${this.heldTags().join(' ')})`)
    let backlog = 0
    let cursor = this.end
    for (let o = this.end - 1; o >= 0; o--) {
      const ev = this.#events.get(o)!
      if (settledFates.has(ev.fate)) continue
      backlog++
      cursor = o
    }
    if (g.backlog !== backlog) this.fail(`group backlog ${g.backlog}, expected ${backlog}`)
    if (g.cursor !== cursor) this.fail(`group cursor ${g.cursor}, expected ${cursor}`)
  }
}
