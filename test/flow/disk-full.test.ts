import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.js'
import { openMeta } from '../../src/meta/index.js'
import { metaReserveBytes } from '../../src/meta/reserve.js'
import { startServer, type SluiceServer } from '../../src/server.js'
import { testConfig } from '../helpers/server.js'
import { fillDisk, freeBytes, mountTmpfs } from '../helpers/tmpfs.js'

const mb = 1024 * 1024

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
`

/** `n` events of about 1 KB, each naming its request and place in it. */
const events = (req: string, n: number): string => Array.from({ length: n }, (_, k) => JSON.stringify({ service: 'api', level: 'info', req, k, pad: 'p'.repeat(1000) })).join('\n')

async function publish(url: string, body: string): Promise<{ status: number; code: string | undefined; retryAfter: string | null }> {
  const res = await fetch(`${url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
  const json = (await res.json()) as { error?: { code: string } }
  return { status: res.status, code: json.error?.code, retryAfter: res.headers.get('retry-after') }
}

/** Every stored event as `<req>:<k>`, in offset order. */
async function stored(url: string): Promise<string[]> {
  const out: string[] = []
  for (let from = 0; ; ) {
    const res = await fetch(`${url}/v1/streams/app-logs/events?from=${from}&limit=1000`)
    const page = (await res.json()) as { events: Array<{ body: { req: string; k: number } }>; nextOffset: number }
    if (page.events.length === 0) return out
    for (const e of page.events) out.push(`${e.body.req}:${e.body.k}`)
    from = page.nextOffset
  }
}

const ids = (req: string, n: number): string[] => Array.from({ length: n }, (_, k) => `${req}:${k}`)

async function alarmNames(url: string): Promise<string[]> {
  const res = await fetch(`${url}/v1/overview`)
  return ((await res.json()) as { alarms: Array<{ name: string }> }).alarms.map((a) => a.name)
}

describe('a full disk under a running server (a real tmpfs)', () => {
  it('a publish that hits ENOSPC is refused and never served, the disk alarm goes up and down, no restart is needed, and a restart on a full disk works', async () => {
    const disk = await mountTmpfs(32 * mb)
    const dataDir = join(disk, 'data')
    const filler = join(disk, 'filler')
    const config = testConfig(dataDir, pipeline, '  alarms: { diskFreeLimit: 2mb }\n  durability: { fsync: always }')
    let server: SluiceServer | undefined = await startServer(config, createLogger('silent'))
    try {
      // The probe timer is stopped so the test decides when the free space is looked at.
      server.alarms.stop()
      const url = server.httpUrl
      expect((await publish(url, events('ok1', 100))).status).toBe(200)
      // The metadata store holds its reserve.
      expect((await stat(`${dataDir}/meta.reserve`)).size).toBe(8 * mb)

      // The disk fills behind the alarm's back: its last probe still says there is room.
      await fillDisk(filler, disk, 300 * 1024)
      const failed = await publish(url, events('lost', 1000))
      expect(failed).toEqual({ status: 503, code: 'log_write_failed', retryAfter: '1' })
      expect(await alarmNames(url)).toEqual(['disk'])
      expect(await stored(url)).toEqual(ids('ok1', 100))
      // While the alarm is up, publishers are refused before anything is written.
      expect(await publish(url, events('blocked', 1))).toMatchObject({ status: 503, code: 'alarm' })

      // Space comes back: the next probe clears the alarm and the same stream takes publishes.
      await rm(filler)
      await server.alarms.check()
      expect(await alarmNames(url)).toEqual([])
      expect((await publish(url, events('ok2', 1000))).status).toBe(200)
      expect(await stored(url)).toEqual([...ids('ok1', 100), ...ids('ok2', 1000)])

      // Admission counts a request's size: 3 MB free, a 2 MB limit, so 1.5 MB is refused whole
      // and 0.5 MB goes in, with no alarm raised.
      await fillDisk(filler, disk, 3 * mb)
      await server.alarms.check()
      expect(await alarmNames(url)).toEqual([])
      expect(await publish(url, events('big', 1500))).toMatchObject({ status: 503, code: 'disk_space' })
      expect((await publish(url, events('small', 500))).status).toBe(200)
      expect(await alarmNames(url)).toEqual([])

      // A restart on a disk with nothing free: the metadata store gives back its reserve to open.
      await server.stop()
      server = undefined
      await rm(filler)
      await fillDisk(filler, disk, 0)
      expect(await freeBytes(disk)).toBeLessThan(64 * 1024)
      server = await startServer(config, createLogger('silent'))
      server.alarms.stop()
      const url2 = server.httpUrl
      const kept = [...ids('ok1', 100), ...ids('ok2', 1000), ...ids('small', 500)]
      expect(await stored(url2)).toEqual(kept)
      // The reserve was given back to make that room, and is not taken again on so full a disk.
      await expect(stat(`${dataDir}/meta.reserve`)).rejects.toMatchObject({ code: 'ENOENT' })
      expect((await publish(url2, events('ok3', 10))).status).toBe(200)

      // With space again, the next start puts the reserve back.
      await server.stop()
      server = undefined
      await rm(filler)
      server = await startServer(config, createLogger('silent'))
      expect((await stat(`${dataDir}/meta.reserve`)).size).toBe(8 * mb)
      expect(await stored(server.httpUrl)).toEqual([...kept, ...ids('ok3', 10)])
    } finally {
      await server?.stop()
    }
  })

  it('the metadata store cannot open on a full disk without its reserve, and opens with it', async () => {
    const outcomes: string[] = []
    for (const reserveBytes of [0, metaReserveBytes]) {
      const disk = await mountTmpfs(32 * mb)
      const dir = join(disk, 'meta')
      await (await openMeta(dir, { reserveBytes })).close()
      await fillDisk(join(disk, 'filler'), disk, 0)
      try {
        await (await openMeta(dir, { reserveBytes })).close()
        outcomes.push('opened')
      } catch (err) {
        outcomes.push((err as { code?: string }).code ?? String(err))
      }
    }
    expect(outcomes).toEqual(['SLUICE_ERR_META_OPEN', 'opened'])
  })

  it('a start on a full disk spends the reserve; it comes back while running once there is room, so a second full disk still lets the store open', async () => {
    const disk = await mountTmpfs(32 * mb)
    const dir = join(disk, 'meta')
    const filler = join(disk, 'filler')
    const opts = { reserveBytes: metaReserveBytes, reserveCheckMs: 20 }
    await (await openMeta(dir, opts)).close()
    await fillDisk(filler, disk, 0)
    const store = await openMeta(dir, opts)
    try {
      await expect(stat(`${dir}.reserve`)).rejects.toMatchObject({ code: 'ENOENT' })
      // Space comes back with no restart: the store puts its reserve back by itself.
      await rm(filler)
      let size = 0
      for (let i = 0; i < 250 && size < metaReserveBytes; i++) {
        await new Promise((r) => setTimeout(r, 20))
        size = await stat(`${dir}.reserve`).then((s) => s.size, () => 0)
      }
      expect(size).toBe(metaReserveBytes)
    } finally {
      await store.close()
    }
    // The disk fills again before any restart; the next start still opens.
    await fillDisk(filler, disk, 0)
    await (await openMeta(dir, opts)).close()
  })
})
