import { spawn, type ChildProcess } from 'node:child_process'
import { access } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'

/** The built CLI, as `npm test` leaves it (it builds before vitest runs). */
export const cliPath = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url))
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Fails loudly, naming the fix, when the CLI has not been built. */
export async function requireBuiltCli(): Promise<void> {
  await access(cliPath).catch(() => {
    throw new Error(`${cliPath} is missing: run \`npm run build\` (npm test does) before these tests`)
  })
}

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface CliRun {
  readonly proc: ChildProcess
  /** Every stdout line so far. */
  readonly lines: string[]
  /** Resolves with the first stdout line `match` accepts. */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>
  readonly done: Promise<CliResult>
}

/** `sluice …` in its own process; killed when the test ends if it is still running. */
export function spawnCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): CliRun {
  const proc = spawn(process.execPath, [cliPath, ...args], { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  if (opts.input !== undefined) proc.stdin!.end(opts.input)
  else proc.stdin!.end()
  let stdout = ''
  let stderr = ''
  const lines: string[] = []
  const waiters = new Set<{ match: (l: string) => boolean; resolve: (l: string) => void }>()
  proc.stdout!.setEncoding('utf8')
  proc.stderr!.setEncoding('utf8')
  proc.stdout!.on('data', (chunk: string) => (stdout += chunk))
  proc.stderr!.on('data', (chunk: string) => (stderr += chunk))
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l)
    for (const w of waiters) if (w.match(l)) w.resolve(l)
  })
  const done = new Promise<CliResult>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  onTestFinished(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  return {
    proc,
    lines,
    done,
    line: (match, timeoutMs = 10_000) =>
      new Promise<string>((resolve, reject) => {
        const seen = lines.find(match)
        if (seen !== undefined) return resolve(seen)
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`no matching line within ${timeoutMs} ms; stdout so far:\n${stdout}\nstderr:\n${stderr}`))
        }, timeoutMs)
        const w = {
          match,
          resolve: (l: string) => {
            clearTimeout(timer)
            waiters.delete(w)
            resolve(l)
          },
        }
        waiters.add(w)
        void done.then(() => {
          if (!waiters.has(w)) return
          clearTimeout(timer)
          waiters.delete(w)
          reject(new Error(`the process ended before a matching line; stdout:\n${stdout}\nstderr:\n${stderr}`))
        })
      }),
  }
}

/** `sluice …` to its end. */
export function runCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<CliResult> {
  return spawnCli(args, opts).done
}

/** The JSON log lines of a server's stdout, parsed; other lines are skipped. */
export function logEntries(lines: readonly string[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const l of lines) {
    try {
      out.push(JSON.parse(l) as Record<string, unknown>)
    } catch {
      // not a JSON log line
    }
  }
  return out
}

/** A stack trace's frame, as Node prints one: what a friendly error never shows. */
export const stackFrame = /^\s+at .+(\.js|\.ts):\d+/m
