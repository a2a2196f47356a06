import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { ConsumerGroup, groupKeyspaces } from '../../src/consumers/group.js'
import type { Log } from '../../src/log/index.js'
import { metaDir, openMeta } from '../../src/meta/index.js'
import { StreamRegistry, type Stream } from '../../src/streams/registry.js'
import { tempDir } from '../helpers/temp.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The log, with every read of a single record (how a redelivery is brought back) taking `ms`. */
function slowSingleReads(log: Log, ms: number): Log {
  return new Proxy(log, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target)
      if (typeof v !== 'function') return v
      const fn = (v as (...args: unknown[]) => unknown).bind(target)
      if (prop !== 'read') return fn
      return async (offset: number, opts?: { maxRecords?: number }): Promise<unknown> => {
        if (opts?.maxRecords === 1) await sleep(ms)
        return fn(offset, opts)
      }
    },
  })
}

describe('a long poll while the group is busy', () => {
  // Found by soak:abuse: deliveries held by aborted long polls timed out together, bringing them
  // back took the dispatch loop seconds, and a live member's fetch (waitMs 1000) waited for all
  // of it before its waitMs timer even started: answers after 2 to 8 s.
  it('is answered within waitMs while timed-out deliveries are being brought back', async () => {
    const dataDir = await tempDir()
    const config = parseConfig(
      `
server: { dataDir: ${JSON.stringify(dataDir)} }
exchanges: { logs: { type: fanout } }
streams: { work: {} }
bindings: [{ exchange: logs, stream: work }]
groups:
  g: { stream: work, prefetch: 1000, ackTimeout: 100ms, maxDeliveries: 0, retryBackoff: { initial: 10ms, multiplier: 1, jitter: 0, max: 10ms } }
`,
      { env: {} },
    )
    const streams = await StreamRegistry.open(dataDir, config.streams, config.server.durability)
    const meta = await openMeta(metaDir(dataDir))
    const work = streams.get('work')!
    const stream: Stream = { name: work.name, config: work.config, log: slowSingleReads(work.log, 20), append: (records) => work.append(records) }
    const group = await ConsumerGroup.open(config.groups['g']!, { stream, meta, keyspaces: groupKeyspaces(meta), deadLetter: undefined })
    try {
      await work.append(Array.from({ length: 100 }, (_, i) => ({ timestamp: i, key: 'k', body: Buffer.from(`{"i":${i}}`), json: true })))
      // A member takes all 100 and never acks: 100 ms later they time out together, and bringing
      // them back reads them one by one, 20 ms each: 2 s of dispatch work.
      expect(await group.fetch('gone', 100, 0)).toHaveLength(100)
      await sleep(300)
      const started = performance.now()
      const got = await group.fetch('live', 10, 200)
      const tookMs = performance.now() - started
      // Whatever it gets (some redeliveries may be back by then), it is answered near its waitMs.
      expect(got.length).toBeLessThanOrEqual(10)
      // Before the fix it waited for the whole 2 s of dispatch work, then its 200 ms; the bound
      // leaves room for a machine busy with other tests without letting that through.
      expect(tookMs).toBeLessThan(1500)
    } finally {
      await group.close()
      await meta.close()
      await streams.close()
    }
  })
})
