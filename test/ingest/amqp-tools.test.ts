import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { startAmqpServer } from '../helpers/amqp.js'
import { requireProgram } from '../helpers/programs.js'
import { readStream } from '../helpers/server.js'

// Debian's amqp-tools (rabbitmq-c's command-line programs), each run as a shell user runs it.

const run = promisify(execFile)
const tool = (name: string): string => requireProgram(name, 'amqp-tools')

describe('amqp-tools', () => {
  it('amqp-declare-queue, amqp-publish (every message stored), amqp-consume -c N, amqp-get', async () => {
    const [declare, publish, consume, get] = ['amqp-declare-queue', 'amqp-publish', 'amqp-consume', 'amqp-get'].map(tool) as [string, string, string, string]
    const s = await startAmqpServer()
    const url = s.amqpUrl
    // amqp-declare-queue prints the queue's name.
    expect((await run(declare, ['--url', url, '-d', '-q', 'tools-q'])).stdout.trim()).toBe('tools-q')
    for (let i = 0; i < 10; i++) await run(publish, ['--url', url, '-r', 'tools-q', '-b', `body-${i}`])
    expect((await readStream(s.url, 'tools-q')).events.map((e) => e.body)).toEqual(Array.from({ length: 10 }, (_, i) => `body-${i}`))
    // amqp-consume runs the command once per message, its body on stdin; -c 4 stops after four.
    const consumed = await run(consume, ['--url', url, '-q', 'tools-q', '-c', '4', 'cat'], { timeout: 20_000 })
    expect(consumed.stdout).toBe('body-0body-1body-2body-3')
    // amqp-get takes one message (acked), and fails once the queue is empty.
    const got: string[] = []
    for (let i = 0; i < 6; i++) got.push((await run(get, ['--url', url, '-q', 'tools-q'])).stdout)
    expect(got).toEqual(['body-4', 'body-5', 'body-6', 'body-7', 'body-8', 'body-9'])
    await expect(run(get, ['--url', url, '-q', 'tools-q'])).rejects.toMatchObject({ code: 2 })
  })
})
