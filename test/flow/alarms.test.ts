import { totalmem } from 'node:os'
import { describe, expect, it, vi } from 'vitest'
import { backgroundErrors } from '../../src/background.js'
import { Alarms, availableMemory, type AlarmState } from '../../src/flow/alarms.js'
import { limitHits } from '../../src/limits.js'

const mb = 1024 * 1024

function emfile(): NodeJS.ErrnoException {
  return Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE', syscall: 'uv_resident_set_memory' })
}

/** Records unhandled rejections and uncaught exceptions while `fn` runs. */
async function escapes(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = []
  const onRejection = (reason: unknown): void => void seen.push(reason)
  const onException = (err: unknown): void => void seen.push(err)
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  try {
    await fn()
    // Let any stray rejection reach the process before looking.
    await new Promise((r) => setImmediate(r))
  } finally {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
  }
  return seen
}

describe('alarms', () => {
  it('a memory probe that throws EMFILE is counted and reported, and the disk probe still runs', async () => {
    const reported: Array<[unknown, string]> = []
    let free = 10 * mb
    const before = backgroundErrors.get('alarms.memory') ?? 0
    const alarms = new Alarms({
      memoryHighWatermark: 0.5,
      diskFreeLimitBytes: 4 * mb,
      dataDir: '/nonexistent',
      readRss: () => {
        throw emfile()
      },
      readDiskFree: () => Promise.resolve(free),
      onError: (err, task) => reported.push([err, task]),
    })
    const seen = await escapes(async () => {
      await alarms.check()
      free = 1 * mb
      await alarms.check()
    })
    expect(seen).toEqual([])
    expect(alarms.probeErrors).toEqual({ memory: 2, disk: 0 })
    expect(backgroundErrors.get('alarms.memory')).toBe(before + 2)
    expect(reported.map(([e, t]) => [(e as NodeJS.ErrnoException).code, t])).toEqual([
      ['EMFILE', 'alarms.memory'],
      ['EMFILE', 'alarms.memory'],
    ])
    expect(alarms.active().map((a) => a.name)).toEqual(['disk'])
  })

  it('the timer keeps checking while the memory reader throws, then sees memory again once it recovers', async () => {
    let rssCalls = 0
    let diskCalls = 0
    let failing = true
    let reached: (() => void) | undefined
    const changes: Array<[boolean, string]> = []
    const alarms = new Alarms({
      memoryHighWatermark: 0.5,
      memoryLimitBytes: 100 * mb,
      diskFreeLimitBytes: 0,
      dataDir: '/nonexistent',
      checkEveryMs: 2,
      readRss: () => {
        rssCalls++
        if (failing) throw emfile()
        return 200 * mb
      },
      readDiskFree: () => {
        diskCalls++
        if (diskCalls === 10) reached?.()
        return Promise.resolve(mb)
      },
      onChange: (raised, state: AlarmState) => {
        changes.push([raised, state.name])
        // A listener that throws must not stop the alarm either.
        throw new Error('listener failed')
      },
    })
    const seen = await escapes(async () => {
      const tenChecks = new Promise<void>((r) => (reached = r))
      alarms.start()
      await tenChecks
      failing = false
      alarms.stop()
      // The first call joins the check the timer has in flight; the second is a fresh one.
      await alarms.check()
      await alarms.check()
    })
    expect(seen).toEqual([])
    expect(rssCalls).toBeGreaterThanOrEqual(11)
    expect(alarms.probeErrors.memory).toBe(rssCalls - 1)
    expect(changes).toEqual([[true, 'memory']])
    expect(alarms.blocked).toBe(true)
  })

  it('a failed disk probe keeps the last state instead of clearing or throwing', async () => {
    let free: number | Error = mb
    const alarms = new Alarms({
      memoryHighWatermark: 1,
      diskFreeLimitBytes: 4 * mb,
      dataDir: '/nonexistent',
      readRss: () => 0,
      readDiskFree: () => (free instanceof Error ? Promise.reject(free) : Promise.resolve(free)),
    })
    await alarms.check()
    expect(alarms.active().map((a) => a.name)).toEqual(['disk'])
    free = emfile()
    await alarms.check()
    expect(alarms.active().map((a) => a.name)).toEqual(['disk'])
    expect(alarms.probeErrors.disk).toBe(1)
  })

  it('admission counts a request against the free space, including what was admitted since the probe', async () => {
    let free = 12 * mb
    const alarms = new Alarms({ memoryHighWatermark: 1, diskFreeLimitBytes: 4 * mb, dataDir: '/nonexistent', readRss: () => 0, readDiskFree: () => Promise.resolve(free) })
    await alarms.check()
    const hits = limitHits.get('server.alarms.diskFreeLimit') ?? 0
    expect(alarms.admitDisk(11.5 * mb)).toEqual({ requestBytes: 11.5 * mb, freeBytes: 12 * mb, limitBytes: 4 * mb })
    expect(alarms.admitDisk(5 * mb)).toBeUndefined()
    // 12 − 5 admitted = 7 free; 4 more would leave 3, below the 4 MB limit.
    expect(alarms.admitDisk(4 * mb)).toEqual({ requestBytes: 4 * mb, freeBytes: 7 * mb, limitBytes: 4 * mb })
    expect(alarms.admitDisk(2 * mb)).toBeUndefined()
    expect(limitHits.get('server.alarms.diskFreeLimit')).toBe(hits + 2)
    // The next probe sees what was written and starts the count again.
    free = 5 * mb
    await alarms.check()
    expect(alarms.admitDisk(2 * mb)).toEqual({ requestBytes: 2 * mb, freeBytes: 5 * mb, limitBytes: 4 * mb })
    expect(alarms.admitDisk(mb)).toBeUndefined()
    expect(alarms.blocked).toBe(false)
  })

  it('a write that found the disk full raises the disk alarm at once; a probe with space back clears it', async () => {
    let free = 50 * mb
    const changes: Array<[boolean, string]> = []
    const alarms = new Alarms({
      memoryHighWatermark: 1,
      diskFreeLimitBytes: 4 * mb,
      dataDir: '/nonexistent',
      readRss: () => 0,
      readDiskFree: () => Promise.resolve(free),
      onChange: (raised, s) => changes.push([raised, s.name]),
    })
    await alarms.check()
    alarms.noteWriteError(Object.assign(new Error('EIO'), { code: 'EIO' }))
    expect(alarms.blocked).toBe(false)
    alarms.noteWriteError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }))
    expect(alarms.active().map((a) => a.name)).toEqual(['disk'])
    expect(alarms.diskWriteErrors).toBe(1)
    // Between the limit and the hysteresis band it stays up.
    free = 4.2 * mb
    await alarms.check()
    expect(alarms.blocked).toBe(true)
    free = 5 * mb
    await alarms.check()
    expect(alarms.blocked).toBe(false)
    expect(changes).toEqual([
      [true, 'disk'],
      [false, 'disk'],
    ])
  })

  it('the memory watermark is a fraction of the memory available: a container limit (cgroup) below the machine wins', async () => {
    const alarms = new Alarms({ memoryHighWatermark: 0.5, diskFreeLimitBytes: 0, dataDir: '/nonexistent', readMemoryTotal: () => 512 * mb, readRss: () => 300 * mb, readDiskFree: () => Promise.resolve(mb) })
    expect(alarms.memoryLimitBytes).toBe(256 * mb)
    await alarms.check()
    expect(alarms.active().map((a) => [a.name, a.value, a.limit])).toEqual([['memory', 300 * mb, 256 * mb]])

    const limit = vi.spyOn(process, 'constrainedMemory')
    try {
      limit.mockReturnValue(256 * mb)
      expect(availableMemory()).toBe(Math.min(256 * mb, totalmem()))
      // No limit: Node says 0, or a number beyond any machine's memory.
      limit.mockReturnValue(0)
      expect(availableMemory()).toBe(totalmem())
      limit.mockReturnValue(Number.MAX_SAFE_INTEGER)
      expect(availableMemory()).toBe(totalmem())
    } finally {
      limit.mockRestore()
    }
  })
})
