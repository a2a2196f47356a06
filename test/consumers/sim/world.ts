import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseConfig, type Config } from '../../../src/config/index.js'
import { ConsumerGroup, type Delivery } from '../../../src/consumers/index.js'
import { groupKeyspaces } from '../../../src/consumers/group.js'
import type { Log } from '../../../src/log/index.js'
import { metaDir, openMeta, withWrites, type MetaStore } from '../../../src/meta/index.js'
import { streamDir, StreamRegistry, type Stream } from '../../../src/streams/registry.js'
import { cutLogAt } from '../../helpers/cut-log.js'
import type { SimClock, VirtualTime } from './clock.js'

/**
 * Counts the group's I/O in progress (metadata writes, log reads, dead-letter appends), so the
 * driver can tell when the group has gone idle: no I/O pending and nothing left in the microtask
 * queue after a few turns of the event loop.
 */
export class Tracker {
  pending = 0

  track<T>(p: Promise<T>): Promise<T> {
    this.pending++
    return p.finally(() => {
      this.pending--
    })
  }

  async idle(limitMs = 20_000): Promise<void> {
    const started = Date.now()
    for (let calm = 0; calm < 3; ) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      calm = this.pending === 0 ? calm + 1 : 0
      if (Date.now() - started > limitMs) throw new Error(`the group did not go idle within ${limitMs} ms (${this.pending} I/O pending)`)
    }
  }
}

/** Faults the driver can put into the parts, to show that the checks catch what they should. */
export interface Faults {
  /** Synced metadata writes are answered but never reach the store: acks that are not durable. */
  readonly loseSyncedWrites?: boolean
}

function trackedMeta(inner: MetaStore, tracker: Tracker, faults: Faults): MetaStore {
  return withWrites(inner, (ops, opts) => (faults.loseSyncedWrites === true && opts?.sync !== false ? Promise.resolve() : tracker.track(inner.write(ops, opts))))
}

/** The log as the group sees it: every call that returns a promise is tracked, but the long wait for growth. */
function trackedLog(log: Log, tracker: Tracker): Log {
  return new Proxy(log, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target)
      if (typeof v !== 'function') return v
      const fn = v as (...args: unknown[]) => unknown
      if (prop === 'waitFor') return fn.bind(target)
      return (...args: unknown[]): unknown => {
        const r = fn.apply(target, args)
        return r instanceof Promise ? tracker.track(r) : r
      }
    },
  })
}

/**
 * The real parts one opening of the group runs on: a stream registry (the work stream and the
 * dead-letter stream, real segmented logs), the metadata store, and the group itself, on a clock
 * of its own from the simulation's time line.
 */
export class World {
  readonly config: Config
  readonly dataDir: string
  readonly streams: StreamRegistry
  readonly meta: MetaStore
  readonly group: ConsumerGroup
  readonly work: Stream
  readonly dlq: Stream
  readonly clock: SimClock
  readonly tracker: Tracker

  private constructor(parts: { config: Config; dataDir: string; streams: StreamRegistry; meta: MetaStore; group: ConsumerGroup; work: Stream; dlq: Stream; clock: SimClock; tracker: Tracker }) {
    this.config = parts.config
    this.dataDir = parts.dataDir
    this.streams = parts.streams
    this.meta = parts.meta
    this.group = parts.group
    this.work = parts.work
    this.dlq = parts.dlq
    this.clock = parts.clock
    this.tracker = parts.tracker
  }

  static config(yaml: string): Config {
    return parseConfig(yaml, { env: {} })
  }

  static async open(dataDir: string, config: Config, time: VirtualTime, random: () => number, tracker: Tracker, faults: Faults = {}): Promise<World> {
    const streams = await StreamRegistry.open(dataDir, config.streams, config.server.durability)
    let meta: MetaStore | undefined
    try {
      meta = await openMeta(metaDir(dataDir))
      const work = streams.get('work')!
      const dlq = streams.get('dlq')!
      const groupConfig = config.groups['g']!
      const clock = time.incarnation()
      const stream: Stream = { name: work.name, config: work.config, log: trackedLog(work.log, tracker), append: (records) => work.append(records) }
      const sink = groupConfig.deadLetter === null ? undefined : { deadLetter: async (records: Parameters<Stream['append']>[0]) => void (await tracker.track(dlq.append(records))) }
      const tracked = trackedMeta(meta, tracker, faults)
      // Tags carry a per-member secret; a counter keeps a seed's trace the same on every run.
      let tokens = 0
      const token = (): string => `k${++tokens}`
      const group = await ConsumerGroup.open(groupConfig, { stream, meta: tracked, keyspaces: groupKeyspaces(meta), deadLetter: sink, clock, random, token })
      return new World({ config, dataDir, streams, meta, group, work, dlq, clock, tracker })
    } catch (err) {
      await meta?.close()
      await streams.close()
      throw err
    }
  }

  /**
   * Stops this opening. `crash`: no clean-shutdown marker, so the logs are recovered at the next
   * open as after a kill. The group is closed first either way: closing it writes nothing durable
   * (it stops its timers and loops), so what the next opening finds is what a crash leaves. It
   * cannot be left open: a group whose log is closed under it spins in its wait for the log to
   * grow (waitFor on a closed log answers at once) and starves the event loop.
   */
  async close(crash: boolean): Promise<void> {
    await this.tracker.idle()
    this.clock.kill()
    await this.group.close()
    await this.meta.close()
    await this.streams.close()
    if (crash) {
      for (const name of ['work', 'dlq']) await rm(join(streamDir(this.dataDir, name), '.clean-shutdown'), { force: true })
    }
  }

  /** Cuts the closed work log inside the batch holding `offset`; returns the log's new end. */
  async cutWork(offset: number): Promise<number> {
    return cutLogAt(streamDir(this.dataDir, 'work'), offset)
  }
}

export function describeDelivery(d: Delivery): { tag: string; offset: number; count: number; redelivered: boolean; id: string | undefined; body: string } {
  return { tag: d.tag, offset: d.record.offset, count: d.deliveryCount, redelivered: d.redelivered, id: d.record.id, body: d.record.body.toString('utf8') }
}
