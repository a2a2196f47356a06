// The README's first contact, tried as a new user would: every `sh` block runs in bash against a
// server started on the default configuration (config/sluice.yaml), and every output the README
// shows under a command (`# …` lines right below it) must be what the command printed. A block
// preceded by `<!-- not run by test/docs/readme.test.ts: why -->` is left out (the two commands
// that start the server, Docker, prompts).

import { spawn } from 'node:child_process'
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseDocument } from 'yaml'
import { parseConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import { startServer, type SluiceServer } from '../../src/server.js'
import { requireProgram } from '../helpers/programs.js'
import { tempDir } from '../helpers/temp.js'

const root = new URL('../../', import.meta.url).pathname

export interface Step {
  /** The README line the command starts on. */
  readonly line: number
  readonly command: string
  /** What the README shows it prints; `…` stands for anything. */
  readonly expected: string | undefined
}

export interface Block {
  readonly line: number
  readonly steps: readonly Step[]
}

const notRun = /^<!-- not run by test\/docs\/readme\.test\.ts: .+ -->$/

/**
 * The README's `sh` blocks as commands and the outputs shown under them. A `# ` line directly
 * under a command (or under another such line) is its output; `#   ` continues the line above
 * without a break, and two or more spaces end the output and start a remark
 * (`# {"accepted":2}   answered once stored`). Any other comment is prose.
 */
export function readmeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue
    let before = i - 1
    while (before >= 0 && lines[before]!.trim() === '') before--
    const skip = before >= 0 && notRun.test(lines[before]!.trim())
    const steps: { line: number; command: string; expected: string[] }[] = []
    let open: (typeof steps)[number] | undefined
    let j = i + 1
    for (; j < lines.length && lines[j] !== '```'; j++) {
      const text = lines[j]!
      if (text.trim() === '') {
        open = undefined
        continue
      }
      if (text.startsWith('#')) {
        if (open === undefined) continue
        const body = text.slice(1)
        const continues = body.startsWith('   ')
        const shown = body.trim().split(/\s{2,}/)[0]!
        if (continues && open.expected.length > 0) open.expected[open.expected.length - 1] += shown
        else open.expected.push(shown)
        continue
      }
      let command = text
      const start = j
      while (command.endsWith('\\') && j + 1 < lines.length) command = `${command}\n${lines[++j]!}`
      open = { line: start + 1, command, expected: [] }
      steps.push(open)
    }
    if (!skip) blocks.push({ line: i + 1, steps: steps.map((s) => ({ line: s.line, command: s.command, expected: s.expected.length > 0 ? s.expected.join('\n') : undefined })) })
    i = j
  }
  return blocks
}

/** `…` matches anything, across lines; the rest literally, the whole output. */
export function outputPattern(expected: string): RegExp {
  const escaped = expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${escaped.join('[\\s\\S]*?')}$`)
}

/** The default configuration, on ephemeral ports and a temp data dir. */
async function startDefault(dataDir: string): Promise<SluiceServer> {
  const doc = parseDocument(await readFile(join(root, 'config/sluice.yaml'), 'utf8'))
  for (const listener of ['http', 'ndjson', 'amqp', 'syslog']) doc.setIn(['server', listener, 'port'], 0)
  return startServer(parseConfig(doc.toString(), { env: { SLUICE_DATA_DIR: dataDir } }), createLogger('silent'))
}

const portOf = (server: SluiceServer, name: string): number => {
  const l = server.listeners.find((x) => x.options.name === name)
  if (l === undefined) throw new Error(`no ${name} listener`)
  return l.port
}

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('readmeBlocks', () => {
  it('reads commands, their shown output, continuations and remarks, and leaves out marked blocks', () => {
    const md = [
      '<!-- not run by test/docs/readme.test.ts: starts the server -->',
      '```sh',
      'npm start',
      '```',
      '```sh',
      '# prose before',
      'curl -s a \\',
      '  -d x',
      '# {"a":1,',
      '#   "b":2}   a remark',
      '',
      '# more prose',
      'echo hi',
      '# hi',
      '# there',
      '```',
    ].join('\n')
    expect(readmeBlocks(md)).toEqual([
      {
        line: 5,
        steps: [
          { line: 7, command: 'curl -s a \\\n  -d x', expected: '{"a":1,"b":2}' },
          { line: 13, command: 'echo hi', expected: 'hi\nthere' },
        ],
      },
    ])
    expect(outputPattern('{"tag":"…","n":1}').test('{"tag":"1-0-1-abc","n":1}')).toBe(true)
    expect(outputPattern('{"n":1}').test('{"n":1,"m":2}')).toBe(false)
  })
})

