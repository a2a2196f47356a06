import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startAmqpServer } from '../helpers/amqp.js'
import { waitFor } from '../helpers/programs.js'
import { debianPython } from '../helpers/python.js'
import { tempDir } from '../helpers/temp.js'

// Celery (Debian's python3-celery) with Sluice as its broker, at the URL a Celery user writes:
// amqp://guest:guest@127.0.0.1:PORT//. Workers are started as users start them
// (`python3 -m celery -A tasks worker`), with low concurrency for a shared CI machine. Each task
// appends a line to a file, so the test counts executions.

const run = promisify(execFile)

const tasks = `
import os, time
from celery import Celery

app = Celery('sluice_interop', broker=os.environ['BROKER_URL'])
OUT = os.environ['OUT_DIR']

def note(name, line):
    with open(os.path.join(OUT, name), 'a') as f:
        f.write(line + '\\n')

@app.task
def record(i):
    note('record', str(i))

@app.task(acks_late=True)
def slow(i):
    time.sleep(0.2)
    note('slow', str(i))

@app.task(bind=True)
def flaky(self, key):
    note('flaky', '%s %d %f' % (key, self.request.retries, time.time()))
    if self.request.retries == 0:
        raise self.retry(countdown=1)
`

interface Setup {
  readonly python: string
  readonly dir: string
  readonly env: NodeJS.ProcessEnv
}

async function setup(): Promise<Setup> {
  const python = debianPython('celery', 'python3-celery')
  const s = await startAmqpServer()
  const dir = await tempDir()
  await writeFile(join(dir, 'tasks.py'), tasks)
  const env = { ...process.env, BROKER_URL: `amqp://guest:guest@127.0.0.1:${s.amqpPort}//`, OUT_DIR: dir, PYTHONPATH: dir, PYTHONDONTWRITEBYTECODE: '1' }
  return { python, dir, env }
}

/** A worker as `celery -A tasks worker` starts it, in a process group of its own (so a SIGKILL takes its pool too). */
function worker(x: Setup, name: string, extra: readonly string[] = []): ChildProcess {
  const p = spawn(x.python, ['-m', 'celery', '-A', 'tasks', 'worker', '-n', `${name}@%h`, '--concurrency', '1', '--loglevel', process.env.CELERY_LOGLEVEL ?? 'WARNING', ...extra], { cwd: x.dir, env: x.env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  p.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000)
    if (process.env.CELERY_LOG !== undefined) process.stderr.write(c)
  })
  p.once('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) console.error(`celery worker ${name} exited ${code}:\n${stderr}`)
  })
  onTestFinished(() => killGroup(p))
  return p
}

function killGroup(p: ChildProcess): void {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return
  try {
    process.kill(-p.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

async function lines(dir: string, name: string): Promise<string[]> {
  const text = await readFile(join(dir, name), 'utf8').catch(() => '')
  return text.split('\n').filter((l) => l !== '')
}

async function send(x: Setup, code: string): Promise<void> {
  await run(x.python, ['-c', `from tasks import *\n${code}`], { cwd: x.dir, env: x.env, timeout: 60_000 })
}

describe('Celery', () => {
  it('1,000 tasks sent with .delay() run exactly once each; a countdown retry runs again later; celery inspect ping answers', async () => {
    const x = await setup()
    worker(x, 'w1')
    await send(x, 'for i in range(1000): record.delay(i)\nflaky.delay("k")')
    await waitFor('1,000 tasks recorded', async () => ((await lines(x.dir, 'record')).length >= 1000 ? true : undefined), 90_000)
    const done = await lines(x.dir, 'record')
    expect(done).toHaveLength(1000)
    expect(new Set(done).size).toBe(1000)
    await waitFor('the retry', async () => ((await lines(x.dir, 'flaky')).length >= 2 ? true : undefined), 30_000)
    const attempts = (await lines(x.dir, 'flaky')).map((l) => l.split(' '))
    expect(attempts.map((a) => [a[0], a[1]])).toEqual([
      ['k', '0'],
      ['k', '1'],
    ])
    expect(Number(attempts[1]![2]) - Number(attempts[0]![2])).toBeGreaterThanOrEqual(0.9)
    // inspect ping: a broadcast on the celery.pidbox fanout exchange, answered on a reply queue with a TTL and x-expires.
    const ping = await run(x.python, ['-m', 'celery', '-A', 'tasks', 'inspect', 'ping', '--timeout', '5'], { cwd: x.dir, env: x.env, timeout: 60_000 })
    expect(ping.stdout).toMatch(/w1@\S+: OK\s+pong/)
    // Nothing ran twice meanwhile.
    expect(await lines(x.dir, 'record')).toHaveLength(1000)
  })

  it('acks_late: a worker SIGKILLed mid-run loses no task; another worker runs what it held', async () => {
    const x = await setup()
    const first = worker(x, 'doomed', ['--prefetch-multiplier', '1'])
    const n = 20
    await send(x, `for i in range(${n}): slow.delay(i)`)
    await waitFor('a few slow tasks done', async () => ((await lines(x.dir, 'slow')).length >= 3 ? true : undefined), 60_000)
    killGroup(first)
    await new Promise((r) => first.once('exit', r))
    const before = new Set(await lines(x.dir, 'slow'))
    expect(before.size).toBeLessThan(n)
    worker(x, 'rescuer')
    await waitFor('every slow task done', async () => (new Set(await lines(x.dir, 'slow')).size >= n ? true : undefined), 60_000)
    expect(new Set(await lines(x.dir, 'slow'))).toEqual(new Set(Array.from({ length: n }, (_, i) => String(i))))
  })
})
