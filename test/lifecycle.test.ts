import { describe, expect, it } from 'vitest'
import { Lifecycle, type LifecycleLogger } from '../src/lifecycle.js'

function recorder(): { logger: LifecycleLogger; lines: Array<{ msg: string; part: string }> } {
  const lines: Array<{ msg: string; part: string }> = []
  const note = (obj: object, msg: string): void => {
    lines.push({ msg, part: (obj as { part: string }).part })
  }
  return { logger: { debug: note, error: note }, lines }
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
})
