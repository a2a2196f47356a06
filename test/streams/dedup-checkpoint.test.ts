import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openLog, type AppendRecord, type Log } from '../../src/log/index.js'
import { openMeta, type MetaOp, type MetaStore } from '../../src/meta/index.js'
import { DedupWindow } from '../../src/streams/dedup-window.js'
import { errors } from '../../src/errors.js'
import { postNdjson, readStream, startTestServer } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

const windowMs = 60_000
const rec = (id: string): AppendRecord => ({ timestamp: 1, key: 'k', body: Buffer.from('{}'), json: true, id })

interface Node {
  meta: MetaStore
  log: Log
  dedup: DedupWindow
}

async function open(dir: string, now: number): Promise<Node> {
  const meta = await openMeta(join(dir, 'meta'))
  const log = await openLog(join(dir, 's'))
  const dedup = new DedupWindow(meta, 100_000)
  await dedup.load(['s'], new Map([['s', log]]), windowMs, now)
  return { meta, log, dedup }
}

async function close(n: Node): Promise<void> {
  await n.log.close()
  await n.meta.close()
}

/**
 * One publish of `ids` the way the publisher does it. After the log's fsync: 'persisted' writes
 * the ids to the metadata store, 'crash' never gets to, 'metaFailed' is that write failing.
 */
async function publish(n: Node, ids: string[], now: number, after: 'persisted' | 'crash' | 'metaFailed'): Promise<void> {
  const base = n.log.nextOffset
  n.dedup.appending('s', base)
  const r = await n.log.append(ids.map(rec))
  const ops: MetaOp[] = []
  n.dedup.commit('s', ids.map((id, i) => ({ id, offset: base + i })), now, windowMs, ops, { baseOffset: r.baseOffset, endOffset: r.lastOffset + 1 })
  if (after === 'persisted') await n.meta.write(ops, { sync: true })
  if (after === 'metaFailed') n.dedup.notPersisted('s', r.baseOffset)
}

describe('dedup window checkpoints', () => {
  it('ids restored from the log after a crash are still known after a second crash', async () => {
    const dir = await tempDir()
    const now = Date.now()
    let n = await open(dir, now)
    await publish(n, ['a1', 'a2'], now, 'crash')
    await close(n)
    n = await open(dir, now)
    expect(n.dedup.check('s', 'a1', now)).toBe('duplicate')
    await publish(n, ['b1'], now, 'persisted')
    await close(n) // a second crash would lose no more: everything is persisted
    n = await open(dir, now)
    expect([n.dedup.check('s', 'a1', now), n.dedup.check('s', 'a2', now), n.dedup.check('s', 'b1', now)]).toEqual(['duplicate', 'duplicate', 'duplicate'])
    await close(n)
  })

  it('ids whose metadata write failed are still known after a later write succeeded and a restart', async () => {
    const dir = await tempDir()
    const now = Date.now()
    let n = await open(dir, now)
    await publish(n, ['a1'], now, 'metaFailed')
    await publish(n, ['b1'], now, 'persisted')
    await close(n)
    n = await open(dir, now)
    expect([n.dedup.check('s', 'a1', now), n.dedup.check('s', 'b1', now)]).toEqual(['duplicate', 'duplicate'])
    await close(n)
  })
  it('a publish whose dedup write fails is confirmed (the events are durable), and a retry is a duplicate, across a restart too', async () => {
    const first = await startTestServer()
    const meta = first.server.meta
    const write = meta.write.bind(meta)
    let failures = 1
    meta.write = (ops, opts) => (failures-- > 0 ? Promise.reject(errors.metaWrite(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }))) : write(ops, opts))
    const a = [{ id: 'a1', service: 'api', level: 'info' }, { id: 'a2', service: 'api', level: 'info' }]
    const res = await postNdjson(first.url, 'logs', a)
    expect([res.status, await res.json()]).toEqual([200, { accepted: 2, duplicates: 0, unroutable: 0 }])
    expect(failures).toBe(0)
    const again = await postNdjson(first.url, 'logs', a)
    expect(await again.json()).toEqual({ accepted: 0, duplicates: 2, unroutable: 0 })
    // A later write succeeds; it must not move the checkpoint past the unpersisted ids.
    expect((await postNdjson(first.url, 'logs', [{ id: 'b1', service: 'api', level: 'info' }])).status).toBe(200)
    await first.stop()
    const second = await startTestServer({ dataDir: first.dataDir })
    const retry = await postNdjson(second.url, 'logs', a)
    expect(await retry.json()).toEqual({ accepted: 0, duplicates: 2, unroutable: 0 })
    expect((await readStream(second.url, 'app-logs')).events.map((e) => e.id)).toEqual(['a1', 'a2', 'b1'])
  })
})