describe('the README, from a fresh start', () => {
  it('every shell block runs against the default configuration and prints what the README shows', { timeout: 120_000 }, async () => {
    for (const [program, pkg] of [['curl', 'curl'], ['jq', 'jq'], ['logger', 'bsdutils']] as const) requireProgram(program, pkg)
    const dataDir = await tempDir()
    const work = await tempDir()
    // The user's checkout: the README's relative paths resolve as they would in it.
    for (const dir of ['config', 'examples']) await symlink(join(root, dir), join(work, dir))
    const server = await startDefault(dataDir)
    try {
      const http = Number(new URL(server.httpUrl).port)
      const ports: Readonly<Record<string, number>> = { '7400': http, '7401': portOf(server, 'ndjson'), '5514': portOf(server, 'syslog'), '5672': portOf(server, 'amqp') }
      // The CLI as `npm run sluice --` runs it (after a build), without npm's banner lines.
      const bin = join(work, 'bin')
      await mkdir(bin)
      await writeFile(join(bin, 'sluice'), `#!/bin/sh\nexec node ${JSON.stringify(join(root, 'dist/src/cli.js'))} "$@"\n`, { mode: 0o755 })
      const adapt = (command: string): string =>
        command
          .replace(/npm run sluice --( |$)/g, 'sluice$1')
          .replace(/(localhost|127\.0\.0\.1)([:/])(7400|7401|5514|5672)\b/g, (_m, _host: string, sep: string, port: string) => `127.0.0.1${sep}${ports[port]!}`)
          .replace(/-P 5514\b/g, `-P ${ports['5514']!}`)
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, SLUICE_URL: `http://127.0.0.1:${http}`, NO_COLOR: '1' }
      const blocks = readmeBlocks(await readFile(join(root, 'README.md'), 'utf8'))
      expect(blocks.length).toBeGreaterThanOrEqual(5)
      for (const block of blocks) {
        // One bash per block, so a block's variables carry from one command to the next. Each
        // command's output goes to files of its own; a command that follows (`--follow`) runs for
        // two seconds and is then interrupted, as a user's Ctrl-C.
        const script = block.steps
          .map((s, n) => {
            const cmd = adapt(s.command)
            const run = /--follow\b/.test(cmd) ? `timeout -s INT 2 ${cmd}` : cmd
            return `{\n${run}\n} > .out.${n} 2> .err.${n}; echo $? > .rc.${n}`
          })
          .join('\n')
        const ran = await bash(script, work, env)
        expect(ran.code, `README block at line ${block.line}: ${ran.stderr}`).toBe(0)
        for (const [n, step] of block.steps.entries()) {
          const out = await readFile(join(work, `.out.${n}`), 'utf8')
          const err = await readFile(join(work, `.err.${n}`), 'utf8')
          const rc = Number((await readFile(join(work, `.rc.${n}`), 'utf8')).trim())
          const where = `README line ${step.line}: ${step.command}\nstdout: ${out}\nstderr: ${err}`
          // A followed tail ends by the interrupt (124 from timeout, or the CLI's own 130).
          if (/--follow\b/.test(step.command)) expect([0, 124, 130], where).toContain(rc)
          else expect(rc, where).toBe(0)
          if (step.expected !== undefined) expect(out.trim(), where).toMatch(outputPattern(step.expected))
        }
      }
    } finally {
      await server.stop()
    }
  })
})
