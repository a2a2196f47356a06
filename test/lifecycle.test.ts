import { describe, expect, it } from 'vitest'
import { Lifecycle, type LifecycleLogger } from '../src/lifecycle.js'

function recorder(): { logger: LifecycleLogger; lines: Array<{ msg: string; part: string }>; entries: Array<Record<string, unknown>> } {
  const lines: Array<{ msg: string; part: string }> = []
  const entries: Array<Record<string, unknown>> = []
  const note = (obj: object, msg: string): void => {
    lines.push({ msg, part: (obj as { part: string }).part })
    entries.push({ ...obj, msg })
  }
  return { logger: { debug: note, info: note, error: note }, lines, entries }
}

describe('Lifecycle', () => {
  it('closes parts newest first, each once, and a second close shares the first', async () => {
    const closed: string[] = []
    const parts = new Lifecycle()
    for (const name of ['store', 'logs', 'groups', 'door']) await parts.open(name, () => ({ close: () => void closed.push(name) }))
    expect(parts.names).toEqual(['store', 'logs', 'groups', 'door'])
    const [a, b] = await Promise.all([parts.close(), parts.close()])
    expect(closed).toEqual(['door', 'groups', 'logs', 'store'])
    expect(a).toEqual([])
    expect(b).toBe(a)
    expect(parts.names).toEqual([])
  })

  it('a close that throws is reported and the parts before it still close', async () => {
    const { logger, lines } = recorder()
    const closed: string[] = []
    const parts = new Lifecycle(logger)
    await parts.open('store', () => ({ close: () => void closed.push('store') }))
    await parts.open('logs', () => ({
      close: async () => {
        throw new Error('disk gone')
      },
    }))
    await parts.open('door', () => ({ close: () => void closed.push('door') }))
    const failures = await parts.close()
    expect(closed).toEqual(['door', 'store'])
    expect(failures.map((f) => [f.part, (f.error as Error).message])).toEqual([['logs', 'disk gone']])
    expect(lines.filter((l) => l.msg !== 'part open')).toEqual([
      { msg: 'part closed', part: 'door' },
      { msg: 'part failed to close', part: 'logs' },
      { msg: 'part closed', part: 'store' },
    ])
  })

  it('a part whose open throws is not on the stack; those before it close', async () => {
    const closed: string[] = []
    const parts = new Lifecycle()
    await parts.open('store', () => ({ close: () => void closed.push('store') }))
    await expect(
      parts.open('door', async () => {
        throw new Error('port taken')
      }),
    ).rejects.toThrow('port taken')
    expect(parts.names).toEqual(['store'])
    await parts.close()
    expect(closed).toEqual(['store'])
  })

  it('refuses to open once closing, and closes a part that finished opening during the close', async () => {
    const closed: string[] = []
    const parts = new Lifecycle()
    let finishOpen!: () => void
    const late = parts.open('late', async () => {
      await new Promise<void>((r) => (finishOpen = r))
      return { close: () => void closed.push('late') }
    })
    const closing = parts.close()
    finishOpen()
    await expect(late).rejects.toThrow('cannot open late: the server is closing')
    await closing
    expect(closed).toEqual(['late'])
    await expect(parts.open('after', () => ({ close: () => undefined }))).rejects.toThrow('closing')
  })

  it('a part slow to close is named while it is waited for, and the deadline bounds the whole close', async () => {
    const { logger, entries } = recorder()
    const closed: string[] = []
    const parts = new Lifecycle(logger)
    let release!: () => void
    await parts.open('store', () => ({ close: () => void closed.push('store') }))
    await parts.open('door', () => ({ close: () => new Promise<void>((r) => (release = r)) }))
    await parts.open('routes', () => ({ close: () => void closed.push('routes') }))
    const t0 = Date.now()
    const failures = await parts.close({ timeoutMs: 120, noticeMs: 40 })
    const took = Date.now() - t0
    expect(took).toBeGreaterThanOrEqual(110)
    expect(took).toBeLessThan(1000)
    expect(failures.map((f) => [f.part, f.timedOut, (f.error as Error).message])).toEqual([['door', true, 'door was still closing after 120 ms']])
    expect(closed).toEqual(['routes'])
    // What the stop waited for, while it waited, and where it gave up.
    const waits = entries.filter((e) => e.msg === 'stop is waiting for door to close')
    expect(waits.length).toBeGreaterThanOrEqual(1)
    expect(waits.every((e) => e.part === 'door' && typeof e.waitingMs === 'number')).toBe(true)
    expect(entries.find((e) => typeof e.msg === 'string' && e.msg.startsWith('stop timed out'))).toMatchObject({ msg: 'stop timed out waiting for door to close', part: 'door', left: ['store'], timeoutMs: 120 })
    // The stuck part lets go later: the rest still close, in order, behind it.
    release()
    await expect.poll(() => closed).toEqual(['routes', 'store'])
  })

  it('a close within its deadline reports nothing slow', async () => {
    const { logger, entries } = recorder()
    const parts = new Lifecycle(logger)
    await parts.open('store', () => ({ close: () => undefined }))
    expect(await parts.close({ timeoutMs: 5000, noticeMs: 1000 })).toEqual([])
    expect(entries.map((e) => e.msg)).toEqual(['part open', 'part closed'])
  })
})
